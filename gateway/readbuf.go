package gateway

import (
	"bufio"
	"bytes"
	"io"
	"net"
)

// readBufferBytes is the read buffer of a connection's frame reader. What
// clients send is small: commands of a few hundred bytes, pongs of 14;
// one read takes a frame of that size whole. A larger frame (up to
// MaxMessageBytes) is read past the buffer, straight into its payload.
// It was net/http's 4 KiB, held by every connection for its lifetime.
const readBufferBytes = 512

// readerAfterHijack is the buffered reader the frame reader reads the
// socket through after the upgrade: a small one of its own, so that
// nothing of net/http's connection (its reader, the conn it reads
// through) stays referenced. Bytes that net/http's reader had buffered
// already (a client may send its first frame right behind the handshake
// request) are read first.
func readerAfterHijack(nc net.Conn, hr *bufio.Reader) *bufio.Reader {
	var src io.Reader = nc
	if n := hr.Buffered(); n > 0 {
		early, _ := hr.Peek(n)
		src = &earlyReader{early: bytes.Clone(early), r: nc}
	}
	return bufio.NewReaderSize(src, readBufferBytes)
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
