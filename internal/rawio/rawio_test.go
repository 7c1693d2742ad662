//go:build unix

package rawio

import (
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

// tcpPair is a connected loopback pair: a's descriptor (non-blocking, as
// package net leaves it) and b.
func tcpPair(t testing.TB) (fd uintptr, a, b net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	a, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	b, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if fd, err = Descriptor(a.(*net.TCPConn)); err != nil {
		t.Fatal(err)
	}
	return fd, a, b
}

// Descriptor gives the number the connection writes through (every test
// here writes and reads by it), and an error once the connection is
// closed.
func TestDescriptorOfClosed(t *testing.T) {
	_, a, _ := tcpPair(t)
	a.Close()
	if fd, err := Descriptor(a.(*net.TCPConn)); err == nil {
		t.Errorf("descriptor %d of a closed connection, want an error", fd)
	}
}

// Each call does what read(2) and write(2) do on a non-blocking socket:
// bytes, EAGAIN when there is nothing to read or no room, 0 at the peer's
// end, the socket's error after it.
func TestReadWrite(t *testing.T) {
	cases := map[string]func(t *testing.T, fd uintptr, a, b net.Conn){
		"write then the peer reads it": func(t *testing.T, fd uintptr, _, b net.Conn) {
			if n, e := Write(fd, []byte("tick")); n != 4 || e != 0 {
				t.Fatalf("Write = %d, %v; want 4, 0", n, e)
			}
			peerReads(t, b, "tick")
		},
		"nothing to read is EAGAIN": func(t *testing.T, fd uintptr, _, _ net.Conn) {
			if n, e := Read(fd, make([]byte, 8)); n != 0 || e != syscall.EAGAIN {
				t.Fatalf("Read = %d, %v; want 0, EAGAIN", n, e)
			}
		},
		"read what the peer wrote": func(t *testing.T, fd uintptr, _, b net.Conn) {
			if _, err := b.Write([]byte("book")); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, 8)
			n, e := readSoon(t, fd, got)
			if e != 0 || string(got[:n]) != "book" {
				t.Fatalf("Read = %q, %v", got[:n], e)
			}
		},
		"the peer's end reads 0 with no error": func(t *testing.T, fd uintptr, _, b net.Conn) {
			b.Close()
			if n, e := readSoon(t, fd, make([]byte, 8)); n != 0 || e != 0 {
				t.Fatalf("Read = %d, %v; want 0, 0", n, e)
			}
		},
		"a full socket is EAGAIN": func(t *testing.T, fd uintptr, _, _ net.Conn) {
			chunk := make([]byte, 64<<10)
			for i := 0; ; i++ {
				n, e := Write(fd, chunk)
				if e == syscall.EAGAIN {
					if n != 0 {
						t.Fatalf("EAGAIN with %d bytes", n)
					}
					return
				}
				if e != 0 || i > 10000 {
					t.Fatalf("write %d: %d, %v", i, n, e)
				}
			}
		},
		"writing after the peer reset is an error": func(t *testing.T, fd uintptr, _, b net.Conn) {
			failsAfterReset(t, b, func() syscall.Errno { _, e := Write(fd, []byte("x")); return e })
		},
		"empty buffers make no call": func(t *testing.T, fd uintptr, _, _ net.Conn) {
			if n, e := Write(fd, nil); n != 0 || e != 0 {
				t.Fatalf("Write(nil) = %d, %v", n, e)
			}
			if n, e := Read(fd, nil); n != 0 || e != 0 {
				t.Fatalf("Read(nil) = %d, %v", n, e)
			}
		},
	}
	for name, check := range cases {
		t.Run(name, func(t *testing.T) {
			fd, a, b := tcpPair(t)
			check(t, fd, a, b)
		})
	}
}

// readSoon reads until something other than EAGAIN comes, for 5 s at most.
func readSoon(t *testing.T, fd uintptr, b []byte) (int, syscall.Errno) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		n, e := Read(fd, b)
		if e != syscall.EAGAIN {
			return n, e
		}
		if time.Now().After(deadline) {
			t.Fatal("nothing to read after 5 s")
		}
	}
}

// peerReads reads want from the peer b, within 5 s.
func peerReads(t *testing.T, b net.Conn, want string) {
	t.Helper()
	got := make([]byte, len(want))
	_ = b.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(b, got); err != nil || string(got) != want {
		t.Fatalf("peer read %q, %v; want %q", got, err, want)
	}
}

// failsAfterReset resets the connection from the peer b's side and
// writes (write) until the socket's error comes, for 0.5 s at most.
func failsAfterReset(t *testing.T, b net.Conn, write func() syscall.Errno) {
	t.Helper()
	_ = b.(*net.TCPConn).SetLinger(0)
	b.Close()
	time.Sleep(50 * time.Millisecond) // the RST crosses loopback
	for range 100 {
		if e := write(); e != 0 && e != syscall.EAGAIN {
			return // ECONNRESET, then EPIPE
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("writes to a reset socket kept succeeding")
}
