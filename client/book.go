package client

import (
	"iter"
	"slices"

	"github.com/tickgate/tickgate/proto"
)

// Book is an L2 order book kept by the rules of docs/protocol.md §5.4: bids
// best (highest) first, asks best (lowest) first, levels identified by
// numeric price ("64000.1" and "64000.10" are one level), each level
// keeping the price and size text of its most recent update, a zero size
// (in any spelling, "0.000" too) removing the level, and removing a level
// the book does not hold changing nothing. Checksum is the contract's
// CRC-32 over the top 10 levels of each side (docs/protocol.md §5.5).
//
// The sides are sorted slices searched by binary search: an update of one
// level costs O(log n) comparisons and one memmove, and neither Update nor
// Checksum allocates once the book has grown to its size.
//
// A Book is not safe for concurrent use. The zero value is an empty book.
type Book struct {
	bids, asks []proto.Level // best first; owned by the book
	sum        uint32        // Checksum of the levels, while sumOK
	sumOK      bool
	scratch    []byte // the checksum's input, reused
}

// NewBook returns an empty book.
func NewBook() *Book { return &Book{} }

// Reset replaces the book with a snapshot's levels. The levels are copied;
// they may come in any order, and a level of size zero is skipped (a
// snapshot holds none); of two levels at one price the later one wins.
func (b *Book) Reset(bids, asks []proto.Level) {
	b.bids = resetSide(b.bids, bids, bidOrder)
	b.asks = resetSide(b.asks, asks, askOrder)
	b.sumOK = false
}

// resetSide fills dst (reused) with levels in cmp order.
func resetSide(dst, levels []proto.Level, cmp func(a, b proto.Level) int) []proto.Level {
	dst = dst[:0]
	if strictlySorted(levels, cmp) {
		return append(dst, levels...)
	}
	for _, l := range levels {
		applyLevel(&dst, l, cmp)
	}
	return dst
}

// strictlySorted reports whether levels are in cmp order, no two at one
// price, and none of size zero: a snapshot as the node sends it.
func strictlySorted(levels []proto.Level, cmp func(a, b proto.Level) int) bool {
	for i, l := range levels {
		if proto.IsZeroDecimal(l[1]) || i > 0 && cmp(levels[i-1], l) >= 0 {
			return false
		}
	}
	return true
}

// Update applies a delta: each level in order, bids then asks. A zero size
// removes the level at that price, any other size sets it (price text
// included), and a price the book does not hold is inserted in order.
func (b *Book) Update(bids, asks []proto.Level) {
	for _, l := range bids {
		applyLevel(&b.bids, l, bidOrder)
	}
	for _, l := range asks {
		applyLevel(&b.asks, l, askOrder)
	}
	if len(bids)+len(asks) > 0 {
		b.sumOK = false
	}
}

// applyLevel applies one delta level to side, kept in cmp order.
func applyLevel(side *[]proto.Level, l proto.Level, cmp func(a, b proto.Level) int) {
	i, found := slices.BinarySearchFunc(*side, l, cmp)
	switch {
	case proto.IsZeroDecimal(l[1]):
		if found {
			*side = slices.Delete(*side, i, i+1)
		}
	case found:
		(*side)[i] = l
	default:
		*side = slices.Insert(*side, i, l)
	}
}

// bidOrder orders bids best (highest price) first.
func bidOrder(a, b proto.Level) int { return proto.CompareDecimal(b[0], a[0]) }

// askOrder orders asks best (lowest price) first.
func askOrder(a, b proto.Level) int { return proto.CompareDecimal(a[0], b[0]) }

// Checksum returns the contract's checksum of the book: the CRC-32 (IEEE)
// of "price:size|" for the top 10 bids, then the top 10 asks, as the
// levels' text stands (docs/protocol.md §5.5). An empty book gives 0.
func (b *Book) Checksum() uint32 {
	if !b.sumOK {
		b.sum, b.scratch = proto.BookChecksumBuf(b.scratch, b.bids, b.asks)
		b.sumOK = true
	}
	return b.sum
}

// BestBid returns the best (highest) bid; ok is false when there is none.
func (b *Book) BestBid() (l proto.Level, ok bool) {
	if len(b.bids) == 0 {
		return proto.Level{}, false
	}
	return b.bids[0], true
}

// BestAsk returns the best (lowest) ask; ok is false when there is none.
func (b *Book) BestAsk() (l proto.Level, ok bool) {
	if len(b.asks) == 0 {
		return proto.Level{}, false
	}
	return b.asks[0], true
}

// TopN returns copies of the best n levels of each side (fewer when the
// side is shallower; all of them when n < 0).
func (b *Book) TopN(n int) (bids, asks []proto.Level) {
	take := func(side []proto.Level) []proto.Level {
		if n >= 0 && n < len(side) {
			side = side[:n]
		}
		return slices.Clone(side)
	}
	return take(b.bids), take(b.asks)
}

// Depth returns how many levels each side holds.
func (b *Book) Depth() (bids, asks int) { return len(b.bids), len(b.asks) }

// Bids iterates over the bids, best first, without copying. The book must
// not change during the iteration.
func (b *Book) Bids() iter.Seq2[int, proto.Level] { return levels(b.bids) }

// Asks iterates over the asks, best first, without copying. The book must
// not change during the iteration.
func (b *Book) Asks() iter.Seq2[int, proto.Level] { return levels(b.asks) }

func levels(side []proto.Level) iter.Seq2[int, proto.Level] {
	return func(yield func(int, proto.Level) bool) {
		for i, l := range side {
			if !yield(i, l) {
				return
			}
		}
	}
}

// Clone returns a deep copy of the book.
func (b *Book) Clone() *Book {
	return &Book{bids: slices.Clone(b.bids), asks: slices.Clone(b.asks), sum: b.sum, sumOK: b.sumOK}
}

// Equal reports whether two books hold the same levels with the same text.
func (b *Book) Equal(o *Book) bool {
	return slices.Equal(b.bids, o.bids) && slices.Equal(b.asks, o.asks)
}
