package client

import (
	"testing"

	"github.com/tickgate/tickgate/codec"
	"github.com/tickgate/tickgate/proto"
)

// withData returns m carrying v as its data the way a connection hands a
// message to the router: encoded (with JSON), with the codec to decode it.
func withData(m message, v any) *message {
	b, err := codec.JSON().Append(nil, v)
	if err != nil {
		panic(err)
	}
	m.Data, m.cd = b, codec.JSON()
	return &m
}

// decodeWire decodes a server message as the connection does.
func decodeWire(t *testing.T, cd codec.Codec, v any) *message {
	t.Helper()
	b, err := cd.Append(nil, v)
	if err != nil {
		t.Fatal(err)
	}
	var m message
	if err := m.decode(cd, b); err != nil {
		t.Fatal(err)
	}
	return &m
}

// Every kind's data arrives whole in both codecs, through the envelope
// and then the kind's own type: data.trades, a list in a trade snapshot
// and a count in a candle bar, among them.
func TestWireDataByKind(t *testing.T) {
	bar := testCandle(1, "150", false)
	trades := []*proto.Trade{{Symbol: "X", ID: 1, Price: "1", Size: "2", Side: "buy", TS: 3}, {Symbol: "X", ID: 2, Price: "1.5", Size: "1", Side: "sell", TS: 4}}
	book := &proto.Book{Symbol: "X", Bids: []proto.Level{{"10", "1"}}, Asks: []proto.Level{{"11", "2"}}, TS: 5}
	book.Checksum = proto.BookChecksum(book.Bids, book.Asks)
	ticker := &proto.Ticker{Symbol: "X", Bid: "1", BidSize: "2", Ask: "3", AskSize: "4", Last: "2", Volume: "9", TS: 6}
	for _, cd := range codec.All() {
		t.Run(cd.Name(), func(t *testing.T) {
			g := newRig(t)
			for _, name := range []string{"candle.1m.X", "trade.X", "book.X", "ticker.X"} {
				ch, err := proto.ParseChannel(name)
				if err != nil {
					t.Fatal(err)
				}
				g.r.add(name, ch, subOptions{bars: 10, recent: 10}, g.id)
				g.r.acked(g.id, name, subOptions{bars: 10, recent: 10}, false)
			}
			g.events()
			for _, v := range []any{
				proto.Snapshot{Type: proto.TypeSnapshot, Channel: "candle.1m.X", Seq: 2, Data: &proto.CandleSnapshot{Symbol: "X", Interval: "1m", Bars: []*proto.Candle{&bar}}},
				proto.Update{Type: proto.TypeUpdate, Channel: "candle.1m.X", Seq: 3, Prev: 2, N: 1, Data: &bar},
				proto.Snapshot{Type: proto.TypeSnapshot, Channel: "trade.X", Seq: 9, Data: &proto.TradeSnapshot{Symbol: "X", Trades: trades}},
				proto.Update{Type: proto.TypeUpdate, Channel: "trade.X", Seq: 10, Prev: 9, N: 1, Data: trades[1]},
				proto.Snapshot{Type: proto.TypeSnapshot, Channel: "book.X", Seq: 4, Data: book},
				proto.Snapshot{Type: proto.TypeSnapshot, Channel: "ticker.X", Seq: 4, Data: ticker},
			} {
				g.r.handle(decodeWire(t, cd, v))
			}
			var got []Event
			for _, e := range g.events() {
				if e.Type == EventSnapshot || e.Type == EventUpdate {
					got = append(got, e)
				}
				if e.Type == EventGap {
					t.Fatalf("gap %+v", e.Gap)
				}
			}
			if len(got) != 6 {
				t.Fatalf("%d data events, want 6: %+v", len(got), got)
			}
			if len(got[0].Bars) != 1 || got[0].Bars[0] != bar || got[1].Candle == nil || *got[1].Candle != bar {
				t.Fatalf("candle: %+v / %+v", got[0].Bars, got[1].Candle)
			}
			if len(got[2].Trades) != 2 || got[2].Trades[1] != *trades[1] || got[3].Trade == nil || *got[3].Trade != *trades[1] {
				t.Fatalf("trades: %+v / %+v", got[2].Trades, got[3].Trade)
			}
			if got[4].Channel != "book.X" || got[4].Book == nil || got[5].Ticker == nil || *got[5].Ticker != *ticker {
				t.Fatalf("book %+v, ticker %+v", got[4], got[5].Ticker)
			}
		})
	}
}

// Data a channel cannot use (absent, or not its kind's shape) is
// malformed for that channel alone: a book resyncs, a trade channel
// reports the message and goes on, and the connection stays.
func TestWireDataMalformed(t *testing.T) {
	for _, tt := range []struct {
		name, channel string
		data          any
		resync        bool
	}{
		{"book without data", "book.X", nil, true},
		{"book with a string for bids", "book.X", map[string]any{"bids": "10", "asks": []any{}, "checksum": 1}, true},
		{"ticker with a list", "ticker.X", []int{1, 2}, true},
		{"trade with a string id", "trade.X", map[string]any{"symbol": "X", "id": "7", "price": "1", "size": "1", "side": "buy"}, false},
		{"candle snapshot with a count for bars", "candle.1m.X", map[string]any{"symbol": "X", "interval": "1m", "bars": 3}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := newRig(t)
			ch, err := proto.ParseChannel(tt.channel)
			if err != nil {
				t.Fatal(err)
			}
			g.r.add(tt.channel, ch, subOptions{}, g.id)
			g.r.acked(g.id, tt.channel, subOptions{}, false)
			g.events()
			m := &message{Type: proto.TypeSnapshot, Channel: tt.channel, Seq: 5, cd: codec.JSON()}
			if ch.Kind == proto.KindTrade {
				m.Type, m.N = proto.TypeUpdate, 1
			}
			if tt.data != nil {
				m = withData(*m, tt.data)
			}
			g.r.handle(m)
			evs := g.events()
			if len(evs) == 0 || evs[0].Type != EventGap || evs[0].Gap.Reason != GapMalformed || evs[0].Gap.Resync != tt.resync {
				t.Fatalf("events %+v, want a malformed gap (resync %v)", evs, tt.resync)
			}
		})
	}
}
