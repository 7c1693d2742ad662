package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lxzan/gws"

	"github.com/tickgate/tickgate/proto"
)

// devClient records what a real gws client receives.
type devClient struct {
	gws.BuiltinEventHandler
	msgs chan map[string]any
}

func (d *devClient) OnMessage(_ *gws.Conn, m *gws.Message) {
	defer m.Close()
	var v map[string]any
	if err := json.Unmarshal(m.Bytes(), &v); err == nil {
		d.msgs <- v
	}
}

// The newcomer's path: `tickgate dev` prints a wss:// URL and a token, and
// a client using exactly those sees snapshots and live updates at once.
func TestDevModeServesLiveTicks(t *testing.T) {
	dir := t.TempDir()
	out := runInProcess(t, io.Discard, "token: ", "dev", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0",
		"--nats-listen", "127.0.0.1:0", "--rate", "400", "--dir", dir, "--log-level", "warn")
	url, token := out["url"], out["token"]
	admin, _, _ := strings.Cut(out["admin"], " ")
	if !strings.HasPrefix(url, "wss://") || token == "" {
		t.Fatalf("dev printed url %q token %q", url, token)
	}

	client, ws := dialDev(t, dir, url, token)
	if err := ws.WriteString(`{"op":"subscribe","id":1,"channels":["ticker.BTC-USD","book.ETH-USD","trade.SOL-USD"]}`); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	deadline := time.After(30 * time.Second)
	for !(seen["snapshot book.ETH-USD"] && seen["update book.ETH-USD"] && seen["update ticker.BTC-USD"] && seen["update trade.SOL-USD"]) {
		select {
		case m := <-client.msgs:
			typ, _ := m["type"].(string)
			ch, _ := m["channel"].(string)
			seen[typ+" "+ch] = true
			if typ == proto.TypeError {
				t.Fatalf("error: %v", m)
			}
		case <-deadline:
			t.Fatalf("within 30s saw only %v", seen)
		}
	}

	// The admin listener: ready, and the contract's metrics, labelled
	// series present from the start.
	for path, want := range map[string]string{"/healthz": "ok", "/readyz": "ready"} {
		if body := httpGet(t, admin+path); !strings.Contains(body, want) {
			t.Fatalf("%s: %q", path, body)
		}
	}
	metrics := httpGet(t, admin+"/metrics")
	for _, want := range []string{
		"tickgate_connections_active 1", "tickgate_messages_sent_total", "tickgate_feed_messages_total",
		`tickgate_evictions_total{reason="write_timeout"} 0`, `tickgate_handshake_failures_total{reason="draining"} 0`,
		"tickgate_delivery_latency_seconds_bucket", `tickgate_coalesced_total{kind="book"}`, "tickgate_outbox_pending_bucket",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// dialDev connects to a dev node like a client that trusts the node's
// self-signed certificate from dir, with the bearer subprotocol.
func dialDev(t *testing.T, dir, url, token string) (*devClient, *gws.Conn) {
	t.Helper()
	pem, err := os.ReadFile(filepath.Join(dir, "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	client := &devClient{msgs: make(chan map[string]any, 1024)}
	ws, _, err := gws.NewClient(client, &gws.ClientOption{
		Addr:          url,
		RequestHeader: http.Header{"Sec-Websocket-Protocol": {"tickgate.v1.json, bearer." + token}},
		TlsConfig:     &tls.Config{RootCAs: pool, ServerName: "localhost"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ws.NetConn().Close() })
	go ws.ReadLoop()
	return client, ws
}

// dev's own defaults (--audience tickgate, --node-id dev-1) give way to the
// environment and the config file like any flag, the printed token is made
// for the audience and issuer in force, and a serve-only setting exported
// in the environment (for feedsim, say) is ignored rather than fatal.
func TestDevDefaultsYieldToEnvironmentAndFile(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(envPrefix+"_NODE_ID", "desk-node")
	t.Setenv(envPrefix+"_NATS", "nats://127.0.0.1:1")
	cfg := writeFile(t, dir, "dev.yaml", "audience: desk\nissuer: desk-auth\n")
	out := runInProcess(t, io.Discard, "token: ", "dev", "--config", cfg, "--listen", "127.0.0.1:0", "--admin", "",
		"--nats-listen", "127.0.0.1:0", "--dir", dir, "--log-level", "warn")
	parts := strings.Split(out["token"], ".")
	if len(parts) != 3 {
		t.Fatalf("token %q", out["token"])
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Aud any    `json:"aud"`
		Iss string `json:"iss"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil || fmt.Sprint(claims.Aud) != "desk" && fmt.Sprint(claims.Aud) != "[desk]" || claims.Iss != "desk-auth" {
		t.Fatalf("token aud %v iss %q (%v), want desk and desk-auth", claims.Aud, claims.Iss, err)
	}
	client, _ := dialDev(t, dir, out["url"], out["token"])
	select {
	case m := <-client.msgs:
		if m["type"] != proto.TypeWelcome || m["node"] != "desk-node" {
			t.Fatalf("first message %v, want the welcome of node desk-node", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no welcome: the printed token was refused?")
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
