package feed

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tickgate/tickgate/codec"
	"github.com/tickgate/tickgate/proto"
)

func TestDecode(t *testing.T) {
	tests := map[string]struct {
		ch      proto.Channel
		payload string
		wantErr string // substring; "" means success
		check   func(t *testing.T, m *Message)
	}{
		"ticker": {
			ch:      tickerBTC,
			payload: `{"seq":7,"type":"update","data":{"symbol":"BTC-USD","bid":"64000.10","bid_size":"1.5","ask":"64000.20","ask_size":"0.7","last":"64000.15","volume":"1234.5","ts":99}}`,
			check: func(t *testing.T, m *Message) {
				if m.Seq != 7 || m.Snapshot || m.Ticker() == nil || m.Ticker().Bid != "64000.10" || m.Ticker().TS != 99 || m.Book() != nil || m.Trade() != nil {
					t.Fatalf("got %+v / %+v", m, m.Ticker())
				}
			},
		},
		"ticker symbol filled in": {
			ch:      tickerBTC,
			payload: `{"seq":1,"type":"update","data":{"bid":"1","bid_size":"1","ask":"2","ask_size":"1","last":"1","volume":"0","ts":1}}`,
			check: func(t *testing.T, m *Message) {
				if m.Ticker().Symbol != "BTC-USD" {
					t.Fatalf("symbol %q", m.Ticker().Symbol)
				}
			},
		},
		"ticker snapshot is an update": {
			ch:      tickerBTC,
			payload: `{"seq":1,"type":"snapshot","data":{"bid":"1","bid_size":"1","ask":"2","ask_size":"1","last":"1","volume":"0","ts":1}}`,
			check: func(t *testing.T, m *Message) {
				if m.Snapshot {
					t.Fatal("ticker message marked snapshot")
				}
			},
		},
		"ticker wrong symbol": {
			ch:      tickerBTC,
			payload: `{"seq":1,"type":"update","data":{"symbol":"ETH-USD","bid":"1","bid_size":"1","ask":"2","ask_size":"1","last":"1","volume":"0","ts":1}}`,
			wantErr: "symbol",
		},
		"ticker bad decimal": {
			ch:      tickerBTC,
			payload: `{"seq":1,"type":"update","data":{"bid":"1e3","bid_size":"1","ask":"2","ask_size":"1","last":"1","volume":"0","ts":1}}`,
			wantErr: "bid",
		},
		"ticker missing field": {
			ch:      tickerBTC,
			payload: `{"seq":1,"type":"update","data":{"bid":"1","bid_size":"1","ask":"2","ask_size":"1","last":"1","ts":1}}`,
			wantErr: "volume",
		},
		"seq zero": {
			ch:      tickerBTC,
			payload: `{"seq":0,"type":"update","data":{"bid":"1","bid_size":"1","ask":"2","ask_size":"1","last":"1","volume":"0","ts":1}}`,
			wantErr: "seq",
		},
		"bad type": {
			ch:      tickerBTC,
			payload: `{"seq":1,"type":"delta","data":{}}`,
			wantErr: "type",
		},
		"malformed": {
			ch:      tickerBTC,
			payload: `{"seq":1,`,
			wantErr: "malformed",
		},
		"not a map": {
			ch:      tradeBTC,
			payload: "\x93\x01\x02\x03",
			wantErr: "malformed",
		},
		"trade": {
			ch:      tradeBTC,
			payload: `{"seq":3,"type":"update","data":{"symbol":"BTC-USD","id":991,"price":"64000.15","size":"0.01","side":"sell","ts":5}}`,
			check: func(t *testing.T, m *Message) {
				if m.Trade() == nil || m.Trade().ID != 991 || m.Trade().Side != "sell" || m.Seq != 3 {
					t.Fatalf("got %+v", m.Trade())
				}
			},
		},
		"trade snapshot refused": {
			ch:      tradeBTC,
			payload: `{"seq":3,"type":"snapshot","data":{"id":991,"price":"64000.15","size":"0.01","side":"sell","ts":5}}`,
			wantErr: "only updates",
		},
		"trade bad side": {
			ch:      tradeBTC,
			payload: `{"seq":3,"type":"update","data":{"id":991,"price":"64000.15","size":"0.01","side":"short","ts":5}}`,
			wantErr: "side",
		},
		"trade negative ts": {
			ch:      tradeBTC,
			payload: `{"seq":3,"type":"update","data":{"id":991,"price":"64000.15","size":"0.01","side":"buy","ts":-5}}`,
			wantErr: "ts",
		},
		"book snapshot sorted on decode": {
			ch:      bookBTC,
			payload: `{"seq":1,"type":"snapshot","data":{"bids":[["99","1"],["100.5","2"],["100","3"]],"asks":[["102","1"],["101","2"]],"checksum":0,"ts":1}}`,
			check: func(t *testing.T, m *Message) {
				if !m.Snapshot || m.Book().Symbol != "BTC-USD" ||
					!slices.Equal(m.Book().Bids, Ls(L("100.5", "2"), L("100", "3"), L("99", "1"))) ||
					!slices.Equal(m.Book().Asks, Ls(L("101", "2"), L("102", "1"))) {
					t.Fatalf("got %+v", m.Book())
				}
			},
		},
		"book snapshot checksum verified": {
			ch: bookBTC,
			payload: `{"seq":1,"type":"snapshot","data":{"bids":[["100","1"]],"asks":[["101","2"]],"checksum":` +
				strconv.FormatUint(uint64(proto.BookChecksum(Ls(L("100", "1")), Ls(L("101", "2")))), 10) + `,"ts":1}}`,
		},
		"book snapshot wrong checksum": {
			ch:      bookBTC,
			payload: `{"seq":1,"type":"snapshot","data":{"bids":[["100","1"]],"asks":[["101","2"]],"checksum":1,"ts":1}}`,
			wantErr: "checksum",
		},
		"book snapshot zero size": {
			ch:      bookBTC,
			payload: `{"seq":1,"type":"snapshot","data":{"bids":[["100","0"]],"asks":[],"ts":1}}`,
			wantErr: "zero size",
		},
		"book snapshot duplicate price": {
			ch:      bookBTC,
			payload: `{"seq":1,"type":"snapshot","data":{"bids":[],"asks":[["100.1","1"],["100.10","2"]],"ts":1}}`,
			wantErr: "duplicate",
		},
		"book snapshot without sides": {
			ch:      bookBTC,
			payload: `{"seq":1,"type":"snapshot","data":{"ts":1}}`,
			check: func(t *testing.T, m *Message) {
				if m.Book().Bids == nil || m.Book().Asks == nil || len(m.Book().Bids)+len(m.Book().Asks) != 0 {
					t.Fatalf("got %+v", m.Book())
				}
			},
		},
		"book update keeps order, zero sizes, clears symbol": {
			ch:      bookBTC,
			payload: `{"seq":2,"type":"update","data":{"symbol":"BTC-USD","bids":[["99","0"],["100","1"],["99","2"]],"asks":[],"checksum":77,"ts":1}}`,
			check: func(t *testing.T, m *Message) {
				if m.Snapshot || m.Book().Symbol != "" || m.Book().Checksum != 77 ||
					!slices.Equal(m.Book().Bids, Ls(L("99", "0"), L("100", "1"), L("99", "2"))) {
					t.Fatalf("got %+v", m.Book())
				}
			},
		},
		"book update wrong symbol": {
			ch:      bookBTC,
			payload: `{"seq":2,"type":"update","data":{"symbol":"ETH-USD","bids":[],"asks":[],"ts":1}}`,
			wantErr: "symbol",
		},
		"book bad level": {
			ch:      bookBTC,
			payload: `{"seq":2,"type":"update","data":{"bids":[["-1","1"]],"asks":[],"ts":1}}`,
			wantErr: "decimal",
		},
		"book too many levels": {
			ch:      bookBTC,
			payload: `{"seq":2,"type":"update","data":{"bids":[` + strings.Repeat(`["1","1"],`, MaxBookLevels) + `["1","1"]],"asks":[],"ts":1}}`,
			wantErr: "levels",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			m, err := Decode(tc.ch, []byte(tc.payload))
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("Decode = %+v, want error containing %q", m, tc.wantErr)
				}
				if !errors.Is(err, ErrBadFeedMessage) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Decode error %q, want ErrBadFeedMessage containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if tc.check != nil {
				tc.check(t, m)
			}
		})
	}
}

func TestDecodeMsgpack(t *testing.T) {
	want := &proto.Book{
		Bids: Ls(L("64000.10", "1.5"), L("64000.00", "2")),
		Asks: Ls(L("64000.20", "0.7")),
		TS:   42,
	}
	want.Checksum = proto.BookChecksum(want.Bids, want.Asks)
	payload, err := codec.Msgpack().Append(nil, proto.FeedMessage{Seq: 9, Type: proto.FeedSnapshot, Data: want})
	if err != nil {
		t.Fatal(err)
	}
	m, err := Decode(bookBTC, payload)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if m.Seq != 9 || !m.Snapshot || m.Book().Symbol != "BTC-USD" || m.Book().Checksum != want.Checksum ||
		!slices.Equal(m.Book().Bids, want.Bids) || !slices.Equal(m.Book().Asks, want.Asks) || m.Book().TS != 42 {
		t.Fatalf("Decode = %+v", m.Book())
	}
}

// A publisher heartbeat (contract 1.1) decodes on every kind, in JSON and
// msgpack, with seq 0 allowed (nothing published yet) and no data.
func TestDecodeHeartbeat(t *testing.T) {
	mp, err := codec.Msgpack().Append(nil, proto.FeedMessage{Seq: 42, Type: proto.FeedHeartbeat})
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		payload []byte
		seq     uint64
	}{
		"json":         {[]byte(`{"type":"heartbeat","seq":9}`), 9},
		"json, seq 0":  {[]byte(`{"type":"heartbeat","seq":0}`), 0},
		"json, no seq": {[]byte(`{"type":"heartbeat"}`), 0},
		"msgpack":      {mp, 42},
	}
	for name, tc := range tests {
		for _, ch := range []proto.Channel{tickerBTC, bookBTC, tradeBTC} {
			t.Run(name+"/"+ch.Kind.String(), func(t *testing.T) {
				m, err := Decode(ch, tc.payload)
				if err != nil {
					t.Fatal(err)
				}
				if !m.Heartbeat || m.Seq != tc.seq || m.Ticker() != nil || m.Book() != nil || m.Trade() != nil {
					t.Fatalf("decoded %+v, want a heartbeat with seq %d and no data", m, tc.seq)
				}
			})
		}
	}
}
