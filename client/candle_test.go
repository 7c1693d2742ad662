package client

import (
	"testing"
	"time"

	"github.com/tickgate/tickgate/proto"
)

// minute is the start of the n-th minute of a test day, Unix ns.
func minute(n int) int64 {
	return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(n) * time.Minute).UnixNano()
}

func testCandle(n int, close string, closed bool) proto.Candle {
	return proto.Candle{Symbol: "X", Interval: "1m", Start: minute(n), Open: "100", High: "200", Low: "50",
		Close: close, Volume: "1.5", Trades: int64(10 + n), Closed: closed, TS: minute(n) + 1}
}

func candleMessage(typ string, seq, prev uint64, data any) *message {
	return withData(message{Type: typ, Channel: "candle.1m.X", Seq: seq, Prev: prev}, data)
}

// barSnapshot is a candle snapshot's data holding bars.
func barSnapshot(bars ...proto.Candle) *proto.CandleSnapshot {
	d := &proto.CandleSnapshot{Symbol: "X", Interval: "1m"}
	for i := range bars {
		d.Bars = append(d.Bars, &bars[i])
	}
	return d
}

// A candle channel starts from its snapshot's bars, revises the open bar,
// appends the next, keeps at most its bars option, resyncs on a gap and on
// a bar it cannot use, and events carry the bars and each bar.
func TestRouterCandles(t *testing.T) {
	g := newRig(t)
	g.r.add("candle.1m.X", proto.Channel{Kind: proto.KindCandle, Param: "1m", Symbol: "X"}, subOptions{bars: 3}, g.id)
	g.r.acked(g.id, "candle.1m.X", subOptions{bars: 3}, false)
	if st := g.r.chans["candle.1m.X"].compute(); st != StateResyncing {
		t.Fatalf("before the snapshot: %v", st)
	}
	g.r.handle(candleMessage(proto.TypeSnapshot, 5, 0, barSnapshot(testCandle(0, "101", true), testCandle(1, "102", false))))
	evs := g.events()
	if len(evs) != 2 || evs[0].Type != EventSnapshot || len(evs[0].Bars) != 2 || evs[0].Seq != 5 || evs[1].State != StateLive {
		t.Fatalf("snapshot events %+v", evs)
	}
	steps := []proto.Candle{testCandle(1, "103", false), testCandle(1, "104", true), testCandle(2, "105", false), testCandle(3, "106", false)}
	for i, c := range steps {
		g.r.handle(candleMessage(proto.TypeUpdate, uint64(6+i), uint64(5+i), &c))
		evs = g.events()
		if len(evs) != 1 || evs[0].Type != EventUpdate || evs[0].Candle == nil || *evs[0].Candle != c {
			t.Fatalf("bar %d: events %+v, want bar %+v", i, evs, c)
		}
	}
	s := g.r.chans["candle.1m.X"]
	if len(s.bars) != 3 || s.bars[0].Start != minute(1) || s.bars[0].Close != "104" || !s.bars[0].Closed ||
		s.bars[2].Start != minute(3) || s.since() != 9 {
		t.Fatalf("bars %+v since %d", s.bars, s.since())
	}

	// A gap: the bars may be wrong, so the channel resyncs.
	g.r.handle(candleMessage(proto.TypeUpdate, 12, 11, barSnapshot(testCandle(3, "107", false)).Bars[0]))
	evs = g.events()
	if len(evs) != 2 || evs[0].Type != EventGap || !evs[0].Gap.Resync || evs[1].State != StateResyncing || g.kicks == 0 {
		t.Fatalf("gap events %+v", evs)
	}

	// A snapshot whose bars are out of order is malformed.
	g.r.acked(g.id, "candle.1m.X", subOptions{bars: 3}, false)
	g.r.chans["candle.1m.X"].awaitAck = 0
	g.r.handle(candleMessage(proto.TypeSnapshot, 20, 0, barSnapshot(testCandle(2, "1", true), testCandle(1, "2", false))))
	evs = g.events()
	if len(evs) == 0 || evs[0].Type != EventGap || evs[0].Gap.Reason != GapMalformed {
		t.Fatalf("disordered snapshot: %+v", evs)
	}
}

func TestApplyBar(t *testing.T) {
	b := func(n int, close string, closed bool) proto.Candle { return testCandle(n, close, closed) }
	for _, tt := range []struct {
		name  string
		bars  []proto.Candle
		bar   proto.Candle
		limit int
		want  []string // closes, oldest first
	}{
		{"first", nil, b(0, "1", false), 3, []string{"1"}},
		{"revise the open bar", []proto.Candle{b(0, "1", false)}, b(0, "2", false), 3, []string{"2"}},
		{"close it", []proto.Candle{b(0, "1", false)}, b(0, "2", true), 3, []string{"2"}},
		{"the next bar", []proto.Candle{b(0, "1", true)}, b(1, "2", false), 3, []string{"1", "2"}},
		{"beyond the limit", []proto.Candle{b(0, "1", true), b(1, "2", true)}, b(2, "3", false), 2, []string{"2", "3"}},
		{"an older bar held", []proto.Candle{b(0, "1", true), b(1, "2", false)}, b(0, "9", true), 3, []string{"9", "2"}},
		{"an older bar not held", []proto.Candle{b(2, "1", true)}, b(0, "9", true), 3, []string{"1"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := applyBar(tt.bars, tt.bar, tt.limit)
			var closes []string
			for _, c := range got {
				closes = append(closes, c.Close)
			}
			if len(closes) != len(tt.want) {
				t.Fatalf("closes %v, want %v", closes, tt.want)
			}
			for i := range closes {
				if closes[i] != tt.want[i] {
					t.Fatalf("closes %v, want %v", closes, tt.want)
				}
			}
		})
	}
}

// A slow handler gets an open bar's newest revision (its close, once
// closed), every closed bar, and the count of what was folded.
func TestQueueFoldsOpenBars(t *testing.T) {
	stats := new(counters)
	var got []Event
	q := newQueue(func(e Event) { got = append(got, e) }, 1000, stats)
	s := &chanState{name: "candle.1m.X", ch: proto.Channel{Kind: proto.KindCandle, Param: "1m", Symbol: "X"}}
	seq := uint64(0)
	for _, c := range []proto.Candle{testCandle(0, "1", false), testCandle(0, "2", false), testCandle(0, "3", true),
		testCandle(1, "4", false), testCandle(1, "5", false)} {
		seq++
		q.push(s, Event{Type: EventUpdate, Channel: s.name, Seq: seq, Prev: seq - 1, N: 1, Candle: &c}, nil)
	}
	q.flushNow()
	if len(got) != 2 {
		t.Fatalf("%d events, want 2 (bar 0 folded into its close, open bar 1 folded): %+v", len(got), got)
	}
	for i, want := range []struct {
		close     string
		closed    bool
		seq, prev uint64
		n         int
	}{{"3", true, 3, 0, 3}, {"5", false, 5, 3, 2}} {
		e := got[i]
		if e.Candle.Close != want.close || e.Candle.Closed != want.closed || e.Seq != want.seq || e.Prev != want.prev || e.N != want.n {
			t.Fatalf("event %d: %+v %+v, want %+v", i, e, e.Candle, want)
		}
	}
	if c := stats.coalesced.Load(); c != 3 {
		t.Fatalf("coalesced %d, want 3", c)
	}
	// A closed bar is never folded away: the next bar queues behind it.
	got = nil
	seq = 0
	for _, c := range []proto.Candle{testCandle(5, "1", true), testCandle(6, "2", false)} {
		seq++
		q.push(s, Event{Type: EventUpdate, Channel: s.name, Seq: seq, Prev: seq - 1, N: 1, Candle: &c}, nil)
	}
	q.flushNow()
	if len(got) != 2 || !got[0].Candle.Closed {
		t.Fatalf("after a closed bar: %+v", got)
	}
}
