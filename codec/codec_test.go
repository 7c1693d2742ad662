package codec

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"

	"github.com/tickgate/tickgate/internal/codectest"
	"github.com/tickgate/tickgate/proto"
	"github.com/vmihailenco/msgpack/v5"
)

var (
	book5  = codectest.Book5
	ticker = codectest.Ticker
	trade  = codectest.Trade
)

const (
	tickerJSON = codectest.TickerJSON
	tradeJSON  = codectest.TradeJSON
	book5JSON  = codectest.Book5JSON
)

// serverMessages pairs every server message type with its expected shape,
// written as in docs/protocol.md §4.3.
var serverMessages = map[string]struct {
	msg  any
	want string
}{
	"welcome": {
		proto.Welcome{Type: proto.TypeWelcome, V: proto.Version, Session: "s-1f3a", Node: "gw-1", Codec: "json", HeartbeatMS: 15000, Exp: 1767225600},
		`{"type":"welcome","v":1,"session":"s-1f3a","node":"gw-1","codec":"json","heartbeat_ms":15000,"exp":1767225600,"features":[]}`,
	},
	"welcome pointer": {
		&proto.Welcome{Type: proto.TypeWelcome, V: proto.Version, Session: "s", Node: "gw-2", Codec: "msgpack", HeartbeatMS: 15000, Exp: 1},
		`{"type":"welcome","v":1,"session":"s","node":"gw-2","codec":"msgpack","heartbeat_ms":15000,"exp":1,"features":[]}`,
	},
	"welcome with features (contract 1.1)": {
		proto.Welcome{Type: proto.TypeWelcome, V: proto.Version, Session: "s", Node: "gw-3", Codec: "json", HeartbeatMS: 15000, Exp: 1, Features: []string{proto.FeatureStatus}},
		`{"type":"welcome","v":1,"session":"s","node":"gw-3","codec":"json","heartbeat_ms":15000,"exp":1,"features":["status"]}`,
	},
	"status (contract 1.1)": {
		proto.Status{Type: proto.TypeStatus, Channel: "book.BTC-USD", State: proto.StateStale, Reason: proto.ReasonFeedDisconnected, TS: 7},
		`{"type":"status","channel":"book.BTC-USD","state":"stale","reason":"feed_disconnected","ts":7}`,
	},
	"gap (contract 1.1)": {
		proto.Gap{Type: proto.TypeGap, Channel: "trade.BTC-USD", From: 1201, To: 1207},
		`{"type":"gap","channel":"trade.BTC-USD","from":1201,"to":1207}`,
	},
	"subscribed": {
		proto.Subscribed{Type: proto.TypeSubscribed, ID: ptr[int64](1), Channels: []string{"ticker.BTC-USD", "book.ETH-USD"}},
		`{"type":"subscribed","id":1,"channels":["ticker.BTC-USD","book.ETH-USD"]}`,
	},
	"subscribed resumed": {
		&proto.Subscribed{Type: proto.TypeSubscribed, ID: ptr[int64](9), Channels: []string{"trade.BTC-USD"}, Resumed: []string{"trade.BTC-USD"}},
		`{"type":"subscribed","id":9,"channels":["trade.BTC-USD"],"resumed":["trade.BTC-USD"]}`,
	},
	"subscribed nil channels": {
		&proto.Subscribed{Type: proto.TypeSubscribed, ID: ptr[int64](1)},
		`{"type":"subscribed","id":1,"channels":[]}`,
	},
	"subscribed nil channels by value": {
		proto.Subscribed{Type: proto.TypeSubscribed},
		`{"type":"subscribed","channels":[]}`,
	},
	"unsubscribed": {
		proto.Unsubscribed{Type: proto.TypeUnsubscribed, ID: ptr[int64](2), Channels: []string{"ticker.BTC-USD"}},
		`{"type":"unsubscribed","id":2,"channels":["ticker.BTC-USD"]}`,
	},
	"unsubscribed nil channels": {
		&proto.Unsubscribed{Type: proto.TypeUnsubscribed, ID: ptr[int64](2)},
		`{"type":"unsubscribed","id":2,"channels":[]}`,
	},
	"error": {
		proto.Error{Type: proto.TypeError, ID: ptr[int64](1), Code: proto.CodeForbidden, Message: "not in token", Channel: "book.ETH-USD"},
		`{"type":"error","id":1,"code":"forbidden","message":"not in token","channel":"book.ETH-USD"}`,
	},
	"error without id and channel": {
		&proto.Error{Type: proto.TypeError, Code: proto.CodeBadRequest, Message: `bad "json" <&>`},
		`{"type":"error","code":"bad_request","message":"bad \"json\" <&>"}`,
	},
	"snapshot book": {
		proto.Snapshot{Type: proto.TypeSnapshot, Channel: "book.BTC-USD", Seq: 1200, Data: book5()},
		`{"type":"snapshot","channel":"book.BTC-USD","seq":1200,"data":` + book5JSON + `}`,
	},
	"snapshot ticker": {
		&proto.Snapshot{Type: proto.TypeSnapshot, Channel: "ticker.BTC-USD", Seq: 7, Data: ticker()},
		`{"type":"snapshot","channel":"ticker.BTC-USD","seq":7,"data":` + tickerJSON + `}`,
	},
	"snapshot empty book": {
		&proto.Snapshot{Type: proto.TypeSnapshot, Channel: "book.X", Seq: 1, Data: &proto.Book{Symbol: "X"}},
		`{"type":"snapshot","channel":"book.X","seq":1,"data":{"symbol":"X","bids":[],"asks":[],"checksum":0,"ts":0}}`,
	},
	"update book": {
		&proto.Update{Type: proto.TypeUpdate, Channel: "book.ETH-USD", Seq: 1207, Prev: 1200, N: 7,
			Data: &proto.Book{Bids: []proto.Level{{"64000.10", "0"}}, Asks: []proto.Level{{"64000.20", "0.7"}}, Checksum: 42, TS: 5}},
		`{"type":"update","channel":"book.ETH-USD","seq":1207,"prev":1200,"n":7,"data":{"bids":[["64000.10","0"]],"asks":[["64000.20","0.7"]],"checksum":42,"ts":5}}`,
	},
	"update book nil asks by value": {
		proto.Update{Type: proto.TypeUpdate, Channel: "book.ETH-USD", Seq: 2, Prev: 1, N: 1,
			Data: proto.Book{Bids: []proto.Level{{"1", "2"}}}},
		`{"type":"update","channel":"book.ETH-USD","seq":2,"prev":1,"n":1,"data":{"bids":[["1","2"]],"asks":[],"checksum":0,"ts":0}}`,
	},
	"update ticker": {
		proto.Update{Type: proto.TypeUpdate, Channel: "ticker.BTC-USD", Seq: 8, Prev: 7, N: 1, Data: ticker()},
		`{"type":"update","channel":"ticker.BTC-USD","seq":8,"prev":7,"n":1,"data":` + tickerJSON + `}`,
	},
	"update trade": {
		&proto.Update{Type: proto.TypeUpdate, Channel: "trade.BTC-USD", Seq: 18446744073709551615, Prev: 0, N: 1, Data: trade()},
		`{"type":"update","channel":"trade.BTC-USD","seq":18446744073709551615,"prev":0,"n":1,"data":` + tradeJSON + `}`,
	},
	"authenticated": {
		proto.Authenticated{Type: proto.TypeAuthenticated, ID: ptr[int64](3), Exp: 1767229200},
		`{"type":"authenticated","id":3,"exp":1767229200}`,
	},
	"pong": {
		&proto.Pong{Type: proto.TypePong, ID: ptr[int64](4), TS: 1767225600000000000},
		`{"type":"pong","id":4,"ts":1767225600000000000}`,
	},
	"pong negative id": {
		proto.Pong{Type: proto.TypePong, ID: ptr[int64](-9223372036854775808), TS: 1},
		`{"type":"pong","id":-9223372036854775808,"ts":1}`,
	},
	"heartbeat": {
		proto.Heartbeat{Type: proto.TypeHeartbeat, TS: 1767225600000000000},
		`{"type":"heartbeat","ts":1767225600000000000}`,
	},
	"reconnect": {
		&proto.Reconnect{Type: proto.TypeReconnect, Reason: "draining", WithinMS: 5000},
		`{"type":"reconnect","reason":"draining","within_ms":5000}`,
	},
	"feed message": {
		proto.FeedMessage{Seq: 3, Type: proto.FeedUpdate, Data: &proto.Book{}},
		`{"seq":3,"type":"update","data":{"bids":[],"asks":[],"checksum":0,"ts":0}}`,
	},
}

func TestAppendServerMessages(t *testing.T) {
	for name, tc := range serverMessages {
		for _, c := range both {
			t.Run(name+"/"+c.Name(), func(t *testing.T) {
				want := fromJSON(t, tc.want)
				prefix := []byte("prefix")
				out, err := c.Append(prefix, tc.msg)
				if err != nil {
					t.Fatalf("Append: %v", err)
				}
				if !bytes.HasPrefix(out, []byte("prefix")) {
					t.Fatalf("Append lost dst: %q", out)
				}
				b := out[len("prefix"):]
				checkFrame(t, c, b)
				mustEqual(t, generic(t, c, b), want)
			})
		}
	}
}

// checkFrame checks what every encoded server message must be: one JSON
// object as valid UTF-8 without a trailing newline, or one msgpack map.
func checkFrame(t *testing.T, c Codec, b []byte) {
	t.Helper()
	if c.Binary() {
		if err := validateMsgpack(b); err != nil {
			t.Errorf("msgpack output is not one map: %v", err)
		}
		return
	}
	if !utf8.Valid(b) || !json.Valid(b) {
		t.Errorf("JSON output is not valid UTF-8 JSON: %q", b)
	}
	if len(b) == 0 || b[0] != '{' || b[len(b)-1] != '}' {
		t.Errorf("JSON output is not one bare object: %q", b)
	}
}

func TestAppendDoesNotModifyMessage(t *testing.T) {
	for _, c := range both {
		t.Run(c.Name(), func(t *testing.T) {
			book := &proto.Book{Symbol: "X"}
			sub := &proto.Subscribed{Type: proto.TypeSubscribed}
			for _, m := range []any{&proto.Update{Type: proto.TypeUpdate, Data: book}, sub} {
				if _, err := c.Append(nil, m); err != nil {
					t.Fatal(err)
				}
			}
			if book.Bids != nil || book.Asks != nil || sub.Channels != nil {
				t.Errorf("Append filled the caller's nil slices: %+v %+v", book, sub)
			}
		})
	}
}

func TestAppendInvalidUTF8(t *testing.T) {
	msg := proto.Error{Type: proto.TypeError, Code: proto.CodeBadChannel, Message: "bad", Channel: "book.\xff\xfe"}
	out, err := JSON().Append(nil, msg)
	if err != nil {
		t.Fatal(err)
	}
	if !utf8.Valid(out) {
		t.Errorf("JSON output is not valid UTF-8: %q", out)
	}
}

func TestAppendError(t *testing.T) {
	for _, c := range both {
		t.Run(c.Name(), func(t *testing.T) {
			dst := []byte("keep")
			out, err := c.Append(dst, map[string]any{"f": func() {}})
			if err == nil {
				t.Fatalf("Append of a func succeeded: %q", out)
			}
			if string(out) != "keep" {
				t.Errorf("Append changed dst on error: %q", out)
			}
		})
	}
}

func TestAppendConcurrent(t *testing.T) {
	for _, c := range both {
		t.Run(c.Name(), func(t *testing.T) {
			msg := &proto.Update{Type: proto.TypeUpdate, Channel: "book.BTC-USD", Seq: 2, Prev: 1, N: 1, Data: book5()}
			want, err := c.Append(nil, msg)
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan []byte)
			for range 8 {
				go func() {
					var last []byte
					for range 200 {
						b, err := c.Append(last[:0], msg)
						if err != nil {
							t.Error(err)
						}
						last = b
					}
					done <- last
				}()
			}
			for range 8 {
				if got := <-done; !bytes.Equal(got, want) {
					t.Errorf("concurrent Append: got %x, want %x", got, want)
				}
			}
		})
	}
}

func TestCodecIdentity(t *testing.T) {
	tests := map[string]struct {
		c           Codec
		name, sub   string
		binary      bool
		sameAsFresh Codec
	}{
		"json":    {JSON(), "json", proto.SubprotocolJSON, false, JSON()},
		"msgpack": {Msgpack(), "msgpack", proto.SubprotocolMsgpack, true, Msgpack()},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if tc.c.Name() != tc.name || tc.c.Subprotocol() != tc.sub || tc.c.Binary() != tc.binary {
				t.Errorf("got %q %q %v", tc.c.Name(), tc.c.Subprotocol(), tc.c.Binary())
			}
			if tc.c != tc.sameAsFresh {
				t.Errorf("two calls return unequal codecs")
			}
		})
	}
	if JSON() == Msgpack() {
		t.Errorf("JSON() == Msgpack()")
	}
}

// TestMsgpackMatchesLibrary checks that msgpack output decodes with the
// library itself into the same struct (the client-side view).
func TestMsgpackMatchesLibrary(t *testing.T) {
	in := proto.Update{Type: proto.TypeUpdate, Channel: "book.BTC-USD", Seq: 1207, Prev: 1200, N: 7, Data: book5()}
	b, err := Msgpack().Append(nil, &in)
	if err != nil {
		t.Fatal(err)
	}
	out := proto.Update{Data: new(proto.Book)}
	if err := msgpack.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	mustEqual(t, out, in)
}
