//go:build linux && !386

package rawio

import (
	"syscall"
	"unsafe"
)

// send makes send(2) on fd for the n bytes at p, raw, without waiting
// and without SIGPIPE.
func send(fd uintptr, p unsafe.Pointer, n int) (uintptr, syscall.Errno) {
	r, _, e := syscall.RawSyscall6(syscall.SYS_SENDTO, fd, uintptr(p), uintptr(n), syscall.MSG_NOSIGNAL|syscall.MSG_DONTWAIT, 0, 0)
	return r, e
}
