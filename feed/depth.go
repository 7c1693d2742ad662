package feed

import (
	"slices"

	"github.com/tickgate/tickgate/proto"
)

// Depth-limited books (contract 1.1, docs/protocol.md §11.2): a subscriber
// of depth D holds the best D levels per side. The book state computes,
// for each depth some subscriber holds (Track), what each update means
// within it: the two windows, before and after the delta, compared level
// by level. That is O(D) per depth and update, with the old window copied
// once per update for the deepest depth tracked, and the result is one
// delta per depth that every subscriber of the depth shares.

// depthView is one tracked depth of a book.
type depthView struct {
	depth int
	refs  int    // subscribers holding it
	last  uint64 // seq of the view's last update or snapshot event
}

// Track implements State: it counts the subscribers of each depth.
func (s *bookState) Track(o SnapshotOptions, on bool) {
	if o.Depth <= 0 {
		return
	}
	i := slices.IndexFunc(s.views, func(v *depthView) bool { return v.depth == o.Depth })
	switch {
	case on && i < 0:
		s.views = append(s.views, &depthView{depth: o.Depth, refs: 1, last: s.emitted})
	case on:
		s.views[i].refs++
	case i >= 0:
		if s.views[i].refs--; s.views[i].refs == 0 {
			s.views = slices.Delete(s.views, i, i+1)
		}
	}
}

// maxDepth is the deepest depth tracked, 0 for none.
func (s *bookState) maxDepth() int {
	d := 0
	for _, v := range s.views {
		d = max(d, v.depth)
	}
	return d
}

// keepWindows copies the best levels the tracked depths cover, before a
// delta changes the book.
func (s *bookState) keepWindows() {
	d := s.maxDepth()
	if d == 0 {
		return
	}
	s.oldBids = append(s.oldBids[:0], s.bids[:min(d, len(s.bids))]...)
	s.oldAsks = append(s.oldAsks[:0], s.asks[:min(d, len(s.asks))]...)
}

// viewUpdates returns what the update at seq, whose book now has
// checksum ck, means for each tracked depth, given the windows kept
// before it.
func (s *bookState) viewUpdates(seq uint64, ck uint32, ts int64) []ViewUpdate {
	if len(s.views) == 0 {
		return nil
	}
	out := make([]ViewUpdate, 0, len(s.views))
	for _, v := range s.views {
		u := ViewUpdate{View: SnapshotOptions{Depth: v.depth}}
		bids := windowDiff(nil, top(s.oldBids, v.depth), top(s.bids, v.depth), bidOrder)
		asks := windowDiff(nil, top(s.oldAsks, v.depth), top(s.asks, v.depth), askOrder)
		if len(bids)+len(asks) > 0 {
			if bids == nil {
				bids = []proto.Level{}
			}
			if asks == nil {
				asks = []proto.Level{}
			}
			u.Data = &proto.Book{Bids: bids, Asks: asks, Checksum: ck, TS: ts}
			u.Prev, u.N = v.last, uint32(min(seq-v.last, 1<<32-1))
			v.last = seq
		}
		out = append(out, u)
	}
	return out
}

// resetViews starts every tracked depth's chain again at a snapshot
// event of seq.
func (s *bookState) resetViews(seq uint64) {
	for _, v := range s.views {
		v.last = seq
	}
}

// top is the best n levels of side.
func top(side []proto.Level, n int) []proto.Level { return side[:min(n, len(side))] }

// windowDiff appends to dst what turns window old into window cur, both
// one side's best levels in book order (cmp): a level of cur that old
// does not hold as is (a new price, a new size, a new price text), and a
// price of old that cur does not hold, with size "0".
func windowDiff(dst, old, cur []proto.Level, cmp func(a, b proto.Level) int) []proto.Level {
	i, j := 0, 0
	for i < len(old) || j < len(cur) {
		var c int
		switch {
		case j == len(cur):
			c = -1
		case i == len(old):
			c = 1
		default:
			c = cmp(old[i], cur[j])
		}
		switch {
		case c < 0: // old[i] is better than anything left in cur: it left
			dst = append(dst, proto.Level{old[i][0], "0"})
			i++
		case c > 0: // cur[j] entered
			dst = append(dst, cur[j])
			j++
		default:
			if old[i] != cur[j] {
				dst = append(dst, cur[j])
			}
			i++
			j++
		}
	}
	return dst
}
