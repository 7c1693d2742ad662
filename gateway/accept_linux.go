package gateway

import (
	"net"
	"syscall"
	"unsafe"
)

// tcpCloseWait is TCP_CLOSE_WAIT of the kernel's tcp_states.h.
const tcpCloseWait = 8

// peerGone reports whether the peer of a just-accepted connection has
// already closed its side (the socket is in CLOSE_WAIT): a client that
// gave up while its connection waited in the accept queue. Its
// ClientHello may still be there to read, but nobody waits for the
// answer, so the node skips the handshake's cryptography. One
// getsockopt(TCP_INFO); false when it cannot tell.
func peerGone(c net.Conn) bool {
	tc, ok := c.(interface {
		SyscallConn() (syscall.RawConn, error)
	})
	if !ok {
		return false
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return false
	}
	var state byte
	_ = rc.Control(func(fd uintptr) {
		var info [232]byte // struct tcp_info; its first byte is tcpi_state
		size := uint32(len(info))
		_, _, errno := syscall.Syscall6(syscall.SYS_GETSOCKOPT, fd, syscall.IPPROTO_TCP, syscall.TCP_INFO,
			uintptr(unsafe.Pointer(&info[0])), uintptr(unsafe.Pointer(&size)), 0)
		if errno == 0 && size > 0 {
			state = info[0]
		}
	})
	return state == tcpCloseWait
}
