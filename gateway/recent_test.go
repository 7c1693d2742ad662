package gateway

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/tickgate/tickgate/codec"
	"github.com/tickgate/tickgate/proto"
)

// tradeSnapWire is a trade channel's snapshot as a client decodes it.
type tradeSnapWire struct {
	Type    string `json:"type" msgpack:"type"`
	Channel string `json:"channel" msgpack:"channel"`
	Seq     uint64 `json:"seq" msgpack:"seq"`
	Data    struct {
		Symbol string        `json:"symbol" msgpack:"symbol"`
		Trades []proto.Trade `json:"trades" msgpack:"trades"`
	} `json:"data" msgpack:"data"`
}

func recentIDs(t *testing.T, cd codec.Codec, w wire) (uint64, []int64) {
	t.Helper()
	var s tradeSnapWire
	if err := codec.DecodeMessage(cd, w.raw, &s); err != nil {
		t.Fatalf("%s: %v", w.raw, err)
	}
	if s.Data.Symbol == "" {
		t.Fatalf("trade snapshot without symbol: %s", w.raw)
	}
	var ids []int64
	for _, tr := range s.Data.Trades {
		ids = append(ids, tr.ID)
	}
	return s.Seq, ids
}

func publishTrade(t *testing.T, e *testEnv, channel string, seq uint64) {
	t.Helper()
	e.publish(t, channel, seq, proto.FeedUpdate, &proto.Trade{ID: int64(seq), Price: "1", Size: "1", Side: "buy", TS: int64(seq)})
}

// recent asks a trade channel for its newest trades first, as a snapshot
// that updates chain from; 0 keeps 1.0's behaviour; since wins over it;
// out of range is bad_request; other kinds ignore it.
func TestRecentTrades(t *testing.T) {
	for _, cd := range []string{"json", "msgpack"} {
		t.Run(cd, func(t *testing.T) {
			e := newTestEnv(t)
			tok := e.token(t, "tape", time.Hour, ">")
			holder := e.connect(t, cd, tok) // holds the channel while trades arrive
			holder.send(t, proto.Command{Op: proto.OpSubscribe, ID: ptr[int64](1), Channels: []string{"trade.X"}})
			holder.expect(t, proto.TypeSubscribed)
			for seq := uint64(1); seq <= 5; seq++ {
				publishTrade(t, e, "trade.X", seq)
			}
			e.flush(t)
			for range 5 {
				holder.expect(t, proto.TypeUpdate)
			}

			c := e.connect(t, cd, tok)
			for _, r := range []int64{-1, 1001} {
				c.send(t, proto.Command{Op: proto.OpSubscribe, ID: ptr[int64](2), Channels: []string{"trade.X"}, Recent: &r})
				if w := c.expect(t, proto.TypeError); w.Code != string(proto.CodeBadRequest) {
					t.Fatalf("recent %d: %s", r, w.raw)
				}
			}
			three := int64(3)
			c.send(t, proto.Command{Op: proto.OpSubscribe, ID: ptr[int64](3), Channels: []string{"trade.X", "ticker.X"}, Recent: &three})
			c.expect(t, proto.TypeSubscribed)
			seq, ids := recentIDs(t, c.codec, c.expect(t, proto.TypeSnapshot))
			if seq != 5 || !slices.Equal(ids, []int64{3, 4, 5}) {
				t.Fatalf("recent 3: seq %d ids %v", seq, ids)
			}
			publishTrade(t, e, "trade.X", 6)
			e.flush(t)
			if w := c.expect(t, proto.TypeUpdate); w.Seq != 6 || *w.Prev != 5 || w.Channel != "trade.X" {
				t.Fatalf("after the snapshot: %s", w.raw)
			}

			// since wins: a resume, no snapshot.
			r := e.connect(t, cd, tok)
			r.send(t, proto.Command{Op: proto.OpSubscribe, ID: ptr[int64](4), Channels: []string{"trade.X"}, Recent: &three,
				Since: map[string]uint64{"trade.X": 4}})
			if w := r.expect(t, proto.TypeSubscribed); len(w.Resumed) != 1 {
				t.Fatalf("since with recent: %s", w.raw)
			}
			for _, want := range []uint64{5, 6} {
				if w := r.expect(t, proto.TypeUpdate); w.Seq != want {
					t.Fatalf("replay: %s, want seq %d", w.raw, want)
				}
			}

			// 0: 1.0, no snapshot; the next trade comes with prev 0.
			z := e.connect(t, cd, tok)
			zero := int64(0)
			z.send(t, proto.Command{Op: proto.OpSubscribe, ID: ptr[int64](5), Channels: []string{"trade.X"}, Recent: &zero})
			z.expect(t, proto.TypeSubscribed)
			publishTrade(t, e, "trade.X", 7)
			e.flush(t)
			if w := z.expect(t, proto.TypeUpdate); w.Seq != 7 || *w.Prev != 0 {
				t.Fatalf("recent 0: %s", w.raw)
			}
		})
	}
}

// A node whose memory is short of the trades asked for (it did not hold
// the channel when they happened) reads them from the history stream.
func TestRecentFromTheHistoryStream(t *testing.T) {
	e := newHistoryTestEnv(t)
	tok := e.token(t, "tape", time.Hour, ">")
	for seq := uint64(1); seq <= 30; seq++ {
		publishTrade(t, e, "trade.Y", seq)
	}
	e.flush(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	waitFor(t, "the stream holds trade 30", func() bool {
		msgs, err := e.srv.cfg.History.Last(ctx, proto.Channel{Kind: proto.KindTrade, Symbol: "Y"}, 1)
		return err == nil && len(msgs) == 1 && msgs[0].Seq == 30
	})
	c := e.connect(t, "msgpack", tok)
	ten := int64(10)
	c.send(t, proto.Command{Op: proto.OpSubscribe, ID: ptr[int64](1), Channels: []string{"trade.Y"}, Recent: &ten})
	c.expect(t, proto.TypeSubscribed)
	seq, ids := recentIDs(t, c.codec, c.expect(t, proto.TypeSnapshot))
	if seq != 30 || len(ids) != 10 || ids[0] != 21 || ids[9] != 30 {
		t.Fatalf("recent from the stream: seq %d ids %v", seq, ids)
	}
	publishTrade(t, e, "trade.Y", 31)
	e.flush(t)
	if w := c.expect(t, proto.TypeUpdate); w.Seq != 31 || *w.Prev != 30 {
		t.Fatalf("after the snapshot: %s", w.raw)
	}
	if n := e.srv.metrics.historyReadCount(historyRecent); n != 1 {
		t.Fatalf("%v recent reads", n)
	}
}
