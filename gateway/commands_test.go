package gateway

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/tickgate/tickgate/proto"
)

func TestCommandErrorsKeepConnection(t *testing.T) {
	for _, codecName := range []string{"json", "msgpack"} {
		t.Run(codecName, func(t *testing.T) {
			e := newTestEnv(t, func(c *Config) { c.MaxSubscriptions = 3 })
			c := e.connect(t, codecName, e.token(t, "erin", time.Hour, "ticker.*", "book.BTC-USD"))
			type reply struct {
				typ, code, channel string
			}
			tests := []struct {
				name string
				cmd  proto.Command
				want []reply
			}{
				{"unknown op", proto.Command{Op: "launch", ID: ptr[int64](1)}, []reply{{"error", "unknown_op", ""}}},
				{"missing op", proto.Command{ID: ptr[int64](2)}, []reply{{"error", "bad_request", ""}}},
				{"no channels", proto.Command{Op: "subscribe", ID: ptr[int64](3)}, []reply{{"error", "bad_request", ""}}},
				{"negative throttle", proto.Command{Op: "subscribe", ID: ptr[int64](4), Channels: []string{"ticker.A"}, ThrottleMS: ptr[int64](-1)}, []reply{{"error", "bad_request", ""}}},
				{"partly refused", proto.Command{Op: "subscribe", ID: ptr[int64](5), Channels: []string{"ticker.BTC-USD", "book.ETH-USD", "candles.BTC-USD", "ticker.BAD/SYM"}}, []reply{
					{"error", "forbidden", "book.ETH-USD"}, {"error", "bad_channel", "candles.BTC-USD"}, {"error", "bad_channel", "ticker.BAD/SYM"}, {"subscribed", "", ""},
				}},
				{"too many", proto.Command{Op: "subscribe", ID: ptr[int64](6), Channels: []string{"ticker.A", "ticker.B", "ticker.C"}}, []reply{
					{"error", "too_many_subscriptions", "ticker.C"}, {"subscribed", "", ""},
				}},
				{"auth without token", proto.Command{Op: "auth", ID: ptr[int64](7)}, []reply{{"error", "invalid_token", ""}}},
				{"auth with garbage", proto.Command{Op: "auth", ID: ptr[int64](8), Token: "a.b.c"}, []reply{{"error", "invalid_token", ""}}},
				{"unsubscribe", proto.Command{Op: "unsubscribe", ID: ptr[int64](9), Channels: []string{"ticker.A", "ticker.never"}}, []reply{{"unsubscribed", "", ""}}},
				{"ping", proto.Command{Op: "ping", ID: ptr[int64](10)}, []reply{{"pong", "", ""}}},
			}
			for _, tt := range tests {
				c.send(t, tt.cmd)
				for _, want := range tt.want {
					w := c.next(t)
					if w.Type != want.typ || w.Code != want.code || (want.channel != "" && w.Channel != want.channel) {
						t.Fatalf("%s: got %s, want %+v", tt.name, w.raw, want)
					}
					if tt.cmd.ID != nil && (w.ID == nil || *w.ID != *tt.cmd.ID) {
						t.Fatalf("%s: id not echoed: %s", tt.name, w.raw)
					}
					if w.Type == "error" && w.Message == "" {
						t.Fatalf("%s: error without message", tt.name)
					}
				}
			}
			// A wrongly typed field: the command cannot run, but the
			// error still names it by its id.
			raw := []byte(`{"op":"subscribe","id":11,"channels":["ticker.A"],"throttle_ms":1.5}`)
			if codecName == "msgpack" {
				raw = []byte("\x84\xa2op\xa9subscribe\xa2id\x0b\xa8channels\x91\xa8ticker.A\xabthrottle_ms\xcb\x3f\xf8\x00\x00\x00\x00\x00\x00")
			}
			c.sendRaw(t, raw)
			if w := c.next(t); w.Type != "error" || w.Code != "bad_request" || w.ID == nil || *w.ID != 11 {
				t.Fatalf("wrongly typed throttle_ms: got %s, want bad_request with id 11", w.raw)
			}
			c.quiet(t, 100*time.Millisecond)
		})
	}
}

func TestHostileBytesGetBadRequest(t *testing.T) {
	tests := []struct {
		name  string
		codec string
		raw   []byte
	}{
		{"msgpack array32 of 4G", "msgpack", []byte{0xdd, 0xff, 0xff, 0xff, 0xff}},
		{"msgpack array16", "msgpack", []byte{0xdc, 0xff, 0xff}},
		{"msgpack str32", "msgpack", []byte{0xdb, 0xff, 0xff, 0xff, 0xff}},
		{"msgpack not a map", "msgpack", []byte{0x01}},
		{"json not an object", "json", []byte(`[1,2]`)},
		{"json truncated", "json", []byte(`{"op":"subscr`)},
		{"json wrong type", "json", []byte(`{"op":"subscribe","channels":5}`)},
		{"json deep", "json", bytes.Repeat([]byte("["), 10000)},
	}
	e := newTestEnv(t)
	tok := e.token(t, "mallory", time.Hour, ">")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := e.connect(t, tt.codec, tok)
			c.sendRaw(t, tt.raw)
			if w := c.expect(t, proto.TypeError); w.Code != "bad_request" || w.ID != nil {
				t.Fatalf("got %s", w.raw)
			}
			c.send(t, proto.Command{Op: "ping", ID: ptr[int64](42)})
			if w := c.expect(t, proto.TypePong); *w.ID != 42 {
				t.Fatalf("pong %s", w.raw)
			}
		})
	}
}

func TestOversizedMessageCloses1009(t *testing.T) {
	e := newTestEnv(t)
	c := e.connect(t, "json", e.token(t, "big", time.Hour, ">"))
	// Two fragments of 9 KiB: each is under the limit, together they are
	// over it, and the server reads both before closing (no reset races
	// the close frame).
	half := bytes.Repeat([]byte("x"), 9<<10)
	raw := append(maskedFrame(false, 0x1, half), maskedFrame(true, 0x0, half)...)
	if _, err := c.ws.NetConn().Write(raw); err != nil {
		t.Fatal(err)
	}
	if code, _ := c.waitClose(t, 5*time.Second); code != 1009 {
		t.Fatalf("close code %d, want 1009", code)
	}
}

// maskedFrame builds a client frame by hand (mask key zero), for inputs a
// client library will not send.
func maskedFrame(fin bool, op byte, payload []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	f := []byte{b0}
	switch n := len(payload); {
	case n < 126:
		f = append(f, 0x80|byte(n))
	case n <= 0xffff:
		f = append(f, 0x80|126, byte(n>>8), byte(n))
	default:
		f = append(f, 0x80|127, 0, 0, 0, 0, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	f = append(f, 0, 0, 0, 0) // mask key
	return append(f, payload...)
}

func TestTokenExpiryCloses4001(t *testing.T) {
	e := newTestEnv(t)
	c := e.connect(t, "json", e.token(t, "short", 1500*time.Millisecond, ">"))
	code, reason := c.waitClose(t, 5*time.Second)
	if code != 4001 || reason == "" {
		t.Fatalf("close %d %q, want 4001 with a reason", code, reason)
	}
}

func TestAuthRefreshKeepsConnection(t *testing.T) {
	e := newTestEnv(t)
	c := e.connect(t, "msgpack", e.token(t, "frank", 1500*time.Millisecond, ">"))
	c.send(t, proto.Command{Op: "subscribe", ID: ptr[int64](1), Channels: []string{"ticker.BTC-USD", "book.BTC-USD"}})
	c.expect(t, proto.TypeSubscribed)

	c.send(t, proto.Command{Op: "auth", ID: ptr[int64](2), Token: e.token(t, "someone-else", time.Hour, ">")})
	if w := c.expect(t, proto.TypeError); w.Code != "invalid_token" {
		t.Fatalf("other sub: %s", w.raw)
	}
	fresh := e.token(t, "frank", time.Hour, "ticker.*")
	c.send(t, proto.Command{Op: "auth", ID: ptr[int64](3), Token: fresh})
	w := c.expect(t, proto.TypeAuthenticated)
	if *w.ID != 3 || w.Exp < time.Now().Add(59*time.Minute).Unix() {
		t.Fatalf("authenticated %s", w.raw)
	}
	// the refreshed token no longer allows the book: it is dropped
	if w := c.expect(t, proto.TypeError); w.Code != "forbidden" || w.Channel != "book.BTC-USD" {
		t.Fatalf("dropped channel: %s", w.raw)
	}
	c.quiet(t, 2*time.Second) // past the first token's exp: still open
	c.send(t, proto.Command{Op: "ping", ID: ptr[int64](4)})
	c.expect(t, proto.TypePong)
}

func TestResume(t *testing.T) {
	e := newTestEnv(t)
	tok := e.token(t, "gina", time.Hour, ">")
	holder := e.connect(t, "json", tok) // keeps the channels (and their history) on the node
	holder.send(t, proto.Command{Op: "subscribe", ID: ptr[int64](1), Channels: []string{"trade.BTC-USD", "ticker.BTC-USD"}})
	holder.expect(t, proto.TypeSubscribed)
	for i := 1; i <= 10; i++ {
		e.publish(t, "trade.BTC-USD", uint64(i), proto.FeedUpdate, &proto.Trade{Symbol: "BTC-USD", ID: int64(i), Price: "1.5", Size: "1", Side: proto.SideSell, TS: 1})
		e.publish(t, "ticker.BTC-USD", uint64(i), proto.FeedUpdate, &proto.Ticker{Symbol: "BTC-USD", Bid: "1", BidSize: "1", Ask: "2", AskSize: "1", Last: "1.5", Volume: "1", TS: 1})
	}
	e.flush(t)
	for got := map[string]uint64{}; got["trade.BTC-USD"] < 10 || got["ticker.BTC-USD"] < 10; {
		w := holder.next(t) // tickers may fold; trades never do
		got[w.Channel] = w.Seq
	}

	c := e.connect(t, "msgpack", tok)
	c.send(t, proto.Command{Op: "subscribe", ID: ptr[int64](9), Channels: []string{"trade.BTC-USD", "ticker.BTC-USD", "trade.ETH-USD"},
		Since: map[string]uint64{"trade.BTC-USD": 6, "ticker.BTC-USD": 999, "trade.ETH-USD": 3}})
	ack := c.expect(t, proto.TypeSubscribed)
	if !slices.Equal(ack.Resumed, []string{"trade.BTC-USD"}) || len(ack.Channels) != 3 {
		t.Fatalf("ack %s", ack.raw)
	}
	if w := c.expect(t, proto.TypeError); w.Code != "history_unavailable" || w.Channel != "trade.ETH-USD" || *w.ID != 9 {
		t.Fatalf("want history_unavailable for trade.ETH-USD, got %s", w.raw)
	}
	last := uint64(6)
	gotSnapshot := false
	for last < 10 || !gotSnapshot {
		w := c.next(t)
		switch w.Channel {
		case "trade.BTC-USD":
			if w.Type != proto.TypeUpdate || *w.Prev != last || w.Seq != last+1 {
				t.Fatalf("resumed trade %s after %d", w.raw, last)
			}
			last = w.Seq
		case "ticker.BTC-USD":
			if w.Type != proto.TypeSnapshot || w.Seq != 10 {
				t.Fatalf("ticker fallback %s", w.raw)
			}
			gotSnapshot = true
		default:
			t.Fatalf("unexpected %s", w.raw)
		}
	}
	e.publish(t, "trade.ETH-USD", 4, proto.FeedUpdate, &proto.Trade{Symbol: "ETH-USD", ID: 4, Price: "1", Size: "1", Side: proto.SideBuy, TS: 1})
	e.flush(t)
	if w := c.expect(t, proto.TypeUpdate); w.Channel != "trade.ETH-USD" || *w.Prev != 0 {
		t.Fatalf("live trade after history_unavailable: %s", w.raw)
	}
}

// TestMessageAtTheLimitIsRead: the frame reader's buffer is small
// (readBufferBytes), and a client message up to MaxMessageBytes still
// reads whole, in one frame or in fragments, and then the connection
// goes on.
func TestMessageAtTheLimitIsRead(t *testing.T) {
	e := newTestEnv(t)
	tok := e.token(t, "big", time.Hour, ">")
	cmd := []byte(`{"op":"ping","id":7}`)
	pad := bytes.Repeat([]byte(" "), DefaultMaxMessageBytes-len(cmd)) // JSON whitespace
	msg := append(append([]byte{}, pad...), cmd...)
	tests := map[string][]byte{
		"one frame":     maskedFrame(true, 0x1, msg),
		"two fragments": append(maskedFrame(false, 0x1, msg[:len(msg)/2]), maskedFrame(true, 0x0, msg[len(msg)/2:])...),
	}
	for name, raw := range tests {
		t.Run(name, func(t *testing.T) {
			c := e.connect(t, "json", tok)
			if _, err := c.ws.NetConn().Write(raw); err != nil {
				t.Fatal(err)
			}
			if w := c.expect(t, proto.TypePong); w.ID == nil || *w.ID != 7 {
				t.Fatalf("pong %s", w.raw)
			}
			c.send(t, proto.Command{Op: "ping", ID: ptr[int64](8)})
			if w := c.expect(t, proto.TypePong); w.ID == nil || *w.ID != 8 {
				t.Fatalf("pong %s", w.raw)
			}
		})
	}
}
