package codec

import (
	"encoding/binary"
	"fmt"
	"math"
)

// mpKind is the kind of a msgpack value as the reader reports it.
type mpKind uint8

const (
	mpNil   mpKind = iota + 1
	mpBool         // head.u is 1 for true
	mpUint         // any integer >= 0, whatever its encoding; value in head.u
	mpNeg          // any integer < 0; value in head.i
	mpFloat        // float32 or float64 (value not decoded)
	mpStr          // head.u bytes follow
	mpBin          // head.u bytes follow
	mpArray        // head.u elements follow
	mpMap          // head.u key/value pairs follow
)

func (k mpKind) String() string {
	switch k {
	case mpNil:
		return "nil"
	case mpBool:
		return "bool"
	case mpUint, mpNeg:
		return "int"
	case mpFloat:
		return "float"
	case mpStr:
		return "str"
	case mpBin:
		return "bin"
	case mpArray:
		return "array"
	case mpMap:
		return "map"
	}
	return "invalid"
}

// mpHead is the header of one msgpack value.
type mpHead struct {
	kind mpKind
	u    uint64
	i    int64
}

// mpReader reads raw msgpack from b without trusting it: every length and
// count it returns fits in the bytes that remain (an array element needs at
// least one byte, a map entry two), and extension types are refused. It
// never panics and allocates only for error values.
type mpReader struct {
	b []byte
	i int // offset of the next unread byte
}

func (r *mpReader) rem() uint64 { return uint64(len(r.b) - r.i) }

func (r *mpReader) errorf(format string, args ...any) error {
	return fmt.Errorf("%w: msgpack: "+format+" at offset %d", append(append([]any{ErrMalformed}, args...), r.i)...)
}

// fixed returns the next n bytes.
func (r *mpReader) fixed(n int) ([]byte, error) {
	if len(r.b)-r.i < n {
		return nil, r.errorf("truncated")
	}
	p := r.b[r.i : r.i+n]
	r.i += n
	return p, nil
}

// uintN reads a big-endian unsigned integer of n = 1, 2, 4 or 8 bytes.
func (r *mpReader) uintN(n int) (uint64, error) {
	p, err := r.fixed(n)
	if err != nil {
		return 0, err
	}
	switch n {
	case 1:
		return uint64(p[0]), nil
	case 2:
		return uint64(binary.BigEndian.Uint16(p)), nil
	case 4:
		return uint64(binary.BigEndian.Uint32(p)), nil
	}
	return binary.BigEndian.Uint64(p), nil
}

// intN reads a big-endian two's complement integer of n bytes.
func (r *mpReader) intN(n int) (mpHead, error) {
	u, err := r.uintN(n)
	if err != nil {
		return mpHead{}, err
	}
	var v int64
	switch n {
	case 1:
		v = int64(int8(u))
	case 2:
		v = int64(int16(u))
	case 4:
		v = int64(int32(u))
	default:
		v = int64(u)
	}
	if v < 0 {
		return mpHead{kind: mpNeg, i: v}, nil
	}
	return mpHead{kind: mpUint, u: uint64(v)}, nil
}

// sized completes the head of a str, bin, array or map whose length is in
// the next n bytes (n = 0: already known as u) and checks it against what
// remains.
func (r *mpReader) sized(kind mpKind, n int, u uint64) (mpHead, error) {
	if n > 0 {
		var err error
		if u, err = r.uintN(n); err != nil {
			return mpHead{}, err
		}
	}
	limit := r.rem()
	if kind == mpMap {
		limit /= 2
	}
	if u > limit {
		return mpHead{}, r.errorf("%s of length %d exceeds the %d bytes left", kind, u, r.rem())
	}
	return mpHead{kind: kind, u: u}, nil
}

// head reads the header of the next value. For str and bin the caller then
// takes head.u bytes with fixed; for arrays and maps it reads the elements.
func (r *mpReader) head() (mpHead, error) {
	if r.i >= len(r.b) {
		return mpHead{}, r.errorf("truncated")
	}
	c := r.b[r.i]
	r.i++
	switch {
	case c <= 0x7f:
		return mpHead{kind: mpUint, u: uint64(c)}, nil
	case c >= 0xe0:
		return mpHead{kind: mpNeg, i: int64(int8(c))}, nil
	case c <= 0x8f:
		return r.sized(mpMap, 0, uint64(c&0x0f))
	case c <= 0x9f:
		return r.sized(mpArray, 0, uint64(c&0x0f))
	case c <= 0xbf:
		return r.sized(mpStr, 0, uint64(c&0x1f))
	}
	switch c {
	case 0xc0:
		return mpHead{kind: mpNil}, nil
	case 0xc2:
		return mpHead{kind: mpBool}, nil
	case 0xc3:
		return mpHead{kind: mpBool, u: 1}, nil
	case 0xc4, 0xc5, 0xc6:
		return r.sized(mpBin, 1<<(c-0xc4), 0)
	case 0xca, 0xcb:
		if _, err := r.fixed(4 << (c - 0xca)); err != nil {
			return mpHead{}, err
		}
		return mpHead{kind: mpFloat}, nil
	case 0xcc, 0xcd, 0xce, 0xcf:
		u, err := r.uintN(1 << (c - 0xcc))
		return mpHead{kind: mpUint, u: u}, err
	case 0xd0, 0xd1, 0xd2, 0xd3:
		return r.intN(1 << (c - 0xd0))
	case 0xd9, 0xda, 0xdb:
		return r.sized(mpStr, 1<<(c-0xd9), 0)
	case 0xdc, 0xdd:
		return r.sized(mpArray, 2<<(c-0xdc), 0)
	case 0xde, 0xdf:
		return r.sized(mpMap, 2<<(c-0xde), 0)
	case 0xc1:
		r.i--
		return mpHead{}, r.errorf("reserved code 0xc1")
	}
	// 0xc7-0xc9 ext 8/16/32, 0xd4-0xd8 fixext (timestamps among them).
	r.i--
	return mpHead{}, r.errorf("extension type 0x%02x not allowed", c)
}

// skip reads past one value whose container nests depth deep (the top-level
// value has depth 0), refusing nesting beyond maxDepth. Its running time is
// linear in the bytes it reads.
func (r *mpReader) skip(depth int) error {
	h, err := r.head()
	if err != nil {
		return err
	}
	return r.skipBody(h, depth)
}

// skipBody reads past the body of a value whose head was just read.
func (r *mpReader) skipBody(h mpHead, depth int) error {
	switch h.kind {
	case mpStr, mpBin:
		_, err := r.fixed(int(h.u))
		return err
	case mpArray, mpMap:
		if depth >= maxDepth {
			return r.errorf("nested deeper than %d", maxDepth)
		}
		n := h.u
		if h.kind == mpMap {
			n *= 2
		}
		for ; n > 0; n-- {
			if err := r.skip(depth + 1); err != nil {
				return err
			}
		}
	}
	return nil
}

// validateMsgpack checks that b holds exactly one msgpack map, nested at
// most maxDepth deep, with no extension types and every length within b.
// Only bytes that pass may reach the msgpack library, whose decoder trusts
// declared lengths.
func validateMsgpack(b []byte) error {
	r := mpReader{b: b}
	if len(b) == 0 {
		return r.errorf("empty message")
	}
	if c := b[0]; !(c >= 0x80 && c <= 0x8f) && c != 0xde && c != 0xdf {
		return r.errorf("top-level value is not a map")
	}
	if err := r.skip(0); err != nil {
		return err
	}
	if r.i != len(b) {
		return r.errorf("%d trailing bytes", len(b)-r.i)
	}
	return nil
}

// str reads a str value (nil reads as ""), returning its bytes, which alias
// the input.
func (r *mpReader) str(field string) ([]byte, error) {
	h, err := r.head()
	if err != nil {
		return nil, err
	}
	switch h.kind {
	case mpNil:
		return nil, nil
	case mpStr:
		return r.fixed(int(h.u))
	}
	return nil, r.errorf("%s: want str, got %s", field, h.kind)
}

// int64 reads an integer that fits in int64; ok is false for nil.
func (r *mpReader) int64(field string) (v int64, ok bool, err error) {
	h, err := r.head()
	if err != nil {
		return 0, false, err
	}
	switch h.kind {
	case mpNil:
		return 0, false, nil
	case mpNeg:
		return h.i, true, nil
	case mpUint:
		if h.u <= math.MaxInt64 {
			return int64(h.u), true, nil
		}
		return 0, false, r.errorf("%s: %d overflows int64", field, h.u)
	}
	return 0, false, r.errorf("%s: want int, got %s", field, h.kind)
}

// uint64 reads a non-negative integer; nil reads as 0.
func (r *mpReader) uint64(field string) (uint64, error) {
	h, err := r.head()
	if err != nil {
		return 0, err
	}
	switch h.kind {
	case mpNil:
		return 0, nil
	case mpUint:
		return h.u, nil
	case mpNeg:
		return 0, r.errorf("%s: negative %d", field, h.i)
	}
	return 0, r.errorf("%s: want uint, got %s", field, h.kind)
}

// bool reads a bool; ok is false for nil.
func (r *mpReader) bool(field string) (v, ok bool, err error) {
	h, err := r.head()
	if err != nil {
		return false, false, err
	}
	switch h.kind {
	case mpNil:
		return false, false, nil
	case mpBool:
		return h.u == 1, true, nil
	}
	return false, false, r.errorf("%s: want bool, got %s", field, h.kind)
}

// container reads the head of an array or map (want); n is -1 for nil.
func (r *mpReader) container(field string, want mpKind) (int, error) {
	h, err := r.head()
	if err != nil {
		return 0, err
	}
	switch h.kind {
	case mpNil:
		return -1, nil
	case want:
		return int(h.u), nil // h.u <= len(r.b)
	}
	return 0, r.errorf("%s: want %s, got %s", field, want, h.kind)
}
