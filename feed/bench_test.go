package feed_test

import (
	"testing"
	"time"

	"github.com/tickgate/tickgate/codec"
	"github.com/tickgate/tickgate/feed"
	"github.com/tickgate/tickgate/feed/feedsim"
	"github.com/tickgate/tickgate/proto"
)

// bookMessages returns a snapshot and n decoded deltas of one feedsim book.
func bookMessages(b *testing.B, depth, n int) (snap *feed.Message, deltas []*feed.Message) {
	b.Helper()
	ch := proto.Channel{Kind: proto.KindBook, Symbol: "BTC-USD"}
	sim, err := feedsim.New(feedsim.Config{Symbols: []string{"BTC-USD"}, BookDepth: depth, SnapshotEvery: time.Hour,
		Now: func() time.Time { return time.Unix(1_700_000_000, 0) }})
	if err != nil {
		b.Fatal(err)
	}
	for len(deltas) < n {
		subj, p, err := sim.Next()
		if err != nil {
			b.Fatal(err)
		}
		if subj != "md.book.BTC-USD" {
			continue
		}
		m, err := feed.Decode(ch, p)
		if err != nil {
			b.Fatal(err)
		}
		if m.Snapshot {
			snap = m
			continue
		}
		deltas = append(deltas, m)
	}
	return snap, deltas
}

// BenchmarkBookApplyUpdate applies feedsim deltas (a few levels each) to a
// 25-level book: level updates, checksum, history.
func BenchmarkBookApplyUpdate(b *testing.B) {
	snap, deltas := bookMessages(b, 25, 4096)
	st := feed.NewState(proto.Channel{Kind: proto.KindBook, Symbol: "BTC-USD"}, 0)
	if _, emit, _ := st.Apply(snap); !emit {
		b.Fatal("snapshot not applied")
	}
	seq := snap.Seq
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		m := deltas[i%len(deltas)]
		seq++
		m.Seq = seq
		m.Book().Checksum = 0 // replayed deltas no longer match the publisher's book
		if _, emit, _ := st.Apply(m); !emit {
			b.Fatal("delta not applied")
		}
	}
}

// BenchmarkDecodeMsgpack decodes and validates msgpack feed payloads.
func BenchmarkDecodeMsgpack(b *testing.B) {
	enc := codec.Msgpack()
	book := &proto.Book{Symbol: "BTC-USD", TS: 1}
	for i := range 25 {
		book.Bids = append(book.Bids, proto.Level{"640" + twoDigits(99-i) + ".10", "1.5"})
		book.Asks = append(book.Asks, proto.Level{"641" + twoDigits(i) + ".20", "0.7"})
	}
	book.Checksum = proto.BookChecksum(book.Bids, book.Asks)
	cases := []struct {
		name string
		ch   proto.Channel
		msg  proto.FeedMessage
	}{
		{"ticker", proto.Channel{Kind: proto.KindTicker, Symbol: "BTC-USD"}, proto.FeedMessage{Seq: 1, Type: proto.FeedUpdate, Data: &proto.Ticker{
			Symbol: "BTC-USD", Bid: "64000.10", BidSize: "1.5", Ask: "64000.20", AskSize: "0.7", Last: "64000.15", Volume: "1234.5", TS: 1}}},
		{"trade", proto.Channel{Kind: proto.KindTrade, Symbol: "BTC-USD"}, proto.FeedMessage{Seq: 1, Type: proto.FeedUpdate, Data: &proto.Trade{
			Symbol: "BTC-USD", ID: 991, Price: "64000.15", Size: "0.01", Side: "buy", TS: 1}}},
		{"book_delta_3", proto.Channel{Kind: proto.KindBook, Symbol: "BTC-USD"}, proto.FeedMessage{Seq: 1, Type: proto.FeedUpdate, Data: &proto.Book{
			Bids: []proto.Level{{"64000.10", "0"}, {"63999.90", "2.5"}}, Asks: []proto.Level{{"64000.20", "0.9"}}, Checksum: 1, TS: 1}}},
		{"book_snapshot_25", proto.Channel{Kind: proto.KindBook, Symbol: "BTC-USD"}, proto.FeedMessage{Seq: 1, Type: proto.FeedSnapshot, Data: book}},
	}
	for _, c := range cases {
		p, err := enc.Append(nil, c.msg)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(p)))
			for b.Loop() {
				if _, err := feed.Decode(c.ch, p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func twoDigits(i int) string { return string([]byte{byte('0' + i/10), byte('0' + i%10)}) }
