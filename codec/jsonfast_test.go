package codec

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tickgate/tickgate/proto"
)

// referenceJSON is encoding/json's encoding of v, as Append made it before
// the hand-written path: HTML escaping off, no trailing newline.
func referenceJSON(t testing.TB, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// trickyStrings holds every byte below 0x20, the characters JSON and
// HTML escape, DEL, multi-byte runes, U+2028/U+2029, and invalid UTF-8.
func trickyStrings() []string {
	s := []string{"", "BTC-USD", "65000.5", `"`, `\`, `a"b\c`, "<script>&amp;</script>", "\x7f",
		"é", "日本", "🚀", "\u2028", "\u2029", "a\u2028b\u2029c", "\xff", "a\xc3", "\xed\xa0\x80", "\xe2\x80", "x\x00y"}
	for b := range 0x20 {
		s = append(s, string(rune(b)), "p"+string(rune(b))+"q")
	}
	return s
}

// randomString draws from ASCII, the tricky bytes and multi-byte runes.
func randomString(r *rand.Rand) string {
	alphabet := []string{"a", "Z", "0", ".", "-", `"`, `\`, "\n", "\t", "\x01", "\x1f", "\x7f", "<", "&", "é", "日", "🚀", "\u2028", "\u2029", "\xff", "\xc3", "\xe2\x80"}
	var b strings.Builder
	for range r.IntN(12) {
		b.WriteString(alphabet[r.IntN(len(alphabet))])
	}
	return b.String()
}

func randomUpdate(r *rand.Rand) *proto.Update {
	str := func() string { return randomString(r) }
	i64 := func() int64 {
		return []int64{0, 1, -1, math.MaxInt64, math.MinInt64, r.Int64(), -r.Int64()}[r.IntN(7)]
	}
	levels := func() []proto.Level {
		if r.IntN(4) == 0 {
			return nil
		}
		l := make([]proto.Level, r.IntN(4))
		for i := range l {
			l[i] = proto.Level{str(), str()}
		}
		return l
	}
	var data any
	switch r.IntN(4) {
	case 0:
		data = &proto.Ticker{Symbol: str(), Bid: str(), BidSize: str(), Ask: str(), AskSize: str(), Last: str(), Volume: str(), TS: i64()}
	case 1:
		data = &proto.Trade{Symbol: str(), ID: i64(), Price: str(), Size: str(), Side: str(), TS: i64()}
	case 2:
		sym := ""
		if r.IntN(2) == 0 {
			sym = str()
		}
		data = &proto.Book{Symbol: sym, Bids: levels(), Asks: levels(), Checksum: r.Uint32(), TS: i64()}
	default:
		data = &proto.Candle{Symbol: str(), Interval: str(), Start: i64(), Open: str(), High: str(), Low: str(), Close: str(), Volume: str(), Trades: i64(), Closed: r.IntN(2) == 0, TS: i64()}
	}
	return &proto.Update{Type: str(), Channel: str(), Seq: r.Uint64(), Prev: r.Uint64(), N: r.Uint32(), Data: data}
}

// The hand-written encoding of an update is encoding/json's, byte for
// byte: every kind's data, every field, every escape.
func TestUpdateJSONMatchesEncodingJSON(t *testing.T) {
	var cases []*proto.Update
	for _, s := range trickyStrings() {
		cases = append(cases,
			&proto.Update{Type: proto.TypeUpdate, Channel: s, Seq: 1, N: 1, Data: &proto.Ticker{Symbol: s, Bid: s, BidSize: s, Ask: s, AskSize: s, Last: s, Volume: s, TS: -1}},
			&proto.Update{Type: s, Channel: "trade.X", Seq: math.MaxUint64, Prev: 7, N: math.MaxUint32, Data: &proto.Trade{Symbol: s, ID: math.MinInt64, Price: s, Size: s, Side: s}},
			&proto.Update{Type: proto.TypeUpdate, Channel: "book.X", Data: &proto.Book{Symbol: s, Bids: []proto.Level{{s, s}}, Asks: []proto.Level{}, Checksum: math.MaxUint32}},
			&proto.Update{Type: proto.TypeUpdate, Channel: "candle.X", Data: &proto.Candle{Symbol: s, Interval: s, Open: s, High: s, Low: s, Close: s, Volume: s, Closed: true, Trades: math.MaxInt64}},
		)
	}
	cases = append(cases,
		&proto.Update{Type: proto.TypeUpdate, Channel: "book.X", Data: &proto.Book{}}, // nil levels: null, as encoding/json writes them
		&proto.Update{Type: proto.TypeUpdate, Channel: "book.BTC-USD", Seq: 1207, Prev: 1206, N: 1, Data: book5()},
		&proto.Update{Type: proto.TypeUpdate, Channel: "ticker.BTC-USD", Seq: 1207, Prev: 1206, N: 1, Data: ticker()},
	)
	r := rand.New(rand.NewPCG(1, 2))
	for range 5000 {
		cases = append(cases, randomUpdate(r))
	}
	for _, u := range cases {
		want := referenceJSON(t, u)
		got, ok := appendUpdateJSON([]byte("prefix"), u)
		if !ok {
			t.Fatalf("declined %#v", u)
		}
		if !bytes.Equal(got[len("prefix"):], want) || string(got[:len("prefix")]) != "prefix" {
			t.Fatalf("update %#v\n got %s\nwant %s", u, got, want)
		}
	}
}

// Append writes what encoding/json wrote before, whichever path it takes:
// the hand-written one (an update of a market kind, by pointer or value,
// its nil lists shown empty) and encoding/json's for everything else.
func TestAppendUpdateJSONPaths(t *testing.T) {
	book := &proto.Book{Symbol: "X"} // nil levels: Append shows them empty (normalize)
	for _, tc := range []struct {
		name string
		in   any
		want any // what encoding/json is given for the same bytes
		fast bool
	}{
		{"pointer", &proto.Update{Type: proto.TypeUpdate, Channel: "ticker.X", Seq: 2, Prev: 1, N: 1, Data: ticker()}, nil, true},
		{"value", proto.Update{Type: proto.TypeUpdate, Channel: "trade.X", Seq: 2, Prev: 1, N: 1, Data: &proto.Trade{Symbol: "X", ID: 5, Price: "1", Size: "2", Side: "buy", TS: 3}}, nil, true},
		{"book normalized", &proto.Update{Type: proto.TypeUpdate, Channel: "book.X", Data: book},
			&proto.Update{Type: proto.TypeUpdate, Channel: "book.X", Data: &proto.Book{Symbol: "X", Bids: []proto.Level{}, Asks: []proto.Level{}}}, true},
		{"other data", &proto.Update{Type: proto.TypeUpdate, Channel: "x.Y", Data: map[string]int{"a": 1}}, nil, false},
		{"nil data", &proto.Update{Type: proto.TypeUpdate, Channel: "x.Y"}, nil, false},
		{"nil ticker", &proto.Update{Type: proto.TypeUpdate, Channel: "ticker.X", Data: (*proto.Ticker)(nil)}, nil, false},
		{"data by value", &proto.Update{Type: proto.TypeUpdate, Channel: "ticker.X", Data: *ticker()}, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.want
			if want == nil {
				want = tc.in
			}
			got, err := JSON().Append(nil, tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if ref := referenceJSON(t, want); !bytes.Equal(got, ref) {
				t.Fatalf("got  %s\nwant %s", got, ref)
			}
			var u *proto.Update
			switch v := tc.in.(type) {
			case *proto.Update:
				u = v
			case proto.Update:
				u = &v
			}
			if _, fast := appendUpdateJSON(nil, u); fast != tc.fast {
				t.Fatalf("hand-written path taken: %v, want %v", fast, tc.fast)
			}
			if book.Bids != nil || book.Asks != nil {
				t.Fatal("Append changed the message it encoded")
			}
		})
	}
}

// FuzzUpdateJSON holds the hand-written encoding to encoding/json's for
// arbitrary strings and numbers (go test -fuzz FuzzUpdateJSON ./codec).
func FuzzUpdateJSON(f *testing.F) {
	for _, s := range trickyStrings() {
		f.Add(s, s, int64(-1), uint64(1))
	}
	f.Fuzz(func(t *testing.T, a, b string, i int64, u uint64) {
		for _, data := range []any{
			&proto.Ticker{Symbol: a, Bid: b, BidSize: a, Ask: b, AskSize: a, Last: b, Volume: a, TS: i},
			&proto.Trade{Symbol: a, ID: i, Price: b, Size: a, Side: b, TS: i},
			&proto.Book{Symbol: a, Bids: []proto.Level{{a, b}}, Asks: []proto.Level{{b, a}, {a, a}}, Checksum: uint32(u), TS: i},
			&proto.Candle{Symbol: a, Interval: b, Start: i, Open: a, High: b, Low: a, Close: b, Volume: a, Trades: i, Closed: u%2 == 0, TS: i},
		} {
			up := &proto.Update{Type: a, Channel: b, Seq: u, Prev: u / 2, N: uint32(u), Data: data}
			got, ok := appendUpdateJSON(nil, up)
			if want := referenceJSON(t, up); !ok || !bytes.Equal(got, want) {
				t.Fatalf("got %s (%v)\nwant %s", got, ok, want)
			}
			if !utf8.Valid(got) {
				t.Fatalf("invalid UTF-8: %q", got)
			}
		}
	})
}

// Append writes an update of a market kind without allocating, into a
// buffer with room: the shared frame's encoding, once per message and
// codec.
func TestAppendUpdateJSONAllocatesNothing(t *testing.T) {
	u := &proto.Update{Type: proto.TypeUpdate, Channel: "book.BTC-USD", Seq: 1207, Prev: 1206, N: 1, Data: book5()}
	buf := make([]byte, 0, 1024)
	if n := testing.AllocsPerRun(100, func() {
		var err error
		if buf, err = JSON().Append(buf[:0], u); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("%v allocations per update", n)
	}
}
