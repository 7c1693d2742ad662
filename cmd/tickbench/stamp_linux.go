package main

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Latency at the socket.
//
// A client's latency (client.go) is taken when its read loop hands the
// message over: after the load client's own work for the messages before
// it, on the load client's CPU. When a message goes to many connections
// at once and the load client takes longer per message than the server,
// the load client's queue is what the tail of that latency measures, the
// same for every server. The kernel knows better: with SO_TIMESTAMPNS it
// stamps each segment as it reaches the receiving socket (on loopback,
// inside the server's write), and recvmsg(2) returns the stamp of the
// newest segment it read. A message's latency at the socket runs from
// its publication to the arrival of the read holding its last bytes: the
// server's part and the network's, without the load client's queue. It
// errs late, never early: a read that took later segments too stamps the
// message with the latest.

// stampConn is a healthy client's TCP connection read with recvmsg(2),
// the kernel's receive timestamps on.
type stampConn struct {
	*net.TCPConn
	rc  syscall.RawConn // Static after construction.
	oob []byte          // Owned by the reading goroutine: recvmsg's control buffer.
	// at is when the newest segment of the last read reached the socket,
	// Unix ns; 0 when that read carried no stamp. Owned by the reading
	// goroutine (the TLS handshake's, then the read loop's, which starts
	// after it).
	at int64
}

// newStampConn turns the kernel's receive timestamps on for nc's socket
// and wraps it.
func newStampConn(nc net.Conn) (*stampConn, error) {
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return nil, errors.New("receive timestamps: not a TCP connection")
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil, err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
	}); err != nil {
		return nil, err
	}
	if serr != nil {
		return nil, os.NewSyscallError("setsockopt SO_TIMESTAMPNS", serr)
	}
	return &stampConn{TCPConn: tc, rc: rc, oob: make([]byte, unix.CmsgSpace(sizeofTimespec))}, nil
}

// Read reads into p with recvmsg(2), waiting through the runtime's poller
// (and so within the read deadline), and keeps the read's stamp in at.
func (s *stampConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var n, oobn int
	var rerr error
	err := s.rc.Read(func(fd uintptr) bool {
		for {
			n, oobn, _, _, rerr = unix.Recvmsg(int(fd), p, s.oob, 0)
			if rerr != unix.EINTR {
				return rerr != unix.EAGAIN
			}
		}
	})
	if err == nil && rerr != nil {
		err = os.NewSyscallError("recvmsg", rerr)
	}
	if err != nil {
		return 0, &net.OpError{Op: "read", Net: "tcp", Source: s.LocalAddr(), Addr: s.RemoteAddr(), Err: err}
	}
	if n == 0 {
		return 0, io.EOF
	}
	s.at = rxStamp(s.oob[:oobn])
	return n, nil
}

// sizeofTimespec is the size of SCM_TIMESTAMPNS's payload.
const sizeofTimespec = int(unsafe.Sizeof(unix.Timespec{}))

// rxStamp is the SCM_TIMESTAMPNS stamp among recvmsg's control messages,
// Unix ns; 0 when there is none.
func rxStamp(oob []byte) int64 {
	for len(oob) > 0 {
		h, data, rest, err := unix.ParseOneSocketControlMessage(oob)
		if err != nil {
			return 0
		}
		if h.Level == unix.SOL_SOCKET && h.Type == unix.SCM_TIMESTAMPNS && len(data) >= sizeofTimespec {
			return (*unix.Timespec)(unsafe.Pointer(&data[0])).Nano()
		}
		oob = rest
	}
	return 0
}
