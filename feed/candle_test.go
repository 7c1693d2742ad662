package feed

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tickgate/tickgate/proto"
)

var candle1m = proto.Channel{Kind: proto.KindCandle, Param: "1m", Symbol: "BTC-USD"}

// minute is the start of the n-th minute of a test day.
func minute(n int) int64 {
	return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(n) * time.Minute).UnixNano()
}

// bar is a valid 1m bar starting at minute n.
func bar(n int, closed bool) *proto.Candle {
	return &proto.Candle{Symbol: "BTC-USD", Interval: "1m", Start: minute(n), Open: "100", High: "110",
		Low: "90", Close: "105", Volume: "3.5", Trades: 7, Closed: closed, TS: minute(n) + 1}
}

func candleMsg(seq uint64, c *proto.Candle) *Message { return &Message{Seq: seq, Data: c} }

func TestDecodeCandle(t *testing.T) {
	ok := func(c *proto.Candle) {}
	tests := map[string]struct {
		ch     proto.Channel
		typ    string
		edit   func(c *proto.Candle)
		reason string // "" for valid
	}{
		"valid":               {candle1m, proto.FeedUpdate, ok, ""},
		"interval filled":     {candle1m, proto.FeedUpdate, func(c *proto.Candle) { c.Interval, c.Symbol = "", "" }, ""},
		"1d at midnight":      {proto.Channel{Kind: proto.KindCandle, Param: "1d", Symbol: "BTC-USD"}, proto.FeedUpdate, func(c *proto.Candle) { c.Interval = "" }, ""},
		"1d not at midnight":  {proto.Channel{Kind: proto.KindCandle, Param: "1d", Symbol: "BTC-USD"}, proto.FeedUpdate, func(c *proto.Candle) { c.Interval, c.Start = "", minute(60) }, "aligned"},
		"4h off by a minute":  {proto.Channel{Kind: proto.KindCandle, Param: "4h", Symbol: "BTC-USD"}, proto.FeedUpdate, func(c *proto.Candle) { c.Interval, c.Start = "", minute(241) }, "aligned"},
		"start mid-minute":    {candle1m, proto.FeedUpdate, func(c *proto.Candle) { c.Start += int64(time.Second) }, "aligned"},
		"negative start":      {candle1m, proto.FeedUpdate, func(c *proto.Candle) { c.Start = -minute(0) }, "aligned"},
		"interval mismatch":   {candle1m, proto.FeedUpdate, func(c *proto.Candle) { c.Interval = "5m" }, "interval"},
		"symbol mismatch":     {candle1m, proto.FeedUpdate, func(c *proto.Candle) { c.Symbol = "ETH-USD" }, "symbol"},
		"high below open":     {candle1m, proto.FeedUpdate, func(c *proto.Candle) { c.High = "99" }, "high"},
		"high below close":    {candle1m, proto.FeedUpdate, func(c *proto.Candle) { c.High = "104.99" }, "high"},
		"low above open":      {candle1m, proto.FeedUpdate, func(c *proto.Candle) { c.Low = "100.01" }, "low"},
		"low above close":     {candle1m, proto.FeedUpdate, func(c *proto.Candle) { c.Open, c.Close, c.Low = "100", "95", "96" }, "low"},
		"high equals":         {candle1m, proto.FeedUpdate, func(c *proto.Candle) { c.High, c.Low = "105", "100" }, ""},
		"open not decimal":    {candle1m, proto.FeedUpdate, func(c *proto.Candle) { c.Open = "1e2" }, "open"},
		"volume missing":      {candle1m, proto.FeedUpdate, func(c *proto.Candle) { c.Volume = "" }, "volume"},
		"negative trades":     {candle1m, proto.FeedUpdate, func(c *proto.Candle) { c.Trades = -1 }, "negative"},
		"a candle snapshot":   {candle1m, proto.FeedSnapshot, ok, "only updates"},
		"trailing point high": {candle1m, proto.FeedUpdate, func(c *proto.Candle) { c.High = "110." }, "high"},
	}
	for name, tc := range tests {
		for _, cd := range both {
			t.Run(name+"/"+cd.Name(), func(t *testing.T) {
				c := bar(0, false)
				tc.edit(c)
				b, err := cd.Append(nil, proto.FeedMessage{Seq: 1, Type: tc.typ, Data: c})
				if err != nil {
					t.Fatal(err)
				}
				m, err := Decode(tc.ch, b)
				if tc.reason == "" {
					if err != nil || m.Candle() == nil || m.Candle().Interval != tc.ch.Param || m.Candle().Symbol != "BTC-USD" || m.TS() != c.TS {
						t.Fatalf("Decode = %+v, %v", m, err)
					}
					return
				}
				if !errors.Is(err, ErrBadFeedMessage) || !strings.Contains(err.Error(), tc.reason) {
					t.Fatalf("Decode = %v, want an error about %s", err, tc.reason)
				}
			})
		}
	}
}

func TestCandleState(t *testing.T) {
	st := NewState(candle1m, 0, CandleBars(3))
	if _, _, ok := st.Snapshot(SnapshotOptions{}); ok {
		t.Fatal("a snapshot without bars")
	}
	mustApply(t, st, candleMsg(1, bar(0, false)), true, OutcomeApplied)
	mustApply(t, st, candleMsg(2, bar(0, false)), true, OutcomeApplied) // the open bar again
	mustApply(t, st, candleMsg(3, bar(0, true)), true, OutcomeApplied)
	// What one message cannot show: a second close, a bar going back.
	mustApply(t, st, candleMsg(4, bar(0, true)), false, OutcomeInvalid)
	mustApply(t, st, candleMsg(4, bar(0, false)), false, OutcomeInvalid)
	mustApply(t, st, candleMsg(4, bar(1, true)), true, OutcomeApplied)
	mustApply(t, st, candleMsg(5, bar(0, false)), false, OutcomeInvalid)
	mustApply(t, st, candleMsg(5, bar(3, false)), true, OutcomeApplied) // minute 2 had no trades
	mustApply(t, st, candleMsg(6, bar(3, true)), true, OutcomeApplied)
	mustApply(t, st, candleMsg(7, bar(4, false)), true, OutcomeApplied)
	mustApply(t, st, candleMsg(7, bar(5, false)), false, OutcomeDuplicate)

	starts := func(o SnapshotOptions) (uint64, []int64, []bool) {
		seq, data, ok := st.Snapshot(o)
		if !ok {
			t.Fatal("no snapshot")
		}
		cs := data.(*proto.CandleSnapshot)
		if cs.Symbol != "BTC-USD" || cs.Interval != "1m" {
			t.Fatalf("snapshot %+v", cs)
		}
		var s []int64
		var closed []bool
		for _, b := range cs.Bars {
			s, closed = append(s, b.Start), append(closed, b.Closed)
		}
		return seq, s, closed
	}
	// The state keeps 3 bars (CandleBars), oldest first, the last open.
	seq, s, closed := starts(SnapshotOptions{})
	if seq != 7 || len(s) != 3 || s[0] != minute(1) || s[1] != minute(3) || s[2] != minute(4) || !closed[0] || !closed[1] || closed[2] {
		t.Fatalf("snapshot seq %d starts %v closed %v", seq, s, closed)
	}
	if _, s, _ := starts(SnapshotOptions{Bars: 2}); len(s) != 2 || s[0] != minute(3) {
		t.Fatalf("2 bars: %v", s)
	}
	// Resume from any seq of the chain; the bad messages are not in it.
	evs, ok := st.Since(3)
	if !ok || len(evs) != 4 || evs[0].Seq != 4 || evs[0].Prev != 3 || evs[3].Seq != 7 {
		t.Fatalf("Since(3) = %v, %v", seqs(evs), ok)
	}
	// A seq jump is an event gap, reported like a trade's.
	ev := mustApply(t, st, candleMsg(10, bar(4, true)), true, OutcomeGap)
	if ev.GapFrom != 8 || ev.GapTo != 9 || ev.Prev != 7 {
		t.Fatalf("gap event %+v", ev)
	}
	// Many bars: storage stays bounded by twice the limit.
	for i := range 100 {
		mustApply(t, st, candleMsg(uint64(11+i), bar(10+i, true)), true, OutcomeApplied)
	}
	if cs := st.(*candleState); len(cs.bars) > 2*cs.limit || cs.newest().Start != minute(109) {
		t.Fatalf("%d bars kept, newest %d", len(cs.bars), cs.newest().Start)
	}
}

// A publisher that restarts may send bars again from an earlier start.
func TestCandleStateRestart(t *testing.T) {
	st := NewState(candle1m, 0)
	for i := range 100 {
		mustApply(t, st, candleMsg(uint64(i+1), bar(i, true)), true, OutcomeApplied)
	}
	mustApply(t, st, candleMsg(1, bar(98, false)), true, OutcomeRestart)
	_, data, _ := st.Snapshot(SnapshotOptions{Bars: 1000})
	bars := data.(*proto.CandleSnapshot).Bars
	if n := len(bars); n != 99 || bars[n-1].Start != minute(98) || bars[n-1].Closed {
		t.Fatalf("%d bars, newest %+v", n, bars[len(bars)-1])
	}
}
