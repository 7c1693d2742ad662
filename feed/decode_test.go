package feed

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/tickgate/tickgate/codec"
	"github.com/tickgate/tickgate/internal/codectest"
	"github.com/tickgate/tickgate/proto"
)

// The envelope's decoding cases, moved from codec with the decoding
// itself: every feed payload, in both encodings, decodes or fails as
// before.

// header is what decodeEnvelope returns besides the data.
type header struct {
	Seq  uint64
	Type string
}

func decode(in []byte, data any) (header, error) {
	seq, typ, err := decodeEnvelope(in, data)
	return header{seq, typ}, err
}

var both = []codec.Codec{codec.JSON(), codec.Msgpack()}

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

var (
	book5    = codectest.Book5
	ticker5  = codectest.Ticker
	trade991 = codectest.Trade
)

const (
	tickerJSON = codectest.TickerJSON
	tradeJSON  = codectest.TradeJSON
	book5JSON  = codectest.Book5JSON
)

func TestDecodeEnvelope(t *testing.T) {
	// Each payload is JSON text; the msgpack variant carries the same map.
	tests := map[string]struct {
		in       string
		want     any // *proto.Ticker, *proto.Book or *proto.Trade
		wantHead header
	}{
		"ticker": {`{"seq":8,"type":"update","data":` + tickerJSON + `}`, ticker5(), header{Seq: 8, Type: proto.FeedUpdate}},
		"trade":  {`{"seq":18446744073709551615,"type":"update","data":` + tradeJSON + `}`, trade991(), header{Seq: 18446744073709551615, Type: proto.FeedUpdate}},
		"book snapshot": {`{"seq":1200,"type":"snapshot","data":` + book5JSON + `}`, book5(),
			header{Seq: 1200, Type: proto.FeedSnapshot}},
		"book update": {`{"type":"update","data":{"bids":[["64000.10","0"]],"asks":[],"checksum":42,"ts":5},"seq":1201}`,
			&proto.Book{Bids: []proto.Level{{"64000.10", "0"}}, Asks: []proto.Level{}, Checksum: 42, TS: 5},
			header{Seq: 1201, Type: proto.FeedUpdate}},
		"data first, unknown keys": {`{"data":{"symbol":"X","id":1,"extra":[1,{"a":null}]},"v":2,"type":"update","seq":1}`,
			&proto.Trade{Symbol: "X", ID: 1}, header{Seq: 1, Type: proto.FeedUpdate}},
		"null data":    {`{"seq":2,"type":"update","data":null}`, &proto.Ticker{}, header{Seq: 2, Type: proto.FeedUpdate}},
		"missing data": {`{"seq":3,"type":"update"}`, &proto.Book{}, header{Seq: 3, Type: proto.FeedUpdate}},
	}
	for name, tc := range tests {
		for _, c := range both {
			t.Run(name+"/"+c.Name(), func(t *testing.T) {
				in := encodeFor(t, c, tc.in)
				data := newData(tc.want)
				h, err := decode(in, data)
				if err != nil {
					t.Fatalf("decodeEnvelope(%.60x): %v", in, err)
				}
				mustEqual(t, h, tc.wantHead)
				mustEqual(t, data, tc.want)
			})
		}
	}
}

// TestDecodeEnvelopeEncoded checks that what Append writes for a
// FeedMessage (the feed simulator's path) decodeEnvelope reads back, in
// both encodings.
func TestDecodeEnvelopeEncoded(t *testing.T) {
	tests := map[string]proto.FeedMessage{
		"ticker":        {Seq: 1, Type: proto.FeedUpdate, Data: ticker5()},
		"trade":         {Seq: 2, Type: proto.FeedUpdate, Data: trade991()},
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
				h, err := decode(b, data)
				if err != nil {
					t.Fatalf("DecodeFeed: %v", err)
				}
				mustEqual(t, h, header{Seq: msg.Seq, Type: msg.Type})
				want := msg.Data
				if bk, ok := want.(*proto.Book); ok && bk.Bids == nil {
					want = &proto.Book{Bids: []proto.Level{}, Asks: []proto.Level{}}
				}
				mustEqual(t, data, want)
			})
		}
	}
}

func TestDecodeEnvelopeMalformed(t *testing.T) {
	const maxAlloc = 64 << 10
	mp := func(h string) []byte {
		b, err := hex.DecodeString(strings.ReplaceAll(h, " ", ""))
		if err != nil {
			panic(err)
		}
		return b
	}
	// Payloads as JSON text, run through both codecs' encodings.
	inBoth := map[string]string{
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
	for name, s := range inBoth {
		for _, c := range both {
			tests[name+"/"+c.Name()] = input{encodeFor(t, c, s), new(proto.Book)}
		}
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h, err := decode(tc.in, tc.data)
			if !errors.Is(err, codec.ErrMalformed) {
				t.Fatalf("decodeEnvelope(%.60x) = %+v, %v; want codec.ErrMalformed", tc.in, h, err)
			}
			if n := allocBytes(func() { _, _ = decode(tc.in, tc.data) }); n >= maxAlloc {
				t.Errorf("DecodeFeed allocated %d bytes, want < %d", n, maxAlloc)
			}
		})
	}
}

// encodeFor turns JSON text into the bytes the codec would receive
// (codectest.Encode).
func encodeFor(t testing.TB, c codec.Codec, s string) []byte {
	t.Helper()
	return codectest.Encode(t, c.Binary(), s)
}

var (
	allocBytes = codectest.AllocBytes
	mustEqual  = codectest.MustEqual
)

// BenchmarkDecodeEnvelope decodes one feed payload of each kind, each
// into a fresh data value as Decode does: json is the path Decode takes
// (the fast path, fastjson.go), json_slow encoding/json alone
// (decodeEnvelopeSlow), msgpack the other codec.
func BenchmarkDecodeEnvelope(b *testing.B) {
	candle := proto.Candle{Symbol: "BTC-USD", Interval: "1m", Start: 1767225600000000000, Open: "64000.10",
		High: "64010", Low: "63990.5", Close: "64001", Volume: "12.5", Trades: 42, Closed: true, TS: 1767225659000000000}
	cases := []struct {
		name string
		kind proto.Kind
		msg  proto.FeedMessage
	}{
		{"ticker", proto.KindTicker, proto.FeedMessage{Seq: 8, Type: proto.FeedUpdate, Data: ticker5()}},
		{"trade", proto.KindTrade, proto.FeedMessage{Seq: 9, Type: proto.FeedUpdate, Data: trade991()}},
		{"book_delta_3", proto.KindBook, proto.FeedMessage{Seq: 1201, Type: proto.FeedUpdate, Data: &proto.Book{
			Bids: []proto.Level{{"64000.10", "0"}, {"63999.90", "2.5"}}, Asks: []proto.Level{{"64000.20", "0.9"}}, Checksum: 1, TS: 1}}},
		{"book5", proto.KindBook, proto.FeedMessage{Seq: 1200, Type: proto.FeedSnapshot, Data: book5()}},
		{"candle", proto.KindCandle, proto.FeedMessage{Seq: 10, Type: proto.FeedUpdate, Data: &candle}},
	}
	paths := []struct {
		name   string
		c      codec.Codec
		decode func([]byte, any) (uint64, string, error)
	}{
		{"json", codec.JSON(), decodeEnvelope},
		{"json_slow", codec.JSON(), decodeEnvelopeSlow},
		{"msgpack", codec.Msgpack(), decodeEnvelope},
	}
	for _, tc := range cases {
		for _, p := range paths {
			b.Run(tc.name+"/"+p.name, func(b *testing.B) {
				in, err := p.c.Append(nil, tc.msg)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				b.SetBytes(int64(len(in)))
				for b.Loop() {
					if _, _, err := p.decode(in, tc.kind.Spec().Data()); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// TestDecodeJSONDataKey: a JSON payload decodes in one pass when only one
// key can be its data, in two otherwise; either way a repeated data key
// keeps the last one's data alone, as encoding/json does for the envelope.
func TestDecodeJSONDataKey(t *testing.T) {
	tests := map[string]struct {
		in      string
		onePass bool
		want    proto.Ticker
	}{
		"one key":         {`{"seq":1,"type":"update","data":{"bid":"1","ask":"2"}}`, true, proto.Ticker{Bid: "1", Ask: "2"}},
		"key in any case": {`{"seq":1,"type":"update","DATA":{"bid":"1"}}`, true, proto.Ticker{Bid: "1"}},
		"null data":       {`{"seq":1,"type":"update","data":null}`, true, proto.Ticker{}},
		"repeated key":    {`{"seq":1,"type":"update","data":{"bid":"1"},"Data":{"ask":"2"}}`, false, proto.Ticker{Ask: "2"}},
		"escaped key":     {`{"seq":1,"type":"update","data":{"bid":"1"},"d\u0061ta":{"ask":"2"}}`, false, proto.Ticker{Ask: "2"}},
		"data as a value": {`{"seq":1,"type":"update","data":{"symbol":"data"}}`, false, proto.Ticker{Symbol: "data"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := oneDataKey([]byte(tc.in)); got != tc.onePass {
				t.Fatalf("oneDataKey = %v, want %v", got, tc.onePass)
			}
			var got proto.Ticker
			h, err := decode([]byte(tc.in), &got)
			if err != nil || h != (header{1, proto.FeedUpdate}) || got != tc.want {
				t.Fatalf("decode = %+v, %+v, %v; want %+v", h, got, err, tc.want)
			}
		})
	}
}
