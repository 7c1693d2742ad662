package gateway

import "syscall"

// canWaitReadable says that tlsReader can wait for its socket above
// crypto/tls on this system.
const canWaitReadable = true

// socketReadable is the test of tlsReader's wait, run by syscall.RawConn's
// Read until it reports true (between tries the goroutine waits for the
// runtime's network poller): true when the socket has a byte to read
// (looked at, not taken), its peer's end, or an error for the read that
// follows to report; false only when it has nothing yet (EAGAIN).
func socketReadable(fd uintptr) bool {
	var b [1]byte
	_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK)
	return err != syscall.EAGAIN
}
