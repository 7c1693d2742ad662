package client

import (
	"github.com/tickgate/tickgate/codec"
	"github.com/tickgate/tickgate/proto"
)

// message is every envelope field of every server message
// (docs/protocol.md §4.3, and contract 1.1's status, gap and welcome
// features), decoded in one pass whatever the type. Field names are the
// same in both codecs. Data stays encoded until the router, which knows
// the channel's kind, decodes it as that kind's proto type (dataOf): the
// data shapes are proto's, not mirrored here.
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
	Data     codec.Raw       `json:"data" msgpack:"data"`
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

	// cd is the codec that decoded the message, for Data.
	cd codec.Codec
}

// decode decodes b, one server message encoded with cd, into m, whose
// data cd then decodes once the channel's kind is known (dataOf).
func (m *message) decode(cd codec.Codec, b []byte) error {
	err := codec.DecodeMessage(cd, b, m)
	m.cd = cd
	return err
}

// dataOf decodes m's data as the channel kind's own type T (proto.Book,
// proto.Ticker, ...), with the codec that decoded m. Data that is absent
// or does not decode as T makes the message malformed for its channel
// (router.malformed): the other channels of the connection go on.
func dataOf[T any](r *router, s *chanState, m *message) (*T, bool) {
	d := new(T)
	if m.Data.IsNull() || m.cd == nil || m.cd.Decode(m.Data, d) != nil {
		r.malformed(s, m)
		return nil, false
	}
	return d, true
}

// derefAll copies the values ps point to, in order.
func derefAll[T any](ps []*T) []T {
	out := make([]T, 0, len(ps))
	for _, p := range ps {
		if p != nil {
			out = append(out, *p)
		}
	}
	return out
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
