package gateway

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/tickgate/tickgate/internal/selfsigned"
	"github.com/tickgate/tickgate/proto"
)

// tlsPair is a TLS connection over loopback TCP: the server's side read
// through a tlsReader, and the client's raw socket under its tls.Conn, so
// that a test decides how the records reach the wire.
type tlsPair struct {
	r      *tlsReader
	server *tls.Conn
	client *tls.Conn
	wire   *heldWriter // the client's socket: writes are held until flush when hold is set
}

// heldWriter is a net.Conn whose writes can be held back and sent in one
// write (several TLS records in one segment) or in pieces with pauses.
type heldWriter struct {
	net.Conn
	mu   sync.Mutex
	hold bool
	buf  bytes.Buffer
}

func (h *heldWriter) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.hold {
		return h.buf.Write(p)
	}
	return h.Conn.Write(p)
}

// flush sends what was held in pieces of at most piece bytes (0: at
// once), pausing between them, and stops holding.
func (h *heldWriter) flush(piece int, pause time.Duration) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.hold = false
	b := h.buf.Bytes()
	for len(b) > 0 {
		n := len(b)
		if piece > 0 {
			n = min(n, piece)
		}
		if _, err := h.Conn.Write(b[:n]); err != nil {
			return err
		}
		b = b[n:]
		if len(b) > 0 {
			time.Sleep(pause)
		}
	}
	h.buf.Reset()
	return nil
}

func newTLSPair(t *testing.T) *tlsPair {
	t.Helper()
	cert, err := selfsigned.New(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	raw, sc := loopbackPair(t)
	p := &tlsPair{wire: &heldWriter{Conn: raw}}
	p.server = tls.Server(sc, cert.ServerConfig())
	ccfg := cert.ClientConfig()
	ccfg.ServerName = "localhost"
	p.client = tls.Client(p.wire, ccfg)
	t.Cleanup(func() { _ = p.client.Close(); _ = p.server.Close() })
	errc := make(chan error, 1)
	go func() { errc <- p.server.Handshake() }()
	if err := p.client.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	p.r = newTLSReader(p.server)
	if canWaitReadable && p.r.raw == nil {
		t.Fatal("tlsReader has no socket to wait on")
	}
	return p
}

// readFull reads n bytes from r in reads of at most chunk bytes, failing
// the test if that takes longer than within.
func readFull(t *testing.T, r io.Reader, n, chunk int, within time.Duration) []byte {
	t.Helper()
	type result struct {
		b   []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		var got []byte
		buf := make([]byte, chunk)
		for len(got) < n {
			k, err := r.Read(buf[:min(chunk, n-len(got))])
			got = append(got, buf[:k]...)
			if err != nil {
				done <- result{got, err}
				return
			}
		}
		done <- result{got, nil}
	}()
	select {
	case res := <-done:
		if res.err != nil {
			t.Fatalf("read %d of %d bytes: %v", len(res.b), n, res.err)
		}
		return res.b
	case <-time.After(within):
		t.Fatalf("%d bytes not read within %v", n, within)
		return nil
	}
}

// TestTLSReader: what crypto/tls holds already is returned without a
// wait for the socket, what arrives later or in pieces is read whole, and
// closing the socket ends a waiting Read.
func TestTLSReader(t *testing.T) {
	tests := []struct {
		name   string
		writes []string      // each one TLS record (tls.Conn.Write)
		chunk  int           // the reader's read size
		piece  int           // the wire sends the held records in pieces of this (0: one write)
		pause  time.Duration // between pieces
		late   time.Duration // before the records are sent
	}{
		{name: "two records in one segment", writes: []string{"hello", "world"}, chunk: 5},
		{name: "a record larger than the read", writes: []string{string(bytes.Repeat([]byte("x"), 3000))}, chunk: 512},
		{name: "records in pieces", writes: []string{"pieces of", " a record"}, chunk: 512, piece: 7, pause: 20 * time.Millisecond},
		{name: "arrives after a wait", writes: []string{"later"}, chunk: 512, late: 200 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newTLSPair(t)
			want := ""
			p.wire.mu.Lock()
			p.wire.hold = true
			p.wire.mu.Unlock()
			for _, w := range tc.writes {
				if _, err := p.client.Write([]byte(w)); err != nil {
					t.Fatal(err)
				}
				want += w
			}
			go func() {
				time.Sleep(tc.late)
				_ = p.wire.flush(tc.piece, tc.pause)
			}()
			got := readFull(t, p.r, len(want), tc.chunk, 5*time.Second)
			if string(got) != want {
				t.Fatalf("read %q, want %q", got, want)
			}
		})
	}
	ends := []struct {
		name string
		end  func(p *tlsPair)
		want error // nil: any error
	}{
		{name: "closing the socket ends a waiting read", end: func(p *tlsPair) { _ = p.server.NetConn().Close() }, want: net.ErrClosed},
		{name: "the peer's close ends a waiting read", end: func(p *tlsPair) { _ = p.client.Close() }},
	}
	for _, tc := range ends {
		t.Run(tc.name, func(t *testing.T) {
			p := newTLSPair(t)
			done := make(chan error, 1)
			go func() {
				_, err := p.r.Read(make([]byte, 16))
				done <- err
			}()
			time.Sleep(100 * time.Millisecond) // the read waits
			tc.end(p)
			select {
			case err := <-done:
				if err == nil || tc.want != nil && !errors.Is(err, tc.want) {
					t.Fatalf("read after the end: %v, want %v", err, cmp.Or(tc.want, errors.New("an error")))
				}
			case <-time.After(2 * time.Second):
				t.Fatal("the read did not end")
			}
		})
	}
}

// TestReaderAfterHijackOverTLS: bytes net/http's reader holds already (a
// frame right behind the handshake request) come first, then what the
// client sends later, read through the TLS socket.
func TestReaderAfterHijackOverTLS(t *testing.T) {
	p := newTLSPair(t)
	if _, err := p.client.Write([]byte("early")); err != nil {
		t.Fatal(err)
	}
	hr := bufio.NewReader(p.server)
	if _, err := hr.Peek(len("early")); err != nil {
		t.Fatal(err)
	}
	r := readerAfterHijack(p.server, hr)
	go func() {
		time.Sleep(100 * time.Millisecond)
		_, _ = p.client.Write([]byte("later"))
	}()
	if got := readFull(t, r, len("earlylater"), 512, 5*time.Second); string(got) != "earlylater" {
		t.Fatalf("read %q", got)
	}
}

// A TLS connection whose read loop waits above crypto/tls (tlsReader)
// reads a command that arrives after collections shrank its stack, and
// one sent in pieces, then ends promptly when the node shuts down.
func TestTLSParkedConnectionReadsAndCloses(t *testing.T) {
	e := newTestEnv(t)
	cfg := e.cert.ClientConfig()
	dial := func() (net.Conn, error) { return tls.Dial("tcp", e.addr, cfg) }
	cmd := func(id int64, op string) []byte {
		b, err := json.Marshal(proto.Command{Op: op, ID: ptr(id), Channels: []string{"ticker.PARK"}})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	nc := bareSubscriber(t, dial, e.addr, e.token(t, "parked", time.Hour, ">"), cmd(1, proto.OpSubscribe))
	t.Cleanup(func() { _ = nc.Close() })
	br := bufio.NewReader(nc)
	runtime.GC()
	runtime.GC()
	time.Sleep(100 * time.Millisecond)

	// The unsubscribe in pieces: each write is a TLS record of its own.
	frame := maskedFrame(true, 0x1, cmd(2, proto.OpUnsubscribe))
	_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
	for _, piece := range [][]byte{frame[:1], frame[1:6], frame[6 : len(frame)-3], frame[len(frame)-3:]} {
		if _, err := nc.Write(piece); err != nil {
			t.Fatal(err)
		}
		time.Sleep(30 * time.Millisecond)
	}
	for {
		payload := readServerFrame(t, br)
		if bytes.Contains(payload, []byte(`"type":"unsubscribed"`)) {
			break
		}
	}

	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown with a parked connection: %v", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("shutdown took %v", took)
	}
	if n := e.srv.Connections(); n != 0 {
		t.Fatalf("%d connections after shutdown", n)
	}
}

// A TLS connection whose read loop waits above crypto/tls is closed by
// the idle timeout.
func TestTLSParkedConnectionIdleTimeout(t *testing.T) {
	e := newTestEnv(t, func(c *Config) {
		c.HeartbeatInterval = 100 * time.Millisecond
		c.IdleTimeout = 400 * time.Millisecond
	})
	cfg := e.cert.ClientConfig()
	dial := func() (net.Conn, error) { return tls.Dial("tcp", e.addr, cfg) }
	sub := fmt.Appendf(nil, `{"op":"subscribe","id":1,"channels":["ticker.IDLE"]}`)
	nc := bareSubscriber(t, dial, e.addr, e.token(t, "silent", time.Hour, ">"), sub)
	t.Cleanup(func() { _ = nc.Close() })
	start := time.Now()
	for e.srv.Connections() > 0 {
		if time.Since(start) > 5*time.Second {
			t.Fatal("a silent TLS connection outlived the idle timeout")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Fatalf("closed after %v, before the idle timeout", took)
	}
}
