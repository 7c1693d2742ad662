package gateway

import (
	"cmp"
	"iter"
	"slices"
	"strings"

	"github.com/tickgate/tickgate/proto"
)

// subSet is a connection's subscriptions by channel: a slice sorted by
// channel, searched by halves. A connection holds a few channels, often
// ten: the slice costs a pointer each (128 bytes for ten), where a map
// cost about 900. Insertion and removal move the pointers after the
// position, at most MaxSubscriptions of them. The zero value is empty.
// Not safe for concurrent use (conn.subs is guarded by cmdMu).
type subSet struct {
	list []*subscription // sorted by entry.ch (compareChannels)
}

// compareChannels orders channels by kind, param, then symbol.
func compareChannels(a, b proto.Channel) int {
	if c := cmp.Compare(a.Kind, b.Kind); c != 0 {
		return c
	}
	if c := strings.Compare(a.Param, b.Param); c != 0 {
		return c
	}
	return strings.Compare(a.Symbol, b.Symbol)
}

func (m *subSet) find(ch proto.Channel) (int, bool) {
	return slices.BinarySearchFunc(m.list, ch, func(s *subscription, ch proto.Channel) int {
		return compareChannels(s.entry.ch, ch)
	})
}

// len is how many subscriptions there are.
func (m *subSet) len() int { return len(m.list) }

// get returns the subscription to ch, or nil.
func (m *subSet) get(ch proto.Channel) *subscription {
	if i, ok := m.find(ch); ok {
		return m.list[i]
	}
	return nil
}

// put adds s, the subscription to s.entry.ch, replacing one to the same
// channel.
func (m *subSet) put(s *subscription) {
	i, ok := m.find(s.entry.ch)
	if ok {
		m.list[i] = s
		return
	}
	m.list = slices.Insert(m.list, i, s)
}

// remove drops the subscription to ch, if any.
func (m *subSet) remove(ch proto.Channel) {
	if i, ok := m.find(ch); ok {
		m.list = slices.Delete(m.list, i, i+1)
	}
}

// all yields every subscription with its channel, from the last in order
// to the first, so that the loop may remove the one it was given.
func (m *subSet) all() iter.Seq2[proto.Channel, *subscription] {
	return func(yield func(proto.Channel, *subscription) bool) {
		for i := len(m.list) - 1; i >= 0; i-- {
			if i >= len(m.list) {
				continue
			}
			if s := m.list[i]; !yield(s.entry.ch, s) {
				return
			}
		}
	}
}
