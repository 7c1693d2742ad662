package feed

import (
	"syscall"
	"unsafe"
)

// unreadBytes is how many bytes wait in the socket's receive queue
// (ioctl FIONREAD); 0 when it cannot tell.
func unreadBytes(raw syscall.RawConn) int {
	n := 0
	_ = raw.Control(func(fd uintptr) {
		var v int32
		if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCINQ, uintptr(unsafe.Pointer(&v))); errno == 0 {
			n = int(v)
		}
	})
	return n
}
