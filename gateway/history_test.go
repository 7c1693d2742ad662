package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	dto "github.com/prometheus/client_model/go"

	"github.com/tickgate/tickgate/codec"
	"github.com/tickgate/tickgate/feed"
	"github.com/tickgate/tickgate/internal/booktest"
	"github.com/tickgate/tickgate/proto"
)

func (m *Metrics) historyReadCount(result string) float64 {
	var out dto.Metric
	if err := m.historyReads[result].Write(&out); err != nil {
		return -1
	}
	return out.GetCounter().GetValue()
}

// steps summarises the next n messages of c: "update seq/prev" or "gap
// from-to".
func steps(t *testing.T, c *testClient, n int) []string {
	t.Helper()
	out := make([]string, 0, n)
	for range n {
		w := c.next(t)
		switch w.Type {
		case proto.TypeUpdate:
			out = append(out, fmt.Sprintf("update %d/%d", w.Seq, *w.Prev))
		case proto.TypeGap:
			out = append(out, fmt.Sprintf("gap %d-%d", w.From, w.To))
		default:
			out = append(out, w.Type+" "+string(w.raw))
		}
	}
	return out
}

// Contract 1.1 durable resume: a node that never held a trade channel
// resumes a client from the history stream, with the stream's holes as
// gap messages, hands over to live trades without a gap or a duplicate,
// and later joins the stream with its own memory.
func TestResumeFromTheHistoryStream(t *testing.T) {
	e := newHistoryTestEnv(t)
	tok := e.token(t, "resumer", time.Hour, ">")
	trade := func(seq uint64) {
		e.publish(t, "trade.X", seq, proto.FeedUpdate, &proto.Trade{Symbol: "X", ID: int64(seq), Price: "1", Size: "1", Side: "buy", TS: 1})
	}
	// Trades 1..40 while no node holds the channel: only the stream has
	// them. 25 is never published.
	for seq := uint64(1); seq <= 40; seq++ {
		if seq != 25 {
			trade(seq)
		}
	}
	e.flush(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	waitFor(t, "the stream holds trade 40", func() bool {
		_, upTo, err := e.srv.cfg.History.Since(ctx, proto.Channel{Kind: proto.KindTrade, Symbol: "X"}, 30)
		return err == nil && upTo == 40
	})

	c := e.connect(t, "json", tok)
	c.send(t, proto.Command{Op: proto.OpSubscribe, ID: ptr[int64](1), Channels: []string{"trade.X"}, Since: map[string]uint64{"trade.X": 10}})
	if w := c.expect(t, proto.TypeSubscribed); !slices.Equal(w.Resumed, []string{"trade.X"}) {
		t.Fatalf("ack %s, want trade.X resumed", w.raw)
	}
	var want []string
	for seq := uint64(11); seq <= 40; seq++ {
		switch seq {
		case 25:
			want = append(want, "gap 25-25")
		case 26:
			want = append(want, "update 26/24")
		default:
			want = append(want, fmt.Sprintf("update %d/%d", seq, seq-1))
		}
	}
	if got := steps(t, c, len(want)); !slices.Equal(got, want) {
		t.Fatalf("replay:\n got %q\nwant %q", got, want)
	}
	trade(41)
	if got := steps(t, c, 1); got[0] != "update 41/40" {
		t.Fatalf("first live trade: %q, want update 41/40", got)
	}

	// Another client, from 38: the node's memory holds only 41 of this
	// channel, so the stream gives 39 and 40, and the memory 41.
	r := e.connect(t, "msgpack", tok)
	r.send(t, proto.Command{Op: proto.OpSubscribe, ID: ptr[int64](2), Channels: []string{"trade.X"}, Since: map[string]uint64{"trade.X": 38}})
	if w := r.expect(t, proto.TypeSubscribed); len(w.Resumed) != 1 {
		t.Fatalf("ack %s, want resumed", w.raw)
	}
	if got, want := steps(t, r, 3), []string{"update 39/38", "update 40/39", "update 41/40"}; !slices.Equal(got, want) {
		t.Fatalf("stream and memory: got %q, want %q", got, want)
	}

	// From right before the stream's hole: the message after the seq is
	// not there (as when the stream's limits cut it), so it is not
	// covered: the 1.0 fallback. (A hole further on is a feed gap, told
	// as above.)
	f := e.connect(t, "json", tok)
	f.send(t, proto.Command{Op: proto.OpSubscribe, ID: ptr[int64](3), Channels: []string{"trade.X"}, Since: map[string]uint64{"trade.X": 24}})
	if w := f.expect(t, proto.TypeSubscribed); len(w.Resumed) != 0 {
		t.Fatalf("ack %s, want nothing resumed", w.raw)
	}
	if w := f.expect(t, proto.TypeError); w.Code != string(proto.CodeHistoryUnavailable) {
		t.Fatalf("got %s, want history_unavailable", w.raw)
	}
	if n, m := e.srv.metrics.historyReadCount(historyResumed), e.srv.metrics.historyReadCount(historyNotCovered); n != 2 || m != 1 {
		t.Fatalf("tickgate_history_reads_total: resumed %v, not_covered %v; want 2, 1", n, m)
	}
}

// welcome names the additions the node serves, durable_resume only on a
// node that reads a history stream.
func TestWelcomeFeatures(t *testing.T) {
	for name, tc := range map[string]struct {
		history bool
		want    []string
	}{
		"memory":    {false, []string{proto.FeatureCandle, proto.FeatureDepth, proto.FeatureRecent, proto.FeatureStatus, proto.FeatureRESTSnapshot}},
		"jetstream": {true, []string{proto.FeatureCandle, proto.FeatureDepth, proto.FeatureRecent, proto.FeatureStatus, proto.FeatureRESTSnapshot, proto.FeatureDurableResume}},
	} {
		t.Run(name, func(t *testing.T) {
			var e *testEnv
			if tc.history {
				e = newHistoryTestEnv(t)
			} else {
				e = newTestEnv(t)
			}
			c, _, err := e.dial(t, bearer(e.token(t, "f", time.Hour, ">")))
			if err != nil {
				t.Fatal(err)
			}
			if w := c.expect(t, proto.TypeWelcome); !slices.Equal(w.Features, tc.want) {
				t.Fatalf("features %q, want %q", w.Features, tc.want)
			}
		})
	}
}

// durable_resume is named only while the node can read its history
// stream: a stream deleted (or not created yet) takes it out of welcome,
// and it comes back with the stream.
func TestWelcomeFeaturesFollowTheStream(t *testing.T) {
	e := newHistoryTestEnv(t)
	features := func() []string {
		t.Helper()
		c, _, err := e.dial(t, bearer(e.token(t, "f", time.Hour, ">")))
		if err != nil {
			t.Fatal(err)
		}
		return c.expect(t, proto.TypeWelcome).Features
	}
	if f := features(); !slices.Contains(f, proto.FeatureDurableResume) {
		t.Fatalf("with the stream: %q", f)
	}
	nc, err := nats.Connect(e.ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := nc.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	if err := js.DeleteStream(feed.DefaultStream); err != nil {
		t.Fatal(err)
	}
	e.srv.lookAtHistory()
	if f := features(); slices.Contains(f, proto.FeatureDurableResume) || len(f) != 5 {
		t.Fatalf("without the stream: %q", f)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := e.src.EnsureStream(ctx, feed.StreamConfig{Memory: true}); err != nil {
		t.Fatal(err)
	}
	e.srv.lookAtHistory()
	if f := features(); !slices.Contains(f, proto.FeatureDurableResume) {
		t.Fatalf("with the stream again: %q", f)
	}
}

// A node that never held a book or a ticker starts it from the history
// stream: its first subscriber gets the snapshot at once, not at the
// publisher's next snapshot, and the live updates chain on.
func TestColdChannelStartsFromTheHistoryStream(t *testing.T) {
	e := newHistoryTestEnv(t)
	bch := proto.Channel{Kind: proto.KindBook, Symbol: "COLD"}
	bf := booktest.NewFeed("COLD", 9)
	for _, m := range []proto.FeedMessage{bf.Snapshot(1), bf.Update(2), bf.Update(3), bf.Update(4)} {
		e.publishMessage(t, bch, m)
	}
	tick := func(seq uint64) {
		e.publish(t, "ticker.COLD", seq, proto.FeedUpdate, &proto.Ticker{Symbol: "COLD", Bid: "1", BidSize: "1", Ask: "2", AskSize: "1", Last: fmt.Sprint(seq), Volume: "1", TS: 1})
	}
	tick(1)
	tick(2)
	e.flush(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	waitFor(t, "the stream holds the book", func() bool {
		msgs, err := e.srv.cfg.History.Recent(ctx, bch)
		return err == nil && len(msgs) == 4
	})

	c := e.connect(t, "json", e.token(t, "cold", time.Hour, ">"))
	c.send(t, proto.Command{Op: proto.OpSubscribe, ID: ptr[int64](1), Channels: []string{"book.COLD", "ticker.COLD"}})
	c.expect(t, proto.TypeSubscribed)
	k := &chainChecker{kind: proto.KindBook, book: booktest.New()}
	var ticker wire
	for k.seen == 0 || ticker.Type == "" {
		w := c.next(t)
		if w.Channel == "ticker.COLD" {
			ticker = w
			continue
		}
		k.take(t, w)
	}
	if k.last != 4 || k.book.Checksum() != bf.Book().Checksum() {
		t.Fatalf("book started at %d with checksum %d, want the stream's 4 and %d", k.last, k.book.Checksum(), bf.Book().Checksum())
	}
	if ticker.Type != proto.TypeSnapshot || ticker.Seq != 2 || ticker.Data.Last != "2" {
		t.Fatalf("ticker started with %s, want the stream's ticker 2 as a snapshot", ticker.raw)
	}
	e.publishMessage(t, bch, bf.Update(5))
	k.take(t, c.next(t))
	if k.last != 5 {
		t.Fatalf("live update after the start: last %d", k.last)
	}
	if n := e.srv.metrics.historyReadCount(historyWarmed); n != 2 {
		t.Fatalf("tickgate_history_reads_total{result=warmed} = %v, want 2", n)
	}
}

// Trades a node never had live (here: published while its path to NATS
// was cut) are filled from the history stream before the next trade, so
// its subscribers get them in their chain instead of a gap message
// (contract 1.1 §9).
func TestLiveGapFilledFromTheHistoryStream(t *testing.T) {
	e := newSignedTestEnv(t, envOptions{proxied: true, jetstream: true})
	c := e.connect(t, "json", e.token(t, "filler", time.Hour, ">"))
	c.send(t, proto.Command{Op: proto.OpSubscribe, ID: ptr[int64](1), Channels: []string{"trade.F"}})
	c.expect(t, proto.TypeSubscribed)
	trade := func(seq uint64) {
		e.publish(t, "trade.F", seq, proto.FeedUpdate, &proto.Trade{Symbol: "F", ID: int64(seq), Price: "1", Size: "1", Side: "buy", TS: 1})
	}
	trade(1)
	trade(2)
	k := &chainChecker{kind: proto.KindTrade}
	for k.last < 2 {
		k.take(t, c.next(t))
	}
	e.proxy.Cut()
	waitFor(t, "the node lost NATS", func() bool { return !e.src.Connected() })
	trade(3) // the stream has them; the node does not
	trade(4)
	e.proxy.Mend()
	waitFor(t, "the node is back", e.src.Connected)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	waitFor(t, "the stream holds 4", func() bool {
		_, upTo, err := e.srv.cfg.History.Since(ctx, proto.Channel{Kind: proto.KindTrade, Symbol: "F"}, 2)
		return err == nil && upTo >= 4
	})
	// The node's subscription comes back with its connection: publish
	// until a trade gets through.
	for seq := uint64(5); k.last < 5; seq++ {
		if seq > 200 {
			t.Fatal("no trade reached the client after NATS came back")
		}
		trade(seq)
		select {
		case w := <-c.msgs:
			if w.Type == proto.TypeStatus {
				continue
			}
			k.take(t, w)
		case <-time.After(50 * time.Millisecond):
		}
	}
	if k.gaps != 0 || k.trade[2] != 3 || k.trade[3] != 4 {
		t.Fatalf("trades %v with %d gap messages; want 3 and 4 filled in, no gap", k.trade, k.gaps)
	}
	if n := e.srv.metrics.historyReadCount(historyFilled); n < 1 {
		t.Fatalf("tickgate_history_reads_total{result=filled} = %v, want at least 1", n)
	}
}

// stallHistory makes the first reads of the history stream run out of
// time, as on a node or stream overloaded by a reconnect storm.
type stallHistory struct {
	History
	stalls atomic.Int32
}

func (h *stallHistory) Since(ctx context.Context, ch proto.Channel, seq uint64) ([]*feed.Message, uint64, error) {
	if h.stalls.Add(-1) >= 0 {
		<-ctx.Done()
		return nil, 0, fmt.Errorf("%w: get: %w", feed.ErrNoHistory, ctx.Err())
	}
	return h.History.Since(ctx, ch, seq)
}

// A resume whose read of the history stream runs out of time is answered
// unavailable with retry_ms, not history_unavailable: the stream may hold
// every trade, and a client told history_unavailable takes them for lost
// (the reconnect storm of docs/benchmarks.md lost trades this way). The
// retry resumes exactly.
func TestResumeRetriedWhenTheHistoryReadTimesOut(t *testing.T) {
	var sh *stallHistory
	e := newHistoryTestEnv(t, func(c *Config) {
		sh = &stallHistory{History: c.History}
		sh.stalls.Store(1)
		c.History = sh
		c.SubscribeTimeout = 300 * time.Millisecond
	})
	tok := e.token(t, "storm", time.Hour, ">")
	for seq := uint64(1); seq <= 20; seq++ {
		e.publish(t, "trade.Y", seq, proto.FeedUpdate, &proto.Trade{Symbol: "Y", ID: int64(seq), Price: "1", Size: "1", Side: "buy", TS: 1})
	}
	e.flush(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	waitFor(t, "the stream holds trade 20", func() bool {
		_, upTo, err := sh.History.Since(ctx, proto.Channel{Kind: proto.KindTrade, Symbol: "Y"}, 15)
		return err == nil && upTo == 20
	})

	c := e.connect(t, "json", tok)
	c.send(t, proto.Command{Op: proto.OpSubscribe, ID: ptr[int64](1), Channels: []string{"trade.Y"}, Since: map[string]uint64{"trade.Y": 10}})
	w := c.expect(t, proto.TypeError)
	if w.Code != string(proto.CodeUnavailable) || w.Channel != "trade.Y" || w.RetryMS <= 0 || *w.ID != 1 {
		t.Fatalf("got %s, want unavailable for trade.Y with retry_ms", w.raw)
	}
	if n := e.srv.metrics.historyReadCount(historyFailed); n != 1 {
		t.Fatalf("tickgate_history_reads_total{result=unavailable} = %v, want 1", n)
	}
	c.send(t, proto.Command{Op: proto.OpSubscribe, ID: ptr[int64](2), Channels: []string{"trade.Y"}, Since: map[string]uint64{"trade.Y": 10}})
	if w := c.expect(t, proto.TypeSubscribed); !slices.Equal(w.Resumed, []string{"trade.Y"}) {
		t.Fatalf("retry ack %s, want trade.Y resumed", w.raw)
	}
	var want []string
	for seq := uint64(11); seq <= 20; seq++ {
		want = append(want, fmt.Sprintf("update %d/%d", seq, seq-1))
	}
	if got := steps(t, c, len(want)); !slices.Equal(got, want) {
		t.Fatalf("replay after the retry:\n got %q\nwant %q", got, want)
	}
}

// scriptedHistory answers the first reads of Since with what a stream
// under load gives, then reads the real stream.
type scriptedHistory struct {
	History
	mu    sync.Mutex
	first []func(ctx context.Context, ch proto.Channel, seq uint64) ([]*feed.Message, uint64, error)
}

func (h *scriptedHistory) Since(ctx context.Context, ch proto.Channel, seq uint64) ([]*feed.Message, uint64, error) {
	h.mu.Lock()
	var f func(ctx context.Context, ch proto.Channel, seq uint64) ([]*feed.Message, uint64, error)
	if len(h.first) > 0 {
		f, h.first = h.first[0], h.first[1:]
	}
	h.mu.Unlock()
	if f != nil {
		return f(ctx, ch, seq)
	}
	return h.History.Since(ctx, ch, seq)
}

// streamOnly starts a node whose history stream is a scriptedHistory and
// publishes trades 1..n of trade.<symbol> before any node holds the
// channel, so that only the stream has them. It returns the env, the
// script's History, a token, and a function that publishes one trade.
func streamOnly(t *testing.T, symbol string, n uint64) (*testEnv, *scriptedHistory, string, func(seq uint64)) {
	t.Helper()
	var sh *scriptedHistory
	e := newHistoryTestEnv(t, func(c *Config) {
		sh = &scriptedHistory{History: c.History}
		c.History = sh
	})
	trade := func(seq uint64) {
		e.publish(t, "trade."+symbol, seq, proto.FeedUpdate, &proto.Trade{Symbol: symbol, ID: int64(seq), Price: "1", Size: "1", Side: "buy", TS: 1})
	}
	for seq := uint64(1); seq <= n; seq++ {
		trade(seq)
	}
	e.flush(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ch := proto.Channel{Kind: proto.KindTrade, Symbol: symbol}
	waitFor(t, fmt.Sprintf("the stream holds trade %d", n), func() bool {
		_, upTo, err := sh.History.Since(ctx, ch, n/2)
		return err == nil && upTo == n
	})
	return e, sh, e.token(t, "storm", time.Hour, ">"), trade
}

// behindAt answers Since as h would have before it stored the trades
// after upTo.
func behindAt(h History, upTo uint64) func(ctx context.Context, ch proto.Channel, seq uint64) ([]*feed.Message, uint64, error) {
	return func(ctx context.Context, ch proto.Channel, seq uint64) ([]*feed.Message, uint64, error) {
		msgs, _, err := h.Since(ctx, ch, seq)
		if err != nil {
			return nil, 0, err
		}
		for len(msgs) > 0 && msgs[len(msgs)-1].Seq > upTo {
			msgs = msgs[:len(msgs)-1]
		}
		return msgs, upTo, nil
	}
}

// want11to is the replay of trades 11..n, each after the one before.
func want11to(n uint64) []string {
	var want []string
	for seq := uint64(11); seq <= n; seq++ {
		want = append(want, fmt.Sprintf("update %d/%d", seq, seq-1))
	}
	return want
}

// A resume that the history stream cannot serve at that moment, although
// it holds the trades, is answered unavailable with retry_ms, and the
// retry resumes exactly: a read that failed on the way (not a timeout),
// and a stream that had not yet stored what the node already received
// live (its replay ends before the node's memory begins). Both were told
// history_unavailable before, and the client took the trades for lost.
// Another connection holds the channel, so that the node has it live.
func TestResumeRetriedWhileTheStreamCannotServeIt(t *testing.T) {
	for name, first := range map[string]func(h History) func(ctx context.Context, ch proto.Channel, seq uint64) ([]*feed.Message, uint64, error){
		"the read failed": func(History) func(ctx context.Context, ch proto.Channel, seq uint64) ([]*feed.Message, uint64, error) {
			return func(context.Context, proto.Channel, uint64) ([]*feed.Message, uint64, error) {
				return nil, 0, fmt.Errorf("%w: %w: get: %w", feed.ErrNoHistory, feed.ErrHistoryRead, nats.ErrNoResponders)
			}
		},
		"the stream is behind the node": func(h History) func(ctx context.Context, ch proto.Channel, seq uint64) ([]*feed.Message, uint64, error) {
			return behindAt(h, 15) // as before it stored 16 and on
		},
	} {
		t.Run(name, func(t *testing.T) {
			e, sh, tok, trade := streamOnly(t, "Z", 17)
			holder := e.connect(t, "json", tok)
			holder.send(t, proto.Command{Op: proto.OpSubscribe, ID: ptr[int64](1), Channels: []string{"trade.Z"}})
			holder.expect(t, proto.TypeSubscribed)
			for seq := uint64(18); seq <= 20; seq++ {
				trade(seq) // live on the node: its memory begins at 18
			}
			if got := steps(t, holder, 3); got[2] != "update 20/19" {
				t.Fatalf("holder got %q", got)
			}

			sh.mu.Lock()
			sh.first = append(sh.first, first(sh.History))
			sh.mu.Unlock()
			c := e.connect(t, "msgpack", tok)
			c.send(t, proto.Command{Op: proto.OpSubscribe, ID: ptr[int64](1), Channels: []string{"trade.Z"}, Since: map[string]uint64{"trade.Z": 10}})
			w := c.expect(t, proto.TypeError)
			if w.Code != string(proto.CodeUnavailable) || w.Channel != "trade.Z" || w.RetryMS <= 0 || *w.ID != 1 {
				t.Fatalf("got %s, want unavailable for trade.Z with retry_ms", w.raw)
			}
			c.send(t, proto.Command{Op: proto.OpSubscribe, ID: ptr[int64](2), Channels: []string{"trade.Z"}, Since: map[string]uint64{"trade.Z": 10}})
			if w := c.expect(t, proto.TypeSubscribed); !slices.Equal(w.Resumed, []string{"trade.Z"}) {
				t.Fatalf("retry ack %s, want trade.Z resumed", w.raw)
			}
			if got, want := steps(t, c, 10), want11to(20); !slices.Equal(got, want) {
				t.Fatalf("replay after the retry:\n got %q\nwant %q", got, want)
			}
			trade(21)
			if got := steps(t, c, 1); got[0] != "update 21/20" {
				t.Fatalf("first live trade after the resume: %q", got)
			}
		})
	}
}

// A resume from the stream on a node that has received nothing live of
// the channel yet, read while the stream had not stored the newest trades
// (16, 17) and before the node was subscribed when they were published:
// the first live trade finds them missing between the stream's replay and
// itself, and they are filled from the stream, not reported as a gap.
func TestResumeFromAStreamBehindFilledBeforeTheFirstLiveTrade(t *testing.T) {
	e, sh, tok, trade := streamOnly(t, "W", 17)
	sh.first = append(sh.first, behindAt(sh.History, 15))
	c := e.connect(t, "json", tok)
	c.send(t, proto.Command{Op: proto.OpSubscribe, ID: ptr[int64](1), Channels: []string{"trade.W"}, Since: map[string]uint64{"trade.W": 10}})
	if w := c.expect(t, proto.TypeSubscribed); !slices.Equal(w.Resumed, []string{"trade.W"}) {
		t.Fatalf("ack %s, want trade.W resumed", w.raw)
	}
	trade(18)
	if got, want := steps(t, c, 8), want11to(18); !slices.Equal(got, want) {
		t.Fatalf("resume, fill and first live trade:\n got %q\nwant %q", got, want)
	}
	if n := e.srv.metrics.historyReadCount(historyFilled); n != 1 {
		t.Fatalf("tickgate_history_reads_total{result=filled} = %v, want 1", n)
	}
}

// fillHistory is a history stream for the live fill: it holds trades up
// to has (all of them, for the reads after the scripted ones) and answers
// the first reads as scripted: a failure on the way, "not covered" (not
// stored yet), or a short read.
type fillHistory struct {
	History
	mu     sync.Mutex
	script []string // per read: "fail", "missing", "short", then whole reads
	reads  int
}

func (h *fillHistory) Range(_ context.Context, ch proto.Channel, seq, to uint64) ([]*feed.Message, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.reads++
	var step string
	if len(h.script) > 0 {
		step, h.script = h.script[0], h.script[1:]
	}
	var msgs []*feed.Message
	for s := seq + 1; s <= min(to, 4); s++ {
		msgs = append(msgs, &feed.Message{Seq: s, Data: &proto.Trade{Symbol: ch.Symbol, ID: int64(s), Price: "1", Size: "1", Side: "buy", TS: 1}})
	}
	switch step {
	case "fail":
		return nil, fmt.Errorf("%w: %w: get: %w", feed.ErrNoHistory, feed.ErrHistoryRead, nats.ErrNoResponders)
	case "missing":
		return nil, nil
	case "short":
		return msgs[:1], nil
	}
	return msgs, nil
}

// A live trade gap is filled from the stream although its first reads
// fail on the way, come back short, or find the next trade not stored yet
// (a replica or the stream behind core NATS): a few short tries within the
// fill's second. Found missing more often, it is the feed's own gap and is
// reported without stalling the channel longer.
func TestLiveGapFillTriesAgain(t *testing.T) {
	for _, tt := range []struct {
		script []string
		filled bool
		reads  int
	}{
		{nil, true, 1},
		{[]string{"fail", "fail"}, true, 3},
		{[]string{"short"}, true, 2},
		{[]string{"missing", "missing"}, true, 3},
		{[]string{"missing", "missing", "missing"}, false, 3},
	} {
		t.Run(strings.Join(append([]string{"reads"}, tt.script...), " "), func(t *testing.T) {
			fh := &fillHistory{script: tt.script}
			s := hubFixture(t, func(c *Config) { c.History = fh })
			c := s.bareConn(codec.JSON())
			ch := proto.Channel{Kind: proto.KindTrade, Symbol: "G"}
			s.joinFor(t, c, ch, joinOptions{})
			tr := func(seq uint64) *feed.Message {
				return &feed.Message{Seq: seq, Data: &proto.Trade{Symbol: "G", ID: int64(seq), Price: "1", Size: "1", Side: "buy", TS: 1}}
			}
			s.hub.onFeed(ch, tr(1))
			s.hub.onFeed(ch, tr(5)) // 2..4 never reached the node
			var got []string
			for _, b := range queued(c) {
				var w struct {
					Type     string
					Seq      uint64
					From, To uint64
				}
				if err := json.Unmarshal(b, &w); err != nil {
					t.Fatal(err)
				}
				got = append(got, fmt.Sprintf("%s %d %d-%d", w.Type, w.Seq, w.From, w.To))
			}
			want := []string{"update 1 0-0", "update 2 0-0", "update 3 0-0", "update 4 0-0", "update 5 0-0"}
			if !tt.filled {
				want = []string{"update 1 0-0", "gap 0 2-4", "update 5 0-0"}
			}
			if !slices.Equal(got, want) || fh.reads != tt.reads {
				t.Fatalf("got %q after %d reads, want %q after %d", got, fh.reads, want, tt.reads)
			}
		})
	}
}

// A node that never held a candle channel starts it from the history
// stream: its first subscriber gets the recent bars at once (the dashboard's
// chart is not empty), then the live revisions chain on.
func TestColdCandleChannelStartsFromTheHistoryStream(t *testing.T) {
	e := newHistoryTestEnv(t)
	ch := proto.Channel{Kind: proto.KindCandle, Param: "1m", Symbol: "COLD"}
	for i, c := range []*proto.Candle{testBar(0, "101", false), testBar(0, "102", true), testBar(1, "103", false), testBar(1, "104", true), testBar(2, "105", false)} {
		c.Symbol = "COLD"
		e.publishMessage(t, ch, proto.FeedMessage{Seq: uint64(i + 1), Type: proto.FeedUpdate, Data: c})
	}
	e.flush(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	waitFor(t, "the stream holds the bars", func() bool {
		msgs, err := e.srv.cfg.History.Recent(ctx, ch)
		return err == nil && len(msgs) == 5
	})

	c := e.connect(t, "json", e.token(t, "cold", time.Hour, ">"))
	c.send(t, proto.Command{Op: proto.OpSubscribe, ID: ptr[int64](1), Channels: []string{"candle.1m.COLD"}})
	c.expect(t, proto.TypeSubscribed)
	w := decodeCandle(t, codec.JSON(), c.next(t).raw)
	var closes []string
	for _, b := range w.Data.Bars {
		closes = append(closes, fmt.Sprintf("%s %v", b.Close, b.Closed))
	}
	if w.Type != proto.TypeSnapshot || w.Seq != 5 || !slices.Equal(closes, []string{"102 true", "104 true", "105 false"}) {
		t.Fatalf("first message %s %d bars %q, want the stream's snapshot at 5: 102 closed, 104 closed, 105 open", w.Type, w.Seq, closes)
	}
	live := testBar(2, "106", false)
	live.Symbol = "COLD"
	e.publishMessage(t, ch, proto.FeedMessage{Seq: 6, Type: proto.FeedUpdate, Data: live})
	if w := decodeCandle(t, codec.JSON(), c.next(t).raw); w.Type != proto.TypeUpdate || w.Seq != 6 || *w.Prev != 5 || w.Data.Close != "106" {
		t.Fatalf("live revision after the start: %s %d", w.Type, w.Seq)
	}
	if n := e.srv.metrics.historyReadCount(historyWarmed); n != 1 {
		t.Fatalf("tickgate_history_reads_total{result=warmed} = %v, want 1", n)
	}
}
