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
// server's part and the network's, without the load client's queue as
// long as it reads each segment on its own. It errs late, never early: a
// read that took several segments (a load client that fell behind by the
// time between them) stamps every message in it with the newest, so the
// figure is an upper bound, loosest where a connection's messages come
// closest together (workload C: a millisecond apart; A: a hundred).

// stampConn is a healthy client's TCP connection read with recvmsg(2),
// the kernel's receive timestamps on. It holds the connection as a
// net.Conn, not a *net.TCPConn, so that nothing (io.Copy through
// WriteTo) can read around Read.
type stampConn struct {
	net.Conn
	rc     syscall.RawConn    // Static after construction.
	readFn func(uintptr) bool // Static after construction: recvmsg, bound once so that a read allocates no closure.

	// Owned by the reading goroutine (the TLS handshake's, then the read
	// loop's, which starts after it): recvmsg's buffers and results,
	// kept here so that a read allocates nothing.
	p       []byte
	oob     []byte
	n, oobn int
	rerr    error
	// at is when the newest segment of the last read reached the socket,
	// Unix ns; 0 when that read carried no stamp.
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
	s := &stampConn{Conn: tc, rc: rc, oob: make([]byte, unix.CmsgSpace(sizeofTimespec))}
	s.readFn = s.recvmsg
	return s, nil
}

// recvmsg is the raw read: false when the socket has nothing yet (the
// poller waits for it).
func (s *stampConn) recvmsg(fd uintptr) bool {
	for {
		s.n, s.oobn, _, _, s.rerr = unix.Recvmsg(int(fd), s.p, s.oob, 0)
		if s.rerr != unix.EINTR {
			return s.rerr != unix.EAGAIN
		}
	}
}

// Read reads into p with recvmsg(2), waiting through the runtime's poller
// (and so within the read deadline), and keeps the read's stamp in at.
func (s *stampConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	s.p, s.n, s.oobn, s.rerr = p, 0, 0, nil
	err := s.rc.Read(s.readFn)
	s.p = nil
	if err == nil && s.rerr != nil {
		err = os.NewSyscallError("recvmsg", s.rerr)
	}
	if err != nil {
		return 0, &net.OpError{Op: "read", Net: "tcp", Source: s.LocalAddr(), Addr: s.RemoteAddr(), Err: err}
	}
	if s.n == 0 {
		return 0, io.EOF
	}
	s.at = rxStamp(s.oob[:s.oobn])
	return s.n, nil
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
