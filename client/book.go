package client

import (
	"cmp"
	"hash/crc32"
	"iter"
	"slices"
	"strings"

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
// Each side is a sorted slice searched by binary search, kept worst level
// first: the best levels, where most changes happen, are at its end, so
// inserting or removing a level near the top moves only the levels above
// it. Each price is also held as a fixed-point integer (8 decimals) so
// that a comparison is one integer comparison; prices that do not fit
// compare by their text (proto.CompareDecimal). Neither Update nor
// Checksum allocates once the book has grown to its size.
//
// Prices and sizes must be decimal strings (proto.ValidDecimal), as the
// node sends them; the client checks every message before applying it. A
// Book is not safe for concurrent use. The zero value is an empty book.
type Book struct {
	bids, asks side
	sum        uint32 // Checksum of the levels, while sumOK
	sumOK      bool
	scratch    []byte // the checksum's input, reused
}

// side is one side of a book, worst level first: levels and their price
// keys, index by index.
type side struct {
	lv  []proto.Level
	key []uint64
	// desc: prices fall along the slice (asks, kept highest first). The
	// zero value suits bids, kept lowest first.
	desc bool
}

// noKey marks a price that does not fit a key.
const noKey = ^uint64(0)

// keyScale is 10^keyDecimals: a key is the price times it.
const (
	keyDecimals = 8
	keyScale    = 100_000_000
)

// priceKey returns the price of a decimal string times 10^8, or noKey when
// it has more than 8 significant decimals, is 10^11 or more, or is not a
// decimal string: those compare by text.
func priceKey(s string) uint64 {
	const limit = noKey/keyScale - 1 // keeps every key below noKey
	var ip, fp uint64
	i := 0
	for ; i < len(s) && s[i] != '.'; i++ {
		if s[i] < '0' || s[i] > '9' {
			return noKey
		}
		if ip = ip*10 + uint64(s[i]-'0'); ip >= limit {
			return noKey
		}
	}
	if i < len(s) {
		frac := strings.TrimRight(s[i+1:], "0")
		if len(frac) > keyDecimals {
			return noKey
		}
		for j := range keyDecimals {
			fp *= 10
			if j < len(frac) {
				if frac[j] < '0' || frac[j] > '9' {
					return noKey
				}
				fp += uint64(frac[j] - '0')
			}
		}
	}
	return ip*keyScale + fp
}

// cmp orders a level of price text p and key k against level i of the
// side: negative when it comes before it in the slice.
func (sd *side) cmp(p string, k uint64, i int) int {
	ki := sd.key[i]
	var c int
	if k != noKey && ki != noKey {
		c = cmp.Compare(k, ki)
	} else {
		c = proto.CompareDecimal(p, sd.lv[i][0])
	}
	if sd.desc {
		return -c
	}
	return c
}

// search returns where price p (key k) is or belongs in the side.
func (sd *side) search(p string, k uint64) (int, bool) {
	lo, hi := 0, len(sd.lv)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if sd.cmp(p, k, mid) > 0 {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo, lo < len(sd.lv) && sd.cmp(p, k, lo) == 0
}

// apply applies one delta level: a zero size removes the level (a missing
// level is fine), any other size sets it, price text included.
func (sd *side) apply(l proto.Level) {
	k := priceKey(l[0])
	i, found := sd.search(l[0], k)
	switch {
	case proto.IsZeroDecimal(l[1]):
		if found {
			sd.lv = slices.Delete(sd.lv, i, i+1)
			sd.key = slices.Delete(sd.key, i, i+1)
		}
	case found:
		sd.lv[i], sd.key[i] = l, k
	default:
		sd.lv = slices.Insert(sd.lv, i, l)
		sd.key = slices.Insert(sd.key, i, k)
	}
}

// reset fills the side (reused) with levels, which may come in any order.
func (sd *side) reset(levels []proto.Level) {
	sd.lv, sd.key = sd.lv[:0], sd.key[:0]
	// A snapshot as the node sends it is in book order, best first:
	// taken from its end, it is in the side's order.
	for i := len(levels) - 1; i >= 0; i-- {
		l := levels[i]
		k := priceKey(l[0])
		if proto.IsZeroDecimal(l[1]) || len(sd.lv) > 0 && sd.cmp(l[0], k, len(sd.lv)-1) <= 0 {
			sd.lv, sd.key = sd.lv[:0], sd.key[:0]
			for _, l := range levels {
				sd.apply(l)
			}
			return
		}
		sd.lv = append(sd.lv, l)
		sd.key = append(sd.key, k)
	}
}

// best returns the side's i-th best level (0 the best).
func (sd *side) best(i int) proto.Level { return sd.lv[len(sd.lv)-1-i] }

// top returns copies of the best n levels, best first (all when n < 0).
func (sd *side) top(n int) []proto.Level {
	if n < 0 || n > len(sd.lv) {
		n = len(sd.lv)
	}
	out := make([]proto.Level, n)
	for i := range out {
		out[i] = sd.best(i)
	}
	return out
}

// NewBook returns an empty book.
func NewBook() *Book { return &Book{asks: side{desc: true}} }

// Reset replaces the book with a snapshot's levels. The levels are copied;
// they may come in any order, and a level of size zero is skipped (a
// snapshot holds none); of two levels at one price the later one wins.
func (b *Book) Reset(bids, asks []proto.Level) {
	b.asks.desc = true
	b.bids.reset(bids)
	b.asks.reset(asks)
	b.sumOK = false
}

// Update applies a delta: each level in order, bids then asks. A zero size
// removes the level at that price, any other size sets it (price text
// included), and a price the book does not hold is inserted in order.
func (b *Book) Update(bids, asks []proto.Level) {
	b.asks.desc = true
	for _, l := range bids {
		b.bids.apply(l)
	}
	for _, l := range asks {
		b.asks.apply(l)
	}
	if len(bids)+len(asks) > 0 {
		b.sumOK = false
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
		buf := b.scratch[:0]
		for _, sd := range [2]*side{&b.bids, &b.asks} {
			for i := range min(len(sd.lv), proto.ChecksumDepth) {
				l := sd.best(i)
				buf = append(buf, l[0]...)
				buf = append(buf, ':')
				buf = append(buf, l[1]...)
				buf = append(buf, '|')
			}
		}
		b.sum, b.scratch = crc32.ChecksumIEEE(buf), buf
		b.sumOK = true
	}
	return b.sum
}

// BestBid returns the best (highest) bid; ok is false when there is none.
func (b *Book) BestBid() (l proto.Level, ok bool) {
	if len(b.bids.lv) == 0 {
		return proto.Level{}, false
	}
	return b.bids.best(0), true
}

// BestAsk returns the best (lowest) ask; ok is false when there is none.
func (b *Book) BestAsk() (l proto.Level, ok bool) {
	if len(b.asks.lv) == 0 {
		return proto.Level{}, false
	}
	return b.asks.best(0), true
}

// TopN returns copies of the best n levels of each side (fewer when the
// side is shallower; all of them when n < 0).
func (b *Book) TopN(n int) (bids, asks []proto.Level) {
	return b.bids.top(n), b.asks.top(n)
}

// Depth returns how many levels each side holds.
func (b *Book) Depth() (bids, asks int) { return len(b.bids.lv), len(b.asks.lv) }

// Bids iterates over the bids, best first, without copying. The book must
// not change during the iteration.
func (b *Book) Bids() iter.Seq2[int, proto.Level] { return b.bids.levels() }

// Asks iterates over the asks, best first, without copying. The book must
// not change during the iteration.
func (b *Book) Asks() iter.Seq2[int, proto.Level] { return b.asks.levels() }

func (sd *side) levels() iter.Seq2[int, proto.Level] {
	return func(yield func(int, proto.Level) bool) {
		for i := range len(sd.lv) {
			if !yield(i, sd.best(i)) {
				return
			}
		}
	}
}

// Clone returns a deep copy of the book.
func (b *Book) Clone() *Book {
	return &Book{
		bids: side{lv: slices.Clone(b.bids.lv), key: slices.Clone(b.bids.key)},
		asks: side{lv: slices.Clone(b.asks.lv), key: slices.Clone(b.asks.key), desc: true},
		sum:  b.sum, sumOK: b.sumOK,
	}
}

// Equal reports whether two books hold the same levels with the same text.
func (b *Book) Equal(o *Book) bool {
	return slices.Equal(b.bids.lv, o.bids.lv) && slices.Equal(b.asks.lv, o.asks.lv)
}
