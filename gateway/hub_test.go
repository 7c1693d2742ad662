package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"testing"

	"github.com/tickgate/tickgate/auth"
	"github.com/tickgate/tickgate/codec"
	"github.com/tickgate/tickgate/feed"
	"github.com/tickgate/tickgate/proto"
)

// nopSource grants every channel at once; for hub tests without NATS.
type nopSource struct{}

func (nopSource) Acquire(context.Context, proto.Channel, feed.Handler) error { return nil }
func (nopSource) Release(proto.Channel)                                      {}

// hubFixture is a server without listeners: the hub and bare connections
// whose outboxes the test reads directly.
func hubFixture(t testing.TB) *Server {
	t.Helper()
	keys := auth.NewKeySet()
	if err := keys.Set([]auth.Key{{Material: make([]byte, 32)}}); err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(auth.Config{}, keys)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{NodeID: "hub-test", Logger: slog.New(slog.DiscardHandler)}, v, nopSource{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *Server) bareConn(cd codec.Codec) *conn {
	return s.newConn(cd, &auth.Claims{Subject: "t"}, "test")
}

// join subscribes c to ch the way a subscribe command does.
func (s *Server) joinFor(t testing.TB, c *conn, ch proto.Channel, opt joinOptions) *subscription {
	t.Helper()
	e, err := s.hub.acquire(context.Background(), ch)
	if err != nil {
		t.Fatal(err)
	}
	sub := &subscription{c: c, entry: e, idx: -1}
	e.join(s.codecs, sub, opt)
	e.ungate(sub)
	return sub
}

func queued(c *conn) []frame {
	q, _ := c.out.take(nil)
	return q
}

func tickerMsg(seq uint64) *feed.Message {
	return &feed.Message{Seq: seq, Ticker: &proto.Ticker{Symbol: "BTC-USD", Bid: "1", BidSize: "1", Ask: "2", AskSize: "1", Last: "1.5", Volume: "9", TS: int64(seq)}}
}

// Subscribers in step share one encoding per codec; one out of step gets
// its own bytes with its own prev.
func TestFanoutEncodesOncePerCodec(t *testing.T) {
	s := hubFixture(t)
	ch := proto.Channel{Kind: proto.KindTicker, Symbol: "BTC-USD"}
	j1, j2, m1 := s.bareConn(codec.JSON()), s.bareConn(codec.JSON()), s.bareConn(codec.Msgpack())
	for _, c := range []*conn{j1, j2, m1} {
		s.joinFor(t, c, ch, joinOptions{snapshot: true})
	}
	s.hub.onFeed(ch, tickerMsg(1)) // first state: everyone's snapshot
	s.hub.onFeed(ch, tickerMsg(2))
	late := s.bareConn(codec.JSON())
	s.joinFor(t, late, ch, joinOptions{snapshot: false}) // holds nothing: prev 0
	s.hub.onFeed(ch, tickerMsg(3))

	a, b, m, l := queued(j1), queued(j2), queued(m1), queued(late)
	if len(a) != 3 || len(b) != 3 || len(m) != 3 || len(l) != 1 {
		t.Fatalf("queued %d %d %d %d", len(a), len(b), len(m), len(l))
	}
	for i := range a {
		if &a[i].b[0] != &b[i].b[0] {
			t.Fatalf("message %d: two json subscribers in step got separate encodings", i)
		}
	}
	if &l[0].b[0] == &a[2].b[0] {
		t.Fatal("a subscriber out of step shared the in-step encoding")
	}
	var w wire
	if err := codec.DecodeMessage(codec.JSON(), l[0].b, &w); err != nil || w.Seq != 3 || *w.Prev != 0 {
		t.Fatalf("late subscriber got %s (%v)", l[0].b, err)
	}
	if err := codec.DecodeMessage(codec.Msgpack(), m[2].b, &w); err != nil || w.Seq != 3 || *w.Prev != 2 || w.Type != "update" {
		t.Fatalf("msgpack subscriber got %+v (%v)", w, err)
	}
}

// An unsubscribed connection gets nothing more, and the channel entry goes
// when its last subscriber leaves.
func TestLeaveAndRelease(t *testing.T) {
	s := hubFixture(t)
	ch := proto.Channel{Kind: proto.KindTrade, Symbol: "X"}
	c := s.bareConn(codec.JSON())
	sub := s.joinFor(t, c, ch, joinOptions{})
	sub.entry.leave(sub)
	s.hub.release(sub.entry)
	if s.hub.lookup(ch) != nil {
		t.Fatal("entry kept after the last subscriber left")
	}
	s.hub.onFeed(ch, &feed.Message{Seq: 1, Trade: &proto.Trade{Symbol: "X", ID: 1, Price: "1", Size: "1", Side: "buy"}})
	if q := queued(c); len(q) != 0 {
		t.Fatalf("%d frames after leaving", len(q))
	}
}

func BenchmarkFanoutTicker(b *testing.B) {
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			s := hubFixture(b)
			ch := proto.Channel{Kind: proto.KindTicker, Symbol: "BTC-USD"}
			conns := make([]*conn, n)
			for i := range conns {
				cd := codec.JSON()
				if i%2 == 1 {
					cd = codec.Msgpack()
				}
				conns[i] = s.bareConn(cd)
				conns[i].out.limit = 1 << 30
				s.joinFor(b, conns[i], ch, joinOptions{snapshot: true})
			}
			msgs := make([]*feed.Message, b.N+1)
			for i := range msgs {
				msgs[i] = tickerMsg(uint64(i + 1))
			}
			spare := make([][]frame, n)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				s.hub.onFeed(ch, msgs[i])
				if i%64 == 63 { // drain like writers do, reusing their slices
					for j, c := range conns {
						spare[j], _ = c.out.take(spare[j])
					}
				}
			}
		})
	}
}
