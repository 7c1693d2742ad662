//go:build unix

package rawio

import (
	"sync"
	"syscall"
)

// Descriptor is c's file descriptor, for Write, TryWrite and Read: valid
// while c is open, which the caller sees to (a write on a number the
// kernel gave to another file after c closed would reach that file).
func Descriptor(c syscall.Conn) (uintptr, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var fd uintptr
	if err := raw.Control(func(d uintptr) { fd = d }); err != nil {
		return 0, err
	}
	return fd, nil
}

// TryWrite writes as much of b to the non-blocking descriptor fd as it
// takes now, without waiting: it stops at the first write that would wait
// (EAGAIN). It returns the bytes written and the socket's error (0: none;
// never EAGAIN). The caller keeps fd open for the call.
func TryWrite(fd uintptr, b []byte) (int, syscall.Errno) {
	written := 0
	for written < len(b) {
		n, e := Write(fd, b[written:])
		written += n
		switch {
		case e == syscall.EINTR:
			continue
		case e == syscall.EAGAIN:
			return written, 0
		case e != 0:
			return written, e
		case n == 0:
			return written, 0
		}
	}
	return written, 0
}

// Reader reads one socket through its syscall.RawConn, which holds the
// descriptor open for the call and waits in the runtime's network poller,
// within the read deadline, while there is nothing to read. A function
// handed to a RawConn that is made per call (a closure, a method value) is
// an allocation per read; Reader's is bound once, with its arguments and
// results in its fields.
//
// Safe for concurrent use: reads are made one at a time.
type Reader struct {
	raw  syscall.RawConn    // Static after construction.
	read func(uintptr) bool // Static after construction: readOnce, bound.

	mu    sync.Mutex    // Serializes Read: the fields below are its arguments and results.
	b     []byte        // Guarded by mu: to read into.
	n     int           // Guarded by mu: bytes read.
	errno syscall.Errno // Guarded by mu: the socket's error (0: none; never EAGAIN).
}

// NewReader returns a Reader over raw.
func NewReader(raw syscall.RawConn) *Reader {
	r := &Reader{raw: raw}
	r.read = r.readOnce
	return r
}

// Read reads into b once there is something to read, waiting in the
// network poller within the read deadline. It returns the bytes read (0
// with no error at the peer's end) and the socket's error, or err when
// the wait failed: the deadline passed, or the descriptor was closed
// (RawConn.Read's error). An empty b reads nothing and does not wait.
func (r *Reader) Read(b []byte) (n int, errno syscall.Errno, err error) {
	if len(b) == 0 {
		return 0, 0, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.b, r.n, r.errno = b, 0, 0
	err = r.raw.Read(r.read)
	n, errno = r.n, r.errno
	r.b = nil
	return n, errno, err
}

// readOnce makes one read, and reports false when there is nothing to
// read yet (RawConn.Read then waits for the socket to be readable).
func (r *Reader) readOnce(fd uintptr) bool {
	for {
		n, e := Read(fd, r.b)
		switch e {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		r.n, r.errno = n, e
		return true
	}
}
