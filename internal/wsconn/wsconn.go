// Package wsconn holds the client-side socket helpers of the tools that
// drive a gateway from outside (cmd/tickbench, cmd/tickattack): dialing
// from a chosen loopback source address with a chosen receive buffer,
// writing a WebSocket frame on the raw connection without reading, and
// naming how a connection ended.
package wsconn

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/lxzan/gws"
)

// Dialer dials TCP from Source (nil: any address) with the socket receive
// buffer RcvBuf (0: the kernel's default). A small receive buffer makes a
// client that stops reading look like a slow network to the server: its
// TCP window closes after a few kilobytes. It implements gws.Dialer.
type Dialer struct {
	Source  net.IP
	RcvBuf  int
	Timeout time.Duration
}

// Dial dials addr; with a Source it dials IPv4.
func (d Dialer) Dial(network, addr string) (net.Conn, error) {
	nd := net.Dialer{Timeout: d.Timeout}
	if d.Source != nil {
		nd.LocalAddr = &net.TCPAddr{IP: d.Source}
		network = "tcp4"
	}
	if d.RcvBuf > 0 {
		nd.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			if err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, d.RcvBuf)
			}); err != nil {
				return err
			}
			return serr
		}
	}
	return nd.Dial(network, addr)
}

// Opcodes of data frames, for MaskedFrame.
const (
	OpText   byte = 0x1
	OpBinary byte = 0x2
)

// MaskedFrame returns one final, masked client frame (RFC 6455 §5.2) of
// opcode op carrying payload, ready to be written on the raw connection by
// a client that never reads (and so never lets a library's read loop run).
func MaskedFrame(op byte, payload []byte) []byte {
	var mask [4]byte
	_, _ = rand.Read(mask[:])
	f := []byte{0x80 | op}
	switch n := len(payload); {
	case n < 126:
		f = append(f, 0x80|byte(n))
	case n < 1<<16:
		f = append(f, 0x80|126, byte(n>>8), byte(n))
	default:
		f = append(f, 0x80|127, 0, 0, 0, 0, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	f = append(f, mask[:]...)
	start := len(f)
	f = append(f, payload...)
	for i := range payload {
		f[start+i] ^= mask[i%4]
	}
	return f
}

// CloseCode describes how a connection was closed: the close frame's code
// ("4008"), or, without a close frame, the kind of end ("no close frame:
// EOF", "no close frame: reset").
func CloseCode(err error) string {
	var ce *gws.CloseError
	switch {
	case errors.As(err, &ce):
		return fmt.Sprint(ce.Code)
	case err == nil:
		return "no error"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "no close frame: EOF"
	case errors.Is(err, syscall.ECONNRESET):
		return "no close frame: reset"
	case errors.Is(err, syscall.EPIPE):
		return "no close frame: broken pipe"
	case errors.Is(err, net.ErrClosed):
		return "no close frame: closed locally"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "no close frame: timeout"
	}
	return "no close frame: " + fmt.Sprintf("%T", err)
}
