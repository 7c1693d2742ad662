package rawio

import (
	"syscall"
	"unsafe"
)

// send makes write(2) on fd for the n bytes at p, raw: linux/386 has no
// sendto system call of its own (it goes through socketcall), and its
// nodes are not the ones the file layer's cost matters on.
func send(fd uintptr, p unsafe.Pointer, n int) (uintptr, syscall.Errno) {
	r, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(p), uintptr(n))
	return r, e
}
