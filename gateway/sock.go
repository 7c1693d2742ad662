package gateway

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/tickgate/tickgate/internal/rawio"
)

// sockConn is an accepted TCP connection with a write mode for the
// fan-out (inline.go): while it is inline, a write never waits for the
// socket. It writes what the kernel takes at once and keeps the rest, in
// order, for the connection's writer goroutine to write with a deadline
// (flush). Out of inline mode a write first writes what is kept, then its
// own bytes, as a plain socket write does: waiting, bounded by the write
// deadline.
//
// Everything written to the connection goes through Write: the node's
// writer, gws's own writes (the close frames it writes before it closes
// the socket) and, under TLS, every record crypto/tls writes; writes are
// serialized, so the order of bytes on the wire is the order of the
// Write calls whatever the mode. A write out of inline mode holds the
// lock while it waits; inline mode is entered only when nobody holds it
// (tryBeginInline).
type sockConn struct {
	*net.TCPConn
	// fdn is the descriptor's number, for tryWrite's raw writes and the
	// parker (park.go): valid until Close, which tells the parker, and
	// waits for the raw writes under way (raws), before it closes the
	// socket. Static after construction.
	fdn int32
	// raws counts tryWrite's raw writes on fdn under way, with
	// rawsClosed set once Close began: a raw write is made only while
	// the flag is clear, so never on a number the kernel may since have
	// given to another socket. Atomic.
	raws atomic.Int32

	mu     sync.Mutex // Serializes writes; guards inline and rest.
	inline bool       // Guarded by mu: writes do not wait.
	rest   []byte     // Guarded by mu: bytes accepted, not yet written.

	// The read side's parking (park.go).
	park    *parker        // Static after construction: nil, the read loop never parks.
	rd      *parkingReader // Static after the upgrade, before the read loop starts: the frame reader's source.
	armed   bool           // Guarded by park.mu: the socket is in the parker's readiness set.
	closing bool           // Guarded by park.mu: Close was called.
}

// rawsClosed is the flag in sockConn.raws that Close sets.
const rawsClosed = 1 << 30

// Close closes the socket. A parked read loop is started first, to find
// it closed and end the connection. Raw writes are refused from here on,
// and the one under way, if any (it never waits), ends before the socket
// is closed and its number freed.
func (s *sockConn) Close() error {
	if s.park != nil {
		s.park.closing(s)
	}
	s.raws.Or(rawsClosed)
	for s.raws.Load() != rawsClosed {
		runtime.Gosched()
	}
	return s.TCPConn.Close()
}

// maxKeptRest bounds the buffer a sockConn keeps once its rest is written:
// a bigger one (a batch that met a full socket) is dropped.
const maxKeptRest = 2 * maxWriteBytes

// newSockConn wraps tc; nil when its raw descriptor cannot be had.
func newSockConn(tc *net.TCPConn) *sockConn {
	fd, err := rawio.Descriptor(tc)
	if err != nil {
		return nil
	}
	return &sockConn{TCPConn: tc, fdn: int32(fd)}
}

// sockOf returns the sockConn under nc (a sockConn, or a TLS connection
// over one), or nil.
func sockOf(nc net.Conn) *sockConn {
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	s, _ := nc.(*sockConn)
	return s
}

// Write writes b: in inline mode without waiting (what the socket does not
// take at once is kept), otherwise after what is kept, waiting as long as
// the write deadline allows. It reports len(b) when b was written or
// kept.
func (s *sockConn) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inline {
		return len(b), s.writeNow(b)
	}
	if err := s.flushLocked(); err != nil {
		return 0, err
	}
	return s.writeWaiting(b)
}

// writeWaiting writes b whole, waiting as long as the write deadline
// allows: what the socket takes at once through tryWrite, the rest
// through the TCPConn, which waits for room. Most writes find room, and
// are then made without a system call the runtime is told about (package
// rawio says why that matters). Called with mu held.
func (s *sockConn) writeWaiting(b []byte) (int, error) {
	n, err := s.tryWrite(b)
	if err != nil || n == len(b) {
		return n, err
	}
	m, err := s.TCPConn.Write(b[n:])
	return n + m, err
}

// ReadFrom copies r to the connection through Write: the embedded
// TCPConn's would write around the mode and what is kept.
func (s *sockConn) ReadFrom(r io.Reader) (int64, error) {
	return io.Copy(struct{ io.Writer }{s}, r)
}

// writeNow writes b, or keeps it behind what is kept already, without
// waiting. Called with mu held.
func (s *sockConn) writeNow(b []byte) error {
	if len(s.rest) == 0 {
		n, err := s.tryWrite(b)
		if err != nil {
			return err
		}
		b = b[n:]
	}
	s.rest = append(s.rest, b...)
	return nil
}

// tryWrite writes as much of b as the socket takes now: it stops at the
// first write that would wait (EAGAIN). An error is the socket's end.
//
// Called with mu held. The writes are rawio's, on the descriptor's
// number, between raws' count and its release, which keep Close from
// closing the socket meanwhile. The usual way, RawConn.Control, does the
// same with the descriptor's own reference count, but reaches it through
// three objects of the net package and a bound function of its own: at
// a few thousand connections, where each write finds the connection cold,
// those were cache misses on every write (docs/benchmarks.md).
func (s *sockConn) tryWrite(b []byte) (int, error) {
	if s.raws.Add(1)&rawsClosed != 0 {
		s.raws.Add(-1)
		return 0, s.writeError(net.ErrClosed)
	}
	n, errno := rawio.TryWrite(uintptr(s.fdn), b)
	s.raws.Add(-1)
	if errno != 0 {
		return n, s.writeError(os.NewSyscallError("write", errno))
	}
	return n, nil
}

// writeError is err as a failed write on s reports it.
func (s *sockConn) writeError(err error) error {
	return &net.OpError{Op: "write", Net: "tcp", Source: s.LocalAddr(), Addr: s.RemoteAddr(), Err: err}
}

// flushLocked writes what is kept, waiting as long as the write deadline
// allows. Called with mu held, out of inline mode.
func (s *sockConn) flushLocked() error {
	if len(s.rest) == 0 {
		return nil
	}
	n, err := s.writeWaiting(s.rest)
	if err != nil {
		s.rest = s.rest[n:] // what is left stays first in line
		return err
	}
	if cap(s.rest) > maxKeptRest {
		s.rest = nil
	} else {
		s.rest = s.rest[:0]
	}
	return nil
}

// flush writes what is kept, waiting as long as the write deadline
// allows; the writer goroutine calls it before its round.
func (s *sockConn) flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inline {
		return errSockInline
	}
	return s.flushLocked()
}

// errSockInline is a flush attempted in inline mode: a bug.
var errSockInline = errors.New("gateway: socket flush while writing inline")

// tryBeginInline puts the socket in inline mode, for the one writer round
// that runs on the fan-out's goroutine, and reports true; false when a
// write is under way (one that may wait: gws closing the connection from
// its read loop), which the fan-out must not wait for. In inline mode
// every write, whoever makes it, is made without waiting, so the round's
// own writes wait for mu only the moment another write takes.
func (s *sockConn) tryBeginInline() bool {
	if !s.mu.TryLock() {
		return false
	}
	s.inline = true
	s.mu.Unlock()
	return true
}

// endInline ends inline mode and reports whether bytes are kept: the
// writer goroutine must then write them (flush).
func (s *sockConn) endInline() (kept bool) {
	s.mu.Lock()
	s.inline = false
	kept = len(s.rest) > 0
	s.mu.Unlock()
	return kept
}

// kept reports whether bytes wait to be written.
func (s *sockConn) kept() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.rest) > 0
}

// sockListener wraps every accepted TCP connection in a sockConn, whose
// read loop park parks (nil: never).
type sockListener struct {
	net.Listener
	park *parker
}

func (l sockListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok && err == nil {
		if s := newSockConn(tc); s != nil {
			s.park = l.park
			return s, nil
		}
	}
	return c, err
}
