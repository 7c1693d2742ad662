package gateway

import (
	"crypto/tls"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tickgate/tickgate/auth"
	"github.com/tickgate/tickgate/proto"
)

func TestHandshakeRefusals(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.AllowedOrigins = []string{"https://dash.example.com", "http://localhost:3000"} })
	good := e.token(t, "alice", time.Hour, ">")
	expired, err := e.signer.Sign(auth.TokenSpec{Subject: "alice", Channels: []string{">"}, TTL: time.Hour, Audience: "tickgate", Now: time.Now().Add(-3 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	otherAud, err := e.signer.Sign(auth.TokenSpec{Subject: "alice", Channels: []string{">"}, TTL: time.Hour, Audience: "elsewhere"})
	if err != nil {
		t.Fatal(err)
	}
	bearer := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }
	tests := []struct {
		name   string
		opts   dialOptions
		status int
		code   proto.HandshakeCode
	}{
		{"no token", dialOptions{}, 401, proto.HandshakeMissingToken},
		{"garbage token", dialOptions{header: bearer("not.a.jwt")}, 401, proto.HandshakeInvalidToken},
		{"expired token", dialOptions{header: bearer(expired)}, 401, proto.HandshakeTokenExpired},
		{"wrong audience", dialOptions{header: bearer(otherAud)}, 401, proto.HandshakeInvalidToken},
		{"query token while disabled", dialOptions{query: "access_token=" + good}, 401, proto.HandshakeMissingToken},
		{"origin not allowed", dialOptions{header: http.Header{"Authorization": {"Bearer " + good}, "Origin": {"https://dash.example.com.evil.com"}}}, 403, proto.HandshakeOriginNotAllowed},
		{"origin null", dialOptions{header: http.Header{"Authorization": {"Bearer " + good}, "Origin": {"null"}}}, 403, proto.HandshakeOriginNotAllowed},
		{"origin other port", dialOptions{header: http.Header{"Authorization": {"Bearer " + good}, "Origin": {"http://localhost:3001"}}}, 403, proto.HandshakeOriginNotAllowed},
		{"origin with a trailing slash", dialOptions{header: http.Header{"Authorization": {"Bearer " + good}, "Origin": {"https://dash.example.com/"}}}, 403, proto.HandshakeOriginNotAllowed},
		{"two origins, the allowed one first", dialOptions{header: http.Header{"Authorization": {"Bearer " + good}, "Origin": {"https://dash.example.com", "https://evil.example"}}}, 403, proto.HandshakeOriginNotAllowed},
		{"unknown subprotocol", dialOptions{header: bearer(good), subprotocols: []string{"chat"}}, 400, proto.HandshakeBadSubprotocol},
		{"bearer entry only", dialOptions{subprotocols: []string{"bearer." + good}}, 400, proto.HandshakeBadSubprotocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, resp, err := e.dial(t, tt.opts)
			if err == nil {
				_ = c.ws.NetConn().Close()
				t.Fatal("handshake succeeded")
			}
			if resp == nil {
				t.Fatalf("no HTTP response: %v", err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Fatalf("content type %q", ct)
			}
			var body map[string]any
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatal(err)
			}
			if body["error"] != string(tt.code) || body["message"] == "" || len(body) != 2 {
				t.Fatalf("body %v, want error %q and a message", body, tt.code)
			}
		})
	}
	if logs := e.logs.String(); strings.Contains(logs, good[strings.LastIndex(good, ".")+1:]) {
		t.Fatal("a token signature reached the log")
	}
}

func TestHandshakeNegotiation(t *testing.T) {
	e := newTestEnv(t, func(c *Config) {
		c.AllowQueryToken = true
		c.AllowedOrigins = []string{"https://dash.example.com"}
	})
	tok := e.token(t, "alice", time.Hour, ">")
	tests := []struct {
		name      string
		opts      dialOptions
		echo      string
		wantCodec string
	}{
		{"no subprotocol gets json", dialOptions{header: http.Header{"Authorization": {"Bearer " + tok}}}, "", "json"},
		{"json", dialOptions{header: http.Header{"Authorization": {"Bearer " + tok}}, subprotocols: []string{proto.SubprotocolJSON}}, proto.SubprotocolJSON, "json"},
		{"msgpack", dialOptions{header: http.Header{"Authorization": {"Bearer " + tok}}, subprotocols: []string{proto.SubprotocolMsgpack}}, proto.SubprotocolMsgpack, "msgpack"},
		{"client order wins", dialOptions{header: http.Header{"Authorization": {"Bearer " + tok}}, subprotocols: []string{"x", proto.SubprotocolMsgpack, proto.SubprotocolJSON}}, proto.SubprotocolMsgpack, "msgpack"},
		{"browser bearer entry never echoed", dialOptions{subprotocols: []string{proto.SubprotocolJSON, "bearer." + tok}}, proto.SubprotocolJSON, "json"},
		{"bearer entry first", dialOptions{subprotocols: []string{"bearer." + tok, proto.SubprotocolMsgpack}}, proto.SubprotocolMsgpack, "msgpack"},
		{"query token when enabled", dialOptions{query: "access_token=" + tok}, "", "json"},
		{"allowed origin", dialOptions{header: http.Header{"Authorization": {"Bearer " + tok}, "Origin": {"https://dash.example.com"}}}, "", "json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, resp, err := e.dial(t, tt.opts)
			if err != nil {
				t.Fatalf("dial: %v %s", err, readBody(resp))
			}
			if got := resp.Header.Values("Sec-WebSocket-Protocol"); strings.Join(got, ",") != tt.echo {
				t.Fatalf("echoed %q, want %q", got, tt.echo)
			}
			w := c.expect(t, proto.TypeWelcome)
			if w.Codec != tt.wantCodec || w.V != 1 || w.Node != "gw-test" || w.HeartbeatMS != 15000 || w.Session == "" {
				t.Fatalf("welcome %s", w.raw)
			}
			if w.Exp < time.Now().Add(59*time.Minute).Unix() {
				t.Fatalf("welcome exp %d", w.Exp)
			}
		})
	}
}

func TestPlainHTTPGetsUpgradeRequired(t *testing.T) {
	e := newTestEnv(t)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: e.cert.ClientConfig()}, Timeout: 5 * time.Second}
	resp, err := client.Get("https://" + e.addr + WebSocketPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusUpgradeRequired {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

func TestTLSOnly12AndUp(t *testing.T) {
	e := newTestEnv(t)
	cfg := e.cert.ClientConfig()
	cfg.MaxVersion = tls.VersionTLS11
	cfg.MinVersion = tls.VersionTLS10
	conn, err := tls.Dial("tcp", e.addr, cfg)
	if err == nil {
		conn.Close()
		t.Fatal("TLS 1.1 handshake succeeded")
	}
}

func TestNormalizeOrigin(t *testing.T) {
	tests := []struct {
		in    string
		slash bool
		want  string
	}{
		{"https://A.Example.com", false, "https://a.example.com"},
		{"https://a.example.com:443", false, "https://a.example.com"},
		{"http://a.example.com:80", false, "http://a.example.com"},
		{"http://a.example.com:8080", false, "http://a.example.com:8080"},
		{"https://a.example.com/", true, "https://a.example.com"},
		{"https://a.example.com/", false, "https://a.example.com/"}, // no browser sends it: matches nothing
		{"null", false, "null"},
		{"https://a.example.com/path", true, "https://a.example.com/path"},
		{"https://u@a.example.com", false, "https://u@a.example.com"},
	}
	for _, tt := range tests {
		if got := normalizeOrigin(tt.in, tt.slash); got != tt.want {
			t.Errorf("normalizeOrigin(%q, %v) = %q, want %q", tt.in, tt.slash, got, tt.want)
		}
	}
}
