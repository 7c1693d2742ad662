//go:build unix

package rawio

import "syscall"

// Conn makes Read and Write on one socket through its syscall.RawConn,
// which holds the descriptor open for the call and, for a read, waits in
// the runtime's network poller, within the read deadline, while there is
// nothing to read. A function handed to a RawConn that is made per call
// (a closure, a method value) is an allocation per read or write; Conn's
// are bound once, with their arguments and results in its fields.
//
// Calls must not overlap: the caller serializes them (a lock it holds
// around each call).
type Conn struct {
	raw   syscall.RawConn    // Static after construction.
	read  func(uintptr) bool // Static after construction: readOnce, bound.
	write func(uintptr)      // Static after construction: writeAll, bound.

	b     []byte        // The call's: to read into or to write.
	n     int           // The call's: bytes read or written.
	errno syscall.Errno // The call's: the socket's error (0: none; never EAGAIN).
}

// NewConn returns a Conn over raw.
func NewConn(raw syscall.RawConn) *Conn {
	c := &Conn{raw: raw}
	c.read, c.write = c.readOnce, c.writeAll
	return c
}

// TryWrite writes as much of b as the socket takes now, without waiting:
// it stops at the first write that would wait. It returns the bytes
// written and the socket's error (0: none), or err when the descriptor is
// closed (RawConn.Control's error).
func (c *Conn) TryWrite(b []byte) (n int, errno syscall.Errno, err error) {
	c.b, c.n, c.errno = b, 0, 0
	err = c.raw.Control(c.write)
	n, errno = c.n, c.errno
	c.b = nil
	return n, errno, err
}

// Read reads into b once there is something to read, waiting in the
// network poller within the read deadline. It returns the bytes read (0
// with no error at the peer's end) and the socket's error, or err when
// the wait failed: the deadline passed, or the descriptor was closed
// (RawConn.Read's error). An empty b reads nothing and does not wait.
func (c *Conn) Read(b []byte) (n int, errno syscall.Errno, err error) {
	if len(b) == 0 {
		return 0, 0, nil
	}
	c.b, c.n, c.errno = b, 0, 0
	err = c.raw.Read(c.read)
	n, errno = c.n, c.errno
	c.b = nil
	return n, errno, err
}

// writeAll writes c.b until the socket takes no more or fails.
func (c *Conn) writeAll(fd uintptr) {
	for c.n < len(c.b) {
		n, e := Write(fd, c.b[c.n:])
		c.n += n
		switch {
		case e == syscall.EINTR:
			continue
		case e == syscall.EAGAIN:
			return
		case e != 0:
			c.errno = e
			return
		case n == 0:
			return
		}
	}
}

// readOnce makes one read, and reports false when there is nothing to
// read yet (RawConn.Read then waits for the socket to be readable).
func (c *Conn) readOnce(fd uintptr) bool {
	for {
		n, e := Read(fd, c.b)
		switch e {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		c.n, c.errno = n, e
		return true
	}
}
