package gateway

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	dto "github.com/prometheus/client_model/go"

	"github.com/tickgate/tickgate/auth"
	"github.com/tickgate/tickgate/codec"
	"github.com/tickgate/tickgate/feed"
	"github.com/tickgate/tickgate/internal/booktest"
	"github.com/tickgate/tickgate/proto"
)

// nopSource grants every channel at once; for hub tests without NATS.
type nopSource struct{}

func (nopSource) AcquireAsync(proto.Channel, feed.Handler) (*feed.Pending, error) {
	return feed.Resolved(nil), nil
}
func (nopSource) Connected() bool { return true }

// hubFixture is a server without listeners: the hub and bare connections
// whose outboxes the test reads directly.
func hubFixture(t testing.TB, tweak ...func(*Config)) *Server {
	t.Helper()
	keys := auth.NewKeySet()
	if err := keys.Set([]auth.Key{{Material: make([]byte, 32)}}); err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(auth.Config{}, keys)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{NodeID: "hub-test", Logger: slog.New(slog.DiscardHandler)}
	for _, f := range tweak {
		f(&cfg)
	}
	s, err := New(cfg, v, nopSource{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// onFeed hands m to the hub by its channel's name, as a dispatcher does
// through the channel's entry (entryFeed), with the dispatcher's kept
// locks when m carries its slot.
func (h *hub) onFeed(ch proto.Channel, m *feed.Message) { h.feedMessage(ch, m, h.burstOf(m)) }

func (s *Server) bareConn(cd codec.Codec) *conn {
	return s.newConn(cd, &auth.Claims{Subject: "t"}, "test")
}

// join subscribes c to ch the way a subscribe command does.
func (s *Server) joinFor(t testing.TB, c *conn, ch proto.Channel, opt joinOptions) *subscription {
	t.Helper()
	e, hold, err := s.hub.acquire(ch)
	if err != nil {
		t.Fatal(err)
	}
	sub := c.newSubscription(e, hold)
	sub.fillHead(s.codecs, e.join(s.hub, sub, opt).plan)
	sub.ungate(time.Now)
	return sub
}

// queued takes what c's writer would take now, encoded, as payloads.
func queued(c *conn) [][]byte {
	payloads, _, _ := takeBatch(c)
	return payloads
}

// takeBatch is queued with how many of the payloads the writer took as
// FIFO frames (batch.frames, the rest as pendings: batch.items) and the
// close reason take returned (nil while the outbox is open).
func takeBatch(c *conn) (payloads [][]byte, frames int, closing *proto.Disconnect) {
	var b batch
	closing = c.out.take(&b, time.Now())
	payloads = make([][]byte, 0, b.len())
	for _, p := range b.taken() {
		f := p.frame
		if f == nil {
			f = c.srv.codecs.frame(c.variant, p.upd)
		}
		payloads = append(payloads, payloadOf(f))
	}
	return payloads, len(b.frames), closing
}

// closingOf is the close reason of c's outbox, nil while it is open.
func closingOf(c *conn) *proto.Disconnect {
	c.out.mu.Lock()
	defer c.out.mu.Unlock()
	return c.out.closing
}

// payloadOf returns the payload of one server frame (it aliases f).
func payloadOf(f []byte) []byte {
	switch n := f[1] & 0x7f; n {
	case 126:
		return f[4:]
	case 127:
		return f[10:]
	}
	return f[2:]
}

func tickerMsg(seq uint64) *feed.Message {
	return &feed.Message{Seq: seq, Data: &proto.Ticker{Symbol: "BTC-USD", Bid: "1", BidSize: "1", Ask: "2", AskSize: "1", Last: "1.5", Volume: "9", TS: int64(seq)}}
}

// Subscribers in step share one encoding per codec; one out of step gets
// its own bytes with its own prev.
func TestFanoutEncodesOncePerCodec(t *testing.T) {
	s := hubFixture(t)
	ch := proto.Channel{Kind: proto.KindTicker, Symbol: "BTC-USD"}
	j1, j2, m1 := s.bareConn(codec.JSON()), s.bareConn(codec.JSON()), s.bareConn(codec.Msgpack())
	for _, c := range []*conn{j1, j2, m1} {
		s.joinFor(t, c, ch, joinOptions{snapshot: true})
	}
	s.hub.onFeed(ch, tickerMsg(1)) // first state: everyone's snapshot
	s.hub.onFeed(ch, tickerMsg(2))
	late := s.bareConn(codec.JSON())
	s.joinFor(t, late, ch, joinOptions{snapshot: false}) // holds nothing: prev 0
	s.hub.onFeed(ch, tickerMsg(3))

	a, b, m, l := queued(j1), queued(j2), queued(m1), queued(late)
	if len(a) != 3 || len(b) != 3 || len(m) != 3 || len(l) != 1 {
		t.Fatalf("queued %d %d %d %d", len(a), len(b), len(m), len(l))
	}
	for i := range a {
		if &a[i][0] != &b[i][0] {
			t.Fatalf("message %d: two json subscribers in step got separate encodings", i)
		}
	}
	if &l[0][0] == &a[2][0] {
		t.Fatal("a subscriber out of step shared the in-step encoding")
	}
	var w wire
	if err := codec.DecodeMessage(codec.JSON(), l[0], &w); err != nil || w.Seq != 3 || *w.Prev != 0 {
		t.Fatalf("late subscriber got %s (%v)", l[0], err)
	}
	if err := codec.DecodeMessage(codec.Msgpack(), m[2], &w); err != nil || w.Seq != 3 || *w.Prev != 2 || w.Type != "update" {
		t.Fatalf("msgpack subscriber got %+v (%v)", w, err)
	}
}

// An unsubscribed connection gets nothing more, and the channel entry goes
// when its last subscriber leaves.
func TestLeaveAndRelease(t *testing.T) {
	s := hubFixture(t)
	ch := proto.Channel{Kind: proto.KindTrade, Symbol: "X"}
	c := s.bareConn(codec.JSON())
	sub := s.joinFor(t, c, ch, joinOptions{})
	sub.entry.leave(sub)
	s.hub.abandon(sub.entry, sub.hold)
	if s.hub.lookup(ch) != nil {
		t.Fatal("entry kept after the last subscriber left")
	}
	s.hub.onFeed(ch, &feed.Message{Seq: 1, Data: &proto.Trade{Symbol: "X", ID: 1, Price: "1", Size: "1", Side: "buy"}})
	if q := queued(c); len(q) != 0 {
		t.Fatalf("%d frames after leaving", len(q))
	}
}

// A channel's NATS interest calls its entry's own handler (hubEntry.fed),
// which finds the entry without a lookup. A message that handler gets
// once the entry is gone (in flight when the last subscriber left) goes
// where the channel leads now: to nobody, or to the entry a later
// subscriber made.
func TestEntryHandlerOnceTheEntryWent(t *testing.T) {
	s := hubFixture(t)
	ch := proto.Channel{Kind: proto.KindTicker, Symbol: "BTC-USD"}
	first := s.bareConn(codec.JSON())
	sub := s.joinFor(t, first, ch, joinOptions{})
	old := sub.entry
	old.fed(ch, tickerMsg(1))
	if q := queued(first); len(q) != 1 {
		t.Fatalf("%d frames from the entry's handler, want 1", len(q))
	}
	old.leave(sub)
	s.hub.abandon(old, sub.hold)
	old.fed(ch, tickerMsg(2)) // nobody holds the channel
	if q := queued(first); len(q) != 0 {
		t.Fatalf("%d frames after leaving", len(q))
	}
	later := s.bareConn(codec.JSON())
	sub2 := s.joinFor(t, later, ch, joinOptions{})
	if sub2.entry == old {
		t.Fatal("the entry that went was used again")
	}
	queued(later)
	old.fed(ch, tickerMsg(3))
	q := queued(later)
	if len(q) != 1 {
		t.Fatalf("%d frames for the later subscriber from the old handler, want 1", len(q))
	}
	var w wire
	if err := codec.DecodeMessage(codec.JSON(), q[0], &w); err != nil || w.Seq != 3 {
		t.Fatalf("later subscriber got %s (%v)", q[0], err)
	}
}

func BenchmarkFanoutTicker(b *testing.B) {
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			s := hubFixture(b)
			ch := proto.Channel{Kind: proto.KindTicker, Symbol: "BTC-USD"}
			conns := make([]*conn, n)
			for i := range conns {
				cd := codec.JSON()
				if i%2 == 1 {
					cd = codec.Msgpack()
				}
				conns[i] = s.bareConn(cd)
				s.joinFor(b, conns[i], ch, joinOptions{snapshot: true})
			}
			msgs := make([]*feed.Message, b.N+1)
			for i := range msgs {
				msgs[i] = tickerMsg(uint64(i + 1))
			}
			batches := make([]batch, n)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				s.hub.onFeed(ch, msgs[i])
				if i%64 == 63 { // take like writers do, reusing their slices
					for j, c := range conns {
						c.out.take(&batches[j], time.Time{})
						batches[j].reset()
					}
				}
			}
		})
	}
}

// deliverFixture is one in-step subscriber and an event whose shared
// frames are already encoded: the per-recipient fast path.
func deliverFixture(t testing.TB, kind proto.Kind) (*Server, *hubEntry, *subscription, *feed.Event, *encoded) {
	t.Helper()
	s := hubFixture(t)
	ch := proto.Channel{Kind: kind, Symbol: "BTC-USD"}
	c := s.bareConn(codec.JSON())
	sub := s.joinFor(t, c, ch, joinOptions{})
	queued(c)
	e := sub.entry
	var data any = &proto.Trade{Symbol: "BTC-USD", ID: 1, Price: "1", Size: "1", Side: "buy", TS: 1}
	if kind == proto.KindTicker {
		data = tickerMsg(1).Ticker()
	}
	ev := &feed.Event{Channel: ch, Seq: 1, Data: data, TS: 1}
	enc := &encoded{}
	enc.updateFrame(s.codecs, 0, e.name, ev)
	return s, e, sub, ev, enc
}

// The per-recipient fast path (queue a shared frame for a subscriber in
// step, then the writer takes it) allocates nothing, on a connection that
// negotiated compression too, and in a feed burst that keeps its locks.
func TestDeliverFastPathAllocatesNothing(t *testing.T) {
	for _, tc := range []struct {
		name     string
		kind     proto.Kind
		deflated bool
		kept     bool // in a burst (burstLocks)
	}{{"ticker", proto.KindTicker, false, false}, {"trade", proto.KindTrade, false, false}, {"ticker-deflated", proto.KindTicker, true, false}, {"ticker-kept", proto.KindTicker, false, true}} {
		t.Run(tc.name, func(t *testing.T) {
			s, e, sub, ev, enc := deliverFixture(t, tc.kind)
			if tc.deflated {
				sub.c.variant = variantOf(sub.c.codecIdx, true)
				enc.updateFrame(s.codecs, sub.c.variant, e.name, ev)
			}
			var b batch
			var bl *burstLocks
			if tc.kept {
				bl = s.hub.newBurst()
			}
			run := func() {
				sub.last = ev.Prev // stay in step: the same event again
				if bl != nil {
					bl.keep = true
				}
				if r, _ := e.deliver(s.hub, sub, ev, enc, s.hub.now, bl); r != "" {
					t.Fatal(r)
				}
				if bl != nil {
					if !bl.holds(sub.c.out) {
						t.Fatal("the burst did not keep the lock")
					}
					bl.release()
				}
				sub.c.out.take(&b, time.Time{})
				sub.c.out.wrote()
				b.reset()
			}
			run() // grow the slices once
			if allocs := testing.AllocsPerRun(1000, run); allocs != 0 {
				t.Fatalf("%v allocations per recipient", allocs)
			}
		})
	}
}

func BenchmarkDeliverInStep(b *testing.B) {
	s, e, sub, ev, enc := deliverFixture(b, proto.KindTicker)
	var bt batch
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		sub.last = ev.Prev
		e.deliver(s.hub, sub, ev, enc, s.hub.now, nil)
		if i%64 == 63 {
			sub.c.out.take(&bt, time.Time{})
			sub.c.out.wrote()
			bt.reset()
		}
	}
}

// BenchmarkFoldBook folds book deltas into a pending one, as for a
// connection whose writer is busy.
func BenchmarkFoldBook(b *testing.B) {
	bf := booktest.NewFeed("BTC-USD", 1)
	bf.Snapshot(0)
	deltas := make([]*proto.Book, 256)
	for i := range deltas {
		deltas[i] = bf.Update(int64(i)).Data.(*proto.Book)
	}
	var s subscription
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i%64 == 0 {
			s.group = nil
		}
		s.fold(proto.PendingMerge, uint64(i+1), 1, deltas[i%len(deltas)])
	}
}

// evictionCount reads one eviction counter (for tests and tools).
func (m *Metrics) evictionCount(reason string) float64 {
	var out dto.Metric
	if err := m.evictions.WithLabelValues(reason).Write(&out); err != nil {
		return 0
	}
	return out.GetCounter().GetValue()
}

func TestCanonicalPrice(t *testing.T) {
	tests := map[string]string{
		"64000.10": "64000.1", "064000.1": "64000.1", "64000": "64000", "64000.00": "64000",
		"0": "0", "000": "0", "0.5": "0.5", "00.50": "0.5", "0.0": "0", "100": "100", "1.000001": "1.000001",
	}
	for in, want := range tests {
		if got := canonicalPrice(in); got != want {
			t.Errorf("canonicalPrice(%q) = %q, want %q", in, got, want)
		}
	}
}

// A merged delta equals applying its deltas in order, also when one delta
// names a price twice or numbers are written differently.
func TestLevelMerge(t *testing.T) {
	var m levelMerge
	m.add([]proto.Level{{"100", "1"}, {"100", "0"}, {"99.50", "2"}})
	m.add([]proto.Level{{"100.0", "5"}, {"99.5", "0"}, {"98", "1"}})
	want := []proto.Level{{"100.0", "5"}, {"99.5", "0"}, {"98", "1"}}
	if len(m.levels) != len(want) {
		t.Fatalf("merged %v, want %v", m.levels, want)
	}
	for i := range want {
		if m.levels[i] != want[i] {
			t.Fatalf("merged %v, want %v", m.levels, want)
		}
	}
}

// The review's findings, pinned.
func TestOutboxOrderAndBounds(t *testing.T) {
	ch := proto.Channel{Kind: proto.KindTicker, Symbol: "BTC-USD"}
	decodeAll := func(t *testing.T, frames [][]byte) []wire {
		t.Helper()
		out := make([]wire, len(frames))
		for i, f := range frames {
			if err := codec.DecodeMessage(codec.JSON(), f, &out[i]); err != nil {
				t.Fatal(err)
			}
		}
		return out
	}
	t.Run("re-subscribe queues behind its ack", func(t *testing.T) {
		s := hubFixture(t)
		c := s.bareConn(codec.JSON())
		sub := s.joinFor(t, c, ch, joinOptions{snapshot: true})
		s.hub.onFeed(ch, tickerMsg(1)) // pending, queued, writer not run
		sub.fillHead(s.codecs, sub.entry.join(s.hub, sub, joinOptions{snapshot: true}).plan)
		c.reply(proto.Subscribed{Type: proto.TypeSubscribed, Channels: []string{ch.String()}})
		sub.ungate(time.Now)
		got := decodeAll(t, queued(c))
		if len(got) != 2 || got[0].Type != proto.TypeSubscribed || got[1].Type != proto.TypeSnapshot {
			t.Fatalf("got %+v, want the ack, then the snapshot", got)
		}
	})
	t.Run("throttled updates fold even while the writer is free", func(t *testing.T) {
		clock := time.Unix(1000, 0)
		s := hubFixture(t, func(c *Config) { c.Now = func() time.Time { return clock } })
		c := s.bareConn(codec.JSON())
		s.joinFor(t, c, ch, joinOptions{snapshot: true, throttle: time.Second})
		for seq := uint64(1); seq <= 5; seq++ {
			s.hub.onFeed(ch, tickerMsg(seq))
		}
		got := decodeAll(t, queued(c))
		if len(got) != 2 || got[0].Type != proto.TypeSnapshot || got[1].N != 4 || got[1].Seq != 5 || *got[1].Prev != 1 {
			t.Fatalf("got %+v, want the snapshot then one update folding 4", got)
		}
	})
	t.Run("unsubscribed leave the delayed list at once", func(t *testing.T) {
		clock := time.Unix(1000, 0)
		s := hubFixture(t, func(c *Config) { c.Now = func() time.Time { return clock } })
		c := s.bareConn(codec.JSON())
		sub := s.joinFor(t, c, ch, joinOptions{snapshot: true, throttle: time.Minute})
		s.hub.onFeed(ch, tickerMsg(1))
		queued(c) // the snapshot; the next write may go in a minute
		s.hub.onFeed(ch, tickerMsg(2))
		if len(c.out.delayed) != 1 {
			t.Fatalf("%d delayed, want 1", len(c.out.delayed))
		}
		sub.entry.leave(sub)
		queued(c)
		if len(c.out.delayed) != 0 || !c.out.nextDelayed().IsZero() {
			t.Fatal("a dead subscription stayed in the delayed list")
		}
	})
	t.Run("take says when throttled subscriptions wait", func(t *testing.T) {
		clock := time.Unix(1000, 0)
		s := hubFixture(t, func(c *Config) { c.Now = func() time.Time { return clock } })
		c := s.bareConn(codec.JSON())
		s.joinFor(t, c, ch, joinOptions{snapshot: true, throttle: time.Minute})
		s.hub.onFeed(ch, tickerMsg(1))
		var b batch
		take := func() bool {
			c.out.take(&b, clock)
			b.reset()
			c.out.wrote()
			return b.delayed
		}
		if take() { // the snapshot; nothing waits yet
			t.Fatal("delayed with no throttled subscription waiting")
		}
		s.hub.onFeed(ch, tickerMsg(2)) // not due for a minute
		if !take() {
			t.Fatal("not delayed with a throttled subscription waiting")
		}
		clock = clock.Add(time.Minute)
		if take() { // due now: taken
			t.Fatal("delayed once the throttled subscription was taken")
		}
	})
	t.Run("eviction drops what is pending", func(t *testing.T) {
		s := hubFixture(t)
		c := s.bareConn(codec.JSON())
		sub := s.joinFor(t, c, ch, joinOptions{snapshot: true})
		s.hub.onFeed(ch, tickerMsg(1))
		c.out.evict(proto.Disconnect{Code: proto.CloseSlowConsumer, Reason: "test"})
		sub.ungate(time.Now)
		var b batch
		if d := c.out.take(&b, time.Now()); d == nil || b.len() != 0 {
			t.Fatalf("took %d items (close %v) after an eviction", b.len(), d)
		}
	})
	t.Run("trade channels ignore the throttle", func(t *testing.T) {
		s := hubFixture(t)
		c := s.bareConn(codec.JSON())
		sub := s.joinFor(t, c, proto.Channel{Kind: proto.KindTrade, Symbol: "X"}, joinOptions{throttle: time.Minute})
		if sub.thr != nil {
			t.Fatal("a trade channel was throttled")
		}
	})
	t.Run("a merged book delta that outgrows the cap becomes a snapshot", func(t *testing.T) {
		s := hubFixture(t)
		bch := proto.Channel{Kind: proto.KindBook, Symbol: "B"}
		c := s.bareConn(codec.JSON())
		s.joinFor(t, c, bch, joinOptions{snapshot: true})
		s.hub.onFeed(bch, &feed.Message{Seq: 1, Snapshot: true, Data: &proto.Book{Symbol: "B", Bids: []proto.Level{{"1", "1"}}, Asks: []proto.Level{{"100000", "1"}}}})
		queued(c)
		c.out.mu.Lock()
		c.out.writing = true // the writer is busy: updates fold
		c.out.mu.Unlock()
		for i := range mergedLevels/100 + 2 {
			var bids []proto.Level
			for j := range 100 {
				bids = append(bids, proto.Level{fmt.Sprintf("%d.%02d", 2+i, j), "1"})
			}
			s.hub.onFeed(bch, &feed.Message{Seq: uint64(i + 2), Data: &proto.Book{Bids: bids, Asks: []proto.Level{}}})
		}
		got := decodeAll(t, queued(c))
		if len(got) != 2 || got[0].Type != proto.TypeSnapshot || got[1].Type != proto.TypeUpdate || *got[1].Prev != got[0].Seq || got[1].N != 1 {
			t.Fatalf("got %d messages (%q first); want a snapshot, then the one update after it", len(got), got[0].Type)
		}
	})
}

// A client that resumes from a seq a little beyond the node's newest (it
// saw those messages on another node, which NATS reached first) is
// resumed, not sent an older snapshot: the node's next events up to its
// seq are the ones it holds, and the first after it continues its chain.
// Too far ahead, it gets a snapshot; a trade channel the same way.
func TestResumeAheadOfTheNode(t *testing.T) {
	for _, tt := range []struct {
		name    string
		ch      proto.Channel
		since   uint64
		resumed bool
		want    []string
	}{
		{"ticker 2 ahead", proto.Channel{Kind: proto.KindTicker, Symbol: "A"}, 5, true, []string{"update 6/5"}},
		{"trade 2 ahead", proto.Channel{Kind: proto.KindTrade, Symbol: "A"}, 5, true, []string{"update 6/5"}},
		{"ticker too far ahead", proto.Channel{Kind: proto.KindTicker, Symbol: "A"}, 3 + feed.AheadMax + 1, false, []string{"snapshot 3/0", "update 4/3", "update 5/4", "update 6/5"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := hubFixture(t)
			data := func(seq uint64) any {
				if tt.ch.Kind == proto.KindTrade {
					return &proto.Trade{Symbol: "A", ID: int64(seq), Price: "1", Size: "1", Side: "buy", TS: 1}
				}
				return &proto.Ticker{Symbol: "A", Bid: "1", BidSize: "1", Ask: "2", AskSize: "1", Last: fmt.Sprint(seq), Volume: "1", TS: 1}
			}
			holder := s.bareConn(codec.JSON())
			s.joinFor(t, holder, tt.ch, joinOptions{snapshot: true})
			for seq := uint64(1); seq <= 3; seq++ {
				s.hub.onFeed(tt.ch, &feed.Message{Seq: seq, Data: data(seq)})
			}
			c := s.bareConn(codec.JSON())
			e, hold, err := s.hub.acquire(tt.ch)
			if err != nil {
				t.Fatal(err)
			}
			sub := c.newSubscription(e, hold)
			since := tt.since
			j := e.join(s.hub, sub, joinOptions{snapshot: true, since: &since})
			if j.resumed != tt.resumed {
				t.Fatalf("resumed %v, want %v", j.resumed, tt.resumed)
			}
			sub.fillHead(s.codecs, j.plan)
			sub.ungate(time.Now)
			for seq := uint64(4); seq <= 6; seq++ {
				s.hub.onFeed(tt.ch, &feed.Message{Seq: seq, Data: data(seq)})
			}
			var got []string
			for _, b := range queued(c) {
				var w struct {
					Type      string
					Seq, Prev uint64
				}
				if err := json.Unmarshal(b, &w); err != nil {
					t.Fatal(err)
				}
				got = append(got, fmt.Sprintf("%s %d/%d", w.Type, w.Seq, w.Prev))
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// A fan-out reads the clock once, whatever its number of recipients, and
// stamps each outbox with that reading (fanClock).
func TestFanOutReadsTheClockOnce(t *testing.T) {
	var reads atomic.Int64
	at := time.Unix(1700000000, 0)
	s := hubFixture(t, func(c *Config) {
		c.Now = func() time.Time { reads.Add(1); return at }
	})
	ch := proto.Channel{Kind: proto.KindTicker, Symbol: "BTC-USD"}
	var conns []*conn
	var e *hubEntry
	for range 8 {
		c := s.bareConn(codec.JSON())
		e = s.joinFor(t, c, ch, joinOptions{}).entry
		queued(c) // the snapshot
		conns = append(conns, c)
	}
	ev := &feed.Event{Channel: ch, Seq: 1, Data: tickerMsg(1).Ticker(), TS: 1}
	var starts []restart
	before := reads.Load()
	e.mu.Lock()
	e.fanout(s.hub, ev, &starts, nil)
	e.mu.Unlock()
	if n := reads.Load() - before; n != 1 {
		t.Fatalf("a fan-out to %d connections read the clock %d times, want once", len(conns), n)
	}
	for i, c := range conns {
		c.out.mu.Lock()
		stamped := c.out.queuedAt
		c.out.mu.Unlock()
		if stamped != at.UnixNano() {
			t.Fatalf("connection %d: queued at %d, want the fan-out's %d", i, stamped, at.UnixNano())
		}
		if got := queued(c); len(got) != 1 {
			t.Fatalf("connection %d: %d frames queued, want the update", i, len(got))
		}
	}
}

// BenchmarkClockRead is one reading of the node's clock (time.Now: the
// wall and the monotonic clock, two vDSO calls on Linux), what fanClock
// saves per recipient and an inline sweep per round.
//
//	go test -run '^$' -bench ClockRead -count 3 ./gateway
func BenchmarkClockRead(b *testing.B) {
	b.ReportAllocs()
	var ns int64
	for b.Loop() {
		ns += time.Now().UnixNano()
	}
	if ns == 0 {
		b.Fatal("no reading")
	}
}

// fanClock reads its clock at the first call only.
func TestFanClock(t *testing.T) {
	reads := 0
	f := fanClock{clock: func() time.Time { reads++; return time.Unix(int64(reads), 0) }}
	if reads != 0 {
		t.Fatal("read before use")
	}
	first := f.now()
	for range 3 {
		if got := f.now(); !got.Equal(first) {
			t.Fatalf("now = %v after %v", got, first)
		}
	}
	if reads != 1 {
		t.Fatalf("%d clock reads, want 1", reads)
	}
}

// taken is what b holds, in order, as pendings: its frames (copied whole
// by take) and its items.
func (b *batch) taken() []pending {
	out := make([]pending, 0, b.len())
	for _, it := range b.frames {
		out = append(out, pending{frame: it.frame, ts: it.ts})
	}
	return append(out, b.items...)
}

// take copies a FIFO of frames only to the writer's batch whole
// (batch.frames), and builds pendings for anything else (batch.items);
// either way the batch holds the messages in order, the FIFO is left
// empty and keeps its own slice, and the next messages queued do not
// reach into what the writer holds. The batch is a fresh one, or one with
// room in both slices (as the scratch pool's are after a write).
func TestTakeFramesOnlyOrPendings(t *testing.T) {
	ch := proto.Channel{Kind: proto.KindTicker, Symbol: "BTC-USD"}
	seqs := func(t *testing.T, c *conn, ps []pending) []uint64 {
		t.Helper()
		var out []uint64
		for _, p := range ps {
			f := p.frame
			if f == nil {
				f = c.srv.codecs.frame(c.variant, p.upd)
			}
			var w wire
			if err := codec.DecodeMessage(codec.JSON(), payloadOf(f), &w); err != nil {
				t.Fatal(err)
			}
			out = append(out, w.Seq)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		// fill queues what the writer then takes (the snapshot was taken)
		fill       func(s *Server, c *conn, sub *subscription)
		wantFrames bool // taken whole, as frames
		want       []uint64
	}{
		{"update frames", func(s *Server, c *conn, sub *subscription) {
			for seq := uint64(2); seq <= 4; seq++ {
				s.hub.onFeed(ch, tickerMsg(seq))
			}
		}, true, []uint64{2, 3, 4}},
		{"update frames and a reply", func(s *Server, c *conn, sub *subscription) {
			s.hub.onFeed(ch, tickerMsg(2))
			c.reply(proto.Subscribed{Type: proto.TypeSubscribed, Channels: []string{ch.String()}})
			s.hub.onFeed(ch, tickerMsg(3))
		}, true, []uint64{2, 0, 3}},
		{"a subscription's own update", func(s *Server, c *conn, sub *subscription) {
			s.hub.onFeed(ch, tickerMsg(2))
			c.out.mu.Lock()
			sub.last = 1 // out of step: the next update is its own, encoded by the writer
			c.out.mu.Unlock()
			s.hub.onFeed(ch, tickerMsg(3))
		}, false, []uint64{2, 3}},
	} {
		for _, reused := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/reused=%v", tc.name, reused), func(t *testing.T) {
				s := hubFixture(t)
				c := s.bareConn(codec.JSON())
				sub := s.joinFor(t, c, ch, joinOptions{})
				s.hub.onFeed(ch, tickerMsg(1))
				queued(c) // the snapshot
				c.out.wrote()
				var b batch
				if reused {
					b = batch{frames: make([]item, 0, 8), items: make([]pending, 0, 8)}
				}
				tc.fill(s, c, sub)
				fifo := unsafe.SliceData(c.out.queue)
				c.out.take(&b, time.Now())
				if unsafe.SliceData(c.out.queue) != fifo {
					t.Fatal("the FIFO's slice changed hands")
				}
				if got := len(b.frames) > 0; got != tc.wantFrames || len(b.frames) > 0 && len(b.items) > 0 {
					t.Fatalf("%d frames and %d items taken, want frames alone: %v", len(b.frames), len(b.items), tc.wantFrames)
				}
				if len(c.out.queue) != 0 {
					t.Fatalf("%d entries left in the FIFO", len(c.out.queue))
				}
				if got := seqs(t, c, b.taken()); !slices.Equal(got, tc.want) {
					t.Fatalf("took seqs %v, want %v", got, tc.want)
				}
				c.out.wrote()
				for seq := uint64(10); seq <= 13; seq++ {
					s.hub.onFeed(ch, tickerMsg(seq)) // into the FIFO, which must not be the batch's
				}
				if got := seqs(t, c, b.taken()); !slices.Equal(got, tc.want) {
					t.Fatalf("the batch holds seqs %v once the FIFO took more, want %v", got, tc.want)
				}
				if len(c.out.queue) == 0 {
					t.Fatal("nothing queued after the take")
				}
			})
		}
	}
}
