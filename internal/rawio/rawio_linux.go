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
func Write(fd uintptr, b []byte) (int, syscall.Errno) {
	if len(b) == 0 {
		return 0, 0
	}
	n, e := send(fd, unsafe.Pointer(&b[0]), len(b))
	if e != 0 {
		return 0, e
	}
	return int(n), 0
}

// Read reads into b from the non-blocking descriptor fd once, as read(2)
// does: the bytes read (0 with no error: the peer's end), and the error
// (0: none; EAGAIN: nothing to read now).
func Read(fd uintptr, b []byte) (int, syscall.Errno) { return call(syscall.SYS_READ, fd, b) }

// call makes trap, a call shaped as read(2) is, on fd and b, raw. An
// empty b makes no call.
func call(trap, fd uintptr, b []byte) (int, syscall.Errno) {
	if len(b) == 0 {
		return 0, 0
	}
	n, _, e := syscall.RawSyscall(trap, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if e != 0 {
		return 0, e
	}
	return int(n), 0
}
