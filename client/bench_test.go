package client

import (
	"testing"
	"time"

	"github.com/tickgate/tickgate/codec"
	"github.com/tickgate/tickgate/proto"
)

// BenchmarkReadPath is the read loop's work for one book update on a
// 1000-level book: decode (both codecs), the chain check, applying and
// checksumming, and queueing the event for a handler that keeps up.
func BenchmarkReadPath(b *testing.B) {
	for _, cd := range []codec.Codec{codec.JSON(), codec.Msgpack()} {
		b.Run(cd.Name(), func(b *testing.B) {
			book, deltas := benchBook(1000)
			bids, asks := book.TopN(-1)
			stats := new(counters)
			q := newQueue(func(Event) {}, 1<<20, stats)
			r := newRouter(q, stats, func() {}, time.Now)
			r.add("book.X", proto.Channel{Kind: proto.KindBook, Symbol: "X"}, subOptions{}, 1)
			r.acked(1, "book.X", subOptions{}, false)
			r.handle(withData(message{Type: proto.TypeSnapshot, Channel: "book.X", Seq: 1}, &proto.Book{Bids: bids, Asks: asks, Checksum: book.Checksum()}))
			// Pre-encode a cycle of updates whose checksums hold.
			frames := make([][]byte, len(deltas))
			for i, d := range deltas {
				book.Update(d[0], d[1])
				u := proto.Update{Type: proto.TypeUpdate, Channel: "book.X", Seq: uint64(i + 2), Prev: uint64(i + 1), N: 1,
					Data: &proto.Book{Bids: d[0], Asks: d[1], Checksum: book.Checksum(), TS: 1}}
				f, err := cd.Append(nil, u)
				if err != nil {
					b.Fatal(err)
				}
				frames[i] = f
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if i == len(frames) { // start the cycle over from the same book
					i = 0
					r.handle(withData(message{Type: proto.TypeSnapshot, Channel: "book.X", Seq: 1}, &proto.Book{Bids: bids, Asks: asks, Checksum: proto.BookChecksum(bids, asks)}))
				}
				var m message
				if err := m.decode(cd, frames[i]); err != nil {
					b.Fatal(err)
				}
				r.handle(&m)
				if i%16 == 0 {
					q.flushNow()
				}
				i++
			}
			if st := stats.snapshot(); st.Gaps != 0 {
				b.Fatalf("gaps: %+v", st)
			}
		})
	}
}
