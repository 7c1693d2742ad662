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
	"errors"
	"math"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func bigOne() *big.Int { return big.NewInt(1) }

func b64std(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// TestKeyURLHeadersNeverFollowed: jku, x5u, jwk and x5c name or carry keys;
// a verifier that fetched or used them would let anyone sign. Every case
// points at (or embeds) a key the attacker holds, served by a local
// server that counts requests: it must see none, and only the set's own
// keys may verify.
func TestKeyURLHeadersNeverFollowed(t *testing.T) {
	k := keys(t)
	attacker, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	attackerJWK := with(rsaJWK("attacker", &attacker.PublicKey), "alg", "RS256")
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []any{attackerJWK}})
	}))
	t.Cleanup(srv.Close)
	certDER := selfSignedDER(t, attacker)
	base := baseClaims()

	tests := []struct {
		name   string
		token  string
		ok     bool
		reason string
	}{
		{name: "jku with our key's kid, signed by us", ok: true,
			token: mint(t, "RS256", k.rsa, map[string]any{"kid": "rsa", "jku": srv.URL + "/jwks"}, base)},
		{name: "x5u with our key's kid, signed by us", ok: true,
			token: mint(t, "RS256", k.rsa, map[string]any{"kid": "rsa", "x5u": srv.URL + "/cert.pem"}, base)},
		{name: "jku naming the attacker's kid", reason: "unknown key id",
			token: mint(t, "RS256", attacker, map[string]any{"kid": "attacker", "jku": srv.URL + "/jwks"}, base)},
		{name: "jku with our kid, signed by the attacker", reason: "bad signature",
			token: mint(t, "RS256", attacker, map[string]any{"kid": "rsa", "jku": srv.URL + "/jwks"}, base)},
		{name: "x5u with our kid, signed by the attacker", reason: "bad signature",
			token: mint(t, "RS256", attacker, map[string]any{"kid": "rsa", "x5u": srv.URL + "/cert.pem"}, base)},
		{name: "embedded jwk, signed by the attacker", reason: "bad signature",
			token: mint(t, "RS256", attacker, map[string]any{"kid": "rsa", "jwk": attackerJWK}, base)},
		{name: "embedded jwk, no kid", reason: "does not fit",
			token: mint(t, "RS256", attacker, map[string]any{"jwk": attackerJWK}, base)},
		{name: "x5c chain, signed by the attacker", reason: "bad signature",
			token: mint(t, "RS256", attacker, map[string]any{"kid": "rsa", "x5c": []any{certDER}}, base)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newTestVerifier(t, matrixConfig(), k.publicKeys())
			_, err := v.Verify(tt.token)
			assertNoTokenLeak(t, err, tt.token)
			switch {
			case tt.ok && err != nil:
				t.Fatalf("Verify: %v", err)
			case !tt.ok && !errors.Is(err, ErrInvalidToken):
				t.Fatalf("Verify = %v, want ErrInvalidToken", err)
			case !tt.ok && !strings.Contains(err.Error(), tt.reason):
				t.Fatalf("Verify = %v, want reason %q", err, tt.reason)
			}
		})
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the key URL server was contacted %d times", n)
	}
}

// selfSignedDER is a base64 (standard) DER certificate for key, as x5c holds.
func selfSignedDER(t *testing.T, key *rsa.PrivateKey) string {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: bigOne(), NotAfter: time.Now().Add(time.Hour)},
		&x509.Certificate{SerialNumber: bigOne()}, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return b64std(der)
}

// TestClaimTimesOutOfRange: exp/nbf/iat beyond what an int64 of seconds
// holds used to convert to a platform-dependent time (on amd64 an nbf of
// 1e300 read as long past, so the token was accepted). Such values are
// now refused as exponent notation before any conversion (json.Marshal
// writes 1e300 so), or as out of range when written out in digits.
func TestClaimTimesOutOfRange(t *testing.T) {
	k := keys(t)
	v := newTestVerifier(t, matrixConfig(), k.publicKeys())
	hs := func(kv ...any) string { return mint(t, "HS256", k.hmac, nil, with(baseClaims(), kv...)) }
	tests := []struct {
		name   string
		token  string
		want   error
		reason string
	}{
		{name: "nbf 1e300", token: hs("nbf", 1e300), want: ErrInvalidToken, reason: "nbf is in exponent notation"},
		{name: "nbf 1e19", token: hs("nbf", 1e19), want: ErrInvalidToken, reason: "nbf"},
		{name: "nbf -1e300", token: hs("nbf", -1e300), want: ErrInvalidToken, reason: "nbf out of range"},
		{name: "nbf negative", token: hs("nbf", -5), want: ErrInvalidToken, reason: "nbf out of range"},
		{name: "exp 1e300", token: hs("exp", 1e300), want: ErrInvalidToken, reason: "exp is in exponent notation"},
		{name: "exp max float", token: hs("exp", math.MaxFloat64), want: ErrInvalidToken, reason: "exp is in exponent notation"},
		{name: "exp year 10000", token: hs("exp", 253402300800), want: ErrInvalidToken, reason: "exp out of range"},
		{name: "exp end of 9999", token: hs("exp", 253402300799)},
		{name: "iat -1e300", token: hs("iat", -1e300), want: ErrInvalidToken, reason: "iat out of range"},
		{name: "exp 0 is merely expired", token: hs("exp", 0), want: ErrTokenExpired},
		{name: "exp fractional", token: hs("exp", float64(testNow.Unix())+3600.5)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Verify(tt.token)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.reason) {
				t.Fatalf("Verify = %v, want %v with %q", err, tt.want, tt.reason)
			}
		})
	}
}

// TestTypHeader: only an absent typ or "JWT" passes, whatever its case.
func TestTypHeader(t *testing.T) {
	k := keys(t)
	v := newTestVerifier(t, matrixConfig(), k.publicKeys())
	for _, tc := range []struct {
		typ any
		ok  bool
	}{
		{"JWT", true}, {"jwt", true}, {"Jwt", true},
		{"at+jwt", false}, {"application/at+jwt", false}, {"JWS", false}, {"JWE", false}, {"", false}, {" JWT", false},
		{7, false}, {true, false}, {[]any{"JWT"}, false}, {map[string]any{"v": "JWT"}, false},
	} {
		typ, ok := tc.typ, tc.ok
		tok := mint(t, "HS256", k.hmac, map[string]any{"typ": typ}, baseClaims())
		_, err := v.Verify(tok)
		if ok != (err == nil) {
			t.Errorf("typ %#v: Verify = %v, want ok=%v", typ, err, ok)
		}
		if err != nil && !strings.Contains(err.Error(), "typ") {
			t.Errorf("typ %#v: reason %v does not name typ", typ, err)
		}
	}
}

// TestUnknownKidRefusedAfterRotation follows a rotation through Replace as
// a reloader does: a kid removed from the set is refused, an added one
// accepted, and a kid that never existed refused throughout.
func TestUnknownKidRefusedAfterRotation(t *testing.T) {
	k := keys(t)
	ks := NewKeySet()
	ks.Replace([]Key{{ID: "old", Material: &k.rsa.PublicKey}})
	v, err := NewVerifier(matrixConfig(), ks)
	if err != nil {
		t.Fatal(err)
	}
	oldTok := mint(t, "RS256", k.rsa, map[string]any{"kid": "old"}, baseClaims())
	newTok := mint(t, "ES256", k.ec, map[string]any{"kid": "new"}, baseClaims())
	never := mint(t, "ES256", k.ec, map[string]any{"kid": "never"}, baseClaims())
	check := func(stage string, tok string, ok bool) {
		t.Helper()
		_, err := v.Verify(tok)
		if ok != (err == nil) {
			t.Fatalf("%s: Verify = %v, want ok=%v", stage, err, ok)
		}
		if err != nil && !strings.Contains(err.Error(), "unknown key id") {
			t.Fatalf("%s: reason %v", stage, err)
		}
	}
	check("before: old", oldTok, true)
	check("before: new", newTok, false)
	ks.Replace([]Key{{ID: "old", Material: &k.rsa.PublicKey}, {ID: "new", Material: &k.ec.PublicKey}})
	check("overlap: old", oldTok, true)
	check("overlap: new", newTok, true)
	ks.Replace([]Key{{ID: "new", Material: &k.ec.PublicKey}})
	check("after: old", oldTok, false)
	check("after: new", newTok, true)
	check("after: never", never, false)
}

func TestParsePublicKeyPEM(t *testing.T) {
	k := keys(t)
	pkix := func(pub any) []byte {
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	}
	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(k.rsa)
	if err != nil {
		t.Fatal(err)
	}
	privPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER})
	edPub := k.ed.Public().(ed25519.PublicKey)
	tests := []struct {
		name   string
		data   []byte
		ok     bool
		reason string
	}{
		{name: "RSA PKIX", data: pkix(&k.rsa.PublicKey), ok: true},
		{name: "RSA PKCS1", data: pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&k.rsa.PublicKey)}), ok: true},
		{name: "ECDSA P-256", data: pkix(&k.ec.PublicKey), ok: true},
		{name: "ECDSA P-384", data: pkix(&k.ec384.PublicKey), ok: true},
		{name: "Ed25519", data: pkix(edPub), ok: true},
		{name: "text around the block", data: append(append([]byte("comment line\n"), pkix(edPub)...), "trailer\n"...), ok: true},
		{name: "ECDSA P-224", data: pkix(&p224.PublicKey), reason: "not supported"},
		{name: "RSA 1024", data: pkix(&small.PublicKey), reason: "bits"},
		{name: "private key", data: privPEM, reason: "private key"},
		{name: "private key after a public one", data: append(pkix(edPub), privPEM...), reason: "private key"},
		{name: "two public keys", data: append(pkix(edPub), pkix(&k.ec.PublicKey)...), reason: "more than one"},
		{name: "certificate", data: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}}), reason: "CERTIFICATE"},
		{name: "garbage DER", data: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte("SECRET-LOOKING-BYTES")}), reason: "does not parse"},
		{name: "no block", data: []byte("hello"), reason: "no PEM"},
		{name: "empty", data: nil, reason: "no PEM"},
		{name: "JWKS is not PEM", data: []byte(`{"keys":[]}`), reason: "no PEM"},
		{name: "PEM headers", data: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED"}, Bytes: []byte{1}}), reason: "encrypted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pub, err := ParsePublicKeyPEM(tt.data)
			if tt.ok {
				if err != nil {
					t.Fatalf("ParsePublicKeyPEM: %v", err)
				}
				if err := (Key{Material: pub}).Validate(); err != nil {
					t.Fatalf("parsed key does not validate: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrBadKey) || !strings.Contains(err.Error(), tt.reason) {
				t.Fatalf("ParsePublicKeyPEM = %v, want ErrBadKey with %q", err, tt.reason)
			}
			if strings.Contains(err.Error(), "SECRET") {
				t.Fatalf("error quotes the input: %v", err)
			}
		})
	}
}

// TestPublicKeyFilesVerify: keys loaded from PEM files verify the tokens of
// their private halves under the given kid, and the algorithm binding
// still holds (HS256 signed with the PEM bytes as the secret is refused).
func TestPublicKeyFilesVerify(t *testing.T) {
	k := keys(t)
	edDER, err := x509.MarshalPKIXPublicKey(k.ed.Public())
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalPKIXPublicKey(&k.ec.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	var set []Key
	for kid, data := range map[string][]byte{
		"rsa": k.rsaPEM,
		"ed":  pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: edDER}),
		"":    pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: ecDER}),
	} {
		keys, err := LoadPublicKeyFile(writeFile(t, "key.pem", data), kid)
		if err != nil {
			t.Fatalf("kid %q: %v", kid, err)
		}
		set = append(set, keys...)
	}
	v := newTestVerifier(t, matrixConfig(), set)
	tests := []struct {
		name string
		tok  string
		ok   bool
	}{
		{"RS256 kid rsa", mint(t, "RS256", k.rsa, map[string]any{"kid": "rsa"}, baseClaims()), true},
		{"EdDSA kid ed", mint(t, "EdDSA", k.ed, map[string]any{"kid": "ed"}, baseClaims()), true},
		{"ES256 without kid", mint(t, "ES256", k.ec, nil, baseClaims()), true},
		{"HS256 with the RSA PEM as secret", mint(t, "HS256", k.rsaPEM, map[string]any{"kid": "rsa"}, baseClaims()), false},
		{"EdDSA under the RSA kid", mint(t, "EdDSA", k.ed, map[string]any{"kid": "rsa"}, baseClaims()), false},
	}
	for _, tt := range tests {
		if _, err := v.Verify(tt.tok); tt.ok != (err == nil) {
			t.Errorf("%s: Verify = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
	if _, err := LoadPublicKeyFile(writeFile(t, "empty.pem", nil), "x"); err == nil {
		t.Fatal("empty PEM file loaded")
	}
}

// TestKeyFileErrorsQuoteNoSecret: a key file that does not parse names the
// problem and its place, never the bytes around it (a JWKS may hold HMAC
// secrets; encoding/json's own messages quote the offending character).
func TestKeyFileErrorsQuoteNoSecret(t *testing.T) {
	const secret = "Zq9SUPERSECRETVALUE0123456789abcdefXY"
	for name, data := range map[string]string{
		"syntax error inside a secret":  `{"keys":[{"kty":"oct","k":"` + secret + `"` + secret + `}]}`,
		"truncated in a secret":         `{"keys":[{"kty":"oct","k":"` + secret,
		"number where a key belongs":    `{"keys":[1234567890123]}`,
		"secret where an array belongs": `{"keys":"` + secret + `"}`,
		"bare secret":                   secret,
	} {
		_, err := ParseJWKS([]byte(data))
		if !errors.Is(err, ErrBadKey) {
			t.Fatalf("%s: ParseJWKS = %v", name, err)
		}
		msg := err.Error()
		for i := 0; i+4 <= len(secret); i++ {
			if strings.Contains(msg, secret[i:i+4]) {
				t.Fatalf("%s: error %q quotes part of the secret", name, msg)
			}
		}
		if strings.Contains(msg, "1234567890123") || strings.Contains(msg, "'") {
			t.Fatalf("%s: error %q quotes the input", name, msg)
		}
	}
	_, err := LoadHMACSecretFile(writeFile(t, "short", []byte("short-secret-XYZ\n")))
	if err == nil || strings.Contains(err.Error(), "XYZ") {
		t.Fatalf("short secret: %v", err)
	}
}

// TestVerifyOversizedInputsCheaply: inputs far over the token limit are
// refused before any parsing, in constant time and with no allocation
// proportional to their size.
func TestVerifyOversizedInputsCheaply(t *testing.T) {
	k := keys(t)
	v := newTestVerifier(t, matrixConfig(), k.publicKeys())
	huge := strings.Repeat(".", 1<<20)
	allocs := testing.AllocsPerRun(20, func() {
		if _, err := v.Verify(huge); !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("Verify(1 MiB of dots) = %v", err)
		}
	})
	if allocs > 1 {
		t.Fatalf("refusing a 1 MiB token allocates %v times", allocs)
	}
	// A header just under the limit that is one long JSON string.
	hdr := b64u([]byte(`{"alg":"HS256","x":"` + strings.Repeat("A", MaxTokenBytes/2) + `"}`))
	if _, err := v.Verify(hdr + ".e30.sig"); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("huge header: %v", err)
	}
}
