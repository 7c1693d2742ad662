package gateway

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// sockPair returns a sockConn accepted from a listener and the client's
// end of it.
func sockPair(t testing.TB) (*sockConn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	l := sockListener{Listener: ln}
	type res struct {
		c   net.Conn
		err error
	}
	dialed := make(chan res, 1)
	go func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		dialed <- res{c, err}
	}()
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	d := <-dialed
	if d.err != nil {
		t.Fatal(d.err)
	}
	s, ok := c.(*sockConn)
	if !ok {
		t.Fatalf("accepted %T, want *sockConn", c)
	}
	t.Cleanup(func() { _ = s.Close(); _ = d.c.Close() })
	return s, d.c
}

// In inline mode writes never wait: what a socket whose reader stopped
// does not take is kept, and written first, in order, once the mode ends.
func TestSockConnInlineKeepsWhatWouldWait(t *testing.T) {
	s, client := sockPair(t)
	_ = s.SetWriteBuffer(16 << 10)
	var want bytes.Buffer
	chunk := bytes.Repeat([]byte("0123456789abcdef"), 1024) // 16 KiB
	if !s.tryBeginInline() {
		t.Fatal("inline mode refused on an idle socket")
	}
	for i := range 128 { // 2 MiB, far beyond both sockets' buffers: a waiting write would hang here
		chunk[0] = byte(i)
		if n, err := s.Write(chunk); n != len(chunk) || err != nil {
			t.Fatalf("inline write %d: %d, %v", i, n, err)
		}
		want.Write(chunk)
	}
	if !s.endInline() {
		t.Fatal("nothing kept after 2 MiB to a reader that does not read")
	}
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(client)
		got <- b
	}()
	_ = s.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := s.flush(); err != nil {
		t.Fatal(err)
	}
	if s.kept() {
		t.Fatal("bytes kept after flush")
	}
	// A write out of inline mode goes behind what was kept.
	tail := []byte("the end")
	if _, err := s.Write(tail); err != nil {
		t.Fatal(err)
	}
	want.Write(tail)
	_ = s.CloseWrite()
	if b := <-got; !bytes.Equal(b, want.Bytes()) {
		t.Fatalf("the reader got %d bytes, want the %d written, in order", len(b), want.Len())
	}
}

// A write out of inline mode writes what is kept first; a flush in
// inline mode is refused; a socket the peer reset fails an inline write.
func TestSockConnModes(t *testing.T) {
	s, client := sockPair(t)
	if !s.tryBeginInline() {
		t.Fatal("inline mode refused on an idle socket")
	}
	if err := s.flush(); !errors.Is(err, errSockInline) {
		t.Fatalf("flush in inline mode: %v, want errSockInline", err)
	}
	if _, err := s.Write([]byte("a")); err != nil {
		t.Fatal(err)
	}
	if s.endInline() {
		t.Fatal("one byte to an empty socket was kept")
	}
	if _, err := s.Write([]byte("b")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2)
	if _, err := io.ReadFull(client, buf); err != nil || string(buf) != "ab" {
		t.Fatalf("read %q, %v, want \"ab\"", buf, err)
	}

	// A write that waits holds the socket: inline mode is refused.
	s.mu.Lock()
	if s.tryBeginInline() {
		t.Fatal("inline mode entered while a write holds the socket")
	}
	s.mu.Unlock()

	// The peer resets the connection: inline writes fail, sooner or later.
	_ = client.(*net.TCPConn).SetLinger(0)
	_ = client.Close()
	if !s.tryBeginInline() {
		t.Fatal("inline mode refused on an idle socket")
	}
	defer s.endInline()
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		_, err = s.Write([]byte("after the reset"))
		time.Sleep(time.Millisecond)
	}
	if err == nil {
		t.Fatal("inline writes to a reset connection did not fail")
	}
}

// A write out of inline mode writes what the socket takes at once, then
// waits for room for the rest, within the write deadline; the deadline
// bounds the waiting, not a write that finds room.
func TestSockConnWaitingWrite(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<17) // 2 MiB: more than both sockets' buffers
	cases := map[string]func(t *testing.T, s *sockConn, client net.Conn){
		"a write bigger than the socket waits for the reader and goes whole": func(t *testing.T, s *sockConn, client net.Conn) {
			got := make(chan []byte, 1)
			go func() {
				time.Sleep(50 * time.Millisecond) // the first write finds the socket full
				b, _ := io.ReadAll(client)
				got <- b
			}()
			_ = s.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if n, err := s.Write(big); n != len(big) || err != nil {
				t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(big))
			}
			_ = s.CloseWrite()
			if b := <-got; !bytes.Equal(b, big) {
				t.Fatalf("the reader got %d bytes, want the %d written, in order", len(b), len(big))
			}
		},
		"a socket that stays full times out at the deadline": func(t *testing.T, s *sockConn, _ net.Conn) {
			_ = s.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
			n, err := s.Write(big)
			if n >= len(big) || !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("Write = %d, %v; want part of %d and a timeout", n, err, len(big))
			}
		},
		"a write that finds room goes after the deadline passed": func(t *testing.T, s *sockConn, client net.Conn) {
			_ = s.SetWriteDeadline(time.Now().Add(-time.Second))
			if n, err := s.Write([]byte("tick")); n != 4 || err != nil {
				t.Fatalf("Write = %d, %v; want 4, nil", n, err)
			}
			buf := make([]byte, 4)
			if _, err := io.ReadFull(client, buf); err != nil || string(buf) != "tick" {
				t.Fatalf("read %q, %v", buf, err)
			}
		},
	}
	for name, check := range cases {
		t.Run(name, func(t *testing.T) {
			s, client := sockPair(t)
			_ = s.SetWriteBuffer(16 << 10)
			check(t, s, client)
		})
	}
}

// sockOf finds the sockConn under a plain or a TLS connection.
func TestSockOf(t *testing.T) {
	s, _ := sockPair(t)
	tests := map[string]struct {
		nc   net.Conn
		want *sockConn
	}{
		"plain":        {s, s},
		"tls":          {tls.Server(s, &tls.Config{}), s},
		"not a socket": {&net.TCPConn{}, nil},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := sockOf(tc.nc); got != tc.want {
				t.Fatalf("sockOf = %p, want %p", got, tc.want)
			}
		})
	}
}

// BenchmarkInlineWrite is one inline write of a 150-byte frame to a
// loopback socket whose reader keeps up: the write an inline writer round
// makes per connection. Most of it is the kernel's; what is the node's
// is the descriptor's bookkeeping around the write(2) and an allocation,
// if any.
//
//	go test -run '^$' -bench InlineWrite -count 8 ./gateway
func BenchmarkInlineWrite(b *testing.B) {
	s, client := sockPair(b)
	go func() { _, _ = io.Copy(io.Discard, client) }()
	frame := bytes.Repeat([]byte("x"), 150)
	if !s.tryBeginInline() {
		b.Fatal("inline mode refused")
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := s.Write(frame); err != nil {
			b.Fatal(err)
		}
		if len(s.rest) > 0 { // the reader fell behind: let it catch up
			s.endInline()
			if err := s.flush(); err != nil {
				b.Fatal(err)
			}
			s.tryBeginInline()
		}
	}
	b.StopTimer()
	s.endInline()
}

// An inline write allocates nothing (tryWrite's call on the descriptor is
// made once per socket): the pin behind BenchmarkInlineWrite.
func TestInlineWriteAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	s, client := sockPair(t)
	go func() { _, _ = io.Copy(io.Discard, client) }()
	if !s.tryBeginInline() {
		t.Fatal("inline mode refused")
	}
	defer s.endInline()
	frame := bytes.Repeat([]byte("x"), 150)
	write := func() {
		if _, err := s.Write(frame); err != nil {
			t.Fatal(err)
		}
		s.rest = s.rest[:0] // what the socket kept is not this pin's: drop it
	}
	write() // the socket's writer is made by its first write
	if allocs := testing.AllocsPerRun(1000, write); allocs != 0 {
		t.Fatalf("%v allocations per inline write", allocs)
	}
}

// tryWrite writes on the descriptor's number, so it must never write once
// Close began: by then the kernel may have given the number to another
// socket. After Close every write fails with net.ErrClosed, inline or not,
// and a socket that got the old number receives nothing.
func TestSockConnWritesNothingAfterClose(t *testing.T) {
	for _, inline := range []bool{true, false} {
		t.Run(fmt.Sprintf("inline=%v", inline), func(t *testing.T) {
			s, _ := sockPair(t)
			old := s.fdn
			if inline && !s.tryBeginInline() {
				t.Fatal("inline mode refused")
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			// Take the number again, if the kernel gives it back: new
			// sockets get the lowest free number.
			var reuser net.Conn
			for i := 0; i < 8 && reuser == nil; i++ {
				a, b := loopbackPair(t)
				switch old {
				case fdOf(t, a):
					reuser = b // what is written on a's number, b reads
				case fdOf(t, b):
					reuser = a
				}
			}
			if _, err := s.Write([]byte("for the closed socket only")); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("write after Close: %v, want net.ErrClosed", err)
			}
			if reuser == nil {
				t.Logf("descriptor %d was not reused; checked the error only", old)
				return
			}
			_ = reuser.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			if n, err := reuser.Read(make([]byte, 64)); n > 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("the socket that got descriptor %d read %d bytes (%v)", old, n, err)
			}
		})
	}
}

func fdOf(t *testing.T, c net.Conn) int32 {
	t.Helper()
	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var fd int32
	if err := raw.Control(func(d uintptr) { fd = int32(d) }); err != nil {
		t.Fatal(err)
	}
	return fd
}

// Close waits for a raw write under way, and writes that race with it
// either go out whole before it or fail: none is made on the closed
// number (the race detector watches raws).
func TestSockConnCloseRacesWrites(t *testing.T) {
	for range 20 {
		s, client := sockPair(t)
		go func() { _, _ = io.Copy(io.Discard, client) }()
		frame := bytes.Repeat([]byte("x"), 150)
		done := make(chan error, 4)
		for range 4 {
			go func() {
				for {
					if _, err := s.Write(frame); err != nil {
						done <- err
						return
					}
				}
			}()
		}
		time.Sleep(time.Millisecond)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		for range 4 {
			if err := <-done; !errors.Is(err, net.ErrClosed) {
				t.Fatalf("a write racing Close failed with %v, want net.ErrClosed", err)
			}
		}
		// A refused write counts itself for a moment too, so the count is
		// looked at once every writer has returned: nothing is held.
		if got := s.raws.Load(); got != rawsClosed {
			t.Fatalf("raws = %#x once the writers returned, want only the closed flag", got)
		}
	}
}
