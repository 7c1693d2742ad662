package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// testKeys are private keys generated once per test binary (RSA generation
// is slow).
type testKeys struct {
	hmac     []byte // kid "" and kid "hs"
	hmacAlt  []byte // not in any key set
	hmac64   []byte // kid "hs512", 64 bytes
	rsa      *rsa.PrivateKey
	rsaPEM   []byte // PEM of rsa's public key
	ec       *ecdsa.PrivateKey
	ec384    *ecdsa.PrivateKey
	ed       ed25519.PrivateKey
	rsaOther *rsa.PrivateKey
}

var testKeysOnce = sync.OnceValue(func() *testKeys {
	k := &testKeys{
		hmac:    []byte(strings.Repeat("s", 32)),
		hmacAlt: []byte(strings.Repeat("t", 32)),
		hmac64:  []byte(strings.Repeat("u", 64)),
	}
	var err error
	if k.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		panic(err)
	}
	if k.rsaOther, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		panic(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.rsa.PublicKey)
	if err != nil {
		panic(err)
	}
	k.rsaPEM = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	if k.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		panic(err)
	}
	if k.ec384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader); err != nil {
		panic(err)
	}
	if _, k.ed, err = ed25519.GenerateKey(rand.Reader); err != nil {
		panic(err)
	}
	return k
})

// keys returns the shared test keys.
func keys(t testing.TB) *testKeys {
	t.Helper()
	return testKeysOnce()
}

// publicKeys is the key set most tests verify against.
func (k *testKeys) publicKeys() []Key {
	return []Key{
		{ID: "", Material: k.hmac},
		{ID: "hs", Material: k.hmac},
		{ID: "hs512", Material: k.hmac64},
		{ID: "rsa", Material: &k.rsa.PublicKey},
		{ID: "ec", Material: &k.ec.PublicKey},
		{ID: "ec384", Material: &k.ec384.PublicKey},
		{ID: "ed", Material: k.ed.Public().(ed25519.PublicKey)},
	}
}

// testNow is the fixed clock of the token matrix.
var testNow = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

// baseClaims returns valid claims at testNow for the matrix config.
func baseClaims() map[string]any {
	return map[string]any{
		"sub":      "alice",
		"channels": []any{"ticker.*", "book.BTC-USD"},
		"exp":      testNow.Add(time.Hour).Unix(),
		"iat":      testNow.Unix(),
		"aud":      "tickgate",
		"iss":      "issuer-1",
	}
}

// mint signs claims with alg and key; header entries are added (nil values
// delete the entry, e.g. "typ").
func mint(t testing.TB, alg string, key any, header, claims map[string]any) string {
	t.Helper()
	m := jwt.GetSigningMethod(alg)
	if m == nil {
		t.Fatalf("no signing method %s", alg)
	}
	tok := jwt.NewWithClaims(m, jwt.MapClaims(claims))
	for k, v := range header {
		if v == nil {
			delete(tok.Header, k)
		} else {
			tok.Header[k] = v
		}
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign %s: %v", alg, err)
	}
	return s
}

// hs256Header is the JOSE header of mintJSON's tokens when no other is
// needed.
const hs256Header = `{"alg":"HS256","typ":"JWT"}`

// mintJSON signs header and payload, raw JSON texts, byte for byte with alg
// and key: a Go map cannot hold the duplicate keys, key order or number
// spellings (1e10, 1767272400.5) that the claim-name and NumericDate cases
// need.
func mintJSON(t testing.TB, alg string, key any, header, payload string) string {
	t.Helper()
	m := jwt.GetSigningMethod(alg)
	if m == nil {
		t.Fatalf("no signing method %s", alg)
	}
	input := b64u([]byte(header)) + "." + b64u([]byte(payload))
	sig, err := m.Sign(input, key)
	if err != nil {
		t.Fatalf("sign %s: %v", alg, err)
	}
	return input + "." + b64u(sig)
}

// claimsJSON is the JSON object of claims with extra, raw JSON members
// such as `"Channels":[">"]`, appended after them ("" appends none).
func claimsJSON(t testing.TB, claims map[string]any, extra string) string {
	t.Helper()
	b, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	if extra == "" {
		return string(b)
	}
	if len(b) > 2 {
		extra = "," + extra
	}
	return string(b[:len(b)-1]) + extra + "}"
}

// raw builds a token from JSON-encoded header and claims and a signature,
// without any checks.
func raw(t testing.TB, header, claims map[string]any, sig []byte) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return enc(header) + "." + enc(claims) + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// with returns a copy of m with the given changes (nil deletes).
func with(m map[string]any, kv ...any) map[string]any {
	out := maps.Clone(m)
	if out == nil {
		out = map[string]any{}
	}
	for i := 0; i+1 < len(kv); i += 2 {
		k := kv[i].(string)
		if kv[i+1] == nil {
			delete(out, k)
		} else {
			out[k] = kv[i+1]
		}
	}
	return out
}

// newTestVerifier builds a verifier over keys with cfg.
func newTestVerifier(t testing.TB, cfg Config, keys []Key) *Verifier {
	t.Helper()
	ks := NewKeySet()
	if err := ks.Set(keys); err != nil {
		t.Fatalf("Set: %v", err)
	}
	v, err := NewVerifier(cfg, ks)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	return v
}

// assertNoTokenLeak fails if err's text contains any sizeable piece of tok.
func assertNoTokenLeak(t *testing.T, err error, tok string) {
	t.Helper()
	if err == nil {
		return
	}
	msg := err.Error()
	if h, _, ok := strings.Cut(tok, "."); ok {
		var header map[string]any
		if b, err := base64.RawURLEncoding.DecodeString(h); err == nil && json.Unmarshal(b, &header) == nil {
			for k, v := range header {
				if s, ok := v.(string); ok && len(s) >= 5 && strings.Contains(msg, s) {
					t.Fatalf("error %q quotes header %s", msg, k)
				}
			}
		}
	}
	for seg := range strings.SplitSeq(tok, ".") {
		for i := 0; i+8 <= len(seg); i += 4 {
			if strings.Contains(msg, seg[i:i+8]) {
				t.Fatalf("error %q contains part of the token", msg)
			}
		}
	}
}
