package gateway

import (
	"slices"
	"testing"

	"github.com/tickgate/tickgate/proto"
)

func TestSubSet(t *testing.T) {
	chans := []proto.Channel{
		{Kind: proto.KindTrade, Symbol: "ETH-USD"},
		{Kind: proto.KindTicker, Symbol: "BTC-USD"},
		{Kind: proto.KindTicker, Symbol: "ADA-USD"},
		{Kind: proto.KindTrade, Symbol: "BTC-USD"},
		{Kind: proto.KindTicker, Param: "x", Symbol: "ADA-USD"},
	}
	subOf := func(ch proto.Channel) *subscription {
		return &subscription{entry: &hubEntry{ch: ch}}
	}
	for _, tc := range []struct {
		name   string
		remove []int // indexes into chans, removed after all were put
	}{
		{"none", nil},
		{"first and last", []int{2, 0}},
		{"all", []int{0, 1, 2, 3, 4}},
		{"absent twice", []int{1, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var m subSet
			subs := map[proto.Channel]*subscription{}
			for _, ch := range chans {
				subs[ch] = subOf(ch)
				m.put(subs[ch])
			}
			again := subOf(chans[3]) // replaces
			subs[chans[3]] = again
			m.put(again)
			for _, i := range tc.remove {
				m.remove(chans[i])
				delete(subs, chans[i])
			}
			if m.len() != len(subs) {
				t.Fatalf("len %d, want %d", m.len(), len(subs))
			}
			for _, ch := range chans {
				if got := m.get(ch); got != subs[ch] {
					t.Fatalf("get(%v) = %p, want %p", ch, got, subs[ch])
				}
			}
			if !slices.IsSortedFunc(m.list, func(a, b *subscription) int { return compareChannels(a.entry.ch, b.entry.ch) }) {
				t.Fatal("not sorted")
			}
			// all yields each once, and the loop may remove what it is given.
			seen := map[proto.Channel]bool{}
			for ch, s := range m.all() {
				if seen[ch] || s != subs[ch] {
					t.Fatalf("all yielded %v twice or with the wrong subscription", ch)
				}
				seen[ch] = true
				m.remove(ch)
			}
			if len(seen) != len(subs) || m.len() != 0 {
				t.Fatalf("all yielded %d of %d, left %d", len(seen), len(subs), m.len())
			}
		})
	}
}
