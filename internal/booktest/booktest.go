// Package booktest is test support for order books: a reference book that
// rebuilds a book from snapshots and deltas the way a client does, and a
// random but valid book feed. The reference is written to be obviously
// right, not fast, and independent of the code it checks: levels are
// keyed and ordered by exact rational value (math/big), not by the
// decimal helpers the gateway uses.
package booktest

import (
	"fmt"
	"math/big"
	"math/rand/v2"
	"slices"

	"github.com/tickgate/tickgate/proto"
)

// Book is a reference L2 book. The zero value is not usable; call New.
type Book struct {
	bids, asks map[string]entry // by exact value
}

// entry is a level as last sent, with its price's exact value.
type entry struct {
	level proto.Level
	price *big.Rat
}

// New returns an empty book.
func New() *Book {
	return &Book{bids: map[string]entry{}, asks: map[string]entry{}}
}

// Apply applies a book message: a snapshot replaces the book, a delta
// sets each level (size zero removes it).
func (b *Book) Apply(m *proto.Book, snapshot bool) {
	if snapshot {
		b.Reset(m.Bids, m.Asks)
		return
	}
	b.Update(m.Bids, m.Asks)
}

// Reset replaces the book with the given levels.
func (b *Book) Reset(bids, asks []proto.Level) {
	clear(b.bids)
	clear(b.asks)
	b.Update(bids, asks)
}

// Update applies a delta in order.
func (b *Book) Update(bids, asks []proto.Level) {
	set := func(side map[string]entry, ls []proto.Level) {
		for _, l := range ls {
			price := rat(l.Price())
			key := price.RatString()
			if rat(l.Size()).Sign() == 0 {
				delete(side, key)
			} else {
				side[key] = entry{l, price}
			}
		}
	}
	set(b.bids, bids)
	set(b.asks, asks)
}

// Levels returns the book's sides, best first (non-nil).
func (b *Book) Levels() (bids, asks []proto.Level) {
	list := func(side map[string]entry, desc bool) []proto.Level {
		es := make([]entry, 0, len(side))
		for _, e := range side {
			es = append(es, e)
		}
		slices.SortFunc(es, func(x, y entry) int {
			c := x.price.Cmp(y.price)
			if desc {
				return -c
			}
			return c
		})
		out := make([]proto.Level, len(es))
		for i, e := range es {
			out[i] = e.level
		}
		return out
	}
	return list(b.bids, true), list(b.asks, false)
}

// Checksum is the contract's checksum of the book.
func (b *Book) Checksum() uint32 { return proto.BookChecksum(b.Levels()) }

func rat(s string) *big.Rat {
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		panic(fmt.Sprintf("booktest: %q is not a decimal", s))
	}
	return r
}

// Feed produces a random but valid book channel: a snapshot of 15 levels
// per side, then deltas that change, add and remove levels, each carrying
// the true checksum, with seq incremented by 1 per message. Bids are
// 90.00..99.99 and asks 100.00..109.99, so the book never crosses.
type Feed struct {
	symbol string
	rng    *rand.Rand
	book   *Book
	seq    uint64
}

// NewFeed returns a feed for symbol; the same seed gives the same stream.
func NewFeed(symbol string, seed uint64) *Feed {
	return &Feed{symbol: symbol, rng: rand.New(rand.NewPCG(seed, seed^0x9e37)), book: New()}
}

// Seq is the seq of the last message produced.
func (f *Feed) Seq() uint64 { return f.seq }

// Book is the publisher's book after the messages produced so far.
func (f *Feed) Book() *Book { return f.book }

func (f *Feed) price(bid bool) string {
	cents := f.rng.IntN(1000)
	if bid {
		return fmt.Sprintf("%d.%02d", 90+cents/100, cents%100)
	}
	return fmt.Sprintf("%d.%02d", 100+cents/100, cents%100)
}

func (f *Feed) size() string {
	return fmt.Sprintf("%d.%d", f.rng.IntN(50), 1+f.rng.IntN(9))
}

// Snapshot returns the next message: a fresh book.
func (f *Feed) Snapshot(ts int64) proto.FeedMessage {
	var bids, asks []proto.Level
	for range 15 {
		bids = append(bids, proto.Level{f.price(true), f.size()})
		asks = append(asks, proto.Level{f.price(false), f.size()})
	}
	f.book.Reset(bids, asks)
	bids, asks = f.book.Levels()
	f.seq++
	return proto.FeedMessage{Seq: f.seq, Type: proto.FeedSnapshot, Data: &proto.Book{
		Symbol: f.symbol, Bids: bids, Asks: asks, Checksum: proto.BookChecksum(bids, asks), TS: ts,
	}}
}

// Update returns the next message: a delta of one to a few levels, never
// naming a price twice.
func (f *Feed) Update(ts int64) proto.FeedMessage {
	bids, asks := []proto.Level{}, []proto.Level{}
	curBids, curAsks := f.book.Levels()
	for range 1 + f.rng.IntN(3) {
		switch f.rng.IntN(3) {
		case 0: // remove an existing level
			if len(curBids) > 3 {
				bids = append(bids, proto.Level{curBids[f.rng.IntN(len(curBids))].Price(), "0"})
			}
		case 1:
			asks = append(asks, proto.Level{f.price(false), f.size()})
		default:
			bids = append(bids, proto.Level{f.price(true), f.size()})
		}
		if len(curAsks) > 3 && f.rng.IntN(4) == 0 {
			asks = append(asks, proto.Level{curAsks[f.rng.IntN(len(curAsks))].Price(), "0"})
		}
	}
	if len(bids)+len(asks) == 0 {
		bids = append(bids, proto.Level{f.price(true), f.size()})
	}
	bids, asks = lastPerPrice(bids), lastPerPrice(asks)
	f.book.Update(bids, asks)
	f.seq++
	return proto.FeedMessage{Seq: f.seq, Type: proto.FeedUpdate, Data: &proto.Book{
		Bids: bids, Asks: asks, Checksum: f.book.Checksum(), TS: ts,
	}}
}

// lastPerPrice keeps the last level of each price, as a delta means it.
func lastPerPrice(ls []proto.Level) []proto.Level {
	out := make([]proto.Level, 0, len(ls))
	for i, l := range ls {
		if !slices.ContainsFunc(ls[i+1:], func(m proto.Level) bool { return m.Price() == l.Price() }) {
			out = append(out, l)
		}
	}
	return out
}
