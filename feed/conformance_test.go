package feed

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"testing"

	"github.com/tickgate/tickgate/internal/conformance"
	"github.com/tickgate/tickgate/proto"
)

// The node's own book passes the book cases of the client conformance
// suite (proto/testdata/conformance/README.md, "The node's side"): each
// snapshot and update step goes through Decode and Apply as a feed
// message; where the client is live, the node's book and checksum are the
// expected ones; where the client resyncs, the node unsynced too, and
// drops the old chain's updates until the next snapshot.
func TestConformanceNodeBook(t *testing.T) {
	cases, err := conformance.Load(filepath.Join("..", filepath.FromSlash(conformance.Dir)))
	if err != nil {
		t.Fatal(err)
	}
	ran := 0
	for _, c := range cases {
		ch, err := proto.ParseChannel(c.Channel)
		if err != nil {
			t.Fatal(err)
		}
		if ch.Kind != proto.KindBook || c.ClientOnly {
			continue
		}
		ran++
		t.Run(c.File, func(t *testing.T) {
			st := NewState(ch, 0)
			for i, s := range c.Steps {
				var recv struct {
					Type string          `json:"type"`
					Seq  uint64          `json:"seq"`
					Data json.RawMessage `json:"data"`
				}
				if err := json.Unmarshal(s.Recv, &recv); err != nil {
					t.Fatal(err)
				}
				if recv.Type != "snapshot" && recv.Type != "update" {
					continue // gap and status come from the node, not the feed
				}
				payload, err := json.Marshal(map[string]any{"seq": recv.Seq, "type": recv.Type, "data": recv.Data})
				if err != nil {
					t.Fatal(err)
				}
				m, err := Decode(ch, payload)
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				ev, emit, out := st.Apply(m)
				e := s.Expect
				_, _, synced := st.Snapshot(SnapshotOptions{})
				switch {
				case conformance.Is(e.Resync):
					if emit || (out != OutcomeGap && out != OutcomeChecksumMismatch) || synced {
						t.Fatalf("step %d: the client resyncs, the node says %v (emit %v, synced %v)", i, out, emit, synced)
					}
				case recv.Type == "update" && e.State != nil && *e.State == "resyncing":
					if emit || out != OutcomeUnsynced {
						t.Fatalf("step %d: the client ignores the old chain, the node says %v (emit %v)", i, out, emit)
					}
				}
				if e.Book == nil {
					continue
				}
				seq, data, ok := st.Snapshot(SnapshotOptions{})
				if !ok || seq != recv.Seq {
					t.Fatalf("step %d: node book not in sync (%v) at seq %d", i, ok, seq)
				}
				b := data.(*proto.Book)
				if !slices.Equal(b.Bids, e.Book.Bids) || !slices.Equal(b.Asks, e.Book.Asks) {
					t.Fatalf("step %d: node book %v %v, want %v %v", i, b.Bids, b.Asks, e.Book.Bids, e.Book.Asks)
				}
				if e.Checksum != nil && b.Checksum != *e.Checksum {
					t.Fatalf("step %d: node checksum %d, want %d", i, b.Checksum, *e.Checksum)
				}
				if emit && ev.Data.(*proto.Book).Checksum != b.Checksum {
					t.Fatalf("step %d: the event's checksum %d is not the book's %d", i, ev.Data.(*proto.Book).Checksum, b.Checksum)
				}
			}
		})
	}
	if ran == 0 {
		t.Fatal("no book case ran")
	}
}
