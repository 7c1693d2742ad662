//go:build integration

package main

import (
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// browserReport is what testdata/browser.html POSTs back.
type browserReport struct {
	Mode       string          `json:"mode"`
	UserAgent  string          `json:"userAgent"`
	Exception  string          `json:"exception"`
	JSON       *browserSession `json:"json"`
	Msgpack    *browserSession `json:"msgpack"`
	BearerOnly *browserAttempt `json:"bearerOnly"`
	BadToken   *browserAttempt `json:"badToken"`
	Foreign    *browserAttempt `json:"foreign"`
}

// browserSession is one subscribed session of the page, in one codec.
type browserSession struct {
	Protocol string         `json:"protocol"`
	Types    map[string]int `json:"types"`
	Errors   []string       `json:"errors"`
	Welcome  *struct {
		V           int    `json:"v"`
		Codec       string `json:"codec"`
		Node        string `json:"node"`
		HeartbeatMS int    `json:"heartbeat_ms"`
		Exp         int64  `json:"exp"`
	} `json:"welcome"`
	Books       int    `json:"books"`
	Checksums   int    `json:"checksums"`
	Trades      int    `json:"trades"`
	Tickers     int    `json:"tickers"`
	ChainBreaks int    `json:"chainBreaks"`
	Finished    string `json:"finished"`
	Close       struct {
		Code   int    `json:"code"`
		Reason string `json:"reason"`
		Clean  bool   `json:"clean"`
	} `json:"close"`
}

// check fails t unless the session went as the contract says for codec.
func (j *browserSession) check(t *testing.T, codec string) {
	t.Helper()
	if j == nil || j.Protocol != "tickgate.v1."+codec {
		t.Fatalf("%s session: %+v: want subprotocol tickgate.v1.%s", codec, j, codec)
	}
	if w := j.Welcome; w == nil || w.V != 1 || w.Codec != codec || w.Node != "dev-1" || w.HeartbeatMS <= 0 || w.Exp < time.Now().Unix() {
		t.Fatalf("%s welcome %+v", codec, w)
	}
	if len(j.Errors) > 0 || j.ChainBreaks != 0 || j.Finished != "enough" {
		t.Fatalf("%s session: finished %q, errors %q, %d prev chain breaks", codec, j.Finished, j.Errors, j.ChainBreaks)
	}
	if j.Types["subscribed"] != 1 || j.Types["snapshot"] < 2 || j.Checksums != j.Books {
		t.Fatalf("%s session: types %v, %d of %d book checksums held", codec, j.Types, j.Checksums, j.Books)
	}
	if j.Close.Code != 1000 || j.Close.Reason == "" || !j.Close.Clean {
		t.Fatalf("%s session closed %+v: want a clean 1000 with a reason", codec, j.Close)
	}
	t.Logf("%s: %v; %d book messages, every checksum held; %d tickers, %d trades; closed %d %q",
		codec, j.Types, j.Books, j.Tickers, j.Trades, j.Close.Code, j.Close.Reason)
}

type browserAttempt struct {
	Opened   bool   `json:"opened"`
	Protocol string `json:"protocol"`
	Code     int    `json:"code"`
}

// TestBrowserClient runs a raw-WebSocket client of the protocol
// (testdata/browser.html, independent of client/js) in Debian's headless
// Chromium against `tickgate dev`: the token as a bearer. subprotocol entry
// beside a codec, the codec echoed alone (a browser fails a handshake whose
// answer echoes nothing it offered), snapshots then updates with unbroken
// prev chains and book checksums that the page computes itself, in JSON
// text frames and in msgpack binary frames (decoded by the page's own
// decoder), a clean close with a reason, and the refusals a browser
// sees: bearer entry without a codec, a bad token, a page of another origin.
func TestBrowserClient(t *testing.T) {
	chromium := itNeed(t, "chromium", "chromium", "this test drives a real browser")
	start := time.Now()
	dir := t.TempDir()

	reports := make(chan browserReport, 2)
	page := func() *httptest.Server {
		mux := http.NewServeMux()
		mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
			http.ServeFile(w, r, filepath.Join("testdata", "browser.html"))
		})
		mux.HandleFunc("POST /report", func(w http.ResponseWriter, r *http.Request) {
			var rep browserReport
			if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&rep); err != nil {
				t.Errorf("report: %v", err)
			}
			reports <- rep
		})
		mux.HandleFunc("GET /favicon.ico", http.NotFound)
		s := httptest.NewUnstartedServer(mux)
		s.Config.ErrorLog = log.New(io.Discard, "", 0) // Chromium drops probe connections
		s.StartTLS()
		t.Cleanup(s.Close)
		return s
	}
	home, foreign := page(), page()

	out := runInProcess(t, io.Discard, "token: ", "dev", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0",
		"--nats-listen", "127.0.0.1:0", "--dir", filepath.Join(dir, "dev"), "--log-level", "warn",
		"--allowed-origins", home.URL, "--symbols", "3", "--rate", "300")
	wsURL, token := out["url"], out["token"]
	admin, _, _ := strings.Cut(out["admin"], " ")
	if !strings.HasPrefix(wsURL, "wss://") || token == "" || admin == "" {
		t.Fatalf("dev printed url %q, admin %q, token %q", wsURL, admin, token)
	}
	itWaitFor(t, 10*time.Second, "/readyz 200", func() bool { return itStatus(admin+"/readyz") == http.StatusOK })

	browse := func(server *httptest.Server, mode string) browserReport {
		t.Helper()
		target := server.URL + "/?" + url.Values{"url": {wsURL}, "token": {token}, "mode": {mode}}.Encode()
		stopBrowser := runChromium(t, chromium, filepath.Join(dir, "chromium-"+mode), target)
		defer stopBrowser()
		select {
		case rep := <-reports:
			if rep.Exception != "" {
				t.Fatalf("%s: the page threw: %s", mode, rep.Exception)
			}
			return rep
		case <-time.After(45 * time.Second):
			t.Fatalf("%s: no report from the browser within 45s", mode)
		}
		return browserReport{}
	}

	rep := browse(home, "all")
	t.Logf("browser: %s", rep.UserAgent)
	rep.JSON.check(t, "json")
	rep.Msgpack.check(t, "msgpack")
	for name, a := range map[string]*browserAttempt{"bearer entry without a codec": rep.BearerOnly, "bad token": rep.BadToken} {
		if a == nil || a.Opened || a.Code != 1006 {
			t.Fatalf("%s: %+v: want the browser to fail the handshake (1006)", name, a)
		}
	}

	if f := browse(foreign, "foreign-origin").Foreign; f == nil || f.Opened || f.Code != 1006 {
		t.Fatalf("page of another origin: %+v: want the handshake refused", f)
	}

	// What the browser cannot see, the node counted.
	metrics := itMetrics(admin)
	for _, reason := range []string{"bad_subprotocol", "invalid_token", "origin_not_allowed"} {
		if series := `tickgate_handshake_failures_total{reason="` + reason + `"}`; metrics[series] < 1 {
			t.Fatalf("%s = %v, want at least 1", series, metrics[series])
		}
	}
	t.Logf("refusals seen by the browser as 1006 and counted by the node: bad_subprotocol, invalid_token, origin_not_allowed; total %v",
		time.Since(start).Round(time.Millisecond))
}

// runChromium opens target in headless Chromium with a fresh profile and
// returns a function that ends the browser and all its processes.
func runChromium(t *testing.T, bin, profile, target string) func() {
	t.Helper()
	cmd := exec.Command(bin,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--ignore-certificate-errors",
		"--user-data-dir="+profile, target)
	log, err := os.Create(profile + ".log")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		_ = log.Close()
		if t.Failed() {
			out, _ := os.ReadFile(profile + ".log")
			t.Logf("--- chromium output ---\n%s", out)
		}
	}
	t.Cleanup(stop)
	return stop
}
