package feed_test

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tickgate/tickgate/feed"
	"github.com/tickgate/tickgate/feed/feedsim"
	"github.com/tickgate/tickgate/internal/booktest"
	"github.com/tickgate/tickgate/proto"
)

// clientBook rebuilds a book from emitted events only, as a client does,
// with the reference book of internal/booktest, and the seq it holds.
type clientBook struct {
	*booktest.Book
	last uint64
}

func newClientBook() *clientBook { return &clientBook{Book: booktest.New()} }

// pad rewrites a decimal string to a numerically equal one with extra
// zeros ("100.5" → "100.500", "2" → "2.0").
func pad(rng *rand.Rand, s string) string {
	if rng.IntN(3) != 0 {
		return s
	}
	if !strings.Contains(s, ".") {
		s += "."
	}
	return s + strings.Repeat("0", 1+rng.IntN(2))
}

// TestBookProperty drives feedsim's book through a State, with lost
// messages (gaps) and price strings rewritten to equal numbers, rebuilds
// the book on the client side from the emitted events only, and checks
// after every event that the client's checksum is the event's and the
// client's book is State.Snapshot().
func TestBookProperty(t *testing.T) {
	tests := map[string]struct {
		drop float64 // share of book messages lost before the state
		pad  bool    // rewrite prices and sizes to equal numbers
	}{
		"as sent":       {},
		"with gaps":     {drop: 0.01},
		"padded prices": {drop: 0.005, pad: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ch := proto.Channel{Kind: proto.KindBook, Symbol: "BTC-USD"}
			now := time.Unix(1_700_000_000, 0)
			sim, err := feedsim.New(feedsim.Config{
				Symbols: []string{"BTC-USD"}, BookDepth: 15, SnapshotEvery: 2 * time.Second, Seed: 5,
				Now: func() time.Time { now = now.Add(50 * time.Millisecond); return now },
			})
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(1, 2))
			st := feed.NewState(ch, 0)
			client := newClientBook()
			outcomes := map[feed.Outcome]int{}
			for range 12000 {
				subj, p, err := sim.Next()
				if err != nil {
					t.Fatal(err)
				}
				if subj != "md.book.BTC-USD" {
					continue
				}
				m, err := feed.Decode(ch, p)
				if err != nil {
					t.Fatal(err)
				}
				if rng.Float64() < tc.drop {
					continue
				}
				if tc.pad {
					for _, side := range [][]proto.Level{m.Book().Bids, m.Book().Asks} {
						for i := range side {
							side[i] = proto.Level{pad(rng, side[i][0]), pad(rng, side[i][1])}
						}
					}
					m.Book().Checksum = 0 // it covered the strings as published
				}
				ev, emit, out := st.Apply(m)
				outcomes[out]++
				if !emit {
					continue
				}
				checkEvent(t, st, client, ev)
			}
			if outcomes[feed.OutcomeApplied] < 1000 {
				t.Fatalf("only %d deltas applied: %v", outcomes[feed.OutcomeApplied], outcomes)
			}
			if tc.drop > 0 && (outcomes[feed.OutcomeGap] == 0 || outcomes[feed.OutcomeUnsynced] == 0) {
				t.Fatalf("no gaps exercised: %v", outcomes)
			}
			if tc.drop == 0 && outcomes[feed.OutcomeSnapshotUnchanged] == 0 {
				t.Fatalf("no unchanged periodic snapshot: %v", outcomes)
			}
			t.Logf("outcomes: %v", outcomes)
		})
	}
}

func checkEvent(t *testing.T, st feed.State, client *clientBook, ev feed.Event) {
	t.Helper()
	b := ev.Data.(*proto.Book)
	if !ev.Snapshot && ev.Prev != client.last {
		t.Fatalf("update seq %d has prev %d, client holds %d", ev.Seq, ev.Prev, client.last)
	}
	client.Apply(b, ev.Snapshot)
	client.last = ev.Seq
	bids, asks := client.Levels()
	if got := proto.BookChecksum(bids, asks); got != b.Checksum {
		t.Fatalf("seq %d: client checksum %d, event checksum %d", ev.Seq, got, b.Checksum)
	}
	seq, data, ok := st.Snapshot(feed.SnapshotOptions{})
	if !ok || seq != ev.Seq {
		t.Fatalf("seq %d: Snapshot() seq %d ok %v", ev.Seq, seq, ok)
	}
	sb := data.(*proto.Book)
	if !slices.Equal(sb.Bids, bids) || !slices.Equal(sb.Asks, asks) || sb.Checksum != b.Checksum {
		t.Fatalf("seq %d: client book %v / %v, Snapshot() %v / %v", ev.Seq, bids, asks, sb.Bids, sb.Asks)
	}
	if !ev.Snapshot {
		evs, ok := st.Since(ev.Prev)
		if !ok || len(evs) != 1 || evs[0].Seq != ev.Seq || evs[0].Data != ev.Data {
			t.Fatalf("seq %d: Since(%d) = %v, %v", ev.Seq, ev.Prev, evs, ok)
		}
	}
}
