package codec

import (
	"fmt"
	"sync"

	"github.com/tickgate/tickgate/proto"
	"github.com/vmihailenco/msgpack/v5"
)

// msgpackCodec is the tickgate.v1.msgpack codec. It has no state.
type msgpackCodec struct{}

func (msgpackCodec) Name() string        { return "msgpack" }
func (msgpackCodec) Subprotocol() string { return proto.SubprotocolMsgpack }
func (msgpackCodec) Binary() bool        { return true }

// msgpackEncoder is a pooled msgpack.Encoder bound to a sliceWriter.
type msgpackEncoder struct {
	w   sliceWriter
	enc *msgpack.Encoder
}

// msgpackEncoders recycles msgpack encoders across Append calls; sync.Pool
// is safe for concurrent use and holds no observable state.
var msgpackEncoders = sync.Pool{New: func() any {
	e := new(msgpackEncoder)
	e.enc = msgpack.NewEncoder(&e.w)
	// Integers in the fewest bytes: seq 1207 takes 3 bytes, not 9.
	e.enc.UseCompactInts(true)
	return e
}}

// Append implements Codec. Structs encode as maps keyed by their msgpack
// tags, which equal the json tags.
func (msgpackCodec) Append(dst []byte, v any) ([]byte, error) {
	e := msgpackEncoders.Get().(*msgpackEncoder)
	e.w.b = dst
	err := e.enc.Encode(normalize(v))
	out := e.w.b
	e.w.b = nil
	msgpackEncoders.Put(e)
	if err != nil {
		return dst, fmt.Errorf("codec: msgpack encode %T: %w", v, err)
	}
	return out, nil
}

// DecodeCommand implements Codec. It validates b (validateMsgpack) and
// then decodes the command with a strict reader of its own: every known key
// must carry its type (or nil), integers must fit their field, unknown keys
// are skipped.
func (msgpackCodec) DecodeCommand(b []byte, cmd *proto.Command) error {
	*cmd = proto.Command{}
	if err := validateMsgpack(b); err != nil {
		return err
	}
	if err := decodeMsgpackCommand(b, cmd); err != nil {
		*cmd = proto.Command{ID: msgpackCommandID(b)}
		return err
	}
	return nil
}

// msgpackCommandID is the integer "id" of validated bytes that are one map,
// or nil. It runs only after a failed decode, for the error reply.
func msgpackCommandID(b []byte) *int64 {
	r := mpReader{b: b}
	n, err := r.container("command", mpMap)
	if err != nil {
		return nil
	}
	var id *int64
	for ; n > 0; n-- {
		key, err := r.head()
		if err != nil || key.kind != mpStr {
			return nil
		}
		k, err := r.fixed(int(key.u))
		if err != nil {
			return nil
		}
		if string(k) != "id" {
			if r.skip(1) != nil {
				return nil
			}
			continue
		}
		v, ok, err := r.int64("id")
		if err != nil {
			return nil
		}
		id = nil
		if ok {
			id = &v
		}
	}
	return id
}

// decodeMsgpackCommand decodes validated bytes into a zero cmd.
func decodeMsgpackCommand(b []byte, cmd *proto.Command) error {
	r := mpReader{b: b}
	n, err := r.container("command", mpMap)
	if err != nil {
		return err
	}
	for ; n > 0; n-- {
		key, err := r.head()
		if err != nil {
			return err
		}
		if key.kind != mpStr {
			return r.errorf("map key: want str, got %s", key.kind)
		}
		k, err := r.fixed(int(key.u))
		if err != nil {
			return err
		}
		if err := decodeCommandField(&r, k, cmd); err != nil {
			return err
		}
	}
	return nil
}

// decodeCommandField decodes the value of key into cmd, or skips it when
// the key is unknown. A nil value leaves the field unset, as JSON null does.
func decodeCommandField(r *mpReader, key []byte, cmd *proto.Command) error {
	// Switching on string(key) does not allocate; field names in errors
	// are constants.
	switch string(key) {
	case "op":
		s, err := r.str("op")
		if err != nil {
			return err
		}
		cmd.Op = internOp(s)
	case "id":
		v, ok, err := r.int64("id")
		if err != nil {
			return err
		}
		if ok {
			cmd.ID = &v
		}
	case "throttle_ms":
		v, ok, err := r.int64("throttle_ms")
		if err != nil {
			return err
		}
		if ok {
			cmd.ThrottleMS = &v
		}
	case "snapshot":
		v, ok, err := r.bool("snapshot")
		if err != nil {
			return err
		}
		if ok {
			cmd.Snapshot = &v
		}
	case "token":
		s, err := r.str("token")
		if err != nil {
			return err
		}
		cmd.Token = string(s)
	case "channels":
		n, err := r.container("channels", mpArray)
		if err != nil || n < 0 {
			return err
		}
		// n <= len(b): each element takes at least one byte.
		chans := make([]string, 0, n)
		for ; n > 0; n-- {
			s, err := r.str("channels element")
			if err != nil {
				return err
			}
			chans = append(chans, string(s))
		}
		cmd.Channels = chans
	case "since":
		n, err := r.container("since", mpMap)
		if err != nil || n < 0 {
			return err
		}
		// No size hint: duplicate keys must not buy a large map.
		since := make(map[string]uint64)
		for ; n > 0; n-- {
			k, err := r.head()
			if err != nil {
				return err
			}
			if k.kind != mpStr {
				return r.errorf("since key: want str, got %s", k.kind)
			}
			name, err := r.fixed(int(k.u))
			if err != nil {
				return err
			}
			seq, err := r.uint64("since value")
			if err != nil {
				return err
			}
			since[string(name)] = seq
		}
		cmd.Since = since
	default:
		return r.skip(1)
	}
	return nil
}

// internOp returns the constant for a known op, so that decoding one does
// not allocate; other ops are copied.
func internOp(s []byte) string {
	switch string(s) {
	case proto.OpSubscribe:
		return proto.OpSubscribe
	case proto.OpUnsubscribe:
		return proto.OpUnsubscribe
	case proto.OpAuth:
		return proto.OpAuth
	case proto.OpPing:
		return proto.OpPing
	}
	return string(s)
}
