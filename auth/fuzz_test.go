package auth

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tickgate/tickgate/internal/memtest"
)

// maxVerifyAlloc bounds what one Verify may allocate: tokens are at most
// 8 KiB, and nothing in them may make the verifier allocate more than a
// small multiple of that.
const maxVerifyAlloc = 4 << 20

// fuzzSeedTokens are the f.Add seeds of FuzzVerify beyond valid tokens.
func fuzzSeedTokens() []string {
	enc := base64.RawURLEncoding.EncodeToString
	hdr := enc([]byte(`{"alg":"HS256","typ":"JWT"}`))
	body := enc([]byte(`{"sub":"a","channels":[">"],"exp":1767272400}`))
	return []string{
		"",
		".",
		"..",
		"...",
		strings.Repeat(".", 1<<20),         // a megabyte of dots
		strings.Repeat(".", MaxTokenBytes), // dots just within the limit
		hdr + "." + body,                   // 2 segments
		hdr + "." + body + ".c2ln.c2ln",    // 4 segments
		hdr + "." + body + ".a.b.c",        // 6 segments (JWE-like)
		"!!!." + body + ".sig",             // bad base64 in the header
		hdr + ".***.sig",                   // bad base64 in the claims
		hdr + "." + body + ".%%%",          // bad base64 in the signature
		hdr + "=." + body + ".sig",         // padding
		enc([]byte(`{"alg":"HS256","x":"`+strings.Repeat("A", MaxTokenBytes-64)+`"}`)) + ".e30.sig", // huge header
		enc([]byte(`{"alg":"none"}`)) + "." + body + ".",
		enc([]byte(`{"alg":"None","typ":"JWT"}`)) + "." + body + ".",
		enc([]byte(`{"alg":"HS256","kid":7}`)) + "." + body + ".sig",
		enc([]byte(`{"alg":"HS256","kid":"../../etc/passwd"}`)) + "." + body + ".sig",
		enc([]byte(`{"alg":"HS256","crit":["exp"]}`)) + "." + body + ".sig",
		enc([]byte(`{"alg":"RS256","jku":"http://127.0.0.1:1/jwks","kid":"rsa"}`)) + "." + body + ".sig",
		enc([]byte(`{"alg":"HS256","alg":"none"}`)) + "." + body + ".sig",
		enc([]byte(`{"alg":"HS256"}`)) + "." + enc([]byte(`{"exp":1e300,"nbf":-1e300,"sub":"a","channels":[">"]}`)) + ".sig",
		enc([]byte(`{"alg":"HS256"}`)) + "." + enc([]byte(`[`+strings.Repeat("[", 4000)+`]`)) + ".sig",
		enc([]byte(`{"alg":"HS256"}`)) + "." + enc([]byte(`{"channels":[`+strings.Repeat(`">",`, 1500)+`">"]}`)) + ".sig",
		enc([]byte(strings.Repeat("{", 3000))) + ".e30.sig",
		"eyJ" + strings.Repeat("\x00", 64),
		"Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig",
		"\xff\xfe.\xff.\xff",
	}
}

// FuzzVerify feeds arbitrary strings to Verify. It never panics, answers
// exactly one of the sentinels (or valid claims), never quotes the token in
// its error, and allocates boundedly whatever the input.
func FuzzVerify(f *testing.F) {
	k := keys(f)
	base := baseClaims()
	for _, tok := range []string{
		mint(f, "HS256", k.hmac, nil, base),
		mint(f, "HS256", k.hmac, map[string]any{"kid": "hs"}, base),
		mint(f, "RS256", k.rsa, map[string]any{"kid": "rsa"}, base),
		mint(f, "ES256", k.ec, map[string]any{"kid": "ec"}, base),
		mint(f, "EdDSA", k.ed, map[string]any{"kid": "ed"}, base),
		mint(f, "HS256", k.rsaPEM, map[string]any{"kid": "rsa"}, base),
		mint(f, "HS256", k.hmac, nil, with(base, "exp", testNow.Add(-time.Hour).Unix())),
	} {
		f.Add(tok)
	}
	for _, s := range fuzzSeedTokens() {
		f.Add(s)
	}
	ks := NewKeySet()
	if err := ks.Set(k.publicKeys()); err != nil {
		f.Fatal(err)
	}
	v, err := NewVerifier(matrixConfig(), ks)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		before := memtest.HeapAllocated()
		claims, err := v.Verify(tok)
		if n := memtest.HeapAllocated() - before; n > maxVerifyAlloc {
			t.Fatalf("Verify of a %d-byte token allocated %d bytes", len(tok), n)
		}
		if err == nil {
			if claims == nil || claims.Subject == "" || len(claims.Subject) > MaxSubjectBytes ||
				claims.ExpiresAt.IsZero() || len(claims.Patterns) == 0 || len(claims.Patterns) > MaxChannels {
				t.Fatalf("accepted with incomplete claims %+v", claims)
			}
			if len(tok) > MaxTokenBytes {
				t.Fatalf("accepted a %d-byte token", len(tok))
			}
			return
		}
		if claims != nil {
			t.Fatal("claims returned with an error")
		}
		matched := 0
		for _, s := range []error{ErrInvalidToken, ErrTokenExpired, ErrMissingToken} {
			if errors.Is(err, s) {
				matched++
			}
		}
		if matched != 1 {
			t.Fatalf("error %v matches %d sentinels", err, matched)
		}
		msg := err.Error()
		if len(msg) > 120 {
			t.Fatalf("error of %d bytes: %q", len(msg), msg)
		}
		if len(tok) <= MaxTokenBytes {
			for i := 0; i+16 <= len(tok); i += 4 {
				if w := tok[i : i+16]; !plainWords(w) && strings.Contains(msg, w) {
					t.Fatalf("error %q quotes the token", msg)
				}
			}
		}
	})
}

// plainWords reports whether s could be a piece of the fixed English
// reasons (lower-case words, digits, spaces and light punctuation), which
// a token window may equal by chance.
func plainWords(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte(" ():,-", c) >= 0) {
			return false
		}
	}
	return true
}
