package codec

import (
	"bytes"
	"fmt"
	"reflect"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"

	"github.com/tickgate/tickgate/proto"
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

// msgpackDecoder is a pooled msgpack.Decoder reading from a bytes.Reader.
type msgpackDecoder struct {
	r   bytes.Reader
	dec *msgpack.Decoder
}

// msgpackDecoders recycles msgpack decoders across Decode calls; sync.Pool
// is safe for concurrent use and holds no observable state.
var msgpackDecoders = sync.Pool{New: func() any {
	d := new(msgpackDecoder)
	d.dec = msgpack.NewDecoder(&d.r)
	return d
}}

// Decode implements Codec: b is validated (validateMsgpack) before the
// msgpack library, which trusts declared lengths, sees it.
func (msgpackCodec) Decode(b []byte, v any) error {
	if err := validateMsgpack(b); err != nil {
		return err
	}
	d := msgpackDecoders.Get().(*msgpackDecoder)
	d.r.Reset(b)
	d.dec.Reset(&d.r)
	err := d.dec.Decode(v)
	left := d.r.Len()
	d.r.Reset(nil)
	d.dec.Reset(nil)
	msgpackDecoders.Put(d)
	if err != nil {
		return fmt.Errorf("%w: msgpack: %w", ErrMalformed, err)
	}
	if left != 0 {
		return fmt.Errorf("%w: msgpack: %d bytes not decoded", ErrMalformed, left)
	}
	return nil
}

// DecodeMsgpack implements msgpack.CustomDecoder: Raw keeps the value's
// bytes, nil included.
func (r *Raw) DecodeMsgpack(d *msgpack.Decoder) error {
	b, err := d.DecodeRaw()
	*r = append((*r)[:0], b...)
	return err
}

// The msgpack library decodes a negative integer into an unsigned field
// as its two's complement (-1 as 2^64-1). Integers must fit their field
// (Codec.Decode), so unsigned fields decode through strictUint, which
// takes any integer encoding of a value that fits and refuses the rest.
// The library is this package's alone, and it decodes for this package
// only, so the registration is this package's rule.
func init() {
	msgpack.Register(uint64(0), nil, strictUint(64))
	msgpack.Register(uint32(0), nil, strictUint(32))
	msgpack.Register(uint16(0), nil, strictUint(16))
	msgpack.Register(uint8(0), nil, strictUint(8))
	msgpack.Register(uint(0), nil, strictUint(64))
}

// strictUint decodes an unsigned integer of the given bits into v.
func strictUint(bits int) func(d *msgpack.Decoder, v reflect.Value) error {
	return func(d *msgpack.Decoder, v reflect.Value) error {
		c, err := d.PeekCode()
		if err != nil {
			return err
		}
		var u uint64
		switch {
		case c == msgpcode.Nil:
			if err := d.DecodeNil(); err != nil {
				return err
			}
		case c <= msgpcode.PosFixedNumHigh || c == msgpcode.Uint8 || c == msgpcode.Uint16 ||
			c == msgpcode.Uint32 || c == msgpcode.Uint64:
			if u, err = d.DecodeUint64(); err != nil {
				return err
			}
		case c == msgpcode.Int8 || c == msgpcode.Int16 || c == msgpcode.Int32 || c == msgpcode.Int64:
			i, err := d.DecodeInt64()
			if err != nil {
				return err
			}
			if i < 0 {
				return fmt.Errorf("msgpack: negative integer %d for an unsigned field", i)
			}
			u = uint64(i)
		case msgpcode.IsFixedNum(c):
			return fmt.Errorf("msgpack: negative integer for an unsigned field")
		default:
			return fmt.Errorf("msgpack: invalid code=%x decoding an unsigned integer", c)
		}
		if bits < 64 && u>>bits != 0 {
			return fmt.Errorf("msgpack: integer %d overflows a %d-bit field", u, bits)
		}
		v.SetUint(u)
		return nil
	}
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
		return decodeIntOption(r, "throttle_ms", &cmd.ThrottleMS)
	case "depth":
		return decodeIntOption(r, "depth", &cmd.Depth)
	case "recent":
		return decodeIntOption(r, "recent", &cmd.Recent)
	case "bars":
		return decodeIntOption(r, "bars", &cmd.Bars)
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

// decodeIntOption decodes an integer option into *dst; nil leaves it
// unset.
func decodeIntOption(r *mpReader, field string, dst **int64) error {
	v, ok, err := r.int64(field)
	if err != nil {
		return err
	}
	if ok {
		*dst = &v
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
