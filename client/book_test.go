package client

import (
	"fmt"
	"slices"
	"testing"

	"github.com/tickgate/tickgate/internal/booktest"
	"github.com/tickgate/tickgate/proto"
)

func lv(price, size string) proto.Level { return proto.Level{price, size} }

func TestBookRules(t *testing.T) {
	type step struct {
		snapshot   bool
		bids, asks []proto.Level
	}
	tests := []struct {
		name             string
		steps            []step
		wantBid, wantAsk []proto.Level
	}{
		{
			name:    "empty",
			wantBid: []proto.Level{}, wantAsk: []proto.Level{},
		},
		{
			name:    "snapshot sorted best first whatever its order",
			steps:   []step{{snapshot: true, bids: []proto.Level{lv("99", "1"), lv("100.5", "2")}, asks: []proto.Level{lv("102", "1"), lv("101", "3")}}},
			wantBid: []proto.Level{lv("100.5", "2"), lv("99", "1")}, wantAsk: []proto.Level{lv("101", "3"), lv("102", "1")},
		},
		{
			name: "numeric identity: the latest text wins",
			steps: []step{
				{snapshot: true, bids: []proto.Level{lv("1.50", "1"), lv("1.4", "1")}},
				{bids: []proto.Level{lv("1.5", "2")}},
			},
			wantBid: []proto.Level{lv("1.5", "2"), lv("1.4", "1")}, wantAsk: []proto.Level{},
		},
		{
			name: "zero in any spelling removes; a missing level is no error",
			steps: []step{
				{snapshot: true, bids: []proto.Level{lv("10", "1"), lv("9", "1")}, asks: []proto.Level{lv("11", "1")}},
				{bids: []proto.Level{lv("10.0", "0.000"), lv("8", "0")}, asks: []proto.Level{lv("12", "0")}},
			},
			wantBid: []proto.Level{lv("9", "1")}, wantAsk: []proto.Level{lv("11", "1")},
		},
		{
			name: "insert in order, remove and re-add",
			steps: []step{
				{snapshot: true, asks: []proto.Level{lv("11", "1"), lv("13", "1")}},
				{asks: []proto.Level{lv("12", "5"), lv("11", "0"), lv("11.00", "7")}},
			},
			wantBid: []proto.Level{}, wantAsk: []proto.Level{lv("11.00", "7"), lv("12", "5"), lv("13", "1")},
		},
		{
			name: "a snapshot replaces everything; its zero sizes and duplicates are folded",
			steps: []step{
				{snapshot: true, bids: []proto.Level{lv("5", "1")}},
				{snapshot: true, bids: []proto.Level{lv("4", "1"), lv("4.0", "2"), lv("3", "0")}},
			},
			wantBid: []proto.Level{lv("4.0", "2")}, wantAsk: []proto.Level{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewBook()
			ref := booktest.New()
			for _, s := range tt.steps {
				if s.snapshot {
					b.Reset(s.bids, s.asks)
					ref.Reset(s.bids, s.asks)
				} else {
					b.Update(s.bids, s.asks)
					ref.Update(s.bids, s.asks)
				}
			}
			bids, asks := b.TopN(-1)
			if !slices.Equal(bids, tt.wantBid) || !slices.Equal(asks, tt.wantAsk) {
				t.Fatalf("book %v %v, want %v %v", bids, asks, tt.wantBid, tt.wantAsk)
			}
			if b.Checksum() != ref.Checksum() {
				t.Fatalf("checksum %d, reference %d", b.Checksum(), ref.Checksum())
			}
			if nb, na := b.Depth(); nb != len(tt.wantBid) || na != len(tt.wantAsk) {
				t.Fatalf("depth %d %d", nb, na)
			}
		})
	}
}

func TestBookAccessors(t *testing.T) {
	b := NewBook()
	if _, ok := b.BestBid(); ok {
		t.Fatal("best bid of an empty book")
	}
	if _, ok := b.BestAsk(); ok {
		t.Fatal("best ask of an empty book")
	}
	if b.Checksum() != 0 {
		t.Fatal("an empty book's checksum is 0")
	}
	var bids, asks []proto.Level
	for i := range 15 {
		bids = append(bids, lv(fmt.Sprintf("%d", 100-i), "1"))
		asks = append(asks, lv(fmt.Sprintf("%d", 101+i), "2"))
	}
	b.Reset(bids, asks)
	if l, _ := b.BestBid(); l != lv("100", "1") {
		t.Fatalf("best bid %v", l)
	}
	if l, _ := b.BestAsk(); l != lv("101", "2") {
		t.Fatalf("best ask %v", l)
	}
	tb, ta := b.TopN(3)
	if len(tb) != 3 || len(ta) != 3 || tb[2] != lv("98", "1") || ta[2] != lv("103", "2") {
		t.Fatalf("top 3: %v %v", tb, ta)
	}
	tb[0] = lv("1", "1") // a copy: the book is unchanged
	if l, _ := b.BestBid(); l != lv("100", "1") {
		t.Fatal("TopN shares the book's storage")
	}
	n := 0
	for i, l := range b.Asks() {
		if l != asks[i] {
			t.Fatalf("ask %d: %v", i, l)
		}
		n++
		if n == 5 {
			break
		}
	}
	for range b.Bids() {
		n++
	}
	if n != 20 {
		t.Fatalf("iterated %d levels", n)
	}
	c := b.Clone()
	c.Update([]proto.Level{lv("100", "0")}, nil)
	if !b.Equal(b.Clone()) || b.Equal(c) || b.Checksum() == c.Checksum() {
		t.Fatal("Clone is not deep")
	}
	if want := proto.BookChecksum(bids, asks); b.Checksum() != want {
		t.Fatalf("checksum %d, want %d", b.Checksum(), want)
	}
}

// The book agrees with the reference book of internal/booktest on a long
// random feed, message by message, checksum included.
func TestBookMatchesReference(t *testing.T) {
	for seed := range uint64(2) {
		f := booktest.NewFeed("X", seed)
		b := NewBook()
		for i := range 600 {
			m := f.Update(int64(i))
			if i%200 == 0 {
				m = f.Snapshot(int64(i))
			}
			d := m.Data.(*proto.Book)
			if m.Type == proto.FeedSnapshot {
				b.Reset(d.Bids, d.Asks)
			} else {
				b.Update(d.Bids, d.Asks)
			}
			if b.Checksum() != d.Checksum {
				t.Fatalf("seed %d message %d: checksum %d, feed says %d", seed, m.Seq, b.Checksum(), d.Checksum)
			}
		}
		rb, ra := f.Book().Levels()
		bids, asks := b.TopN(-1)
		if !slices.Equal(bids, rb) || !slices.Equal(asks, ra) {
			t.Fatalf("seed %d: book differs from the publisher's", seed)
		}
	}
}

// benchBook is a book of depth levels per side and a stream of deltas
// that change, add and remove levels near the top.
func benchBook(depth int) (*Book, [][2][]proto.Level) {
	var bids, asks []proto.Level
	for i := range depth {
		bids = append(bids, lv(fmt.Sprintf("%d.%02d", 50000-i/100, 99-i%100), "1.5"))
		asks = append(asks, lv(fmt.Sprintf("%d.%02d", 50001+i/100, i%100), "0.7"))
	}
	b := NewBook()
	b.Reset(bids, asks)
	deltas := make([][2][]proto.Level, 1024)
	for i := range deltas {
		j := i % 20
		switch i % 4 {
		case 0: // change a size
			deltas[i] = [2][]proto.Level{{lv(bids[j][0], "2.25")}, nil}
		case 1: // remove then put back (two messages)
			deltas[i] = [2][]proto.Level{nil, {lv(asks[j][0], "0")}}
		case 2:
			deltas[i] = [2][]proto.Level{nil, {lv(asks[j-1][0], "0.7")}}
		default: // both sides
			deltas[i] = [2][]proto.Level{{lv(bids[j][0], "1.5")}, {lv(asks[j][0], "3")}}
		}
	}
	return b, deltas
}

func TestBookUpdateAllocatesNothing(t *testing.T) {
	b, deltas := benchBook(1000)
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		d := deltas[i%len(deltas)]
		b.Update(d[0], d[1])
		_ = b.Checksum()
		i++
	})
	if allocs != 0 {
		t.Fatalf("Update+Checksum allocates %.1f times per message", allocs)
	}
}

func BenchmarkBookUpdate(b *testing.B) {
	for _, depth := range []int{50, 1000, 5000} {
		b.Run(fmt.Sprintf("depth=%d", depth), func(b *testing.B) {
			book, deltas := benchBook(depth)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				d := deltas[i%len(deltas)]
				book.Update(d[0], d[1])
				_ = book.Checksum()
				i++
			}
		})
	}
}

func BenchmarkBookReset(b *testing.B) {
	book, _ := benchBook(1000)
	bids, asks := book.TopN(-1)
	b.ReportAllocs()
	for b.Loop() {
		book.Reset(bids, asks)
		_ = book.Checksum()
	}
}

func TestPriceKey(t *testing.T) {
	tests := []struct {
		in   string
		want uint64
	}{
		{"0", 0}, {"1", 100_000_000}, {"1.5", 150_000_000}, {"1.50", 150_000_000}, {"01.500", 150_000_000},
		{"64000.10", 6_400_010_000_000}, {"0.00000001", 1}, {"0.000000010", 1},
		{"0.000000001", noKey}, {"184467440736", noKey}, {"99999999999", 9_999_999_999_900_000_000}, {"1e3", noKey}, {"-1", noKey},
	}
	for _, tt := range tests {
		if got := priceKey(tt.in); got != tt.want {
			t.Errorf("priceKey(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

// Prices with and without keys (more than 8 decimals, huge) keep one
// order on a side: the book still agrees with the reference.
func TestBookMixedPrecision(t *testing.T) {
	b, ref := NewBook(), booktest.New()
	bids := []proto.Level{lv("1.000000001", "1"), lv("1", "1"), lv("0.9999999999", "2"), lv("123456789012345", "1"), lv("1.00000001", "1")}
	asks := []proto.Level{lv("2.5", "1"), lv("2.500000000001", "1"), lv("2.49999999999", "1"), lv("900000000000.1", "1")}
	b.Reset(bids, asks)
	ref.Reset(bids, asks)
	steps := [][2][]proto.Level{
		{{lv("1.0000000010", "4"), lv("1.00", "0")}, {lv("2.5000000000010", "0")}},
		{{lv("0.99999999990", "0"), lv("1.000000005", "3")}, {lv("2.4", "1"), lv("900000000000.10", "2")}},
	}
	for i, s := range steps {
		b.Update(s[0], s[1])
		ref.Update(s[0], s[1])
		gb, ga := b.TopN(-1)
		rb, ra := ref.Levels()
		if !slices.Equal(gb, rb) || !slices.Equal(ga, ra) || b.Checksum() != ref.Checksum() {
			t.Fatalf("step %d: %v %v, reference %v %v", i, gb, ga, rb, ra)
		}
	}
}
