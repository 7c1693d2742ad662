package auth

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"strconv"
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

// fuzzSignedSeeds are validly signed (HS256, kid-less key) tokens whose
// claims or header play on names and number spellings: without a good
// signature the fuzzer would rarely get past the signature check to the
// claims.
func fuzzSignedSeeds(f *testing.F, secret []byte) []string {
	f.Helper()
	base := baseClaims()
	exp := strconv.FormatInt(testNow.Add(time.Hour).Unix(), 10)
	narrow := claimsJSON(f, with(base, "channels", nil, "exp", nil, "iat", nil), "")
	narrow = narrow[:len(narrow)-1] + `,"channels":["ticker.X"],"exp":` + exp
	var out []string
	for _, extra := range []string{
		``,
		`,"Channels":[">"]`,
		`,"CHANNELS":[">"]`,
		`,"channels":[">"]`,
		`,"Exp":` + exp + `0`,
		`,"ſub":"admin"`,
		`,"\u0073ub":"admin"`,
		`,"x":1,"x":2`,
		`,"nbf":"1767268800"`,
		`,"nbf":1.7672688e9`,
		`,"iat":1767268800.25`,
		`,"iat":"1767268800"`,
		`,"aud":["a","tickgate"],"aud":"tickgate"`,
	} {
		out = append(out, mintJSON(f, "HS256", secret, hs256Header, narrow+extra+"}"))
	}
	noExp := claimsJSON(f, with(base, "exp", nil), "")
	for _, e := range []string{`"` + exp + `"`, `"1e10"`, `1e10`, exp + `.5`, exp + `.0000000001`, `-1`, `253402300800`, `null`} {
		out = append(out, mintJSON(f, "HS256", secret, hs256Header, noExp[:len(noExp)-1]+`,"exp":`+e+"}"))
	}
	for _, h := range []string{`{"alg":"none","alg":"HS256"}`, `{"alg":"HS256","\u0061lg":"HS256"}`, `{"alg":"HS256","typ":"JWT","typ":"JWT"}`} {
		out = append(out, mintJSON(f, "HS256", secret, h, narrow+"}"))
	}
	return out
}

// checkAccepted fails t unless tok, which Verify accepted, reads the same
// to any JSON parser: no header parameter or top-level claim twice, no
// case-variant of a claim the node reads, exp/nbf/iat JSON numbers
// without sign or exponent, and claims.ExpiresAt exactly the "exp"
// written (to the nanosecond, digits beyond cut off).
func checkAccepted(t *testing.T, tok string, claims *Claims) {
	t.Helper()
	segs := strings.Split(tok, ".")
	members(t, segs[0])
	var exp json.RawMessage
	for _, m := range members(t, segs[1]) {
		for _, name := range []string{"sub", "exp", "nbf", "iat", "aud", "iss", "channels"} {
			if m.key != name && strings.EqualFold(m.key, name) {
				t.Fatalf("accepted a payload with %q beside %q", m.key, name)
			}
		}
		switch m.key {
		case "exp", "nbf", "iat":
			if v := m.value; len(v) == 0 || v[0] < '0' || v[0] > '9' || bytes.ContainsAny(v, "eE") {
				t.Fatalf("accepted %s = %s", m.key, v)
			}
		}
		if m.key == "exp" {
			exp = m.value
		}
	}
	want, ok := new(big.Rat).SetString(string(exp))
	if !ok {
		t.Fatalf("accepted exp %q", exp)
	}
	got := new(big.Rat).SetInt64(claims.ExpiresAt.Unix())
	got.Add(got, big.NewRat(int64(claims.ExpiresAt.Nanosecond()), 1e9))
	next := new(big.Rat).Add(got, big.NewRat(1, 1e9))
	if got.Cmp(want) > 0 || want.Cmp(next) >= 0 {
		t.Fatalf("ExpiresAt %v is not the exp %s", claims.ExpiresAt, exp)
	}
}

// member is one top-level member of a JSON object.
type member struct {
	key   string
	value json.RawMessage
}

// members decodes seg, base64url JSON of an accepted token, into its
// top-level members, failing t if it is not an object or has a key twice.
func members(t *testing.T, seg string) []member {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatalf("accepted a segment that is not base64url: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if d, err := dec.Token(); err != nil || d != json.Delim('{') {
		t.Fatalf("accepted a segment that is not an object: %q", b)
	}
	var out []member
	seen := map[string]bool{}
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		m := member{key: kt.(string)}
		if err := dec.Decode(&m.value); err != nil {
			t.Fatal(err)
		}
		if seen[m.key] {
			t.Fatalf("accepted a segment with %q twice: %q", m.key, b)
		}
		seen[m.key] = true
		out = append(out, m)
	}
	return out
}

// FuzzVerify feeds arbitrary strings to Verify. It never panics, answers
// exactly one of the sentinels (or valid claims), never quotes the token in
// its error, and allocates boundedly whatever the input. What it accepts
// reads the same to any JSON parser (checkAccepted).
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
	for _, s := range fuzzSignedSeeds(f, k.hmac) {
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
			checkAccepted(t, tok, claims)
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
