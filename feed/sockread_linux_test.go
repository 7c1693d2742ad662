package feed

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tickgate/tickgate/internal/natstest"
	"github.com/tickgate/tickgate/internal/selfsigned"
)

// rawPair dials through the feed's dialer: the NATS side's connection
// (a rawReadConn) and the peer's.
func rawPair(t *testing.T) (*rawReadConn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := newFeedDialer(time.Second, nil).Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	peer, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { peer.Close() })
	rc, ok := c.(*rawReadConn)
	if !ok {
		t.Fatalf("the feed dialer returned a %T, not a rawReadConn", c)
	}
	return rc, peer
}

// The raw-read connection reads as a net.Conn does: what arrives, waiting
// for it within the read deadline, io.EOF at the peer's end, net.ErrClosed
// once closed.
func TestRawReadConn(t *testing.T) {
	cases := map[string]func(t *testing.T, c *rawReadConn, peer net.Conn){
		"reads what arrived": func(t *testing.T, c *rawReadConn, peer net.Conn) {
			if _, err := peer.Write([]byte("MSG md.ticker.BTC-USD 1 3\r\nabc\r\n")); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, 32)
			if _, err := io.ReadFull(c, got); err != nil || string(got) != "MSG md.ticker.BTC-USD 1 3\r\nabc\r\n" {
				t.Fatalf("read %q, %v", got, err)
			}
		},
		"waits for bytes": func(t *testing.T, c *rawReadConn, peer net.Conn) {
			go func() {
				time.Sleep(50 * time.Millisecond)
				_, _ = peer.Write([]byte("PING\r\n"))
			}()
			start := time.Now()
			got := make([]byte, 6)
			if _, err := io.ReadFull(c, got); err != nil || string(got) != "PING\r\n" {
				t.Fatalf("read %q, %v", got, err)
			}
			if waited := time.Since(start); waited < 40*time.Millisecond {
				t.Fatalf("read returned after %v, before the bytes were sent", waited)
			}
		},
		"a read deadline ends the wait": func(t *testing.T, c *rawReadConn, _ net.Conn) {
			_ = c.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
			n, err := c.Read(make([]byte, 8))
			var ne net.Error
			if n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
				t.Fatalf("Read = %d, %v; want 0 and a timeout", n, err)
			}
		},
		"the peer's end is io.EOF": func(t *testing.T, c *rawReadConn, peer net.Conn) {
			_, _ = peer.Write([]byte("+OK\r\n"))
			peer.Close()
			got, err := io.ReadAll(c)
			if err != nil || string(got) != "+OK\r\n" {
				t.Fatalf("ReadAll = %q, %v", got, err)
			}
			if n, err := c.Read(make([]byte, 8)); n != 0 || err != io.EOF {
				t.Fatalf("Read after the end = %d, %v; want 0, io.EOF", n, err)
			}
		},
		"closed locally is net.ErrClosed": func(t *testing.T, c *rawReadConn, _ net.Conn) {
			go func() {
				time.Sleep(30 * time.Millisecond)
				c.Close()
			}()
			if _, err := c.Read(make([]byte, 8)); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("Read on a closed connection: %v", err)
			}
		},
		"an empty buffer reads nothing": func(t *testing.T, c *rawReadConn, _ net.Conn) {
			if n, err := c.Read(nil); n != 0 || err != nil {
				t.Fatalf("Read(nil) = %d, %v", n, err)
			}
		},
		"concurrent reads share the bytes": func(t *testing.T, c *rawReadConn, peer net.Conn) {
			const total = 1 << 16
			go func() { _, _ = peer.Write(make([]byte, total)); peer.Close() }()
			var wg sync.WaitGroup
			var mu sync.Mutex
			read := 0
			for range 4 {
				wg.Go(func() {
					b := make([]byte, 1000)
					for {
						n, err := c.Read(b)
						mu.Lock()
						read += n
						mu.Unlock()
						if err != nil {
							return
						}
					}
				})
			}
			wg.Wait()
			if read != total {
				t.Fatalf("read %d bytes, sent %d", read, total)
			}
		},
	}
	for name, check := range cases {
		t.Run(name, func(t *testing.T) {
			c, peer := rawPair(t)
			check(t, c, peer)
		})
	}
}

// A read of bytes already there allocates nothing: it runs once per feed
// read.
func TestRawReadAllocatesNothing(t *testing.T) {
	c, peer := rawPair(t)
	one, buf := []byte{'x'}, make([]byte, 8)
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := peer.Write(one); err != nil {
			t.Fatal(err)
		}
		if n, err := c.Read(buf); n != 1 || err != nil {
			t.Fatalf("Read = %d, %v", n, err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per read", allocs)
	}
}

// A tls:// NATS URL has nats.go wrap the dialed connection in crypto/tls:
// the raw-read connection is then read by crypto/tls's record layer,
// which asks for a record header, then the rest, across reads of any
// size. Every message, small or spanning several records, arrives whole
// and in order, from a real NATS server that requires TLS.
func TestRawReadConnUnderTLS(t *testing.T) {
	cert, err := selfsigned.New(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ns := natstest.RunTLS(t, cert.ServerConfig())
	d := &recordingDialer{feedDialer: newFeedDialer(time.Second, nil)}
	url := strings.Replace(ns.ClientURL(), "nats://", "tls://", 1)
	nc, err := nats.Connect(url, nats.SetCustomDialer(d), nats.Secure(cert.ClientConfig()))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, ok := d.last.(*rawReadConn); !ok {
		t.Fatalf("the dialer returned a %T, not a rawReadConn", d.last)
	}
	if !nc.TLSRequired() {
		t.Fatal("the connection is not over TLS")
	}
	got := make(chan *nats.Msg, 64)
	sub, err := nc.ChanSubscribe("md.ticker.BTC-USD", got)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	pub, err := nats.Connect(url, nats.Secure(cert.ClientConfig()))
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	sizes := []int{1, 150, 16 << 10, 16<<10 + 1, 100 << 10, 3, 40 << 10}
	for i, n := range sizes {
		if err := pub.Publish("md.ticker.BTC-USD", bytes.Repeat([]byte{byte('a' + i)}, n)); err != nil {
			t.Fatal(err)
		}
	}
	for i, n := range sizes {
		select {
		case m := <-got:
			if !bytes.Equal(m.Data, bytes.Repeat([]byte{byte('a' + i)}, n)) {
				t.Fatalf("message %d: %d bytes, want %d of %q", i, len(m.Data), n, rune('a'+i))
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("message %d of %d never arrived", i, len(sizes))
		}
	}
}

// recordingDialer keeps the connection the feed's dialer returned.
type recordingDialer struct {
	*feedDialer
	last net.Conn
}

func (d *recordingDialer) Dial(network, address string) (net.Conn, error) {
	c, err := d.feedDialer.Dial(network, address)
	d.last = c
	return c, err
}
