package gateway

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/tickgate/tickgate/codec"
	"github.com/tickgate/tickgate/proto"
)

// keptFixture is a connection subscribed to trade.T, and a function that
// delivers T's trade seq as a lone feed message.
func keptFixture(t *testing.T, tweak ...func(*Config)) (*Server, *conn, func(seq uint64)) {
	t.Helper()
	s := hubFixture(t, tweak...)
	ch := proto.Channel{Kind: proto.KindTrade, Symbol: "T"}
	c := s.bareConn(codec.JSON())
	s.joinFor(t, c, ch, joinOptions{})
	queued(c)
	return s, c, func(seq uint64) {
		s.hub.process(s.hub.lookup(ch), burstTrade(ch, seq, false), nil)
	}
}

// takeAll is a writer round without the socket (takeBatch, then wrote):
// what c's outbox holds, as "type seq" (a gap: "gap from-to"), with how
// many of them came as FIFO frames, and whether the outbox is closing
// with 4008.
func takeAll(t *testing.T, c *conn) (got []string, frames int, evicted bool) {
	t.Helper()
	payloads, frames, closing := takeBatch(c)
	c.out.wrote()
	for _, pl := range payloads {
		var w wire
		if err := codec.DecodeMessage(c.codec, pl, &w); err != nil {
			t.Fatal(err)
		}
		if w.Type == proto.TypeGap {
			got = append(got, fmt.Sprintf("gap %d-%d", w.From, w.To))
		} else {
			got = append(got, fmt.Sprintf("%s %d", w.Type, w.Seq))
		}
	}
	return got, frames, closing != nil && closing.Code == proto.CloseSlowConsumer
}

// firstFrameSize delivers trade 1, lets the writer take it, and returns
// the length of its frame: what a trade counts against the byte bound.
func firstFrameSize(t *testing.T, c *conn, trade func(seq uint64)) int {
	t.Helper()
	trade(1)
	var b batch
	c.out.take(&b, time.Time{})
	if len(b.frames) != 1 {
		t.Fatalf("%d frames taken, want trade 1's", len(b.frames))
	}
	size := len(b.frames[0].frame)
	b.reset()
	c.out.wrote()
	return size
}

// A trade in step with its subscriber goes into the outbox's FIFO as a
// frame, as a ticker's does, when nothing of the subscription waits before
// it; one behind something kept (a gap message) is kept too, so none
// overtakes another. The trade buffer's bounds count the frames in the
// FIFO, and a writer's take frees their room.
func TestTradesQueuedAsFrames(t *testing.T) {
	t.Run("in step: FIFO frames", func(t *testing.T) {
		_, c, trade := keptFixture(t)
		for seq := uint64(1); seq <= 3; seq++ {
			trade(seq)
		}
		got, frames, evicted := takeAll(t, c)
		if want := []string{"update 1", "update 2", "update 3"}; !slices.Equal(got, want) || frames != 3 || evicted {
			t.Fatalf("got %q, %d of them frames, evicted %v; want %q as frames", got, frames, evicted, want)
		}
	})
	t.Run("behind a gap: kept, in order", func(t *testing.T) {
		_, c, trade := keptFixture(t)
		for _, seq := range []uint64{1, 4, 5} { // 2..3 never came
			trade(seq)
		}
		got, _, _ := takeAll(t, c)
		if want := []string{"update 1", "gap 2-3", "update 4", "update 5"}; !slices.Equal(got, want) {
			t.Fatalf("got %q, want %q", got, want)
		}
	})
	for _, tc := range []struct {
		name   string
		msgs   int
		trades uint64
		evict  bool
	}{
		{"messages: at the bound", 3, 3, false},
		{"messages: one past it", 3, 4, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, c, trade := keptFixture(t, func(cfg *Config) { cfg.TradeBufferMessages = tc.msgs })
			for seq := uint64(1); seq <= tc.trades; seq++ {
				trade(seq)
			}
			if _, _, evicted := takeAll(t, c); evicted != tc.evict {
				t.Fatalf("%d trades with a buffer of %d: evicted %v, want %v", tc.trades, tc.msgs, evicted, tc.evict)
			}
		})
	}
	t.Run("bytes", func(t *testing.T) {
		s, c, trade := keptFixture(t)
		size := firstFrameSize(t, c, trade)
		s.cfg.TradeBufferBytes = 2*size + size/2 // two frames fit, not three
		trade(2)
		trade(3)
		if closingOf(c) != nil {
			t.Fatalf("evicted with two %d-byte frames in a %d-byte buffer", size, s.cfg.TradeBufferBytes)
		}
		trade(4)
		if _, _, evicted := takeAll(t, c); !evicted {
			t.Fatalf("not evicted with three %d-byte frames in a %d-byte buffer", size, s.cfg.TradeBufferBytes)
		}
	})
	t.Run("a take frees the room", func(t *testing.T) {
		_, c, trade := keptFixture(t, func(cfg *Config) { cfg.TradeBufferMessages = 2 })
		var got []string
		for seq := uint64(1); seq <= 6; seq += 2 {
			trade(seq)
			trade(seq + 1)
			g, _, evicted := takeAll(t, c)
			if evicted {
				t.Fatalf("evicted after trade %d, with the writer taking every two", seq+1)
			}
			got = append(got, g...)
		}
		if len(got) != 6 || got[5] != "update 6" {
			t.Fatalf("got %q", got)
		}
	})
	t.Run("frames and kept trades against one bound", func(t *testing.T) {
		// 1 and 2 as frames, then the gap 3-3 and 4 kept: four messages
		// in a buffer of four; 5 is one too many.
		_, c, trade := keptFixture(t, func(cfg *Config) { cfg.TradeBufferMessages = 4 })
		for _, seq := range []uint64{1, 2, 4} {
			trade(seq)
		}
		if closingOf(c) != nil {
			t.Fatal("evicted with four messages in a buffer of four")
		}
		trade(5)
		if _, _, evicted := takeAll(t, c); !evicted {
			t.Fatal("not evicted with five messages in a buffer of four")
		}
	})
	t.Run("a gated join: after the ack", func(t *testing.T) {
		// Trades that reach a resuming subscriber before its ack wait
		// for it, frames in step or not.
		s, c0, trade := keptFixture(t)
		trade(1)
		takeAll(t, c0)
		c := s.bareConn(codec.JSON())
		e, hold, err := s.hub.acquire(proto.Channel{Kind: proto.KindTrade, Symbol: "T"})
		if err != nil {
			t.Fatal(err)
		}
		sub := c.newSubscription(e, hold)
		since := uint64(1)
		if j := e.join(s.hub, sub, joinOptions{since: &since}); !j.resumed || j.plan != nil {
			t.Fatalf("join %+v, want a resume with nothing to replay", j)
		}
		trade(2) // gated, in step
		c.out.push(s.codecs.frame(c.variant, proto.Subscribed{Type: proto.TypeSubscribed}))
		sub.ungate(time.Now)
		trade(3)
		got, _, _ := takeAll(t, c)
		if want := []string{"subscribed 0", "update 2", "update 3"}; !slices.Equal(got, want) {
			t.Fatalf("got %q, want %q", got, want)
		}
	})
	t.Run("a re-subscribe and a leave", func(t *testing.T) {
		// A resume drops the frames waiting in the FIFO and their bytes
		// with them; a leave drops them too.
		s, c, trade := keptFixture(t)
		sub := s.hub.lookup(proto.Channel{Kind: proto.KindTrade, Symbol: "T"}).subs[0]
		size := firstFrameSize(t, c, trade)
		s.cfg.TradeBufferBytes = 2*size + size/2 // two frames fit, not three
		trade(2)
		trade(3)
		since := uint64(3)
		j := sub.entry.join(s.hub, sub, joinOptions{since: &since})
		if !j.resumed {
			t.Fatalf("join %+v, want a resume", j)
		}
		sub.fillHead(s.codecs, j.plan)
		sub.ungate(time.Now)
		trade(4)
		trade(5)
		got, _, evicted := takeAll(t, c)
		if want := []string{"update 4", "update 5"}; evicted || !slices.Equal(got, want) {
			t.Fatalf("after the resume: got %q, evicted %v; want %q", got, evicted, want)
		}
		trade(6)
		sub.entry.leave(sub)
		if got, _, _ := takeAll(t, c); len(got) != 0 {
			t.Fatalf("after the leave: got %q, want nothing", got)
		}
	})
	t.Run("behind its own entry in the FIFO", func(t *testing.T) {
		// A status that went stale and live again before the writer came
		// leaves the subscription's entry in the FIFO with nothing
		// pending; what follows is kept behind that entry, or a trade
		// queued as a frame after it would go out after the ones kept.
		s, c, trade := keptFixture(t)
		sub := s.hub.lookup(proto.Channel{Kind: proto.KindTrade, Symbol: "T"}).subs[0]
		trade(1)
		takeAll(t, c)
		stale := &status{state: stateStale, reason: proto.ReasonFeedDisconnected}
		stale.frames[c.variant] = s.codecs.frame(c.variant, proto.Status{Type: proto.TypeStatus, Channel: "trade.T", State: "stale", Reason: proto.ReasonFeedDisconnected})
		sub.tell(stale, time.Now)
		sub.tell(&status{state: stateLive}, time.Now)
		for _, seq := range []uint64{2, 5} { // 3..4 never came
			trade(seq)
		}
		got, _, _ := takeAll(t, c)
		if want := []string{"update 2", "gap 3-4", "update 5"}; !slices.Equal(got, want) {
			t.Fatalf("got %q, want %q", got, want)
		}
	})
}
