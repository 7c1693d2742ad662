package feed

import (
	"slices"
	"strconv"
	"testing"

	"github.com/tickgate/tickgate/proto"
)

// bookStep is one message through a book state and what it must do.
type bookStep struct {
	m        *Message
	wantOut  Outcome
	wantEmit bool
	wantSnap bool   // the event is a snapshot
	wantPrev uint64 // the event's Prev
	// wantBids/wantAsks, when set, are the state's book afterwards (and a
	// snapshot event's data); nil skips the check.
	wantBids, wantAsks []proto.Level
	wantSynced         *bool
	wantRestart        bool
}

var (
	yes = ptr(true)
	no  = ptr(false)
)

func ptr(b bool) *bool { return &b }

var (
	snapBids = Ls(L("100.2", "1"), L("100.1", "2"), L("100", "3"))
	snapAsks = Ls(L("100.3", "1"), L("100.4", "2"), L("100.5", "3"))
)

func snap(seq uint64) *Message {
	return bookMsg(seq, true, slices.Clone(snapBids), slices.Clone(snapAsks), 0)
}

func TestBookStateApply(t *testing.T) {
	tests := map[string][]bookStep{
		"snapshot then update": {
			{m: snap(1), wantOut: OutcomeSnapshot, wantEmit: true, wantSnap: true, wantPrev: 0, wantBids: snapBids, wantAsks: snapAsks, wantSynced: yes},
			{m: bookMsg(2, false, Ls(L("100.2", "5")), nil, 0), wantOut: OutcomeApplied, wantEmit: true, wantPrev: 1,
				wantBids: Ls(L("100.2", "5"), L("100.1", "2"), L("100", "3")), wantAsks: snapAsks},
		},
		"update before the first snapshot": {
			{m: bookMsg(1, false, Ls(L("100.2", "5")), nil, 0), wantOut: OutcomeUnsynced, wantSynced: no},
			{m: snap(2), wantOut: OutcomeSnapshot, wantEmit: true, wantSnap: true, wantPrev: 0, wantBids: snapBids, wantAsks: snapAsks, wantSynced: yes},
			{m: bookMsg(3, false, nil, Ls(L("100.3", "0")), 0), wantOut: OutcomeApplied, wantEmit: true, wantPrev: 2,
				wantBids: snapBids, wantAsks: Ls(L("100.4", "2"), L("100.5", "3"))},
		},
		"duplicates": {
			{m: snap(1), wantOut: OutcomeSnapshot, wantEmit: true, wantSnap: true},
			{m: bookMsg(2, false, Ls(L("100.2", "5")), nil, 0), wantOut: OutcomeApplied, wantEmit: true, wantPrev: 1},
			{m: bookMsg(2, false, Ls(L("100.2", "7")), nil, 0), wantOut: OutcomeDuplicate,
				wantBids: Ls(L("100.2", "5"), L("100.1", "2"), L("100", "3"))},
			{m: bookMsg(1, false, Ls(L("100.2", "7")), nil, 0), wantOut: OutcomeRestart, wantSynced: no},
			{m: snap(2), wantOut: OutcomeSnapshot, wantEmit: true, wantSnap: true, wantPrev: 2, wantBids: snapBids, wantSynced: yes},
			{m: snap(2), wantOut: OutcomeDuplicate},
			{m: bookMsg(3, false, Ls(L("100.2", "6")), nil, 0), wantOut: OutcomeApplied, wantEmit: true, wantPrev: 2},
		},
		"a duplicate of seq 1 is no restart": {
			{m: snap(1), wantOut: OutcomeSnapshot, wantEmit: true, wantSnap: true},
			{m: snap(1), wantOut: OutcomeDuplicate, wantSynced: yes},
		},
		"publisher restart with a snapshot: the same book goes out again": {
			{m: snap(1), wantOut: OutcomeSnapshot, wantEmit: true, wantSnap: true},
			{m: bookMsg(2, false, Ls(L("100.2", "5")), nil, 0), wantOut: OutcomeApplied, wantEmit: true, wantPrev: 1},
			{m: bookMsg(3, false, Ls(L("100.2", "1")), nil, 0), wantOut: OutcomeApplied, wantEmit: true, wantPrev: 2},
			{m: snap(1), wantOut: OutcomeRestart, wantEmit: true, wantSnap: true, wantRestart: true, wantPrev: 3, wantBids: snapBids, wantSynced: yes},
			{m: bookMsg(2, false, Ls(L("100.2", "9")), nil, 0), wantOut: OutcomeApplied, wantEmit: true, wantPrev: 1},
		},
		"gap unsyncs and a snapshot recovers": {
			{m: snap(1), wantOut: OutcomeSnapshot, wantEmit: true, wantSnap: true},
			{m: bookMsg(2, false, Ls(L("100.2", "5")), nil, 0), wantOut: OutcomeApplied, wantEmit: true, wantPrev: 1},
			{m: bookMsg(4, false, Ls(L("100.2", "6")), nil, 0), wantOut: OutcomeGap, wantSynced: no},
			{m: bookMsg(5, false, Ls(L("100.2", "7")), nil, 0), wantOut: OutcomeUnsynced, wantSynced: no},
			{m: bookMsg(5, false, Ls(L("100.2", "7")), nil, 0), wantOut: OutcomeDuplicate, wantSynced: no},
			{m: snap(6), wantOut: OutcomeSnapshot, wantEmit: true, wantSnap: true, wantPrev: 2, wantBids: snapBids, wantAsks: snapAsks, wantSynced: yes},
			{m: bookMsg(7, false, Ls(L("100.2", "8")), nil, 0), wantOut: OutcomeApplied, wantEmit: true, wantPrev: 6},
		},
		"unchanged periodic snapshot": {
			{m: snap(1), wantOut: OutcomeSnapshot, wantEmit: true, wantSnap: true},
			{m: bookMsg(2, false, Ls(L("100.2", "5")), nil, 0), wantOut: OutcomeApplied, wantEmit: true, wantPrev: 1},
			{m: bookMsg(3, false, Ls(L("100.2", "1")), nil, 0), wantOut: OutcomeApplied, wantEmit: true, wantPrev: 2},
			{m: snap(4), wantOut: OutcomeSnapshotUnchanged, wantSynced: yes},
			{m: snap(5), wantOut: OutcomeSnapshotUnchanged, wantSynced: yes},
			{m: bookMsg(6, false, Ls(L("100.2", "9")), nil, 0), wantOut: OutcomeApplied, wantEmit: true, wantPrev: 3},
		},
		"changed periodic snapshot emits": {
			{m: snap(1), wantOut: OutcomeSnapshot, wantEmit: true, wantSnap: true},
			{m: bookMsg(2, false, Ls(L("100.2", "5")), nil, 0), wantOut: OutcomeApplied, wantEmit: true, wantPrev: 1},
			{m: snap(3), wantOut: OutcomeSnapshot, wantEmit: true, wantSnap: true, wantPrev: 2, wantBids: snapBids, wantAsks: snapAsks},
			{m: bookMsg(4, false, Ls(L("100.2", "5")), nil, 0), wantOut: OutcomeApplied, wantEmit: true, wantPrev: 3},
		},
		"snapshot with other price strings is a change": {
			{m: snap(1), wantOut: OutcomeSnapshot, wantEmit: true, wantSnap: true},
			{m: bookMsg(2, true, Ls(L("100.20", "1"), L("100.1", "2"), L("100", "3")), slices.Clone(snapAsks), 0),
				wantOut: OutcomeSnapshot, wantEmit: true, wantSnap: true, wantPrev: 1,
				wantBids: Ls(L("100.20", "1"), L("100.1", "2"), L("100", "3"))},
		},
		"checksum mismatch unsyncs": {
			{m: snap(1), wantOut: OutcomeSnapshot, wantEmit: true, wantSnap: true},
			{m: bookMsg(2, false, Ls(L("100.2", "5")), nil, 12345), wantOut: OutcomeChecksumMismatch, wantSynced: no},
			{m: bookMsg(3, false, Ls(L("100.2", "6")), nil, 0), wantOut: OutcomeUnsynced, wantSynced: no},
			{m: snap(4), wantOut: OutcomeSnapshot, wantEmit: true, wantSnap: true, wantPrev: 1, wantBids: snapBids, wantSynced: yes},
		},
		"matching checksum accepted": {
			{m: snap(1), wantOut: OutcomeSnapshot, wantEmit: true, wantSnap: true},
			{m: bookMsg(2, false, Ls(L("100.2", "5")), nil,
				proto.BookChecksum(Ls(L("100.2", "5"), L("100.1", "2"), L("100", "3")), snapAsks)),
				wantOut: OutcomeApplied, wantEmit: true, wantPrev: 1},
		},
		"level removal, also of a missing level": {
			{m: snap(1), wantOut: OutcomeSnapshot, wantEmit: true, wantSnap: true},
			{m: bookMsg(2, false, Ls(L("100.1", "0"), L("99", "0")), Ls(L("100.5", "0.000"), L("200", "0")), 0),
				wantOut: OutcomeApplied, wantEmit: true, wantPrev: 1,
				wantBids: Ls(L("100.2", "1"), L("100", "3")), wantAsks: Ls(L("100.3", "1"), L("100.4", "2"))},
			{m: bookMsg(3, false, Ls(L("100.2", "0"), L("100", "0")), Ls(L("100.3", "0"), L("100.4", "0")), 0),
				wantOut: OutcomeApplied, wantEmit: true, wantPrev: 2, wantBids: Ls(), wantAsks: Ls()},
		},
		"inserts keep book order": {
			{m: snap(1), wantOut: OutcomeSnapshot, wantEmit: true, wantSnap: true},
			{m: bookMsg(2, false, Ls(L("100.25", "1"), L("100.05", "4"), L("99", "9")), Ls(L("100.29", "1"), L("100.45", "7"), L("101", "9")), 0),
				wantOut: OutcomeApplied, wantEmit: true, wantPrev: 1,
				wantBids: Ls(L("100.25", "1"), L("100.2", "1"), L("100.1", "2"), L("100.05", "4"), L("100", "3"), L("99", "9")),
				wantAsks: Ls(L("100.29", "1"), L("100.3", "1"), L("100.4", "2"), L("100.45", "7"), L("100.5", "3"), L("101", "9"))},
		},
		"numeric price equality keeps the newest string": {
			{m: bookMsg(1, true, Ls(L("64000.1", "1"), L("64000", "2")), Ls(L("64000.2", "1")), 0), wantOut: OutcomeSnapshot, wantEmit: true, wantSnap: true},
			{m: bookMsg(2, false, Ls(L("64000.10", "1.5")), nil, 0), wantOut: OutcomeApplied, wantEmit: true, wantPrev: 1,
				wantBids: Ls(L("64000.10", "1.5"), L("64000", "2")), wantAsks: Ls(L("64000.2", "1"))},
			{m: bookMsg(3, false, Ls(L("064000.100", "0"), L("64000.00", "3")), Ls(L("64000.20", "0")), 0), wantOut: OutcomeApplied, wantEmit: true, wantPrev: 2,
				wantBids: Ls(L("64000.00", "3")), wantAsks: Ls()},
		},
	}
	for name, steps := range tests {
		t.Run(name, func(t *testing.T) {
			st := NewState(bookBTC, 0)
			bs := st.(*bookState)
			for i, s := range steps {
				sent := *s.m.Book()
				sent.Bids, sent.Asks = slices.Clone(sent.Bids), slices.Clone(sent.Asks)
				ev, emit, out := st.Apply(s.m)
				if emit != s.wantEmit || out != s.wantOut {
					t.Fatalf("step %d (seq %d): emit=%v out=%v, want emit=%v out=%v", i, s.m.Seq, emit, out, s.wantEmit, s.wantOut)
				}
				if s.wantSynced != nil && bs.synced != *s.wantSynced {
					t.Fatalf("step %d: synced=%v, want %v", i, bs.synced, *s.wantSynced)
				}
				if s.wantBids != nil && !slices.Equal(bs.bids, s.wantBids) {
					t.Fatalf("step %d: bids %v, want %v", i, bs.bids, s.wantBids)
				}
				if s.wantAsks != nil && !slices.Equal(bs.asks, s.wantAsks) {
					t.Fatalf("step %d: asks %v, want %v", i, bs.asks, s.wantAsks)
				}
				if !emit {
					continue
				}
				checkBookEvent(t, st, ev, s, &sent)
			}
		})
	}
}

// checkBookEvent checks an emitted book event against its step and the
// state it came from.
func checkBookEvent(t *testing.T, st State, ev Event, s bookStep, sent *proto.Book) {
	t.Helper()
	bs := st.(*bookState)
	b, ok := ev.Data.(*proto.Book)
	if !ok {
		t.Fatalf("event data %T, want *proto.Book", ev.Data)
	}
	if ev.Seq != s.m.Seq || ev.Prev != s.wantPrev || ev.Snapshot != s.wantSnap || ev.Restart != s.wantRestart || ev.Channel != bookBTC || ev.TS != sent.TS || b.TS != sent.TS {
		t.Fatalf("event seq %d prev %d snapshot %v restart %v ts %d, want %d %d %v %v %d",
			ev.Seq, ev.Prev, ev.Snapshot, ev.Restart, ev.TS, s.m.Seq, s.wantPrev, s.wantSnap, s.wantRestart, sent.TS)
	}
	want := proto.BookChecksum(bs.bids, bs.asks)
	if b.Checksum != want {
		t.Fatalf("event checksum %d, want the book's %d", b.Checksum, want)
	}
	if b.Bids == nil || b.Asks == nil {
		t.Fatalf("event data has nil sides: %+v", b)
	}
	if ev.Snapshot {
		if b.Symbol != "BTC-USD" || !slices.Equal(b.Bids, bs.bids) || !slices.Equal(b.Asks, bs.asks) {
			t.Fatalf("snapshot event %+v is not the book %v / %v", b, bs.bids, bs.asks)
		}
	} else if b.Symbol != "" || !slices.Equal(b.Bids, sent.Bids) || !slices.Equal(b.Asks, sent.Asks) {
		t.Fatalf("update event %+v is not the delta as sent %+v", b, sent)
	}
	if st.LastSeq() != ev.Seq {
		t.Fatalf("LastSeq %d, want %d", st.LastSeq(), ev.Seq)
	}
	seq, data, ok := st.Snapshot(SnapshotOptions{})
	if !ok || seq != ev.Seq {
		t.Fatalf("Snapshot() seq %d ok %v, want %d", seq, ok, ev.Seq)
	}
	sb := data.(*proto.Book)
	if sb.Symbol != "BTC-USD" || sb.Checksum != want || !slices.Equal(sb.Bids, bs.bids) || !slices.Equal(sb.Asks, bs.asks) {
		t.Fatalf("Snapshot() %+v is not the book", sb)
	}
}

// TestBookEventDataImmutable checks that emitted data and snapshots do not
// change when the state moves on.
func TestBookEventDataImmutable(t *testing.T) {
	st := NewState(bookBTC, 0)
	ev1, _, _ := st.Apply(snap(1))
	_, snapData, _ := st.Snapshot(SnapshotOptions{})
	snapEv := *ev1.Data.(*proto.Book)
	snapEv.Bids, snapEv.Asks = slices.Clone(snapEv.Bids), slices.Clone(snapEv.Asks)
	snapCopy := *snapData.(*proto.Book)
	snapCopy.Bids, snapCopy.Asks = slices.Clone(snapCopy.Bids), slices.Clone(snapCopy.Asks)
	ev2, _, _ := st.Apply(bookMsg(2, false, Ls(L("100.2", "0"), L("100.15", "4")), Ls(L("100.3", "9")), 0))
	delta := *ev2.Data.(*proto.Book)
	delta.Bids, delta.Asks = slices.Clone(delta.Bids), slices.Clone(delta.Asks)
	for seq := uint64(3); seq < 50; seq++ {
		p := []string{"100.2", "100.1", "100", "100.15", "99"}[seq%5]
		st.Apply(bookMsg(seq, false, Ls(L(p, []string{"0", "1", "2"}[seq%3])), Ls(L("100."+p[len(p)-1:]+"9", "1")), 0))
	}
	st.Apply(bookMsg(50, true, Ls(L("1", "1")), Ls(L("2", "1")), 0))
	for name, c := range map[string][2]*proto.Book{
		"snapshot event": {ev1.Data.(*proto.Book), &snapEv},
		"Snapshot()":     {snapData.(*proto.Book), &snapCopy},
		"update event":   {ev2.Data.(*proto.Book), &delta},
	} {
		got, want := c[0], c[1]
		if !slices.Equal(got.Bids, want.Bids) || !slices.Equal(got.Asks, want.Asks) || got.Checksum != want.Checksum || got.Symbol != want.Symbol {
			t.Errorf("%s changed: %+v, was %+v", name, got, want)
		}
	}
}

func TestBookStateSince(t *testing.T) {
	upd := func(seq uint64, size string) *Message { return bookMsg(seq, false, Ls(L("100.2", size)), nil, 0) }
	changed := func(seq uint64) *Message { return bookMsg(seq, true, Ls(L("99", "1")), Ls(L("101", "1")), 0) }
	type query struct {
		since  uint64
		wantOK bool
		want   []uint64 // seqs
	}
	tests := map[string]struct {
		history int
		msgs    []*Message
		queries []query
	}{
		"chain from the snapshot": {
			msgs: []*Message{snap(1), upd(2, "2"), upd(3, "3")},
			// 4 and 67: a client a little ahead (it saw them on another
			// node first) resumes with nothing to replay yet; 68 is too far.
			queries: []query{{1, true, []uint64{2, 3}}, {2, true, []uint64{3}}, {3, true, nil}, {4, true, nil}, {3 + AheadMax, true, nil}, {4 + AheadMax, false, nil}, {0, false, nil}},
		},
		"not across a snapshot event": {
			msgs:    []*Message{snap(1), upd(2, "2"), changed(3), upd(4, "4")},
			queries: []query{{1, false, nil}, {2, false, nil}, {3, true, []uint64{4}}, {4, true, nil}},
		},
		"unchanged snapshot seqs resume": {
			msgs:    []*Message{snap(1), upd(2, "2"), snap2(3, "2"), upd(4, "4"), snap2(5, "4")},
			queries: []query{{2, true, []uint64{4}}, {3, true, []uint64{4}}, {4, true, nil}, {5, true, nil}, {6, true, nil}, {4 + AheadMax, true, nil}, {5 + AheadMax, false, nil}},
		},
		"unsynced after a gap": {
			msgs:    []*Message{snap(1), upd(2, "2"), upd(4, "4")},
			queries: []query{{1, false, nil}, {2, false, nil}, {4, false, nil}},
		},
		"history overflow": {
			history: 3,
			msgs:    []*Message{snap(1), upd(2, "2"), upd(3, "3"), upd(4, "4"), upd(5, "5"), upd(6, "6")},
			queries: []query{{1, false, nil}, {2, false, nil}, {3, true, []uint64{4, 5, 6}}, {5, true, []uint64{6}}},
		},
		"empty": {
			queries: []query{{1, false, nil}, {0, false, nil}},
		},
		"not from a seq the publisher's previous run reached": {
			msgs: []*Message{snap(1), upd(2, "2"), upd(3, "3"), upd(4, "4"), // the first run
				snap(1), upd(2, "5"), upd(3, "6"), upd(4, "7"), upd(5, "8"), upd(6, "9")}, // a restart
			queries: []query{{2, false, nil}, {4, false, nil}, {5, true, []uint64{6}}, {6, true, nil}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			st := NewState(bookBTC, tc.history)
			for _, m := range tc.msgs {
				st.Apply(m)
			}
			for _, q := range tc.queries {
				evs, ok := st.Since(q.since)
				if ok != q.wantOK {
					t.Fatalf("Since(%d) ok = %v, want %v", q.since, ok, q.wantOK)
				}
				var got []uint64
				for i, e := range evs {
					got = append(got, e.Seq)
					if e.Snapshot {
						t.Fatalf("Since(%d) returned a snapshot event", q.since)
					}
					if i > 0 && e.Prev != evs[i-1].Seq {
						t.Fatalf("Since(%d): broken chain at %d: prev %d", q.since, e.Seq, e.Prev)
					}
				}
				if !slices.Equal(got, q.want) {
					t.Fatalf("Since(%d) = %v, want %v", q.since, got, q.want)
				}
			}
		})
	}
}

// snap2 is snap with the best bid's size set to size: an unchanged periodic
// snapshot after upd(_, size).
func snap2(seq uint64, size string) *Message {
	m := snap(seq)
	m.Book().Bids[0][1] = size
	return m
}

// TestBookChecksumMatchesProto pins the state's own checksum to
// proto.BookChecksum, including books deeper than the checksum depth and
// empty sides.
func TestBookChecksumMatchesProto(t *testing.T) {
	tests := map[string]struct{ bids, asks []proto.Level }{
		"empty":     {Ls(), Ls()},
		"one side":  {Ls(L("1", "2")), Ls()},
		"shallow":   {snapBids, snapAsks},
		"deep":      {deepLevels(30, true), deepLevels(25, false)},
		"long strs": {Ls(L("123456789012345678901234567890.12345678", "98765432109876543210987654321.123456789")), Ls()},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := &bookState{bids: tc.bids, asks: tc.asks}
			if got, want := s.bookChecksum(), proto.BookChecksum(tc.bids, tc.asks); got != want {
				t.Fatalf("checksum %d, proto.BookChecksum %d", got, want)
			}
		})
	}
}

func deepLevels(n int, desc bool) []proto.Level {
	var ls []proto.Level
	for i := range n {
		p := 1000 + i
		if desc {
			p = 1000 - i
		}
		ls = append(ls, L(strconv.Itoa(p)+".5", strconv.Itoa(i+1)))
	}
	return ls
}

// TestBookApplyUpdateAllocs pins zero allocations for a delta that changes
// existing levels.
func TestBookApplyUpdateAllocs(t *testing.T) {
	st := NewState(bookBTC, 4)
	st.Apply(bookMsg(1, true, deepLevels(25, true), deepLevels(25, false), 0))
	msgs := make([]*Message, 200)
	for i := range msgs {
		msgs[i] = bookMsg(uint64(i+2), false, Ls(L("999.5", strconv.Itoa(i+1))), Ls(L("1003.5", "7")), 0)
	}
	i := 0
	allocs := testing.AllocsPerRun(100, func() {
		if _, emit, _ := st.Apply(msgs[i]); !emit {
			t.Fatal("not emitted")
		}
		i++
	})
	if allocs != 0 {
		t.Fatalf("Apply of a delta allocates %v times", allocs)
	}
}
