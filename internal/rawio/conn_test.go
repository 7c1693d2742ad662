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

// connPair is tcpPair with a's Conn.
func connPair(t *testing.T) (c *Conn, a, b net.Conn) {
	t.Helper()
	_, a, b = tcpPair(t)
	raw, err := a.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	return NewConn(raw), a, b
}

// Conn's calls do what a net.Conn's would, without waiting to write: a
// write takes what the socket takes, a read waits for bytes within the
// deadline, and each reports the socket's error or the descriptor's end.
func TestConn(t *testing.T) {
	cases := map[string]func(t *testing.T, c *Conn, a, b net.Conn){
		"TryWrite writes, the peer reads it": func(t *testing.T, c *Conn, _, b net.Conn) {
			if n, e, err := c.TryWrite([]byte("tick")); n != 4 || e != 0 || err != nil {
				t.Fatalf("TryWrite = %d, %v, %v; want 4", n, e, err)
			}
			got := make([]byte, 4)
			_ = b.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := b.Read(got); err != nil || string(got) != "tick" {
				t.Fatalf("peer read %q, %v", got, err)
			}
		},
		"TryWrite stops at a full socket, without an error": func(t *testing.T, c *Conn, _, _ net.Conn) {
			chunk := make([]byte, 1<<20)
			for i := 0; ; i++ {
				n, e, err := c.TryWrite(chunk)
				if e != 0 || err != nil || i > 1000 {
					t.Fatalf("TryWrite %d: %d, %v, %v", i, n, e, err)
				}
				if n < len(chunk) {
					return
				}
			}
		},
		"TryWrite after the peer reset reports the socket's error": func(t *testing.T, c *Conn, _, b net.Conn) {
			_ = b.(*net.TCPConn).SetLinger(0)
			b.Close()
			time.Sleep(50 * time.Millisecond) // the RST crosses loopback
			for range 100 {
				if _, e, err := c.TryWrite([]byte("x")); e != 0 {
					if err != nil {
						t.Fatalf("both the socket's error %v and %v", e, err)
					}
					return // ECONNRESET, then EPIPE
				}
				time.Sleep(5 * time.Millisecond)
			}
			t.Fatal("writes to a reset socket kept succeeding")
		},
		"TryWrite on a closed connection": func(t *testing.T, c *Conn, a, _ net.Conn) {
			a.Close()
			if n, _, err := c.TryWrite([]byte("x")); n != 0 || !errors.Is(err, net.ErrClosed) {
				t.Fatalf("TryWrite = %d, %v; want net.ErrClosed", n, err)
			}
		},
		"Read waits for bytes": func(t *testing.T, c *Conn, _, b net.Conn) {
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
		"Read gives up at the deadline": func(t *testing.T, c *Conn, a, _ net.Conn) {
			_ = a.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
			if n, e, err := c.Read(make([]byte, 8)); n != 0 || e != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("Read = %d, %v, %v; want the deadline", n, e, err)
			}
		},
		"Read at the peer's end is 0 with no error": func(t *testing.T, c *Conn, _, b net.Conn) {
			b.Close()
			if n, e, err := c.Read(make([]byte, 8)); n != 0 || e != 0 || err != nil {
				t.Fatalf("Read = %d, %v, %v; want 0 and nothing else", n, e, err)
			}
		},
		"Read of nothing does not wait": func(t *testing.T, c *Conn, _, _ net.Conn) {
			if n, e, err := c.Read(nil); n != 0 || e != 0 || err != nil {
				t.Fatalf("Read(nil) = %d, %v, %v", n, e, err)
			}
		},
		"Read on a closed connection": func(t *testing.T, c *Conn, a, _ net.Conn) {
			a.Close()
			if _, _, err := c.Read(make([]byte, 8)); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("Read: %v; want net.ErrClosed", err)
			}
		},
		"Read after the peer reset reports the socket's error": func(t *testing.T, c *Conn, _, b net.Conn) {
			_ = b.(*net.TCPConn).SetLinger(0)
			b.Close()
			if _, e, err := c.Read(make([]byte, 8)); e != syscall.ECONNRESET || err != nil {
				t.Fatalf("Read: %v, %v; want ECONNRESET", e, err)
			}
		},
	}
	for name, check := range cases {
		t.Run(name, func(t *testing.T) {
			c, a, b := connPair(t)
			check(t, c, a, b)
		})
	}
}

// A call allocates nothing: the functions handed to the RawConn are bound
// once, by NewConn. A method value made per call fails this.
func TestConnAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	c, _, b := connPair(t)
	frame := make([]byte, 150)
	buf := make([]byte, 150)
	call := func() {
		if n, e, err := c.TryWrite(frame); n != len(frame) || e != 0 || err != nil {
			t.Fatalf("TryWrite = %d, %v, %v", n, e, err)
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
