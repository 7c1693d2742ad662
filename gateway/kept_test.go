package gateway

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/tickgate/tickgate/codec"
	"github.com/tickgate/tickgate/feed"
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
		m := &feed.Message{Seq: seq, Data: &proto.Trade{Symbol: "T", ID: int64(seq), Price: "1", Size: "1", Side: "buy", TS: 1}}
		s.hub.process(s.hub.lookup(ch), m, nil)
	}
}

// takeAll is a writer round without the socket: what c's outbox holds, as
// "type seq" (a gap: "gap from-to"), with how many of them came as FIFO
// frames (batch.frames) rather than pendings (batch.items), and whether the
// outbox is closing with 4008.
func takeAll(t *testing.T, c *conn) (got []string, frames int, evicted bool) {
	t.Helper()
	var b batch
	closing := c.out.take(&b, time.Time{})
	frames = len(b.frames)
	for _, p := range b.taken() {
		f := p.frame
		if f == nil {
			f = c.srv.codecs.frame(c.variant, p.upd)
		}
		var w wire
		if err := codec.DecodeMessage(c.codec, payloadOf(f), &w); err != nil {
			t.Fatal(err)
		}
		if w.Type == proto.TypeGap {
			got = append(got, fmt.Sprintf("gap %d-%d", w.From, w.To))
		} else {
			got = append(got, fmt.Sprintf("%s %d", w.Type, w.Seq))
		}
	}
	c.out.wrote()
	return got, frames, closing != nil && closing.Code == proto.CloseSlowConsumer
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
		trade(1)
		var b batch
		c.out.take(&b, time.Time{})
		size := len(b.frames[0].frame)
		b.reset()
		c.out.wrote()
		s.cfg.TradeBufferBytes = 2*size + size/2 // two frames fit, not three
		trade(2)
		trade(3)
		c.out.mu.Lock()
		closing := c.out.closing
		c.out.mu.Unlock()
		if closing != nil {
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
}
