package gateway

import (
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/tickgate/tickgate/proto"
)

// refBook is a deliberately simple order book (maps, sort on read) used as
// the reference that the gateway's output is checked against.
type refBook struct {
	bids, asks map[string]string
}

func newRefBook() *refBook {
	return &refBook{bids: map[string]string{}, asks: map[string]string{}}
}

func (b *refBook) reset(bids, asks []proto.Level) {
	b.bids, b.asks = map[string]string{}, map[string]string{}
	b.apply(bids, asks)
}

func (b *refBook) apply(bids, asks []proto.Level) {
	set := func(side map[string]string, ls []proto.Level) {
		for _, l := range ls {
			if proto.IsZeroDecimal(l.Size()) {
				delete(side, l.Price())
			} else {
				side[l.Price()] = l.Size()
			}
		}
	}
	set(b.bids, bids)
	set(b.asks, asks)
}

func (b *refBook) levels() (bids, asks []proto.Level) {
	list := func(side map[string]string, desc bool) []proto.Level {
		out := make([]proto.Level, 0, len(side))
		for p, s := range side {
			out = append(out, proto.Level{p, s})
		}
		slices.SortFunc(out, func(x, y proto.Level) int {
			if desc {
				return proto.CompareDecimal(y.Price(), x.Price())
			}
			return proto.CompareDecimal(x.Price(), y.Price())
		})
		return out
	}
	return list(b.bids, true), list(b.asks, false)
}

func (b *refBook) checksum() uint32 {
	bids, asks := b.levels()
	return proto.BookChecksum(bids, asks)
}

// bookFeed publishes a random but valid book: a snapshot, then deltas
// that change, add and remove levels, each with the true checksum.
type bookFeed struct {
	symbol string
	rng    *rand.Rand
	book   *refBook
	seq    uint64
}

func newBookFeed(symbol string, seed uint64) *bookFeed {
	return &bookFeed{symbol: symbol, rng: rand.New(rand.NewPCG(seed, seed^0x9e37)), book: newRefBook()}
}

func (f *bookFeed) price(bid bool) string {
	// bids 90.00..99.99, asks 100.00..109.99: never crossed
	cents := f.rng.IntN(1000)
	if bid {
		return fmt.Sprintf("%d.%02d", 90+cents/100, cents%100)
	}
	return fmt.Sprintf("%d.%02d", 100+cents/100, cents%100)
}

func (f *bookFeed) size() string {
	return fmt.Sprintf("%d.%d", f.rng.IntN(50), 1+f.rng.IntN(9))
}

func (f *bookFeed) snapshot(ts int64) proto.FeedMessage {
	var bids, asks []proto.Level
	for range 15 {
		bids = append(bids, proto.Level{f.price(true), f.size()})
		asks = append(asks, proto.Level{f.price(false), f.size()})
	}
	f.book.reset(bids, asks)
	bids, asks = f.book.levels()
	f.seq++
	return proto.FeedMessage{Seq: f.seq, Type: proto.FeedSnapshot, Data: &proto.Book{
		Symbol: f.symbol, Bids: bids, Asks: asks, Checksum: proto.BookChecksum(bids, asks), TS: ts,
	}}
}

func (f *bookFeed) update(ts int64) proto.FeedMessage {
	bids, asks := []proto.Level{}, []proto.Level{}
	curBids, curAsks := f.book.levels()
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
	bids = dedupeLevels(bids)
	asks = dedupeLevels(asks)
	f.book.apply(bids, asks)
	f.seq++
	return proto.FeedMessage{Seq: f.seq, Type: proto.FeedUpdate, Data: &proto.Book{
		Bids: bids, Asks: asks, Checksum: f.book.checksum(), TS: ts,
	}}
}

// dedupeLevels keeps the last level of each price, as a delta means it.
func dedupeLevels(ls []proto.Level) []proto.Level {
	out := ls[:0:0]
	for i, l := range ls {
		later := false
		for _, m := range ls[i+1:] {
			if m.Price() == l.Price() {
				later = true
			}
		}
		if !later {
			out = append(out, l)
		}
	}
	return out
}
