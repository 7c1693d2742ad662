package gateway

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/tickgate/tickgate/proto"
)

// BenchmarkIdleConnection reports what an idle connection costs the node:
// idleConns plain connections, each subscribed to 10 channels with
// nothing published, to a node in this process. The clients are bare
// sockets (a hand-made handshake, no reader goroutine), so the figures are
// the node's plus about one socket's bookkeeping per client: B/conn is the
// growth of heap in use and goroutine stacks, after the garbage collector
// ran, divided by the connections (heap-B/conn and stack-B/conn, its two
// parts); goroutines/conn is the growth of
// goroutines (the node's read loop: the writer runs only while it has
// something to write).
//
//	go test -run '^$' -bench IdleConnection -benchtime 1x ./gateway
//
// With -idle.heapprofile FILE the heap profile at the moment of
// measurement is written to FILE; with -test.memprofilerate 1 besides, its
// inuse_space itemises the bytes per connection:
//
//	go test -c -o /tmp/gw.test ./gateway
//	/tmp/gw.test -test.run '^$' -test.bench 'IdleConnection$' -test.benchtime 1x \
//		-test.memprofilerate 1 -idle.heapprofile /tmp/idle.heap
//	go tool pprof -sample_index inuse_space -top /tmp/gw.test /tmp/idle.heap
func BenchmarkIdleConnection(b *testing.B) { benchmarkIdle(b, false) }

// BenchmarkIdleConnectionTLS is BenchmarkIdleConnection over TLS: the
// node terminates TLS itself. The clients are bare tls.Conns, whose own
// record buffers and cipher states are in the figures too (about what the
// node's side holds; the heap profile tells them apart).
func BenchmarkIdleConnectionTLS(b *testing.B) { benchmarkIdle(b, true) }

// idleHeapProfile is where benchmarkIdle writes its heap profile, if set.
var idleHeapProfile = flag.String("idle.heapprofile", "", "write the heap profile of BenchmarkIdleConnection[TLS] at its measurement to this file")

func benchmarkIdle(b *testing.B, overTLS bool) {
	const idleConns, perConn = 2000, 10
	e := newTestEnv(b, func(c *Config) {
		if !overTLS {
			c.TLS = nil
		}
		c.MaxConnsPerIP = -1
		c.MaxConnsPerSubject = -1
		c.HandshakeRate = 1e6
		// No heartbeat, ping, idle or lag timeout within the run (the
		// bare clients answer no ping), however slowly a busy machine
		// makes the connections (and a profiled run is slow): the
		// figures are those of idle connections, all still open.
		c.HeartbeatInterval = time.Hour
		c.LagTimeout = time.Hour
	})
	dial := func() (net.Conn, error) { return net.Dial("tcp", e.addr) }
	if overTLS {
		cfg := e.cert.ClientConfig()
		dial = func() (net.Conn, error) { return tls.Dial("tcp", e.addr, cfg) }
	}
	channels := make([]string, perConn)
	for i := range channels {
		channels[i] = fmt.Sprintf("ticker.IDLE%d", i)
	}
	sub, err := json.Marshal(proto.Command{Op: proto.OpSubscribe, ID: ptr[int64](1), Channels: channels})
	if err != nil {
		b.Fatal(err)
	}
	for range b.N {
		before := settledMemory()
		socks := make([]net.Conn, idleConns)
		for i := range socks {
			socks[i] = bareSubscriber(b, dial, e.addr, e.token(b, fmt.Sprintf("idle-%d", i), time.Hour, ">"), sub)
		}
		waitWritersIdle(b, e.srv)
		after := settledMemory()
		grew := func(after, before uint64) float64 { return (float64(after) - float64(before)) / idleConns } // may be below 0
		b.ReportMetric(grew(after.heap+after.stack, before.heap+before.stack), "B/conn")
		b.ReportMetric(grew(after.heap, before.heap), "heap-B/conn")
		b.ReportMetric(grew(after.stack, before.stack), "stack-B/conn")
		b.ReportMetric(float64(after.goroutines-before.goroutines)/idleConns, "goroutines/conn")
		if *idleHeapProfile != "" {
			writeHeapProfile(b, *idleHeapProfile)
		}
		for _, s := range socks {
			_ = s.Close()
		}
		for deadline := time.Now().Add(10 * time.Second); e.srv.Connections() > 0 && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// writeHeapProfile writes the heap profile as of the last collection to
// path.
func writeHeapProfile(tb testing.TB, path string) {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		tb.Fatal(err)
	}
}

// memory is what settledMemory reads.
type memory struct {
	heap, stack uint64 // bytes of heap spans and of goroutine stacks in use
	goroutines  int
}

// settledMemory returns the heap and goroutine stacks in use after two
// collections (the second frees what the first's finalizers and stack
// shrinking left), and the goroutine count.
func settledMemory() memory {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return memory{heap: m.HeapInuse, stack: m.StackInuse, goroutines: runtime.NumGoroutine()}
}

// waitWritersIdle waits until no connection of s holds a writer.
func waitWritersIdle(tb testing.TB, s *Server) {
	tb.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		busy := 0
		s.mu.Lock()
		for c := range s.conns {
			if c.out.run.running() {
				busy++
			}
		}
		s.mu.Unlock()
		if busy == 0 {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%d connections still hold a writer", busy)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// bareSubscriber opens a WebSocket by hand on a socket from dial, sends
// cmd (a subscribe) and reads frames until the subscribed ack. It keeps no
// goroutine and no buffer: the socket is all the client holds.
func bareSubscriber(tb testing.TB, dial func() (net.Conn, error), addr, token string, cmd []byte) net.Conn {
	tb.Helper()
	nc, err := dial()
	if err != nil {
		tb.Fatal(err)
	}
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	req := "GET " + WebSocketPath + " HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
		"Sec-WebSocket-Protocol: " + proto.SubprotocolJSON + "\r\nAuthorization: Bearer " + token + "\r\n\r\n"
	if _, err := io.WriteString(nc, req); err != nil {
		tb.Fatal(err)
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		tb.Fatalf("upgrade: %v (%v)", err, resp)
	}
	if _, err := nc.Write(maskedFrame(true, 0x1, cmd)); err != nil {
		tb.Fatal(err)
	}
	for {
		payload := readServerFrame(tb, br)
		if bytes.Contains(payload, []byte(`"type":"subscribed"`)) {
			break
		}
	}
	_ = nc.SetDeadline(time.Time{})
	return nc
}

// readServerFrame reads one unmasked, unfragmented server frame.
func readServerFrame(tb testing.TB, br *bufio.Reader) []byte {
	tb.Helper()
	var h [2]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		tb.Fatal(err)
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var x [2]byte
		if _, err := io.ReadFull(br, x[:]); err != nil {
			tb.Fatal(err)
		}
		n = uint64(x[0])<<8 | uint64(x[1])
	case 127:
		var x [8]byte
		if _, err := io.ReadFull(br, x[:]); err != nil {
			tb.Fatal(err)
		}
		n = 0
		for _, c := range x {
			n = n<<8 | uint64(c)
		}
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(br, p); err != nil {
		tb.Fatal(err)
	}
	return p
}
