package rawio

import (
	"syscall"
	"unsafe"
)

// Write writes b to the non-blocking socket fd once, as send(2) does:
// the bytes it took, and the error (0: none; EAGAIN: the socket takes
// nothing now). send, not write: write(2) goes through the file layer
// (vfs_write, fdget_pos, sock_write_iter) before it reaches the socket,
// and on a node that writes to thousands of connections in turn each of
// those touches cold lines. In workload A over TLS the file layer took
// 6% of the node's CPU per delivery; send's own lookup of the socket
// (fdget, __sys_sendto) takes 3.9%, the file's line that both load
// (docs/benchmarks.md, tenth round). MSG_NOSIGNAL: a write to a socket
// the peer reset returns EPIPE and raises no SIGPIPE. fd must be a
// socket; Write is for nothing else.
func Write(fd uintptr, b []byte) (int, syscall.Errno) { return call(send, fd, b) }

// Read reads into b from the non-blocking descriptor fd once, as read(2)
// does: the bytes read (0 with no error: the peer's end), and the error
// (0: none; EAGAIN: nothing to read now).
func Read(fd uintptr, b []byte) (int, syscall.Errno) { return call(read, fd, b) }

// call makes sys, a raw system call on fd and n bytes at p (send or
// read), for b. An empty b makes no call.
func call(sys func(fd uintptr, p unsafe.Pointer, n int) (uintptr, syscall.Errno), fd uintptr, b []byte) (int, syscall.Errno) {
	if len(b) == 0 {
		return 0, 0
	}
	n, e := sys(fd, unsafe.Pointer(&b[0]), len(b))
	if e != 0 {
		return 0, e
	}
	return int(n), 0
}

// read makes read(2) on fd into the n bytes at p, raw.
func read(fd uintptr, p unsafe.Pointer, n int) (uintptr, syscall.Errno) {
	r, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(p), uintptr(n))
	return r, e
}
