package gateway

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lxzan/gws"
	dto "github.com/prometheus/client_model/go"

	"github.com/tickgate/tickgate/auth"
	"github.com/tickgate/tickgate/codec"
	"github.com/tickgate/tickgate/feed"
	"github.com/tickgate/tickgate/proto"
)

// Regressions of the defects an outside attack on a running node found
// (docs/security.md, "Outside attack replay"). Each test failed before
// its fix.

// feedGapCount reads tickgate_feed_gaps_total for one kind.
func (m *Metrics) feedGapCount(k proto.Kind) float64 {
	var out dto.Metric
	if err := m.feedGapsByKind[k].Write(&out); err != nil {
		return 0
	}
	return out.GetCounter().GetValue()
}

// A subscribe that needs NATS while the node has none is answered at once
// with unavailable and retry_ms, the connection's other commands go on,
// and a client that answers its pings is never evicted for the wait.
// Before: each subscribe blocked the read loop for 5 s and got
// bad_request; four in a row got the client evicted with 4008 lag_timeout.
func TestSubscribeDuringNATSOutageIsAnsweredAtOnce(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.WriteTimeout, c.LagTimeout = time.Second, 2*time.Second })
	c := e.connect(t, "json", e.token(t, "outage", time.Hour, ">"))
	c.send(t, proto.Command{Op: proto.OpSubscribe, ID: ptr[int64](1), Channels: []string{"trade.HELD"}})
	c.expect(t, proto.TypeSubscribed)

	e.ns.Shutdown()
	waitFor(t, "source disconnected", func() bool { return !e.src.Connected() })
	if w := c.expect(t, proto.TypeStatus); w.Channel != "trade.HELD" || w.State != proto.StateStale || w.Reason != proto.ReasonFeedDisconnected {
		t.Fatalf("got %s, want trade.HELD stale feed_disconnected", w.raw)
	}
	start := time.Now()
	for i := range 4 {
		c.send(t, proto.Command{Op: proto.OpSubscribe, ID: ptr(int64(2 + i)), Channels: []string{fmt.Sprintf("book.NEW%d", i)}})
	}
	for i := range 4 {
		w := c.expect(t, proto.TypeError)
		want := fmt.Sprintf("book.NEW%d", i)
		if w.Code != string(proto.CodeUnavailable) || w.Channel != want || *w.ID != int64(2+i) {
			t.Fatalf("answer %d: %s, want unavailable for %s", i, w.raw, want)
		}
		if w.RetryMS < 2000 || w.RetryMS > 4000 {
			t.Fatalf("retry_ms %d, want 2000..4000 (SubscribeRetry plus jitter)", w.RetryMS)
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("four refusals took %v: the node waited for NATS", d)
	}
	// A channel the node holds needs no NATS: a re-subscribe is served.
	c.send(t, proto.Command{Op: proto.OpSubscribe, ID: ptr[int64](6), Channels: []string{"trade.HELD"}})
	if w := c.expect(t, proto.TypeSubscribed); len(w.Channels) != 1 || w.Channels[0] != "trade.HELD" {
		t.Fatalf("re-subscribe of a held channel: %s", w.raw)
	}
	// Its status is told again after the new ack: the client forgot it.
	if w := c.expect(t, proto.TypeStatus); w.Channel != "trade.HELD" || w.State != proto.StateStale {
		t.Fatalf("after the re-subscribe: %s, want trade.HELD stale again", w.raw)
	}
	c.send(t, proto.Command{Op: proto.OpPing, ID: ptr[int64](7)})
	c.expect(t, proto.TypePong)
	c.quiet(t, 3*time.Second) // past LagTimeout: not evicted
	if n := e.srv.metrics.evictionCount(evictLagTimeout); n != 0 {
		t.Fatalf("%v lag_timeout evictions", n)
	}
}

// Over a half-open path to NATS (connected, nothing answered) a subscribe
// waits for NATS off the read loop: pings and other commands are answered
// meanwhile, a command on the waiting channel is answered after it, and
// the subscribe ends in unavailable after SubscribeTimeout. Once NATS
// answers again, the same subscribe succeeds.
func TestSubscribeWaitsForNATSOffTheReadLoop(t *testing.T) {
	e := newProxiedTestEnv(t, func(c *Config) {
		c.SubscribeTimeout = 1500 * time.Millisecond
		c.WriteTimeout, c.LagTimeout = 500*time.Millisecond, time.Second
	})
	c := e.connect(t, "json", e.token(t, "halfopen", time.Hour, ">"))
	c.send(t, proto.Command{Op: proto.OpSubscribe, ID: ptr[int64](1), Channels: []string{"ticker.HELD"}})
	c.expect(t, proto.TypeSubscribed)

	e.proxy.Freeze()
	start := time.Now()
	c.send(t, proto.Command{Op: proto.OpSubscribe, ID: ptr[int64](2), Channels: []string{"ticker.HELD", "trade.NEW"}})
	c.send(t, proto.Command{Op: proto.OpUnsubscribe, ID: ptr[int64](3), Channels: []string{"trade.NEW"}})
	c.send(t, proto.Command{Op: proto.OpPing, ID: ptr[int64](4)})
	c.send(t, proto.Command{Op: proto.OpSubscribe, ID: ptr[int64](5), Channels: []string{"bad channel"}})
	if w := c.expect(t, proto.TypePong); *w.ID != 4 || time.Since(start) > time.Second {
		t.Fatalf("pong %s after %v: commands waited for NATS", w.raw, time.Since(start))
	}
	if w := c.expect(t, proto.TypeError); w.Code != string(proto.CodeBadChannel) || *w.ID != 5 {
		t.Fatalf("got %s, want bad_channel for id 5", w.raw)
	}
	// The subscribe: trade.NEW unavailable, ticker.HELD acked; then the
	// unsubscribe held back behind it.
	if w := c.expect(t, proto.TypeError); w.Code != string(proto.CodeUnavailable) || w.Channel != "trade.NEW" || *w.ID != 2 {
		t.Fatalf("got %s, want unavailable for trade.NEW", w.raw)
	}
	if d := time.Since(start); d < time.Second {
		t.Fatalf("unavailable after %v, before SubscribeTimeout", d)
	}
	if w := c.expect(t, proto.TypeSubscribed); *w.ID != 2 || len(w.Channels) != 1 || w.Channels[0] != "ticker.HELD" {
		t.Fatalf("got %s, want the ack of ticker.HELD", w.raw)
	}
	if w := c.expect(t, proto.TypeUnsubscribed); *w.ID != 3 {
		t.Fatalf("got %s, want the unsubscribe's answer", w.raw)
	}
	if n := e.srv.metrics.evictionCount(evictLagTimeout); n != 0 {
		t.Fatalf("%v lag_timeout evictions while NATS did not answer", n)
	}

	e.proxy.Thaw()
	c.send(t, proto.Command{Op: proto.OpSubscribe, ID: ptr[int64](6), Channels: []string{"trade.NEW"}})
	if w := c.expect(t, proto.TypeSubscribed); *w.ID != 6 {
		t.Fatalf("after the thaw: %s", w.raw)
	}
	e.publish(t, "trade.NEW", 1, proto.FeedUpdate, &proto.Trade{Symbol: "NEW", ID: 1, Price: "1", Size: "1", Side: "buy", TS: 1})
	if w := c.expect(t, proto.TypeUpdate); w.Channel != "trade.NEW" {
		t.Fatalf("got %s", w.raw)
	}
}

// A connection that ends while its subscribe waits for NATS leaves no
// interest, subscription or per-subject slot behind.
func TestConnectionEndsWhileSubscribeWaits(t *testing.T) {
	e := newProxiedTestEnv(t, func(c *Config) { c.SubscribeTimeout = time.Minute })
	c := e.connect(t, "json", e.token(t, "leaver", time.Hour, ">"))
	e.proxy.Freeze()
	c.send(t, proto.Command{Op: proto.OpSubscribe, ID: ptr[int64](1), Channels: []string{"book.GONE", "trade.GONE"}})
	waitFor(t, "subscribe waiting", func() bool { return e.src.Channels() == 2 })
	_ = c.ws.NetConn().Close()
	waitFor(t, "interest released", func() bool { return e.src.Channels() == 0 })
	e.proxy.Thaw()
	e.srv.admit.mu.Lock()
	defer e.srv.admit.mu.Unlock()
	if n := e.srv.admit.subs["leaver"]; n != 0 {
		t.Fatalf("%d subscription slots left for the subject", n)
	}
}

// One token's subscriptions over all its connections are bounded per
// node; slots come back when subscriptions end.
func TestMaxSubscriptionsPerSubject(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.MaxSubscriptionsPerSubject = 3 })
	tok := e.token(t, "greedy", time.Hour, ">")
	a := e.connect(t, "json", tok)
	b := e.connect(t, "msgpack", tok)
	a.send(t, proto.Command{Op: proto.OpSubscribe, ID: ptr[int64](1), Channels: []string{"ticker.A", "ticker.B"}})
	a.expect(t, proto.TypeSubscribed)
	b.send(t, proto.Command{Op: proto.OpSubscribe, ID: ptr[int64](2), Channels: []string{"ticker.C", "ticker.D"}})
	if w := b.expect(t, proto.TypeError); w.Code != string(proto.CodeTooManySubscriptions) || w.Channel != "ticker.D" ||
		!strings.Contains(w.Message, "per subscriber") {
		t.Fatalf("got %s, want too_many_subscriptions for ticker.D", w.raw)
	}
	if w := b.expect(t, proto.TypeSubscribed); len(w.Channels) != 1 || w.Channels[0] != "ticker.C" {
		t.Fatalf("got %s, want ticker.C acked", w.raw)
	}
	// Another subject is not affected.
	o := e.connect(t, "json", e.token(t, "other", time.Hour, ">"))
	o.send(t, proto.Command{Op: proto.OpSubscribe, ID: ptr[int64](3), Channels: []string{"ticker.A", "ticker.B", "ticker.C"}})
	if w := o.expect(t, proto.TypeSubscribed); len(w.Channels) != 3 {
		t.Fatalf("other subject: %s", w.raw)
	}
	// A re-subscribe costs no slot; an unsubscribe, or a closed
	// connection, gives slots back.
	b.send(t, proto.Command{Op: proto.OpSubscribe, ID: ptr[int64](4), Channels: []string{"ticker.C"}})
	b.expect(t, proto.TypeSubscribed)
	a.send(t, proto.Command{Op: proto.OpUnsubscribe, ID: ptr[int64](5), Channels: []string{"ticker.A"}})
	a.expect(t, proto.TypeUnsubscribed)
	b.send(t, proto.Command{Op: proto.OpSubscribe, ID: ptr[int64](6), Channels: []string{"ticker.D"}})
	b.expect(t, proto.TypeSubscribed)
	_ = a.ws.NetConn().Close()
	waitFor(t, "a's slot back", func() bool {
		e.srv.admit.mu.Lock()
		defer e.srv.admit.mu.Unlock()
		return e.srv.admit.subs["greedy"] == 2
	})
}

// A trade feed gap (feed seqs the node never had, a seq jump or messages
// its NATS client dropped) is reported to subscribers as a gap message
// before the next update, also in a resume replay, and counted. Before:
// the per-connection chain stayed intact and hid the lost trades.
func TestTradeFeedGapIsReported(t *testing.T) {
	e := newTestEnv(t)
	tok := e.token(t, "tape", time.Hour, ">")
	c := e.connect(t, "json", tok)
	c.send(t, proto.Command{Op: proto.OpSubscribe, ID: ptr[int64](1), Channels: []string{"trade.BTC-USD"}})
	c.expect(t, proto.TypeSubscribed)
	trade := func(seq uint64) {
		e.publish(t, "trade.BTC-USD", seq, proto.FeedUpdate, &proto.Trade{Symbol: "BTC-USD", ID: int64(seq), Price: "1", Size: "1", Side: "sell", TS: 1})
	}
	for _, seq := range []uint64{1, 2, 5, 6} {
		trade(seq)
	}
	e.flush(t)
	k := &chainChecker{kind: proto.KindTrade}
	for k.last < 6 {
		k.take(t, c.next(t))
	}
	if k.gaps != 1 || len(k.trade) != 4 {
		t.Fatalf("%d gaps, %d trades; want 1 gap and 4 trades", k.gaps, len(k.trade))
	}
	if n := e.srv.metrics.feedGapCount(proto.KindTrade); n != 1 {
		t.Fatalf("tickgate_feed_gaps_total{kind=trade} = %v, want 1", n)
	}

	// A client resuming from seq 1 gets the same gap in the replay.
	r := e.connect(t, "msgpack", tok)
	r.send(t, proto.Command{Op: proto.OpSubscribe, ID: ptr[int64](2), Channels: []string{"trade.BTC-USD"}, Since: map[string]uint64{"trade.BTC-USD": 1}})
	if w := r.expect(t, proto.TypeSubscribed); len(w.Resumed) != 1 {
		t.Fatalf("resume: %s", w.raw)
	}
	want := []string{"update 2 prev 1", "gap 3..4", "update 5 prev 2", "update 6 prev 5"}
	for _, s := range want {
		w := r.next(t)
		got := fmt.Sprintf("gap %d..%d", w.From, w.To)
		if w.Type == proto.TypeUpdate {
			got = fmt.Sprintf("update %d prev %d", w.Seq, *w.Prev)
		}
		if got != s {
			t.Fatalf("replay: got %q (%s), want %q", got, w.raw, s)
		}
	}
}

// bigBook is a feed snapshot of levels levels per side.
func bigBook(symbol string, levels int) *proto.Book {
	b := &proto.Book{Symbol: symbol, TS: 1}
	for i := range levels {
		b.Bids = append(b.Bids, proto.Level{fmt.Sprintf("%d.5", 50000-i), "1.25"})
		b.Asks = append(b.Asks, proto.Level{fmt.Sprintf("%d.5", 50001+i), "0.75"})
	}
	b.Checksum = proto.BookChecksum(b.Bids, b.Asks)
	return b
}

// Joiners between two feed messages share one snapshot encoding per
// codec, and the encoding happens outside the channel's lock. Before:
// every subscribe copied and encoded the book under the channel's lock.
func TestSnapshotEncodedOncePerSeqAndCodec(t *testing.T) {
	s := hubFixture(t)
	ch := proto.Channel{Kind: proto.KindBook, Symbol: "BIG"}
	first := s.bareConn(codec.JSON())
	s.joinFor(t, first, ch, joinOptions{snapshot: true})
	s.hub.onFeed(ch, feedMsg(1, true, bigBook("BIG", 2000)))
	queued(first)

	heads := map[int][]byte{} // codec index → the first joiner's frame
	for i := range 50 {
		cd := codec.JSON()
		if i%2 == 1 {
			cd = codec.Msgpack()
		}
		c := s.bareConn(cd)
		s.joinFor(t, c, ch, joinOptions{snapshot: true})
		var b batch
		c.out.take(&b, time.Now())
		if b.len() != 1 || b.taken()[0].frame == nil {
			t.Fatalf("joiner %d took %d items, want its snapshot frame", i, b.len())
		}
		f := b.taken()[0].frame
		if h, ok := heads[c.codecIdx]; !ok {
			heads[c.codecIdx] = f
		} else if &h[0] != &f[0] {
			t.Fatalf("joiner %d got its own encoding of the snapshot", i)
		}
	}
	// A feed message changes the state: the next joiners get a new
	// snapshot (copied from the state this time, not a feed event's), and
	// share it again.
	s.hub.onFeed(ch, feedMsg(2, false, &proto.Book{Bids: []proto.Level{{"50000.5", "2"}}, Asks: []proto.Level{}, TS: 2}))
	var after []byte
	for i := range 10 {
		c := s.bareConn(codec.JSON())
		s.joinFor(t, c, ch, joinOptions{snapshot: true})
		var b batch
		c.out.take(&b, time.Now())
		f := b.taken()[0].frame
		switch {
		case &f[0] == &heads[0][0]:
			t.Fatal("a joiner after a feed message got the old snapshot")
		case i == 0:
			after = f
		case &f[0] != &after[0]:
			t.Fatalf("joiner %d after the feed message got its own encoding", i)
		}
	}

	// The encoding needs no channel lock: with it held, a planned head is
	// still filled.
	c2 := s.bareConn(codec.Msgpack())
	e := s.hub.lookup(ch)
	e.snap = nil
	sub := c2.newSubscription(e, feed.Resolved(nil))
	plan := e.join(s.hub, sub, joinOptions{snapshot: true}).plan
	e.mu.Lock()
	done := make(chan int, 1)
	go func() { done <- sub.fillHead(s.codecs, plan) }()
	select {
	case n := <-done:
		if n < 2000*2*10 {
			t.Errorf("filled %d bytes, want the whole book", n)
		}
	case <-time.After(5 * time.Second):
		t.Error("fillHead waits for the channel's lock")
	}
	e.mu.Unlock()
}

// feedMsg is a book feed message for hub tests.
func feedMsg(seq uint64, snapshot bool, b *proto.Book) *feed.Message {
	return &feed.Message{Seq: seq, Snapshot: snapshot, Data: b}
}

// A re-subscribe loop on a big book is bounded by the snapshot byte
// budget: rate_limited, then 1008; the loop never costs the node more than
// the budget, and the connection's subscription keeps working until then.
func TestResubscribeLoopIsRateLimited(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.SnapshotRate, c.SnapshotBurst, c.MaxStrikes = 50<<10, 400<<10, 5 })
	bch := proto.Channel{Kind: proto.KindBook, Symbol: "BIG"}
	holder := e.connect(t, "json", e.token(t, "holder", time.Hour, ">"))
	holder.send(t, proto.Command{Op: proto.OpSubscribe, ID: ptr[int64](1), Channels: []string{"book.BIG"}})
	holder.expect(t, proto.TypeSubscribed)
	e.publishMessage(t, bch, proto.FeedMessage{Seq: 1, Type: proto.FeedSnapshot, Data: bigBook("BIG", 2000)})
	holder.expect(t, proto.TypeSnapshot)

	c := e.connect(t, "json", e.token(t, "looper", time.Hour, ">"))
	snapshots := 0
	for id := int64(1); ; id++ {
		if id > 60 {
			t.Fatalf("%d snapshots of a ~80 KB book and never rate limited by a 400 KB budget", snapshots)
		}
		c.send(t, proto.Command{Op: proto.OpSubscribe, ID: ptr(id), Channels: []string{"book.BIG"}})
		w := c.next(t)
		if w.Type == proto.TypeSubscribed {
			c.expect(t, proto.TypeSnapshot)
			snapshots++
			continue
		}
		if w.Type != proto.TypeError || w.Code != string(proto.CodeRateLimited) || w.Channel != "book.BIG" {
			t.Fatalf("got %s, want subscribed or rate_limited", w.raw)
		}
		break
	}
	t.Logf("%d snapshots before the first refusal", snapshots)
	if snapshots < 3 || snapshots > 8 {
		t.Fatalf("%d snapshots of a ~80 KB book within a 400 KB burst", snapshots)
	}
	// The subscription from before the refusal still delivers.
	e.publishMessage(t, bch, proto.FeedMessage{Seq: 2, Type: proto.FeedUpdate, Data: &proto.Book{Bids: []proto.Level{{"1.5", "1"}}, Asks: []proto.Level{}, TS: 2}})
	if u := c.expect(t, proto.TypeUpdate); u.Seq != 2 || *u.Prev != 1 {
		t.Fatalf("update after the refusal: %s", u.raw)
	}
	// Keep looping: strikes close it with 1008. The close can reach the
	// socket between two sends, so a send that fails waits for it too.
	for id := int64(1000); id < 1100; id++ {
		b, err := c.codec.Append(nil, proto.Command{Op: proto.OpSubscribe, ID: ptr(id), Channels: []string{"book.BIG"}})
		if err != nil {
			t.Fatal(err)
		}
		wait := 20 * time.Millisecond
		if err := c.ws.WriteMessage(gws.OpcodeText, b); err != nil {
			wait = 5 * time.Second // the node closed the socket: its close frame is on the way
		}
		select {
		case err := <-c.closed:
			c.closed <- err
			code, reason := c.waitClose(t, time.Second)
			if code != uint16(proto.ClosePolicy) || !strings.Contains(reason, "snapshot") {
				t.Fatalf("closed %d %q, want 1008 for snapshot rate abuse", code, reason)
			}
			return
		case <-time.After(wait):
			if wait > 20*time.Millisecond {
				t.Fatal("a send failed and no close came")
			}
		}
	}
	t.Fatal("a re-subscribe loop was never closed")
}

// The byte budget refills at its rate up to its burst and may go into
// debt.
func TestByteBudget(t *testing.T) {
	t0 := time.Unix(100, 0)
	tests := map[string]struct {
		charges []int
		after   time.Duration
		want    bool
	}{
		"fresh":                  {nil, 0, true},
		"spent exactly":          {[]int{1000}, 0, false},
		"in debt":                {[]int{600, 600}, 0, false},
		"refilled":               {[]int{1000}, 100 * time.Millisecond, true},
		"debt not yet repaid":    {[]int{3000}, time.Second, false},
		"debt repaid":            {[]int{3000}, 2100 * time.Millisecond, true},
		"refill capped at burst": {[]int{0}, time.Hour, true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			b := newByteBudget(1000, 1000, t0)
			for _, n := range tc.charges {
				b.charge(n)
			}
			if got := b.allow(t0.Add(tc.after)); got != tc.want {
				t.Fatalf("allow = %v, want %v (tokens %v)", got, tc.want, b.tokens)
			}
			if b.tokens > b.burst {
				t.Fatalf("tokens %v above the burst", b.tokens)
			}
		})
	}
}

// BenchmarkJoinBigBook is the node's cost of one (re)subscribe to a
// 5,000-level book: "shared" while the book does not change (every joiner
// after the first takes the cached snapshot frame), "cold" when a feed
// message changed the book since the last join (a copy of the book and an
// encoding, which before the snapshot cache every subscribe paid).
func BenchmarkJoinBigBook(b *testing.B) {
	for _, cold := range []bool{false, true} {
		name := "shared"
		if cold {
			name = "cold"
		}
		b.Run(name, func(b *testing.B) {
			s := hubFixture(b)
			ch := proto.Channel{Kind: proto.KindBook, Symbol: "BIG"}
			c := s.bareConn(codec.JSON())
			sub := s.joinFor(b, c, ch, joinOptions{snapshot: true})
			s.hub.onFeed(ch, feedMsg(1, true, bigBook("BIG", 5000)))
			e := sub.entry
			var bt batch
			b.ReportAllocs()
			for b.Loop() {
				if cold {
					e.mu.Lock()
					e.snap = nil // as after a feed message
					e.mu.Unlock()
				}
				sub.fillHead(s.codecs, e.join(s.hub, sub, joinOptions{snapshot: true}).plan)
				sub.ungate(time.Now)
				c.out.take(&bt, time.Time{})
				c.out.wrote()
				bt.reset()
			}
		})
	}
}

// failedSource is a feed whose every new hold has failed by the time
// AcquireAsync returns, as when NATS fails the interest between the two.
type failedSource struct{}

func (failedSource) AcquireAsync(ch proto.Channel, _ feed.Handler) (*feed.Pending, error) {
	return feed.Resolved(fmt.Errorf("%w: %s: flush timeout", feed.ErrSubscribe, ch)), nil
}
func (failedSource) Connected() bool { return true }

// A hold that failed before the subscribe looked at it is no ack: the
// channel gets unavailable, and nothing is held for it. Found in review:
// the ack went out, and the later unsubscribe gave back another client's
// NATS interest.
func TestSubscribeWithAHoldFailedAlready(t *testing.T) {
	s := hubFixture(t)
	s.hub.src = failedSource{}
	c := s.bareConn(codec.JSON())
	all, err := auth.ParsePattern(">")
	if err != nil {
		t.Fatal(err)
	}
	c.claims.Patterns = []auth.Pattern{all}
	c.cmdMu.Lock()
	c.run(&proto.Command{Op: proto.OpSubscribe, ID: ptr[int64](1), Channels: []string{"ticker.X"}})
	c.cmdMu.Unlock()
	var got []wire
	for _, f := range queued(c) {
		var w wire
		if err := codec.DecodeMessage(codec.JSON(), f, &w); err != nil {
			t.Fatal(err)
		}
		got = append(got, w)
	}
	if len(got) != 1 || got[0].Code != string(proto.CodeUnavailable) || got[0].Channel != "ticker.X" {
		t.Fatalf("got %+v, want one unavailable for ticker.X", got)
	}
	if c.subs.len() != 0 || s.hub.lookup(proto.Channel{Kind: proto.KindTicker, Symbol: "X"}) != nil || s.admit.subs["t"] != 0 {
		t.Fatalf("left behind: %d subscriptions, hub entry %v, %d slots", c.subs.len(), s.hub.lookup(proto.Channel{Kind: proto.KindTicker, Symbol: "X"}) != nil, s.admit.subs["t"])
	}
}
