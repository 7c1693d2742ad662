package gateway

import (
	"bufio"
	"crypto"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tickgate/tickgate/auth"
)

// Helpers of the security tests (security_*_test.go): a gateway built
// around a verifier the test chooses, a hand-rolled JWS signer (so tokens
// can be wrong in every way a library would refuse to produce), and a raw
// TLS WebSocket client that writes frames byte by byte and reads the
// server's frames, close code included.

// newSecurityEnv is newTestEnvWith, node "gw-sec".
func newSecurityEnv(t *testing.T, verifier *auth.Verifier, tweak ...func(*Config)) *testEnv {
	t.Helper()
	return newTestEnvWith(t, verifier, append([]func(*Config){func(c *Config) { c.NodeID = "gw-sec" }}, tweak...)...)
}

// b64 is base64url without padding, as JWS uses.
func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// jsonSeg is the base64url JSON of v (a map, or raw JSON text as a string).
func jsonSeg(t testing.TB, v any) string {
	t.Helper()
	if s, ok := v.(string); ok {
		return b64([]byte(s))
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b64(b)
}

// jws signs header.claims with alg and key, whatever the header says:
// HS256/HS512 take a []byte secret, RS256/PS256 an *rsa.PrivateKey, ES256
// an *ecdsa.PrivateKey; "" leaves the signature empty.
func jws(t testing.TB, alg string, key any, header, claims any) string {
	t.Helper()
	input := jsonSeg(t, header) + "." + jsonSeg(t, claims)
	return input + "." + b64(signJWS(t, alg, key, input))
}

func signJWS(t testing.TB, alg string, key any, input string) []byte {
	t.Helper()
	switch alg {
	case "":
		return nil
	case "HS256":
		m := hmac.New(sha256.New, key.([]byte))
		m.Write([]byte(input))
		return m.Sum(nil)
	case "HS512":
		m := hmac.New(sha512.New, key.([]byte))
		m.Write([]byte(input))
		return m.Sum(nil)
	case "RS256", "PS256":
		h := sha256.Sum256([]byte(input))
		var sig []byte
		var err error
		if alg == "RS256" {
			sig, err = rsa.SignPKCS1v15(rand.Reader, key.(*rsa.PrivateKey), crypto.SHA256, h[:])
		} else {
			sig, err = rsa.SignPSS(rand.Reader, key.(*rsa.PrivateKey), crypto.SHA256, h[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		}
		if err != nil {
			t.Fatal(err)
		}
		return sig
	case "ES256":
		h := sha256.Sum256([]byte(input))
		r, s, err := ecdsa.Sign(rand.Reader, key.(*ecdsa.PrivateKey), h[:])
		if err != nil {
			t.Fatal(err)
		}
		sig := make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
		return sig
	}
	t.Fatalf("jws: unknown alg %s", alg)
	return nil
}

// rawConn is a WebSocket client written by hand over a real TLS
// connection: it sends whatever bytes a test gives it and reads the
// server's frames one by one.
type rawConn struct {
	c  net.Conn
	br *bufio.Reader
}

// rawDial opens a TLS connection to e without sending anything.
func (e *testEnv) rawDial(t *testing.T) *rawConn {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", e.addr, e.cert.ClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &rawConn{c: c, br: bufio.NewReader(c)}
}

// upgradeRequest is the handshake request of a WebSocket client, with the
// given extra headers (Host, Upgrade, Connection, Sec-WebSocket-Key and
// -Version are set; a header given here replaces the default).
func upgradeRequest(target string, h http.Header) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\n", target)
	std := http.Header{
		"Host":                  {"localhost"},
		"Upgrade":               {"websocket"},
		"Connection":            {"Upgrade"},
		"Sec-Websocket-Key":     {"dGhlIHNhbXBsZSBub25jZQ=="},
		"Sec-Websocket-Version": {"13"},
	}
	for k, v := range h {
		std[http.CanonicalHeaderKey(k)] = v
	}
	for k, vs := range std {
		for _, v := range vs {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	b.WriteString("\r\n")
	return []byte(b.String())
}

// handshake writes an upgrade request for target with headers h and reads
// the response. The body of a refusal is read (at most 64 KiB) and
// returned; on 101 the connection is ready for frames.
func (r *rawConn) handshake(t *testing.T, target string, h http.Header) (*http.Response, []byte) {
	t.Helper()
	_ = r.c.SetDeadline(time.Now().Add(10 * time.Second))
	defer func() { _ = r.c.SetDeadline(time.Time{}) }()
	if _, err := r.c.Write(upgradeRequest(target, h)); err != nil {
		t.Fatalf("write handshake: %v", err)
	}
	resp, err := http.ReadResponse(r.br, &http.Request{Method: http.MethodGet})
	if err != nil {
		t.Fatalf("read handshake response: %v", err)
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		return resp, nil
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp, body
}

// rawUpgrade dials and completes a handshake with a bearer token offering
// the JSON codec, and reads the welcome.
func (e *testEnv) rawUpgrade(t *testing.T, token string) *rawConn {
	t.Helper()
	r := e.rawDial(t)
	resp, body := r.handshake(t, WebSocketPath, http.Header{
		"Authorization":          {"Bearer " + token},
		"Sec-Websocket-Protocol": {"tickgate.v1.json"},
	})
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %d %s", resp.StatusCode, body)
	}
	f, err := r.readFrame(5 * time.Second)
	if err != nil || f.op != 0x1 || !strings.Contains(string(f.payload), `"welcome"`) {
		t.Fatalf("first frame %+v, %v: want the welcome", f, err)
	}
	return r
}

// serverFrame is one frame the server sent.
type serverFrame struct {
	fin     bool
	rsv     byte
	op      byte
	masked  bool
	payload []byte
}

// readFrame reads one frame within d.
func (r *rawConn) readFrame(d time.Duration) (serverFrame, error) {
	_ = r.c.SetReadDeadline(time.Now().Add(d))
	var f serverFrame
	var h [2]byte
	if _, err := io.ReadFull(r.br, h[:]); err != nil {
		return f, err
	}
	f.fin, f.rsv, f.op, f.masked = h[0]&0x80 != 0, h[0]&0x70, h[0]&0x0f, h[1]&0x80 != 0
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var l [2]byte
		if _, err := io.ReadFull(r.br, l[:]); err != nil {
			return f, err
		}
		n = uint64(binary.BigEndian.Uint16(l[:]))
	case 127:
		var l [8]byte
		if _, err := io.ReadFull(r.br, l[:]); err != nil {
			return f, err
		}
		n = binary.BigEndian.Uint64(l[:])
	}
	if n > 1<<20 {
		return f, fmt.Errorf("server frame of %d bytes", n)
	}
	var mask [4]byte
	if f.masked {
		if _, err := io.ReadFull(r.br, mask[:]); err != nil {
			return f, err
		}
	}
	f.payload = make([]byte, n)
	if _, err := io.ReadFull(r.br, f.payload); err != nil {
		return f, err
	}
	return f, nil
}

// closeResult is how a connection ended, seen from the client.
type closeResult struct {
	code    uint16 // from the server's close frame; 0 when it sent none
	reason  string
	frame   bool          // a close frame arrived
	err     error         // the read error that ended the wait, if no close frame
	elapsed time.Duration // from the call until the close frame or the error
	frames  []serverFrame // data and control frames before the close
}

// awaitClose reads frames until the server's close frame or the end of the
// connection, within d. Server pings are not answered.
func (r *rawConn) awaitClose(d time.Duration) closeResult {
	start := time.Now()
	deadline := start.Add(d)
	var res closeResult
	for {
		f, err := r.readFrame(time.Until(deadline))
		if err != nil {
			res.err, res.elapsed = err, time.Since(start)
			return res
		}
		if f.op == 0x8 {
			res.frame, res.elapsed = true, time.Since(start)
			if len(f.payload) >= 2 {
				res.code = binary.BigEndian.Uint16(f.payload)
				res.reason = string(f.payload[2:])
			}
			return res
		}
		res.frames = append(res.frames, f)
	}
}

// awaitFrame reads frames until one with opcode op whose payload contains
// sub, or a close frame, which it returns; an error when neither arrives
// within d.
func (r *rawConn) awaitFrame(d time.Duration, op byte, sub string) (serverFrame, error) {
	deadline := time.Now().Add(d)
	for {
		f, err := r.readFrame(time.Until(deadline))
		if err != nil {
			return f, err
		}
		if f.op == 0x8 || f.op == op && strings.Contains(string(f.payload), sub) {
			return f, nil
		}
	}
}

func (c closeResult) String() string {
	if c.frame {
		return fmt.Sprintf("close %d %q after %v", c.code, c.reason, c.elapsed.Round(time.Millisecond))
	}
	return fmt.Sprintf("no close frame (%v) after %v", c.err, c.elapsed.Round(time.Millisecond))
}

// clientFrame builds one masked client frame with the given first byte
// (FIN, RSV and opcode bits) and payload. The mask key is not zero, so a
// server that forgot to unmask would see garbage.
func clientFrame(b0 byte, payload []byte) []byte {
	return clientFrameLen(b0, payload, uint64(len(payload)), true)
}

// clientFrameLen builds a frame declaring length n (which may differ from
// len(payload)), masked or not, with the minimal length encoding.
func clientFrameLen(b0 byte, payload []byte, n uint64, masked bool) []byte {
	f := []byte{b0}
	m := byte(0)
	if masked {
		m = 0x80
	}
	switch {
	case n < 126:
		f = append(f, m|byte(n))
	case n <= 0xffff:
		f = append(f, m|126, byte(n>>8), byte(n))
	default:
		f = append(f, m|127)
		f = binary.BigEndian.AppendUint64(f, n)
	}
	if !masked {
		return append(f, payload...)
	}
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	f = append(f, key[:]...)
	for i, c := range payload {
		f = append(f, c^key[i%4])
	}
	return f
}

// closePayload is a close frame body: code and reason.
func closePayload(code uint16, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, code), reason...)
}
