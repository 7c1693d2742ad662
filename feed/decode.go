package feed

import (
	"bytes"
	"fmt"

	"github.com/tickgate/tickgate/codec"
	"github.com/tickgate/tickgate/proto"
)

// decodeEnvelope decodes one feed payload from NATS (docs/protocol.md
// §9.2): JSON when its first byte is '{', msgpack otherwise
// (codec.ForFeed). The payload is the envelope proto.Feed, a map {"seq":
// uint64, "type": "snapshot"|"update"|"heartbeat", "data": {...}}; its
// data is decoded into data, a pointer to the channel kind's zero data
// shape, left zero when "data" is missing or null. Unknown keys are
// ignored.
//
// The payload is checked as a client command is (codec.Codec.Decode):
// malformed, truncated, wrongly typed or hostile input, and a type other
// than snapshot, update or heartbeat, return an error wrapping
// codec.ErrMalformed that never quotes the payload; data is then in an
// unspecified state. The type returned is the proto constant.
//
// A JSON payload of the common shape takes the fast path (fastjson.go);
// what it declines, and msgpack, take decodeEnvelopeSlow.
func decodeEnvelope(payload []byte, data any) (seq uint64, typ string, err error) {
	if seq, typ, ok := decodeJSONFast(payload, data); ok {
		return seq, typ, nil
	}
	return decodeEnvelopeSlow(payload, data)
}

// decodeEnvelopeSlow is decodeEnvelope by the codecs: encoding/json for
// JSON, after codec's checks.
func decodeEnvelopeSlow(payload []byte, data any) (seq uint64, typ string, err error) {
	cd := codec.ForFeed(payload)
	if cd == codec.JSON() && oneDataKey(payload) {
		// One pass: encoding/json decodes "data" into the pointer the
		// envelope's Data holds (and leaves it when data is null).
		env := proto.Feed[any]{Data: data}
		if err := cd.Decode(payload, &env); err != nil {
			return 0, "", fmt.Errorf("%s feed: %w", cd.Name(), err)
		}
		typ, err := feedType(env.Type)
		return env.Seq, typ, err
	}
	var env proto.Feed[codec.Raw]
	if err := cd.Decode(payload, &env); err != nil {
		return 0, "", fmt.Errorf("%s feed: %w", cd.Name(), err)
	}
	if typ, err = feedType(env.Type); err != nil {
		return 0, "", err
	}
	if !env.Data.IsNull() {
		if err := cd.Decode(env.Data, data); err != nil {
			return 0, "", fmt.Errorf("%s feed data: %w", cd.Name(), err)
		}
	}
	return env.Seq, typ, nil
}

// oneDataKey reports whether encoding/json can match at most one key of
// the JSON payload to the envelope's data: it holds no escape, and the
// quoted word data, in any case, at most once. Where it could match more
// (a duplicate key), the payload is decoded in two passes, which keep the
// last one's data alone rather than merging them.
func oneDataKey(payload []byte) bool {
	if bytes.IndexByte(payload, '\\') >= 0 {
		return false
	}
	n := 0
	for i := 0; ; i++ {
		j := bytes.IndexByte(payload[i:], '"')
		if j < 0 || i+j+5 >= len(payload) {
			return true
		}
		i += j
		if q := payload[i+1 : i+6]; q[4] == '"' && q[0]|0x20 == 'd' && q[1]|0x20 == 'a' && q[2]|0x20 == 't' && q[3]|0x20 == 'a' {
			if n++; n > 1 {
				return false
			}
		}
	}
}

// feedType returns the proto constant of a feed message's type.
func feedType(t string) (typ string, err error) {
	switch t {
	case proto.FeedSnapshot:
		typ = proto.FeedSnapshot // share the constant, drop the decoded copy
	case proto.FeedUpdate:
		typ = proto.FeedUpdate
	case proto.FeedHeartbeat:
		typ = proto.FeedHeartbeat
	default:
		// The value is not quoted: feed errors are logged, and a bad
		// payload's bytes have no place in a log line.
		return "", fmt.Errorf("%w: feed type (%d bytes) is neither snapshot, update nor heartbeat",
			codec.ErrMalformed, len(t))
	}
	return typ, nil
}
