package codec

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/tickgate/tickgate/proto"
)

// newData returns a fresh destination of the kind of want.
func newData(want any) any {
	switch want.(type) {
	case *proto.Ticker:
		return new(proto.Ticker)
	case *proto.Book:
		return new(proto.Book)
	case *proto.Trade:
		return new(proto.Trade)
	}
	panic("unknown data kind")
}

func TestDecodeFeed(t *testing.T) {
	// Each payload is JSON text; the msgpack variant carries the same map.
	tests := map[string]struct {
		in       string
		want     any // *proto.Ticker, *proto.Book or *proto.Trade
		wantHead proto.FeedHeader
	}{
		"ticker": {`{"seq":8,"type":"update","data":` + tickerJSON + `}`, ticker(), proto.FeedHeader{Seq: 8, Type: proto.FeedUpdate}},
		"trade":  {`{"seq":18446744073709551615,"type":"update","data":` + tradeJSON + `}`, trade(), proto.FeedHeader{Seq: 18446744073709551615, Type: proto.FeedUpdate}},
		"book snapshot": {`{"seq":1200,"type":"snapshot","data":` + book5JSON + `}`, book5(),
			proto.FeedHeader{Seq: 1200, Type: proto.FeedSnapshot}},
		"book update": {`{"type":"update","data":{"bids":[["64000.10","0"]],"asks":[],"checksum":42,"ts":5},"seq":1201}`,
			&proto.Book{Bids: []proto.Level{{"64000.10", "0"}}, Asks: []proto.Level{}, Checksum: 42, TS: 5},
			proto.FeedHeader{Seq: 1201, Type: proto.FeedUpdate}},
		"data first, unknown keys": {`{"data":{"symbol":"X","id":1,"extra":[1,{"a":null}]},"v":2,"type":"update","seq":1}`,
			&proto.Trade{Symbol: "X", ID: 1}, proto.FeedHeader{Seq: 1, Type: proto.FeedUpdate}},
		"null data":    {`{"seq":2,"type":"update","data":null}`, &proto.Ticker{}, proto.FeedHeader{Seq: 2, Type: proto.FeedUpdate}},
		"missing data": {`{"seq":3,"type":"update"}`, &proto.Book{}, proto.FeedHeader{Seq: 3, Type: proto.FeedUpdate}},
	}
	for name, tc := range tests {
		for _, c := range both {
			t.Run(name+"/"+c.Name(), func(t *testing.T) {
				in := encodeFor(t, c, tc.in)
				data := newData(tc.want)
				// Stale content must not survive: DecodeFeed resets data.
				switch d := data.(type) {
				case *proto.Ticker:
					d.Last = "stale"
				case *proto.Book:
					d.Symbol, d.Bids = "stale", []proto.Level{{"1", "1"}}
				case *proto.Trade:
					d.Side = "stale"
				}
				h, err := DecodeFeed(in, data)
				if err != nil {
					t.Fatalf("DecodeFeed(%.60x): %v", in, err)
				}
				mustEqual(t, h, tc.wantHead)
				mustEqual(t, data, tc.want)
			})
		}
	}
}

// TestDecodeFeedEncoded checks that what Append writes for a FeedMessage
// (the feed simulator's path) DecodeFeed reads back, in both encodings.
func TestDecodeFeedEncoded(t *testing.T) {
	tests := map[string]proto.FeedMessage{
		"ticker":        {Seq: 1, Type: proto.FeedUpdate, Data: ticker()},
		"trade":         {Seq: 2, Type: proto.FeedUpdate, Data: trade()},
		"book snapshot": {Seq: 3, Type: proto.FeedSnapshot, Data: book5()},
		"book empty":    {Seq: 4, Type: proto.FeedUpdate, Data: &proto.Book{}},
	}
	for name, msg := range tests {
		for _, c := range both {
			t.Run(name+"/"+c.Name(), func(t *testing.T) {
				b, err := c.Append(nil, msg)
				if err != nil {
					t.Fatal(err)
				}
				data := newData(msg.Data)
				h, err := DecodeFeed(b, data)
				if err != nil {
					t.Fatalf("DecodeFeed: %v", err)
				}
				mustEqual(t, h, proto.FeedHeader{Seq: msg.Seq, Type: msg.Type})
				want := msg.Data
				if bk, ok := want.(*proto.Book); ok && bk.Bids == nil {
					want = &proto.Book{Bids: []proto.Level{}, Asks: []proto.Level{}}
				}
				mustEqual(t, data, want)
			})
		}
	}
}

func TestDecodeFeedMalformed(t *testing.T) {
	const maxAlloc = 64 << 10
	mp := func(h string) []byte {
		b, err := hex.DecodeString(strings.ReplaceAll(h, " ", ""))
		if err != nil {
			panic(err)
		}
		return b
	}
	// Payloads as JSON text, run through both codecs' encodings.
	both := map[string]string{
		"bad type":           `{"seq":1,"type":"delta","data":{}}`,
		"missing type":       `{"seq":1,"data":{}}`,
		"negative seq":       `{"seq":-1,"type":"update","data":{}}`,
		"float seq":          `{"seq":1.5,"type":"update","data":{}}`,
		"string seq":         `{"seq":"1","type":"update","data":{}}`,
		"type number":        `{"seq":1,"type":1,"data":{}}`,
		"data string":        `{"seq":1,"type":"update","data":"x"}`,
		"data array":         `{"seq":1,"type":"update","data":[1,2]}`,
		"price number":       `{"seq":1,"type":"update","data":{"bids":[[64000.1,"1"]]}}`,
		"ts string":          `{"seq":1,"type":"update","data":{"ts":"now"}}`,
		"bids map":           `{"seq":1,"type":"update","data":{"bids":{"a":"b"}}}`,
		"top-level array":    `[1,"update",{}]`,
		"deeply nested data": `{"seq":1,"type":"update","data":{"x":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}}`,
	}
	type input struct {
		in   []byte
		data any
	}
	tests := map[string]input{
		"array32 4G":       {mp("dd ff ff ff ff"), new(proto.Book)},
		"array16 64K":      {mp("dc ff ff"), new(proto.Book)},
		"map32 4G":         {mp("df ff ff ff ff"), new(proto.Book)},
		"str32 4G":         {mp("db ff ff ff ff"), new(proto.Book)},
		"bids array32 4G":  {append(mp("83 a3 73 65 71 01 a4 74 79 70 65 a6"), append([]byte("update"), mp("a4 64 61 74 61 81 a4 62 69 64 73 dd ff ff ff ff")...)...), new(proto.Book)},
		"data timestamp":   {append(mp("83 a3 73 65 71 01 a4 74 79 70 65 a6"), append([]byte("update"), mp("a4 64 61 74 61 d6 ff 00 00 00 00")...)...), new(proto.Trade)},
		"ts ext":           {append(mp("83 a3 73 65 71 01 a4 74 79 70 65 a6"), append([]byte("update"), mp("a4 64 61 74 61 81 a2 74 73 d6 ff 00 00 00 00")...)...), new(proto.Trade)},
		"level of 3":       {append(mp("83 a3 73 65 71 01 a4 74 79 70 65 a6"), append([]byte("update"), mp("a4 64 61 74 61 81 a4 62 69 64 73 91 93 a1 31 a1 31 a1 31")...)...), new(proto.Book)},
		"nested 10000":     {append(mp("81 a1 78"), strings.Repeat("\x91", 10000)...), new(proto.Ticker)},
		"trailing":         {mp("80 00"), new(proto.Ticker)},
		"empty":            {nil, new(proto.Ticker)},
		"json deep":        {[]byte(`{"data":` + strings.Repeat("[", 10000)), new(proto.Ticker)},
		"json trailing":    {[]byte(`{"seq":1,"type":"update","data":{}} {}`), new(proto.Ticker)},
		"json truncated":   {[]byte(`{"seq":1,"type":"upd`), new(proto.Ticker)},
		"json leading ws":  {[]byte(` {"seq":1,"type":"update","data":{}}`), new(proto.Ticker)}, // not '{': read as msgpack
		"json not msgpack": {[]byte(`["update"]`), new(proto.Ticker)},
	}
	for name, s := range both {
		for _, c := range []Codec{JSON(), Msgpack()} {
			tests[name+"/"+c.Name()] = input{encodeFor(t, c, s), new(proto.Book)}
		}
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h, err := DecodeFeed(tc.in, tc.data)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("DecodeFeed(%.60x) = %+v, %v; want ErrMalformed", tc.in, h, err)
			}
			if n := allocBytes(func() { _, _ = DecodeFeed(tc.in, tc.data) }); n >= maxAlloc {
				t.Errorf("DecodeFeed allocated %d bytes, want < %d", n, maxAlloc)
			}
		})
	}
}

func TestDecodeFeedBadDestination(t *testing.T) {
	in := []byte(`{"seq":1,"type":"update","data":{}}`)
	tests := map[string]any{
		"nil":         nil,
		"nil book":    (*proto.Book)(nil),
		"nil ticker":  (*proto.Ticker)(nil),
		"nil trade":   (*proto.Trade)(nil),
		"book value":  proto.Book{},
		"map":         new(map[string]any),
		"interface":   new(any),
		"other proto": new(proto.Welcome),
	}
	for name, data := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := DecodeFeed(in, data); err == nil || errors.Is(err, ErrMalformed) {
				t.Errorf("DecodeFeed into %T = %v, want a non-ErrMalformed error", data, err)
			}
		})
	}
}
