package feed

import (
	"fmt"
	"slices"
	"testing"

	"github.com/tickgate/tickgate/internal/booktest"
	"github.com/tickgate/tickgate/proto"
)

func TestStreamStateApply(t *testing.T) {
	type step struct {
		seq      uint64
		wantEmit bool
		wantOut  Outcome
		wantPrev uint64
	}
	tests := map[string]struct {
		steps   []step
		wantEnd uint64
	}{
		"in order": {
			steps:   []step{{1, true, OutcomeApplied, 0}, {2, true, OutcomeApplied, 1}, {3, true, OutcomeApplied, 2}},
			wantEnd: 3,
		},
		"first message at any seq is no gap": {
			steps:   []step{{41, true, OutcomeApplied, 0}, {42, true, OutcomeApplied, 41}},
			wantEnd: 42,
		},
		"duplicate and late seq dropped": {
			steps: []step{{1001, true, OutcomeApplied, 0}, {1001, false, OutcomeDuplicate, 0}, {1002, true, OutcomeApplied, 1001}, {1003, true, OutcomeApplied, 1002},
				{1003, false, OutcomeDuplicate, 0}, {1002, false, OutcomeDuplicate, 0}, {1004, true, OutcomeApplied, 1003}},
			wantEnd: 1004,
		},
		"a duplicate of seq 1 is no restart": {
			steps:   []step{{1, true, OutcomeApplied, 0}, {1, false, OutcomeDuplicate, 0}, {2, true, OutcomeApplied, 1}},
			wantEnd: 2,
		},
		"publisher restart: seq 1 after a higher one": {
			steps:   []step{{1, true, OutcomeApplied, 0}, {2, true, OutcomeApplied, 1}, {3, true, OutcomeApplied, 2}, {1, true, OutcomeRestart, 3}, {2, true, OutcomeApplied, 1}, {2, false, OutcomeDuplicate, 0}, {3, true, OutcomeApplied, 2}},
			wantEnd: 3,
		},
		"publisher restart seen from its third message": {
			steps:   []step{{5000, true, OutcomeApplied, 0}, {5001, true, OutcomeApplied, 5000}, {3, true, OutcomeRestart, 5001}, {4, true, OutcomeApplied, 3}},
			wantEnd: 4,
		},
		"publisher restart seen far into its new run": {
			steps:   []step{{90000, true, OutcomeApplied, 0}, {2000, true, OutcomeRestart, 90000}, {2001, true, OutcomeApplied, 2000}},
			wantEnd: 2001,
		},
		"gap is counted and subscribers continue": {
			steps:   []step{{101, true, OutcomeApplied, 0}, {105, true, OutcomeGap, 101}, {106, true, OutcomeApplied, 105}, {104, false, OutcomeDuplicate, 0}},
			wantEnd: 106,
		},
	}
	for _, kind := range []proto.Kind{proto.KindTicker, proto.KindTrade} {
		for name, tc := range tests {
			t.Run(kind.String()+"/"+name, func(t *testing.T) {
				ch := proto.Channel{Kind: kind, Symbol: "BTC-USD"}
				st := NewState(ch, 0)
				for _, s := range tc.steps {
					m := tradeMsg(s.seq)
					if kind == proto.KindTicker {
						m = tickerMsg(s.seq, "64000")
					}
					ev := mustApply(t, st, m, s.wantEmit, s.wantOut)
					if !s.wantEmit {
						continue
					}
					if ev.Seq != s.seq || ev.Prev != s.wantPrev || ev.Snapshot || ev.Channel != ch || ev.Restart != (s.wantOut == OutcomeRestart) {
						t.Fatalf("event %+v, want seq %d prev %d update on %v", ev, s.seq, s.wantPrev, ch)
					}
					if ev.TS != int64(s.seq)*1000 {
						t.Fatalf("event TS %d, want %d", ev.TS, int64(s.seq)*1000)
					}
					// A trade event names the feed seqs it skipped; a
					// ticker, whose data is the whole state, does not.
					var gapFrom, gapTo uint64
					if s.wantOut == OutcomeGap && kind == proto.KindTrade {
						gapFrom, gapTo = s.wantPrev+1, s.seq-1
					}
					if ev.GapFrom != gapFrom || ev.GapTo != gapTo {
						t.Fatalf("event gap %d..%d, want %d..%d", ev.GapFrom, ev.GapTo, gapFrom, gapTo)
					}
					switch kind {
					case proto.KindTicker:
						if ev.Data != m.Ticker() {
							t.Fatalf("ticker event data is not the message's ticker")
						}
					case proto.KindTrade:
						if ev.Data != m.Trade() {
							t.Fatalf("trade event data is not the message's trade")
						}
					}
				}
				if got := st.LastSeq(); got != tc.wantEnd {
					t.Fatalf("LastSeq = %d, want %d", got, tc.wantEnd)
				}
				seq, data, ok := st.Snapshot(SnapshotOptions{})
				if kind == proto.KindTrade {
					if ok {
						t.Fatalf("trade Snapshot ok")
					}
					return
				}
				if !ok || seq != tc.wantEnd || data.(*proto.Ticker).TS != int64(tc.wantEnd)*1000 {
					t.Fatalf("Snapshot = %d, %+v, %v; want seq %d", seq, data, ok, tc.wantEnd)
				}
			})
		}
	}
}

func TestStateSnapshotEmpty(t *testing.T) {
	for _, ch := range []proto.Channel{tickerBTC, bookBTC, tradeBTC} {
		t.Run(ch.String(), func(t *testing.T) {
			st := NewState(ch, 0)
			if _, _, ok := st.Snapshot(SnapshotOptions{}); ok {
				t.Fatal("Snapshot ok on an empty state")
			}
			if st.LastSeq() != 0 {
				t.Fatal("LastSeq != 0 on an empty state")
			}
		})
	}
}

func TestStateApplyInvalid(t *testing.T) {
	tests := map[string]struct {
		ch proto.Channel
		m  *Message
	}{
		"ticker without ticker": {tickerBTC, tradeMsg(1)},
		"trade without trade":   {tradeBTC, tickerMsg(1, "1")},
		"book without book":     {bookBTC, tickerMsg(1, "1")},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			mustApply(t, NewState(tc.ch, 0), tc.m, false, OutcomeInvalid)
		})
	}
}

func TestStreamStateSince(t *testing.T) {
	type want struct {
		ok  bool
		evs [][2]uint64 // seq, prev
	}
	tests := map[string]struct {
		history int
		applied []uint64
		since   uint64
		want    want
	}{
		"from the first":          {0, []uint64{1, 2, 3}, 1, want{true, [][2]uint64{{2, 1}, {3, 2}}}},
		"from the middle":         {0, []uint64{1, 2, 3}, 2, want{true, [][2]uint64{{3, 2}}}},
		"up to date":              {0, []uint64{1, 2, 3}, 3, want{true, [][2]uint64{}}},
		"zero":                    {0, []uint64{1, 2, 3}, 0, want{false, nil}},
		"a little ahead":          {0, []uint64{1, 2, 3}, 4, want{true, [][2]uint64{}}},
		"ahead by AheadMax":       {0, []uint64{1, 2, 3}, 3 + AheadMax, want{true, [][2]uint64{}}},
		"too far ahead":           {0, []uint64{1, 2, 3}, 4 + AheadMax, want{false, nil}},
		"ahead of nothing":        {0, nil, 2, want{false, nil}},
		"empty state":             {0, nil, 1, want{false, nil}},
		"prev of oldest":          {0, []uint64{7, 8, 9}, 7, want{true, [][2]uint64{{8, 7}, {9, 8}}}},
		"before first seen":       {0, []uint64{7, 8, 9}, 6, want{false, nil}},
		"across a gap":            {0, []uint64{1, 2, 5, 6}, 2, want{true, [][2]uint64{{5, 2}, {6, 5}}}},
		"inside a gap is unknown": {0, []uint64{1, 2, 5, 6}, 3, want{false, nil}},
		"after overflow, oldest prev": {
			4, []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 6,
			want{true, [][2]uint64{{7, 6}, {8, 7}, {9, 8}, {10, 9}}},
		},
		"after overflow, too old": {4, []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 5, want{false, nil}},
		"after overflow, inside":  {4, []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 8, want{true, [][2]uint64{{9, 8}, {10, 9}}}},
		"no history":              {-1, []uint64{1, 2, 3}, 2, want{false, nil}},
		"no history, up to date":  {-1, []uint64{1, 2, 3}, 3, want{true, [][2]uint64{}}},
		// A publisher restart: seqs of its previous run mean nothing now.
		// Seqs the old run reached (up to 5) may mean either run: refused,
		// even "up to date", or a client of the old run would miss the new
		// run's first messages unseen.
		"after a restart, a seq of both runs":    {0, []uint64{1, 2, 3, 4, 5, 1, 2, 3}, 3, want{false, nil}},
		"after a restart, the old run's newest":  {0, []uint64{1, 2, 3, 4, 5, 1, 2, 3}, 5, want{false, nil}},
		"after a restart, past the old run":      {0, []uint64{1, 2, 3, 4, 5, 1, 2, 3, 4, 5, 6, 7, 8}, 6, want{true, [][2]uint64{{7, 6}, {8, 7}}}},
		"after a restart, up to date past it":    {0, []uint64{1, 2, 3, 4, 5, 1, 2, 3, 4, 5, 6, 7, 8}, 8, want{true, [][2]uint64{}}},
		"after a restart, the overlap stays out": {0, []uint64{1, 2, 3, 4, 5, 1, 2, 3, 4, 5, 6, 7, 8}, 4, want{false, nil}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			st := NewState(tradeBTC, tc.history)
			for _, seq := range tc.applied {
				if _, emit, _ := st.Apply(tradeMsg(seq)); !emit {
					t.Fatalf("seq %d not emitted", seq)
				}
			}
			evs, ok := st.Since(tc.since)
			if ok != tc.want.ok {
				t.Fatalf("Since(%d) ok = %v, want %v", tc.since, ok, tc.want.ok)
			}
			if !ok {
				return
			}
			if got := seqs(evs); !slices.Equal(got, tc.want.evs) {
				t.Fatalf("Since(%d) = %v, want %v", tc.since, got, tc.want.evs)
			}
			for _, e := range evs {
				if e.Channel != tradeBTC || e.Data.(*proto.Trade).ID != int64(e.Seq) {
					t.Fatalf("event %+v does not carry its trade", e)
				}
				// A replayed event keeps the gap it skipped.
				var gapFrom, gapTo uint64
				if e.Seq > e.Prev+1 {
					gapFrom, gapTo = e.Prev+1, e.Seq-1
				}
				if e.GapFrom != gapFrom || e.GapTo != gapTo {
					t.Fatalf("replayed %d prev %d: gap %d..%d, want %d..%d", e.Seq, e.Prev, e.GapFrom, e.GapTo, gapFrom, gapTo)
				}
			}
		})
	}
}

func TestOutcomeString(t *testing.T) {
	seen := map[string]bool{}
	for _, o := range Outcomes() {
		s := o.String()
		if s == "" || seen[s] {
			t.Fatalf("outcome %d label %q empty or duplicate", o, s)
		}
		seen[s] = true
	}
	if len(seen) != int(numOutcomes) {
		t.Fatalf("Outcomes() has %d, want %d", len(seen), numOutcomes)
	}
	if got := Outcome(200).String(); got != "outcome(200)" {
		t.Fatalf("unknown outcome label %q", got)
	}
}

// A book that deltas grow past MaxBookLevels is dropped until its next
// snapshot instead of growing without bound.
func TestBookDepthBounded(t *testing.T) {
	ch := proto.Channel{Kind: proto.KindBook, Symbol: "DEEP"}
	st := NewState(ch, 0)
	if _, emit, _ := st.Apply(&Message{Seq: 1, Snapshot: true, Data: &proto.Book{Symbol: "DEEP", Bids: []proto.Level{{"1", "1"}}, Asks: []proto.Level{{"100000", "1"}}}}); !emit {
		t.Fatal("snapshot not applied")
	}
	seq := uint64(1)
	var out Outcome
	for i := 0; i <= MaxBookLevels/100 && out != OutcomeInvalid; i++ {
		bids := make([]proto.Level, 100)
		for j := range bids {
			bids[j] = proto.Level{fmt.Sprintf("%d.%02d", 2+i, j), "1"}
		}
		seq++
		_, _, out = st.Apply(&Message{Seq: seq, Data: &proto.Book{Bids: bids}})
	}
	if out != OutcomeInvalid {
		t.Fatalf("outcome %v after growing past %d levels, want invalid", out, MaxBookLevels)
	}
	if _, _, ok := st.Snapshot(SnapshotOptions{}); ok {
		t.Fatal("book still served after it outgrew the bound")
	}
}

// Publisher heartbeats (contract 1.1): a seq above the newest seen is a
// gap, which a trade state carries in an event without data that moves no
// chain, also in its history; a ticker only counts it; a book waits for a
// snapshot; anything else changes nothing.
func TestHeartbeats(t *testing.T) {
	hb := func(seq uint64) *Message { return &Message{Seq: seq, Heartbeat: true} }
	t.Run("trade", func(t *testing.T) {
		st := NewState(tradeBTC, 0)
		mustApply(t, st, hb(1007), false, OutcomeHeartbeat) // where the feed stands: no gap
		ev := mustApply(t, st, tradeMsg(1008), true, OutcomeApplied)
		if ev.GapTo != 0 || ev.Prev != 0 {
			t.Fatalf("first trade after a heartbeat: %+v", ev)
		}
		mustApply(t, st, hb(1008), false, OutcomeHeartbeat)
		ev = mustApply(t, st, hb(1011), true, OutcomeGap)
		if ev.Data != nil || ev.GapFrom != 1009 || ev.GapTo != 1011 || ev.Prev != 1008 || st.LastSeq() != 1008 {
			t.Fatalf("gap event %+v, LastSeq %d; want a gap 1009..1011 without data, chain at 1008", ev, st.LastSeq())
		}
		ev = mustApply(t, st, tradeMsg(1012), true, OutcomeApplied)
		if ev.Prev != 1008 || ev.GapTo != 0 {
			t.Fatalf("trade after the gap: %+v, want prev 1008 and no gap of its own", ev)
		}
		mustApply(t, st, tradeMsg(1010), false, OutcomeDuplicate) // reported lost, arriving late: stays out
		evs, ok := st.Since(1008)
		if !ok || len(evs) != 2 || evs[0].Data != nil || evs[0].GapFrom != 1009 || evs[1].Seq != 1012 || evs[1].Prev != 1008 {
			t.Fatalf("Since(1008) = %+v, %v; want the gap, then trade 1012", evs, ok)
		}
	})
	t.Run("ticker", func(t *testing.T) {
		st := NewState(tickerBTC, 0)
		mustApply(t, st, tickerMsg(1, "1"), true, OutcomeApplied)
		mustApply(t, st, hb(3), false, OutcomeGap)
		ev := mustApply(t, st, tickerMsg(4, "2"), true, OutcomeApplied) // no second gap
		if seq, _, _ := st.Snapshot(SnapshotOptions{}); ev.Prev != 1 || seq != 4 {
			t.Fatalf("ticker after a heartbeat gap: %+v, snapshot seq %d", ev, seq)
		}
		if st.Resyncing() {
			t.Fatal("a ticker resyncing")
		}
	})
	t.Run("book", func(t *testing.T) {
		st := NewState(bookBTC, 0)
		mustApply(t, st, hb(4), false, OutcomeHeartbeat)
		if st.Resyncing() {
			t.Fatal("a book that never had a book is not resyncing")
		}
		f := booktest.NewFeed("BTC-USD", 3)
		snap := f.Snapshot(5)
		mustApply(t, st, &Message{Seq: 5, Snapshot: true, Data: snap.Data.(*proto.Book)}, true, OutcomeSnapshot)
		mustApply(t, st, hb(5), false, OutcomeHeartbeat)
		mustApply(t, st, hb(6), false, OutcomeGap)
		if !st.Resyncing() {
			t.Fatal("a book behind a heartbeat is not resyncing")
		}
		if _, _, ok := st.Snapshot(SnapshotOptions{}); ok {
			t.Fatal("a resyncing book has a snapshot")
		}
		snap = f.Snapshot(7)
		mustApply(t, st, &Message{Seq: 7, Snapshot: true, Data: snap.Data.(*proto.Book)}, true, OutcomeSnapshot)
		if st.Resyncing() {
			t.Fatal("still resyncing after a snapshot")
		}
	})
}
