package booktest

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"

	"github.com/tickgate/tickgate/proto"
)

// CentsBook is a fast reference book for prices in whole cents (what
// DeepFeed writes): levels keyed by their integer value in cents, each as
// last sent. Side 0 is bids, 1 asks.
type CentsBook struct {
	side [2]map[int64]proto.Level
}

// NewCentsBook returns an empty book.
func NewCentsBook() *CentsBook {
	return &CentsBook{side: [2]map[int64]proto.Level{{}, {}}}
}

// Cents parses a price DeepFeed wrote ("12.50", "12.5", "12") into cents.
func Cents(p string) int64 {
	ip, fp, _ := strings.Cut(p, ".")
	fp = (fp + "00")[:2]
	v, err := strconv.ParseInt(ip+fp, 10, 64)
	if err != nil {
		panic(p)
	}
	return v
}

// Apply applies a delta in order: a zero size removes the price.
func (b *CentsBook) Apply(bids, asks []proto.Level) {
	for i, ls := range [2][]proto.Level{bids, asks} {
		for _, l := range ls {
			if proto.IsZeroDecimal(l[1]) {
				delete(b.side[i], Cents(l[0]))
			} else {
				b.side[i][Cents(l[0])] = l
			}
		}
	}
}

// Reset replaces the book with the given levels.
func (b *CentsBook) Reset(bids, asks []proto.Level) {
	b.side = [2]map[int64]proto.Level{{}, {}}
	b.Apply(bids, asks)
}

// Top returns the best n levels of side i (n < 0: all), best first.
func (b *CentsBook) Top(i, n int) []proto.Level {
	keys := make([]int64, 0, len(b.side[i]))
	for k := range b.side[i] {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if i == 0 {
		slices.Reverse(keys) // bids: highest first
	}
	if n >= 0 && len(keys) > n {
		keys = keys[:n]
	}
	out := make([]proto.Level, len(keys))
	for j, k := range keys {
		out[j] = b.side[i][k]
	}
	return out
}

// Holds reports whether side i holds exactly the levels want, texts
// included.
func (b *CentsBook) Holds(i int, want []proto.Level) bool {
	if len(b.side[i]) != len(want) {
		return false
	}
	for _, l := range want {
		if b.side[i][Cents(l[0])] != l {
			return false
		}
	}
	return true
}

// DeepFeed writes random deltas against a book of up to about 1,200 levels
// a side, aimed at the edges of every depth: levels removed, added and
// resized around the depth-th level, prices removed that the book does
// not hold, and prices re-sent in another text ("12.5" for "12.50").
type DeepFeed struct {
	rng  *rand.Rand
	book *CentsBook
}

// NewDeepFeed returns a feed; the same seed gives the same stream.
func NewDeepFeed(seed uint64) *DeepFeed {
	return &DeepFeed{rng: rand.New(rand.NewPCG(seed, 7)), book: NewCentsBook()}
}

// Book is the publisher's book after the messages produced so far.
func (f *DeepFeed) Book() *CentsBook { return f.book }

// Rand is the feed's random source, for tests that draw from the same
// stream.
func (f *DeepFeed) Rand() *rand.Rand { return f.rng }

func (f *DeepFeed) price(c int64, short bool) string {
	s := fmt.Sprintf("%d.%02d", c/100, c%100)
	if short {
		s = strings.TrimSuffix(strings.TrimSuffix(s, "0"), ".0")
	}
	return s
}

func (f *DeepFeed) size() string { return fmt.Sprintf("%d.%d", 1+f.rng.IntN(50), f.rng.IntN(10)) }

// Snapshot returns a fresh book of n levels per side, best first.
func (f *DeepFeed) Snapshot(n int) ([]proto.Level, []proto.Level) {
	var sides [2][]proto.Level
	for i := range sides {
		seen := map[int64]bool{}
		for len(sides[i]) < n {
			c := 1 + f.rng.Int64N(20000)
			if i == 1 {
				c += 20000
			}
			if !seen[c] {
				seen[c] = true
				sides[i] = append(sides[i], proto.Level{f.price(c, false), f.size()})
			}
		}
	}
	f.book.Reset(sides[0], sides[1])
	return f.book.Top(0, -1), f.book.Top(1, -1)
}

// Delta returns a random delta and applies it to the feed's book.
func (f *DeepFeed) Delta() ([]proto.Level, []proto.Level) {
	var sides [2][]proto.Level
	for range 1 + f.rng.IntN(4) {
		i := f.rng.IntN(2)
		lv := f.book.Top(i, -1)
		// A rank near the edge of a depth, or anywhere.
		rank := f.rng.IntN(len(lv) + 1)
		if ds := proto.Depths(); f.rng.IntN(3) > 0 {
			rank = max(0, ds[f.rng.IntN(len(ds))]-2+f.rng.IntN(4))
		}
		switch op := f.rng.IntN(5); {
		case op == 0 && rank < len(lv): // remove
			sides[i] = append(sides[i], proto.Level{lv[rank][0], "0"})
		case op == 1 && rank < len(lv): // resize, maybe in another text; or only a new text
			size := f.size()
			if f.rng.IntN(3) == 0 {
				size = lv[rank][1]
			}
			sides[i] = append(sides[i], proto.Level{f.price(Cents(lv[rank][0]), !strings.Contains(lv[rank][0], ".") || len(lv[rank][0]) == len(f.price(Cents(lv[rank][0]), false))), size})
		case op == 2: // remove a price the book does not hold
			sides[i] = append(sides[i], proto.Level{f.price(40001+f.rng.Int64N(100), false), "0"})
		default: // add next to the rank's level (or past the end)
			c := 1 + f.rng.Int64N(20000)
			if rank < len(lv) {
				c = Cents(lv[rank][0]) + 1 - 2*int64(i) // just better (bids up, asks down)
			}
			if i == 1 {
				c = max(c, 20001)
			} else {
				c = min(max(c, 1), 20000)
			}
			sides[i] = append(sides[i], proto.Level{f.price(c, false), f.size()})
		}
	}
	f.book.Apply(sides[0], sides[1])
	return sides[0], sides[1]
}
