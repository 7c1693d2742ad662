package gateway

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tickgate/tickgate/auth"
	"github.com/tickgate/tickgate/feed"
	"github.com/tickgate/tickgate/proto"
)

// keyAuth is an API-key method: the key in an X-API-Key header, or as the
// auth command's credential, names a subscriber and its channels.
type keyAuth map[string]string // key → sub

func (k keyAuth) claims(key string) (*auth.Claims, error) {
	sub, ok := k[key]
	if !ok {
		return nil, &AuthError{Code: proto.HandshakeInvalidToken, Text: "unknown api key"}
	}
	return &auth.Claims{Subject: sub, ExpiresAt: time.Now().Add(time.Hour), IssuedAt: time.Now().Add(-time.Second),
		Patterns: []auth.Pattern{auth.MustParsePattern("ticker.*")}}, nil
}

func (k keyAuth) Request(r *http.Request) (*auth.Claims, error) {
	key := r.Header.Get("X-API-Key")
	if key == "" {
		return nil, &AuthError{Code: proto.HandshakeMissingToken, Text: "missing api key"}
	}
	return k.claims(key)
}

func (k keyAuth) Refresh(key string) (*auth.Claims, error) { return k.claims(key) }

// Another auth method is one Authenticator in the config: the handshake
// and the auth command use it, revocations still apply, and the refusals
// carry its codes.
func TestAuthenticatorMethod(t *testing.T) {
	e := startTestEnv(t, nil, envOptions{}, func(c *Config) {
		c.Authenticator = keyAuth{"k1": "alice", "k2": "alice", "k3": "bob"}
	})
	dial := func(key string) (*testClient, *http.Response, error) {
		h := http.Header{}
		if key != "" {
			h.Set("X-API-Key", key)
		}
		return e.dial(t, dialOptions{subprotocols: []string{proto.SubprotocolJSON}, header: h})
	}
	for key, want := range map[string]string{"": "missing_token", "nope": "invalid_token"} {
		if _, resp, err := dial(key); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("key %q: %v %s", key, err, readBody(resp))
		} else if body := readBody(resp); !strings.Contains(body, want) {
			t.Fatalf("key %q: body %s, want %s", key, body, want)
		}
	}
	c, resp, err := dial("k1")
	if err != nil {
		t.Fatalf("dial: %v %s", err, readBody(resp))
	}
	c.expect(t, proto.TypeWelcome)
	c.send(t, proto.Command{Op: proto.OpAuth, ID: ptr(int64(1)), Token: "k2"})
	c.expect(t, proto.TypeAuthenticated)
	c.send(t, proto.Command{Op: proto.OpAuth, ID: ptr(int64(2)), Token: "k3"})
	if w := c.expect(t, proto.TypeError); w.Code != string(proto.CodeInvalidToken) {
		t.Fatalf("another sub's key: %s", w.raw)
	}
	c.send(t, proto.Command{Op: proto.OpSubscribe, ID: ptr(int64(3)), Channels: []string{"book.BTC-USD"}})
	if w := c.expect(t, proto.TypeError); w.Code != string(proto.CodeForbidden) {
		t.Fatalf("a channel the key does not allow: %s", w.raw)
	}
	e.srv.Revoke(feed.Revocation{Sub: "alice", IssuedBefore: time.Now().Unix() + 1, At: time.Now().Unix()}, "test")
	if code, _ := c.waitClose(t, 5*time.Second); code != uint16(proto.CloseRevoked) {
		t.Fatalf("revoked: close %d", code)
	}
	if _, resp, err := dial("k1"); err == nil || resp.StatusCode != http.StatusUnauthorized || !strings.Contains(readBody(resp), "token_revoked") {
		t.Fatalf("a revoked sub's key: %v", err)
	}
}
