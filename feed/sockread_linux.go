package feed

import (
	"io"
	"net"
	"os"

	"github.com/tickgate/tickgate/internal/rawio"
)

// rawReadConn is the node's NATS socket, read with rawio: a read system
// call the runtime is not told about. Every feed message begins with a
// read, and on a node that keeps up that read is the first system call
// after an idle spell, which would otherwise wake the runtime's monitor
// thread once per feed message (package rawio). It waits for bytes as a
// net.Conn does, in the runtime's network poller, within the read
// deadline; everything else is the TCPConn's.
type rawReadConn struct {
	*net.TCPConn
	rc *rawio.Reader // Static after construction.
}

// wrapRead returns c reading through rawio when it is a TCP connection,
// else c itself.
func wrapRead(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	return &rawReadConn{TCPConn: tc, rc: rawio.NewReader(raw)}
}

// Read reads as net.Conn's Read does: at least one byte, waiting for it
// within the read deadline; io.EOF at the peer's end.
func (c *rawReadConn) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	n, errno, err := c.rc.Read(b)
	switch {
	case err == nil && errno != 0:
		err = os.NewSyscallError("read", errno)
	case err == nil && n == 0:
		return 0, io.EOF
	}
	if err != nil {
		return n, &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
	}
	return n, nil
}
