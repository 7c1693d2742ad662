//go:build integration

package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestJSModuleInFirefox runs the browser module's unit tests and every
// conformance case, in both codecs, in Debian's headless Firefox (ESR):
// the module promises to work beyond Chromium, with standard APIs only.
// Firefox has no DevTools protocol at hand here, so the page POSTs its
// report back; the files are served over plain HTTP on 127.0.0.1, a secure
// context, so no certificate has to be trusted.
func TestJSModuleInFirefox(t *testing.T) {
	firefox := itNeed(t, "firefox-esr", "firefox-esr", "this test runs the browser module in Firefox")
	reports := make(chan []byte, 1)
	mux := jsModuleMux(t, map[string]http.HandlerFunc{
		"POST /report": func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(io.LimitReader(r.Body, 8<<20))
			select {
			case reports <- b:
			default:
			}
		},
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	profile := t.TempDir()
	// A fresh profile, without first-run pages, updates or telemetry: the
	// closed network refuses them, and they would only slow the start.
	prefs := strings.Join([]string{
		`user_pref("browser.shell.checkDefaultBrowser", false);`,
		`user_pref("browser.startup.homepage_override.mstone", "ignore");`,
		`user_pref("datareporting.policy.dataSubmissionEnabled", false);`,
		`user_pref("toolkit.telemetry.reportingpolicy.firstRun", false);`,
		`user_pref("app.update.enabled", false);`,
		`user_pref("network.captive-portal-service.enabled", false);`,
		`user_pref("browser.safebrowsing.malware.enabled", false);`,
		`user_pref("browser.safebrowsing.phishing.enabled", false);`,
		`user_pref("extensions.update.enabled", false);`,
	}, "\n")
	if err := os.WriteFile(filepath.Join(profile, "user.js"), []byte(prefs), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	began := time.Now()
	cmd := exec.CommandContext(ctx, firefox, "--headless", "--no-remote", "--profile", profile,
		srv.URL+"/client/test/unit.html?cases=/conformance/&post=/report")
	cmd.Env = append(os.Environ(), "HOME="+profile, "MOZ_CRASHREPORTER_DISABLE=1")
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	var body []byte
	select {
	case body = <-reports:
	case <-time.After(90 * time.Second):
		t.Fatalf("no report from Firefox in 90 s; its output:\n%s", out.String())
	}
	var rep struct {
		moduleReport
		Error string `json:"error"`
	}
	if err := json.Unmarshal(body, &rep); err != nil {
		t.Fatalf("report %q: %v", body, err)
	}
	if rep.Error != "" {
		t.Fatalf("the page failed in Firefox: %s", rep.Error)
	}
	rep.moduleReport.check(t, "Firefox", began)
}
