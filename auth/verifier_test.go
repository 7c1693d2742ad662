package auth

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

// matrixConfig is the verifier config of the token matrix.
func matrixConfig() Config {
	return Config{Audience: "tickgate", Issuer: "issuer-1", Now: func() time.Time { return testNow }}
}

func TestVerifyMatrix(t *testing.T) {
	k := keys(t)
	base := baseClaims()
	hs := func(claims map[string]any) func(t *testing.T) string {
		return func(t *testing.T) string { return mint(t, "HS256", k.hmac, nil, claims) }
	}
	at := func(d time.Duration) int64 { return testNow.Add(d).Unix() }
	// hsJSON signs claims plus extra raw members (see claimsJSON) with
	// HS256: for what a Go map cannot express.
	hsJSON := func(claims map[string]any, extra string) func(t *testing.T) string {
		return func(t *testing.T) string {
			return mintJSON(t, "HS256", k.hmac, hs256Header, claimsJSON(t, claims, extra))
		}
	}
	// narrow holds one ticker only: the grant a case-variant or duplicate
	// "channels" tries to widen.
	narrow := with(base, "channels", []any{"ticker.X"})
	noExp := with(base, "exp", nil)
	yearAhead := strconv.FormatInt(at(365*24*time.Hour), 10)
	many := make([]any, MaxChannels+1)
	for i := range many {
		many[i] = "*"
	}

	tests := []struct {
		name   string
		cfg    func(*Config)
		keys   []Key // nil: k.publicKeys()
		token  func(t *testing.T) string
		want   error  // nil: accepted
		reason string // substring of the error, when set
	}{
		// Each algorithm, valid.
		{name: "valid HS256 without kid", token: hs(base)},
		{name: "valid HS256 with kid", token: func(t *testing.T) string {
			return mint(t, "HS256", k.hmac, map[string]any{"kid": "hs"}, base)
		}},
		{name: "valid RS256", token: func(t *testing.T) string {
			return mint(t, "RS256", k.rsa, map[string]any{"kid": "rsa"}, base)
		}},
		{name: "valid ES256", token: func(t *testing.T) string {
			return mint(t, "ES256", k.ec, map[string]any{"kid": "ec"}, base)
		}},
		{name: "valid EdDSA", token: func(t *testing.T) string {
			return mint(t, "EdDSA", k.ed, map[string]any{"kid": "ed"}, base)
		}},
		{name: "valid HS512 when allowed", cfg: func(c *Config) { c.Algorithms = []string{"HS512"} }, token: func(t *testing.T) string {
			return mint(t, "HS512", k.hmac64, map[string]any{"kid": "hs512"}, base)
		}},
		{name: "valid ES384 when allowed", cfg: func(c *Config) { c.Algorithms = []string{"ES384"} }, token: func(t *testing.T) string {
			return mint(t, "ES384", k.ec384, map[string]any{"kid": "ec384"}, base)
		}},

		// Algorithm attacks and the allow-list.
		{name: "alg none", want: ErrInvalidToken, reason: "algorithm not allowed", token: func(t *testing.T) string {
			return raw(t, map[string]any{"alg": "none", "typ": "JWT"}, base, nil)
		}},
		{name: "alg None", want: ErrInvalidToken, token: func(t *testing.T) string {
			return raw(t, map[string]any{"alg": "None", "typ": "JWT"}, base, nil)
		}},
		{name: "alg NONE with kid and signature", want: ErrInvalidToken, token: func(t *testing.T) string {
			return raw(t, map[string]any{"alg": "NONE", "kid": "hs"}, base, []byte("sig"))
		}},
		{name: "alg missing", want: ErrInvalidToken, token: func(t *testing.T) string {
			return raw(t, map[string]any{"typ": "JWT"}, base, []byte("sig"))
		}},
		{name: "HS256 signed with the RSA public key PEM", want: ErrInvalidToken, reason: "does not fit", token: func(t *testing.T) string {
			return mint(t, "HS256", k.rsaPEM, map[string]any{"kid": "rsa"}, base)
		}},
		{name: "HS512 when list is HS256 only", cfg: func(c *Config) { c.Algorithms = []string{"HS256"} }, want: ErrInvalidToken, reason: "algorithm not allowed", token: func(t *testing.T) string {
			return mint(t, "HS512", k.hmac64, map[string]any{"kid": "hs512"}, base)
		}},
		{name: "RS256 when list is HS256 only", cfg: func(c *Config) { c.Algorithms = []string{"HS256"} }, want: ErrInvalidToken, reason: "algorithm not allowed", token: func(t *testing.T) string {
			return mint(t, "RS256", k.rsa, map[string]any{"kid": "rsa"}, base)
		}},
		{name: "HS512 with a 32-byte secret", cfg: func(c *Config) { c.Algorithms = []string{"HS512"} }, want: ErrInvalidToken, reason: "does not fit", token: func(t *testing.T) string {
			return mint(t, "HS512", k.hmac, map[string]any{"kid": "hs"}, base)
		}},
		{name: "ES256 token naming the RSA key", want: ErrInvalidToken, reason: "does not fit", token: func(t *testing.T) string {
			return mint(t, "ES256", k.ec, map[string]any{"kid": "rsa"}, base)
		}},
		{name: "ES256 token naming the P-384 key", want: ErrInvalidToken, reason: "does not fit", token: func(t *testing.T) string {
			return mint(t, "ES256", k.ec, map[string]any{"kid": "ec384"}, base)
		}},
		{name: "EdDSA token naming the HMAC key", want: ErrInvalidToken, reason: "does not fit", token: func(t *testing.T) string {
			return mint(t, "EdDSA", k.ed, map[string]any{"kid": "hs"}, base)
		}},
		{name: "pinned algorithm refuses another", cfg: func(c *Config) { c.Algorithms = []string{"RS256", "PS256"} },
			keys: []Key{{ID: "rsa", Algorithm: "RS256", Material: &k.rsa.PublicKey}}, want: ErrInvalidToken, reason: "does not fit",
			token: func(t *testing.T) string { return mint(t, "PS256", k.rsa, map[string]any{"kid": "rsa"}, base) }},
		{name: "RS256 signed by another RSA key", want: ErrInvalidToken, reason: "bad signature", token: func(t *testing.T) string {
			return mint(t, "RS256", k.rsaOther, map[string]any{"kid": "rsa"}, base)
		}},
		{name: "HS256 signed with another secret", want: ErrInvalidToken, reason: "bad signature", token: func(t *testing.T) string {
			return mint(t, "HS256", k.hmacAlt, nil, base)
		}},

		// The kid rule.
		{name: "unknown kid", want: ErrInvalidToken, reason: "unknown key id", token: func(t *testing.T) string {
			return mint(t, "HS256", k.hmac, map[string]any{"kid": "SECRETKID-nope"}, base)
		}},
		{name: "kid present but the only key has none", keys: []Key{{Material: k.hmac}}, want: ErrInvalidToken, reason: "unknown key id", token: func(t *testing.T) string {
			return mint(t, "HS256", k.hmac, map[string]any{"kid": "hs"}, base)
		}},
		{name: "no kid but every key has one", keys: []Key{{ID: "hs", Material: k.hmac}}, want: ErrInvalidToken, reason: "without kid", token: hs(base)},
		{name: "kid not a string", want: ErrInvalidToken, reason: "kid", token: func(t *testing.T) string {
			return mint(t, "HS256", k.hmac, map[string]any{"kid": 7}, base)
		}},
		{name: "two kidless keys, second matches", keys: []Key{{Material: k.hmacAlt}, {Material: k.hmac}}, token: hs(base)},

		// Header checks.
		{name: "typ absent", token: func(t *testing.T) string {
			return mint(t, "HS256", k.hmac, map[string]any{"typ": nil}, base)
		}},
		{name: "typ jwt lower case", token: func(t *testing.T) string {
			return mint(t, "HS256", k.hmac, map[string]any{"typ": "jwt"}, base)
		}},
		{name: "typ at+jwt", want: ErrInvalidToken, reason: "typ", token: func(t *testing.T) string {
			return mint(t, "HS256", k.hmac, map[string]any{"typ": "at+jwt"}, base)
		}},
		{name: "crit header", want: ErrInvalidToken, reason: "crit", token: func(t *testing.T) string {
			return mint(t, "HS256", k.hmac, map[string]any{"crit": []any{"exp"}}, base)
		}},
		{name: "jku header is ignored, not followed", token: func(t *testing.T) string {
			return mint(t, "HS256", k.hmac, map[string]any{"jku": "https://attacker.invalid/jwks"}, base)
		}},

		// Time claims.
		{name: "expired", want: ErrTokenExpired, token: hs(with(base, "exp", at(-time.Hour), "iat", at(-2*time.Hour)))},
		{name: "expired within leeway: no leeway for exp", want: ErrTokenExpired, token: hs(with(base, "exp", at(-3*time.Second)))},
		{name: "exp 2 s ahead", token: hs(with(base, "exp", at(2*time.Second)))},
		{name: "expired just beyond leeway", want: ErrTokenExpired, token: hs(with(base, "exp", at(-6*time.Second)))},
		{name: "expired with zero leeway", cfg: func(c *Config) { c.Leeway = -1 }, want: ErrTokenExpired, token: hs(with(base, "exp", at(-1*time.Second)))},
		{name: "expired within a configured minute", cfg: func(c *Config) { c.Leeway = time.Minute }, want: ErrTokenExpired, token: hs(with(base, "exp", at(-50*time.Second)))},
		{name: "expired and wrong aud is invalid, not expired", want: ErrInvalidToken, reason: "audience", token: hs(with(base, "exp", at(-time.Hour), "aud", "other"))},
		{name: "expired and missing channels is invalid", want: ErrInvalidToken, reason: "channels", token: hs(with(base, "exp", at(-time.Hour), "channels", nil))},
		{name: "nbf in the future beyond leeway", want: ErrInvalidToken, reason: "nbf", token: hs(with(base, "nbf", at(time.Minute)))},
		{name: "nbf in the future within leeway", token: hs(with(base, "nbf", at(3*time.Second)))},
		{name: "nbf in the past", token: hs(with(base, "nbf", at(-time.Minute)))},
		{name: "iat in the future", want: ErrInvalidToken, reason: "iat", token: hs(with(base, "iat", at(time.Minute)))},
		{name: "iat in the future within leeway", token: hs(with(base, "iat", at(3*time.Second)))},
		{name: "iat absent", token: hs(with(base, "iat", nil))},
		{name: "missing exp", want: ErrInvalidToken, reason: "missing exp", token: hs(with(base, "exp", nil))},
		{name: "exp is a string", want: ErrInvalidToken, reason: "exp is not a number", token: hs(with(base, "exp", "tomorrow"))},

		// sub and channels.
		{name: "missing sub", want: ErrInvalidToken, reason: "missing sub", token: hs(with(base, "sub", nil))},
		{name: "empty sub", want: ErrInvalidToken, reason: "missing sub", token: hs(with(base, "sub", ""))},
		{name: "sub too long", want: ErrInvalidToken, reason: "sub longer", token: hs(with(base, "sub", strings.Repeat("a", MaxSubjectBytes+1)))},
		{name: "sub at the limit", token: hs(with(base, "sub", strings.Repeat("a", MaxSubjectBytes)))},
		{name: "sub with a newline", want: ErrInvalidToken, reason: "printable", token: hs(with(base, "sub", "alice\nlevel=admin"))},
		{name: "missing channels", want: ErrInvalidToken, reason: "missing channels", token: hs(with(base, "channels", nil))},
		{name: "channels null", want: ErrInvalidToken, reason: "channels is not an array of strings", token: func(t *testing.T) string {
			return mint(t, "HS256", k.hmac, nil, with(base, "channels", []any(nil)))
		}},
		{name: "channels empty", want: ErrInvalidToken, reason: "empty", token: hs(with(base, "channels", []any{}))},
		{name: "channels a string", want: ErrInvalidToken, reason: "channels is not an array of strings", token: hs(with(base, "channels", "ticker.*"))},
		{name: "channels with a number", want: ErrInvalidToken, reason: "channels is not an array of strings", token: hs(with(base, "channels", []any{"ticker.*", 7}))},
		{name: "bad pattern in channels", want: ErrInvalidToken, reason: "bad channel pattern at index 1", token: hs(with(base, "channels", []any{"ticker.*", "tick*"}))},
		{name: "too many channels", want: ErrInvalidToken, reason: "more than", token: hs(with(base, "channels", many))},

		// aud and iss.
		{name: "wrong aud", want: ErrInvalidToken, reason: "audience", token: hs(with(base, "aud", "someone-else"))},
		{name: "missing aud", want: ErrInvalidToken, reason: "missing aud", token: hs(with(base, "aud", nil))},
		{name: "aud list containing ours", token: hs(with(base, "aud", []any{"x", "tickgate"}))},
		{name: "aud not checked when not configured", cfg: func(c *Config) { c.Audience = "" }, token: hs(with(base, "aud", nil))},
		{name: "wrong iss", want: ErrInvalidToken, reason: "issuer", token: hs(with(base, "iss", "mallory"))},
		{name: "missing iss", want: ErrInvalidToken, reason: "missing iss", token: hs(with(base, "iss", nil))},

		// Claim names are exact: a case-variant of a claim the node reads,
		// or a key twice, is refused; encoding/json would match either
		// and keep the last (issue 8).
		{name: "Channels beside channels", want: ErrInvalidToken, reason: "claim name differs in case from channels", token: hsJSON(narrow, `"Channels":[">"]`)},
		{name: "CHANNELS beside channels", want: ErrInvalidToken, reason: "claim name differs in case from channels", token: hsJSON(narrow, `"CHANNELS":[">"]`)},
		{name: "channelſ (long s) beside channels", want: ErrInvalidToken, reason: "claim name differs in case from channels", token: hsJSON(narrow, `"channelſ":[">"]`)},
		{name: "Channels alone", want: ErrInvalidToken, reason: "claim name differs in case from channels", token: hsJSON(with(narrow, "channels", nil), `"Channels":[">"]`)},
		{name: "Channels before channels", want: ErrInvalidToken, reason: "claim name differs in case from channels", token: func(t *testing.T) string {
			return mintJSON(t, "HS256", k.hmac, hs256Header, `{"Channels":[">"],`+claimsJSON(t, narrow, "")[1:])
		}},
		{name: "Exp beyond exp", want: ErrInvalidToken, reason: "claim name differs in case from exp", token: hsJSON(base, `"Exp":`+yearAhead)},
		{name: "EXP alone", want: ErrInvalidToken, reason: "claim name differs in case from exp", token: hsJSON(noExp, `"EXP":`+yearAhead)},
		{name: "ſub beside sub", want: ErrInvalidToken, reason: "claim name differs in case from sub", token: hsJSON(base, `"ſub":"admin"`)},
		{name: "SUB beside sub", want: ErrInvalidToken, reason: "claim name differs in case from sub", token: hsJSON(base, `"SUB":"admin"`)},
		{name: "Nbf beside nbf", want: ErrInvalidToken, reason: "claim name differs in case from nbf", token: hsJSON(with(base, "nbf", at(time.Minute)), `"Nbf":0`)},
		{name: "IAT alone", want: ErrInvalidToken, reason: "claim name differs in case from iat", token: hsJSON(with(base, "iat", nil), `"IAT":0`)},
		{name: "Aud beside aud", want: ErrInvalidToken, reason: "claim name differs in case from aud", token: hsJSON(with(base, "aud", "other"), `"Aud":"tickgate"`)},
		{name: "Iss beside iss", want: ErrInvalidToken, reason: "claim name differs in case from iss", token: hsJSON(with(base, "iss", "mallory"), `"Iss":"issuer-1"`)},
		{name: "channels twice", want: ErrInvalidToken, reason: "duplicate claim", token: hsJSON(narrow, `"channels":[">"]`)},
		{name: "exp twice", want: ErrInvalidToken, reason: "duplicate claim", token: hsJSON(base, `"exp":`+yearAhead)},
		{name: "sub twice, once escaped", want: ErrInvalidToken, reason: "duplicate claim", token: hsJSON(base, `"\u0073ub":"admin"`)},
		{name: "unknown claim twice", want: ErrInvalidToken, reason: "duplicate claim", token: hsJSON(base, `"x":1,"x":2`)},
		{name: "unknown claims in any case", token: hsJSON(base, `"role":"a","Role":"b","ROLE":"c","scope":{"channels":[">"],"Channels":[">"]}`)},
		{name: "header parameter twice, alg none first", want: ErrInvalidToken, reason: "duplicate header parameter", token: func(t *testing.T) string {
			return mintJSON(t, "HS256", k.hmac, `{"alg":"none","alg":"HS256"}`, claimsJSON(t, base, ""))
		}},
		{name: "header parameter twice, alg HS256 first", want: ErrInvalidToken, reason: "duplicate header parameter", token: func(t *testing.T) string {
			return mintJSON(t, "HS256", k.hmac, `{"alg":"HS256","alg":"none"}`, claimsJSON(t, base, ""))
		}},
		{name: "header kid twice", want: ErrInvalidToken, reason: "duplicate header parameter", token: func(t *testing.T) string {
			return mintJSON(t, "HS256", k.hmac, `{"alg":"HS256","kid":"nope","kid":"hs"}`, claimsJSON(t, base, ""))
		}},
		{name: "header with escaped alg twice", want: ErrInvalidToken, reason: "duplicate header parameter", token: func(t *testing.T) string {
			return mintJSON(t, "HS256", k.hmac, `{"alg":"none","\u0061lg":"HS256"}`, claimsJSON(t, base, ""))
		}},
		{name: "header with trailing data", want: ErrInvalidToken, reason: "malformed", token: func(t *testing.T) string {
			return mintJSON(t, "HS256", k.hmac, hs256Header+` {}`, claimsJSON(t, base, ""))
		}},
		{name: "whitespace around members", token: func(t *testing.T) string {
			return mintJSON(t, "HS256", k.hmac, " { \"alg\" : \"HS256\" } ", " {\n \"exp\" :\t"+strconv.FormatInt(at(time.Hour), 10)+
				" , \"sub\" : \"alice\" , \"channels\" : [ \"ticker.*\" ] , \"aud\" : [ \"tickgate\" ] , \"iss\" : \"issuer-1\" } ")
		}},

		// Claim types: NumericDate is a JSON number, integer or decimal
		// fraction, without sign or exponent; sub and iss are strings,
		// aud a string or an array of strings, channels an array of
		// strings. A present claim must have its type (null has none).
		{name: "exp a string of digits", want: ErrInvalidToken, reason: "exp is not a number", token: hs(with(base, "exp", strconv.FormatInt(at(time.Hour), 10)))},
		{name: "exp the string 1796166062", want: ErrInvalidToken, reason: "exp is not a number", token: hs(with(base, "exp", "1796166062"))},
		{name: "exp the string 1e10", want: ErrInvalidToken, reason: "exp is not a number", token: hs(with(base, "exp", "1e10"))},
		{name: "exp null", want: ErrInvalidToken, reason: "exp is not a number", token: hsJSON(noExp, `"exp":null`)},
		{name: "exp true", want: ErrInvalidToken, reason: "exp is not a number", token: hs(with(base, "exp", true))},
		{name: "exp an array", want: ErrInvalidToken, reason: "exp is not a number", token: hs(with(base, "exp", []any{at(time.Hour)}))},
		{name: "exp 1e10 as a number", want: ErrInvalidToken, reason: "exp is in exponent notation", token: hsJSON(noExp, `"exp":1e10`)},
		{name: "exp in exponent notation, in range", want: ErrInvalidToken, reason: "exp is in exponent notation", token: hsJSON(noExp, `"exp":1.7672724E9`)},
		{name: "exp with a plus exponent", want: ErrInvalidToken, reason: "exp is in exponent notation", token: hsJSON(noExp, `"exp":17672724e+2`)},
		{name: "exp with a leading plus", want: ErrInvalidToken, reason: "malformed", token: hsJSON(noExp, `"exp":+1767272400`)},
		{name: "exp negative", want: ErrInvalidToken, reason: "exp out of range", token: hs(with(base, "exp", -5))},
		{name: "exp minus zero", want: ErrInvalidToken, reason: "exp out of range", token: hsJSON(noExp, `"exp":-0`)},
		{name: "exp beyond year 9999", want: ErrInvalidToken, reason: "exp out of range", token: hsJSON(noExp, `"exp":253402300800`)},
		{name: "exp beyond int64", want: ErrInvalidToken, reason: "exp out of range", token: hsJSON(noExp, `"exp":123456789012345678901234567890`)},
		{name: "exp at the end of year 9999", token: hsJSON(noExp, `"exp":253402300799.999999999`)},
		{name: "exp with a decimal fraction", token: hsJSON(noExp, `"exp":`+strconv.FormatInt(at(time.Hour), 10)+`.5`)},
		{name: "exp with .0", token: hsJSON(noExp, `"exp":`+strconv.FormatInt(at(time.Hour), 10)+`.0`)},
		{name: "exp 1500000000.5 is expired, not invalid", want: ErrTokenExpired, token: hsJSON(noExp, `"exp":1500000000.5`)},
		{name: "exp 1.5e9 is invalid, not expired", want: ErrInvalidToken, reason: "exp is in exponent notation", token: hsJSON(noExp, `"exp":1.5e9`)},
		{name: "nbf a string", want: ErrInvalidToken, reason: "nbf is not a number", token: hs(with(base, "nbf", strconv.FormatInt(at(-time.Hour), 10)))},
		{name: "nbf in exponent notation", want: ErrInvalidToken, reason: "nbf is in exponent notation", token: hsJSON(base, `"nbf":1e9`)},
		{name: "iat a string", want: ErrInvalidToken, reason: "iat is not a number", token: hs(with(base, "iat", strconv.FormatInt(testNow.Unix(), 10)))},
		{name: "iat null", want: ErrInvalidToken, reason: "iat is not a number", token: hsJSON(with(base, "iat", nil), `"iat":null`)},
		{name: "sub a number", want: ErrInvalidToken, reason: "sub is not a string", token: hs(with(base, "sub", 42))},
		{name: "sub null", want: ErrInvalidToken, reason: "sub is not a string", token: hsJSON(with(base, "sub", nil), `"sub":null`)},
		{name: "iss a number", want: ErrInvalidToken, reason: "iss is not a string", token: hs(with(base, "iss", 1))},
		{name: "iss a number when not configured", cfg: func(c *Config) { c.Issuer = "" }, want: ErrInvalidToken, reason: "iss is not a string", token: hs(with(base, "iss", 1))},
		{name: "aud a number", want: ErrInvalidToken, reason: "aud is not a string or an array of strings", token: hs(with(base, "aud", 7))},
		{name: "aud list with a number", want: ErrInvalidToken, reason: "aud is not a string or an array of strings", token: hs(with(base, "aud", []any{"tickgate", 7}))},
		{name: "aud list with null", want: ErrInvalidToken, reason: "aud is not a string or an array of strings", token: hs(with(base, "aud", []any{"tickgate", nil}))},
		{name: "channels with null", want: ErrInvalidToken, reason: "channels is not an array of strings", token: hs(with(base, "channels", []any{"ticker.*", nil}))},
		{name: "channels nested", want: ErrInvalidToken, reason: "channels is not an array of strings", token: hs(with(base, "channels", []any{[]any{">"}}))},
		{name: "claims a JSON array", want: ErrInvalidToken, reason: "claims are not a JSON object", token: func(t *testing.T) string {
			return mintJSON(t, "HS256", k.hmac, hs256Header, `["sub","alice"]`)
		}},

		// Shape.
		{name: "empty token", want: ErrMissingToken, token: func(t *testing.T) string { return "" }},
		{name: "2 segments", want: ErrInvalidToken, reason: "malformed", token: func(t *testing.T) string {
			tok := mint(t, "HS256", k.hmac, nil, base)
			return tok[:strings.LastIndexByte(tok, '.')]
		}},
		{name: "4 segments", want: ErrInvalidToken, reason: "malformed", token: func(t *testing.T) string {
			return mint(t, "HS256", k.hmac, nil, base) + ".AAAA"
		}},
		{name: "bad base64 in header", want: ErrInvalidToken, reason: "malformed", token: func(t *testing.T) string {
			return "!!!" + mint(t, "HS256", k.hmac, nil, base)
		}},
		{name: "bad base64 in signature", want: ErrInvalidToken, reason: "malformed", token: func(t *testing.T) string {
			return mint(t, "HS256", k.hmac, nil, base) + "*"
		}},
		{name: "header not JSON", want: ErrInvalidToken, reason: "malformed", token: func(t *testing.T) string {
			tok := mint(t, "HS256", k.hmac, nil, base)
			return base64.RawURLEncoding.EncodeToString([]byte("{alg:HS256")) + tok[strings.IndexByte(tok, '.'):]
		}},
		{name: "oversized refused before parsing", want: ErrInvalidToken, reason: "exceeds 8 KiB", token: func(t *testing.T) string {
			return strings.Repeat("A", MaxTokenBytes+1) // not even a JWT: parsing would say malformed
		}},
		{name: "oversized but validly signed", want: ErrInvalidToken, reason: "exceeds 8 KiB", token: hs(with(base, "pad", strings.Repeat("p", MaxTokenBytes)))},
	}
	seen := make(map[string]bool, len(tests))
	for _, tt := range tests {
		if seen[tt.name] {
			t.Fatalf("duplicate case name %q", tt.name)
		}
		seen[tt.name] = true
		t.Run(tt.name, func(t *testing.T) {
			cfg := matrixConfig()
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			ks := tt.keys
			if ks == nil {
				ks = k.publicKeys()
			}
			v := newTestVerifier(t, cfg, ks)
			tok := tt.token(t)
			claims, err := v.Verify(tok)
			assertNoTokenLeak(t, err, tok)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if claims.Subject == "" || claims.ExpiresAt.IsZero() || len(claims.Patterns) == 0 {
					t.Fatalf("claims incomplete: %+v", claims)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify error = %v, want %v", err, tt.want)
			}
			if claims != nil {
				t.Fatalf("claims returned with error: %+v", claims)
			}
			if tt.reason != "" && !strings.Contains(err.Error(), tt.reason) {
				t.Fatalf("Verify error = %q, want reason containing %q", err, tt.reason)
			}
			for _, other := range []error{ErrInvalidToken, ErrTokenExpired, ErrMissingToken} {
				if other != tt.want && errors.Is(err, other) {
					t.Fatalf("error %v also matches %v", err, other)
				}
			}
		})
	}
}

func TestVerifyClaimsContent(t *testing.T) {
	k := keys(t)
	v := newTestVerifier(t, matrixConfig(), k.publicKeys())
	tok := mint(t, "EdDSA", k.ed, map[string]any{"kid": "ed"}, baseClaims())
	c, err := v.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != "alice" {
		t.Errorf("Subject = %q", c.Subject)
	}
	if want := testNow.Add(time.Hour); !c.ExpiresAt.Equal(want) {
		t.Errorf("ExpiresAt = %v, want %v", c.ExpiresAt, want)
	}
	if got := []string{c.Patterns[0].String(), c.Patterns[1].String()}; got[0] != "ticker.*" || got[1] != "book.BTC-USD" {
		t.Errorf("Patterns = %v", got)
	}
	for ch, want := range map[string]bool{
		"ticker.BTC-USD": true, "ticker.ETH-USD": true, "book.BTC-USD": true,
		"book.ETH-USD": false, "trade.BTC-USD": false,
	} {
		if got := c.Allows(ch); got != want {
			t.Errorf("Allows(%q) = %v, want %v", ch, got, want)
		}
	}
}

// TestVerifyNumericDateExact: exp is read exactly as written, fraction
// included, down to the nanosecond (digits beyond are cut off), not
// through a float64 that rounds 253402300799.999999999 up to year 10000
// or drops the fraction.
func TestVerifyNumericDateExact(t *testing.T) {
	k := keys(t)
	v := newTestVerifier(t, matrixConfig(), k.publicKeys())
	sec := testNow.Add(time.Hour).Unix()
	secs := strconv.FormatInt(sec, 10)
	tests := []struct {
		exp  string
		want time.Time
	}{
		{exp: secs, want: time.Unix(sec, 0)},
		{exp: secs + ".0", want: time.Unix(sec, 0)},
		{exp: secs + ".5", want: time.Unix(sec, 500_000_000)},
		{exp: secs + ".000000001", want: time.Unix(sec, 1)},
		{exp: secs + ".123456789", want: time.Unix(sec, 123_456_789)},
		{exp: secs + ".1234567899999", want: time.Unix(sec, 123_456_789)},
		{exp: "253402300799.999999999", want: time.Unix(253402300799, 999_999_999)},
	}
	for _, tt := range tests {
		t.Run(tt.exp, func(t *testing.T) {
			tok := mintJSON(t, "HS256", k.hmac, hs256Header, claimsJSON(t, with(baseClaims(), "exp", nil), `"exp":`+tt.exp))
			c, err := v.Verify(tok)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if !c.ExpiresAt.Equal(tt.want) {
				t.Fatalf("ExpiresAt = %v, want %v", c.ExpiresAt, tt.want)
			}
		})
	}
}

// TestVerifyIssuedAt: Claims.IssuedAt is iat exactly as written (a
// revocation's cut-off compares it), zero without iat, and an iat that
// the strict reader refuses still makes the token invalid.
func TestVerifyIssuedAt(t *testing.T) {
	k := keys(t)
	v := newTestVerifier(t, matrixConfig(), k.publicKeys())
	sec := testNow.Add(-time.Minute).Unix()
	secs := strconv.FormatInt(sec, 10)
	tests := []struct {
		name    string
		iat     string // "" leaves iat out
		want    time.Time
		invalid bool
	}{
		{name: "integer", iat: secs, want: time.Unix(sec, 0)},
		{name: "fraction", iat: secs + ".25", want: time.Unix(sec, 250_000_000)},
		{name: "absent", iat: "", want: time.Time{}},
		{name: "string", iat: `"` + secs + `"`, invalid: true},
		{name: "exponent", iat: "1.7e9", invalid: true},
		{name: "negative", iat: "-1", invalid: true},
		{name: "future beyond leeway", iat: strconv.FormatInt(testNow.Add(time.Hour).Unix(), 10), invalid: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			extra := ""
			if tt.iat != "" {
				extra = `"iat":` + tt.iat
			}
			tok := mintJSON(t, "HS256", k.hmac, hs256Header, claimsJSON(t, with(baseClaims(), "iat", nil), extra))
			c, err := v.Verify(tok)
			if tt.invalid {
				if !errors.Is(err, ErrInvalidToken) {
					t.Fatalf("Verify: %v, want ErrInvalidToken", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if !c.IssuedAt.Equal(tt.want) || c.IssuedAt.IsZero() != tt.want.IsZero() {
				t.Fatalf("IssuedAt = %v, want %v", c.IssuedAt, tt.want)
			}
		})
	}
}

func TestVerifyEmptyKeySet(t *testing.T) {
	k := keys(t)
	v, err := NewVerifier(matrixConfig(), NewKeySet())
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.Verify(mint(t, "HS256", k.hmac, nil, baseClaims()))
	if !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("err = %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{name: "zero", cfg: Config{}, ok: true},
		{name: "all supported", cfg: Config{Algorithms: SupportedAlgorithms()}, ok: true},
		{name: "none", cfg: Config{Algorithms: []string{"HS256", "none"}}},
		{name: "None", cfg: Config{Algorithms: []string{"None"}}},
		{name: "unknown", cfg: Config{Algorithms: []string{"HS1"}}},
		{name: "lower-case name", cfg: Config{Algorithms: []string{"hs256"}}},
		{name: "negative leeway means none", cfg: Config{Leeway: -1}, ok: true},
		{name: "leeway too large", cfg: Config{Leeway: time.Hour}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if (err == nil) != tt.ok {
				t.Fatalf("Validate = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrBadConfig) {
				t.Fatalf("Validate error %v is not ErrBadConfig", err)
			}
			if _, nerr := NewVerifier(tt.cfg, NewKeySet()); (nerr == nil) != tt.ok {
				t.Fatalf("NewVerifier = %v, want ok=%v", nerr, tt.ok)
			}
		})
	}
	if _, err := NewVerifier(Config{}, nil); err == nil {
		t.Fatal("NewVerifier(nil key set) succeeded")
	}
	if d := (Config{}).withDefaults(); d.Leeway != DefaultLeeway || len(d.Algorithms) != 4 || d.Now == nil {
		t.Fatalf("defaults = %+v", d)
	}
}

func TestHandshakeCode(t *testing.T) {
	k := keys(t)
	v := newTestVerifier(t, matrixConfig(), k.publicKeys())
	_, expired := v.Verify(mint(t, "HS256", k.hmac, nil, with(baseClaims(), "exp", testNow.Add(-time.Hour).Unix())))
	_, bad := v.Verify("a.b.c")
	tests := []struct {
		name string
		err  error
		want string
	}{
		{name: "nil", err: nil, want: ""},
		{name: "missing", err: ErrMissingToken, want: "missing_token"},
		{name: "expired from Verify", err: expired, want: "token_expired"},
		{name: "invalid from Verify", err: bad, want: "invalid_token"},
		{name: "oversized from Extract", err: invalid("x"), want: "invalid_token"},
		{name: "unrelated", err: errors.New("boom"), want: "invalid_token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := HandshakeCode(tt.err); string(got) != tt.want {
				t.Fatalf("HandshakeCode(%v) = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
}

func BenchmarkVerifyHS256(b *testing.B) {
	k := keys(b)
	v := newTestVerifier(b, Config{Audience: "tickgate"}, []Key{{Material: k.hmac}})
	claims := with(baseClaims(), "exp", time.Now().Add(time.Hour).Unix(), "iat", time.Now().Unix(), "iss", nil)
	tok := mint(b, "HS256", k.hmac, nil, claims)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyEdDSA(b *testing.B) {
	k := keys(b)
	v := newTestVerifier(b, Config{}, []Key{{ID: "ed", Material: k.ed.Public().(ed25519.PublicKey)}})
	claims := with(baseClaims(), "exp", time.Now().Add(time.Hour).Unix(), "iat", time.Now().Unix())
	tok := mint(b, "EdDSA", k.ed, map[string]any{"kid": "ed"}, claims)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}
