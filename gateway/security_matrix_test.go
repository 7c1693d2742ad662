package gateway

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tickgate/tickgate/auth"
	"github.com/tickgate/tickgate/proto"
)

// The hostile-client matrix: tokens that must not pass the real handshake,
// raw frames that RFC 6455 says must fail the connection, slow and stalled
// clients, while one healthy client stays connected and keeps receiving the
// feed. Memory must stay bounded and no token may reach the logs.

const (
	secIssuer = "https://issuer.example"
	secLeeway = 2 * time.Second
)

// secKeys are the key material of the matrix.
type secKeys struct {
	hmac, hmacOther []byte
	rsa, rsaOther   *rsa.PrivateKey
	rsaPEM, rsaDER  []byte // the public key as PEM and as PKIX DER
	ec              *ecdsa.PrivateKey
}

func newSecKeys(t *testing.T) *secKeys {
	t.Helper()
	k := &secKeys{hmac: bytes.Repeat([]byte("k"), 32), hmacOther: bytes.Repeat([]byte("o"), 64)}
	var err error
	if k.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	if k.rsaOther, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	if k.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	if k.rsaDER, err = x509.MarshalPKIXPublicKey(&k.rsa.PublicKey); err != nil {
		t.Fatal(err)
	}
	k.rsaPEM = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: k.rsaDER})
	return k
}

// tokenCase is one handshake of the token matrix.
type tokenCase struct {
	name   string
	header http.Header // request headers beyond the WebSocket ones
	target string      // "" is WebSocketPath
	status int
	code   proto.HandshakeCode // the JSON error code; "" for 101 or a refusal by net/http
}

// frameWant is what RFC 6455 asks of the server after a client's frames.
type frameWant struct {
	// code is the close code the server must send; 0 means the
	// connection stays open and a reply frame matching op and reply
	// arrives.
	code  uint16
	op    byte
	reply string
}

// frameCase is one raw-frame conformance case.
type frameCase struct {
	name string
	send [][]byte // each written with one Write (one TLS record)
	want frameWant
}

// knownDeviations are frame cases where gws v1.9.1 does not do what RFC
// 6455 asks. The matrix asserts the observed behaviour instead (so a
// library upgrade that changes it is noticed) and logs the deviation.
var knownDeviations = map[string]struct {
	observed frameWant
	note     string
}{
	"close code 1014 (IANA: bad gateway)": {observed: frameWant{code: 1002},
		note: "RFC 6455 §7.4.2 leaves 1000-2999 to the IANA registry, which lists 1012-1014; gws answers 1012 and 1013 " +
			"with 1000 but 1014 (Bad Gateway) with 1002. Harmless: no browser sends 1014"},
}

func TestSecurityMatrix(t *testing.T) {
	k := newSecKeys(t)
	now := time.Now().Truncate(time.Second)
	keys := auth.NewKeySet()
	if err := keys.Set([]auth.Key{
		{ID: "hs", Material: k.hmac},
		{ID: "", Material: k.hmac},
		{ID: "rsa", Material: &k.rsa.PublicKey},
	}); err != nil {
		t.Fatal(err)
	}
	verifier, err := auth.NewVerifier(auth.Config{
		Algorithms: []string{"HS256", "RS256"},
		Audience:   "tickgate",
		Issuer:     secIssuer,
		Leeway:     secLeeway,
		Now:        func() time.Time { return now },
	}, keys)
	if err != nil {
		t.Fatal(err)
	}
	e := newSecurityEnv(t, verifier, func(c *Config) {
		c.HandshakeTimeout = time.Second
		c.HeartbeatInterval = time.Second
		c.IdleTimeout = 3 * time.Second
	})

	// Every token of the matrix, for the log scan at the end.
	var tokens []string
	var tokMu sync.Mutex
	record := func(tok string) string {
		tokMu.Lock()
		defer tokMu.Unlock()
		tokens = append(tokens, tok)
		return tok
	}
	claims := func(kv ...any) map[string]any {
		c := map[string]any{
			"sub": "mallory", "channels": []any{">"}, "aud": "tickgate", "iss": secIssuer,
			"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(c, kv[i].(string))
			} else {
				c[kv[i].(string)] = kv[i+1]
			}
		}
		return c
	}
	hdr := func(alg string, kv ...any) map[string]any {
		h := map[string]any{"typ": "JWT"}
		if alg != "-" {
			h["alg"] = alg
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(h, kv[i].(string))
			} else {
				h[kv[i].(string)] = kv[i+1]
			}
		}
		return h
	}
	hs := func(c map[string]any) string { return record(jws(t, "HS256", k.hmac, hdr("HS256", "kid", "hs"), c)) }
	rs := func(c map[string]any) string { return record(jws(t, "RS256", k.rsa, hdr("RS256", "kid", "rsa"), c)) }
	at := func(d time.Duration) int64 { return now.Add(d).Unix() }

	// The healthy client: connected before the matrix, subscribed to
	// trades, fed throughout, checked at the end.
	healthy := e.connect(t, "json", rs(claims("sub", "healthy")))
	healthy.send(t, proto.Command{Op: proto.OpSubscribe, ID: ptr[int64](1), Channels: []string{"trade.BTC-USD"}})
	healthy.expect(t, proto.TypeSubscribed)
	trade := func(id int64) proto.FeedMessage {
		return proto.FeedMessage{Seq: uint64(id), Type: proto.FeedUpdate, Data: &proto.Trade{Symbol: "BTC-USD", ID: id, Price: "1.5", Size: "1", Side: proto.SideBuy, TS: 1}}
	}
	btc := proto.Channel{Kind: proto.KindTrade, Symbol: "BTC-USD"}
	var published atomic.Int64
	stopFeed := make(chan struct{})
	feedDone := make(chan error, 1)
	go func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for id := int64(1); id <= 2000; id++ {
			select {
			case <-stopFeed:
				feedDone <- nil
				return
			case <-tick.C:
			}
			if err := e.pub.PublishMessage(btc, trade(id)); err != nil {
				feedDone <- err
				return
			}
			published.Store(id)
		}
		feedDone <- nil
	}()
	var stopOnce sync.Once
	stop := func() { stopOnce.Do(func() { close(stopFeed) }) }
	t.Cleanup(stop)

	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	// A key URL server: jku and x5u point here; nothing may fetch them.
	var keyURLHits atomic.Int64
	keyURLs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		keyURLHits.Add(1)
		http.Error(w, "no", http.StatusTeapot)
	}))
	t.Cleanup(keyURLs.Close)

	t.Run("tokens", func(t *testing.T) {
		bearer := func(tok string) http.Header {
			return http.Header{"Authorization": {"Bearer " + tok}, "Sec-Websocket-Protocol": {proto.SubprotocolJSON}}
		}
		valid := rs(claims())
		validHS := hs(claims())
		hsAt := func(kv ...any) http.Header { return bearer(hs(claims(kv...))) }
		raw := func(h, c any, sig string) http.Header {
			return bearer(record(jsonSeg(t, h) + "." + jsonSeg(t, c) + "." + sig))
		}
		dot := strings.LastIndexByte(valid, '.')
		firstDot := strings.IndexByte(valid, '.')
		parts := strings.Split(valid, ".")
		tampered := func() string { // claims changed after signing
			c := claims("sub", "admin")
			return record(parts[0] + "." + jsonSeg(t, c) + "." + parts[2])
		}
		// hsJSON signs claims(kv...) with extra raw JSON members appended
		// ("" appends none): a map cannot hold a key twice.
		hsJSON := func(extra string, kv ...any) http.Header {
			b, err := json.Marshal(claims(kv...))
			if err != nil {
				t.Fatal(err)
			}
			if extra != "" {
				extra = "," + extra
			}
			return bearer(record(jws(t, "HS256", k.hmac, hdr("HS256", "kid", "hs"), string(b[:len(b)-1])+extra+"}")))
		}
		yearAhead := strconv.FormatInt(at(365*24*time.Hour), 10)
		huge := record(hs(claims("pad", strings.Repeat("p", 64<<10))))
		attacker := record(jws(t, "RS256", k.rsaOther, hdr("RS256", "kid", "attacker", "jku", keyURLs.URL+"/jwks"), claims()))
		embeddedJWK := record(jws(t, "RS256", k.rsaOther, hdr("RS256", "jwk", map[string]any{
			"kty": "RSA", "n": b64(k.rsaOther.N.Bytes()), "e": "AQAB"}), claims()))

		tests := []tokenCase{
			// Accepted: the baseline, and what must pass despite odd input.
			{name: "RS256 with kid", header: bearer(valid), status: 101},
			{name: "HS256 with kid", header: bearer(validHS), status: 101},
			{name: "HS256 without kid", header: bearer(record(jws(t, "HS256", k.hmac, hdr("HS256"), claims()))), status: 101},
			{name: "bearer subprotocol entry", header: http.Header{"Sec-Websocket-Protocol": {proto.SubprotocolJSON + ", bearer." + valid}}, status: 101},
			{name: "exp 2 s ahead", header: hsAt("exp", at(2*time.Second)), status: 101},
			{name: "nbf ahead, within leeway by 1 s", header: hsAt("nbf", at(secLeeway-time.Second)), status: 101},
			{name: "iat ahead, within leeway by 1 s", header: hsAt("iat", at(secLeeway-time.Second)), status: 101},
			{name: "aud list holding ours", header: hsAt("aud", []any{"other", "tickgate"}), status: 101},
			{name: "typ jwt in lower case", header: bearer(record(jws(t, "HS256", k.hmac, hdr("HS256", "typ", "jwt"), claims()))), status: 101},
			{name: "jku is ignored, not fetched", header: bearer(record(jws(t, "RS256", k.rsa, hdr("RS256", "kid", "rsa", "jku", keyURLs.URL+"/jwks"), claims()))), status: 101},
			{name: "x5u is ignored, not fetched", header: bearer(record(jws(t, "RS256", k.rsa, hdr("RS256", "kid", "rsa", "x5u", keyURLs.URL+"/cert"), claims()))), status: 101},
			{name: "header token wins over a bad subprotocol token", header: http.Header{"Authorization": {"Bearer " + valid}, "Sec-Websocket-Protocol": {proto.SubprotocolJSON + ", bearer.x.y.z"}}, status: 101},

			// alg attacks.
			{name: "alg none, no signature", header: raw(hdr("none"), claims(), ""), status: 401, code: proto.HandshakeInvalidToken},
			{name: "alg None", header: raw(hdr("None"), claims(), ""), status: 401, code: proto.HandshakeInvalidToken},
			{name: "alg NONE with kid and a signature", header: raw(hdr("NONE", "kid", "hs"), claims(), "c2ln"), status: 401, code: proto.HandshakeInvalidToken},
			{name: "alg none with a valid HS256 signature", header: bearer(record(jws(t, "HS256", k.hmac, hdr("none", "kid", "hs"), claims()))), status: 401, code: proto.HandshakeInvalidToken},
			{name: "alg missing", header: bearer(record(jws(t, "HS256", k.hmac, hdr("-", "kid", "hs"), claims()))), status: 401, code: proto.HandshakeInvalidToken},
			{name: "HS256 signed with the RSA public key PEM, kid rsa", header: bearer(record(jws(t, "HS256", k.rsaPEM, hdr("HS256", "kid", "rsa"), claims()))), status: 401, code: proto.HandshakeInvalidToken},
			{name: "HS256 signed with the RSA public key PEM, no kid", header: bearer(record(jws(t, "HS256", k.rsaPEM, hdr("HS256"), claims()))), status: 401, code: proto.HandshakeInvalidToken},
			{name: "HS256 signed with the RSA public key DER", header: bearer(record(jws(t, "HS256", k.rsaDER, hdr("HS256", "kid", "rsa"), claims()))), status: 401, code: proto.HandshakeInvalidToken},
			{name: "RS256 naming the HMAC key", header: bearer(record(jws(t, "RS256", k.rsa, hdr("RS256", "kid", "hs"), claims()))), status: 401, code: proto.HandshakeInvalidToken},
			{name: "HS512 outside the allow-list", header: bearer(record(jws(t, "HS512", k.hmacOther, hdr("HS512", "kid", "hs"), claims()))), status: 401, code: proto.HandshakeInvalidToken},
			{name: "ES256 outside the allow-list", header: bearer(record(jws(t, "ES256", k.ec, hdr("ES256", "kid", "rsa"), claims()))), status: 401, code: proto.HandshakeInvalidToken},
			{name: "PS256 outside the allow-list", header: bearer(record(jws(t, "PS256", k.rsa, hdr("PS256", "kid", "rsa"), claims()))), status: 401, code: proto.HandshakeInvalidToken},

			// Keys.
			{name: "unknown kid", header: bearer(record(jws(t, "HS256", k.hmac, hdr("HS256", "kid", "hs-2027"), claims()))), status: 401, code: proto.HandshakeInvalidToken},
			{name: "kid not a string", header: bearer(record(jws(t, "HS256", k.hmac, hdr("HS256", "kid", 1), claims()))), status: 401, code: proto.HandshakeInvalidToken},
			{name: "kid path traversal", header: bearer(record(jws(t, "HS256", k.hmac, hdr("HS256", "kid", "../../../../dev/null"), claims()))), status: 401, code: proto.HandshakeInvalidToken},
			{name: "jku to the attacker's key set", header: bearer(attacker), status: 401, code: proto.HandshakeInvalidToken},
			{name: "embedded jwk of the attacker", header: bearer(embeddedJWK), status: 401, code: proto.HandshakeInvalidToken},
			{name: "RS256 signed by another key", header: bearer(record(jws(t, "RS256", k.rsaOther, hdr("RS256", "kid", "rsa"), claims()))), status: 401, code: proto.HandshakeInvalidToken},
			{name: "HS256 signed with another secret", header: bearer(record(jws(t, "HS256", k.hmacOther, hdr("HS256", "kid", "hs"), claims()))), status: 401, code: proto.HandshakeInvalidToken},
			{name: "signature stripped", header: bearer(record(valid[:dot+1])), status: 401, code: proto.HandshakeInvalidToken},
			{name: "claims changed after signing", header: bearer(tampered()), status: 401, code: proto.HandshakeInvalidToken},
			{name: "header changed after signing", header: bearer(record(jsonSeg(t, hdr("RS256", "kid", "rsa", "x", 1)) + valid[firstDot:])), status: 401, code: proto.HandshakeInvalidToken},

			// Time claims around the leeway.
			{name: "exp passed, beyond leeway by 1 s", header: hsAt("exp", at(-secLeeway-time.Second)), status: 401, code: proto.HandshakeTokenExpired},
			// The leeway stretches nbf and iat, not exp: a connection is
			// closed at exp, so a token past it is refused at once.
			{name: "exp passed 1 s ago, within leeway", header: hsAt("exp", at(-secLeeway+time.Second)), status: 401, code: proto.HandshakeTokenExpired},
			{name: "exp a day ago", header: hsAt("exp", at(-24*time.Hour), "iat", at(-25*time.Hour)), status: 401, code: proto.HandshakeTokenExpired},
			{name: "exp 0", header: hsAt("exp", 0), status: 401, code: proto.HandshakeTokenExpired},
			{name: "nbf ahead, beyond leeway by 1 s", header: hsAt("nbf", at(secLeeway+time.Second)), status: 401, code: proto.HandshakeInvalidToken},
			{name: "iat ahead, beyond leeway by 1 s", header: hsAt("iat", at(secLeeway+time.Second)), status: 401, code: proto.HandshakeInvalidToken},
			{name: "exp missing", header: hsAt("exp", nil), status: 401, code: proto.HandshakeInvalidToken},
			{name: "exp a string", header: hsAt("exp", "tomorrow"), status: 401, code: proto.HandshakeInvalidToken},
			{name: "exp 1e300", header: hsAt("exp", 1e300), status: 401, code: proto.HandshakeInvalidToken},
			{name: "nbf 1e300", header: hsAt("nbf", 1e300), status: 401, code: proto.HandshakeInvalidToken},
			{name: "expired and wrong aud is invalid, not expired", header: hsAt("exp", at(-time.Hour), "aud", "x"), status: 401, code: proto.HandshakeInvalidToken},

			// aud, iss, sub, channels.
			{name: "aud wrong", header: hsAt("aud", "tickgate-staging"), status: 401, code: proto.HandshakeInvalidToken},
			{name: "aud missing", header: hsAt("aud", nil), status: 401, code: proto.HandshakeInvalidToken},
			{name: "aud list without ours", header: hsAt("aud", []any{"a", "b"}), status: 401, code: proto.HandshakeInvalidToken},
			{name: "iss wrong", header: hsAt("iss", "https://evil.example"), status: 401, code: proto.HandshakeInvalidToken},
			{name: "iss missing", header: hsAt("iss", nil), status: 401, code: proto.HandshakeInvalidToken},
			{name: "iss in another case", header: hsAt("iss", strings.ToUpper(secIssuer)), status: 401, code: proto.HandshakeInvalidToken},
			{name: "sub missing", header: hsAt("sub", nil), status: 401, code: proto.HandshakeInvalidToken},
			{name: "sub with a newline", header: hsAt("sub", "mallory\nlevel=admin"), status: 401, code: proto.HandshakeInvalidToken},
			{name: "channels missing", header: hsAt("channels", nil), status: 401, code: proto.HandshakeInvalidToken},
			{name: "channels with a bad pattern", header: hsAt("channels", []any{"ticker.*", "a*"}), status: 401, code: proto.HandshakeInvalidToken},

			// Claim names are exact and appear once; NumericDates are JSON
			// numbers (issue 8). encoding/json used to read "Channels" as
			// channels and keep the last of two keys: the first cases
			// granted ">" (book.SECRET-USD and all) to a ticker.X token.
			{name: "channels [ticker.X] alone", header: hsJSON("", "channels", []any{"ticker.X"}), status: 101},
			{name: "Channels [>] beside channels [ticker.X]", header: hsJSON(`"Channels":[">"]`, "channels", []any{"ticker.X"}), status: 401, code: proto.HandshakeInvalidToken},
			{name: "CHANNELS [>] beside channels [ticker.X]", header: hsJSON(`"CHANNELS":[">"]`, "channels", []any{"ticker.X"}), status: 401, code: proto.HandshakeInvalidToken},
			{name: "Channels [>] alone", header: hsJSON(`"Channels":[">"]`, "channels", nil), status: 401, code: proto.HandshakeInvalidToken},
			{name: "channels twice, [>] last", header: hsJSON(`"channels":[">"]`, "channels", []any{"ticker.X"}), status: 401, code: proto.HandshakeInvalidToken},
			{name: "Exp a year beyond exp", header: hsJSON(`"Exp":` + yearAhead), status: 401, code: proto.HandshakeInvalidToken},
			{name: "exp twice, a year ahead last", header: hsJSON(`"exp":` + yearAhead), status: 401, code: proto.HandshakeInvalidToken},
			{name: "ſub beside sub", header: hsJSON(`"ſub":"admin"`), status: 401, code: proto.HandshakeInvalidToken},
			{name: "sub twice, once escaped", header: hsJSON(`"\u0073ub":"admin"`), status: 401, code: proto.HandshakeInvalidToken},
			{name: "exp a string of digits", header: hsAt("exp", strconv.FormatInt(at(time.Hour), 10)), status: 401, code: proto.HandshakeInvalidToken},
			{name: "exp the string 1e10", header: hsAt("exp", "1e10"), status: 401, code: proto.HandshakeInvalidToken},
			{name: "exp 1e10 as a number", header: hsJSON(`"exp":1e10`, "exp", nil), status: 401, code: proto.HandshakeInvalidToken},
			{name: "nbf a string", header: hsAt("nbf", strconv.FormatInt(at(-time.Hour), 10)), status: 401, code: proto.HandshakeInvalidToken},
			{name: "exp with a decimal fraction", header: hsJSON(`"exp":`+strconv.FormatInt(at(time.Hour), 10)+`.5`, "exp", nil), status: 101},

			// Headers.
			{name: "alg twice, none first", header: bearer(record(jws(t, "HS256", k.hmac, `{"alg":"none","alg":"HS256","kid":"hs"}`, claims()))), status: 401, code: proto.HandshakeInvalidToken},
			{name: "typ at+jwt", header: bearer(record(jws(t, "HS256", k.hmac, hdr("HS256", "kid", "hs", "typ", "at+jwt"), claims()))), status: 401, code: proto.HandshakeInvalidToken},
			{name: "crit header", header: bearer(record(jws(t, "HS256", k.hmac, hdr("HS256", "kid", "hs", "crit", []any{"exp"}), claims()))), status: 401, code: proto.HandshakeInvalidToken},
			{name: "cty JWT (nested)", header: bearer(record(jws(t, "HS256", k.hmac, hdr("HS256", "kid", "hs", "cty", "JWT"), claims()))), status: 401, code: proto.HandshakeInvalidToken},

			// Shape.
			{name: "2 segments", header: bearer(record(valid[:dot])), status: 401, code: proto.HandshakeInvalidToken},
			{name: "4 segments", header: bearer(record(valid + ".c2ln")), status: 401, code: proto.HandshakeInvalidToken},
			{name: "5 segments (JWE)", header: bearer(record(valid + ".a.b")), status: 401, code: proto.HandshakeInvalidToken},
			{name: "bad base64 in the header", header: bearer(record("e!J" + valid[3:])), status: 401, code: proto.HandshakeInvalidToken},
			{name: "bad base64 in the claims", header: bearer(record(parts[0] + ".*" + parts[1][1:] + "." + parts[2])), status: 401, code: proto.HandshakeInvalidToken},
			{name: "bad base64 in the signature", header: bearer(record(valid + "*")), status: 401, code: proto.HandshakeInvalidToken},
			{name: "header not JSON", header: raw("{alg:RS256", claims(), parts[2]), status: 401, code: proto.HandshakeInvalidToken},
			{name: "claims a JSON array", header: raw(hdr("HS256"), `["sub"]`, "c2ln"), status: 401, code: proto.HandshakeInvalidToken},
			{name: "JWS JSON serialization", header: bearer(record(`{"payload":"` + parts[1] + `","signatures":[]}`)), status: 401, code: proto.HandshakeInvalidToken},
			{name: "oversized, validly signed (9 KiB)", header: bearer(hs(claims("pad", strings.Repeat("p", 9<<10)))), status: 401, code: proto.HandshakeInvalidToken},
			{name: "headers beyond MaxHeaderBytes (64 KiB token)", header: bearer(huge), status: 431},

			// Sources.
			{name: "no token", header: http.Header{"Sec-Websocket-Protocol": {proto.SubprotocolJSON}}, status: 401, code: proto.HandshakeMissingToken},
			{name: "empty bearer", header: http.Header{"Authorization": {"Bearer "}}, status: 401, code: proto.HandshakeInvalidToken},
			{name: "Bearer Bearer", header: http.Header{"Authorization": {"Bearer Bearer " + valid}}, status: 401, code: proto.HandshakeInvalidToken},
			{name: "Basic scheme", header: http.Header{"Authorization": {"Basic bWFsbG9yeTpodW50ZXIy"}}, status: 401, code: proto.HandshakeMissingToken},
			{name: "query token while disabled", target: WebSocketPath + "?access_token=" + valid, status: 401, code: proto.HandshakeMissingToken},
			{name: "token in a cookie", header: http.Header{"Cookie": {"access_token=" + valid}}, status: 401, code: proto.HandshakeMissingToken},
			{name: "bad token in the subprotocol", header: http.Header{"Sec-Websocket-Protocol": {proto.SubprotocolJSON + ", bearer.a.b.c"}}, status: 401, code: proto.HandshakeInvalidToken},
			{name: "bad header token beats a good subprotocol token", header: http.Header{"Authorization": {"Bearer a.b.c"}, "Sec-Websocket-Protocol": {proto.SubprotocolJSON + ", bearer." + valid}}, status: 401, code: proto.HandshakeInvalidToken},
			{name: "bearer entry without a codec", header: http.Header{"Sec-Websocket-Protocol": {"bearer." + valid}}, status: 400, code: proto.HandshakeBadSubprotocol},
		}
		if len(tests) < 40 {
			t.Fatalf("the token matrix has %d cases, want at least 40", len(tests))
		}
		t.Logf("token matrix: %d handshakes", len(tests))
		seen := map[string]bool{}
		for _, tt := range tests {
			if seen[tt.name] {
				t.Fatalf("duplicate case %q", tt.name)
			}
			seen[tt.name] = true
			t.Run(tt.name, func(t *testing.T) {
				target := tt.target
				if target == "" {
					target = WebSocketPath
				}
				r := e.rawDial(t)
				resp, body := r.handshake(t, target, tt.header)
				_ = r.c.Close()
				if resp.StatusCode != tt.status {
					t.Fatalf("status %d %s, want %d", resp.StatusCode, body, tt.status)
				}
				if tt.code == "" {
					return
				}
				var got struct{ Error, Message string }
				if err := json.Unmarshal(body, &got); err != nil || resp.Header.Get("Content-Type") != "application/json" {
					t.Fatalf("refusal body %q (%s): %v", body, resp.Header.Get("Content-Type"), err)
				}
				if got.Error != string(tt.code) || got.Message == "" {
					t.Fatalf("refusal %+v, want code %s", got, tt.code)
				}
				for _, v := range append(tt.header.Values("Authorization"), tt.header.Values("Sec-Websocket-Protocol")...) {
					if i := strings.LastIndexByte(v, '.'); i > 0 && len(v)-i > 8 && bytes.Contains(body, []byte(v[i+1:])) {
						t.Fatalf("the refusal quotes the token's signature: %s", body)
					}
				}
			})
		}
		if n := keyURLHits.Load(); n != 0 {
			t.Fatalf("the jku/x5u server was contacted %d times", n)
		}
	})

	t.Run("frames", func(t *testing.T) {
		tok := rs(claims("sub", "frames"))
		ping := []byte(`{"op":"ping","id":7}`)
		half := bytes.Repeat([]byte("x"), 9<<10)
		nonMinimal := append([]byte{0x81, 0x80 | 126, 0, byte(len(ping))}, 0, 0, 0, 0) // zero mask key
		nonMinimal = append(nonMinimal, ping...)
		pongOf := frameWant{op: 0x1, reply: `"pong"`}
		fail := func(code uint16) frameWant { return frameWant{code: code} }
		var cases []frameCase
		add := func(name string, want frameWant, frames ...[]byte) {
			cases = append(cases, frameCase{name: name, send: frames, want: want})
		}
		// Positive controls: the raw client speaks the protocol.
		add("a command in one frame", pongOf, clientFrame(0x81, ping))
		add("ping with 125 bytes gets its pong", frameWant{op: 0xA, reply: strings.Repeat("p", 125)}, clientFrame(0x89, bytes.Repeat([]byte("p"), 125)))
		add("a command in three fragments with a ping between", pongOf,
			clientFrame(0x01, ping[:5]), clientFrame(0x89, []byte("mid")), clientFrame(0x00, ping[5:12]), clientFrame(0x80, ping[12:]))
		add("UTF-8 split inside a rune across fragments", pongOf,
			clientFrame(0x01, []byte("{\"op\":\"ping\",\"id\":7,\"x\":\"\xe2\x82")), clientFrame(0x80, []byte("\xac\"}")))
		add("an empty text frame is a bad request, not a close", frameWant{op: 0x1, reply: `"bad_request"`}, clientFrame(0x81, nil))
		add("non-minimal length encoding is tolerated", pongOf, nonMinimal)
		add("close 1000 is answered", fail(1000), clientFrame(0x88, closePayload(1000, "bye")))
		add("close 3000 is answered with 1000", fail(1000), clientFrame(0x88, closePayload(3000, "")))
		add("close 4008 is answered with 1000, not echoed", fail(1000), clientFrame(0x88, closePayload(4008, "")))
		add("close 4999 is answered with 1000", fail(1000), clientFrame(0x88, closePayload(4999, "")))
		add("close 1012 (IANA: service restart)", fail(1000), clientFrame(0x88, closePayload(1012, "")))
		add("close code 1014 (IANA: bad gateway)", fail(1000), clientFrame(0x88, closePayload(1014, "")))
		add("close without a body is answered with 1000", fail(1000), clientFrame(0x88, nil))

		// Masking, lengths, reserved bits and opcodes: 1002.
		add("unmasked text frame", fail(1002), clientFrameLen(0x81, ping, uint64(len(ping)), false))
		add("unmasked ping", fail(1002), clientFrameLen(0x89, nil, 0, false))
		add("ping over 125 bytes", fail(1002), clientFrame(0x89, bytes.Repeat([]byte("p"), 126)))
		add("close over 125 bytes", fail(1002), clientFrame(0x88, closePayload(1000, strings.Repeat("r", 124))))
		add("fragmented ping", fail(1002), clientFrame(0x09, []byte("a")), clientFrame(0x80, []byte("b")))
		add("RSV1 on a text frame", fail(1002), clientFrame(0xC1, ping))
		add("RSV2 on a text frame", fail(1002), clientFrame(0xA1, ping))
		add("RSV3 on a text frame", fail(1002), clientFrame(0x91, ping))
		add("RSV1 on a ping", fail(1002), clientFrame(0xC9, nil))
		add("reserved data opcode 3", fail(1002), clientFrame(0x83, ping))
		add("reserved control opcode 11", fail(1002), clientFrame(0x8B, nil))
		add("orphan continuation", fail(1002), clientFrame(0x80, ping))
		add("orphan continuation, not final", fail(1002), clientFrame(0x00, ping))
		add("text frame inside a fragmented message", fail(1002), clientFrame(0x01, ping[:5]), clientFrame(0x81, ping))

		// Close frames with codes a peer must not send: 1002.
		for _, c := range []uint16{0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535} {
			add("close code "+strconv.Itoa(int(c)), fail(1002), clientFrame(0x88, closePayload(c, "")))
		}
		add("close with a one-byte body", fail(1002), clientFrame(0x88, []byte{0x03}))

		// UTF-8: 1007.
		add("invalid UTF-8 text", fail(1007), clientFrame(0x81, []byte(`{"op":"ping","x":"`+"\xff"+`"}`)))
		add("invalid UTF-8 across fragments", fail(1007), clientFrame(0x01, []byte(`{"op":"ping","x":"`+"\xe2\x82")), clientFrame(0x80, []byte("\x28\"}")))
		add("overlong UTF-8", fail(1007), clientFrame(0x81, []byte(`{"x":"`+"\xc0\xaf"+`"}`)))
		add("UTF-16 surrogate in UTF-8", fail(1007), clientFrame(0x81, []byte(`{"x":"`+"\xed\xa0\x80"+`"}`)))
		add("close reason not UTF-8", fail(1007), clientFrame(0x88, closePayload(1000, "\xff\xfe")))

		// Size: 1009.
		add("fragments over the message limit", fail(1009), clientFrame(0x01, half), clientFrame(0x80, half))
		add("a frame declaring 17 KiB", fail(1009), clientFrameLen(0x81, nil, 17<<10, true))
		add("a frame declaring 2^63-1 bytes", fail(1009), clientFrameLen(0x82, nil, 1<<63-1, true))
		// A fragment flood: 256 small continuations whose total passes the
		// 16 KiB limit exactly at the last one, so the server has read every
		// byte when it closes (no reset races the close frame).
		flood := [][]byte{clientFrame(0x01, []byte("{"))}
		for i := range 256 {
			op := byte(0x00)
			if i == 255 {
				op = 0x80
			}
			flood = append(flood, clientFrame(op, bytes.Repeat([]byte(" "), 64)))
		}
		add("a flood of small fragments", fail(1009), flood...)

		if n := len(cases); n < 40 {
			t.Fatalf("%d frame cases", n)
		}
		t.Logf("frame matrix: %d cases", len(cases))
		for _, fc := range cases {
			t.Run(fc.name, func(t *testing.T) {
				want := fc.want
				if dev, ok := knownDeviations[fc.name]; ok {
					t.Logf("KNOWN DEVIATION from RFC 6455 (gws): want %+v, asserting observed %+v: %s", want, dev.observed, dev.note)
					want = dev.observed
				}
				r := e.rawUpgrade(t, tok)
				for _, b := range fc.send {
					if _, err := r.c.Write(b); err != nil {
						t.Fatalf("write: %v", err)
					}
				}
				if want.reply != "" {
					if f, err := r.awaitFrame(3*time.Second, want.op, want.reply); err != nil {
						t.Fatalf("no reply %q (op %d): %v", want.reply, want.op, err)
					} else if f.op == 0x8 {
						t.Fatalf("closed instead of replying: %q", f.payload)
					}
					return
				}
				// Every close carries a reason (the contract), including
				// the answer to a client's own close.
				res := r.awaitClose(3 * time.Second)
				if !res.frame || res.code != want.code || res.reason == "" {
					t.Fatalf("got %v, want close %d with a reason", res, want.code)
				}
				if res.elapsed > 2*time.Second {
					t.Fatalf("closed only after %v", res.elapsed)
				}
			})
		}
	})

	t.Run("a command in the same write as the handshake request", func(t *testing.T) {
		// The command's bytes reach the server's HTTP reader together
		// with the request; they must not be lost at the upgrade.
		r := e.rawDial(t)
		req := upgradeRequest(WebSocketPath, http.Header{
			"Authorization":          {"Bearer " + rs(claims("sub", "eager"))},
			"Sec-Websocket-Protocol": {"tickgate.v1.json"},
		})
		if _, err := r.c.Write(append(req, clientFrame(0x81, []byte(`{"op":"ping","id":42}`))...)); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(r.br, &http.Request{Method: http.MethodGet})
		if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("handshake: %v %v", resp, err)
		}
		f, err := r.awaitFrame(3*time.Second, 0x1, `"pong"`)
		if err != nil || f.op != 0x1 || !strings.Contains(string(f.payload), `"id":42`) {
			t.Fatalf("got %q (op %d), %v: want the pong for id 42", f.payload, f.op, err)
		}
	})

	t.Run("a frame declaring 16 MiB then stalling", func(t *testing.T) {
		r := e.rawUpgrade(t, rs(claims("sub", "stall")))
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		if _, err := r.c.Write(clientFrameLen(0x82, []byte("only a little"), 16<<20, true)); err != nil {
			t.Fatal(err)
		}
		res := r.awaitClose(5 * time.Second)
		runtime.ReadMemStats(&m1)
		if !res.frame || res.code != 1009 || res.elapsed > time.Second {
			t.Fatalf("got %v, want close 1009 at once", res)
		}
		if grew := m1.TotalAlloc - m0.TotalAlloc; grew > 8<<20 {
			t.Fatalf("the process allocated %d MiB while refusing the frame", grew>>20)
		}
	})

	t.Run("slowloris", func(t *testing.T) {
		t.Run("request headers a byte per 500 ms", func(t *testing.T) {
			r := e.rawDial(t)
			req := upgradeRequest(WebSocketPath, http.Header{"Authorization": {"Bearer " + rs(claims("sub", "slow"))}})
			go func() {
				for _, b := range req {
					if _, err := r.c.Write([]byte{b}); err != nil {
						return
					}
					time.Sleep(500 * time.Millisecond)
				}
			}()
			start := time.Now()
			_ = r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
			got, err := readUntilClosed(r.c)
			took := time.Since(start)
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("still open after %v", took)
			}
			if took > 3*time.Second {
				t.Fatalf("closed after %v; HandshakeTimeout is 1 s", took)
			}
			// net/http may answer the cut request (400 or 408) before closing.
			if len(got) > 0 && !bytes.HasPrefix(got, []byte("HTTP/1.1 400 ")) && !bytes.HasPrefix(got, []byte("HTTP/1.1 408 ")) {
				t.Fatalf("answered %q", got)
			}
			t.Logf("closed after %v (%d bytes of request sent)", took.Round(time.Millisecond), int(took/(500*time.Millisecond))+1)
		})
		t.Run("TCP connection that never starts TLS", func(t *testing.T) {
			c, err := net.Dial("tcp", e.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			start := time.Now()
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := readUntilClosed(c); err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					t.Fatalf("still open after %v", time.Since(start))
				}
			}
			if took := time.Since(start); took > 3*time.Second {
				t.Fatalf("closed after %v", took)
			}
		})
		t.Run("a frame trickled after the upgrade", func(t *testing.T) {
			r := e.rawUpgrade(t, rs(claims("sub", "trickle")))
			frame := clientFrame(0x81, ping7())
			go func() {
				for _, b := range frame {
					if _, err := r.c.Write([]byte{b}); err != nil {
						return
					}
					time.Sleep(500 * time.Millisecond)
				}
			}()
			res := r.awaitClose(10 * time.Second)
			if res.err != nil && isTimeout(res.err) {
				t.Fatalf("a trickling client is still connected after %v", res.elapsed)
			}
			if res.elapsed > 3*time.Second+2*time.Second {
				t.Fatalf("closed after %v; IdleTimeout is 3 s", res.elapsed)
			}
			t.Logf("trickling client: %v", res)
		})
	})

	// Contract 1.1's subscribe options, hostile: out of range, of the wrong
	// type, far too large, on the wrong kinds; channels that are almost
	// candles. Each gets its documented error (counted), nothing else.
	t.Run("subscribe options", func(t *testing.T) {
		before := map[proto.ErrorCode]float64{}
		for _, c := range proto.ErrorCodes() {
			before[c] = count(t, e.srv.metrics.errorsByCode[c])
		}
		type optCase struct {
			name string
			raw  string // one JSON command
			code proto.ErrorCode
		}
		sub := func(extra string) string {
			return `{"op":"subscribe","id":5,"channels":["book.BTC-USD","trade.BTC-USD","candle.1m.BTC-USD"]` + extra + `}`
		}
		cases := []optCase{
			{"depth 0", sub(`,"depth":0`), proto.CodeBadRequest},
			{"depth 7", sub(`,"depth":7`), proto.CodeBadRequest},
			{"depth 1001", sub(`,"depth":1001`), proto.CodeBadRequest},
			{"depth negative", sub(`,"depth":-10`), proto.CodeBadRequest},
			{"depth 2^62", sub(`,"depth":4611686018427387904`), proto.CodeBadRequest},
			{"depth beyond int64", sub(`,"depth":18446744073709551616`), proto.CodeBadRequest},
			{"depth a string", sub(`,"depth":"10"`), proto.CodeBadRequest},
			{"depth a float", sub(`,"depth":10.5`), proto.CodeBadRequest},
			{"depth a list", sub(`,"depth":[10]`), proto.CodeBadRequest},
			{"depth an object", sub(`,"depth":{"d":10}`), proto.CodeBadRequest},
			{"recent -1", sub(`,"recent":-1`), proto.CodeBadRequest},
			{"recent 1001", sub(`,"recent":1001`), proto.CodeBadRequest},
			{"recent 2^40", sub(`,"recent":1099511627776`), proto.CodeBadRequest},
			{"recent true", sub(`,"recent":true`), proto.CodeBadRequest},
			{"bars 0", sub(`,"bars":0`), proto.CodeBadRequest},
			{"bars 1001", sub(`,"bars":1001`), proto.CodeBadRequest},
			{"bars -5", sub(`,"bars":-5`), proto.CodeBadRequest},
			{"bars nested deep", sub(`,"bars":` + strings.Repeat("[", 40) + strings.Repeat("]", 40)), proto.CodeBadRequest},
			{"candle without interval", `{"op":"subscribe","id":6,"channels":["candle.BTC-USD"]}`, proto.CodeBadChannel},
			{"candle with an unknown interval", `{"op":"subscribe","id":6,"channels":["candle.2m.BTC-USD"]}`, proto.CodeBadChannel},
			{"candle interval in upper case", `{"op":"subscribe","id":6,"channels":["candle.1M.BTC-USD"]}`, proto.CodeBadChannel},
			{"candle with four tokens", `{"op":"subscribe","id":6,"channels":["candle.1m.BTC.USD"]}`, proto.CodeBadChannel},
			{"candle with a wildcard interval", `{"op":"subscribe","id":6,"channels":["candle.*.BTC-USD"]}`, proto.CodeBadChannel},
			{"candle with a huge interval", `{"op":"subscribe","id":6,"channels":["candle.` + strings.Repeat("1", 4000) + `.X"]}`, proto.CodeBadChannel},
		}
		// A connection per few cases: malformed commands strike, and 20
		// in a row close with 1008, which is not what this tests.
		var c *testClient
		for i, tc := range cases {
			if i%8 == 0 {
				c = e.connect(t, "json", rs(claims("sub", "options")))
			}
			c.sendRaw(t, []byte(tc.raw))
			w := c.next(t)
			if w.Type != proto.TypeError || w.Code != string(tc.code) {
				t.Fatalf("%s: got %s, want %s", tc.name, w.raw, tc.code)
			}
		}
		// In range on the kinds that take them, ignored on the others:
		// one ack for the three channels.
		c.sendRaw(t, []byte(sub(`,"depth":1000,"recent":1000,"bars":1000`)))
		if w := c.expect(t, proto.TypeSubscribed); len(w.Channels) != 3 {
			t.Fatalf("valid options: %s", w.raw)
		}
		want := map[proto.ErrorCode]float64{proto.CodeBadRequest: 18, proto.CodeBadChannel: 6}
		for code, n := range want {
			if got := count(t, e.srv.metrics.errorsByCode[code]) - before[code]; got != n {
				t.Fatalf("%s counted %v times, want %v", code, got, n)
			}
		}
		t.Logf("subscribe options: %d hostile commands answered with their errors", len(cases))
	})

	// The REST snapshot endpoint, hostile: the token matrix's refusals,
	// paths that are not channels, options out of range, methods it does
	// not serve. Each gets its status and code, no body quotes a token,
	// and the node serves on.
	t.Run("rest", func(t *testing.T) {
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: e.cert.ClientConfig()}, Timeout: 10 * time.Second}
		t.Cleanup(client.CloseIdleConnections)
		valid := rs(claims())
		tickersOnly := rs(claims("channels", []any{"ticker.*"}))
		base := "https://" + e.addr
		type restCase struct {
			name, method, path string
			header             http.Header
			status             int
			code               string // "" when net/http answers before the handler
		}
		bearer := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }
		cases := []restCase{
			{"no token", "GET", "/v1/snapshot/book.BTC-USD", nil, 401, "missing_token"},
			{"alg none", "GET", "/v1/snapshot/book.BTC-USD", bearer(record(jsonSeg(t, hdr("none")) + "." + jsonSeg(t, claims()) + ".")), 401, "invalid_token"},
			{"expired", "GET", "/v1/snapshot/book.BTC-USD", bearer(hs(claims("exp", at(-time.Hour), "iat", at(-2*time.Hour)))), 401, "token_expired"},
			{"query token while disabled", "GET", "/v1/snapshot/book.BTC-USD?access_token=" + valid, nil, 401, "missing_token"},
			{"token in a cookie", "GET", "/v1/snapshot/book.BTC-USD", http.Header{"Cookie": {"access_token=" + valid}}, 401, "missing_token"},
			{"a channel the token does not allow", "GET", "/v1/snapshot/book.BTC-USD", bearer(tickersOnly), 403, "forbidden"},
			{"a candle the token does not allow", "GET", "/v1/snapshot/candle.1m.BTC-USD", bearer(tickersOnly), 403, "forbidden"},
			{"not a channel", "GET", "/v1/snapshot/etc-passwd", bearer(valid), 400, "bad_channel"},
			{"a path below a channel", "GET", "/v1/snapshot/book.BTC-USD/x", bearer(valid), 400, "bad_channel"},
			{"an encoded slash", "GET", "/v1/snapshot/book.BTC-USD%2F..%2Fx", bearer(valid), 400, "bad_channel"},
			{"a wildcard", "GET", "/v1/snapshot/book.*", bearer(valid), 400, "bad_channel"},
			{"an 8 KiB channel", "GET", "/v1/snapshot/book." + strings.Repeat("A", 8<<10), bearer(valid), 400, "bad_channel"},
			{"invalid UTF-8", "GET", "/v1/snapshot/book.%ff%fe", bearer(valid), 400, "bad_channel"},
			{"depth 7", "GET", "/v1/snapshot/book.BTC-USD?depth=7", bearer(valid), 400, "bad_request"},
			{"depth twice", "GET", "/v1/snapshot/book.BTC-USD?depth=10&depth=10", bearer(valid), 400, "bad_request"},
			{"depth 2^70", "GET", "/v1/snapshot/book.BTC-USD?depth=1180591620717411303424", bearer(valid), 400, "bad_request"},
			{"bars 0", "GET", "/v1/snapshot/candle.1m.BTC-USD?bars=0", bearer(valid), 400, "bad_request"},
			{"recent -1", "GET", "/v1/snapshot/trade.BTC-USD?recent=-1", bearer(valid), 400, "bad_request"},
			{"a trade channel without recent", "GET", "/v1/snapshot/trade.BTC-USD", bearer(valid), 400, "bad_request"},
			{"POST", "POST", "/v1/snapshot/book.BTC-USD", bearer(valid), 405, "method_not_allowed"},
			{"DELETE", "DELETE", "/v1/snapshot/book.BTC-USD", bearer(valid), 405, "method_not_allowed"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				req, err := http.NewRequest(tc.method, base+tc.path, strings.NewReader("x"))
				if err != nil {
					t.Fatal(err)
				}
				for k, v := range tc.header {
					req.Header[k] = v
				}
				resp, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
				var got struct{ Error, Message string }
				if resp.StatusCode != tc.status || json.Unmarshal(body, &got) != nil || got.Error != tc.code || got.Message == "" {
					t.Fatalf("%d %.200s, want %d %s", resp.StatusCode, body, tc.status, tc.code)
				}
				if len(body) > 4<<10 {
					t.Fatalf("a %d-byte refusal", len(body))
				}
				for _, v := range append(tc.header.Values("Authorization"), tc.path) {
					if i := strings.LastIndexByte(v, '.'); i > 0 && len(v)-i > 16 && strings.Contains(string(body), v[i+1:]) {
						t.Fatalf("the refusal quotes a token's signature: %.200s", body)
					}
				}
			})
		}
		t.Logf("rest: %d hostile requests refused with their codes", len(cases))
	})

	t.Run("healthy client still served", func(t *testing.T) {
		stop()
		if err := <-feedDone; err != nil {
			t.Fatalf("publisher: %v", err)
		}
		last := published.Load() + 1
		e.publishMessage(t, btc, trade(last))
		e.flush(t)
		if last < 20 {
			t.Fatalf("only %d trades were published during the matrix", last)
		}
		var prev uint64
		for id := int64(1); id <= last; id++ {
			w := healthy.next(t)
			if w.Type != proto.TypeUpdate || w.Channel != "trade.BTC-USD" || w.Data.ID != id || w.Prev == nil || *w.Prev != prev {
				t.Fatalf("trade %d: got %s (prev %d)", id, w.raw, prev)
			}
			prev = w.Seq
		}
		healthy.send(t, proto.Command{Op: proto.OpPing, ID: ptr[int64](99)})
		healthy.expect(t, proto.TypePong)
		t.Logf("the healthy client got all %d trades published during the matrix, in order", last)
	})

	t.Run("memory bounded", func(t *testing.T) {
		var after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&after)
		grew := int64(after.HeapInuse) - int64(before.HeapInuse)
		t.Logf("HeapInuse %d MiB before, %d MiB after the matrix (%+d KiB)", before.HeapInuse>>20, after.HeapInuse>>20, grew>>10)
		if grew > 16<<20 {
			t.Fatalf("HeapInuse grew by %d MiB", grew>>20)
		}
	})

	t.Run("logs hold no token", func(t *testing.T) {
		logs := e.logs.String()
		if !strings.Contains(logs, "handshake refused") {
			t.Fatalf("the logs did not capture the matrix:\n%.2000s", logs)
		}
		tokMu.Lock()
		defer tokMu.Unlock()
		for _, tok := range tokens {
			if len(tok) >= 16 && strings.Contains(logs, tok[:16]) {
				t.Fatalf("a token prefix reached the logs: %.40s…", tok)
			}
			for seg := range strings.SplitSeq(tok, ".") {
				for i := 0; i+16 <= len(seg); i += 8 {
					if strings.Contains(logs, seg[i:i+16]) {
						t.Fatalf("16 bytes of a token (%q) reached the logs", seg[i:i+16])
					}
				}
			}
		}
		for _, secret := range [][]byte{k.hmac, k.hmacOther, k.rsaPEM[30:60]} {
			if strings.Contains(logs, string(secret)) {
				t.Fatal("key material reached the logs")
			}
		}
		t.Logf("%d tokens checked against %d KiB of logs", len(tokens), len(logs)>>10)
	})
}

// ping7 is a ping command.
func ping7() []byte { return []byte(`{"op":"ping","id":7}`) }

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// readUntilClosed reads until the connection ends; it returns what it read
// and the error that ended it (nil for a clean EOF).
func readUntilClosed(c net.Conn) ([]byte, error) {
	var got []byte
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			if err.Error() == "EOF" {
				return got, nil
			}
			if isTimeout(err) {
				return got, err
			}
			return got, nil // reset or TLS alert: closed all the same
		}
	}
}

// TestSecurityFrameLengthMSB sends a frame whose 64-bit length has the most
// significant bit set, which RFC 6455 §5.2 forbids ("the most significant
// bit MUST be 0"): the connection must fail with 1002 and the node live
// on. gws v1.9.1 turns such a length negative and its read loop panics;
// the gateway's read loop recovers, answers 1002 and cleans up.
func TestSecurityFrameLengthMSB(t *testing.T) {
	securityMSBChild(t)
}

// securityMSBChild: a gateway, a client that sends the frame, the 1002
// answer, and a node that still serves.
func securityMSBChild(t *testing.T) {
	k := newSecKeys(t)
	keys := auth.NewKeySet()
	if err := keys.Set([]auth.Key{{ID: "hs", Material: k.hmac}}); err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(auth.Config{Audience: "tickgate"}, keys)
	if err != nil {
		t.Fatal(err)
	}
	e := newSecurityEnv(t, v)
	tok := jws(t, "HS256", k.hmac, map[string]any{"alg": "HS256", "kid": "hs"}, map[string]any{
		"sub": "msb", "channels": []any{">"}, "aud": "tickgate", "exp": time.Now().Add(time.Hour).Unix()})
	r := e.rawUpgrade(t, tok)
	f := []byte{0x82, 0x80 | 127}
	f = binary.BigEndian.AppendUint64(f, 1<<63)
	f = append(f, 1, 2, 3, 4)
	if _, err := r.c.Write(f); err != nil {
		t.Fatal(err)
	}
	res := r.awaitClose(5 * time.Second)
	if !res.frame || res.code != 1002 {
		t.Fatalf("got %v, want close 1002", res)
	}
	waitFor(t, "connection cleaned up", func() bool { return e.srv.Connections() == 0 })
	r2 := e.rawUpgrade(t, tok) // the node still serves
	_ = r2.c.Close()
}
