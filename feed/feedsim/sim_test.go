package feedsim_test

import (
	"bytes"
	"context"
	"errors"
	"math/big"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tickgate/tickgate/feed"
	"github.com/tickgate/tickgate/feed/feedsim"
	"github.com/tickgate/tickgate/internal/booktest"
	"github.com/tickgate/tickgate/proto"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeClock returns a Now that advances by step on every call.
func fakeClock(step time.Duration) func() time.Time {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return func() time.Time {
		now = now.Add(step)
		return now
	}
}

func newSim(t *testing.T, cfg feedsim.Config) *feedsim.Sim {
	t.Helper()
	s, err := feedsim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestNextDeterministic(t *testing.T) {
	run := func(seed int64) (subjects []string, payloads [][]byte) {
		s := newSim(t, feedsim.Config{Seed: seed, Count: 5, Now: fakeClock(time.Millisecond)})
		for range 2000 {
			subj, p, err := s.Next()
			if err != nil {
				t.Fatal(err)
			}
			subjects, payloads = append(subjects, subj), append(payloads, p)
		}
		return subjects, payloads
	}
	s1, p1 := run(7)
	s2, p2 := run(7)
	if !slices.Equal(s1, s2) || !slices.EqualFunc(p1, p2, bytes.Equal) {
		t.Fatal("same seed, different streams")
	}
	s3, p3 := run(8)
	if slices.Equal(s1, s3) && slices.EqualFunc(p1, p3, bytes.Equal) {
		t.Fatal("different seeds, same stream")
	}
}

func TestStreamConsistent(t *testing.T) {
	for _, codecName := range []string{"msgpack", "json"} {
		t.Run(codecName, func(t *testing.T) {
			const (
				depth = 10
				n     = 10000
				step  = 10 * time.Millisecond
			)
			s := newSim(t, feedsim.Config{Count: 5, BookDepth: depth, SnapshotEvery: time.Second,
				Seed: 3, Codec: codecName, Now: fakeClock(step), SubjectPrefix: "sim.md"})
			lastSeq := map[proto.Channel]uint64{}
			books := map[string]*booktest.Book{}
			tradeIDs := map[string]int64{}
			bars := newBarCheck()
			kinds := map[proto.Kind]int{}
			snapshots := 0
			for i := range n {
				subj, p, err := s.Next()
				if err != nil {
					t.Fatal(err)
				}
				if codecName == "json" && p[0] != '{' {
					t.Fatalf("json payload starts with %q", p[0])
				}
				ch, err := proto.ChannelFromSubject("sim.md", subj)
				if err != nil {
					t.Fatal(err)
				}
				m, err := feed.Decode(ch, p)
				if err != nil {
					t.Fatalf("message %d on %s: %v", i, subj, err)
				}
				if m.Seq != lastSeq[ch]+1 {
					t.Fatalf("%s: seq %d after %d", ch, m.Seq, lastSeq[ch])
				}
				lastSeq[ch] = m.Seq
				kinds[ch.Kind]++
				b := books[ch.Symbol]
				switch ch.Kind {
				case proto.KindBook:
					if b == nil {
						if !m.Snapshot {
							t.Fatalf("%s: first book message is not a snapshot", ch)
						}
						b = booktest.New()
						books[ch.Symbol] = b
					}
					if m.Snapshot {
						snapshots++
					}
					b.Apply(m.Book(), m.Snapshot)
					bids, asks := b.Levels()
					if got := proto.BookChecksum(bids, asks); got != m.Book().Checksum {
						t.Fatalf("%s seq %d: checksum %d, rebuilt book has %d", ch, m.Seq, m.Book().Checksum, got)
					}
					if len(bids) == 0 || len(asks) == 0 || proto.CompareDecimal(bids[0][0], asks[0][0]) >= 0 {
						t.Fatalf("%s seq %d: empty or crossed book %v / %v", ch, m.Seq, bids, asks)
					}
					if len(bids) != depth || len(asks) != depth {
						t.Fatalf("%s seq %d: depth %d/%d, want %d", ch, m.Seq, len(bids), len(asks), depth)
					}
					if !m.Snapshot && len(m.Book().Bids)+len(m.Book().Asks) == 0 {
						t.Fatalf("%s seq %d: empty delta", ch, m.Seq)
					}
				case proto.KindTicker:
					bids, asks := b.Levels()
					tk := m.Ticker()
					if tk.Bid != bids[0][0] || tk.BidSize != bids[0][1] || tk.Ask != asks[0][0] || tk.AskSize != asks[0][1] {
						t.Fatalf("%s: ticker %+v not the book top %v / %v", ch, tk, bids[0], asks[0])
					}
				case proto.KindTrade:
					tr := m.Trade()
					if last, ok := tradeIDs[ch.Symbol]; ok && tr.ID != last+1 {
						t.Fatalf("%s: trade id %d after %d", ch, tr.ID, last)
					}
					tradeIDs[ch.Symbol] = tr.ID
					bars.trade(t, tr)
					bids, asks := b.Levels()
					if tr.Side == proto.SideBuy && tr.Price != asks[0][0] || tr.Side == proto.SideSell && tr.Price != bids[0][0] {
						t.Fatalf("%s: %s trade at %s, book top %v / %v", ch, tr.Side, tr.Price, bids[0], asks[0])
					}
				case proto.KindCandle:
					bars.candle(t, ch, m.Candle())
				}
			}
			if bars.closed == 0 || bars.open == 0 {
				t.Errorf("%d closed and %d open bars over 100s", bars.closed, bars.open)
			}
			for kind, want := range map[proto.Kind]float64{proto.KindBook: 0.36, proto.KindTicker: 0.27, proto.KindTrade: 0.27, proto.KindCandle: 0.10} {
				if got := float64(kinds[kind]) / n; got < want-0.03 || got > want+0.03 {
					t.Errorf("%s share %.3f, want about %.2f", kind, got, want)
				}
			}
			// n messages at 10ms are 100s of feed: a snapshot per symbol
			// every 1s at most, and within about 1.5s (the wait for the
			// symbol's next book message).
			if snapshots < 5*60 || snapshots > 5*100+5 {
				t.Errorf("%d snapshots over 100s for 5 symbols every 1s", snapshots)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	s := newSim(t, feedsim.Config{Count: 5})
	want := []string{"BTC-USD", "ETH-USD", "SOL-USD", "SIM0004-USD", "SIM0005-USD"}
	if got := s.Symbols(); !slices.Equal(got, want) {
		t.Fatalf("Symbols = %v, want %v", got, want)
	}
	if got := newSim(t, feedsim.Config{Symbols: []string{"A", "B", "C"}, Count: 2}).Symbols(); !slices.Equal(got, []string{"A", "B"}) {
		t.Fatalf("Symbols cut to Count = %v", got)
	}
	subj, p, err := newSim(t, feedsim.Config{}).Next()
	if err != nil || subj != "md.book.BTC-USD" || p[0] == '{' {
		t.Fatalf("first Next = %q, %q…, %v; want a msgpack BTC-USD book snapshot", subj, p[:1], err)
	}
	m, err := feed.Decode(proto.Channel{Kind: proto.KindBook, Symbol: "BTC-USD"}, p)
	if err != nil || !m.Snapshot || len(m.Book().Bids) != feedsim.DefaultBookDepth || !strings.HasPrefix(m.Book().Bids[0][0], "6") ||
		len(m.Book().Bids[0][0]) != len("64000.00") {
		t.Fatalf("first BTC-USD snapshot %+v, %v", m.Book(), err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := map[string]struct {
		cfg     feedsim.Config
		wantErr bool
	}{
		"zero":             {feedsim.Config{}, false},
		"bad symbol":       {feedsim.Config{Symbols: []string{"BTC/USD"}}, true},
		"duplicate symbol": {feedsim.Config{Symbols: []string{"A", "A"}}, true},
		"negative count":   {feedsim.Config{Count: -1}, true},
		"huge count":       {feedsim.Config{Count: feedsim.MaxCount + 1}, true},
		"negative rate":    {feedsim.Config{Rate: -1}, true},
		"negative burst":   {feedsim.Config{Burst: -1}, true},
		"wildcard prefix":  {feedsim.Config{SubjectPrefix: "md.>"}, true},
		"depth":            {feedsim.Config{BookDepth: feedsim.MaxBookDepth + 1}, true},
		"codec":            {feedsim.Config{Codec: "xml"}, true},
		"json":             {feedsim.Config{Codec: "json", Count: 100, BookDepth: 1}, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := feedsim.New(tc.cfg)
			if (err != nil) != tc.wantErr || (err != nil && !errors.Is(err, feedsim.ErrBadConfig)) {
				t.Fatalf("New = %v, wantErr %v", err, tc.wantErr)
			}
		})
	}
}

// TestGeneratedSymbols checks that many generated markets make valid,
// uncrossed books whatever their price level.
func TestGeneratedSymbols(t *testing.T) {
	s := newSim(t, feedsim.Config{Count: 200, BookDepth: 5, Seed: 11, Now: fakeClock(time.Millisecond)})
	for range 20000 {
		subj, p, err := s.Next()
		if err != nil {
			t.Fatal(err)
		}
		ch, err := proto.ChannelFromSubject("md", subj)
		if err != nil {
			t.Fatal(err)
		}
		m, err := feed.Decode(ch, p)
		if err != nil {
			t.Fatalf("%s: %v", subj, err)
		}
		if m.Ticker() != nil && proto.CompareDecimal(m.Ticker().Bid, m.Ticker().Ask) >= 0 {
			t.Fatalf("%s: crossed ticker %+v", subj, m.Ticker())
		}
	}
}

func TestRun(t *testing.T) {
	s := newSim(t, feedsim.Config{Rate: 2000})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	var n, failed atomic.Int64
	err := s.Run(ctx, func(subject string, payload []byte) error {
		if n.Add(1)%2 == 0 {
			failed.Add(1)
			return errors.New("no connection")
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Run = %v", err)
	}
	if got := n.Load(); got < 100 || got > 1000 {
		t.Fatalf("published %d in 200ms at 2000/s", got)
	}
	if failed.Load() == 0 {
		t.Fatal("no failing publish exercised")
	}
}

// TestRunBurst: with Burst, Run publishes whole bursts of Burst messages
// (a tick publishes one burst, back to back).
func TestRunBurst(t *testing.T) {
	s := newSim(t, feedsim.Config{Rate: 2000, Burst: 7, HeartbeatEvery: -1})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	var n int
	if err := s.Run(ctx, func(string, []byte) error { n++; return nil }); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if n == 0 || n%7 != 0 { // without Burst: 20 per 10 ms tick
		t.Fatalf("published %d messages, want whole bursts of 7", n)
	}
}

// Heartbeats names every channel quiet for HeartbeatEvery, with its newest
// seq, in a payload the node decodes as a heartbeat; a busy channel gets
// none.
func TestHeartbeats(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := newSim(t, feedsim.Config{Symbols: []string{"BTC-USD"}, HeartbeatEvery: time.Second, Now: func() time.Time { return now }})
	seqs := map[string]uint64{}
	for range 30 {
		subj, p, err := s.Next()
		if err != nil {
			t.Fatal(err)
		}
		ch, err := proto.ParseChannel(strings.TrimPrefix(subj, "md."))
		if err != nil {
			t.Fatal(err)
		}
		m, err := feed.Decode(ch, p)
		if err != nil {
			t.Fatal(err)
		}
		seqs[subj] = m.Seq
	}
	quiet, _, err := s.Heartbeats()
	if err != nil {
		t.Fatal(err)
	}
	for _, subj := range quiet {
		if _, sent := seqs[subj]; sent {
			t.Fatalf("heartbeat on %s right after its messages", subj)
		}
	}
	now = now.Add(time.Second)
	subjects, payloads, err := s.Heartbeats()
	if err != nil {
		t.Fatal(err)
	}
	if want := 3 + len(proto.CandleIntervals()); len(subjects) != want {
		t.Fatalf("heartbeats on %q, want all %d channels of BTC-USD", subjects, want)
	}
	for i, subj := range subjects {
		ch, _ := proto.ParseChannel(strings.TrimPrefix(subj, "md."))
		m, err := feed.Decode(ch, payloads[i])
		if err != nil || !m.Heartbeat || m.Seq != seqs[subj] {
			t.Fatalf("%s: decoded %+v, %v; want a heartbeat with seq %d", subj, m, err, seqs[subj])
		}
	}
	if subjects, _, _ := s.Heartbeats(); len(subjects) != 0 {
		t.Fatalf("heartbeats again at once: %q", subjects)
	}
}

// barCheck checks the candles of a stream against its trades: each bar
// holds exactly the trades of its period published before it, a bar is
// closed once and before the next bar of its interval, and starts never
// go back.
type barCheck struct {
	trades       map[string][]*proto.Trade // by symbol, in order
	last         map[proto.Channel]*proto.Candle
	closed, open int
}

func newBarCheck() *barCheck {
	return &barCheck{trades: map[string][]*proto.Trade{}, last: map[proto.Channel]*proto.Candle{}}
}

func (b *barCheck) trade(t *testing.T, tr *proto.Trade) {
	t.Helper()
	b.trades[tr.Symbol] = append(b.trades[tr.Symbol], tr)
}

func (b *barCheck) candle(t *testing.T, ch proto.Channel, c *proto.Candle) {
	t.Helper()
	if prev := b.last[ch]; prev != nil {
		switch {
		case c.Start < prev.Start:
			t.Fatalf("%s: bar %d after %d", ch, c.Start, prev.Start)
		case c.Start == prev.Start && prev.Closed:
			t.Fatalf("%s: bar %d after its close", ch, c.Start)
		case c.Start > prev.Start && !prev.Closed:
			t.Fatalf("%s: bar %d before bar %d closed", ch, c.Start, prev.Start)
		}
	}
	b.last[ch] = c
	if c.Closed {
		b.closed++
	} else {
		b.open++
	}
	end := c.Start + proto.IntervalDuration(ch.Param).Nanoseconds()
	var in []*proto.Trade
	for _, tr := range b.trades[ch.Symbol] {
		if tr.TS >= c.Start && tr.TS < end {
			in = append(in, tr)
		}
	}
	if int64(len(in)) != c.Trades || len(in) == 0 {
		t.Fatalf("%s bar %d: %d trades, the stream had %d", ch, c.Start, c.Trades, len(in))
	}
	high, low, vol := in[0].Price, in[0].Price, new(big.Rat)
	for _, tr := range in {
		if proto.CompareDecimal(tr.Price, high) > 0 {
			high = tr.Price
		}
		if proto.CompareDecimal(tr.Price, low) < 0 {
			low = tr.Price
		}
		r, _ := new(big.Rat).SetString(tr.Size)
		vol.Add(vol, r)
	}
	got, _ := new(big.Rat).SetString(c.Volume)
	if c.Open != in[0].Price || c.Close != in[len(in)-1].Price || c.High != high || c.Low != low || got.Cmp(vol) != 0 {
		t.Fatalf("%s bar %d: %+v, trades give open %s high %s low %s close %s volume %s",
			ch, c.Start, c, in[0].Price, high, low, in[len(in)-1].Price, vol.FloatString(8))
	}
}
