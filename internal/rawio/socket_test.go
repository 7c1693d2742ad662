//go:build unix

package rawio

import (
	"errors"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// connPair is tcpPair with a's Reader.
func connPair(t *testing.T) (fd uintptr, c *Reader, a, b net.Conn) {
	t.Helper()
	fd, a, b = tcpPair(t)
	raw, err := a.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	return fd, NewReader(raw), a, b
}

// TryWrite writes what the socket takes and stops where a write would
// wait; Reader's Read waits for bytes within the deadline, as a net.Conn
// does. Each reports the socket's error, and Read the descriptor's end.
func TestTryWriteAndReader(t *testing.T) {
	cases := map[string]func(t *testing.T, fd uintptr, c *Reader, a, b net.Conn){
		"TryWrite writes, the peer reads it": func(t *testing.T, fd uintptr, c *Reader, _, b net.Conn) {
			if n, e := TryWrite(fd, []byte("tick")); n != 4 || e != 0 {
				t.Fatalf("TryWrite = %d, %v; want 4", n, e)
			}
			peerReads(t, b, "tick")
		},
		"TryWrite stops at a full socket, without an error": func(t *testing.T, fd uintptr, c *Reader, _, _ net.Conn) {
			chunk := make([]byte, 1<<20)
			for i := 0; ; i++ {
				n, e := TryWrite(fd, chunk)
				if e != 0 || i > 1000 {
					t.Fatalf("TryWrite %d: %d, %v", i, n, e)
				}
				if n < len(chunk) {
					return
				}
			}
		},
		"TryWrite after the peer reset reports the socket's error": func(t *testing.T, fd uintptr, _ *Reader, _, b net.Conn) {
			failsAfterReset(t, b, func() syscall.Errno { _, e := TryWrite(fd, []byte("x")); return e })
		},
		"TryWrite of nothing makes no call": func(t *testing.T, fd uintptr, _ *Reader, _, _ net.Conn) {
			if n, e := TryWrite(fd, nil); n != 0 || e != 0 {
				t.Fatalf("TryWrite(nil) = %d, %v", n, e)
			}
		},
		"Read waits for bytes": func(t *testing.T, fd uintptr, c *Reader, _, b net.Conn) {
			go func() {
				time.Sleep(50 * time.Millisecond)
				_, _ = b.Write([]byte("book"))
			}()
			got := make([]byte, 8)
			n, e, err := c.Read(got)
			if e != 0 || err != nil || string(got[:n]) != "book" {
				t.Fatalf("Read = %q, %v, %v", got[:n], e, err)
			}
		},
		"Read gives up at the deadline": func(t *testing.T, fd uintptr, c *Reader, a, _ net.Conn) {
			_ = a.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
			if n, e, err := c.Read(make([]byte, 8)); n != 0 || e != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("Read = %d, %v, %v; want the deadline", n, e, err)
			}
		},
		"Read at the peer's end is 0 with no error": func(t *testing.T, fd uintptr, c *Reader, _, b net.Conn) {
			b.Close()
			if n, e, err := c.Read(make([]byte, 8)); n != 0 || e != 0 || err != nil {
				t.Fatalf("Read = %d, %v, %v; want 0 and nothing else", n, e, err)
			}
		},
		"Read of nothing does not wait": func(t *testing.T, fd uintptr, c *Reader, _, _ net.Conn) {
			if n, e, err := c.Read(nil); n != 0 || e != 0 || err != nil {
				t.Fatalf("Read(nil) = %d, %v, %v", n, e, err)
			}
		},
		"Read on a closed connection": func(t *testing.T, fd uintptr, c *Reader, a, _ net.Conn) {
			a.Close()
			if _, _, err := c.Read(make([]byte, 8)); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("Read: %v; want net.ErrClosed", err)
			}
		},
		"Read after the peer reset reports the socket's error": func(t *testing.T, fd uintptr, c *Reader, _, b net.Conn) {
			_ = b.(*net.TCPConn).SetLinger(0)
			b.Close()
			if _, e, err := c.Read(make([]byte, 8)); e != syscall.ECONNRESET || err != nil {
				t.Fatalf("Read: %v, %v; want ECONNRESET", e, err)
			}
		},
	}
	for name, check := range cases {
		t.Run(name, func(t *testing.T) {
			fd, c, a, b := connPair(t)
			check(t, fd, c, a, b)
		})
	}
}

// A read allocates nothing: the function handed to the RawConn is bound
// once, by NewReader. A method value made per call fails this.
func TestReaderAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	fd, c, _, b := connPair(t)
	frame := make([]byte, 150)
	buf := make([]byte, 150)
	call := func() {
		if n, e := TryWrite(fd, frame); n != len(frame) || e != 0 {
			t.Fatalf("TryWrite = %d, %v", n, e)
		}
		if _, err := b.Write(frame); err != nil {
			t.Fatal(err)
		}
		for got := 0; got < len(frame); {
			n, e, err := c.Read(buf[got:])
			if e != 0 || err != nil {
				t.Fatalf("Read: %v, %v", e, err)
			}
			got += n
		}
		drained := 0
		for drained < len(frame) {
			n, err := b.Read(buf[:len(frame)-drained])
			if err != nil {
				t.Fatal(err)
			}
			drained += n
		}
	}
	call()
	if allocs := testing.AllocsPerRun(200, call); allocs != 0 {
		t.Fatalf("%v allocations per write and read", allocs)
	}
}
