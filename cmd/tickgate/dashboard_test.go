package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tickgate/tickgate/proto"
)

// The dashboard handler serves the page, its files and the browser module,
// with headers that keep the page to its own files and host, and nothing
// else: no folder listings, no Go source, no other path.
func TestDashboardHandler(t *testing.T) {
	srv := httptest.NewServer(dashboardHandler(dashboardConfig{Mode: "serve"}))
	defer srv.Close()
	cases := []struct {
		method, path string
		status       int
		ctype, body  string
	}{
		{"GET", "/", 200, "text/html", `<script type="module" src="/dashboard/dashboard.js">`},
		{"HEAD", "/", 200, "text/html", ""},
		{"GET", "/dashboard/dashboard.js", 200, "text/javascript", `from "/client/tickgate.js"`},
		{"GET", "/dashboard/dashboard.css", 200, "text/css", "--up"},
		{"GET", "/dashboard/config.json", 200, "application/json", `{"mode":"serve","symbols":null,"ws":"/v1/ws"}`},
		{"GET", "/client/tickgate.js", 200, "text/javascript", `export {connect, Client`},
		{"GET", "/client/msgpack.js", 200, "text/javascript", "export function decode"},
		{"GET", "/client/tickgate.d.ts", 200, "text/plain", "export function connect(options: ConnectOptions): Client;"},
		{"GET", "/client/", 404, "", ""},
		{"GET", "/client/embed.go", 404, "", ""},
		{"GET", "/client/test/unit.js", 404, "", ""},
		{"GET", "/dashboard/", 404, "", ""},
		{"GET", "/dashboard/index.html", 404, "", ""}, // the page is at / only
		{"GET", "/index.html", 404, "", ""},
		{"GET", "/v1/snapshot/book.BTC-USD", 404, "", ""},
		{"POST", "/", 405, "", ""},
	}
	for _, c := range cases {
		req, _ := http.NewRequest(c.method, srv.URL+c.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, resp.StatusCode, c.status)
			continue
		}
		if c.status != 200 {
			continue
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, c.ctype) {
			t.Errorf("%s %s: Content-Type %q, want %s", c.method, c.path, ct, c.ctype)
		}
		if !strings.Contains(string(body), c.body) {
			t.Errorf("%s %s: body lacks %q", c.method, c.path, c.body)
		}
		if cors := resp.Header.Get("Access-Control-Allow-Origin"); (cors == "*") != strings.HasPrefix(c.path, "/client/") {
			t.Errorf("%s %s: Access-Control-Allow-Origin %q: only the module is for any origin", c.method, c.path, cors)
		}
		csp := resp.Header.Get("Content-Security-Policy")
		host := strings.TrimPrefix(srv.URL, "http://")
		if !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "connect-src 'self' wss://"+host+" ws://"+host) ||
			resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("%s %s: headers %v", c.method, c.path, resp.Header)
		}
	}
}

// `tickgate dev` serves the dashboard beside the WebSocket endpoint on one
// listener and prints its URL with the token in the fragment, right before
// the token; with --dashboard=false the listener serves the WebSocket
// endpoint alone, as before.
func TestDevServesDashboard(t *testing.T) {
	dir := t.TempDir()
	out := runInProcess(t, io.Discard, "token: ", "dev", "--listen", "127.0.0.1:0", "--admin", "",
		"--nats-listen", "127.0.0.1:0", "--symbols", "5", "--dir", dir, "--log-level", "warn")
	page, fragment, _ := strings.Cut(out["dashboard"], "#")
	wsURL := out["url"]
	if want := "https://" + strings.TrimSuffix(strings.TrimPrefix(wsURL, "wss://"), "/v1/ws") + "/"; page != want || fragment != "token="+out["token"] {
		t.Fatalf("dashboard line %q, want %s#token=<the token>", out["dashboard"], want)
	}
	hc := trustingClient(t, filepath.Join(dir, "cert.pem"))
	resp, err := hc.Get(page)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "tickgate live") || resp.Header.Get("Content-Security-Policy") == "" {
		t.Fatalf("GET %s: %d %v", page, resp.StatusCode, resp.Header)
	}
	resp, err = hc.Get(page + "dashboard/config.json")
	if err != nil {
		t.Fatal(err)
	}
	var conf dashboardConfig
	err = json.NewDecoder(resp.Body).Decode(&conf)
	resp.Body.Close()
	if err != nil || conf.Mode != "dev" || len(conf.Symbols) != 5 || conf.Symbols[0] != "BTC-USD" || conf.WebSocketPath != "/v1/ws" {
		t.Fatalf("config.json %+v (%v)", conf, err)
	}
	// The WebSocket endpoint behind the dashboard's mux is the gateway's.
	client, _ := dialDev(t, dir, wsURL, out["token"])
	select {
	case m := <-client.msgs:
		if m["type"] != proto.TypeWelcome {
			t.Fatalf("first message %v", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no welcome through the dashboard's listener")
	}
	if resp, err := hc.Get(strings.Replace(wsURL, "wss://", "https://", 1)); err != nil || resp.StatusCode != http.StatusUpgradeRequired {
		t.Fatalf("plain GET /v1/ws: %v %v, want 426", resp, err)
	}

	dir2 := t.TempDir()
	out2 := runInProcess(t, io.Discard, "token: ", "dev", "--dashboard=false", "--listen", "127.0.0.1:0", "--admin", "",
		"--nats-listen", "127.0.0.1:0", "--dir", dir2, "--log-level", "warn")
	if _, ok := out2["dashboard"]; ok {
		t.Fatalf("--dashboard=false printed %q", out2["dashboard"])
	}
	root := strings.TrimSuffix(strings.Replace(out2["url"], "wss://", "https://", 1), "v1/ws")
	resp, err = trustingClient(t, filepath.Join(dir2, "cert.pem")).Get(root)
	if err != nil || resp.StatusCode != 404 {
		t.Fatalf("GET / without the dashboard: %v %v, want 404", resp, err)
	}
	resp.Body.Close()
}

// `tickgate serve` serves the dashboard only with --dashboard, and then in
// "serve" mode, where the page asks for a token.
func TestServeDashboardFlag(t *testing.T) {
	dir := t.TempDir()
	ns, err := startEmbeddedNATS("127.0.0.1:0", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Shutdown()
	secret := writeFile(t, dir, "hmac.secret", strings.Repeat("k", 32))
	serve := func() map[string]string {
		return runInProcess(t, io.Discard, "tickgate serving", "serve", "--insecure-plaintext", "--listen", "127.0.0.1:0", "--admin", "",
			"--nats", ns.ClientURL(), "--hmac-secret-file", secret, "--log-level", "warn")
	}
	var plain string
	for line := range serve() {
		if u, ok := strings.CutPrefix(line, "tickgate serving ws://"); ok {
			plain = "http://" + strings.TrimSuffix(u, "v1/ws")
		}
	}
	if resp, err := http.Get(plain); err != nil || resp.StatusCode != 404 {
		t.Fatalf("serve without --dashboard: GET %s: %v %v, want 404", plain, resp, err)
	}

	out := runInProcess(t, io.Discard, "dashboard: ", "serve", "--dashboard", "--insecure-plaintext", "--listen", "127.0.0.1:0", "--admin", "",
		"--nats", ns.ClientURL(), "--hmac-secret-file", secret, "--log-level", "warn")
	page := out["dashboard"]
	if !strings.HasPrefix(page, "http://127.0.0.1:") || strings.Contains(page, "#") {
		t.Fatalf("serve --dashboard printed %v", out)
	}
	resp, err := http.Get(page + "dashboard/config.json")
	if err != nil {
		t.Fatal(err)
	}
	var conf dashboardConfig
	_ = json.NewDecoder(resp.Body).Decode(&conf)
	resp.Body.Close()
	if conf.Mode != "serve" || len(conf.Symbols) != 0 {
		t.Fatalf("config.json %+v", conf)
	}
}

// trustingClient is an HTTP client that trusts the certificate in pemFile.
func trustingClient(t *testing.T, pemFile string) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(pemFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"}}}
}
