package auth

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func TestSignerRoundTrip(t *testing.T) {
	secret := []byte(strings.Repeat("r", 32))
	tests := []struct {
		name string
		kid  string
		spec TokenSpec
		cfg  Config
	}{
		{name: "minimal", spec: TokenSpec{Subject: "alice", Channels: []string{">"}, TTL: time.Hour}},
		{name: "with kid", kid: "k1", spec: TokenSpec{Subject: "bob", Channels: []string{"ticker.*", "book.BTC-USD"}, TTL: time.Minute}},
		{name: "aud and iss", spec: TokenSpec{Subject: "carol", Channels: []string{"*.BTC-USD"}, TTL: 24 * time.Hour, Audience: "tickgate", Issuer: "tickgate-dev"},
			cfg: Config{Audience: "tickgate", Issuer: "tickgate-dev"}},
		{name: "fixed now", spec: TokenSpec{Subject: "dave", Channels: []string{"trade.>"}, TTL: time.Hour, Now: testNow},
			cfg: Config{Now: func() time.Time { return testNow.Add(30 * time.Minute) }}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewHMACSigner(secret, tt.kid)
			if err != nil {
				t.Fatal(err)
			}
			tok, err := s.Sign(tt.spec)
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			v := newTestVerifier(t, tt.cfg, []Key{{ID: tt.kid, Material: secret}})
			c, err := v.Verify(tok)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if c.Subject != tt.spec.Subject {
				t.Errorf("Subject = %q", c.Subject)
			}
			now := tt.spec.Now
			if now.IsZero() {
				now = time.Now()
			}
			if d := c.ExpiresAt.Sub(now.Add(tt.spec.TTL)); d > time.Second || d < -time.Second {
				t.Errorf("ExpiresAt = %v, want about %v", c.ExpiresAt, now.Add(tt.spec.TTL))
			}
			if len(c.Patterns) != len(tt.spec.Channels) {
				t.Fatalf("Patterns = %v", c.Patterns)
			}
			for i, p := range c.Patterns {
				if p.String() != tt.spec.Channels[i] {
					t.Errorf("pattern %d = %q", i, p)
				}
			}
			header := decodeSegment(t, tok, 0)
			if header["alg"] != "HS256" || header["typ"] != "JWT" {
				t.Errorf("header = %v", header)
			}
			if kid, ok := header["kid"]; (tt.kid != "") != ok || ok && kid != tt.kid {
				t.Errorf("kid header = %v, want %q", kid, tt.kid)
			}
			claims := decodeSegment(t, tok, 1)
			for _, name := range []string{"sub", "channels", "iat", "exp"} {
				if _, ok := claims[name]; !ok {
					t.Errorf("claim %s missing: %v", name, claims)
				}
			}
			if _, ok := claims["aud"]; ok != (tt.spec.Audience != "") {
				t.Errorf("aud presence wrong: %v", claims)
			}
		})
	}
}

func decodeSegment(t *testing.T, tok string, i int) map[string]any {
	t.Helper()
	seg := strings.Split(tok, ".")[i]
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestSignerRefuses(t *testing.T) {
	if _, err := NewHMACSigner([]byte("short"), ""); !errors.Is(err, ErrBadKey) {
		t.Fatalf("short secret: %v", err)
	}
	s, err := NewHMACSigner([]byte(strings.Repeat("r", 32)), "")
	if err != nil {
		t.Fatal(err)
	}
	ok := TokenSpec{Subject: "alice", Channels: []string{"ticker.*"}, TTL: time.Hour}
	tests := []struct {
		name    string
		mutate  func(*TokenSpec)
		wantErr error // nil: any error
	}{
		{name: "no subject", mutate: func(s *TokenSpec) { s.Subject = "" }},
		{name: "long subject", mutate: func(s *TokenSpec) { s.Subject = strings.Repeat("a", MaxSubjectBytes+1) }},
		{name: "control char subject", mutate: func(s *TokenSpec) { s.Subject = "a\x00b" }},
		{name: "no channels", mutate: func(s *TokenSpec) { s.Channels = nil }},
		{name: "bad pattern", mutate: func(s *TokenSpec) { s.Channels = []string{"ticker.*", "tick*"} }, wantErr: ErrBadPattern},
		{name: "zero TTL", mutate: func(s *TokenSpec) { s.TTL = 0 }},
		{name: "negative TTL", mutate: func(s *TokenSpec) { s.TTL = -time.Second }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := ok
			tt.mutate(&spec)
			tok, err := s.Sign(spec)
			if err == nil {
				t.Fatalf("Sign succeeded: %q", tok)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("Sign error = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

// A signer from a secret file and a verifier from the same file agree,
// trailing newline and all; a short secret is refused without quoting it.
func TestHMACSignerFile(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/secret"
	if err := os.WriteFile(path, []byte(strings.Repeat("s", 40)+"\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := NewHMACSignerFile(path, "")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := s.Sign(TokenSpec{Subject: "alice", Channels: []string{">"}, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := LoadHMACSecretFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newTestVerifier(t, Config{}, keys).Verify(tok); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if err := os.WriteFile(path, []byte("shortsecret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := NewHMACSignerFile(path, ""); !errors.Is(err, ErrBadKey) || strings.Contains(err.Error(), "shortsecret") {
		t.Fatalf("short secret: %v", err)
	}
}
