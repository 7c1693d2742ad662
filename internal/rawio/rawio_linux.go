package rawio

import (
	"syscall"
	"unsafe"
)

// Write writes b to the non-blocking descriptor fd once, as write(2) does:
// the bytes it took, and the error (0: none; EAGAIN: the socket takes
// nothing now).
func Write(fd uintptr, b []byte) (int, syscall.Errno) { return call(syscall.SYS_WRITE, fd, b) }

// Read reads into b from the non-blocking descriptor fd once, as read(2)
// does: the bytes read (0 with no error: the peer's end), and the error
// (0: none; EAGAIN: nothing to read now).
func Read(fd uintptr, b []byte) (int, syscall.Errno) { return call(syscall.SYS_READ, fd, b) }

// call makes read(2) or write(2) (trap) on fd and b, raw. An empty b
// makes no call.
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
