package codec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/tickgate/tickgate/proto"
	"github.com/vmihailenco/msgpack/v5"
)

// DecodeFeed decodes one feed payload from NATS (PROTOCOL.md §1): JSON when
// its first byte is '{', msgpack otherwise. The payload is a map
// {"seq": uint64, "type": "snapshot"|"update"|"heartbeat", "data": {...}}; data is
// decoded into data, which must be a non-nil *proto.Ticker, *proto.Book or
// *proto.Trade and is reset first. Unknown keys are ignored; a missing or
// null "data" leaves data zero. It returns the envelope's header.
//
// The payload is checked as a client command is (see the package doc):
// malformed, truncated, wrongly typed or hostile input, and a type other
// than snapshot, update or heartbeat (contract 1.1: a publisher's sign of
// life, without data), return an error wrapping ErrMalformed; data is
// then in an unspecified state. A data of another type is a programming
// error, reported without ErrMalformed. In JSON payloads encoding/json
// matches keys case-insensitively; publishers should not rely on it.
func DecodeFeed(payload []byte, data any) (proto.FeedHeader, error) {
	switch d := data.(type) {
	case *proto.Ticker:
		if d != nil {
			*d = proto.Ticker{}
			break
		}
		return proto.FeedHeader{}, fmt.Errorf("codec: DecodeFeed into nil %T", data)
	case *proto.Book:
		if d != nil {
			*d = proto.Book{}
			break
		}
		return proto.FeedHeader{}, fmt.Errorf("codec: DecodeFeed into nil %T", data)
	case *proto.Trade:
		if d != nil {
			*d = proto.Trade{}
			break
		}
		return proto.FeedHeader{}, fmt.Errorf("codec: DecodeFeed into nil %T", data)
	default:
		return proto.FeedHeader{}, fmt.Errorf("codec: DecodeFeed into %T: want *proto.Ticker, *proto.Book or *proto.Trade", data)
	}
	var (
		h   proto.FeedHeader
		err error
	)
	if len(payload) > 0 && payload[0] == '{' {
		h, err = decodeFeedJSON(payload, data)
	} else {
		h, err = decodeFeedMsgpack(payload, data)
	}
	if err != nil {
		return proto.FeedHeader{}, err
	}
	switch h.Type {
	case proto.FeedSnapshot:
		h.Type = proto.FeedSnapshot // share the constant, drop the decoded copy
	case proto.FeedUpdate:
		h.Type = proto.FeedUpdate
	case proto.FeedHeartbeat:
		h.Type = proto.FeedHeartbeat
	default:
		// The value is not quoted: feed errors are logged, and a bad
		// payload's bytes have no place in a log line.
		return proto.FeedHeader{}, fmt.Errorf("%w: feed type (%d bytes) is neither snapshot, update nor heartbeat",
			ErrMalformed, len(h.Type))
	}
	return h, nil
}

// feedEnvelope is a JSON feed message; Data holds the caller's pointer, which
// encoding/json decodes into.
type feedEnvelope struct {
	Seq  uint64 `json:"seq"`
	Type string `json:"type"`
	Data any    `json:"data"`
}

func decodeFeedJSON(payload []byte, data any) (proto.FeedHeader, error) {
	if _, err := checkJSON(payload, nil); err != nil {
		return proto.FeedHeader{}, err
	}
	env := feedEnvelope{Data: data}
	if err := json.Unmarshal(payload, &env); err != nil {
		return proto.FeedHeader{}, fmt.Errorf("%w: json feed: %w", ErrMalformed, err)
	}
	return proto.FeedHeader{Seq: env.Seq, Type: env.Type}, nil
}

// msgpackDecoder is a pooled msgpack.Decoder reading from a bytes.Reader.
type msgpackDecoder struct {
	r   bytes.Reader
	dec *msgpack.Decoder
}

// msgpackDecoders recycles msgpack decoders across DecodeFeed calls;
// sync.Pool is safe for concurrent use and holds no observable state.
var msgpackDecoders = sync.Pool{New: func() any {
	d := new(msgpackDecoder)
	d.dec = msgpack.NewDecoder(&d.r)
	return d
}}

// decodeFeedMsgpack validates payload, reads the envelope with mpReader and
// hands only the validated bytes of "data" to the msgpack library.
func decodeFeedMsgpack(payload []byte, data any) (proto.FeedHeader, error) {
	if err := validateMsgpack(payload); err != nil {
		return proto.FeedHeader{}, err
	}
	r := mpReader{b: payload}
	n, err := r.container("feed message", mpMap)
	if err != nil {
		return proto.FeedHeader{}, err
	}
	var h proto.FeedHeader
	var raw []byte // the last "data" value
	for ; n > 0; n-- {
		key, err := r.head()
		if err != nil {
			return proto.FeedHeader{}, err
		}
		if key.kind != mpStr {
			return proto.FeedHeader{}, r.errorf("map key: want str, got %s", key.kind)
		}
		k, err := r.fixed(int(key.u))
		if err != nil {
			return proto.FeedHeader{}, err
		}
		switch string(k) {
		case "seq":
			if h.Seq, err = r.uint64("seq"); err != nil {
				return proto.FeedHeader{}, err
			}
		case "type":
			s, err := r.str("type")
			if err != nil {
				return proto.FeedHeader{}, err
			}
			switch string(s) {
			case proto.FeedSnapshot:
				h.Type = proto.FeedSnapshot
			case proto.FeedUpdate:
				h.Type = proto.FeedUpdate
			case proto.FeedHeartbeat:
				h.Type = proto.FeedHeartbeat
			default:
				h.Type = string(s)
			}
		case "data":
			start := r.i
			if err := r.skip(1); err != nil {
				return proto.FeedHeader{}, err
			}
			raw = payload[start:r.i]
		default:
			if err := r.skip(1); err != nil {
				return proto.FeedHeader{}, err
			}
		}
	}
	if len(raw) > 0 && raw[0] != 0xc0 { // nil data leaves data zero
		d := msgpackDecoders.Get().(*msgpackDecoder)
		d.r.Reset(raw)
		d.dec.Reset(&d.r)
		err := d.dec.Decode(data)
		left := d.r.Len()
		d.r.Reset(nil)
		d.dec.Reset(nil)
		msgpackDecoders.Put(d)
		if err != nil {
			return proto.FeedHeader{}, fmt.Errorf("%w: msgpack feed data: %w", ErrMalformed, err)
		}
		if left != 0 {
			return proto.FeedHeader{}, fmt.Errorf("%w: msgpack feed data: %d bytes not decoded", ErrMalformed, left)
		}
	}
	return h, nil
}
