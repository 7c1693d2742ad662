package gateway

import (
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tickgate/tickgate/codec"
	"github.com/tickgate/tickgate/feed"
	"github.com/tickgate/tickgate/proto"
)

// burstFixture is a hub with conns connections, each subscribed to every
// ticker channel in symbols, their snapshots taken, and the kept locks
// of one dispatcher.
func burstFixture(t *testing.T, conns int, symbols ...string) (*Server, []*conn, []proto.Channel, *burstLocks) {
	t.Helper()
	s := hubFixture(t)
	chans := make([]proto.Channel, len(symbols))
	for i, sym := range symbols {
		chans[i] = proto.Channel{Kind: proto.KindTicker, Symbol: sym}
	}
	cs := make([]*conn, conns)
	for i := range cs {
		cs[i] = s.bareConn(codec.JSON())
		for _, ch := range chans {
			s.joinFor(t, cs[i], ch, joinOptions{})
		}
		queued(cs[i])
	}
	return s, cs, chans, s.hub.newBurst()
}

// burstTicker is a ticker message of ch at seq; more: another message
// follows it in the burst.
func burstTicker(ch proto.Channel, seq uint64, more bool) *feed.Message {
	return &feed.Message{Seq: seq, More: more, Data: &proto.Ticker{Symbol: ch.Symbol, Bid: "1", BidSize: "1", Ask: "2", AskSize: "1", Last: "1.5", Volume: "9", TS: int64(seq)}}
}

// burstTrade is burstTicker's trade: trade seq of ch, its id seq.
func burstTrade(ch proto.Channel, seq uint64, more bool) *feed.Message {
	return &feed.Message{Seq: seq, More: more, Data: &proto.Trade{Symbol: ch.Symbol, ID: int64(seq), Price: "1", Size: "1", Side: "buy", TS: 1}}
}

// kept reports whether o's lock is kept by b, checking the lock itself.
func kept(t *testing.T, b *burstLocks, o *outbox) bool {
	t.Helper()
	marked := o.holder.Load() == b.id
	free := o.mu.TryLock()
	if free {
		o.mu.Unlock()
	}
	if marked == free {
		t.Fatalf("outbox marked kept %v, lock free %v", marked, free)
	}
	return marked
}

// within runs f and fails the test when it does not return in time (a
// deadlock).
func within(t *testing.T, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s did not return within %v", what, d)
	}
}

// A burst's fan-outs keep the outbox locks they take until its last
// message, which lets all of them go; every connection gets every update,
// in order.
func TestBurstKeepsOutboxLocksUntilItsLastMessage(t *testing.T) {
	s, cs, chans, b := burstFixture(t, 3, "A", "B", "C")
	for i, ch := range chans {
		more := i < len(chans)-1
		s.hub.process(s.hub.lookup(ch), burstTicker(ch, 1, more), b)
		for j, c := range cs {
			if got := kept(t, b, c.out); got != more {
				t.Fatalf("after message %d (more %v), connection %d's lock kept: %v", i, more, j, got)
			}
		}
	}
	if len(b.held) != 0 {
		t.Fatalf("%d locks listed after the burst", len(b.held))
	}
	for j, c := range cs {
		got := queued(c)
		if len(got) != len(chans) {
			t.Fatalf("connection %d got %d frames, want %d", j, len(got), len(chans))
		}
		for i, f := range got {
			var w wire
			if err := codec.DecodeMessage(codec.JSON(), f, &w); err != nil {
				t.Fatal(err)
			}
			if w.Type != proto.TypeUpdate || w.Channel != chans[i].String() || w.Seq != 1 {
				t.Fatalf("connection %d frame %d: %+v, want the update of %s", j, i, w, chans[i])
			}
		}
	}
}

// Someone else who needs a kept lock (here a reply pushed on another
// goroutine) waits for the burst's next delivery, not for its end.
func TestBurstLetsGoForAWaiter(t *testing.T) {
	s, cs, chans, b := burstFixture(t, 2, "A", "B", "C")
	s.hub.process(s.hub.lookup(chans[0]), burstTicker(chans[0], 1, true), b)
	if !kept(t, b, cs[1].out) {
		t.Fatal("lock not kept mid-burst")
	}
	before := s.hub.wakes.yields.Load()
	result := make(chan pushResult, 1)
	go func() { result <- cs[1].out.push([]byte("reply")) }()
	deadline := time.Now().Add(5 * time.Second)
	for s.hub.wakes.yields.Load() == before {
		if time.Now().After(deadline) {
			t.Fatal("the waiter never asked for the lock")
		}
		time.Sleep(time.Millisecond)
	}
	// Mid-burst still: the next message follows.
	s.hub.process(s.hub.lookup(chans[1]), burstTicker(chans[1], 1, true), b)
	select {
	case r := <-result:
		if r != pushed {
			t.Fatalf("push: %v", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the reply waited past the burst's next message")
	}
	s.hub.process(s.hub.lookup(chans[2]), burstTicker(chans[2], 1, false), b)
	if got := queued(cs[1]); len(got) != 4 {
		t.Fatalf("%d frames, want 3 updates and the reply", len(got))
	}
}

// A burst that needs a lock someone else holds lets its own go before it
// waits: the outbox lock of a connection it has not reached yet, or the
// next message's channel lock (a subscriber joining). For trades on a
// node with a history stream the channel's lock is first taken by the
// gap check (gapDue), which must not wait while keeping either.
func TestBurstNeverWaitsWhileKeeping(t *testing.T) {
	for _, tc := range []struct {
		name string
		take func(s *Server, c *conn, ch proto.Channel) (unlock func())
	}{
		{"an outbox lock", func(_ *Server, c *conn, _ proto.Channel) func() {
			c.out.mu.Lock()
			return c.out.mu.Unlock
		}},
		{"the channel's lock", func(s *Server, _ *conn, ch proto.Channel) func() {
			e := s.hub.lookup(ch)
			e.mu.Lock()
			return e.mu.Unlock
		}},
	} {
		for _, kind := range []proto.Kind{proto.KindTicker, proto.KindTrade} {
			t.Run(fmt.Sprintf("%s/%s", tc.name, kind), func(t *testing.T) {
				s := hubFixture(t, func(c *Config) {
					if kind == proto.KindTrade {
						c.History = &fillHistory{}
					}
				})
				a := proto.Channel{Kind: kind, Symbol: "A"}
				bch := proto.Channel{Kind: kind, Symbol: "B"}
				msg := func(ch proto.Channel, more bool) *feed.Message {
					if kind == proto.KindTrade {
						return burstTrade(ch, 1, more)
					}
					return burstTicker(ch, 1, more)
				}
				first, second := s.bareConn(codec.JSON()), s.bareConn(codec.JSON())
				s.joinFor(t, first, a, joinOptions{})
				s.joinFor(t, second, bch, joinOptions{})
				queued(first)
				queued(second)
				b := s.hub.newBurst()
				s.hub.feedMessage(a, msg(a, true), b)
				if !kept(t, b, first.out) {
					t.Fatal("lock not kept mid-burst")
				}
				unlock := tc.take(s, second, bch)
				done := make(chan struct{})
				go func() {
					defer close(done)
					s.hub.feedMessage(bch, msg(bch, false), b)
				}()
				// While the burst waits, the lock it kept is free.
				deadline := time.Now().Add(5 * time.Second)
				for {
					if first.out.mu.TryLock() {
						first.out.mu.Unlock()
						break
					}
					if time.Now().After(deadline) {
						unlock()
						t.Fatal("the burst waits while it keeps a lock")
					}
					time.Sleep(time.Millisecond)
				}
				unlock()
				select {
				case <-done:
				case <-time.After(5 * time.Second):
					t.Fatal("the burst did not go on once the lock was free")
				}
				if got := queued(second); len(got) != 1 {
					t.Fatalf("%d frames for the second connection, want its update", len(got))
				}
			})
		}
	}
}

// What a fan-out does that takes an outbox lock itself lets the kept
// ones go first: an eviction (a connection's trades overflow), a status
// change (the channel back after a NATS loss), a snapshot's head (a
// subscriber whose chain restarts). Each would otherwise wait for a lock
// its own goroutine keeps.
func TestBurstLetsGoBeforeWhatLocks(t *testing.T) {
	t.Run("eviction", func(t *testing.T) {
		s := hubFixture(t, func(c *Config) { c.TradeBufferMessages = 2 })
		tr := proto.Channel{Kind: proto.KindTrade, Symbol: "X"}
		c := s.bareConn(codec.JSON())
		s.joinFor(t, c, tr, joinOptions{})
		queued(c)
		b := s.hub.newBurst()
		within(t, 5*time.Second, "a burst that evicts", func() {
			for i := range 4 {
				m := &feed.Message{Seq: uint64(i + 1), More: true, Data: &proto.Trade{Symbol: "X", ID: int64(i + 1), Price: "1", Size: "1", Side: "buy"}}
				s.hub.process(s.hub.lookup(tr), m, b)
			}
			b.release()
		})
		closing := closingOf(c)
		if closing == nil || closing.Code != proto.CloseSlowConsumer {
			t.Fatalf("closing %v, want 4008", closing)
		}
	})
	t.Run("status change", func(t *testing.T) {
		s, cs, chans, b := burstFixture(t, 2, "A", "B")
		e := s.hub.lookup(chans[1])
		e.mu.Lock()
		e.disconnected = true // NATS lost (hub.check): stale until something arrives
		e.updateStatus(s.hub, s.hub.now(), nil)
		e.mu.Unlock()
		for _, c := range cs {
			queued(c) // the stale status
		}
		s.hub.process(s.hub.lookup(chans[0]), burstTicker(chans[0], 1, true), b)
		if !kept(t, b, cs[0].out) {
			t.Fatal("lock not kept mid-burst")
		}
		within(t, 5*time.Second, "a burst whose channel comes back", func() {
			s.hub.process(e, burstTicker(chans[1], 1, true), b)
		})
		if got := kept(t, b, cs[0].out); got {
			t.Fatal("locks still kept after the status change let them go")
		}
		b.release()
	})
	t.Run("snapshot head", func(t *testing.T) {
		s, cs, chans, b := burstFixture(t, 2, "A", "B")
		e := s.hub.lookup(chans[1])
		e.mu.Lock()
		for _, sub := range e.subs {
			sub.c.out.mu.Lock()
			sub.needSnapshot = true
			sub.c.out.mu.Unlock()
		}
		e.mu.Unlock()
		s.hub.process(s.hub.lookup(chans[0]), burstTicker(chans[0], 1, true), b)
		if !kept(t, b, cs[0].out) {
			t.Fatal("lock not kept mid-burst")
		}
		within(t, 5*time.Second, "a burst that restarts subscribers from a snapshot", func() {
			s.hub.process(e, burstTicker(chans[1], 1, true), b)
		})
		if kept(t, b, cs[0].out) {
			t.Fatal("locks still kept after planning a snapshot's head")
		}
		for j, c := range cs {
			got := queued(c)
			if len(got) != 2 {
				t.Fatalf("connection %d: %d frames, want A's update and B's snapshot", j, len(got))
			}
		}
		b.release()
	})
}

// On a node with a history stream, a burst of trades keeps its locks
// across messages as a burst of tickers does: each trade's gap check
// takes the channel's lock the way apply does. A trade after a gap the
// stream can fill lets them go first: the fill's fan-outs take outbox
// locks (here on the same goroutine, the message being no dispatcher's;
// on a goroutine of its own otherwise). Every update arrives, in order.
func TestBurstKeepsLocksAcrossTradesWithAHistoryStream(t *testing.T) {
	s := hubFixture(t, func(c *Config) { c.History = &fillHistory{} })
	g, h := proto.Channel{Kind: proto.KindTrade, Symbol: "G"}, proto.Channel{Kind: proto.KindTrade, Symbol: "H"}
	cs := make([]*conn, 2)
	for i := range cs {
		cs[i] = s.bareConn(codec.JSON())
		s.joinFor(t, cs[i], g, joinOptions{})
		s.joinFor(t, cs[i], h, joinOptions{})
		queued(cs[i])
	}
	b := s.hub.newBurst()
	for _, step := range []struct {
		ch   proto.Channel
		seq  uint64
		more bool
		kept bool
	}{
		{g, 1, true, true},
		{h, 1, true, true},
		{g, 5, true, false}, // 2..4 filled from the stream first
		{h, 2, true, true},
		{h, 3, false, false}, // the burst's last
	} {
		wasKept, n := b.keeping(), b.n
		within(t, 5*time.Second, fmt.Sprintf("trade %s %d", step.ch.Symbol, step.seq), func() {
			s.hub.feedMessage(step.ch, burstTrade(step.ch, step.seq, step.more), b)
		})
		for j, c := range cs {
			if got := kept(t, b, c.out); got != step.kept {
				t.Fatalf("after %s %d: connection %d's lock kept %v, want %v", step.ch.Symbol, step.seq, j, got, step.kept)
			}
		}
		// Kept before and after: kept throughout, not let go and taken
		// again (release zeroes the count of deliveries).
		if wasKept && step.kept && b.n <= n {
			t.Fatalf("%s %d: the locks were let go and taken again (%d deliveries counted, %d before)", step.ch.Symbol, step.seq, b.n, n)
		}
	}
	// Each channel's in order (the order across channels is not kept:
	// a subscription's trades wait in its own buffer).
	want := []string{"G 1", "G 2", "G 3", "G 4", "G 5", "H 1", "H 2", "H 3"}
	for j, c := range cs {
		var got []string
		for _, f := range queued(c) {
			var u struct {
				Channel string
				Seq     uint64
			}
			if err := json.Unmarshal(f, &u); err != nil {
				t.Fatal(err)
			}
			got = append(got, fmt.Sprintf("%s %d", strings.TrimPrefix(u.Channel, "trade."), u.Seq))
		}
		slices.SortStableFunc(got, func(a, b string) int { return strings.Compare(a[:1], b[:1]) })
		if !slices.Equal(got, want) {
			t.Fatalf("connection %d got %q, want %q", j, got, want)
		}
	}
}

// The bound: a burst lets its locks go after maxBurstDeliveries
// deliveries, whatever the messages say.
func TestBurstBoundedDeliveries(t *testing.T) {
	symbols := make([]string, 8)
	for i := range symbols {
		symbols[i] = fmt.Sprint("S", i)
	}
	conns := maxBurstDeliveries/len(symbols) + 8
	s, cs, chans, b := burstFixture(t, conns, symbols...)
	for _, ch := range chans {
		s.hub.process(s.hub.lookup(ch), burstTicker(ch, 1, true), b)
		if b.n > maxBurstDeliveries {
			t.Fatalf("%d deliveries with locks kept", b.n)
		}
	}
	if len(b.held) > maxBurstDeliveries {
		t.Fatalf("%d locks kept", len(b.held))
	}
	b.release()
	for j, c := range cs {
		if got := queued(c); len(got) != len(chans) {
			t.Fatalf("connection %d got %d frames, want %d", j, len(got), len(chans))
		}
	}
}

// BenchmarkFanoutBurst: C-burst's fan-out without the sockets: 100
// connections of 50 channels out of 100, bursts of 20 messages, each
// connection's FIFO taken after each burst as its writer would. ns/op is
// per delivery; kept=false delivers every message as a lone one would
// (a lock and a release per delivery). kind=trade: trade channels on a
// node with a history stream, each message through the gap check
// (feedMessage, gapDue) as a dispatcher hands it over.
//
//	go test -run '^$' -bench FanoutBurst -benchtime 2s -count 3 ./gateway/
func BenchmarkFanoutBurst(b *testing.B) {
	const conns, channels, per, burst = 100, 100, 50, 20
	for _, kind := range []proto.Kind{proto.KindTicker, proto.KindTrade} {
		for _, keep := range []bool{false, true} {
			b.Run(fmt.Sprintf("kind=%s/kept=%v", kind, keep), func(b *testing.B) {
				benchFanoutBurst(b, kind, keep, conns, channels, per, burst)
			})
		}
	}
}

func benchFanoutBurst(b *testing.B, kind proto.Kind, keep bool, conns, channels, per, burst int) {
	s := hubFixture(b, func(c *Config) {
		if kind == proto.KindTrade {
			c.History = &fillHistory{}
		}
	})
	chans := make([]proto.Channel, channels)
	entries := make([]*hubEntry, channels)
	for i := range chans {
		chans[i] = proto.Channel{Kind: kind, Symbol: fmt.Sprint("S", i)}
	}
	cs := make([]*conn, conns)
	for i := range cs {
		cs[i] = s.bareConn(codec.JSON())
		for k := range per {
			s.joinFor(b, cs[i], chans[(i+k*2)%channels], joinOptions{})
		}
		queued(cs[i])
	}
	for i, ch := range chans {
		entries[i] = s.hub.lookup(ch)
	}
	var bl *burstLocks
	if keep {
		bl = s.hub.newBurst()
	}
	msgs := make([]*feed.Message, channels)
	var bt batch
	seq := uint64(0)
	deliveries := 0
	b.ReportAllocs()
	for b.Loop() {
		seq++
		for k := range burst {
			i := (int(seq)*burst + k) % channels
			m := msgs[i]
			if m == nil {
				if kind == proto.KindTrade {
					m = burstTrade(chans[i], 0, false)
				} else {
					m = burstTicker(chans[i], 0, false)
				}
				msgs[i] = m
			}
			m.Seq++
			m.More = k < burst-1
			if kind == proto.KindTrade {
				s.hub.feedMessage(chans[i], m, bl)
			} else {
				s.hub.process(entries[i], m, bl)
			}
			deliveries += len(entries[i].subs)
		}
		for _, c := range cs {
			c.out.take(&bt, time.Time{})
			bt.reset()
			c.out.wrote()
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(deliveries), "ns/delivery")
}

// TestBurstsOnSeveralDispatchers: dispatchers bursting at once over the
// same connections, with their writers taking on goroutines of their own
// and replies pushed meanwhile, neither deadlock nor reorder: every
// connection ends with every channel's last update, each channel's in
// rising order (a busy writer's tickers fold, so not every one).
func TestBurstsOnSeveralDispatchers(t *testing.T) {
	const dispatchers, perDispatcher, conns, bursts = 4, 5, 12, 150
	symbols := make([]string, dispatchers*perDispatcher)
	for i := range symbols {
		symbols[i] = fmt.Sprint("S", i)
	}
	s, cs, chans, _ := burstFixture(t, conns, symbols...)
	type seen struct {
		last map[string]uint64
		bad  string
	}
	got := make([]seen, conns)
	// note records connection i's frame payload: an update's seq, which
	// must rise on its channel; anything else (a pong) is skipped.
	note := func(i int, payload []byte) {
		var w wire
		if codec.DecodeMessage(codec.JSON(), payload, &w) != nil || w.Type != proto.TypeUpdate {
			return
		}
		if w.Seq <= got[i].last[w.Channel] && got[i].bad == "" {
			got[i].bad = fmt.Sprintf("%s: seq %d after %d", w.Channel, w.Seq, got[i].last[w.Channel])
		}
		got[i].last[w.Channel] = w.Seq
	}
	stop := make(chan struct{})
	var writers, pushers sync.WaitGroup
	for i, c := range cs {
		got[i].last = map[string]uint64{}
		writers.Add(1)
		go func() {
			defer writers.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				for _, p := range queued(c) {
					note(i, p)
				}
				c.out.wrote()
				runtime.Gosched()
			}
		}()
	}
	pushers.Add(1)
	go func() {
		defer pushers.Done()
		for k := 0; ; k++ {
			select {
			case <-stop:
				return
			default:
			}
			cs[k%conns].out.push([]byte{0x8a, 0}) // a pong frame
			runtime.Gosched()
		}
	}()
	within(t, 60*time.Second, "bursts on several dispatchers", func() {
		var wg sync.WaitGroup
		for d := range dispatchers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				bl := s.hub.newBurst()
				mine := chans[d*perDispatcher : (d+1)*perDispatcher]
				for seq := uint64(1); seq <= bursts; seq++ {
					for k, ch := range mine {
						s.hub.process(s.hub.lookup(ch), burstTicker(ch, seq, k < len(mine)-1), bl)
					}
				}
				if bl.keeping() {
					t.Error("locks kept after the last burst")
				}
			}()
		}
		wg.Wait()
	})
	close(stop)
	pushers.Wait()
	writers.Wait()
	t.Logf("waits for an outbox lock (wakes.yields): %d", s.hub.wakes.yields.Load())
	for i, c := range cs {
		for _, p := range queued(c) { // what the writer left
			note(i, p)
		}
		if got[i].bad != "" {
			t.Fatalf("connection %d: %s", i, got[i].bad)
		}
		for _, ch := range chans {
			if n := got[i].last[ch.String()]; n != bursts {
				t.Fatalf("connection %d: %s ended at seq %d, want %d", i, ch, n, bursts)
			}
		}
	}
}

// waitYield waits until someone has asked the bursts to let go
// (wakes.yields moved past before).
func waitYield(t *testing.T, s *Server, before uint64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for s.hub.wakes.yields.Load() == before {
		if time.Now().After(deadline) {
			t.Fatal("nobody asked for a kept lock")
		}
		time.Sleep(time.Millisecond)
	}
}

// A waiter is let in at the burst's next message even when that message
// delivers nothing (a duplicate), and a fan-out that keeps no locks (a
// gap fill's, on a goroutine of its own) waits no longer than that
// either.
func TestBurstLetsGoWithoutDelivering(t *testing.T) {
	t.Run("a reply, behind duplicates", func(t *testing.T) {
		s, cs, chans, b := burstFixture(t, 1, "A")
		s.hub.process(s.hub.lookup(chans[0]), burstTicker(chans[0], 1, true), b)
		before := s.hub.wakes.yields.Load()
		result := make(chan pushResult, 1)
		go func() { result <- cs[0].out.push([]byte("reply")) }()
		waitYield(t, s, before)
		s.hub.process(s.hub.lookup(chans[0]), burstTicker(chans[0], 1, true), b) // a duplicate: no fan-out
		select {
		case <-result:
		case <-time.After(5 * time.Second):
			t.Fatal("the reply waited past a message that delivered nothing")
		}
		b.release()
	})
	t.Run("a fan-out that keeps none", func(t *testing.T) {
		s, cs, chans, b := burstFixture(t, 1, "A", "B")
		s.hub.process(s.hub.lookup(chans[0]), burstTicker(chans[0], 1, true), b)
		before := s.hub.wakes.yields.Load()
		done := make(chan struct{})
		go func() {
			defer close(done)
			s.hub.process(s.hub.lookup(chans[1]), burstTicker(chans[1], 1, false), nil)
		}()
		waitYield(t, s, before)
		s.hub.process(s.hub.lookup(chans[0]), burstTicker(chans[0], 2, true), b)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("the other fan-out waited past the burst's next message")
		}
		b.release()
		if got := queued(cs[0]); len(got) != 3 {
			t.Fatalf("%d frames, want A's two updates and B's", len(got))
		}
	})
}

// A dispatcher whose channels belong to two hubs: the other hub's
// message gets no kept locks of this hub's, and this hub's burst lets
// its own go there, as its next message may never come.
func TestBurstSlotSharedByTwoHubs(t *testing.T) {
	s, cs, chans, _ := burstFixture(t, 1, "A")
	other := hubFixture(t)
	var slot any
	b := s.hub.burstIn(&slot)
	if b == nil || s.hub.burstIn(&slot) != b {
		t.Fatal("the slot does not keep the hub's burst")
	}
	s.hub.process(s.hub.lookup(chans[0]), burstTicker(chans[0], 1, true), b)
	if !kept(t, b, cs[0].out) {
		t.Fatal("lock not kept mid-burst")
	}
	if other.hub.burstIn(&slot) != nil {
		t.Fatal("another hub got this hub's burst")
	}
	if kept(t, b, cs[0].out) {
		t.Fatal("locks still kept once the dispatcher went on to another hub's message")
	}
	if s.hub.burstIn(nil) != nil {
		t.Fatal("a burst for a message no dispatcher handed over")
	}
}
