package gateway

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tickgate/tickgate/proto"
)

// parkedSockets is how many of the node's connections have parked their
// read loop (park.go); -1 when the node has no parker.
func parkedSockets(s *Server) int {
	s.mu.Lock()
	p := s.park
	s.mu.Unlock()
	if p == nil {
		return -1
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.parked)
}

// readLoops counts the process's goroutines inside a node's read loop.
func readLoops() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return bytes.Count(buf[:n], []byte("gateway.(*Server).readLoop("))
		}
		buf = make([]byte, 2*len(buf))
	}
}

// parkEnv is a node for the parking tests, plain or over TLS, with no
// heartbeat or ping within a test (the bare clients answer none).
func parkEnv(t *testing.T, overTLS bool, tweak ...func(*Config)) (*testEnv, func() (net.Conn, error)) {
	t.Helper()
	e := newTestEnv(t, append([]func(*Config){func(c *Config) {
		if !overTLS {
			c.TLS = nil
		}
		c.MaxConnsPerIP = -1
		c.MaxConnsPerSubject = -1
		c.HeartbeatInterval = time.Hour
		c.LagTimeout = time.Hour
	}}, tweak...)...)
	dial := func() (net.Conn, error) { return net.Dial("tcp", e.addr) }
	if overTLS {
		cfg := e.cert.ClientConfig()
		dial = func() (net.Conn, error) { return tls.Dial("tcp", e.addr, cfg) }
	}
	if runtime.GOOS == "linux" { // Serve, on its own goroutine, makes the parker
		waitFor(t, "the node's parker", func() bool { return parkedSockets(e.srv) >= 0 })
	}
	return e, dial
}

func commandJSON(t testing.TB, id int64, op string, channels ...string) []byte {
	t.Helper()
	return []byte(fmt.Sprintf(`{"op":%q,"id":%d,"channels":["%s"]}`, op, id, strings.Join(channels, `","`)))
}

// awaitReply reads server frames until one holds want.
func awaitReply(t testing.TB, nc net.Conn, br *bufio.Reader, want string) {
	t.Helper()
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer func() { _ = nc.SetReadDeadline(time.Time{}) }()
	for {
		if bytes.Contains(readServerFrame(t, br), []byte(want)) {
			return
		}
	}
}

// writePieces writes b in the given pieces, pausing between them long
// enough for the node's read loop to take each one alone.
func writePieces(t testing.TB, nc net.Conn, b []byte, cuts ...int) {
	t.Helper()
	at := 0
	for _, cut := range append(cuts, len(b)) {
		if _, err := nc.Write(b[at:cut]); err != nil {
			t.Fatal(err)
		}
		at = cut
		if cut < len(b) {
			time.Sleep(30 * time.Millisecond)
		}
	}
}

// An idle connection keeps no read loop: it parks between frames, wakes
// for every command however it arrives (whole, its header split, in
// fragments with pauses, several in one write), receives market data
// while parked, and ends when the client closes or the node drains. The
// connection opens once however often its loop starts again.
func TestIdleConnectionsParkTheirReadLoop(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("read loops park on linux only")
	}
	for _, overTLS := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "tls"}[overTLS], func(t *testing.T) {
			e, dial := parkEnv(t, overTLS)
			loopsBefore := readLoops()
			const n = 6
			socks := make([]net.Conn, n)
			readers := make([]*bufio.Reader, n)
			for i := range socks {
				ch := fmt.Sprintf("ticker.PARK%d", i)
				socks[i] = bareSubscriber(t, dial, e.addr, e.token(t, fmt.Sprintf("park-%d", i), time.Hour, ">"), commandJSON(t, 1, proto.OpSubscribe, ch))
				readers[i] = bufio.NewReader(socks[i])
			}
			waitFor(t, "every connection parked", func() bool { return parkedSockets(e.srv) == n })
			// A loop that has just parked its socket may still be on
			// its way out (runtime.Goexit): they all end, soon.
			waitFor(t, "no read loop left running", func() bool { return readLoops() <= loopsBefore })

			// Market data reaches a parked connection.
			e.publish(t, "ticker.PARK0", 1, proto.FeedUpdate, &proto.Ticker{Symbol: "PARK0", Bid: "1", BidSize: "1", Ask: "2", AskSize: "1", Last: "1.5", Volume: "1", TS: 1})
			awaitReply(t, socks[0], readers[0], `"PARK0"`)

			ways := []struct {
				name string
				send func(t *testing.T, nc net.Conn, i int)
			}{
				{"whole", func(t *testing.T, nc net.Conn, i int) {
					writePieces(t, nc, maskedFrame(true, 0x1, commandJSON(t, 2, proto.OpUnsubscribe, fmt.Sprintf("ticker.PARK%d", i))))
				}},
				{"header split", func(t *testing.T, nc net.Conn, i int) {
					writePieces(t, nc, maskedFrame(true, 0x1, commandJSON(t, 2, proto.OpUnsubscribe, fmt.Sprintf("ticker.PARK%d", i))), 1, 4)
				}},
				{"payload split", func(t *testing.T, nc net.Conn, i int) {
					f := maskedFrame(true, 0x1, commandJSON(t, 2, proto.OpUnsubscribe, fmt.Sprintf("ticker.PARK%d", i)))
					writePieces(t, nc, f, 6, len(f)-2)
				}},
				{"fragments", func(t *testing.T, nc net.Conn, i int) {
					cmd := commandJSON(t, 2, proto.OpUnsubscribe, fmt.Sprintf("ticker.PARK%d", i))
					first := maskedFrame(false, 0x1, cmd[:10])
					writePieces(t, nc, append(first, maskedFrame(true, 0x0, cmd[10:])...), len(first))
				}},
				{"a ping between fragments", func(t *testing.T, nc net.Conn, i int) {
					cmd := commandJSON(t, 2, proto.OpUnsubscribe, fmt.Sprintf("ticker.PARK%d", i))
					b := maskedFrame(false, 0x1, cmd[:10])
					cut1 := len(b)
					b = append(b, maskedFrame(true, 0x9, []byte("p"))...)
					cut2 := len(b)
					writePieces(t, nc, append(b, maskedFrame(true, 0x0, cmd[10:])...), cut1, cut2)
				}},
				{"two in one write", func(t *testing.T, nc net.Conn, i int) {
					b := maskedFrame(true, 0x1, commandJSON(t, 3, proto.OpSubscribe, "ticker.OTHER"))
					writePieces(t, nc, append(b, maskedFrame(true, 0x1, commandJSON(t, 2, proto.OpUnsubscribe, fmt.Sprintf("ticker.PARK%d", i)))...))
				}},
			}
			for i, way := range ways {
				k := i % n
				way.send(t, socks[k], k)
				awaitReply(t, socks[k], readers[k], `"type":"unsubscribed"`)
				waitFor(t, way.name+": parked again", func() bool { return parkedSockets(e.srv) == n })
				// the next way on this connection subscribes again first
				writePieces(t, socks[k], maskedFrame(true, 0x1, commandJSON(t, 4, proto.OpSubscribe, fmt.Sprintf("ticker.PARK%d", k))))
				awaitReply(t, socks[k], readers[k], `"type":"subscribed"`)
			}
			if opened := strings.Count(e.logs.String(), "connection opened"); opened != n {
				t.Fatalf("%d connections opened, want %d", opened, n)
			}

			// Ends: the client closes half, the node drains the rest.
			for _, nc := range socks[:n/2] {
				_ = nc.Close()
			}
			waitFor(t, "the clients' closes seen", func() bool { return e.srv.Connections() == n-n/2 })
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := e.srv.Drain(ctx, 0); err != nil {
				t.Fatalf("drain with parked connections: %v", err)
			}
			if p := parkedSockets(e.srv); p != 0 {
				t.Fatalf("%d sockets parked after the drain", p)
			}
		})
	}
}

// This Go's tls.Conn has the read buffers tlsBuffers releases: when a Go
// release renames them, parked TLS connections keep theirs, and this says
// so.
func TestTLSBuffersFound(t *testing.T) {
	if !tlsConnBuffers.ok {
		t.Fatal("crypto/tls.Conn has no rawInput, input and hand of the expected types: parked TLS connections keep their read buffers (tlsbuf.go)")
	}
}

// A parked TLS connection holds none of crypto/tls's read buffers, and
// reads its next frames as before: commands whole, split and in
// fragments, then parks again without them.
func TestParkedTLSConnectionReleasesItsBuffers(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("read loops park on linux only")
	}
	e, dial := parkEnv(t, true)
	const n = 4
	socks := make([]net.Conn, n)
	readers := make([]*bufio.Reader, n)
	for i := range socks {
		socks[i] = bareSubscriber(t, dial, e.addr, e.token(t, fmt.Sprintf("tlsbuf-%d", i), time.Hour, ">"), commandJSON(t, 1, proto.OpSubscribe, fmt.Sprintf("ticker.BUF%d", i)))
		readers[i] = bufio.NewReader(socks[i])
	}
	buffersHeld := func() (conns, bytes int) {
		e.srv.mu.Lock()
		p := e.srv.park
		e.srv.mu.Unlock()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, r := range p.parked {
			if raw, _, hand := tlsConnBuffers.fields(r.tls.tc); raw.Cap()+hand.Cap() > 0 {
				conns, bytes = conns+1, bytes+raw.Cap()+hand.Cap()
			}
		}
		return conns, bytes
	}
	check := func(when string) {
		t.Helper()
		waitFor(t, when+": every connection parked", func() bool { return parkedSockets(e.srv) == n })
		if conns, bytes := buffersHeld(); conns > 0 {
			t.Fatalf("%s: %d parked TLS connections hold %d bytes of read buffers", when, conns, bytes)
		}
	}
	check("after the subscribe")
	for i, cuts := range [][]int{nil, {1, 4}, {6}, nil} {
		cmd := commandJSON(t, 2, proto.OpUnsubscribe, fmt.Sprintf("ticker.BUF%d", i))
		frame := maskedFrame(true, 0x1, cmd)
		if i == n-1 { // in two fragments, a pause between
			frame = append(maskedFrame(false, 0x1, cmd[:10]), maskedFrame(true, 0x0, cmd[10:])...)
			cuts = []int{len(maskedFrame(false, 0x1, cmd[:10]))}
		}
		writePieces(t, socks[i], frame, cuts...)
		awaitReply(t, socks[i], readers[i], `"type":"unsubscribed"`)
	}
	check("after a command on each")
}

// gatheringConn gathers what is written to it, once gather is set, and
// sends it in one write at flush: TLS records a client wrote one by one
// reach the node in one segment, and crypto/tls reads them all at once.
type gatheringConn struct {
	net.Conn
	gather bool   // Owned by the test's goroutine.
	held   []byte // Owned by the test's goroutine.
}

func (g *gatheringConn) Write(b []byte) (int, error) {
	if !g.gather {
		return g.Conn.Write(b)
	}
	g.held = append(g.held, b...)
	return len(b), nil
}

func (g *gatheringConn) flush() error {
	_, err := g.Conn.Write(g.held)
	g.gather, g.held = false, nil
	return err
}

// A parked TLS connection whose client's records arrive together (two
// commands, each in a record of its own, in one segment) answers both:
// the loop started for the first finds the second held by crypto/tls and
// reads it before it parks again. A loop that took crypto/tls for empty
// here would park with the second command unread, and it would wait for
// the client's next frame.
func TestParkedTLSConnectionReadsRecordsThatCameTogether(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("read loops park on linux only")
	}
	e, _ := parkEnv(t, true)
	var g *gatheringConn
	dial := func() (net.Conn, error) {
		raw, err := net.Dial("tcp", e.addr)
		if err != nil {
			return nil, err
		}
		g = &gatheringConn{Conn: raw}
		cfg := e.cert.ClientConfig()
		cfg.ServerName = "localhost"
		return tls.Client(g, cfg), nil
	}
	nc := bareSubscriber(t, dial, e.addr, e.token(t, "together", time.Hour, ">"), commandJSON(t, 1, proto.OpSubscribe, "ticker.TOG1"))
	br := bufio.NewReader(nc)
	waitFor(t, "the connection parked", func() bool { return parkedSockets(e.srv) == 1 })
	g.gather = true
	for i, op := range []string{proto.OpSubscribe, proto.OpUnsubscribe} {
		if _, err := nc.Write(maskedFrame(true, 0x1, commandJSON(t, int64(2+i), op, "ticker.TOG2"))); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.flush(); err != nil {
		t.Fatal(err)
	}
	awaitReply(t, nc, br, `"id":2`)
	awaitReply(t, nc, br, `"id":3`)
	waitFor(t, "the connection parked again", func() bool { return parkedSockets(e.srv) == 1 })
}

// A parked connection that the node closes (the idle timeout here; an
// eviction, a revocation or an expiry close the socket the same way) ends:
// closing the socket starts its read loop, which finds it closed.
func TestParkedConnectionClosedByTheNode(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("read loops park on linux only")
	}
	for _, overTLS := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "tls"}[overTLS], func(t *testing.T) {
			e, dial := parkEnv(t, overTLS, func(c *Config) {
				c.HeartbeatInterval = 100 * time.Millisecond
				c.IdleTimeout = 500 * time.Millisecond
			})
			nc := bareSubscriber(t, dial, e.addr, e.token(t, "silent", time.Hour, ">"), commandJSON(t, 1, proto.OpSubscribe, "ticker.IDLE"))
			t.Cleanup(func() { _ = nc.Close() })
			waitFor(t, "the connection parked", func() bool { return parkedSockets(e.srv) == 1 })
			waitFor(t, "the idle timeout closed it", func() bool { return e.srv.Connections() == 0 })
			if p := parkedSockets(e.srv); p != 0 {
				t.Fatalf("%d sockets parked after the close", p)
			}
		})
	}
}

// Many connections park and wake at random while clients send commands,
// close, and the node drains: every connection ends, nothing stays
// parked, and no command goes unanswered. Run under -race in CI.
func TestParkingUnderChurn(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("read loops park on linux only")
	}
	e, dial := parkEnv(t, false)
	const clients, rounds = 24, 15
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range clients {
		nc := bareSubscriber(t, dial, e.addr, e.token(t, fmt.Sprintf("churn-%d", i), time.Hour, ">"), commandJSON(t, 1, proto.OpSubscribe, "ticker.CHURN"))
		t.Cleanup(func() { _ = nc.Close() })
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				defer nc.Close() // the node drains the others
			}
			br := bufio.NewReader(nc)
			for r := range rounds {
				time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
				op := proto.OpUnsubscribe
				if r%2 == 1 {
					op = proto.OpSubscribe
				}
				f := maskedFrame(true, 0x1, commandJSON(t, int64(r+2), op, "ticker.CHURN"))
				cut := 1 + rand.IntN(len(f)-1)
				if _, err := nc.Write(f[:cut]); err != nil {
					errs <- err
					return
				}
				if rand.IntN(2) == 0 {
					time.Sleep(time.Millisecond)
				}
				if _, err := nc.Write(f[cut:]); err != nil {
					errs <- err
					return
				}
				want := fmt.Sprintf(`"id":%d`, r+2)
				_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
				for {
					p, err := readFrame(br)
					if err != nil {
						errs <- fmt.Errorf("round %d: %w", r, err)
						return
					}
					if bytes.Contains(p, []byte(want)) {
						break
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.srv.Drain(ctx, 20*time.Millisecond); err != nil {
		t.Fatalf("drain: %v", err)
	}
	if p := parkedSockets(e.srv); p != 0 {
		t.Fatalf("%d sockets parked with no connection left", p)
	}
}

// readFrame reads one unmasked, unfragmented server frame's payload.
func readFrame(br *bufio.Reader) ([]byte, error) {
	var h [2]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return nil, err
	}
	n := int(h[1] & 0x7f)
	switch n {
	case 126:
		var x [2]byte
		if _, err := io.ReadFull(br, x[:]); err != nil {
			return nil, err
		}
		n = int(binary.BigEndian.Uint16(x[:]))
	case 127:
		return nil, errors.New("a frame over 64 KiB")
	}
	p := make([]byte, n)
	_, err := io.ReadFull(br, p)
	return p, err
}

// BenchmarkClientFrame is the node's cost of a frame from an idle client
// (a WebSocket ping, answered with a pong), plain and over TLS: parked,
// the read loop ends after each frame and the parker starts one for the
// next; waiting, the loop waits in the runtime's poller as it did before
// parking. cpu-ns/op is the process's CPU time (the node and the test's
// client) per frame.
//
//	go test -run '^$' -bench ClientFrame -count 6 ./gateway
func BenchmarkClientFrame(b *testing.B) {
	for _, overTLS := range []bool{false, true} {
		for _, mode := range []string{"parked", "waiting"} {
			name := mode
			if overTLS {
				name += "-tls"
			}
			b.Run(name, func(b *testing.B) { benchmarkClientFrame(b, overTLS, mode == "waiting") })
		}
	}
}

func benchmarkClientFrame(b *testing.B, overTLS, waiting bool) {
	e := newTestEnv(b, func(c *Config) {
		if !overTLS {
			c.TLS = nil
		}
		c.HeartbeatInterval = time.Hour
		c.LagTimeout = time.Hour
		c.CommandRate = 1e9
		c.CommandBurst = 1e9
		c.noParking = waiting
	})
	dial := func() (net.Conn, error) { return net.Dial("tcp", e.addr) }
	if overTLS {
		cfg := e.cert.ClientConfig()
		dial = func() (net.Conn, error) { return tls.Dial("tcp", e.addr, cfg) }
	}
	nc := bareSubscriber(b, dial, e.addr, e.token(b, "frames", time.Hour, ">"), commandJSON(b, 1, proto.OpSubscribe, "ticker.FRAMES"))
	defer nc.Close()
	br := bufio.NewReader(nc)
	ping := maskedFrame(true, 0x9, []byte("p"))
	var before, after syscall.Rusage
	b.ReportAllocs()
	b.ResetTimer()
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	for range b.N {
		if _, err := nc.Write(ping); err != nil {
			b.Fatal(err)
		}
		if _, err := readFrame(br); err != nil {
			b.Fatal(err)
		}
	}
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	b.StopTimer()
	cpu := time.Duration(after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano())
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
	if p := parkedSockets(e.srv); !waiting && runtime.GOOS == "linux" && p != 1 {
		b.Fatalf("%d sockets parked, want 1", p)
	}
}
