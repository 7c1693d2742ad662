package gateway

import (
	"bytes"
	"crypto/tls"
	"testing"
	"unsafe"

	"github.com/tickgate/tickgate/codec"
)

// A prefetch is a hint: it changes no byte, up to the last line it is
// asked for, and a count of zero asks for nothing.
func TestPrefetchLinesChangesNothing(t *testing.T) {
	buf := bytes.Repeat([]byte{0xa5}, 4*64)
	want := bytes.Clone(buf)
	for _, n := range []uintptr{0, 1, 4} {
		prefetchLines(unsafe.Pointer(&buf[0]), n)
	}
	if !bytes.Equal(buf, want) {
		t.Fatal("prefetchLines changed memory")
	}
}

// A connection asks for its lines whatever it has under it: a socket and
// TLS, a socket alone, or neither (a listener that is not TCP).
func TestConnPrefetchesWhateverItHas(t *testing.T) {
	s := hubFixture(t)
	c := s.bareConn(codec.JSON())
	c.prefetchConn()
	c.prefetchTransport() // neither
	sock, _ := sockPair(t)
	c.sock = sock
	c.prefetchTransport() // a socket alone
	c.tlsConn = tls.Server(sock, &tls.Config{})
	c.prefetchTransport() // both
}
