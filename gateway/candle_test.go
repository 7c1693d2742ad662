package gateway

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/tickgate/tickgate/codec"
	"github.com/tickgate/tickgate/feed"
	"github.com/tickgate/tickgate/proto"
)

var candle1m = proto.Channel{Kind: proto.KindCandle, Param: "1m", Symbol: "BTC-USD"}

// testMinute is the start of the n-th minute of a test day.
func testMinute(n int) int64 {
	return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(n) * time.Minute).UnixNano()
}

// testBar is a valid 1m BTC-USD bar starting at minute n, closing at
// close.
func testBar(n int, close string, closed bool) *proto.Candle {
	return &proto.Candle{Symbol: "BTC-USD", Interval: "1m", Start: testMinute(n), Open: "100", High: "200",
		Low: "50", Close: close, Volume: "1", Trades: 1, Closed: closed, TS: testMinute(n) + 1}
}

// candleWire is a candle channel's message as a client decodes it.
type candleWire struct {
	Type    string  `json:"type" msgpack:"type"`
	Channel string  `json:"channel" msgpack:"channel"`
	Seq     uint64  `json:"seq" msgpack:"seq"`
	Prev    *uint64 `json:"prev" msgpack:"prev"`
	N       uint32  `json:"n" msgpack:"n"`
	Data    struct {
		proto.Candle
		Bars []proto.Candle `json:"bars" msgpack:"bars"`
	} `json:"data" msgpack:"data"`
	From uint64 `json:"from" msgpack:"from"`
	To   uint64 `json:"to" msgpack:"to"`
}

func decodeCandle(t *testing.T, cd codec.Codec, b []byte) candleWire {
	t.Helper()
	var w candleWire
	if err := codec.DecodeMessage(cd, b, &w); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return w
}

// busy marks c's writer as writing, as while a batch is on the socket.
func busy(c *conn) {
	c.out.mu.Lock()
	c.out.writing = true
	c.out.mu.Unlock()
}

// While the writer is busy, a pending open bar is replaced by the next
// message for its start (its close included), n counting both; a closed
// bar is never replaced; a connection in step gets every bar on its own.
func TestCandlePendingRevise(t *testing.T) {
	s := hubFixture(t)
	c := s.bareConn(codec.JSON())
	s.joinFor(t, c, candle1m, joinOptions{})
	queued(c)
	busy(c)
	for i, b := range []*proto.Candle{
		testBar(0, "101", false), testBar(0, "102", false), testBar(0, "103", true),
		testBar(1, "104", false), testBar(1, "105", false),
	} {
		s.hub.onFeed(candle1m, &feed.Message{Seq: uint64(i + 1), Data: b})
	}
	got := queued(c)
	if len(got) != 2 {
		t.Fatalf("queued %q, want the closed bar 0 and the open bar 1", got)
	}
	for i, want := range []struct {
		seq, prev uint64
		n         uint32
		close     string
		closed    bool
	}{{3, 0, 3, "103", true}, {5, 3, 2, "105", false}} {
		w := decodeCandle(t, codec.JSON(), got[i])
		if w.Type != proto.TypeUpdate || w.Seq != want.seq || *w.Prev != want.prev || w.N != want.n ||
			w.Data.Close != want.close || w.Data.Closed != want.closed {
			t.Fatalf("message %d: %s, want seq %d prev %d n %d close %s closed %v", i, got[i], want.seq, want.prev, want.n, want.close, want.closed)
		}
	}
	if n := count(t, s.metrics.coalescedByKind[proto.KindCandle]); n != 3 {
		t.Fatalf("coalesced %v, want 3", n)
	}

	// A writer that keeps up gets every message.
	c.out.wrote()
	s.hub.onFeed(candle1m, &feed.Message{Seq: 6, Data: testBar(1, "106", false)})
	s.hub.onFeed(candle1m, &feed.Message{Seq: 7, Data: testBar(1, "107", false)})
	if got := queued(c); len(got) != 2 {
		t.Fatalf("a free writer got %d messages for 2 bars", len(got))
	}
}

// Closed bars pile up like trades for a connection that does not read,
// bounded by the trade buffer, and overflow evicts it (4008).
func TestCandleClosedBarsBounded(t *testing.T) {
	s := hubFixture(t, func(c *Config) { c.TradeBufferMessages = 2 })
	c := s.bareConn(codec.Msgpack())
	s.joinFor(t, c, candle1m, joinOptions{})
	queued(c)
	busy(c)
	for i := range 3 {
		s.hub.onFeed(candle1m, &feed.Message{Seq: uint64(i + 1), Data: testBar(i, "100", true)})
	}
	closing := closingOf(c)
	if closing == nil || closing.Code != proto.CloseSlowConsumer {
		t.Fatalf("closing %v, want 4008", closing)
	}
	if n := s.metrics.evictionCount(evictTradeOverflow); n != 1 {
		t.Fatalf("%v trade_overflow evictions", n)
	}
}

// A snapshot holds the subscriber's bars, newest last; subscribers of one
// view share one snapshot encoding, another view gets its own.
func TestCandleSnapshotViews(t *testing.T) {
	s := hubFixture(t)
	seed := s.bareConn(codec.JSON())
	s.joinFor(t, seed, candle1m, joinOptions{}) // holds the channel while the bars arrive
	for i := range 4 {
		s.hub.onFeed(candle1m, &feed.Message{Seq: uint64(2*i + 1), Data: testBar(i, "100", false)})
		s.hub.onFeed(candle1m, &feed.Message{Seq: uint64(2*i + 2), Data: testBar(i, "101", i < 3)})
	}
	two := feed.SnapshotOptions{Bars: 2}
	a, b, d := s.bareConn(codec.JSON()), s.bareConn(codec.JSON()), s.bareConn(codec.JSON())
	s.joinFor(t, a, candle1m, joinOptions{snapshot: true, view: two})
	s.joinFor(t, b, candle1m, joinOptions{snapshot: true, view: two})
	s.joinFor(t, d, candle1m, joinOptions{snapshot: true})
	qa, qb, qd := queued(a), queued(b), queued(d)
	if len(qa) != 1 || len(qb) != 1 || len(qd) != 1 {
		t.Fatalf("queued %d %d %d", len(qa), len(qb), len(qd))
	}
	if &qa[0][0] != &qb[0][0] {
		t.Fatal("two subscribers of one view got separate snapshot encodings")
	}
	wa, wd := decodeCandle(t, codec.JSON(), qa[0]), decodeCandle(t, codec.JSON(), qd[0])
	if wa.Type != proto.TypeSnapshot || wa.Seq != 8 || len(wa.Data.Bars) != 2 || wa.Data.Bars[0].Start != testMinute(2) ||
		!wa.Data.Bars[0].Closed || wa.Data.Bars[1].Closed || wa.Data.Bars[1].Close != "101" {
		t.Fatalf("bars 2: %s", qa[0])
	}
	if len(wd.Data.Bars) != 4 || wd.Data.Symbol != "BTC-USD" || wd.Data.Interval != "1m" {
		t.Fatalf("default bars: %s", qd[0])
	}
}

// Over the wire, in both codecs: bad intervals and bars get their errors
// (counted), the snapshot of a late joiner holds the newest bars, updates
// chain from it, and a resume replays the bars after since.
func TestCandleEndToEnd(t *testing.T) {
	for _, cd := range []string{"json", "msgpack"} {
		t.Run(cd, func(t *testing.T) {
			e := newTestEnv(t)
			tok := e.token(t, "candles", time.Hour, "candle.*.BTC-USD")
			c := e.connect(t, cd, tok)
			c.send(t, proto.Command{Op: proto.OpSubscribe, ID: ptr[int64](1), Channels: []string{"candle.2m.BTC-USD", "candle.1m.ETH-USD"}})
			if w := c.expect(t, proto.TypeError); w.Code != string(proto.CodeBadChannel) {
				t.Fatalf("unknown interval: %s", w.raw)
			}
			if w := c.expect(t, proto.TypeError); w.Code != string(proto.CodeForbidden) {
				t.Fatalf("a symbol the token does not allow: %s", w.raw)
			}
			for _, bars := range []int64{0, 1001, -1} {
				c.send(t, proto.Command{Op: proto.OpSubscribe, ID: ptr[int64](2), Channels: []string{"candle.1m.BTC-USD"}, Bars: &bars})
				if w := c.expect(t, proto.TypeError); w.Code != string(proto.CodeBadRequest) {
					t.Fatalf("bars %d: %s", bars, w.raw)
				}
			}
			if n := count(t, e.srv.metrics.errorsByCode[proto.CodeBadRequest]); n != 3 {
				t.Fatalf("%v bad_request errors counted", n)
			}
			c.send(t, proto.Command{Op: proto.OpSubscribe, ID: ptr[int64](3), Channels: []string{"candle.1m.BTC-USD"}})
			c.expect(t, proto.TypeSubscribed)
			for i := range 3 {
				e.publish(t, "candle.1m.BTC-USD", uint64(2*i+1), proto.FeedUpdate, testBar(i, "150", false))
				e.publish(t, "candle.1m.BTC-USD", uint64(2*i+2), proto.FeedUpdate, testBar(i, "151", true))
			}
			e.flush(t)
			first := decodeCandle(t, c.codec, c.expect(t, proto.TypeSnapshot).raw)
			if first.Seq != 1 || len(first.Data.Bars) != 1 || first.Data.Bars[0].Close != "150" {
				t.Fatalf("first snapshot %+v", first)
			}
			// A writer busy on the socket may get an open bar revised by the
			// next message of its start (n counts both); every closed bar
			// arrives.
			closed := 0
			for last := first.Seq; last < 6; {
				w := decodeCandle(t, c.codec, c.expect(t, proto.TypeUpdate).raw)
				seq := w.Seq
				if *w.Prev != last || w.N != uint32(seq-last) || w.Data.Closed != (seq%2 == 0) || w.Data.Start != testMinute(int(seq-1)/2) ||
					w.N > 1 && (seq%2 == 1 || testMinute(int(last)/2) != w.Data.Start) {
					t.Fatalf("update after %d: %+v", last, w)
				}
				if w.Data.Closed {
					closed++
				}
				last = seq
			}
			if closed != 3 {
				t.Fatalf("%d closed bars arrived, want 3", closed)
			}
			late := e.connect(t, cd, tok)
			bars := int64(2)
			late.send(t, proto.Command{Op: proto.OpSubscribe, ID: ptr[int64](4), Channels: []string{"candle.1m.BTC-USD"}, Bars: &bars})
			late.expect(t, proto.TypeSubscribed)
			w := decodeCandle(t, late.codec, late.expect(t, proto.TypeSnapshot).raw)
			if w.Seq != 6 || len(w.Data.Bars) != 2 || w.Data.Bars[0].Start != testMinute(1) || !w.Data.Bars[1].Closed {
				t.Fatalf("late snapshot %+v", w)
			}
			again := e.connect(t, cd, tok)
			again.send(t, proto.Command{Op: proto.OpSubscribe, ID: ptr[int64](5), Channels: []string{"candle.1m.BTC-USD"}, Since: map[string]uint64{"candle.1m.BTC-USD": 4}})
			if ack := again.expect(t, proto.TypeSubscribed); len(ack.Resumed) != 1 {
				t.Fatalf("resume: %s", ack.raw)
			}
			for seq := uint64(5); seq <= 6; seq++ {
				if w := decodeCandle(t, again.codec, again.expect(t, proto.TypeUpdate).raw); w.Seq != seq || *w.Prev != seq-1 {
					t.Fatalf("replay %d: %+v", seq, w)
				}
			}
		})
	}
}

// count reads one counter's value.
func count(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
