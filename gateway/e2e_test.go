package gateway

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/lxzan/gws"

	"github.com/tickgate/tickgate/internal/booktest"
	"github.com/tickgate/tickgate/proto"
)

// chainChecker follows one channel as a client does: the first message
// (snapshot, or for trades an update with prev 0) and then an unbroken
// prev chain, with the book rebuilt and its checksum checked after every
// message. On a trade channel, a gap message must name exactly the feed
// seqs between the last trade and the next one.
type chainChecker struct {
	kind   proto.Kind
	last   uint64
	seen   int
	book   *booktest.Book
	trade  []int64
	folded int    // updates that folded several feed messages
	gaps   int    // gap messages
	gapTo  uint64 // the last gap's to, until the update after it
}

func (k *chainChecker) take(t *testing.T, w wire) {
	t.Helper()
	if w.Type == proto.TypeGap {
		if k.kind != proto.KindTrade || w.From == 0 || w.To < w.From || k.seen > 0 && w.From != k.last+1 {
			t.Fatalf("%s: gap %s after seq %d", w.Channel, w.raw, k.last)
		}
		k.gaps++
		k.gapTo = w.To
		return
	}
	if k.gapTo != 0 {
		if w.Seq != k.gapTo+1 {
			t.Fatalf("%s: seq %d after a gap to %d", w.Channel, w.Seq, k.gapTo)
		}
		k.gapTo = 0
	}
	switch {
	case k.seen == 0 && k.kind.HasSnapshot():
		if w.Type != proto.TypeSnapshot {
			t.Fatalf("%s: first message %s, want snapshot: %s", w.Channel, w.Type, w.raw)
		}
	case k.seen == 0:
		if w.Type != proto.TypeUpdate || w.Prev == nil || *w.Prev != 0 {
			t.Fatalf("%s: first trade %s, want update with prev 0", w.Channel, w.raw)
		}
	default:
		if w.Type != proto.TypeUpdate {
			t.Fatalf("%s: got %s after the first message", w.Channel, w.raw)
		}
		if w.Prev == nil || *w.Prev != k.last {
			t.Fatalf("%s: prev chain broken: last %d, got %s", w.Channel, k.last, w.raw)
		}
	}
	if w.Type == proto.TypeUpdate {
		// Trades are never merged. A ticker or book update folds n feed
		// messages; with a gapless feed, exactly seq - prev of them.
		if (k.kind == proto.KindTrade && w.N != 1) || (k.kind != proto.KindTrade && uint64(w.N) != w.Seq-*w.Prev) {
			t.Fatalf("%s: n = %d for seq %d prev %d", w.Channel, w.N, w.Seq, *w.Prev)
		}
		if w.N > 1 {
			k.folded++
		}
	}
	if w.Seq <= k.last {
		t.Fatalf("%s: seq %d not after %d", w.Channel, w.Seq, k.last)
	}
	k.last = w.Seq
	k.seen++
	switch k.kind {
	case proto.KindBook:
		takeBook(t, k.book, w)
	case proto.KindTrade:
		k.trade = append(k.trade, w.Data.ID)
	}
}

func TestEndToEndBothCodecs(t *testing.T) {
	for _, codecName := range []string{"json", "msgpack"} {
		t.Run(codecName, func(t *testing.T) {
			e := newTestEnv(t)
			c := e.connect(t, codecName, e.token(t, "alice", time.Hour, ">"))
			chans := []string{"ticker.BTC-USD", "book.BTC-USD", "trade.BTC-USD"}
			c.send(t, proto.Command{Op: proto.OpSubscribe, ID: ptr[int64](1), Channels: chans})
			ack := c.expect(t, proto.TypeSubscribed)
			if ack.ID == nil || *ack.ID != 1 || !slices.Equal(ack.Channels, chans) {
				t.Fatalf("ack %s", ack.raw)
			}

			const n = 60
			bf := booktest.NewFeed("BTC-USD", 7)
			now := time.Now().UnixNano()
			e.publish(t, "book.BTC-USD", 0, "", nil) // a malformed message (seq 0) must be dropped, nothing else
			book := bf.Snapshot(now)
			e.publishMessage(t, proto.Channel{Kind: proto.KindBook, Symbol: "BTC-USD"}, book)
			for i := 1; i <= n; i++ {
				ts := now + int64(i)
				e.publish(t, "ticker.BTC-USD", uint64(i), proto.FeedUpdate, &proto.Ticker{
					Symbol: "BTC-USD", Bid: fmt.Sprintf("640%02d.10", i), BidSize: "1.5", Ask: fmt.Sprintf("640%02d.20", i),
					AskSize: "0.7", Last: "64000.15", Volume: "1234.5", TS: ts,
				})
				e.publishMessage(t, proto.Channel{Kind: proto.KindBook, Symbol: "BTC-USD"}, bf.Update(ts))
				e.publish(t, "trade.BTC-USD", uint64(i), proto.FeedUpdate, &proto.Trade{
					Symbol: "BTC-USD", ID: int64(1000 + i), Price: "64000.15", Size: "0.01", Side: proto.SideBuy, TS: ts,
				})
			}
			e.flush(t)

			checkers := map[string]*chainChecker{
				"ticker.BTC-USD": {kind: proto.KindTicker},
				"book.BTC-USD":   {kind: proto.KindBook, book: booktest.New()},
				"trade.BTC-USD":  {kind: proto.KindTrade},
			}
			wantOp := gws.OpcodeText
			if codecName == "msgpack" {
				wantOp = gws.OpcodeBinary
			}
			for checkers["ticker.BTC-USD"].last < n || checkers["book.BTC-USD"].last < n+1 || checkers["trade.BTC-USD"].last < n {
				w := c.next(t)
				if w.opcode != wantOp {
					t.Fatalf("%s message in a %v frame", codecName, w.opcode)
				}
				k := checkers[w.Channel]
				if k == nil {
					t.Fatalf("unexpected message %s", w.raw)
				}
				k.take(t, w)
				if w.Channel == "ticker.BTC-USD" && w.Data.Symbol != "BTC-USD" {
					t.Fatalf("ticker data %s", w.raw)
				}
			}
			trades := checkers["trade.BTC-USD"].trade
			if len(trades) != n {
				t.Fatalf("%d trades, want %d", len(trades), n)
			}
			for i, id := range trades {
				if id != int64(1001+i) {
					t.Fatalf("trade %d has id %d: not once and in order", i, id)
				}
			}
			c.quiet(t, 200*time.Millisecond)
		})
	}
}

// A client that keeps up gets every update on its own: n = 1, in the
// shared frames.
func TestPacedClientGetsEveryUpdate(t *testing.T) {
	e := newTestEnv(t)
	c := e.connect(t, "msgpack", e.token(t, "pace", time.Hour, ">"))
	c.send(t, proto.Command{Op: proto.OpSubscribe, ID: ptr[int64](1), Channels: []string{"book.BTC-USD", "ticker.BTC-USD"}})
	c.expect(t, proto.TypeSubscribed)
	bch := proto.Channel{Kind: proto.KindBook, Symbol: "BTC-USD"}
	bf := booktest.NewFeed("BTC-USD", 5)
	k := &chainChecker{kind: proto.KindBook, book: booktest.New()}
	kt := &chainChecker{kind: proto.KindTicker}
	e.publishMessage(t, bch, bf.Snapshot(1))
	k.take(t, c.expect(t, proto.TypeSnapshot))
	for i := 1; i <= 40; i++ {
		e.publishMessage(t, bch, bf.Update(int64(i)))
		k.take(t, c.expect(t, proto.TypeUpdate))
		e.publish(t, "ticker.BTC-USD", uint64(i), proto.FeedUpdate, &proto.Ticker{Symbol: "BTC-USD", Bid: "1", BidSize: "1", Ask: "2", AskSize: "1", Last: "1.5", Volume: "1", TS: int64(i)})
		kt.take(t, c.next(t))
	}
	if k.folded+kt.folded != 0 {
		t.Fatalf("a client that keeps up got %d folded updates", k.folded+kt.folded)
	}
}

// A client joining a channel the node already holds gets the current state
// as a snapshot, then updates chained to it.
func TestLateJoinerGetsSnapshotThenChain(t *testing.T) {
	e := newTestEnv(t)
	tok := e.token(t, "bob", time.Hour, "book.*", "ticker.*")
	first := e.connect(t, "json", tok)
	first.send(t, proto.Command{Op: proto.OpSubscribe, ID: ptr[int64](1), Channels: []string{"book.ETH-USD"}})
	first.expect(t, proto.TypeSubscribed)
	bch := proto.Channel{Kind: proto.KindBook, Symbol: "ETH-USD"}
	bf := booktest.NewFeed("ETH-USD", 3)
	e.publishMessage(t, bch, bf.Snapshot(1))
	for i := range 10 {
		e.publishMessage(t, bch, bf.Update(int64(i)))
	}
	e.flush(t)
	k1 := &chainChecker{kind: proto.KindBook, book: booktest.New()}
	for k1.last < 11 {
		k1.take(t, first.next(t))
	}

	late := e.connect(t, "msgpack", tok)
	late.send(t, proto.Command{Op: proto.OpSubscribe, ID: ptr[int64](5), Channels: []string{"book.ETH-USD"}})
	late.expect(t, proto.TypeSubscribed)
	k2 := &chainChecker{kind: proto.KindBook, book: booktest.New()}
	snap := late.expect(t, proto.TypeSnapshot)
	if snap.Seq != 11 {
		t.Fatalf("late snapshot seq %d, want 11", snap.Seq)
	}
	k2.take(t, snap)
	for i := range 5 {
		e.publishMessage(t, bch, bf.Update(int64(100+i)))
	}
	e.flush(t)
	for k2.last < 16 {
		k2.take(t, late.next(t))
	}
	for k1.last < 16 {
		k1.take(t, first.next(t))
	}
	if k1.book.Checksum() != k2.book.Checksum() || k1.book.Checksum() != bf.Book().Checksum() {
		t.Fatal("clients did not converge to the publisher's book")
	}
}

// A subscriber waiting for state gets the first ticker as a snapshot; with
// snapshot:false it gets updates from prev 0.
func TestTickerSnapshotFirstAndSnapshotFalse(t *testing.T) {
	e := newTestEnv(t)
	tok := e.token(t, "carol", time.Hour, "ticker.*")
	a := e.connect(t, "json", tok)
	b := e.connect(t, "json", tok)
	a.send(t, proto.Command{Op: proto.OpSubscribe, ID: ptr[int64](1), Channels: []string{"ticker.SOL-USD"}})
	a.expect(t, proto.TypeSubscribed)
	b.send(t, proto.Command{Op: proto.OpSubscribe, ID: ptr[int64](1), Channels: []string{"ticker.SOL-USD"}, Snapshot: ptr(false)})
	b.expect(t, proto.TypeSubscribed)
	tick := func(seq uint64) {
		e.publish(t, "ticker.SOL-USD", seq, proto.FeedUpdate, &proto.Ticker{Symbol: "SOL-USD", Bid: "150.1", BidSize: "1", Ask: "150.2", AskSize: "1", Last: "150.15", Volume: "10", TS: int64(seq)})
		e.flush(t)
	}
	tick(1)
	if w := a.expect(t, proto.TypeSnapshot); w.Seq != 1 || w.Data.Bid != "150.1" {
		t.Fatalf("snapshot %s", w.raw)
	}
	if w := b.expect(t, proto.TypeUpdate); w.Seq != 1 || *w.Prev != 0 {
		t.Fatalf("snapshot:false first update %s", w.raw)
	}
	tick(2)
	if w := a.expect(t, proto.TypeUpdate); w.Seq != 2 || *w.Prev != 1 {
		t.Fatalf("update %s", w.raw)
	}
	if w := b.expect(t, proto.TypeUpdate); w.Seq != 2 || *w.Prev != 1 {
		t.Fatalf("snapshot:false second update %s", w.raw)
	}
}

// A feed gap on a book makes the node wait for the next feed snapshot and
// send it to subscribers; a ticker simply continues.
func TestFeedGap(t *testing.T) {
	e := newTestEnv(t)
	c := e.connect(t, "json", e.token(t, "dan", time.Hour, ">"))
	c.send(t, proto.Command{Op: proto.OpSubscribe, ID: ptr[int64](1), Channels: []string{"book.BTC-USD", "ticker.BTC-USD"}})
	c.expect(t, proto.TypeSubscribed)
	bch := proto.Channel{Kind: proto.KindBook, Symbol: "BTC-USD"}
	bf := booktest.NewFeed("BTC-USD", 11)
	k := &chainChecker{kind: proto.KindBook, book: booktest.New()}
	e.publishMessage(t, bch, bf.Snapshot(1))
	e.publishMessage(t, bch, bf.Update(2))
	bf.Update(3) // lost: seq 3 never published
	e.publishMessage(t, bch, bf.Update(4))
	tick := func(seq uint64) {
		e.publish(t, "ticker.BTC-USD", seq, proto.FeedUpdate, &proto.Ticker{Symbol: "BTC-USD", Bid: "1", BidSize: "1", Ask: "2", AskSize: "1", Last: "1.5", Volume: "1", TS: 1})
	}
	tick(1)
	tick(5) // a ticker gap
	e.flush(t)
	var tickerSeqs []uint64
	resyncing := false
	for k.last < 2 || len(tickerSeqs) < 2 || !resyncing {
		w := c.next(t)
		if w.Type == proto.TypeStatus {
			// Book seq 4 is not applicable: no data goes out, the book is
			// resyncing (contract 1.1 status) until the publisher's next
			// snapshot.
			if resyncing || w.Channel != "book.BTC-USD" || w.State != proto.StateResyncing || w.Reason != proto.ReasonFeedGap {
				t.Fatalf("got %s, want book.BTC-USD resyncing feed_gap once", w.raw)
			}
			resyncing = true
			continue
		}
		if w.Channel == "ticker.BTC-USD" {
			tickerSeqs = append(tickerSeqs, w.Seq)
			if len(tickerSeqs) == 2 && (w.Type != proto.TypeUpdate || *w.Prev != 1) {
				t.Fatalf("ticker after a gap: %s", w.raw)
			}
			continue
		}
		k.take(t, w)
	}
	c.quiet(t, 200*time.Millisecond)
	e.publishMessage(t, bch, bf.Snapshot(5))
	e.flush(t)
	w := c.expect(t, proto.TypeSnapshot)
	if w.Seq != 5 {
		t.Fatalf("fresh snapshot seq %d", w.Seq)
	}
	if w := c.expect(t, proto.TypeStatus); w.State != proto.StateLive || w.Reason != "" {
		t.Fatalf("got %s, want live after the snapshot", w.raw)
	}
	k.book.Reset(w.Data.Bids, w.Data.Asks)
	if k.book.Checksum() != w.Data.Checksum || w.Data.Checksum != bf.Book().Checksum() {
		t.Fatal("fresh snapshot checksum")
	}
}

// A subscriber still waiting for its first snapshot on an event channel
// (recent trades asked for on a channel without trades yet, a candle
// channel without bars) is told of the feed seqs the node never had as
// every other subscriber is: its snapshot first, then the gap, then the
// updates; also when the hole showed in a publisher heartbeat, an event
// with nothing to start a snapshot from. Before: its snapshot came at the
// seq after the hole, and nothing said the hole was there.
func TestFeedGapReachesSnapshotWaiters(t *testing.T) {
	bar := func(sym string, seq uint64) any {
		return &proto.Candle{Symbol: sym, Interval: "1m", Start: 60_000_000_000, Open: "1", High: "1", Low: "1", Close: "1", Volume: "1", Trades: int64(seq), TS: 1}
	}
	trade := func(sym string, seq uint64) any {
		return &proto.Trade{Symbol: sym, ID: int64(seq), Price: "1", Size: "1", Side: "buy", TS: 1}
	}
	for name, tc := range map[string]struct {
		channel    string
		recent     *int64
		data       func(sym string, seq uint64) any
		heartbeats []uint64 // before the data
		seqs       []uint64 // the data
		want       []string
	}{
		"recent trades, the hole before a trade": {"trade.W", ptr[int64](3), trade, []uint64{5}, []uint64{7, 8},
			[]string{"snapshot 7", "gap 6..6", "update 8 prev 7"}},
		"candle bars, the hole before a bar": {"candle.1m.W", nil, bar, []uint64{5}, []uint64{7, 8},
			[]string{"snapshot 7", "gap 6..6", "update 8 prev 7"}},
		"recent trades, the hole in a heartbeat": {"trade.W", ptr[int64](3), trade, []uint64{5, 7}, []uint64{8, 9},
			[]string{"snapshot 8", "gap 6..7", "update 9 prev 8"}},
		"candle bars, holes in a heartbeat and before a bar": {"candle.1m.W", nil, bar, []uint64{5, 7}, []uint64{9, 10},
			[]string{"snapshot 9", "gap 6..8", "update 10 prev 9"}},
		// A hole of the publisher's older run is not told after a restart.
		"recent trades, a restart after a heartbeat's hole": {"trade.W", ptr[int64](3), trade, []uint64{1000, 1007}, []uint64{1, 2},
			[]string{"snapshot 1", "update 2 prev 1"}},
		"candle bars, a restart after a heartbeat's hole": {"candle.1m.W", nil, bar, []uint64{1000, 1007}, []uint64{1, 2},
			[]string{"snapshot 1", "update 2 prev 1"}},
	} {
		t.Run(name, func(t *testing.T) {
			e := newTestEnv(t)
			c := e.connect(t, "json", e.token(t, "waiter", time.Hour, ">"))
			c.send(t, proto.Command{Op: proto.OpSubscribe, ID: ptr[int64](1), Channels: []string{tc.channel}, Recent: tc.recent})
			c.expect(t, proto.TypeSubscribed)
			ch, err := proto.ParseChannel(tc.channel)
			if err != nil {
				t.Fatal(err)
			}
			for _, seq := range tc.heartbeats {
				e.publishMessage(t, ch, proto.FeedMessage{Seq: seq, Type: proto.FeedHeartbeat})
			}
			for _, seq := range tc.seqs {
				e.publish(t, tc.channel, seq, proto.FeedUpdate, tc.data("W", seq))
			}
			e.flush(t)
			var got []string
			for len(got) < len(tc.want) {
				w := c.next(t)
				switch w.Type {
				case proto.TypeSnapshot:
					got = append(got, fmt.Sprintf("snapshot %d", w.Seq))
				case proto.TypeGap:
					got = append(got, fmt.Sprintf("gap %d..%d", w.From, w.To))
				case proto.TypeUpdate:
					got = append(got, fmt.Sprintf("update %d prev %d", w.Seq, *w.Prev))
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// throttle_ms holds a channel to one update per interval, folded by the
// kind's rule, and the final state always arrives.
func TestThrottle(t *testing.T) {
	e := newTestEnv(t)
	c := e.connect(t, "json", e.token(t, "slowpoke", time.Hour, ">"))
	c.send(t, proto.Command{Op: proto.OpSubscribe, ID: ptr[int64](1), Channels: []string{"ticker.ETH-USD", "trade.ETH-USD"}, ThrottleMS: ptr[int64](250)})
	c.expect(t, proto.TypeSubscribed)
	const n = 40
	start := time.Now()
	for i := 1; i <= n; i++ {
		e.publish(t, "ticker.ETH-USD", uint64(i), proto.FeedUpdate, &proto.Ticker{Symbol: "ETH-USD", Bid: fmt.Sprint(i), BidSize: "1", Ask: "2", AskSize: "1", Last: "1", Volume: "1", TS: int64(i)})
		e.publish(t, "trade.ETH-USD", uint64(i), proto.FeedUpdate, &proto.Trade{Symbol: "ETH-USD", ID: int64(i), Price: "1", Size: "1", Side: "sell", TS: int64(i)})
		time.Sleep(25 * time.Millisecond) // 1 s of feed
	}
	e.flush(t)
	kt := &chainChecker{kind: proto.KindTicker}
	ktr := &chainChecker{kind: proto.KindTrade}
	tickerWrites := 0
	for kt.last < n || ktr.last < n {
		w := c.next(t)
		if w.Channel == "ticker.ETH-USD" {
			kt.take(t, w)
			tickerWrites++
			if w.Seq == n && w.Data.Bid != fmt.Sprint(n) {
				t.Fatalf("final ticker %s", w.raw)
			}
			continue
		}
		ktr.take(t, w)
	}
	elapsed := time.Since(start)
	// 1 s of feed at one write per 250 ms: a handful, never all 40.
	if max := int(elapsed/(250*time.Millisecond)) + 2; tickerWrites > max {
		t.Fatalf("%d ticker writes in %v with throttle 250ms", tickerWrites, elapsed)
	}
	if len(ktr.trade) != n {
		t.Fatalf("%d trades, want every one of %d", len(ktr.trade), n)
	}
}

// A publisher that restarts and counts from seq 1 again: book subscribers
// get the new run's book as a fresh snapshot, ticker and trade subscribers
// continue with an intact prev chain, and nothing of the new run is
// dropped as a duplicate of the old one.
func TestPublisherRestart(t *testing.T) {
	e := newTestEnv(t)
	c := e.connect(t, "json", e.token(t, "ines", time.Hour, ">"))
	c.send(t, proto.Command{Op: proto.OpSubscribe, ID: ptr[int64](1), Channels: []string{"book.BTC-USD", "ticker.BTC-USD", "trade.BTC-USD"}})
	c.expect(t, proto.TypeSubscribed)
	bch := proto.Channel{Kind: proto.KindBook, Symbol: "BTC-USD"}
	tick := func(seq uint64, bid string) {
		e.publish(t, "ticker.BTC-USD", seq, proto.FeedUpdate, &proto.Ticker{Symbol: "BTC-USD", Bid: bid, BidSize: "1", Ask: "70000", AskSize: "1", Last: bid, Volume: "1", TS: 1})
	}
	trade := func(seq uint64, id int64) {
		e.publish(t, "trade.BTC-USD", seq, proto.FeedUpdate, &proto.Trade{Symbol: "BTC-USD", ID: id, Price: "64000", Size: "1", Side: "buy", TS: 1})
	}
	run := func(bf *booktest.Feed, bid string, tradeID int64) {
		e.publishMessage(t, bch, bf.Snapshot(1))
		for seq := uint64(1); seq <= 3; seq++ {
			if seq > 1 {
				e.publishMessage(t, bch, bf.Update(int64(seq)))
			}
			tick(seq, bid)
			trade(seq, tradeID+int64(seq))
		}
		e.flush(t)
	}

	// The first run: seq 1..3 on every channel.
	first := booktest.NewFeed("BTC-USD", 21)
	run(first, "64000", 100)
	last := map[string]uint64{}
	book := booktest.New()
	var trades []int64
	for last["book.BTC-USD"] < 3 || last["ticker.BTC-USD"] < 3 || last["trade.BTC-USD"] < 3 {
		w := c.next(t)
		if w.Channel == "book.BTC-USD" {
			takeBook(t, book, w)
		}
		if w.Channel == "trade.BTC-USD" {
			trades = append(trades, w.Data.ID)
		}
		last[w.Channel] = w.Seq
	}

	// The publisher restarts: a new run from seq 1, with another book.
	second := booktest.NewFeed("BTC-USD", 22)
	run(second, "65000", 200)
	restarted := map[string]bool{}
	done := func() bool {
		return last["book.BTC-USD"] == 3 && book.Checksum() == second.Book().Checksum() && restarted["ticker.BTC-USD"] &&
			last["ticker.BTC-USD"] == 3 && last["trade.BTC-USD"] == 3 && len(trades) == 6
	}
	var tickerBid string
	for !done() {
		w := c.next(t)
		switch {
		case w.Type == proto.TypeSnapshot && w.Channel == "book.BTC-USD":
			if w.Seq != 1 || restarted[w.Channel] {
				t.Fatalf("book after the restart: %s", w.raw)
			}
			restarted[w.Channel] = true
		case w.Type != proto.TypeUpdate:
			t.Fatalf("after the restart: %s", w.raw)
		case w.Prev == nil || *w.Prev != last[w.Channel]:
			t.Fatalf("prev chain broken after the restart: last %d, got %s", last[w.Channel], w.raw)
		case !restarted[w.Channel]:
			// The first message of the new run on a ticker or trade
			// channel: seq starts over, prev is the old run's last.
			if w.Channel == "trade.BTC-USD" && w.Seq != 1 || w.Seq > 3 {
				t.Fatalf("first %s message after the restart: %s", w.Channel, w.raw)
			}
			restarted[w.Channel] = true
		case w.Seq <= last[w.Channel]:
			t.Fatalf("seq went back twice: last %d, got %s", last[w.Channel], w.raw)
		}
		switch w.Channel {
		case "book.BTC-USD":
			takeBook(t, book, w)
		case "trade.BTC-USD":
			trades = append(trades, w.Data.ID)
		case "ticker.BTC-USD":
			tickerBid = w.Data.Bid
		}
		last[w.Channel] = w.Seq
	}
	if want := []int64{101, 102, 103, 201, 202, 203}; !slices.Equal(trades, want) {
		t.Fatalf("trades %v, want %v: each once, in order", trades, want)
	}
	if tickerBid != "65000" {
		t.Fatalf("ticker bid %q after the restart, want the new run's", tickerBid)
	}

	// A client of the old run that held its seq 3 must not be told it is
	// up to date: the new run has reached seq 3 too, and its trades 201 to
	// 203 would be lost unseen. Seqs both runs reached cannot be resumed.
	c2 := e.connect(t, "json", e.token(t, "ines", time.Hour, ">"))
	c2.send(t, proto.Command{Op: proto.OpSubscribe, ID: ptr[int64](2), Channels: []string{"trade.BTC-USD"}, Since: map[string]uint64{"trade.BTC-USD": 3}})
	c2.expect(t, proto.TypeSubscribed)
	if w := c2.expect(t, proto.TypeError); w.Code != "history_unavailable" {
		t.Fatalf("resume from the old run: %s", w.raw)
	}
}

// takeBook applies a book message to b and checks its checksum.
func takeBook(t *testing.T, b *booktest.Book, w wire) {
	t.Helper()
	if w.Type == proto.TypeSnapshot {
		b.Reset(w.Data.Bids, w.Data.Asks)
	} else {
		b.Update(w.Data.Bids, w.Data.Asks)
	}
	if got := b.Checksum(); got != w.Data.Checksum {
		t.Fatalf("%s seq %d: rebuilt book checksum %d, message says %d", w.Channel, w.Seq, got, w.Data.Checksum)
	}
}
