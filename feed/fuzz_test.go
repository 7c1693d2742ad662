package feed

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/tickgate/tickgate/codec"
	"github.com/tickgate/tickgate/internal/memtest"
	"github.com/tickgate/tickgate/proto"
)

// fuzzChannels are the channels FuzzFeedDecode decodes for, by kind%3.
var fuzzChannels = [3]proto.Channel{tickerBTC, bookBTC, tradeBTC}

// feedSeeds returns valid feed messages of every kind, in JSON and msgpack.
func feedSeeds(f *testing.F) [][]byte {
	f.Helper()
	snap := &proto.Book{Symbol: "BTC-USD", TS: 1,
		Bids: []proto.Level{{"64000.10", "1.5"}, {"63999", "2"}},
		Asks: []proto.Level{{"64000.20", "0.7"}, {"64001", "3"}}}
	snap.Checksum = proto.BookChecksum(snap.Bids, snap.Asks)
	msgs := []proto.FeedMessage{
		{Seq: 7, Type: proto.FeedUpdate, Data: &proto.Ticker{Symbol: "BTC-USD", Bid: "64000.10", BidSize: "1.5", Ask: "64000.20", AskSize: "0.7", Last: "64000.15", Volume: "1234.5", TS: 99}},
		{Seq: 1, Type: proto.FeedSnapshot, Data: snap},
		{Seq: 2, Type: proto.FeedUpdate, Data: &proto.Book{Bids: []proto.Level{{"64000.10", "0"}, {"63999.90", "2.5"}}, Asks: []proto.Level{{"64000.20", "0.9"}}, TS: 2}},
		{Seq: 9, Type: proto.FeedUpdate, Data: &proto.Trade{Symbol: "BTC-USD", ID: 991, Price: "64000.15", Size: "0.01", Side: proto.SideBuy, TS: 1}},
	}
	var out [][]byte
	for _, m := range msgs {
		for _, c := range []codec.Codec{codec.JSON(), codec.Msgpack()} {
			b, err := c.Append(nil, m)
			if err != nil {
				f.Fatal(err)
			}
			out = append(out, b)
		}
	}
	return out
}

// FuzzFeedDecode feeds arbitrary payloads to Decode for each channel kind,
// and what decodes to a State holding a synced book or a ticker. Decode
// never panics, allocates a bounded multiple of the payload, answers
// ErrBadFeedMessage without quoting the payload, and what it accepts keeps
// the feed contract (see Decode); applying it never panics.
func FuzzFeedDecode(f *testing.F) {
	for _, b := range feedSeeds(f) {
		for kind := range byte(3) {
			f.Add(b, kind)
		}
	}
	for _, s := range []string{
		"\xdd\xff\xff\xff\xff", // array32 of 4G elements
		"\xdc\xff\xff",         // array16 of 65535
		"\xdf\xff\xff\xff\xff", // map32 of 4G entries
		"\xdb\xff\xff\xff\xff", // str32 of 4 GiB
		"\xc6\xff\xff\xff\xff", // bin32 of 4 GiB
		"\x83\xa3seq\x01\xa4type\xa8snapshot\xa4data\x82\xa4bids\xdd\xff\xff\xff\xff\xa4asks\x90",
		strings.Repeat("\x91", 10000), // deep arrays
		`{"seq":1,"type":"update","data":` + strings.Repeat("[", 10000),
		`{"seq":1,"type":"snapshot","data":{"bids":[["1","1"],["1.0","2"]],"asks":[]}}`,
		`{"seq":1,"type":"snapshot","data":{"bids":[["1","0"]],"asks":[]}}`,
		`{"seq":0,"type":"update","data":{}}`,
		`{"seq":18446744073709551615,"type":"update","data":{"symbol":"ETH-USD"}}`,
		`{"seq":1,"type":"update","data":{"price":"1e9999","size":"-0","side":"buy","ts":-1}}`,
		`{"seq":1,"type":"update","data":null}`,
		`{"seq":1,"type":"update","data":{"bids":[["` + strings.Repeat("9", 4000) + `","1"]]}}`,
		`{"SEQ":1,"Type":"update","DATA":{}}`,
		`{"seq":1,"type":"0000000000000000000000","data":{}}`, // a bad type must not be quoted back
		"",
		"{",
		"\xc1",
	} {
		for kind := range byte(3) {
			f.Add([]byte(s), kind)
		}
	}
	f.Fuzz(func(t *testing.T, payload []byte, kind byte) {
		ch := fuzzChannels[kind%3]
		before := memtest.HeapAllocated()
		m, err := Decode(ch, payload)
		if n := memtest.HeapAllocated() - before; n > 64*uint64(len(payload))+1<<20 {
			t.Fatalf("Decode of %d bytes allocated %d bytes", len(payload), n)
		}
		if err != nil {
			if m != nil {
				t.Fatal("message returned with an error")
			}
			if !errors.Is(err, ErrBadFeedMessage) {
				t.Fatalf("error %v does not wrap ErrBadFeedMessage", err)
			}
			msg := err.Error()
			if len(msg) > 400 {
				t.Fatalf("error of %d bytes", len(msg))
			}
			for i := 0; i+24 <= len(payload); i += 8 {
				if w := payload[i : i+24]; !plainBytes(w) && strings.Contains(msg, string(w)) {
					t.Fatalf("error %q quotes the payload", msg)
				}
			}
			return
		}
		checkMessage(t, ch, m)
		applyToState(t, ch, m)
	})
}

// checkMessage checks what Decode promises about an accepted message.
func checkMessage(t *testing.T, ch proto.Channel, m *Message) {
	t.Helper()
	if m.Seq == 0 {
		t.Fatal("accepted seq 0")
	}
	set := 0
	for _, p := range []bool{m.Ticker() != nil, m.Book() != nil, m.Trade() != nil} {
		if p {
			set++
		}
	}
	if set != 1 {
		t.Fatalf("%d data fields set", set)
	}
	switch ch.Kind {
	case proto.KindTicker:
		tk := m.Ticker()
		if tk == nil || m.Snapshot || tk.Symbol != ch.Symbol || tk.TS < 0 {
			t.Fatalf("ticker %+v snapshot=%v", tk, m.Snapshot)
		}
		for _, d := range []string{tk.Bid, tk.BidSize, tk.Ask, tk.AskSize, tk.Last, tk.Volume} {
			if !proto.ValidDecimal(d) {
				t.Fatalf("ticker decimal %q", d)
			}
		}
	case proto.KindTrade:
		tr := m.Trade()
		if tr == nil || m.Snapshot || tr.Symbol != ch.Symbol || tr.TS < 0 ||
			!proto.ValidDecimal(tr.Price) || !proto.ValidDecimal(tr.Size) || (tr.Side != proto.SideBuy && tr.Side != proto.SideSell) {
			t.Fatalf("trade %+v", tr)
		}
	case proto.KindBook:
		b := m.Book()
		if b == nil || b.TS < 0 || b.Bids == nil || b.Asks == nil || len(b.Bids) > MaxBookLevels || len(b.Asks) > MaxBookLevels {
			t.Fatalf("book %+v", b)
		}
		if want := map[bool]string{true: ch.Symbol, false: ""}[m.Snapshot]; b.Symbol != want {
			t.Fatalf("book symbol %q, snapshot=%v", b.Symbol, m.Snapshot)
		}
		for _, side := range [][]proto.Level{b.Bids, b.Asks} {
			for _, l := range side {
				if !proto.ValidDecimal(l[0]) || !proto.ValidDecimal(l[1]) || (m.Snapshot && proto.IsZeroDecimal(l[1])) {
					t.Fatalf("book level %q snapshot=%v", l, m.Snapshot)
				}
			}
		}
		if m.Snapshot {
			if !slices.IsSortedFunc(b.Bids, bidOrder) || !slices.IsSortedFunc(b.Asks, askOrder) {
				t.Fatal("snapshot sides not in book order")
			}
			if b.Checksum != 0 && b.Checksum != proto.BookChecksum(b.Bids, b.Asks) {
				t.Fatal("snapshot accepted with a wrong checksum")
			}
		}
	}
}

// applyToState applies m to a State that already holds data (a synced
// book at seq 1, a ticker at seq 1), as the node would.
func applyToState(t *testing.T, ch proto.Channel, m *Message) {
	t.Helper()
	st := NewState(ch, 4)
	switch ch.Kind {
	case proto.KindBook:
		st.Apply(bookMsg(1, true, Ls(L("100", "1"), L("99", "2")), Ls(L("101", "1")), 0))
	case proto.KindTicker:
		st.Apply(tickerMsg(1, "1"))
	}
	ev, emit, _ := st.Apply(m)
	if emit && (ev.Seq != m.Seq || ev.Data == nil) {
		t.Fatalf("event %+v for seq %d", ev, m.Seq)
	}
	if seq, data, ok := st.Snapshot(SnapshotOptions{}); ok {
		if b, isBook := data.(*proto.Book); isBook && b.Checksum != proto.BookChecksum(b.Bids, b.Asks) {
			t.Fatalf("book snapshot at %d has a stale checksum", seq)
		}
	}
	if _, ok := st.Since(1); ok && st.LastSeq() < 1 {
		t.Fatal("resume from 1 with nothing emitted")
	}
}

// plainBytes reports whether b is lower-case words, digits, spaces and light
// punctuation, which an error's fixed text may contain by chance.
func plainBytes(b []byte) bool {
	return len(bytes.Trim(b, "abcdefghijklmnopqrstuvwxyz0123456789 ():,-._")) == 0
}
