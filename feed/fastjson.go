package feed

import (
	"bytes"
	"math"
	"strings"

	"github.com/tickgate/tickgate/proto"
)

// The JSON fast path: a feed payload of the common, well-formed shape is
// read here, without reflection, into the same values encoding/json would
// give; anything else is left to the slow path (decodeEnvelopeSlow), which
// keeps every error and edge case. The fast path never fails: it handles a
// payload or declines it, and it declines whatever it does not fully
// understand:
//
//   - a string with an escape, a control byte or a byte above 0x7f;
//   - a key that encoding/json would match to a field without being its
//     json tag exactly (another case), and a known key twice;
//   - an integer with a sign, fraction, exponent or leading zero, or out of
//     its field's range;
//   - null anywhere but as the envelope's data, a value of the wrong type, a
//     level that is not two strings, and an object or array under a key the
//     shape does not know;
//   - a type other than snapshot, update and heartbeat, a missing type, and
//     anything after the top-level object but whitespace.
//
// What it accepts, encoding/json accepts too and decodes to deeply equal
// values: FuzzJSONFastPath and TestJSONFastPathEdges compare the two.

// jsonShape is how the fast path reads one kind's data (kind.json): the
// keys of its data shape, each with the field it fills.
type jsonShape interface {
	// fits reports whether data is a pointer to the shape's type.
	fits(data any) bool
	// decode is decodeJSONFast for data of the shape's type.
	decode(payload []byte, data any) (seq uint64, typ string, ok bool)
}

// jsonFields is a jsonShape: the fields of T, by their json tags.
type jsonFields[T any] []jsonField[T]

// jsonField is one key of a data shape and the field it fills: exactly one
// of the accessors is set, and says the value's type.
type jsonField[T any] struct {
	key    string
	str    func(*T) *string
	int    func(*T) *int64 // 0 to math.MaxInt64: a sign is declined
	uint32 func(*T) *uint32
	bool   func(*T) *bool
	levels func(*T) *[]proto.Level
}

func jsonString[T any](key string, f func(*T) *string) jsonField[T] {
	return jsonField[T]{key: key, str: f}
}

func jsonInt[T any](key string, f func(*T) *int64) jsonField[T] {
	return jsonField[T]{key: key, int: f}
}

func jsonUint32[T any](key string, f func(*T) *uint32) jsonField[T] {
	return jsonField[T]{key: key, uint32: f}
}

func jsonBool[T any](key string, f func(*T) *bool) jsonField[T] {
	return jsonField[T]{key: key, bool: f}
}

func jsonLevels[T any](key string, f func(*T) *[]proto.Level) jsonField[T] {
	return jsonField[T]{key: key, levels: f}
}

func (fs jsonFields[T]) fits(data any) bool {
	_, ok := data.(*T)
	return ok
}

// object reads the object at r's position: in r's first pass (d nil) it
// only checks and measures it, in the second it fills d in.
func (fs jsonFields[T]) object(r *jsonReader, d *T) bool {
	var seen uint64
	ok := r.byte('{') && r.members(func(key []byte) bool {
		i := fs.index(key)
		if i < 0 {
			return !fs.folds(key) && r.skipScalar()
		}
		if seen&(1<<i) != 0 {
			return false // encoding/json would take the last, or merge them
		}
		seen |= 1 << i
		f := &fs[i]
		switch {
		case f.str != nil:
			s, ok := r.string()
			if ok && r.fill {
				*f.str(d) = s
			}
			return ok
		case f.int != nil:
			v, ok := r.uint(math.MaxInt64)
			if ok && r.fill {
				*f.int(d) = int64(v)
			}
			return ok
		case f.uint32 != nil:
			v, ok := r.uint(math.MaxUint32)
			if ok && r.fill {
				*f.uint32(d) = uint32(v)
			}
			return ok
		case f.bool != nil:
			v, ok := r.bool()
			if ok && r.fill {
				*f.bool(d) = v
			}
			return ok
		case f.levels != nil:
			ls, ok := r.levels()
			if ok && r.fill {
				*f.levels(d) = ls
			}
			return ok
		}
		return false
	})
	if !ok && d != nil {
		*d = *new(T) // the zero shape decodeEnvelope was given
	}
	return ok
}

// index returns the index of the field whose key is key exactly, or -1.
func (fs jsonFields[T]) index(key []byte) int {
	for i := range fs {
		if string(key) == fs[i].key {
			return i
		}
	}
	return -1
}

// folds reports whether encoding/json would match key to one of the fields
// although it is none of their keys: it differs in case only. (Non-ASCII
// keys, which it may also fold, never reach here.)
func (fs jsonFields[T]) folds(key []byte) bool {
	for i := range fs {
		if bytes.EqualFold(key, []byte(fs[i].key)) {
			return true
		}
	}
	return false
}

// jsonShapeOf returns the fast path's shape of data's type, nil when no
// kind declares one.
func jsonShapeOf(data any) jsonShape {
	for _, k := range kinds {
		if k != nil && k.json != nil && k.json.fits(data) {
			return k.json
		}
	}
	return nil
}

// decodeJSONFast is the fast path of decodeEnvelope for a JSON payload,
// one whose first byte is '{' (see the top of this file). ok false means
// not handled: data is then untouched (zero), and the slow path decodes
// the payload.
//
// It reads the payload twice: the first pass checks it, and measures its
// strings and levels; the second fills data in with exactly sized slices,
// its strings sliced from one new string (a copy: the payload's buffer may
// be reused once Decode returns). That string lives as long as any of the
// message's strings is referenced, in the state or an event.
func decodeJSONFast(payload []byte, data any) (seq uint64, typ string, ok bool) {
	if len(payload) == 0 || payload[0] != '{' {
		return 0, "", false // not JSON to codec.ForFeed
	}
	if shape := jsonShapeOf(data); shape != nil {
		return shape.decode(payload, data)
	}
	return 0, "", false
}

// decode reads the payload in two passes (decodeJSONFast). The reader is
// passed to fs's own methods only, so that it stays on the stack.
func (fs jsonFields[T]) decode(payload []byte, data any) (seq uint64, typ string, ok bool) {
	d, ok := data.(*T)
	if !ok {
		return 0, "", false
	}
	r := jsonReader{p: payload}
	seq, typ, dataAt, ok := fs.envelope(&r)
	if !ok || dataAt < 0 {
		return seq, typ, ok
	}
	r.i, r.fill, r.nlevels = dataAt, true, 0
	r.sb.Grow(r.strs)
	if !fs.object(&r, d) {
		// Unreachable: the first pass took the same bytes. Were it
		// reached, data is zero again and the slow path decodes.
		return 0, "", false
	}
	return seq, typ, true
}

// jsonReader reads a JSON payload for decodeJSONFast. Owned by one call of
// it.
type jsonReader struct {
	p    []byte
	i    int  // offset of the next byte to read
	fill bool // second pass: values are kept and written
	// First pass: bytes of the strings kept, and the levels of each levels
	// value in order; the second pass takes them in the same order.
	strs    int
	levelsN [2]int
	nlevels int
	sb      strings.Builder // second pass: the message's strings
}

// envelope reads the envelope {"seq","type","data"} in the first pass:
// dataAt is the offset of data's object, -1 when data is null or missing.
func (fs jsonFields[T]) envelope(r *jsonReader) (seq uint64, typ string, dataAt int, ok bool) {
	dataAt = -1
	var seen [3]bool // seq, type, data
	once := func(i int) bool {
		ok := !seen[i]
		seen[i] = true
		return ok
	}
	ok = r.byte('{') && r.members(func(key []byte) bool {
		switch string(key) {
		case "seq":
			var ok bool
			seq, ok = r.uint(math.MaxUint64)
			return once(0) && ok
		case "type":
			var ok bool
			typ, ok = r.feedType()
			return once(1) && ok
		case "data":
			if !once(2) {
				return false
			}
			if r.literal("null") {
				return true // data left as it is, as encoding/json does
			}
			r.space()
			dataAt = r.i
			return fs.object(r, nil)
		}
		for _, k := range [...]string{"seq", "type", "data"} {
			if bytes.EqualFold(key, []byte(k)) {
				return false // encoding/json folds it onto k
			}
		}
		return r.skipScalar()
	})
	r.space()
	if !ok || !seen[1] || r.i != len(r.p) {
		return 0, "", -1, false
	}
	return seq, typ, dataAt, true
}

// feedType reads the envelope's type, one of the proto constants.
func (r *jsonReader) feedType() (string, bool) {
	b, ok := r.raw()
	if !ok {
		return "", false
	}
	for _, t := range [...]string{proto.FeedUpdate, proto.FeedSnapshot, proto.FeedHeartbeat} {
		if string(b) == t {
			return t, true
		}
	}
	return "", false
}

// members reads the members of an object after its '{', through its '}':
// member reads the value of each key.
func (r *jsonReader) members(member func(key []byte) bool) bool {
	if r.byte('}') {
		return true
	}
	for {
		key, ok := r.raw()
		if !ok || !r.byte(':') || !member(key) {
			return false
		}
		if !r.byte(',') {
			return r.byte('}')
		}
	}
}

// levels reads an array of levels, [[price, size], ...], each exactly two
// strings. An empty array is an empty slice, not nil, as encoding/json
// makes it.
func (r *jsonReader) levels() ([]proto.Level, bool) {
	if !r.byte('[') {
		return nil, false
	}
	var ls []proto.Level
	if r.fill {
		ls = make([]proto.Level, 0, r.levelsN[r.nlevels])
	} else if r.nlevels == len(r.levelsN) {
		return nil, false
	}
	n := 0
	if !r.byte(']') {
		for {
			if !r.byte('[') {
				return nil, false
			}
			price, ok := r.string()
			if !ok || !r.byte(',') {
				return nil, false
			}
			size, ok := r.string()
			if !ok || !r.byte(']') {
				return nil, false
			}
			if r.fill {
				ls = append(ls, proto.Level{price, size})
			}
			n++
			if !r.byte(',') {
				break
			}
		}
		if !r.byte(']') {
			return nil, false
		}
	}
	r.levelsN[r.nlevels] = n
	r.nlevels++
	return ls, true
}

// string reads a string value to keep (see raw): in the second pass, a
// slice of the message's one string.
func (r *jsonReader) string() (string, bool) {
	b, ok := r.raw()
	if !ok || len(b) == 0 {
		return "", ok
	}
	if !r.fill {
		r.strs += len(b)
		return "", true
	}
	n := r.sb.Len()
	r.sb.Write(b)
	// Grown to the first pass's total, sb never moves: each value is a
	// slice of one allocation, which later writes only extend.
	return r.sb.String()[n:], true
}

// raw reads a string whose bytes are its value: printable ASCII, no
// escape. It returns the bytes between the quotes, which alias the
// payload.
func (r *jsonReader) raw() ([]byte, bool) {
	r.space()
	if r.i >= len(r.p) || r.p[r.i] != '"' {
		return nil, false
	}
	start := r.i + 1
	for j := start; j < len(r.p); j++ {
		switch c := r.p[j]; {
		case c == '"':
			r.i = j + 1
			return r.p[start:j], true
		case c < 0x20 || c >= 0x80 || c == '\\':
			return nil, false
		}
	}
	return nil, false
}

// uint reads an unsigned integer of at most max: digits, no leading zero.
func (r *jsonReader) uint(max uint64) (uint64, bool) {
	r.space()
	start := r.i
	var v uint64
	for ; r.i < len(r.p) && isDigit(r.p[r.i]); r.i++ {
		d := uint64(r.p[r.i] - '0')
		if v > (max-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	n := r.i - start
	if n == 0 || n > 1 && r.p[start] == '0' {
		return 0, false
	}
	// What follows must end the value (',', '}', ']' or space); the
	// caller checks it, declining a fraction or an exponent.
	return v, true
}

// bool reads true or false.
func (r *jsonReader) bool() (v, ok bool) {
	if r.literal("true") {
		return true, true
	}
	return false, r.literal("false")
}

// skipScalar skips the value of a key the shape does not know: a string
// (as raw reads it), a number, true, false or null. An object or an array
// is declined.
func (r *jsonReader) skipScalar() bool {
	r.space()
	if r.i >= len(r.p) {
		return false
	}
	switch c := r.p[r.i]; {
	case c == '"':
		_, ok := r.raw()
		return ok
	case c == '-' || isDigit(c):
		return r.skipNumber()
	}
	return r.literal("true") || r.literal("false") || r.literal("null")
}

// skipNumber skips a JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (r *jsonReader) skipNumber() bool {
	p, i := r.p, r.i
	if i < len(p) && p[i] == '-' {
		i++
	}
	switch {
	case i < len(p) && p[i] == '0':
		i++
	case i < len(p) && isDigit(p[i]):
		i = skipDigits(p, i)
	default:
		return false
	}
	if i < len(p) && p[i] == '.' {
		if j := skipDigits(p, i+1); j > i+1 {
			i = j
		} else {
			return false
		}
	}
	if i < len(p) && (p[i] == 'e' || p[i] == 'E') {
		i++
		if i < len(p) && (p[i] == '+' || p[i] == '-') {
			i++
		}
		j := skipDigits(p, i)
		if j == i {
			return false
		}
		i = j
	}
	r.i = i
	return true
}

// literal reads the word w (true, false, null) when it comes next.
func (r *jsonReader) literal(w string) bool {
	r.space()
	if !bytes.HasPrefix(r.p[r.i:], []byte(w)) {
		return false
	}
	r.i += len(w)
	return true
}

// byte reads c when it is the next byte after whitespace.
func (r *jsonReader) byte(c byte) bool {
	r.space()
	if r.i < len(r.p) && r.p[r.i] == c {
		r.i++
		return true
	}
	return false
}

// space skips JSON whitespace.
func (r *jsonReader) space() {
	for r.i < len(r.p) {
		switch r.p[r.i] {
		case ' ', '\t', '\n', '\r':
			r.i++
		default:
			return
		}
	}
}

func skipDigits(p []byte, i int) int {
	for i < len(p) && isDigit(p[i]) {
		i++
	}
	return i
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
