package gateway

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"time"
)

// readBufferBytes is the read buffer of a connection's frame reader, held
// by every connection for its lifetime. What clients send is small:
// pongs of 14 bytes, commands of one or two hundred (a subscribe to ten
// channels is about 210); one read takes a frame of that size whole. A
// larger frame (up to MaxMessageBytes) takes a second read on a plain
// connection, which goes straight into its payload when at least a
// buffer's worth is left (over TLS crypto/tls holds the record, and no
// further socket read is needed). It was net/http's 4 KiB, then 512.
const readBufferBytes = 256

// readerAfterHijack is the buffered reader the frame reader reads the
// socket through after the upgrade: a small one of its own, so that
// nothing of net/http's connection (its reader, the conn it reads
// through) stays referenced. Bytes that net/http's reader had buffered
// already (a client may send its first frame right behind the handshake
// request) are read first. A TLS connection is read through tlsReader.
//
// Its source is a parkingReader, which lets the read loop end between
// frames when the socket is a sockConn with a parker (park.go); the
// sockConn keeps it (rd).
func readerAfterHijack(nc net.Conn, hr *bufio.Reader) *bufio.Reader {
	var src io.Reader = nc
	if tc, ok := nc.(*tls.Conn); ok {
		src = newTLSReader(tc)
	}
	if n := hr.Buffered(); n > 0 {
		early, _ := hr.Peek(n)
		src = &earlyReader{early: bytes.Clone(early), r: src}
	}
	sock := sockOf(nc)
	r := newParkingReader(src, sock)
	r.br = bufio.NewReaderSize(r, readBufferBytes)
	if sock != nil {
		sock.rd = r
	}
	return r.br
}

// earlyReader reads early, then r.
type earlyReader struct {
	early []byte // Owned by the frame reader: what is left of it.
	r     io.Reader
}

func (e *earlyReader) Read(p []byte) (int, error) {
	if len(e.early) == 0 {
		return e.r.Read(p)
	}
	n := copy(p, e.early)
	e.early = e.early[n:]
	if len(e.early) == 0 {
		e.early = nil
	}
	return n, nil
}

// tlsReader reads a TLS connection for the frame reader, and waits for
// the socket to become readable above crypto/tls rather than inside it.
//
// Why: an idle connection's read loop spends its life waiting for the
// client's next frame, and the runtime halves a goroutine's stack at a
// collection only while less than a quarter of it is in use. Waiting
// inside tls.Conn.Read (its record reader, the bytes.Buffer it reads into,
// the socket read below) parks the loop so deep that its stack stays at 8
// KiB; waiting here, with none of crypto/tls's frames on the stack, it
// shrinks to 4 KiB like a plain connection's (docs/benchmarks.md, *Idle
// memory per connection*, *Third round*).
//
// It never waits while crypto/tls holds something to return: decrypted
// bytes of a record read before, or whole records it read ahead from the
// socket. Read first asks tls.Conn with a read deadline in the past, which
// returns what it holds without touching the socket (a timeout is not
// sticky in crypto/tls: the next read goes on where it stopped); only when
// that times out does it wait, then reads for real. The wait ends when
// the socket has a byte to read, an end or an error, or when the socket is
// closed (which is how the node ends a connection), and nothing of
// crypto/tls's state changes while it lasts.
//
// It owns the socket's read deadline: nothing else sets one after the
// upgrade (the idle timeout is the node's sweep, conn.touch).
type tlsReader struct {
	tc  *tls.Conn       // Static.
	raw syscall.RawConn // Static: the TCP socket's; nil: Read waits inside tls.Conn.Read.
}

func newTLSReader(tc *tls.Conn) *tlsReader {
	r := &tlsReader{tc: tc}
	if sc, ok := tc.NetConn().(syscall.Conn); ok && canWaitReadable {
		if raw, err := sc.SyscallConn(); err == nil {
			r.raw = raw
		}
	}
	return r
}

// longAgo is a read deadline that has passed: a read returns at once
// with what is buffered, or times out.
var longAgo = time.Unix(1, 0)

func (r *tlsReader) Read(p []byte) (int, error) {
	if r.raw != nil && len(p) > 0 {
		if n, err, held := r.readHeld(p); held {
			return n, err
		}
		// Nothing held: wait for the socket here. An error (the socket
		// closed) is the Read's below to report.
		_ = r.raw.Read(socketReadable)
	}
	return r.tc.Read(p)
}

// readHeld reads what crypto/tls holds already, without touching the
// socket: held is false when it holds nothing (a read would wait for the
// socket), true when n and err are the read's.
//
// When crypto/tls's buffers are seen empty (tlsBuffers.empty) it holds
// nothing, and the deadline, two settings and a read that fails with an
// error made for it, is skipped: it was a quarter of a parked
// connection's wake-up for a pong.
func (r *tlsReader) readHeld(p []byte) (n int, err error, held bool) {
	if tlsConnBuffers.empty(r.tc) {
		return 0, nil, false
	}
	if err := r.tc.SetReadDeadline(longAgo); err != nil {
		return 0, nil, false
	}
	n, err = r.tc.Read(p)
	_ = r.tc.SetReadDeadline(time.Time{})
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return 0, nil, false
	}
	return n, err, true
}
