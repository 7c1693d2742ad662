package feed

import (
	"syscall"
	"unsafe"
)

// unreadBytes is how many bytes wait in the socket's receive queue
// (ioctl FIONREAD); 0 when it cannot tell. The ioctl never waits: it is
// made raw, for the reason package rawio gives (it is asked once per
// feed message the node keeps up with).
func unreadBytes(raw syscall.RawConn) int {
	n := 0
	_ = raw.Control(func(fd uintptr) {
		var v int32
		if _, _, errno := syscall.RawSyscall(syscall.SYS_IOCTL, fd, syscall.TIOCINQ, uintptr(unsafe.Pointer(&v))); errno == 0 {
			n = int(v)
		}
	})
	return n
}
