package gateway

import (
	"crypto/tls"
	"testing"
	"time"
	"unsafe"

	"github.com/tickgate/tickgate/internal/selfsigned"
)

// handshaken returns both ends of a TLS connection over loopback TCP,
// handshake done, with the server's version capped at maxVersion (0: the
// default).
func handshaken(t testing.TB, maxVersion uint16) (server, client *tls.Conn) {
	t.Helper()
	cert, err := selfsigned.New(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	b, a := loopbackPair(t)
	sc := cert.ServerConfig()
	sc.MaxVersion = maxVersion
	cc := cert.ClientConfig()
	cc.ServerName = "localhost"
	server, client = tls.Server(a, sc), tls.Client(b, cc)
	t.Cleanup(func() { _ = server.Close(); _ = client.Close() })
	done := make(chan error, 1)
	go func() {
		err := client.Handshake()
		if err != nil {
			_ = b.Close() // the server's handshake ends too
		}
		done <- err
	}()
	serr := server.Handshake()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if serr != nil {
		t.Fatal(serr)
	}
	return server, client
}

// TestTLSLinesFound: this Go's tls.Conn has the fields touchHeld reads,
// and the write cipher of a TLS 1.3 and of a TLS 1.2 connection (AES-GCM
// in both) is learned with the AEAD inside it. When a Go release renames
// them, TLS connections go untouched (a cost, not a fault), and this
// fails so that it is noticed.
func TestTLSLinesFound(t *testing.T) {
	l := tlsConnLines
	if !l.ok {
		t.Fatal("tls.Conn's fields were not found: TLS connections are not touched")
	}
	lines := map[uintptr]bool{}
	for _, off := range l.words {
		lines[off/64] = true
	}
	if len(lines) != len(l.words) {
		t.Errorf("words %v: %d lines, want one each", l.words, len(lines))
	}
	var cs touches
	cs.learn(nil) // no connection: nothing
	for _, v := range []uint16{0, tls.VersionTLS12} {
		server, _ := handshaken(t, v)
		cs.learn(server)
		cs.learn(server) // known: not again
	}
	shapes := cs.shapes()
	if len(shapes) != 2 {
		t.Fatalf("learned %d shapes, want 2 (TLS 1.3 and 1.2): %+v", len(shapes), shapes)
	}
	for _, s := range shapes {
		if s.outerType == 0 || s.outerSize == 0 || s.innerSize < 256 || s.innerWord == 0 {
			t.Errorf("shape %+v: want an outer AEAD with an AES-GCM inside", s)
		}
	}
}

// TestLearnBounded: a node learns at most maxCipherShapes shapes.
func TestLearnBounded(t *testing.T) {
	var cs touches
	list := make([]cipherShape, maxCipherShapes)
	for i := range list {
		list[i].outerType = uintptr(i + 1)
	}
	cs.list.Store(&list)
	server, _ := handshaken(t, 0)
	cs.learn(server)
	if n := len(cs.shapes()); n != maxCipherShapes {
		t.Errorf("%d shapes, want %d", n, maxCipherShapes)
	}
}

// TestTouchObject: every line of an object is read, and its last word.
func TestTouchObject(t *testing.T) {
	buf := make([]uintptr, 64)
	for i := range buf {
		buf[i] = uintptr(i)
	}
	for _, tc := range []struct {
		size  uintptr
		lines int
		sum   uintptr // the words read, by index: 0, 8, 16, ... then the last
	}{
		{0, 0, 0},
		{7, 0, 0},
		{8, 2, 0 + 0},
		{64, 2, 0 + 7},
		{72, 3, 0 + 8 + 8},
		{200, 5, 0 + 8 + 16 + 24 + 24},
	} {
		lines, sum := touchObject(unsafe.Pointer(&buf[0]), tc.size)
		if lines != tc.lines || sum != tc.sum {
			t.Errorf("size %d: %d lines, sum %d; want %d, %d", tc.size, lines, sum, tc.lines, tc.sum)
		}
	}
}

// TestTouchHeld: the sweep reads three lines of each held connection,
// two of its socket, and with TLS seven of its tls.Conn and those of its
// cipher's objects once their shape is learned; connections whose rounds
// are not a conn's (tests' inline funcs) are passed over; race builds
// read nothing.
func TestTouchHeld(t *testing.T) {
	server, _ := handshaken(t, 0)
	var cs touches
	held := func(cs2 []*conn, other int) []*outbox {
		var hs []*outbox
		for _, c := range cs2 {
			o := newOutbox(1, nil)
			o.run.inline = c
			hs = append(hs, o)
		}
		for range other {
			o := newOutbox(1, nil)
			o.run.inline = inlineFunc(func(at time.Time) time.Time { return at })
			hs = append(hs, o)
		}
		return hs
	}
	plain := &conn{sock: &sockConn{}}
	bare := &conn{}
	secure := &conn{sock: &sockConn{}, tlsConn: server}
	// An object's lines as touchObject reads them: a word every line from
	// its start, and its last.
	cipherLines := func() int {
		s := cs.shapes()[0]
		return int((s.outerSize-8)/64) + 2 + int((s.innerSize-8)/64) + 2
	}
	for _, tc := range []struct {
		name  string
		held  []*outbox
		learn bool
		want  func() int
	}{
		{"none", nil, false, func() int { return 0 }},
		{"plain", held([]*conn{plain, bare}, 1), false, func() int { return 3 + 2 + 3 }},
		{"tls, cipher unknown", held([]*conn{secure}, 0), false, func() int { return 3 + 2 + 7 }},
		{"tls, cipher learned", held([]*conn{secure, plain}, 0), true, func() int { return 3 + 2 + 7 + cipherLines() + 3 + 2 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.learn {
				cs.learn(server)
			}
			got, want := touchHeld(tc.held, &cs), tc.want()
			if !touching {
				want = 0
			}
			if got != want {
				t.Errorf("touched %d lines, want %d", got, want)
			}
		})
	}
}

func BenchmarkTouchHeld(b *testing.B) {
	const n = 32
	var cs touches
	var held []*outbox
	for range n {
		server, _ := handshaken(b, 0)
		cs.learn(server)
		o := newOutbox(1, nil)
		o.run.inline = &conn{sock: &sockConn{}, tlsConn: server}
		held = append(held, o)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		touchHeld(held, &cs)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/conn")
}
