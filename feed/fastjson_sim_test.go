package feed_test

import (
	"testing"
	"time"

	"github.com/tickgate/tickgate/feed"
	"github.com/tickgate/tickgate/feed/feedsim"
	"github.com/tickgate/tickgate/proto"
)

// TestJSONFastPathTakesFeedsim: the JSON fast path handles every payload
// feedsim publishes, of every kind and type, so that the speed it brings
// cannot vanish without a failing test. (The fixtures' payloads are
// TestJSONFastPathEdges'.)
func TestJSONFastPathTakesFeedsim(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	sim, err := feedsim.New(feedsim.Config{Codec: "json", Seed: 7, SnapshotEvery: 20 * time.Second,
		Now: func() time.Time { now = now.Add(100 * time.Millisecond); return now }})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for range 5000 {
		subj, p, err := sim.Next()
		if err != nil {
			t.Fatal(err)
		}
		ch, err := proto.ChannelFromSubject(feedsim.DefaultSubjectPrefix, subj)
		if err != nil {
			t.Fatal(err)
		}
		_, typ, ok := feed.DecodeJSONFast(p, ch.Kind.Spec().Data())
		if !ok {
			t.Fatalf("fast path declined %s: %.200s", subj, p)
		}
		seen[ch.Kind.String()+" "+typ]++
	}
	for _, want := range []string{"ticker update", "trade update", "book snapshot", "book update", "candle update"} {
		if seen[want] == 0 {
			t.Errorf("no %s in feedsim's payloads: %v", want, seen)
		}
	}
}
