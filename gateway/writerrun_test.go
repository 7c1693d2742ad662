package gateway

import (
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tickgate/tickgate/codec"
	"github.com/tickgate/tickgate/proto"
)

// TestWriterRunLosesNoWakeUp is the model of on-demand writers
// (writerrun.go) on a real outbox: waves of pushers push frames from
// several goroutines, each push waking the writer; a writer runs only while woken
// and, as writeLoop does, ends when a round finds no wake-up behind it, at
// once (no grace) or, parked, at the next grace tick (which a ticker
// gives every 50 µs). With inline rounds (inline.go) the pushes are
// fan-outs (wakes.begin, end) whose ends run the writer's round on their
// own goroutine when no writer runs. Every frame must be taken (a lost
// wake-up leaves frames behind with no writer), never by two writers at
// once, and every run must end. Run it under -race.
func TestWriterRunLosesNoWakeUp(t *testing.T) {
	for _, grace := range []bool{false, true} {
		for _, inline := range []bool{false, true} {
			t.Run(fmt.Sprintf("grace=%v/inline=%v", grace, inline), func(t *testing.T) {
				for round := range 3 {
					modelWriterRuns(t, round, grace, inline)
				}
			})
		}
	}
}

func modelWriterRuns(t *testing.T, round int, grace, inline bool) {
	const waves = 3000
	{
		o := newOutbox(1<<30, time.Now)
		var (
			taken, starts atomic.Int64
			inRound       atomic.Bool
			overlap       atomic.Bool
			runs          sync.WaitGroup
		)
		stopTicks := make(chan struct{})
		ticking := make(chan struct{})
		if grace {
			o.run.grace = newGraceTicks()
			go func() {
				defer close(ticking)
				t := time.NewTicker(50 * time.Microsecond)
				defer t.Stop()
				for {
					select {
					case <-stopTicks:
						return
					case <-t.C:
						o.run.grace.tick()
					}
				}
			}()
		} else {
			close(ticking)
		}
		defer func() {
			close(stopTicks)
			<-ticking
		}()
		writeRound := func(b *batch) {
			if !inRound.CompareAndSwap(false, true) {
				overlap.Store(true)
			}
			o.take(b, time.Time{})
			taken.Add(int64(b.len()))
			if b.len()%3 == 0 {
				runtime.Gosched() // a slow write now and then
			}
			b.reset()
			o.wrote()
			inRound.Store(false)
		}
		o.run.start = func() {
			starts.Add(1)
			runs.Add(1)
			go func() {
				defer runs.Done()
				var b batch
				for first := true; o.run.next(first, o.wake); first = false {
					writeRound(&b)
				}
			}()
		}
		var fanouts *wakes
		if inline {
			// As conn.writeInline does, without a socket.
			o.run.inline = inlineFunc(func(at time.Time) time.Time {
				var b batch
				writeRound(&b)
				if !o.run.state.CompareAndSwap(runBusy, runIdle) {
					o.run.state.Store(runBusy)
					o.run.start()
				}
				return at
			})
			fanouts = newWakes(time.Now)
			o.wakes = fanouts
		}
		o.run.state.Store(runIdle)
		// Waves of a few concurrent pushes, each wave waited out: a lost
		// wake-up leaves its wave untaken, with nothing after it to
		// rescue it. The pauses between waves let writers park and end.
		var want int64
		for wave := range waves {
			if wave%2 == 0 {
				time.Sleep(time.Duration(rand.IntN(100)) * time.Microsecond)
			}
			var push sync.WaitGroup
			for p := range 1 + wave%4 {
				push.Add(1)
				want += int64(1 + p%3)
				go func() {
					defer push.Done()
					if fanouts != nil {
						fanouts.begin()
						defer fanouts.end(false, false)
					}
					for range 1 + p%3 {
						if o.push([]byte{1}) != pushed {
							t.Error("push refused")
						}
					}
				}()
			}
			push.Wait()
			deadline := time.Now().Add(2 * time.Second)
			for taken.Load() < want && time.Now().Before(deadline) {
				runtime.Gosched()
			}
			if got := taken.Load(); got != want {
				t.Fatalf("round %d, wave %d: %d of %d frames taken and no writer takes the rest (state %d): a wake-up was lost", round, wave, got, want, o.run.state.Load())
			}
		}
		runs.Wait()
		if overlap.Load() {
			t.Fatalf("round %d: two writers ran at once", round)
		}
		if s := o.run.state.Load(); s != runIdle {
			t.Fatalf("round %d: state %d after every run ended, want idle", round, s)
		}
		if starts.Load() < 2 {
			t.Logf("round %d: only %d run(s); the idle path was not exercised", round, starts.Load())
		}
	}
}

// TestWriterRunOverIgnoresWakeUps: once the writer ended for good (close
// frame written, connection done), a wake-up starts nothing.
func TestWriterRunOverIgnoresWakeUps(t *testing.T) {
	o := newOutbox(16, time.Now)
	o.run.start = func() { t.Fatal("a writer started after the end") }
	o.run.over()
	if !o.run.wake(o.wake) {
		t.Fatal("wake fell back to the channel")
	}
	o.wakeWriter()
	if len(o.wake) != 0 {
		t.Fatal("a wake-up went to the channel")
	}
}

// TestIdleConnectionHoldsNoWriter: once what a connection was sent is
// written and the grace (a sweep tick) passed, it holds no writer
// goroutine; data for it starts one, which ends again after writing it.
func TestIdleConnectionHoldsNoWriter(t *testing.T) {
	const conns = 40
	e := newTestEnv(t)
	tok := e.token(t, "idle", time.Hour, ">")
	serverConns := func() []*conn {
		e.srv.mu.Lock()
		defer e.srv.mu.Unlock()
		var cs []*conn
		for c := range e.srv.conns {
			cs = append(cs, c)
		}
		return cs
	}
	waitIdle := func(what string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			busy := 0
			for _, c := range serverConns() {
				if c.out.run.running() {
					busy++
				}
			}
			if busy == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d of %d connections still hold a writer", what, busy, conns)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	clients := subscribedClients(t, e, conns, tok, "trade.BTC-USD", "ticker.ETH-USD")
	if n := len(serverConns()); n != conns {
		t.Fatalf("%d connections on the server, want %d", n, conns)
	}
	waitIdle("after subscribing")
	for _, c := range serverConns() {
		if s := c.out.run.state.Load(); s != runIdle {
			t.Fatalf("idle connection's writer state %d, want idle", s)
		}
	}
	e.publish(t, "trade.BTC-USD", 1, proto.FeedUpdate, &proto.Trade{Symbol: "BTC-USD", ID: 1, Price: "1", Size: "1", Side: "buy", TS: 1})
	for _, c := range clients {
		c.expect(t, proto.TypeUpdate)
	}
	waitIdle("after an update")
}

// A lone feed message reaches idle connections through writer rounds
// run inline, by the fan-out's goroutine (and on more cores, by
// goroutines started for parts of them, sweepParts): no writer goroutine
// starts.
func TestLoneMessageWritesInline(t *testing.T) {
	const conns = 20
	e := newTestEnv(t)
	n := countWriters(e.srv)
	tok := e.token(t, "inline", time.Hour, ">")
	clients := subscribedClients(t, e, conns, tok, "ticker.ETH-USD")
	tick := func(seq uint64) *proto.Ticker {
		return &proto.Ticker{Symbol: "ETH-USD", Bid: "1", BidSize: "1", Ask: "2", AskSize: "1", Last: fmt.Sprint(seq), Volume: "1", TS: int64(seq)}
	}
	e.publish(t, "ticker.ETH-USD", 1, proto.FeedUpdate, tick(1))
	for _, c := range clients {
		c.expect(t, proto.TypeSnapshot) // the channel's first state
	}
	waitWritersIdle(t, e.srv)
	starts, inline := n.starts.Load(), n.inline.Load()
	e.publish(t, "ticker.ETH-USD", 2, proto.FeedUpdate, tick(2))
	for _, c := range clients {
		c.expect(t, proto.TypeUpdate)
	}
	startsAfter, inlineAfter := n.starts.Load(), n.inline.Load()
	if got := inlineAfter - inline; got != conns {
		t.Errorf("%d inline writer rounds for a lone message to %d idle connections, want %d", got, conns, conns)
	}
	if got := startsAfter - starts; got != 0 {
		t.Errorf("%d writer goroutines started for a lone message, want none", got)
	}
}

// countWriters has e's node count its writer runs from now on.
// subscribedClients connects n JSON clients with tok, each subscribed to
// channels.
func subscribedClients(t *testing.T, e *testEnv, n int, tok string, channels ...string) []*testClient {
	t.Helper()
	clients := make([]*testClient, n)
	for i := range clients {
		clients[i] = e.connect(t, "json", tok)
		clients[i].send(t, proto.Command{Op: proto.OpSubscribe, Channels: channels})
		clients[i].expect(t, proto.TypeSubscribed)
	}
	return clients
}

func countWriters(s *Server) *writerCounts {
	n := new(writerCounts)
	s.counts.Store(n)
	return n
}

// An inline writer round hands its sweep the clock's reading after its
// write of messages, from which the sweep's next round starts (fanClock):
// a round that returned the instant it was given would start every round
// of a sweep at the sweep's first reading, staler by the sweep's length.
// A round that writes no message returns the instant it was given.
func TestInlineRoundReturnsItsReadingAfterTheWrite(t *testing.T) {
	e, cl, c := quietConn(t, "clock")
	tick := func(seq uint64) *proto.Ticker {
		return &proto.Ticker{Symbol: "ETH-USD", Bid: "1", BidSize: "1", Ask: "2", AskSize: "1", Last: fmt.Sprint(seq), Volume: "1", TS: time.Now().UnixNano()}
	}
	e.publish(t, "ticker.ETH-USD", 1, proto.FeedUpdate, tick(1))
	cl.expect(t, proto.TypeSnapshot)
	waitWritersIdle(t, e.srv)
	at := time.Now().Add(-time.Millisecond)
	for _, data := range []bool{false, true} {
		// The run is the test's: the fan-out queues and leaves the
		// round to it, as to a writer that is running.
		if !c.out.run.state.CompareAndSwap(runIdle, runBusy) {
			t.Fatal("the connection's writer is running")
		}
		if data {
			e.publish(t, "ticker.ETH-USD", 2, proto.FeedUpdate, tick(2))
			waitFor(t, "the update queued", func() bool {
				c.out.mu.Lock()
				defer c.out.mu.Unlock()
				return len(c.out.queue) > 0
			})
		}
		var tl writeTally
		after := c.writeInline(at, &tl)
		tl.flush()
		switch {
		case !data && !after.Equal(at):
			t.Fatalf("a round that wrote nothing returned %v, want its instant %v", after, at)
		case data && !after.After(at):
			t.Fatalf("a round that wrote an update returned %v, want a reading after its instant %v", after, at)
		}
		waitWritersIdle(t, e.srv)
	}
	cl.expect(t, proto.TypeUpdate)
}

// quietConn is a node that does no chore of its own within a test (no
// heartbeat, no progress ping), with one JSON client of subject sub
// subscribed to ticker.ETH-USD, and that client's connection on the node,
// its writers idle: for tests that run the connection's writer rounds
// themselves.
func quietConn(t *testing.T, sub string) (*testEnv, *testClient, *conn) {
	t.Helper()
	e := newTestEnv(t, func(c *Config) {
		c.HeartbeatInterval = time.Hour
		c.LagTimeout = time.Hour
	})
	cl := e.connect(t, "json", e.token(t, sub, time.Hour, ">"))
	cl.send(t, proto.Command{Op: proto.OpSubscribe, Channels: []string{"ticker.ETH-USD"}})
	cl.expect(t, proto.TypeSubscribed)
	waitWritersIdle(t, e.srv)
	var c *conn
	e.srv.mu.Lock()
	for k := range e.srv.conns {
		c = k
	}
	e.srv.mu.Unlock()
	return e, cl, c
}

// The scratch pool keeps no frames slice longer than maxScratchFrames,
// and what it keeps holds no frame.
func TestScratchPoolBoundsFrames(t *testing.T) {
	for _, tc := range []struct {
		name string
		n    int
		kept bool
	}{
		{"a burst's round", 10, true},
		{"at the bound", maxScratchFrames, true},
		{"beyond it", maxScratchFrames + 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := &writerScratch{b: batch{frames: make([]item, tc.n)}}
			for i := range w.b.frames {
				w.b.frames[i] = item{frame: []byte("x"), ts: 1}
			}
			frames := w.b.frames[:cap(w.b.frames)]
			var sp scratchPool
			sp.put(w)
			if got := w.b.frames != nil; got != tc.kept {
				t.Fatalf("frames kept: %v, want %v", got, tc.kept)
			}
			if len(w.b.frames) != 0 {
				t.Fatalf("%d frames left in the pool's scratch", len(w.b.frames))
			}
			for i, it := range frames {
				if it.frame != nil {
					t.Fatalf("entry %d still holds its frame", i)
				}
			}
		})
	}
}

// writeBatch releases every frame it wrote, in both of a batch's forms,
// so that a batch going back to the scratch pool holds no shared bytes
// (put only clears what is within the slices' lengths, which writeBatch
// has reset).
func TestWriteBatchReleasesWhatItWrote(t *testing.T) {
	ch := proto.Channel{Kind: proto.KindTicker, Symbol: "BTC-USD"}
	for _, own := range []bool{false, true} {
		t.Run(fmt.Sprintf("own_update=%v", own), func(t *testing.T) {
			s := hubFixture(t)
			c := s.bareConn(codec.JSON())
			sock, client := sockPair(t)
			c.sock = sock
			got := make(chan int64, 1)
			go func() { n, _ := io.Copy(io.Discard, client); got <- n }()
			sub := s.joinFor(t, c, ch, joinOptions{})
			s.hub.onFeed(ch, tickerMsg(1))
			queued(c)
			c.out.wrote()
			for seq := uint64(2); seq <= 5; seq++ {
				if own && seq == 4 {
					c.out.mu.Lock()
					sub.last = 1 // out of step: an update of its own, a pending
					c.out.mu.Unlock()
				}
				s.hub.onFeed(ch, tickerMsg(seq))
			}
			var b batch
			c.out.take(&b, time.Now())
			if (len(b.items) > 0) != own || b.len() != 4 {
				t.Fatalf("took %d frames and %d items", len(b.frames), len(b.items))
			}
			clk := fanClock{clock: s.cfg.Now}
			var tl writeTally
			buf, err := c.writeBatch(&b, nil, nil, &clk, false, &tl)
			if err != nil {
				t.Fatal(err)
			}
			if tl.msgs != 4 || tl.lat.n != 4 || tl.bytes != uint64(len(buf)) {
				t.Fatalf("the write's tally: %d messages, %d latencies, %d bytes (of %d written)", tl.msgs, tl.lat.n, tl.bytes, len(buf))
			}
			if b.len() != 0 {
				t.Fatalf("%d messages left in the batch", b.len())
			}
			for i, it := range b.frames[:cap(b.frames)] {
				if it.frame != nil || it.sub != nil || it.ts != 0 {
					t.Fatalf("frames entry %d still holds a frame (%d bytes), its subscription or its time", i, len(it.frame))
				}
			}
			for i, p := range b.items[:cap(b.items)] {
				if p.frame != nil || p.upd.Data != nil {
					t.Fatalf("items entry %d still holds a frame or data", i)
				}
			}
			_ = sock.Close()
			if n := <-got; n == 0 {
				t.Fatal("nothing reached the client")
			}
		})
	}
}

// A writer round that pings a connection builds the ping in place and
// allocates nothing for it (it was two allocations, four per lag timeout
// on every busy connection); the client answers each, and the stream
// after a hundred of them is whole.
func TestPingRoundAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	_, cl, c := quietConn(t, "pinged")
	ping := func() {
		// The run is the test's, as in TestInlineRoundReturnsItsReadingAfterTheWrite.
		if !c.out.run.state.CompareAndSwap(runIdle, runBusy) {
			t.Fatal("the connection's writer is running")
		}
		c.prog.acked.Store(c.prog.sent.Load()) // the last ping counts as answered
		c.chores.Or(chorePing)
		var tl writeTally // a ping is not a message: nothing to flush
		c.writeInline(time.Now(), &tl)
	}
	ping() // the scratch and the socket's writer are made once
	sent := c.prog.sent.Load()
	if allocs := testing.AllocsPerRun(100, ping); allocs != 0 {
		t.Fatalf("%v allocations per round with a ping", allocs)
	}
	if got := c.prog.sent.Load() - sent; got < 100 {
		t.Fatalf("%d pings sent in 100 rounds", got)
	}
	// The client answers the last ping with its payload: an id the node
	// sent, the latest, which only a whole ping frame carries.
	c.prog.acked.Store(0)
	c.prog.rtt.Store(0)
	ping()
	waitFor(t, "the last ping answered", func() bool {
		return c.prog.acked.Load() == c.prog.sent.Load() && c.prog.rtt.Load() > 0
	})
	// The stream is whole after a hundred pings: a command is answered.
	cl.send(t, proto.Command{Op: proto.OpPing, ID: ptr[int64](7)})
	for w := cl.next(t); w.Type != proto.TypePong; w = cl.next(t) {
	}
}
