package client

import (
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

// wireData is the union of the data shapes (docs/protocol.md §4.4): no
// two shapes use one key with different types.
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
	// a trade snapshot (contract 1.1, subscribe option recent)
	Trades []proto.Trade `json:"trades" msgpack:"trades"`

	TS int64 `json:"ts" msgpack:"ts"`
}

func (d *wireData) ticker() *proto.Ticker {
	return &proto.Ticker{Symbol: d.Symbol, Bid: d.Bid, BidSize: d.BidSize, Ask: d.Ask, AskSize: d.AskSize,
		Last: d.Last, Volume: d.Volume, TS: d.TS}
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
