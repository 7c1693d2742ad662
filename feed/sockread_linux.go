package feed

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"

	"github.com/tickgate/tickgate/internal/rawio"
)

// rawReadConn is the node's NATS socket, read with rawio: a read system
// call the runtime is not told about. Every feed message begins with a
// read, and on a node that keeps up that read is the first system call
// after an idle spell, which would otherwise wake the runtime's monitor
// thread once per feed message (package rawio). It waits for bytes as a
// net.Conn does, in the runtime's network poller, within the read
// deadline; everything else is the TCPConn's.
type rawReadConn struct {
	*net.TCPConn
	raw syscall.RawConn // Static after construction.

	mu  sync.Mutex         // Serializes Read: the fields below are read's arguments and results.
	fn  func(uintptr) bool // Static after construction: read, bound once (no allocation per Read).
	b   []byte             // Guarded by mu: to read into.
	n   int                // Guarded by mu: read.
	err syscall.Errno      // Guarded by mu: the read's error (0: none).
}

// wrapRead returns c reading through rawio when it is a TCP connection,
// else c itself.
func wrapRead(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	r := &rawReadConn{TCPConn: tc, raw: raw}
	r.fn = r.read
	return r
}

// Read reads as net.Conn's Read does: at least one byte, waiting for it
// within the read deadline; io.EOF at the peer's end.
func (c *rawReadConn) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.b, c.n, c.err = b, 0, 0
	err := c.raw.Read(c.fn) // waits while read reports nothing to read
	n, e := c.n, c.err
	c.b = nil
	switch {
	case err == nil && e != 0:
		err = os.NewSyscallError("read", e)
	case err == nil && n == 0:
		return 0, io.EOF
	}
	if err != nil {
		return n, &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
	}
	return n, nil
}

// read makes one read, and reports false when there is nothing to read
// yet (RawConn.Read then waits for the socket to be readable).
func (c *rawReadConn) read(fd uintptr) bool {
	for {
		n, e := rawio.Read(fd, c.b)
		switch e {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		c.n, c.err = n, e
		return true
	}
}
