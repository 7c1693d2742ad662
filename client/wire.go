package client

import (
	"fmt"

	"github.com/tickgate/tickgate/codec"
	"github.com/tickgate/tickgate/proto"
)

// message is every field of every server message (docs/protocol.md §4.3,
// and contract 1.1's status, gap and welcome features), decoded in one
// pass whatever the type. Field names are the same in both codecs.
type message struct {
	Type     string          `json:"type" msgpack:"type"`
	ID       *int64          `json:"id" msgpack:"id"`
	Channel  string          `json:"channel" msgpack:"channel"`
	Channels []string        `json:"channels" msgpack:"channels"`
	Resumed  []string        `json:"resumed" msgpack:"resumed"`
	Code     proto.ErrorCode `json:"code" msgpack:"code"`
	Message  string          `json:"message" msgpack:"message"`
	RetryMS  int64           `json:"retry_ms" msgpack:"retry_ms"`
	Seq      uint64          `json:"seq" msgpack:"seq"`
	Prev     uint64          `json:"prev" msgpack:"prev"`
	N        uint32          `json:"n" msgpack:"n"`
	Data     *wireData       `json:"data" msgpack:"data"`
	// welcome
	V           int      `json:"v" msgpack:"v"`
	Session     string   `json:"session" msgpack:"session"`
	Node        string   `json:"node" msgpack:"node"`
	Codec       string   `json:"codec" msgpack:"codec"`
	HeartbeatMS int64    `json:"heartbeat_ms" msgpack:"heartbeat_ms"`
	Exp         int64    `json:"exp" msgpack:"exp"`
	Features    []string `json:"features" msgpack:"features"`
	// pong, heartbeat, status
	TS int64 `json:"ts" msgpack:"ts"`
	// reconnect, status
	Reason   string `json:"reason" msgpack:"reason"`
	WithinMS int64  `json:"within_ms" msgpack:"within_ms"`
	// gap
	From uint64 `json:"from" msgpack:"from"`
	To   uint64 `json:"to" msgpack:"to"`
	// status
	State string `json:"state" msgpack:"state"`
}

// wireData is the union of the data shapes (docs/protocol.md §4.4). One
// key has two types: trades is a trade snapshot's list and a candle bar's
// count; it is kept encoded and resolved once the message is decoded.
type wireData struct {
	Symbol string `json:"symbol" msgpack:"symbol"`
	// ticker
	Bid     string `json:"bid" msgpack:"bid"`
	BidSize string `json:"bid_size" msgpack:"bid_size"`
	Ask     string `json:"ask" msgpack:"ask"`
	AskSize string `json:"ask_size" msgpack:"ask_size"`
	Last    string `json:"last" msgpack:"last"`
	Volume  string `json:"volume" msgpack:"volume"`
	// book
	Bids     []proto.Level `json:"bids" msgpack:"bids"`
	Asks     []proto.Level `json:"asks" msgpack:"asks"`
	Checksum uint32        `json:"checksum" msgpack:"checksum"`
	// trade
	ID    int64  `json:"id" msgpack:"id"`
	Price string `json:"price" msgpack:"price"`
	Size  string `json:"size" msgpack:"size"`
	Side  string `json:"side" msgpack:"side"`
	// a trade snapshot (contract 1.1, subscribe option recent): a list;
	// a candle bar: a count. See resolve.
	RawTrades  codec.Raw     `json:"trades" msgpack:"trades"`
	Trades     []proto.Trade `json:"-" msgpack:"-"`
	TradeCount int64         `json:"-" msgpack:"-"`
	// candle (contract 1.1): a bar, or a snapshot's bars
	Interval string         `json:"interval" msgpack:"interval"`
	Start    int64          `json:"start" msgpack:"start"`
	Open     string         `json:"open" msgpack:"open"`
	High     string         `json:"high" msgpack:"high"`
	Low      string         `json:"low" msgpack:"low"`
	Close    string         `json:"close" msgpack:"close"`
	Closed   bool           `json:"closed" msgpack:"closed"`
	Bars     []proto.Candle `json:"bars" msgpack:"bars"`

	TS int64 `json:"ts" msgpack:"ts"`
}

func (d *wireData) ticker() *proto.Ticker {
	return &proto.Ticker{Symbol: d.Symbol, Bid: d.Bid, BidSize: d.BidSize, Ask: d.Ask, AskSize: d.AskSize,
		Last: d.Last, Volume: d.Volume, TS: d.TS}
}

// resolve decodes trades, which the codec cd kept encoded: a list (a
// trade snapshot) or an integer (a candle bar's count). body is the whole
// message, decoded again for that one key: a codec decodes whole messages.
func (d *wireData) resolve(cd codec.Codec, body []byte) error {
	r := d.RawTrades
	if r.IsNull() {
		return nil
	}
	var err error
	if isArray(r) {
		d.Trades, err = dataTrades[[]proto.Trade](cd, body)
	} else {
		d.TradeCount, err = dataTrades[int64](cd, body)
	}
	if err != nil {
		return fmt.Errorf("data.trades: %w", err)
	}
	return nil
}

// dataTrades decodes the message body's data.trades as a T.
func dataTrades[T any](cd codec.Codec, body []byte) (T, error) {
	var v struct {
		Data struct {
			Trades T `json:"trades" msgpack:"trades"`
		} `json:"data" msgpack:"data"`
	}
	err := cd.Decode(body, &v)
	return v.Data.Trades, err
}

// isArray reports whether r, one encoded value of either codec, is an
// array: JSON's [ or msgpack's fixarray, array 16 or array 32.
func isArray(r []byte) bool {
	b := r[0]
	return b == '[' || b >= 0x90 && b <= 0x9f || b == 0xdc || b == 0xdd
}

func (d *wireData) candle() *proto.Candle {
	return &proto.Candle{Symbol: d.Symbol, Interval: d.Interval, Start: d.Start, Open: d.Open, High: d.High,
		Low: d.Low, Close: d.Close, Volume: d.Volume, Trades: d.TradeCount, Closed: d.Closed, TS: d.TS}
}

func (d *wireData) trade() *proto.Trade {
	return &proto.Trade{Symbol: d.Symbol, ID: d.ID, Price: d.Price, Size: d.Size, Side: d.Side, TS: d.TS}
}

// validLevels reports whether every level is a pair of decimal strings:
// the book's ordering relies on it.
func validLevels(ls []proto.Level) bool {
	for _, l := range ls {
		if !proto.ValidDecimal(l[0]) || !proto.ValidDecimal(l[1]) {
			return false
		}
	}
	return true
}

// Server message types of contract 1.1 that proto does not name yet.
const typeStatus = "status"
