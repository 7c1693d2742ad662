package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var b64u = base64.RawURLEncoding.EncodeToString

func rsaJWK(kid string, pub *rsa.PublicKey) map[string]any {
	return map[string]any{"kty": "RSA", "kid": kid, "n": b64u(pub.N.Bytes()), "e": b64u(big.NewInt(int64(pub.E)).Bytes())}
}

func ecJWK(t testing.TB, kid string, pub *ecdsa.PublicKey) map[string]any {
	t.Helper()
	b, err := pub.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	n := (len(b) - 1) / 2
	return map[string]any{"kty": "EC", "kid": kid, "crv": pub.Curve.Params().Name, "x": b64u(b[1 : 1+n]), "y": b64u(b[1+n:])}
}

func okpJWK(kid string, pub ed25519.PublicKey) map[string]any {
	return map[string]any{"kty": "OKP", "kid": kid, "crv": "Ed25519", "x": b64u(pub)}
}

func octJWK(kid string, secret []byte) map[string]any {
	return map[string]any{"kty": "oct", "kid": kid, "k": b64u(secret)}
}

// writeJWKS writes {"keys": keys} to a temp file and returns its path.
func writeJWKS(t *testing.T, keys ...map[string]any) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, "jwks.json", b)
}

func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadJWKSFileRoundTrip(t *testing.T) {
	k := keys(t)
	edPub := k.ed.Public().(ed25519.PublicKey)
	path := writeJWKS(t,
		with(rsaJWK("rsa", &k.rsa.PublicKey), "alg", "RS256", "use", "sig"),
		ecJWK(t, "ec", &k.ec.PublicKey),
		with(okpJWK("ed", edPub), "key_ops", []any{"verify"}),
		octJWK("hs", k.hmac),
		with(rsaJWK("enc", &k.rsaOther.PublicKey), "use", "enc"), // skipped
	)
	got, err := LoadJWKSFile(path)
	if err != nil {
		t.Fatalf("LoadJWKSFile: %v", err)
	}
	if len(got) != 4 {
		t.Fatalf("got %d keys, want 4: %+v", len(got), got)
	}
	if got[0].ID != "rsa" || got[0].Algorithm != "RS256" {
		t.Errorf("key 0 = %q/%q", got[0].ID, got[0].Algorithm)
	}
	v := newTestVerifier(t, matrixConfig(), got)
	tests := []struct {
		name string
		tok  string
		want error
	}{
		{name: "RS256", tok: mint(t, "RS256", k.rsa, map[string]any{"kid": "rsa"}, baseClaims())},
		{name: "ES256", tok: mint(t, "ES256", k.ec, map[string]any{"kid": "ec"}, baseClaims())},
		{name: "EdDSA", tok: mint(t, "EdDSA", k.ed, map[string]any{"kid": "ed"}, baseClaims())},
		{name: "HS256", tok: mint(t, "HS256", k.hmac, map[string]any{"kid": "hs"}, baseClaims())},
		{name: "enc key was skipped", tok: mint(t, "RS256", k.rsaOther, map[string]any{"kid": "enc"}, baseClaims()), want: ErrInvalidToken},
		{name: "no kid, no kidless key", tok: mint(t, "HS256", k.hmac, nil, baseClaims()), want: ErrInvalidToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Verify(tt.tok)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestParseJWKSErrors(t *testing.T) {
	k := keys(t)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ec := ecJWK(t, "ec", &k.ec.PublicKey)
	offCurve := with(ec, "y", ec["x"])
	tests := []struct {
		name string
		json string
		keys []map[string]any
		want string // substring of the error
	}{
		{name: "not JSON", json: "{keys:", want: "does not parse"},
		{name: "no keys member", json: `{"kty":"oct"}`, want: "no \"keys\""},
		{name: "keys not an array", json: `{"keys":{}}`, want: "does not parse"},
		{name: "empty set", json: `{"keys":[]}`, want: "no signature verification key"},
		{name: "key not an object", json: `{"keys":[1]}`, want: "key 0"},
		{name: "missing kty", keys: []map[string]any{{"kid": "a"}}, want: `key 0 (kid "a"): missing "kty"`},
		{name: "unknown kty", keys: []map[string]any{{"kty": "XYZ", "kid": "a"}}, want: `kty "XYZ"`},
		{name: "RSA 1024 bits", keys: []map[string]any{rsaJWK("small", &small.PublicKey)}, want: `key 0 (kid "small")`},
		{name: "RSA missing e", keys: []map[string]any{with(rsaJWK("r", &k.rsa.PublicKey), "e", nil)}, want: `missing "e"`},
		{name: "RSA bad base64 n", keys: []map[string]any{with(rsaJWK("r", &k.rsa.PublicKey), "n", "!!")}, want: `"n" is not base64url`},
		{name: "RSA even exponent", keys: []map[string]any{with(rsaJWK("r", &k.rsa.PublicKey), "e", b64u([]byte{2}))}, want: "exponent"},
		{name: "RSA private material", keys: []map[string]any{with(rsaJWK("r", &k.rsa.PublicKey), "d", "AAAA")}, want: "private"},
		{name: "EC P-224", keys: []map[string]any{ecJWK(t, "p224", &p224.PublicKey)}, want: `EC curve "P-224"`},
		{name: "EC off curve", keys: []map[string]any{offCurve}, want: "EC point"},
		{name: "EC short x", keys: []map[string]any{with(ec, "x", b64u([]byte{1, 2, 3}))}, want: "32 bytes"},
		{name: "EC alg mismatch", keys: []map[string]any{with(ec, "alg", "RS256")}, want: "does not fit"},
		{name: "EC P-256 pinned to ES384", keys: []map[string]any{with(ec, "alg", "ES384")}, want: "does not fit"},
		{name: "unknown alg", keys: []map[string]any{with(ec, "alg", "ES999")}, want: "not supported"},
		{name: "alg none", keys: []map[string]any{with(octJWK("o", k.hmac), "alg", "none")}, want: "not supported"},
		{name: "OKP X25519", keys: []map[string]any{with(okpJWK("x", k.ed.Public().(ed25519.PublicKey)), "crv", "X25519")}, want: `OKP curve "X25519"`},
		{name: "OKP short", keys: []map[string]any{with(okpJWK("x", k.ed.Public().(ed25519.PublicKey)), "x", b64u([]byte{1}))}, want: "32 bytes"},
		{name: "oct short", keys: []map[string]any{octJWK("short", []byte("too-short"))}, want: `key 0 (kid "short")`},
		{name: "oct missing k", keys: []map[string]any{with(octJWK("o", k.hmac), "k", nil)}, want: `missing "k"`},
		{name: "duplicate kid same kty", keys: []map[string]any{octJWK("dup", k.hmac), octJWK("dup", k.hmac64)}, want: `key 1 (kid "dup")`},
		{name: "only encryption keys", keys: []map[string]any{with(rsaJWK("enc", &k.rsa.PublicKey), "use", "enc")}, want: "no signature verification key"},
		{name: "key_ops without verify", keys: []map[string]any{with(octJWK("o", k.hmac), "key_ops", []any{"sign"})}, want: "no signature verification key"},
		{name: "error names second key", keys: []map[string]any{octJWK("ok", k.hmac), {"kty": "RSA", "kid": "bad"}}, want: `key 1 (kid "bad")`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var path string
			if tt.keys != nil {
				path = writeJWKS(t, tt.keys...)
			} else {
				path = writeFile(t, "jwks.json", []byte(tt.json))
			}
			got, err := LoadJWKSFile(path)
			if err == nil {
				t.Fatalf("LoadJWKSFile succeeded: %+v", got)
			}
			if !errors.Is(err, ErrBadKey) {
				t.Fatalf("error %v is not ErrBadKey", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not contain %q", err, tt.want)
			}
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error %q does not name the file", err)
			}
		})
	}
}

func TestParseJWKSAcceptsPaddingAndSameKidAcrossKty(t *testing.T) {
	k := keys(t)
	oct := octJWK("k1", k.hmac)
	oct["k"] = base64.URLEncoding.EncodeToString(k.hmac) // padded
	got, err := ParseJWKS(mustJSON(t, map[string]any{"keys": []any{oct, rsaJWK("k1", &k.rsa.PublicKey)}}))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("got %d keys", len(got))
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestLoadJWKSFileMissing(t *testing.T) {
	if _, err := LoadJWKSFile(filepath.Join(t.TempDir(), "nope.json")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v, want ErrNotExist", err)
	}
}

func TestLoadHMACSecretFile(t *testing.T) {
	secret := strings.Repeat("k", 32)
	tests := []struct {
		name    string
		content string
		want    string
		wantErr bool
	}{
		{name: "exact", content: secret, want: secret},
		{name: "trailing newline", content: secret + "\n", want: secret},
		{name: "trailing CRLF", content: secret + "\r\n", want: secret},
		{name: "short", content: "short-secret\n", wantErr: true},
		{name: "31 bytes plus newline", content: secret[1:] + "\n", wantErr: true},
		{name: "empty", content: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, "secret", []byte(tt.content))
			got, err := LoadHMACSecretFile(path)
			if tt.wantErr {
				if !errors.Is(err, ErrBadKey) {
					t.Fatalf("err = %v, want ErrBadKey", err)
				}
				if tt.content != "" && strings.Contains(err.Error(), strings.TrimSpace(tt.content)) {
					t.Fatalf("error quotes the secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0].ID != "" || string(got[0].Material.([]byte)) != tt.want {
				t.Fatalf("got %+v", got)
			}
		})
	}
	if _, err := LoadHMACSecretFile(filepath.Join(t.TempDir(), "nope")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

func TestHMACSecretFileVerifies(t *testing.T) {
	secret := []byte(strings.Repeat("z", 40))
	ks, err := LoadHMACSecretFile(writeFile(t, "secret", append(secret, '\n')))
	if err != nil {
		t.Fatal(err)
	}
	v := newTestVerifier(t, Config{Now: func() time.Time { return testNow }}, ks)
	if _, err := v.Verify(mint(t, "HS256", secret, nil, baseClaims())); err != nil {
		t.Fatal(err)
	}
}
