package feed

import (
	"net"
	"sync/atomic"
	"syscall"
	"time"
)

// feedDialer dials the node's NATS connection (nats.SetCustomDialer) and
// keeps the socket of the latest one, so that the node can tell whether
// feed bytes wait unread in the kernel (Source.Backlogged). On Linux the
// connection it returns reads through rawio (sockread_linux.go). Safe for
// concurrent use.
type feedDialer struct {
	d net.Dialer // Static after construction.
	// beforeRead is called before each read of a connection it dialed
	// (Source.relieve); nil: nothing. Static after construction.
	beforeRead func()
	sock       atomic.Pointer[syscall.RawConn] // the latest connection's socket
}

func newFeedDialer(timeout time.Duration, beforeRead func()) *feedDialer {
	return &feedDialer{d: net.Dialer{Timeout: timeout}, beforeRead: beforeRead}
}

// Dial implements nats.CustomDialer.
func (f *feedDialer) Dial(network, address string) (net.Conn, error) {
	c, err := f.d.Dial(network, address)
	if err != nil {
		return nil, err
	}
	if sc, ok := c.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			f.sock.Store(&raw)
		}
	}
	c = wrapRead(c)
	if f.beforeRead != nil {
		c = &hookedConn{Conn: c, beforeRead: f.beforeRead}
	}
	return c, nil
}

// hookedConn calls beforeRead before each Read of its Conn.
type hookedConn struct {
	net.Conn
	beforeRead func() // Static after construction.
}

func (c *hookedConn) Read(b []byte) (int, error) {
	c.beforeRead()
	return c.Conn.Read(b)
}

// Backlogged reports whether bytes from NATS wait unread in the node's
// socket: more feed messages are on their way than the node has read.
// The gateway's fan-out asks it before it writes a message's deliveries
// itself, instead of leaving them to writers that take several at once
// (gateway/inline.go). False when it cannot tell (no connection yet, or
// not Linux).
func (s *Source) Backlogged() bool {
	if s.dialer == nil {
		return false
	}
	raw := s.dialer.sock.Load()
	return raw != nil && unreadBytes(*raw) > 0
}
