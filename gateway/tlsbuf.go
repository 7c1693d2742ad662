package gateway

import (
	"bytes"
	"crypto/tls"
	"reflect"
	"sync"
	"unsafe"
)

// A TLS connection's read-side buffers, given back while it is parked.
//
// crypto/tls reads records into a buffer of its own (tls.Conn's rawInput)
// and gathers handshake messages in another (hand); decrypted application
// data is read from a third, a reader over rawInput's bytes (input). Each
// keeps the capacity of the biggest thing it ever held, and the biggest is
// the client's hello: about 1.5 KB with the post-quantum key share that
// Go's client and current browsers send. So every TLS connection kept
// about 3.5 KB of buffers it would use again only for a client frame, or
// never (hand), and tls.Conn has no way to let them go
// (docs/benchmarks.md, *Idle memory per connection*, *Fifth round*).
//
// A parked connection has no read under way, and crypto/tls holds nothing
// then (parkingReader parks only when tlsReader.readHeld found nothing
// held). tlsBuffers drops the three, each only when it is empty, so the
// next read starts from empty buffers: the wake-up lends rawInput an
// array from the parker's pool (tlsReadBufs), which crypto/tls reads the
// record into and gives input that record's bytes from, as before; the
// next park gives the array back.
//
// The fields are private to crypto/tls: tlsBuffers finds them once by
// name and type, and when this Go's tls.Conn has not all three as
// expected (ok false) it does nothing, and connections keep their
// buffers. TestTLSBuffersFound fails then, so that a Go upgrade that
// renames them is noticed.
type tlsBuffers struct {
	rawInput, input, hand uintptr // Static: the fields' offsets in tls.Conn.
	ok                    bool    // Static: all three were found.
}

// tlsConnBuffers is what tlsBuffers found in this binary's tls.Conn,
// looked up once: a fact of the Go release the node was built with.
var tlsConnBuffers = findTLSBuffers()

func findTLSBuffers() tlsBuffers {
	t := reflect.TypeFor[tls.Conn]()
	field := func(name string, want reflect.Type) (uintptr, bool) {
		f, ok := t.FieldByName(name)
		if !ok || f.Type != want || len(f.Index) != 1 {
			return 0, false
		}
		return f.Offset, true
	}
	buffer, reader := reflect.TypeFor[bytes.Buffer](), reflect.TypeFor[bytes.Reader]()
	var b tlsBuffers
	var okRaw, okIn, okHand bool
	b.rawInput, okRaw = field("rawInput", buffer)
	b.input, okIn = field("input", reader)
	b.hand, okHand = field("hand", buffer)
	b.ok = okRaw && okIn && okHand
	return b
}

// release drops those of tc's read buffers that hold nothing. Called by the connection's read loop only,
// between reads (nothing else reads or writes them after the handshake:
// tls.Conn's writes, Close and deadlines do not). An empty rawInput whose
// array is the size bufs lends goes back to bufs; input, the only other
// reference to that array (it reads over rawInput's bytes), is dropped
// with it.
func (b tlsBuffers) release(tc *tls.Conn, bufs *tlsReadBufs) {
	if !b.ok {
		return
	}
	raw, in, hand := b.fields(tc)
	if raw.Len() == 0 && in.Len() == 0 { // in reads over raw's bytes: they go together
		raw.Reset()
		a := raw.AvailableBuffer()
		*raw, *in = bytes.Buffer{}, bytes.Reader{}
		if cap(a) == tlsReadBufBytes {
			bufs.pool.Put((*[tlsReadBufBytes]byte)(a[:tlsReadBufBytes]))
		}
	}
	if hand.Len() == 0 {
		*hand = bytes.Buffer{}
	}
}

// tlsReadBufBytes is the size of the arrays a parked TLS connection's
// wake-up borrows for crypto/tls's rawInput (tlsReadBufs): crypto/tls
// makes room for the bytes it needs plus bytes.MinRead before each read
// from the socket, and for a record of a client's small frame (a pong, 36
// bytes; a command, a few hundred) that fits. A bigger record makes
// crypto/tls grow a buffer of its own, which release drops as before.
const tlsReadBufBytes = 1 << 10

// tlsReadBufs are the arrays lent to crypto/tls's rawInput for a parked
// connection's wake-up (tlsBuffers.lend), and taken back when the
// connection parks again (tlsBuffers.release). Before, each wake-up (one per pong: a ping every 2.5 s per
// busy connection) grew a released rawInput again, about 600 bytes, which
// was most of what a node under load allocated (docs/benchmarks.md,
// *What pings cost*, twenty-first round). The node's parker holds one.
type tlsReadBufs struct {
	pool sync.Pool // of *[tlsReadBufBytes]byte; safe for concurrent use
}

// lend gives tc's rawInput an array of bufs when it has none, as a
// parked connection's has: release's counterpart. Called by the
// connection's read loop only, before a read, as release.
func (b tlsBuffers) lend(tc *tls.Conn, bufs *tlsReadBufs) {
	if !b.ok {
		return
	}
	raw, _, _ := b.fields(tc)
	if raw.Cap() > 0 {
		return
	}
	a, _ := bufs.pool.Get().(*[tlsReadBufBytes]byte)
	if a == nil {
		a = new([tlsReadBufBytes]byte)
	}
	*raw = *bytes.NewBuffer(a[:0])
}

// empty reports whether tc's read buffers are all empty, so that a read
// would go to the socket for its next record: false when the fields were
// not found (ok false), which says nothing. Called by the connection's
// read loop only, as release.
func (b tlsBuffers) empty(tc *tls.Conn) bool {
	if !b.ok {
		return false
	}
	raw, in, hand := b.fields(tc)
	return raw.Len() == 0 && in.Len() == 0 && hand.Len() == 0
}

// fields returns tc's three buffers; b.ok must be true.
func (b tlsBuffers) fields(tc *tls.Conn) (raw *bytes.Buffer, in *bytes.Reader, hand *bytes.Buffer) {
	base := unsafe.Pointer(tc)
	return (*bytes.Buffer)(unsafe.Add(base, b.rawInput)), (*bytes.Reader)(unsafe.Add(base, b.input)), (*bytes.Buffer)(unsafe.Add(base, b.hand))
}
