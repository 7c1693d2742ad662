package gateway

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/tickgate/tickgate/codec"
	"github.com/tickgate/tickgate/feed"
	"github.com/tickgate/tickgate/internal/booktest"
	"github.com/tickgate/tickgate/proto"
)

// simClient is a connection driven by hand: its "writer" takes a batch
// when the schedule says, stays busy writing it for a while (updates fold
// meanwhile), then hands the messages to a client model that checks them.
type simClient struct {
	c        *conn
	inflight []wire // taken, being written
	chains   map[string]*chainChecker
	ticker   wireData
	evicted  bool
}

func (sc *simClient) take(t *testing.T, now time.Time) {
	t.Helper()
	var b batch
	if closing := sc.c.out.take(&b, now); closing != nil {
		if closing.Code != proto.CloseSlowConsumer {
			t.Fatalf("closed with %d", closing.Code)
		}
		sc.evicted = true
	}
	for _, p := range b.taken() {
		f := p.frame
		if f == nil {
			f = sc.c.srv.codecs.frame(sc.c.variant, p.upd)
		}
		var w wire
		if err := codec.DecodeMessage(sc.c.codec, payloadOf(f), &w); err != nil {
			t.Fatal(err)
		}
		w.raw = payloadOf(f)
		sc.inflight = append(sc.inflight, w)
	}
}

// finish completes the write in flight: the client sees the messages.
func (sc *simClient) finish(t *testing.T) {
	t.Helper()
	sc.c.out.wrote()
	for _, w := range sc.inflight {
		sc.chains[w.Channel].take(t, w)
		if w.Channel == "ticker.P" {
			sc.ticker = w.Data
		}
	}
	sc.inflight = sc.inflight[:0]
}

// For any interleaving of feed messages and writer stalls, every client's
// view converges to the true latest ticker and book, with the checksum
// holding after every message, and trades arrive exactly once and in
// order, or the client is evicted.
func TestPropertyConvergence(t *testing.T) {
	seeds := uint64(300)
	if raceEnabled || testing.Short() {
		seeds = 40
	}
	for seed := uint64(1); seed <= seeds; seed++ {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) { convergence(t, seed) })
	}
}

func convergence(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 99))
	clock := time.Unix(1_700_000_000, 0)
	now := func() time.Time { return clock }
	s := hubFixture(t, func(c *Config) {
		c.Now = now
		c.TradeBufferMessages = 8 + rng.IntN(40)
	})
	chans := map[string]proto.Channel{
		"ticker.P": {Kind: proto.KindTicker, Symbol: "P"},
		"book.P":   {Kind: proto.KindBook, Symbol: "P"},
		"trade.P":  {Kind: proto.KindTrade, Symbol: "P"},
	}
	var clients []*simClient
	for i := range 4 {
		cd := codec.JSON()
		if i%2 == 1 {
			cd = codec.Msgpack()
		}
		sc := &simClient{c: s.bareConn(cd), chains: map[string]*chainChecker{
			"ticker.P": {kind: proto.KindTicker},
			"book.P":   {kind: proto.KindBook, book: booktest.New()},
			"trade.P":  {kind: proto.KindTrade},
		}}
		var throttle time.Duration
		if i == 3 {
			throttle = time.Duration(1+rng.IntN(50)) * time.Millisecond
		}
		for _, ch := range chans {
			s.joinFor(t, sc.c, ch, joinOptions{snapshot: true, throttle: throttle})
		}
		clients = append(clients, sc)
	}
	// Pace by client: how likely each one's writer moves on a step.
	speed := []int{100, 60, 20, 5}

	bf := booktest.NewFeed("P", seed)
	var tickSeq, tradeSeq uint64
	var lastTicker proto.Ticker
	publishBook := func(m proto.FeedMessage) {
		b := m.Data.(*proto.Book)
		s.hub.onFeed(chans["book.P"], &feed.Message{Seq: m.Seq, Snapshot: m.Type == proto.FeedSnapshot, Data: b})
	}
	publishBook(bf.Snapshot(1))
	for step := range 400 {
		clock = clock.Add(time.Duration(rng.IntN(5)) * time.Millisecond)
		switch r := rng.IntN(10); {
		case r < 4:
			publishBook(bf.Update(int64(step)))
		case r < 7:
			tickSeq++
			lastTicker = proto.Ticker{Symbol: "P", Bid: fmt.Sprint(100 + step), BidSize: "1", Ask: fmt.Sprint(101 + step), AskSize: "1", Last: "1", Volume: fmt.Sprint(step), TS: int64(step + 1)}
			tk := lastTicker
			s.hub.onFeed(chans["ticker.P"], &feed.Message{Seq: tickSeq, Data: &tk})
		default:
			tradeSeq++
			s.hub.onFeed(chans["trade.P"], &feed.Message{Seq: tradeSeq, Data: &proto.Trade{Symbol: "P", ID: int64(tradeSeq), Price: "1", Size: "1", Side: "buy", TS: int64(step + 1)}})
		}
		for i, sc := range clients {
			if sc.evicted || rng.IntN(100) >= speed[i] {
				continue
			}
			if len(sc.inflight) > 0 {
				sc.finish(t)
			} else {
				sc.take(t, clock)
			}
		}
	}
	// Let every writer catch up: the final state always arrives.
	for range 200 {
		clock = clock.Add(100 * time.Millisecond)
		for _, sc := range clients {
			if !sc.evicted {
				sc.finish(t)
				sc.take(t, clock)
			}
		}
	}
	for i, sc := range clients {
		if sc.evicted {
			if len(sc.chains["trade.P"].trade) >= int(tradeSeq) {
				t.Fatalf("client %d evicted though it had every trade", i)
			}
			continue
		}
		if got, want := sc.chains["book.P"].book.Checksum(), bf.Book().Checksum(); got != want {
			t.Fatalf("client %d: book did not converge", i)
		}
		if tickSeq > 0 && (sc.chains["ticker.P"].last != tickSeq || sc.ticker.Bid != lastTicker.Bid) {
			t.Fatalf("client %d: ticker at %d (%s), want %d (%s)", i, sc.chains["ticker.P"].last, sc.ticker.Bid, tickSeq, lastTicker.Bid)
		}
		trades := sc.chains["trade.P"].trade
		if uint64(len(trades)) != tradeSeq {
			t.Fatalf("client %d: %d trades, want %d", i, len(trades), tradeSeq)
		}
		for j, id := range trades {
			if id != int64(j+1) {
				t.Fatalf("client %d: trade %d has id %d", i, j, id)
			}
		}
	}
}
