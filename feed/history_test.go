package feed

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tickgate/tickgate/internal/booktest"
	"github.com/tickgate/tickgate/internal/natstest"
	"github.com/tickgate/tickgate/proto"
)

// historyEnv is an embedded JetStream server with the history stream, a
// source and a publisher on it.
func historyEnv(t *testing.T, cfg StreamConfig) (*Source, *History, func(ch proto.Channel, m proto.FeedMessage)) {
	t.Helper()
	srv := natstest.RunJetStream(t, natstest.RandomPort)
	src := connectSource(t, srv.ClientURL(), Config{})
	cfg.Memory = true
	if what, err := src.EnsureStream(ctxTimeout(t, 5*time.Second), cfg); err != nil || what != "created" {
		t.Fatalf("EnsureStream = %q, %v", what, err)
	}
	h, err := NewHistory(src, cfg.withDefaults().Name, 0)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := DialPublisher(srv.ClientURL(), "history test", "md")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pub.Close)
	publish := func(ch proto.Channel, m proto.FeedMessage) {
		t.Helper()
		if err := pub.PublishMessage(ch, m); err != nil {
			t.Fatal(err)
		}
	}
	// Each publish waits until the stream's last sequence counts it too
	// (waitStored).
	published := uint64(0)
	return src, h, func(ch proto.Channel, m proto.FeedMessage) {
		publish(ch, m)
		published++
		ctx := ctxTimeout(t, 5*time.Second)
		if err := pub.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		waitStored(ctx, t, h, published)
	}
}

// waitStored waits until h's stream's last sequence is n or beyond: the
// stream stores what the server received on its own goroutine, so a
// publisher's flush alone does not mean a message can be read back.
func waitStored(ctx context.Context, tb testing.TB, h *History, n uint64) {
	tb.Helper()
	for {
		st, err := h.stream(ctx)
		if err != nil {
			tb.Fatal(err)
		}
		info, err := st.Info(ctx)
		if err != nil {
			tb.Fatal(err)
		}
		if info.State.LastSeq >= n {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

func trade(seq uint64) proto.FeedMessage {
	return proto.FeedMessage{Seq: seq, Type: proto.FeedUpdate, Data: &proto.Trade{Symbol: "BTC-USD", ID: int64(seq), Price: "1", Size: "1", Side: proto.SideBuy, TS: 1}}
}

func seqsOf(msgs []*Message) []uint64 {
	out := make([]uint64, len(msgs))
	for i, m := range msgs {
		out[i] = m.Seq
	}
	return out
}

func TestHistorySince(t *testing.T) {
	_, h, publish := historyEnv(t, StreamConfig{MaxMsgsPerSubject: 500})
	ctx := ctxTimeout(t, 30*time.Second)
	// Trades 1..300 of BTC-USD, with another channel interleaved and a
	// hole (seqs 101..104 never published), then a heartbeat ahead.
	for seq := uint64(1); seq <= 300; seq++ {
		if seq > 100 && seq < 105 {
			continue
		}
		publish(tradeBTC, trade(seq))
		if seq%3 == 0 {
			publish(tickerBTC, proto.FeedMessage{Seq: seq / 3, Type: proto.FeedUpdate, Data: &proto.Ticker{Symbol: "BTC-USD", Bid: "1", BidSize: "1", Ask: "2", AskSize: "1", Last: "1", Volume: "1", TS: 1}})
		}
	}
	publish(tradeBTC, proto.FeedMessage{Seq: 302, Type: proto.FeedHeartbeat})

	msgs, upTo, err := h.Since(ctx, tradeBTC, 250)
	if err != nil {
		t.Fatal(err)
	}
	if got := seqsOf(msgs); len(got) != 50 || got[0] != 251 || got[49] != 300 || upTo != 302 {
		t.Fatalf("Since(250) = %d messages %v…, upTo %d; want 251..300, upTo 302", len(got), got[:min(3, len(got))], upTo)
	}
	for _, m := range msgs {
		if m.Trade() == nil || m.Trade().ID != int64(m.Seq) {
			t.Fatalf("message %+v does not carry its trade", m)
		}
	}
	msgs, _, err = h.Since(ctx, tradeBTC, 98)
	if err != nil {
		t.Fatal(err)
	}
	if got := seqsOf(msgs); got[0] != 99 || got[1] != 100 || got[2] != 105 {
		t.Fatalf("Since(98) starts %v, want 99, 100, 105 (the hole stays a hole)", got[:3])
	}
	if _, _, err := h.Since(ctx, tradeBTC, 101); !errors.Is(err, ErrNotCovered) {
		t.Fatalf("Since(101), inside the hole: %v, want ErrNotCovered", err)
	}
	if msgs, upTo, err := h.Since(ctx, tradeBTC, 302); err != nil || len(msgs) != 0 || upTo != 302 {
		t.Fatalf("Since(newest) = %v, %d, %v; want nothing, up to 302", seqsOf(msgs), upTo, err)
	}
	if _, _, err := h.Since(ctx, tradeBTC, 400); !errors.Is(err, ErrNotCovered) {
		t.Fatalf("Since(future) = %v, want ErrNotCovered", err)
	}
	if _, _, err := h.Since(ctx, bookBTC, 1); !errors.Is(err, ErrNotCovered) {
		t.Fatalf("Since on a channel never stored = %v, want ErrNotCovered", err)
	}
	// Past the stream's limit: seqs 1..(300-500+…) are gone once more come.
	for seq := uint64(303); seq <= 700; seq++ {
		publish(tradeBTC, trade(seq))
	}
	if _, _, err := h.Since(ctx, tradeBTC, 50); !errors.Is(err, ErrNotCovered) {
		t.Fatalf("Since(50) after the stream dropped it: %v, want ErrNotCovered", err)
	}
	latest, err := h.Latest(ctx, tradeBTC)
	if err != nil || latest.Seq != 700 {
		t.Fatalf("Latest = %+v, %v; want seq 700", latest, err)
	}
}

func TestHistoryWithoutStream(t *testing.T) {
	srv := natstest.Run(t, natstest.RandomPort) // no JetStream
	src := connectSource(t, srv.ClientURL(), Config{})
	h, err := NewHistory(src, "MD", 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxTimeout(t, 5*time.Second)
	if err := h.Check(ctx); !errors.Is(err, ErrNoHistory) {
		t.Fatalf("Check without JetStream = %v, want ErrNoHistory", err)
	}
	if _, _, err := h.Since(ctx, tradeBTC, 1); !errors.Is(err, ErrNoHistory) {
		t.Fatalf("Since without JetStream = %v, want ErrNoHistory", err)
	}

	js := natstest.RunJetStream(t, natstest.RandomPort) // JetStream, no stream
	src2 := connectSource(t, js.ClientURL(), Config{})
	h2, _ := NewHistory(src2, "MD", 0)
	if err := h2.Check(ctx); !errors.Is(err, ErrNoHistory) {
		t.Fatalf("Check without the stream = %v, want ErrNoHistory", err)
	}
	if what, err := src2.EnsureStream(ctx, StreamConfig{Memory: true}); err != nil || what != "created" {
		t.Fatalf("EnsureStream = %q, %v", what, err)
	}
	if err := h2.Check(ctx); err != nil {
		t.Fatalf("Check once the stream exists: %v", err)
	}
	if what, err := src2.EnsureStream(ctx, StreamConfig{Memory: true}); err != nil || what != "unchanged" {
		t.Fatalf("EnsureStream again = %q, %v", what, err)
	}
	if what, err := src2.EnsureStream(ctx, StreamConfig{Memory: true, MaxAge: time.Hour}); err != nil || what != "updated" {
		t.Fatalf("EnsureStream with another age = %q, %v", what, err)
	}
}

// BenchmarkHistorySince measures finding and replaying a resume point in
// a stream of 100,000 messages over 10 channels.
func BenchmarkHistorySince(b *testing.B) {
	srv := natstest.RunJetStream(b, natstest.RandomPort)
	src, err := Connect(Config{URL: srv.ClientURL()})
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := src.EnsureStream(ctx, StreamConfig{Memory: true}); err != nil {
		b.Fatal(err)
	}
	pub, err := DialPublisher(srv.ClientURL(), "bench", "md")
	if err != nil {
		b.Fatal(err)
	}
	defer pub.Close()
	chans := make([]proto.Channel, 10)
	for i := range chans {
		chans[i] = proto.Channel{Kind: proto.KindTrade, Symbol: "S" + string(rune('A'+i))}
	}
	for seq := uint64(1); seq <= 10_000; seq++ {
		for _, ch := range chans {
			m := trade(seq)
			m.Data.(*proto.Trade).Symbol = ch.Symbol
			if err := pub.PublishMessage(ch, m); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := pub.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	h, _ := NewHistory(src, DefaultStream, 0)
	waitStored(ctx, b, h, 10_000*uint64(len(chans)))
	for _, tail := range []int{10, 1000} {
		b.Run("replay="+strconv.Itoa(tail), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				msgs, _, err := h.Since(ctx, chans[3], uint64(10_000-tail))
				if err != nil || len(msgs) != tail {
					b.Fatalf("%d messages, %v", len(msgs), err)
				}
			}
		})
	}
}

// Recent gives a book's newest snapshot and the updates after it, a
// ticker's newest ticker, heartbeats left out; and a State takes them
// (Warm) only while it holds nothing current.
func TestHistoryRecentAndWarm(t *testing.T) {
	_, h, publish := historyEnv(t, StreamConfig{})
	ctx := ctxTimeout(t, 10*time.Second)
	f := booktest.NewFeed("BTC-USD", 7)
	for _, m := range []proto.FeedMessage{f.Snapshot(1), f.Update(2), f.Update(3), f.Snapshot(4), f.Update(5), f.Update(6)} {
		publish(bookBTC, m)
	}
	publish(bookBTC, proto.FeedMessage{Seq: 6, Type: proto.FeedHeartbeat})
	for seq := uint64(1); seq <= 3; seq++ {
		publish(tickerBTC, proto.FeedMessage{Seq: seq, Type: proto.FeedUpdate, Data: &proto.Ticker{Symbol: "BTC-USD", Bid: "1", BidSize: "1", Ask: "2", AskSize: "1", Last: strconv.Itoa(int(seq)), Volume: "1", TS: 1}})
	}
	publish(tickerBTC, proto.FeedMessage{Seq: 3, Type: proto.FeedHeartbeat})

	msgs, err := h.Recent(ctx, bookBTC)
	if err != nil {
		t.Fatal(err)
	}
	if got := seqsOf(msgs); len(got) != 3 || got[0] != 4 || !msgs[0].Snapshot || got[2] != 6 {
		t.Fatalf("Recent(book) = %v, want snapshot 4, then 5 and 6", got)
	}
	st := NewState(bookBTC, 0)
	mustApply(t, st, &Message{Seq: 7, Heartbeat: true}, false, OutcomeHeartbeat)
	if _, ok := st.Warm(msgs); ok {
		t.Fatal("a book took a history that ends before the newest seq it saw")
	}
	st = NewState(bookBTC, 0)
	ev, ok := st.Warm(msgs)
	if !ok || !ev.Snapshot || ev.Seq != 6 {
		t.Fatalf("Warm = %+v, %v; want a snapshot event at 6", ev, ok)
	}
	if got, want := ev.Data.(*proto.Book).Checksum, f.Book().Checksum(); got != want {
		t.Fatalf("warmed book checksum %d, want the feed's %d", got, want)
	}
	if _, ok := st.Warm(msgs); ok {
		t.Fatal("a synced book took a history")
	}
	mustApply(t, st, bookUpdateMsg(f.Update(7)), true, OutcomeApplied)

	msgs, err = h.Recent(ctx, tickerBTC)
	if err != nil || len(msgs) != 1 || msgs[0].Ticker() == nil || msgs[0].Seq != 3 {
		t.Fatalf("Recent(ticker) = %v, %v; want ticker 3", seqsOf(msgs), err)
	}
	tk := NewState(tickerBTC, 0)
	if ev, ok := tk.Warm(msgs); !ok || ev.Seq != 3 {
		t.Fatalf("ticker Warm = %+v, %v", ev, ok)
	}
	if seq, data, ok := tk.Snapshot(SnapshotOptions{}); !ok || seq != 3 || data.(*proto.Ticker).Last != "3" {
		t.Fatalf("ticker after Warm: %d %+v %v", seq, data, ok)
	}
	if _, err := h.Recent(ctx, tradeBTC); !errors.Is(err, ErrNotCovered) {
		t.Fatalf("Recent(trade) = %v, want ErrNotCovered", err)
	}
}

func bookUpdateMsg(m proto.FeedMessage) *Message {
	return &Message{Seq: m.Seq, Snapshot: m.Type == proto.FeedSnapshot, Data: m.Data.(*proto.Book)}
}

// emptyBatch is a fetch that ended at once with nothing, as an overloaded
// server's "no messages" or "request timeout" answer to a no-wait fetch
// comes out of nats.go.
type emptyBatch struct{}

func (emptyBatch) Messages() <-chan jetstream.Msg {
	c := make(chan jetstream.Msg)
	close(c)
	return c
}
func (emptyBatch) Error() error { return nil }

// A read whose fetches come back empty before the consumer's end keeps
// fetching: it does not take them for the end of the stream. Before, the
// replay came back short (here: empty), the node could not splice it with
// its live trades, and the client was told history_unavailable for trades
// the stream held (the reconnect storm of docs/benchmarks.md lost trades
// so). A channel with nothing to read still ends at once.
func TestHistoryReadRetriesEmptyBatches(t *testing.T) {
	_, h, publish := historyEnv(t, StreamConfig{})
	for seq := uint64(1); seq <= 30; seq++ {
		publish(tradeBTC, trade(seq))
	}
	var empties atomic.Int32
	empties.Store(3)
	h.fetch = func(c jetstream.Consumer) (jetstream.MessageBatch, error) {
		if empties.Add(-1) >= 0 {
			return emptyBatch{}, nil
		}
		return c.FetchNoWait(500)
	}
	msgs, upTo, err := h.Since(ctxTimeout(t, 10*time.Second), tradeBTC, 10)
	if err != nil {
		t.Fatal(err)
	}
	if got := seqsOf(msgs); len(got) != 20 || got[0] != 11 || got[19] != 30 || upTo != 30 {
		t.Fatalf("replay after empty batches: %v up to %d, want 11..30 up to 30", got, upTo)
	}

	// Empty batches until the caller's time runs out: an error the node
	// can tell from "not covered" (a timeout), not a short replay.
	empties.Store(1 << 30)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if msgs, _, err := h.Since(ctx, tradeBTC, 10); !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrNotCovered) {
		t.Fatalf("Since with only empty batches = %d messages, %v; want a deadline error", len(msgs), err)
	}

	// A fetch that fails on the way is a read failure (ErrHistoryRead),
	// never "not covered": the stream may hold every message.
	h.fetch = func(jetstream.Consumer) (jetstream.MessageBatch, error) { return nil, nats.ErrConnectionReconnecting }
	if _, _, err := h.Since(ctxTimeout(t, 5*time.Second), tradeBTC, 10); !errors.Is(err, ErrHistoryRead) || !errors.Is(err, ErrNoHistory) || errors.Is(err, ErrNotCovered) {
		t.Fatalf("Since with a failing fetch = %v; want ErrHistoryRead", err)
	}

	// Nothing pending at all (a window without messages): done at once.
	empties.Store(0)
	h.fetch = fetchNoWait
	ethBook := proto.Channel{Kind: proto.KindBook, Symbol: "ETH-USD"}
	if _, err := h.Recent(ctxTimeout(t, 5*time.Second), ethBook); !errors.Is(err, ErrNotCovered) {
		t.Fatalf("Recent of a channel with no messages = %v, want ErrNotCovered", err)
	}
}

// behindReplica answers gets as a replica that has stored the stream only
// up to stream sequence upTo (a direct get may reach one).
type behindReplica struct {
	st   jetstream.Stream
	upTo uint64
	gets atomic.Int32
}

func (r *behindReplica) next(ctx context.Context, from uint64, subject string) (*jetstream.RawStreamMsg, error) {
	r.gets.Add(1)
	m, err := r.st.GetMsg(ctx, from, jetstream.WithGetMsgSubject(subject))
	if err == nil && m.Sequence > r.upTo {
		return nil, jetstream.ErrMsgNotFound
	}
	return m, err
}

func (r *behindReplica) last(ctx context.Context, subject string) (*jetstream.RawStreamMsg, error) {
	r.gets.Add(1)
	for seq := r.upTo; seq > 0; seq-- {
		if m, err := r.st.GetMsg(ctx, seq); err == nil && m.Subject == subject {
			return m, nil
		}
	}
	return nil, jetstream.ErrMsgNotFound
}

// A search whose direct gets reach a replica behind the leader would find
// the seq not covered; the leader's gets then find it, and the replay is
// whole. The leader's gets alone: next, last, and none.
func TestHistorySinceBehindReplica(t *testing.T) {
	_, h, publish := historyEnv(t, StreamConfig{})
	for seq := uint64(1); seq <= 30; seq++ {
		publish(tradeBTC, trade(seq))
	}
	ctx := ctxTimeout(t, 10*time.Second)
	var replica *behindReplica
	h.gets = func(st jetstream.Stream) getter {
		replica = &behindReplica{st: st, upTo: 20}
		return replica
	}
	msgs, upTo, err := h.Since(ctx, tradeBTC, 22)
	if err != nil {
		t.Fatal(err)
	}
	if got := seqsOf(msgs); len(got) != 8 || got[0] != 23 || got[7] != 30 || upTo != 30 {
		t.Fatalf("Since(22) past a replica behind = %v up to %d, want 23..30 up to 30", got, upTo)
	}
	if replica.gets.Load() == 0 {
		t.Fatal("the replica stand-in was never asked")
	}

	lg := leaderGets{h.nc, h.name}
	subject := tradeBTC.Subject("md")
	if m, err := lg.next(ctx, 5, subject); err != nil || m.Sequence != 5 || m.Subject != subject {
		t.Fatalf("leader next(5) = %+v, %v", m, err)
	}
	if m, err := lg.last(ctx, subject); err != nil || m.Sequence != 30 {
		t.Fatalf("leader last = %+v, %v", m, err)
	} else if p, err := pubSeq(tradeBTC, m.Data); err != nil || p != 30 {
		t.Fatalf("leader last carries seq %d, %v", p, err)
	}
	if _, err := lg.next(ctx, 31, subject); !errors.Is(err, jetstream.ErrMsgNotFound) {
		t.Fatalf("leader next(31) = %v, want ErrMsgNotFound", err)
	}
	if _, err := lg.last(ctx, "md.trade.NONE"); !errors.Is(err, jetstream.ErrMsgNotFound) {
		t.Fatalf("leader last of an unknown subject = %v, want ErrMsgNotFound", err)
	}
}

// Range reads a small span of a channel with gets only: what the stream
// holds between two seqs, heartbeats and other channels left out, a hole
// left as it is, and nothing for a channel the stream has none of.
func TestHistoryRange(t *testing.T) {
	_, h, publish := historyEnv(t, StreamConfig{})
	for seq := uint64(1); seq <= 40; seq++ {
		if seq == 25 {
			continue
		}
		publish(tradeBTC, trade(seq))
		if seq%4 == 0 {
			publish(tickerBTC, proto.FeedMessage{Seq: seq / 4, Type: proto.FeedUpdate, Data: &proto.Ticker{Symbol: "BTC-USD", Bid: "1", BidSize: "1", Ask: "2", AskSize: "1", Last: "1", Volume: "1", TS: 1}})
		}
		if seq == 30 {
			publish(tradeBTC, proto.FeedMessage{Seq: 30, Type: proto.FeedHeartbeat})
		}
	}
	ctx := ctxTimeout(t, 10*time.Second)
	for _, tt := range []struct {
		after, to uint64
		want      []uint64
	}{
		{10, 15, []uint64{11, 12, 13, 14, 15}},
		{22, 27, []uint64{23, 24, 26, 27}},
		{38, 50, []uint64{39, 40}},
		{40, 45, nil},
		{0, 2, []uint64{1, 2}},
	} {
		msgs, err := h.Range(ctx, tradeBTC, tt.after, tt.to)
		if err != nil {
			t.Fatal(err)
		}
		if got := seqsOf(msgs); !slices.Equal(got, tt.want) {
			t.Fatalf("Range(%d, %d) = %v, want %v", tt.after, tt.to, got, tt.want)
		}
	}
	if msgs, err := h.Range(ctx, proto.Channel{Kind: proto.KindTrade, Symbol: "NONE"}, 0, 10); err != nil || len(msgs) != 0 {
		t.Fatalf("Range of a channel with nothing stored = %v, %v", seqsOf(msgs), err)
	}
}

// A candle channel starts from every bar revision of its recent window in
// the stream: each bar as last revised, closed ones closed, the open one
// open, and the chain at the newest seq.
func TestHistoryRecentCandles(t *testing.T) {
	_, h, publish := historyEnv(t, StreamConfig{})
	ctx := ctxTimeout(t, 10*time.Second)
	ch := proto.Channel{Kind: proto.KindCandle, Param: "1m", Symbol: "BTC-USD"}
	seq := uint64(0)
	pub := func(c *proto.Candle) {
		seq++
		publish(ch, proto.FeedMessage{Seq: seq, Type: proto.FeedUpdate, Data: c})
	}
	for n := range 3 {
		pub(bar(n, false))
		closed := *bar(n, true)
		closed.Close = "106"
		pub(&closed)
	}
	pub(bar(3, false))
	publish(ch, proto.FeedMessage{Seq: seq, Type: proto.FeedHeartbeat})

	msgs, err := h.Recent(ctx, ch)
	if err != nil {
		t.Fatal(err)
	}
	if got := seqsOf(msgs); len(got) != 7 || got[6] != 7 {
		t.Fatalf("Recent(candle) = %v, want 1..7", got)
	}
	st := NewState(ch, 0)
	ev, ok := st.Warm(msgs)
	if !ok || ev.Seq != 7 || ev.Data != nil {
		t.Fatalf("Warm = %+v, %v; want an event at 7 without data", ev, ok)
	}
	sseq, data, ok := st.Snapshot(SnapshotOptions{Bars: 10})
	if !ok || sseq != 7 {
		t.Fatalf("Snapshot after Warm = %d, %v", sseq, ok)
	}
	var got []string
	for _, b := range data.(*proto.CandleSnapshot).Bars {
		got = append(got, fmt.Sprintf("%d %s %v", (b.Start-minute(0))/int64(time.Minute), b.Close, b.Closed))
	}
	if want := []string{"0 106 true", "1 106 true", "2 106 true", "3 105 false"}; !slices.Equal(got, want) {
		t.Fatalf("warmed bars %q, want %q", got, want)
	}
	if _, ok := st.Warm(msgs); ok {
		t.Fatal("a candle state with bars took a history")
	}
	mustApply(t, st, candleMsg(8, bar(3, true)), true, OutcomeApplied)
	if _, err := h.Recent(ctx, proto.Channel{Kind: proto.KindCandle, Param: "1m", Symbol: "NONE"}); !errors.Is(err, ErrNotCovered) {
		t.Fatalf("Recent of a candle channel with nothing stored = %v, want ErrNotCovered", err)
	}
}
