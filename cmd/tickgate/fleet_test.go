package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lxzan/gws"
)

// closeWatcher is a gws client that reports how its connection closed.
type closeWatcher struct {
	gws.BuiltinEventHandler
	closed chan error
}

func (c *closeWatcher) OnClose(_ *gws.Conn, err error) { c.closed <- err }

// dialWatch connects to a dev node with token; it returns the watcher, or
// the handshake's refusal.
func dialWatch(t *testing.T, dir, url, token string) (*closeWatcher, *http.Response, error) {
	t.Helper()
	pem, err := os.ReadFile(filepath.Join(dir, "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	w := &closeWatcher{closed: make(chan error, 1)}
	ws, resp, err := gws.NewClient(w, &gws.ClientOption{
		Addr:          url,
		RequestHeader: http.Header{"Sec-Websocket-Protocol": {"tickgate.v1.json, bearer." + token}},
		TlsConfig:     &tls.Config{RootCAs: pool, ServerName: "localhost"},
	})
	if err != nil {
		return nil, resp, err
	}
	t.Cleanup(func() { _ = ws.NetConn().Close() })
	go ws.ReadLoop()
	return w, resp, nil
}

// TestRevokeCommand: `tickgate revoke` through a dev node's admin API,
// which has an admin token: the dev token's connection is closed with
// 4003, the token is refused afterwards, and the API refuses the command
// without the admin token.
func TestRevokeCommand(t *testing.T) {
	dir := t.TempDir()
	tokenFile := writeFile(t, dir, "admin.token", "test-admin-token-0123456789\n")
	out := runInProcess(t, io.Discard, "token: ", "dev", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0",
		"--nats-listen", "127.0.0.1:0", "--dir", dir, "--log-level", "warn", "--admin-token-file", tokenFile, "--symbols", "3")
	url, token := out["url"], out["token"]
	adminURL, _, _ := strings.Cut(out["admin"], " ")
	w, resp, err := dialWatch(t, dir, url, token)
	if err != nil {
		t.Fatalf("dial: %v %v", err, resp)
	}

	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), []string{"revoke", "--admin", adminURL, "--sub", "dev"}, &stdout, &stderr); code != 1 ||
		!strings.Contains(stderr.String(), "unauthorized") {
		t.Fatalf("without the admin token: exit %d, %s", code, stderr.String())
	}
	stdout.Reset()
	stderr.Reset()
	// The client has its 101 a moment before the node tracks the
	// connection; a revocation in between still closes it (the handshake
	// checks again once tracked) but is not counted in "closed". Wait until
	// the node lists it, so the count below is the one to expect.
	listed := func() bool {
		req, _ := http.NewRequest(http.MethodGet, adminURL+"/v1/connections?sub=dev", nil)
		req.Header.Set("Authorization", "Bearer test-admin-token-0123456789")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == http.StatusOK && strings.Contains(string(b), `"sub":"dev"`)
	}
	for deadline := time.Now().Add(5 * time.Second); !listed(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the node never listed the dev connection")
		}
	}
	began := time.Now()
	if code := run(t.Context(), []string{"revoke", "--admin", adminURL, "--sub", "dev", "--admin-token-file", tokenFile}, &stdout, &stderr); code != 0 {
		t.Fatalf("revoke: exit %d: %s %s", code, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), `revoked "dev"`) || !strings.Contains(stdout.String(), "closed 1 connection(s)") ||
		!strings.Contains(stdout.String(), "stored for nodes that start later: true") {
		t.Fatalf("revoke printed %q (stderr %q)", stdout.String(), stderr.String())
	}
	select {
	case err := <-w.closed:
		var ce *gws.CloseError
		if !errors.As(err, &ce) || ce.Code != 4003 || string(ce.Reason) != "revoked" {
			t.Fatalf("closed with %v, want 4003 revoked", err)
		}
		t.Logf("closed 4003 %v after the command started", time.Since(began).Round(time.Millisecond))
	case <-time.After(2 * time.Second):
		t.Fatal("the dev token's connection was not closed")
	}
	if _, resp, err := dialWatch(t, dir, url, token); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the revoked token: %v %v, want 401", err, resp)
	} else if b, _ := io.ReadAll(resp.Body); !strings.Contains(string(b), "token_revoked") {
		t.Fatalf("refusal body %s", b)
	}
	// /metrics stays open with an admin token.
	if body := httpGet(t, adminURL+"/metrics"); !strings.Contains(body, "tickgate_revocation_closes_total 1") {
		t.Fatalf("/metrics: revocation closes not counted")
	}
}

func TestFleetFlags(t *testing.T) {
	dir := t.TempDir()
	short := writeFile(t, dir, "short.token", "abc\n")
	for name, tt := range map[string]struct {
		args []string
		says string
	}{
		"subject under the prefix": {[]string{"--revocation-subject", "md.revoke"}, "under the feed prefix"},
		"subject with a wildcard":  {[]string{"--revocation-subject", "ops.*"}, "wildcard"},
		"ttl too short":            {[]string{"--revocation-ttl", "30s"}, "--revocation-ttl must be at least 1m"},
		"bad bucket":               {[]string{"--revocation-bucket", "a.b"}, "--revocation-bucket"},
		"short admin token":        {[]string{"--admin-token-file", short}, "--admin-token-file"},
		"missing admin token":      {[]string{"--admin-token-file", filepath.Join(dir, "none")}, "--admin-token-file"},
	} {
		t.Run(name, func(t *testing.T) {
			var stderr bytes.Buffer
			args := append([]string{"serve", "--insecure-plaintext", "--hmac-secret-file", writeFile(t, dir, "s", strings.Repeat("k", 32)),
				"--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--nats", "nats://127.0.0.1:1"}, tt.args...)
			if code := run(t.Context(), args, io.Discard, &stderr); code != 2 || !strings.Contains(stderr.String(), tt.says) {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
		})
	}
	for name, args := range map[string][]string{
		"revoke without --sub":     {"revoke", "--admin", "127.0.0.1:1"},
		"revoke without --admin":   {"revoke", "--sub", "a"},
		"revoke, bad cut-off":      {"revoke", "--admin", "127.0.0.1:1", "--sub", "a", "--issued-before", "yesterday"},
		"top without --admin":      {"top"},
		"top, interval too short":  {"top", "--admin", "127.0.0.1:1", "--interval", "1ms"},
		"top, bad admin URL":       {"top", "--admin", "ftp://x:1"},
		"top, short token in file": {"top", "--admin", "127.0.0.1:1", "--admin-token-file", short},
	} {
		if code := run(t.Context(), args, io.Discard, io.Discard); code != 2 {
			t.Errorf("%s: exit %d, want 2", name, code)
		}
	}
	for in, want := range map[string]int64{"1800000000": 1800000000, "2027-01-15T10:00:00Z": 1800007200} {
		if got, err := parseCutoff(in); err != nil || got != want {
			t.Errorf("parseCutoff(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
}

func TestWarnOpenAdmin(t *testing.T) {
	for name, tt := range map[string]struct {
		addr  net.Addr
		token bool
		warns bool
	}{
		"loopback":              {&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9090}, false, false},
		"loopback v6":           {&net.TCPAddr{IP: net.IPv6loopback, Port: 9090}, false, false},
		"every address":         {&net.TCPAddr{IP: net.IPv4zero, Port: 9090}, false, true},
		"every address, token":  {&net.TCPAddr{IP: net.IPv4zero, Port: 9090}, true, false},
		"private network":       {&net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 9090}, false, true},
		"private network token": {&net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 9090}, true, false},
	} {
		var logs bytes.Buffer
		warnOpenAdmin(slog.New(slog.NewTextHandler(&logs, nil)), tt.addr, tt.token)
		if got := strings.Contains(logs.String(), "no admin token"); got != tt.warns {
			t.Errorf("%s: warned %v, want %v: %s", name, got, tt.warns, logs.String())
		}
	}
}

// tickgate revoke exits 1 when the node could not publish the revocation
// (it holds on that node only, and the runbook revokes through another),
// in both output forms; a revocation not stored is a warning (exit 0), as
// it always is without JetStream.
func TestRevokeCommandExitsByPublished(t *testing.T) {
	for name, tt := range map[string]struct {
		published, stored bool
		code              int
	}{
		"published and stored": {true, true, 0},
		"published, no store":  {true, false, 0},
		"not published":        {false, false, 1},
	} {
		for _, asJSON := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s, json %v", name, asJSON), func(t *testing.T) {
				node := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.Method != http.MethodPost || r.URL.Path != "/v1/revoke" {
						http.NotFound(w, r)
						return
					}
					w.Header().Set("Content-Type", "application/json")
					fmt.Fprintf(w, `{"sub":"dev","issued_before":1767222000,"expires_at":1767308400,"closed":0,"published":%v,"stored":%v,"warnings":[]}`, tt.published, tt.stored)
				}))
				defer node.Close()
				args := []string{"revoke", "--admin", node.URL, "--sub", "dev"}
				if asJSON {
					args = append(args, "--json")
				}
				var stdout, stderr bytes.Buffer
				if code := run(t.Context(), args, &stdout, &stderr); code != tt.code {
					t.Fatalf("exit %d, want %d: %s %s", code, tt.code, stdout.String(), stderr.String())
				}
				if !strings.Contains(stdout.String(), "dev") {
					t.Fatalf("the answer was not printed: %q", stdout.String())
				}
			})
		}
	}
}
