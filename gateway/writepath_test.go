package gateway

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lxzan/gws"

	"github.com/tickgate/tickgate/codec"
	"github.com/tickgate/tickgate/feed"
	"github.com/tickgate/tickgate/proto"
)

// BenchmarkSweep is the node's connection sweep (sweep.go) over 10,000
// connections: one op is one connection looked at, with nothing due
// (idle) or a heartbeat due (its writer woken). At the default period
// (about once a second) it replaces 10,000 tickers and heartbeat timers.
//
//	go test -run '^$' -bench Sweep ./gateway
func BenchmarkSweep(b *testing.B) {
	s := hubFixture(b)
	conns := make([]*conn, 10_000)
	for i := range conns {
		conns[i] = s.bareConn(codec.JSON())
	}
	for _, due := range []bool{false, true} {
		b.Run(fmt.Sprintf("heartbeat_due=%v", due), func(b *testing.B) {
			now := time.Now().UnixNano()
			if due {
				now += int64(s.cfg.HeartbeatInterval)
			}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				c := conns[i%len(conns)]
				c.sweep(now)
				if due {
					<-c.out.wake
				}
			}
		})
	}
}

// TestSweepPingWaitsForData: a ping due on a connection with data going
// out is left for the writer's next wake-up (data), which writes it with
// the data; only a ping still waiting at the next sweep, or one due on a
// connection without data going out, wakes the writer for itself.
func TestSweepPingWaitsForData(t *testing.T) {
	s := hubFixture(t)
	for _, dirty := range []bool{true, false} {
		t.Run(fmt.Sprintf("dirty=%v", dirty), func(t *testing.T) {
			c := s.bareConn(codec.JSON())
			woken := func() bool {
				select {
				case <-c.out.wake:
					return true
				default:
					return false
				}
			}
			woken() // whatever the connection's start queued
			now := time.Now()
			c.lastWrite.Store(now.UnixNano()) // no heartbeat due
			due := pingEvery(&s.cfg)          // with data going out; else a ping per heartbeat interval
			if !dirty {
				due = s.cfg.HeartbeatInterval
			}
			c.prog.sentNs.Store(now.Add(-due).UnixNano())
			c.prog.dirty.Store(dirty)
			c.sweep(now.UnixNano())
			if c.chores.Load()&chorePing == 0 {
				t.Fatalf("no ping due after %v", due)
			}
			if woken() == dirty {
				t.Fatalf("first sweep: writer woken %v, want %v", !dirty, !dirty)
			}
			c.sweep(now.Add(sweepEvery(&s.cfg)).UnixNano())
			if !dirty {
				return
			}
			if !woken() || c.chores.Load()&chorePing == 0 {
				t.Fatal("a ping still waiting at the next sweep did not wake the writer")
			}
		})
	}
}

// BenchmarkWriteDeadline is what keeping a socket's write deadline costs
// per write, on a loopback TCP socket: set before every write (as the
// writer once did: a runtime timer moved each time) or armed only when
// less than the timeout is left (writeDeadline). The write itself (7 to
// 13 us on loopback here) is left out, as its noise would hide the
// difference.
//
//	go test -run '^$' -bench WriteDeadline ./gateway
func BenchmarkWriteDeadline(b *testing.B) {
	for _, mode := range []string{"every_write", "armed"} {
		b.Run("deadline="+mode, func(b *testing.B) {
			_, server := loopbackPair(b)
			var d writeDeadline
			b.ReportAllocs()
			for b.Loop() {
				now := time.Now()
				var err error
				if mode == "armed" {
					err = d.arm(server, now, 5*time.Second, time.Second)
				} else {
					err = server.SetWriteDeadline(now.Add(5 * time.Second))
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// loopbackPair is a connected pair of loopback TCP sockets, closed at the
// end of the test or benchmark.
func loopbackPair(tb testing.TB) (client, server net.Conn) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		tb.Fatal("accept failed")
	}
	tb.Cleanup(func() { _ = client.Close(); _ = server.Close() })
	return client, server
}

// BenchmarkFeedBurst is issue 12's burst shape on the real hub and
// outboxes: each op is a feed burst of one message on each of 20 ticker
// channels, delivered on one goroutine per channel, all at once (as
// nats.go did before the feed's dispatchers: the harder case for holding
// wake-ups), to 200 connections subscribed to all 20, whose writers (modelled:
// they take what is due and count it, no socket) run meanwhile. msgs/wake
// is how many messages a writer found per wake-up, which is how many
// frames go out per write syscall: with the wake-ups of a burst held
// (wakes.go) and without (every fan-out wakes its writers at once).
//
//	go test -run '^$' -bench FeedBurst -benchtime 2000x ./gateway
func BenchmarkFeedBurst(b *testing.B) {
	const channels, conns = 20, 200
	for _, held := range []bool{false, true} {
		b.Run(fmt.Sprintf("held=%v", held), func(b *testing.B) {
			s := hubFixture(b)
			chans := make([]proto.Channel, channels)
			for i := range chans {
				chans[i] = proto.Channel{Kind: proto.KindTicker, Symbol: fmt.Sprintf("S%d", i)}
			}
			var msgs, wakes atomic.Int64
			var writers sync.WaitGroup
			cs := make([]*conn, conns)
			for i := range cs {
				c := s.bareConn(codec.JSON())
				if !held {
					c.out.wakes = nil
				}
				for _, ch := range chans {
					s.joinFor(b, c, ch, joinOptions{})
				}
				queued(c)
				cs[i] = c
				writers.Add(1)
				go func() {
					defer writers.Done()
					var bt batch
					for range c.out.wake {
						if c.out.take(&bt, time.Time{}) != nil {
							return
						}
						if n := bt.len(); n > 0 {
							msgs.Add(int64(n))
							wakes.Add(1)
							bt.reset()
							c.out.wrote()
						}
					}
				}()
			}
			feeds := make([]chan *feed.Message, channels)
			var burst sync.WaitGroup
			for i := range feeds {
				feeds[i] = make(chan *feed.Message, 1)
				go func() {
					for m := range feeds[i] {
						s.hub.onFeed(chans[i], m)
						burst.Done()
					}
				}()
			}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				burst.Add(channels)
				for _, f := range feeds {
					f <- tickerMsg(uint64(i + 1))
				}
				burst.Wait()
			}
			b.StopTimer()
			for _, f := range feeds {
				close(f)
			}
			for _, c := range cs {
				c.out.close(proto.Disconnect{Code: proto.CloseGoingAway})
			}
			writers.Wait()
			if w := wakes.Load(); w > 0 {
				b.ReportMetric(float64(msgs.Load())/float64(w), "msgs/wake")
			}
		})
	}
}

// A client that stopped reading fills its socket, and the fan-out, which
// writes lone messages for idle connections itself (inline.go), must not
// wait for it: the bytes the socket does not take are kept for the
// stalled connection's writer goroutine, and a bystander on the same
// channel gets every message while that goroutine waits out its write
// timeout. Over TLS, whose records are what the socket keeps.
func TestStalledSocketDoesNotHoldTheFanOut(t *testing.T) {
	e := newTestEnv(t, func(c *Config) {
		c.SocketSendBuffer = 4 << 10
		c.WriteTimeout = time.Minute
		c.LagTimeout = time.Minute
	})
	counts := countWriters(e.srv)
	tok := e.token(t, "stalled", time.Hour, ">")
	// The stalled client: a real handshake over TLS, one subscribe, then
	// no reads.
	st := &testClient{t: t, msgs: make(chan wire, 4096), closed: make(chan error, 1), codec: codec.JSON()}
	ws, _, err := gws.NewClient(st, &gws.ClientOption{Addr: e.url(), TlsConfig: e.cert.ClientConfig(),
		RequestHeader: http.Header{"Authorization": {"Bearer " + tok}}})
	if err != nil {
		t.Fatal(err)
	}
	stalled := ws.NetConn()
	t.Cleanup(func() { _ = stalled.Close() })
	if err := ws.WriteString(`{"op":"subscribe","channels":["ticker.ETH-USD"]}`); err != nil {
		t.Fatal(err)
	}
	healthy := e.connect(t, "json", tok)
	healthy.send(t, proto.Command{Op: proto.OpSubscribe, Channels: []string{"ticker.ETH-USD"}})
	healthy.expect(t, proto.TypeSubscribed)

	ch, err := proto.ParseChannel("ticker.ETH-USD")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "both subscriptions", func() bool {
		en := e.srv.hub.lookup(ch)
		if en == nil {
			return false
		}
		en.mu.Lock()
		defer en.mu.Unlock()
		return len(en.subs) == 2
	})
	var stalledConn *conn
	e.srv.mu.Lock()
	for c := range e.srv.conns {
		if c.remote == stalled.LocalAddr().String() {
			stalledConn = c
		}
	}
	e.srv.mu.Unlock()
	if stalledConn == nil || !stalledConn.out.run.inlines() {
		t.Fatalf("the stalled client's connection (%v) does not write inline", stalledConn)
	}
	// The writer writes to the TLS connection itself, not through gws
	// (conn.tlsConn), and that connection is over the socket it writes
	// inline to.
	if nc := stalledConn.netConn(); stalledConn.tlsConn == nil || nc != net.Conn(stalledConn.tlsConn) || sockOf(nc) != stalledConn.sock {
		t.Fatalf("the writer writes to a %T (TLS connection %p over socket %p, want over %p)", nc, stalledConn.tlsConn, sockOf(nc), stalledConn.sock)
	}

	// A ticker is about 200 bytes: the stalled connection's two socket
	// buffers hold several hundred of them, more when the kernel
	// collapses what the client's buffer queues (and the socket, full a
	// moment ago, takes more again), so the feed goes on until the
	// stalled connection's writer is seen waiting in a write for room,
	// and 200 messages more.
	writing := func(s *sockConn) bool { // a write holds the socket's lock: the writer's, waiting
		if s.mu.TryLock() {
			s.mu.Unlock()
			return false
		}
		return true
	}
	const maxN, after = 20_000, 200
	volume := strings.Repeat("9", proto.MaxDecimalLen)
	tick := func(seq uint64) *proto.Ticker {
		return &proto.Ticker{Symbol: "ETH-USD", Bid: "1", BidSize: "1", Ask: "2", AskSize: "1", Last: "1", Volume: volume, TS: int64(seq)}
	}
	e.publish(t, "ticker.ETH-USD", 1, proto.FeedUpdate, tick(1))
	healthy.expect(t, proto.TypeSnapshot) // the channel's first state
	waitWritersIdle(t, e.srv)             // the lone messages below then go out inline
	last, filledAt := uint64(1), uint64(0)
	for seq := uint64(2); seq <= maxN && (filledAt == 0 || seq <= filledAt+after); seq++ {
		e.publish(t, "ticker.ETH-USD", seq, proto.FeedUpdate, tick(seq))
		// The bystander gets each message while the stalled socket is
		// full; one at a time, so that the feed is never behind and the
		// fan-out writes inline (a feed that is behind wakes writers).
		for last < seq {
			w := healthy.next(t)
			if w.Type != proto.TypeSnapshot && w.Type != proto.TypeUpdate {
				t.Fatalf("bystander got %s %s", w.Type, w.raw)
			}
			last = w.Seq
		}
		if filledAt == 0 && stalledConn.out.run.running() && writing(stalledConn.sock) {
			filledAt = seq
		}
	}
	if filledAt == 0 {
		t.Fatalf("the stalled connection's socket never filled in %d messages", maxN)
	}
	if counts.inline.Load() == 0 {
		t.Fatal("no writer round ran inline")
	}
}
