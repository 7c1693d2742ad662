package main

import (
	"bytes"
	"fmt"
	"net/http"

	"github.com/lxzan/gws"

	"github.com/tickgate/tickgate/codec"
	"github.com/tickgate/tickgate/internal/wsconn"
	"github.com/tickgate/tickgate/proto"
)

// A dialect is one server's client protocol over WebSocket: tickgate's own,
// NATS's, or Centrifugo's. The load client (client.go) is the same for
// every server; only the session a dialect makes per connection differs.
type dialect interface {
	// name is the server's short name in reports ("tickgate", "nats", …).
	name() string
	// session returns the protocol state of one connection.
	session(s *clientSpec) session
}

// session speaks a dialect on one connection. Its methods run on the
// connection's read loop, except header, hello and probe, which run
// before it starts.
type session interface {
	// header is the upgrade request's extra headers.
	header() http.Header
	// accept checks the subprotocol the server chose.
	accept(subprotocol string) error
	// hello is the one message sent right after the upgrade: whatever
	// authenticates and subscribes to every channel of the spec.
	hello() (gws.Opcode, []byte, error)
	// handle reads one WebSocket message and tells the sink what it holds.
	handle(data []byte, to sink)
	// probe is a harmless command a stalled client writes on the raw
	// connection to learn whether the server has closed its side.
	probe() (op byte, payload []byte, err error)
}

// sink is what a session reports to; *client implements it.
type sink interface {
	// acked: every channel of the spec is subscribed.
	acked()
	// delivered: one feed message reached the connection.
	delivered(d delivery)
	// refused: the server answered a command with an error.
	refused()
	// undecodable: a message that did not parse.
	undecodable()
	// reply writes a message back (a protocol-level pong).
	reply(op gws.Opcode, payload []byte)
}

// delivery is one feed message as a connection received it.
type delivery struct {
	channel string // the spec's channel name it arrived on
	seq     uint64 // the feed's seq
	// prev, when chained, is the seq the server says came before (tickgate's
	// prev); otherwise the client expects seq to follow the last one by 1.
	prev    uint64
	chained bool
	ts      int64 // the feed's data.ts, Unix ns; 0: none
	update  bool  // an update (latency is recorded), not a snapshot
}

// tickgateDialect is tickgate's own protocol (docs/protocol.md): the token in
// the Authorization header, the codec by subprotocol, one subscribe
// command, a subscribed ack, snapshots and updates with a prev chain.
type tickgateDialect struct{}

func (tickgateDialect) name() string { return "tickgate" }

func (tickgateDialect) session(s *clientSpec) session {
	return tickgateSession{spec: s, names: newChannelNames(s.channels)}
}

type tickgateSession struct {
	spec  *clientSpec
	names channelNames
}

// channelNames maps a channel's name to the spec's own string, so that a
// session can name the channel of a message without allocating.
type channelNames map[string]string

func newChannelNames(channels []string) channelNames {
	n := make(channelNames, len(channels))
	for _, ch := range channels {
		n[ch] = ch
	}
	return n
}

// jsonString returns the string value after the first occurrence of key
// (which ends with the opening quote) in a JSON text of known shape; the
// value has no escapes (channel names, message types).
func jsonString(b []byte, key string) ([]byte, bool) {
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return nil, false
	}
	b = b[i+len(key):]
	j := bytes.IndexByte(b, '"')
	if j < 0 {
		return nil, false
	}
	return b[:j], true
}

func (t tickgateSession) header() http.Header {
	h := http.Header{}
	h.Set("Authorization", "Bearer "+t.spec.token)
	h.Set("Sec-WebSocket-Protocol", t.spec.codec.Subprotocol())
	return h
}

func (t tickgateSession) accept(sub string) error {
	if want := t.spec.codec.Subprotocol(); sub != want {
		return fmt.Errorf("handshake: subprotocol %q, want %q", sub, want)
	}
	return nil
}

func (t tickgateSession) opcode() gws.Opcode {
	if t.spec.codec.Binary() {
		return gws.OpcodeBinary
	}
	return gws.OpcodeText
}

func (t tickgateSession) hello() (gws.Opcode, []byte, error) {
	id := int64(1)
	b, err := t.spec.codec.Append(nil, proto.Command{Op: proto.OpSubscribe, ID: &id, Channels: t.spec.channels})
	return t.opcode(), b, err
}

// serverMsg is the part of a tickgate message tickbench looks at.
type serverMsg struct {
	Type    string  `json:"type" msgpack:"type"`
	Channel string  `json:"channel" msgpack:"channel"`
	Seq     uint64  `json:"seq" msgpack:"seq"`
	Prev    *uint64 `json:"prev" msgpack:"prev"`
	Code    string  `json:"code" msgpack:"code"`
	Message string  `json:"message" msgpack:"message"`
	Data    struct {
		TS int64 `json:"ts" msgpack:"ts"`
	} `json:"data" msgpack:"data"`
}

// handle reads a JSON snapshot or update by scanning for its few fields,
// as the other dialects do, so that the load client costs the same for
// every server; anything else, and msgpack, is decoded in full.
func (t tickgateSession) handle(data []byte, to sink) {
	if !t.spec.codec.Binary() && t.scan(data, to) {
		return
	}
	var msg serverMsg
	if err := codec.DecodeMessage(t.spec.codec, data, &msg); err != nil {
		to.undecodable()
		return
	}
	switch msg.Type {
	case proto.TypeSubscribed:
		to.acked()
	case proto.TypeError:
		to.refused()
	case proto.TypeSnapshot, proto.TypeUpdate:
		d := delivery{channel: msg.Channel, seq: msg.Seq, ts: msg.Data.TS, chained: true, update: msg.Type == proto.TypeUpdate}
		if msg.Prev != nil {
			d.prev = *msg.Prev
		} else if d.update {
			d.prev = ^uint64(0) // an update without prev breaks the chain
		}
		to.delivered(d)
	}
}

// scan handles a JSON snapshot or update; false: not one of those.
func (t tickgateSession) scan(data []byte, to sink) bool {
	typ, _ := jsonString(data, `"type":"`)
	update := bytes.Equal(typ, []byte(proto.TypeUpdate))
	if !update && !bytes.Equal(typ, []byte(proto.TypeSnapshot)) {
		return false
	}
	name, _ := jsonString(data, `"channel":"`)
	ch, ok := t.names[string(name)]
	seq, ok1 := jsonInt(data, `"seq":`)
	ts, ok2 := jsonInt(data, `"ts":`)
	if !ok || !ok1 || !ok2 {
		to.undecodable()
		return true
	}
	d := delivery{channel: ch, seq: uint64(seq), ts: ts, chained: true, update: update}
	if update {
		prev, ok := jsonInt(data, `"prev":`)
		d.prev = uint64(prev)
		if !ok {
			d.prev = ^uint64(0) // an update without prev breaks the chain
		}
	}
	to.delivered(d)
	return true
}

func (t tickgateSession) probe() (byte, []byte, error) {
	payload, err := t.spec.codec.Append(nil, proto.Command{Op: proto.OpPing})
	op := wsconn.OpText
	if t.spec.codec.Binary() {
		op = wsconn.OpBinary
	}
	return op, payload, err
}
