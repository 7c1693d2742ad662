package gateway

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/tickgate/tickgate/codec"
	"github.com/tickgate/tickgate/feed"
	"github.com/tickgate/tickgate/internal/booktest"
	"github.com/tickgate/tickgate/proto"
)

var bookX = proto.Channel{Kind: proto.KindBook, Symbol: "X"}

// deepMessage is a DeepFeed's book as a feed message.
func deepMessage(seq uint64, snapshot bool, bids, asks []proto.Level) *feed.Message {
	return &feed.Message{Seq: seq, Snapshot: snapshot, Data: &proto.Book{Bids: bids, Asks: asks}}
}

// depth returns the view of a depth.
func depth(d int) feed.SnapshotOptions { return feed.SnapshotOptions{Depth: d} }

// Each update event is encoded once per depth and codec that subscribers
// hold, and shared by every subscriber of the pair in step; a change
// beyond a depth sends its subscribers nothing.
func TestDepthFramesEncodedOnce(t *testing.T) {
	s := hubFixture(t)
	f := booktest.NewDeepFeed(1)
	bids, asks := f.Snapshot(40)
	s.hub.onFeed(bookX, deepMessage(1, true, bids, asks)) // no one holds it yet: dropped
	type sub struct {
		c *conn
		d int
	}
	var subs []sub
	for _, spec := range []struct {
		d, n int
		cd   codec.Codec
	}{{10, 3, codec.JSON()}, {10, 2, codec.Msgpack()}, {25, 2, codec.JSON()}, {0, 2, codec.JSON()}} {
		for range spec.n {
			c := s.bareConn(spec.cd)
			s.joinFor(t, c, bookX, joinOptions{snapshot: true, view: depth(spec.d)})
			subs = append(subs, sub{c, spec.d})
		}
	}
	bids, asks = f.Snapshot(40)
	s.hub.onFeed(bookX, deepMessage(2, true, bids, asks))
	for _, x := range subs {
		queued(x.c) // the snapshots
		x.c.out.wrote()
	}
	// The 12th bid moves: within depth 25, beyond depth 10.
	b12 := f.Book().Top(0, 12)[11]
	delta := []proto.Level{{b12[0], "777.7"}}
	f.Book().Apply(delta, nil)
	before := s.codecs.encodes.Load()
	s.hub.onFeed(bookX, deepMessage(3, false, delta, []proto.Level{}))
	if n := s.codecs.encodes.Load() - before; n != 2 {
		t.Fatalf("%d encodings for depth 25 and the whole book, json", n)
	}
	for _, x := range subs {
		if got := queued(x.c); len(got) != map[int]int{10: 0, 25: 1, 0: 1}[x.d] {
			t.Fatalf("depth %d: %d messages for a change at the 12th level", x.d, len(got))
		}
		x.c.out.wrote()
	}
	// The best bid goes: every depth changes, and a level enters each.
	best := f.Book().Top(0, 1)[0]
	delta = []proto.Level{{best[0], "0"}}
	f.Book().Apply(delta, nil)
	before = s.codecs.encodes.Load()
	s.hub.onFeed(bookX, deepMessage(4, false, delta, []proto.Level{}))
	if n := s.codecs.encodes.Load() - before; n != 4 {
		t.Fatalf("%d encodings, want 4: depth 10 json and msgpack, depth 25 json, the whole book json", n)
	}
	frames := map[string][]byte{}
	for _, x := range subs {
		got := queued(x.c)
		if len(got) != 1 {
			t.Fatalf("depth %d: %d messages", x.d, len(got))
		}
		key := fmt.Sprint(x.d, x.c.codec.Name())
		if prev, ok := frames[key]; ok && &prev[0] != &got[0][0] {
			t.Fatalf("depth %d %s: subscribers in step got separate encodings", x.d, x.c.codec.Name())
		}
		frames[key] = got[0]
		if x.d == 10 {
			var w wire
			if err := codec.DecodeMessage(x.c.codec, got[0], &w); err != nil {
				t.Fatal(err)
			}
			want11 := f.Book().Top(0, 10)[9]
			if *w.Prev != 2 || w.N != 2 || len(w.Data.Bids) != 2 || w.Data.Bids[0] != (proto.Level{best[0], "0"}) || w.Data.Bids[1] != want11 || len(w.Data.Asks) != 0 {
				t.Fatalf("depth 10 update: %s; want the best bid gone and %v entering, prev 2, n 2", got[0], want11)
			}
		}
	}
}

// A client of every depth, behind or not, that applies what it gets holds
// exactly the best depth levels of the book once it took everything
// pending: the depth deltas fold correctly for busy connections, their
// prev chains hold, every message's checksum verifies on the client's
// levels, and snapshots (the feed's, and those that replace a merge grown
// too large) are cut to the depth.
func TestDepthCoalescingProperty(t *testing.T) {
	steps := 400
	if raceEnabled || testing.Short() {
		steps = 120
	}
	for seed := range uint64(3) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			s := hubFixture(t)
			f := booktest.NewDeepFeed(seed)
			rng := rand.New(rand.NewPCG(seed, 99))
			type client struct {
				c    *conn
				d    int
				book *booktest.CentsBook
				last uint64
			}
			var clients []*client
			for _, d := range append([]int{0}, proto.Depths()...) {
				for _, cd := range codec.All() {
					c := s.bareConn(cd)
					s.joinFor(t, c, bookX, joinOptions{snapshot: true, view: depth(d)})
					clients = append(clients, &client{c: c, d: d, book: booktest.NewCentsBook()})
				}
			}
			read := func(cl *client) {
				for _, b := range queued(cl.c) {
					var w wire
					if err := codec.DecodeMessage(cl.c.codec, b, &w); err != nil {
						t.Fatal(err)
					}
					switch w.Type {
					case proto.TypeSnapshot:
						if cl.d > 0 && (len(w.Data.Bids) > cl.d || len(w.Data.Asks) > cl.d) {
							t.Fatalf("depth %d: a snapshot of %d/%d levels", cl.d, len(w.Data.Bids), len(w.Data.Asks))
						}
						cl.book.Reset(w.Data.Bids, w.Data.Asks)
					case proto.TypeUpdate:
						if *w.Prev != cl.last {
							t.Fatalf("depth %d: prev %d after %d", cl.d, *w.Prev, cl.last)
						}
						cl.book.Apply(w.Data.Bids, w.Data.Asks)
					default:
						continue
					}
					cl.last = w.Seq
					if got := proto.BookChecksum(cl.book.Top(0, 10), cl.book.Top(1, 10)); got != w.Data.Checksum {
						t.Fatalf("depth %d seq %d: checksum %d, message says %d", cl.d, w.Seq, got, w.Data.Checksum)
					}
				}
			}
			check := func(cl *client) {
				t.Helper()
				n := cl.d
				if n == 0 {
					n = -1
				}
				if !cl.book.Holds(0, f.Book().Top(0, n)) || !cl.book.Holds(1, f.Book().Top(1, n)) {
					t.Fatalf("depth %d (%s): after seq %d, the client's book is not the best %d levels", cl.d, cl.c.codec.Name(), cl.last, cl.d)
				}
			}
			seq := uint64(1)
			bids, asks := f.Snapshot(1100)
			s.hub.onFeed(bookX, deepMessage(seq, true, bids, asks))
			for step := range steps {
				seq++
				if step%150 == 149 {
					bids, asks = f.Snapshot([]int{20, 300, 1100}[rng.IntN(3)])
					s.hub.onFeed(bookX, deepMessage(seq, true, bids, asks))
				} else {
					bids, asks = f.Delta()
					s.hub.onFeed(bookX, deepMessage(seq, false, bids, asks))
				}
				for _, cl := range clients {
					switch rng.IntN(4) {
					case 0: // the writer takes all that is pending and is busy writing it
						read(cl)
						check(cl)
						busy(cl.c)
					case 1: // the writer finished and is free
						cl.c.out.wrote()
					}
				}
			}
			for _, cl := range clients {
				cl.c.out.wrote()
				read(cl)
				check(cl)
				// A depth's subscriber gets no update for a change beyond
				// its depth: its last seq may be older than the node's.
				if cl.d == 0 && cl.last != seq {
					t.Fatalf("whole book (%s): at seq %d of %d", cl.c.codec.Name(), cl.last, seq)
				}
			}
		})
	}
}

// Over the wire: bad depths are refused, a depth subscriber gets its
// levels and only the changes within them, checksums verify, and a resume
// falls back to a fresh snapshot of the depth.
func TestDepthEndToEnd(t *testing.T) {
	for _, cd := range []string{"json", "msgpack"} {
		t.Run(cd, func(t *testing.T) {
			e := newTestEnv(t)
			tok := e.token(t, "depth", time.Hour, "book.*")
			c := e.connect(t, cd, tok)
			for _, d := range []int64{0, 5, 11, 2000, -10} {
				c.send(t, proto.Command{Op: proto.OpSubscribe, ID: ptr[int64](1), Channels: []string{"book.BTC-USD"}, Depth: &d})
				if w := c.expect(t, proto.TypeError); w.Code != string(proto.CodeBadRequest) {
					t.Fatalf("depth %d: %s", d, w.raw)
				}
			}
			ten := int64(10)
			c.send(t, proto.Command{Op: proto.OpSubscribe, ID: ptr[int64](2), Channels: []string{"book.BTC-USD"}, Depth: &ten})
			c.expect(t, proto.TypeSubscribed)
			f := booktest.NewDeepFeed(5)
			bch := proto.Channel{Kind: proto.KindBook, Symbol: "BTC-USD"}
			bids, asks := f.Snapshot(30)
			e.publishMessage(t, bch, proto.FeedMessage{Seq: 1, Type: proto.FeedSnapshot, Data: &proto.Book{Bids: bids, Asks: asks}})
			deep := f.Book().Top(1, 20)[19] // the 20th ask: beyond depth 10
			e.publishMessage(t, bch, proto.FeedMessage{Seq: 2, Type: proto.FeedUpdate, Data: &proto.Book{Asks: []proto.Level{{deep[0], "1.5"}}}})
			f.Book().Apply(nil, []proto.Level{{deep[0], "1.5"}})
			best := f.Book().Top(1, 1)[0]
			e.publishMessage(t, bch, proto.FeedMessage{Seq: 3, Type: proto.FeedUpdate, Data: &proto.Book{Asks: []proto.Level{{best[0], "0"}}}})
			f.Book().Apply(nil, []proto.Level{{best[0], "0"}})
			e.flush(t)
			book := booktest.NewCentsBook()
			w := c.expect(t, proto.TypeSnapshot)
			if w.Seq != 1 || len(w.Data.Bids) != 10 || len(w.Data.Asks) != 10 {
				t.Fatalf("snapshot: %s", w.raw)
			}
			book.Reset(w.Data.Bids, w.Data.Asks)
			w = c.expect(t, proto.TypeUpdate) // seq 2 changed nothing within 10
			if w.Seq != 3 || *w.Prev != 1 || w.N != 2 || len(w.Data.Asks) != 2 || len(w.Data.Bids) != 0 {
				t.Fatalf("update: %s", w.raw)
			}
			book.Apply(w.Data.Bids, w.Data.Asks)
			if !book.Holds(1, f.Book().Top(1, 10)) || proto.BookChecksum(book.Top(0, 10), book.Top(1, 10)) != w.Data.Checksum {
				t.Fatalf("the client's book after %s is not the best 10 levels", w.raw)
			}
			again := e.connect(t, cd, tok)
			again.send(t, proto.Command{Op: proto.OpSubscribe, ID: ptr[int64](3), Channels: []string{"book.BTC-USD"}, Depth: &ten,
				Since: map[string]uint64{"book.BTC-USD": 1}})
			if ack := again.expect(t, proto.TypeSubscribed); len(ack.Resumed) != 0 {
				t.Fatalf("a depth resumed from whole-book deltas: %s", ack.raw)
			}
			if w := again.expect(t, proto.TypeSnapshot); w.Seq != 3 || len(w.Data.Asks) != 10 {
				t.Fatalf("resume snapshot: %s", w.raw)
			}
		})
	}
}
