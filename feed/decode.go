package feed

import (
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
func decodeEnvelope(payload []byte, data any) (seq uint64, typ string, err error) {
	cd := codec.ForFeed(payload)
	var env proto.Feed[codec.Raw]
	if err := cd.Decode(payload, &env); err != nil {
		return 0, "", fmt.Errorf("%s feed: %w", cd.Name(), err)
	}
	switch env.Type {
	case proto.FeedSnapshot:
		typ = proto.FeedSnapshot // share the constant, drop the decoded copy
	case proto.FeedUpdate:
		typ = proto.FeedUpdate
	case proto.FeedHeartbeat:
		typ = proto.FeedHeartbeat
	default:
		// The value is not quoted: feed errors are logged, and a bad
		// payload's bytes have no place in a log line.
		return 0, "", fmt.Errorf("%w: feed type (%d bytes) is neither snapshot, update nor heartbeat",
			codec.ErrMalformed, len(env.Type))
	}
	if !env.Data.IsNull() {
		if err := cd.Decode(env.Data, data); err != nil {
			return 0, "", fmt.Errorf("%s feed data: %w", cd.Name(), err)
		}
	}
	return env.Seq, typ, nil
}
