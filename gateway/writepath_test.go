package gateway

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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
// channels, delivered as nats.go does (one goroutine per channel, all at
// once), to 200 connections subscribed to all 20, whose writers (modelled:
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
						if n := len(bt.items); n > 0 {
							msgs.Add(int64(n))
							wakes.Add(1)
							clear(bt.items)
							bt.items = bt.items[:0]
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
