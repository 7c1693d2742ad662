package feed

import (
	"fmt"
	"slices"
	"testing"

	"github.com/tickgate/tickgate/internal/booktest"
	"github.com/tickgate/tickgate/proto"
)

// A client of every depth that applies the state's depth updates holds
// exactly the best depth levels of the whole book after every message,
// texts included, and its checksum (top 10 of what it holds) is the
// message's. Checked over random deep books and deltas aimed at the edges
// of every depth, with periodic snapshots (changed and unchanged).
func TestDepthViewsProperty(t *testing.T) {
	steps := 250
	if testing.Short() {
		steps = 60
	}
	for seed := range uint64(5) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			f := booktest.NewDeepFeed(seed)
			st := NewState(bookBTC, 0)
			views := map[int]*booktest.CentsBook{}
			last := map[int]uint64{}
			for _, d := range proto.Depths() {
				st.Track(SnapshotOptions{Depth: d}, true)
				views[d] = booktest.NewCentsBook()
			}
			seq := uint64(0)
			snapshot := func(changed bool) {
				seq++
				var bids, asks []proto.Level
				if changed {
					bids, asks = f.Snapshot([]int{0, 5, 30, 600, 1200}[f.Rand().IntN(5)])
				} else {
					bids, asks = f.Book().Top(0, -1), f.Book().Top(1, -1)
				}
				ev, emit, _ := st.Apply(&Message{Seq: seq, Snapshot: true, Data: &proto.Book{Bids: bids, Asks: asks}})
				if emit != changed || emit && !ev.Snapshot {
					t.Fatalf("seq %d: snapshot emit %v, want %v", seq, emit, changed)
				}
				if !changed {
					return
				}
				for d, v := range views {
					sseq, data, ok := st.Snapshot(SnapshotOptions{Depth: d})
					b := data.(*proto.Book)
					if !ok || sseq != seq || len(b.Bids) > d || len(b.Asks) > d {
						t.Fatalf("depth %d snapshot: seq %d ok %v, %d/%d levels", d, sseq, ok, len(b.Bids), len(b.Asks))
					}
					v.Reset(b.Bids, b.Asks)
					last[d] = seq
				}
			}
			snapshot(true)
			for step := range steps {
				switch step % 97 {
				case 40:
					snapshot(false)
					continue
				case 96:
					snapshot(true)
					continue
				}
				bids, asks := f.Delta()
				seq++
				ck := proto.BookChecksum(f.Book().Top(0, proto.ChecksumDepth), f.Book().Top(1, proto.ChecksumDepth))
				ev, emit, out := st.Apply(&Message{Seq: seq, Data: &proto.Book{Bids: bids, Asks: asks, Checksum: ck}})
				if !emit || out != OutcomeApplied {
					t.Fatalf("seq %d: %v", seq, out)
				}
				for d, v := range views {
					u, ok := ev.View(SnapshotOptions{Depth: d})
					if !ok {
						t.Fatalf("seq %d: depth %d not in the event", seq, d)
					}
					if u.Data != nil {
						b := u.Data.(*proto.Book)
						if u.Prev != last[d] || u.N != uint32(seq-last[d]) || b.Checksum != ck || b.Bids == nil || b.Asks == nil {
							t.Fatalf("seq %d depth %d: prev %d n %d checksum %d, want prev %d n %d checksum %d",
								seq, d, u.Prev, u.N, b.Checksum, last[d], seq-last[d], ck)
						}
						v.Apply(b.Bids, b.Asks)
						last[d] = seq
					}
					wantB, wantA := f.Book().Top(0, d), f.Book().Top(1, d)
					if !v.Holds(0, wantB) || !v.Holds(1, wantA) {
						t.Fatalf("seq %d depth %d: the client's book differs from the best %d levels (delta %v / %v, view %+v)",
							seq, d, d, bids, asks, u.Data)
					}
					if got := proto.BookChecksum(v.Top(0, proto.ChecksumDepth), v.Top(1, proto.ChecksumDepth)); got != ck {
						t.Fatalf("seq %d depth %d: client checksum %d, want %d", seq, d, got, ck)
					}
				}
			}
		})
	}
}

// windowDiff is exactly the change between two windows: nothing for equal
// windows, a removal for a level that left, the level for one that entered
// or changed (its text included).
func TestWindowDiff(t *testing.T) {
	L := func(p, s string) proto.Level { return proto.Level{p, s} }
	for name, tc := range map[string]struct {
		old, cur, want []proto.Level
	}{
		"equal":   {[]proto.Level{L("3", "1"), L("2", "1")}, []proto.Level{L("3", "1"), L("2", "1")}, nil},
		"resized": {[]proto.Level{L("3", "1"), L("2", "1")}, []proto.Level{L("3", "1"), L("2", "5")}, []proto.Level{L("2", "5")}},
		"text":    {[]proto.Level{L("3.50", "1")}, []proto.Level{L("3.5", "1")}, []proto.Level{L("3.5", "1")}},
		"pushed out by a better level": {[]proto.Level{L("3", "1"), L("2", "1")}, []proto.Level{L("4", "1"), L("3", "1")},
			[]proto.Level{L("4", "1"), L("2", "0")}},
		"entered after a removal": {[]proto.Level{L("3", "1"), L("2", "1")}, []proto.Level{L("2", "1"), L("1", "7")},
			[]proto.Level{L("3", "0"), L("1", "7")}},
		"emptied": {[]proto.Level{L("3", "1")}, nil, []proto.Level{L("3", "0")}},
	} {
		t.Run(name, func(t *testing.T) {
			if got := windowDiff(nil, tc.old, tc.cur, bidOrder); !slices.Equal(got, tc.want) {
				t.Fatalf("windowDiff = %v, want %v", got, tc.want)
			}
		})
	}
}
