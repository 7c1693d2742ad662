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

// jsonFields is a jsonShape: the fields of T, by their json tags (at most
// 64).
type jsonFields[T any] []jsonField[T]

// jsonField is one key of a data shape and the field it fills: exactly one
// of the accessors is set, and says the value's type.
type jsonField[T any] struct {
	key    string
	str    func(*T) *string
	int    func(*T) *int64 // 0 to math.MaxInt64: a sign is declined
	u32    func(*T) *uint32
	flag   func(*T) *bool
	levels func(*T) *[]proto.Level
}

// The fields of a kind's table (kind.json), by the type of their value.

func jsonString[T any](key string, f func(*T) *string) jsonField[T] {
	return jsonField[T]{key: key, str: f}
}

func jsonInt[T any](key string, f func(*T) *int64) jsonField[T] {
	return jsonField[T]{key: key, int: f}
}

func jsonUint32[T any](key string, f func(*T) *uint32) jsonField[T] {
	return jsonField[T]{key: key, u32: f}
}

func jsonBool[T any](key string, f func(*T) *bool) jsonField[T] {
	return jsonField[T]{key: key, flag: f}
}

func jsonLevels[T any](key string, f func(*T) *[]proto.Level) jsonField[T] {
	return jsonField[T]{key: key, levels: f}
}

func (fs jsonFields[T]) fits(data any) bool {
	_, ok := data.(*T)
	return ok
}

// object reads the object at r's position into d: integers and bools at
// once, strings and levels as spans of the payload (jsonReader.keep makes
// them strings). On false, d may hold part of the object.
func (fs jsonFields[T]) object(r *jsonReader, d *T) bool {
	var seen uint64
	return r.token('{') && r.members(func(key []byte) bool {
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
			return r.str(f.str(d))
		case f.int != nil:
			v, ok := r.unsigned(math.MaxInt64)
			*f.int(d) = int64(v)
			return ok
		case f.u32 != nil:
			v, ok := r.unsigned(math.MaxUint32)
			*f.u32(d) = uint32(v)
			return ok
		case f.flag != nil:
			v, ok := r.boolean()
			*f.flag(d) = v
			return ok
		case f.levels != nil:
			return r.levels(f.levels(d))
		}
		return false
	})
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
// not handled: data is then zero, as decodeEnvelope was given it, and the
// slow path decodes the payload.
//
// It reads the payload once, and then copies the message's strings into
// one new string (not the payload: its buffer may be reused once Decode
// returns), of which each string field and level is a slice; levels go
// into exactly sized slices. That string lives as long as any of the
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

// decode is decodeJSONFast for data of type *T. The reader is passed to
// fs's own methods only, so that it stays on the stack.
func (fs jsonFields[T]) decode(payload []byte, data any) (seq uint64, typ string, ok bool) {
	d, ok := data.(*T)
	if !ok {
		return 0, "", false
	}
	r := jsonReader{p: payload}
	if seq, typ, ok = fs.envelope(&r, d); !ok {
		*d = *new(T)
		return 0, "", false
	}
	r.keep()
	return seq, typ, true
}

// jsonReader reads a JSON payload for decodeJSONFast. Owned by one call of
// it.
type jsonReader struct {
	p []byte
	i int // offset of the next byte to read
	// What keep turns into strings: the string fields read, the levels
	// values read, each level's price and size in order, and the bytes of
	// them all.
	strs   [16]strSpan
	nstrs  int
	sides  [2]sideSpan
	nsides int
	lvls   levelSpans
	size   int
}

// levelSpans holds the levels of a message: the first 32 in place (a delta
// has a few), the others on the heap.
type levelSpans struct {
	first [32]levelSpan
	more  []levelSpan
	n     int
}

func (ls *levelSpans) add(l levelSpan) {
	if ls.n < len(ls.first) {
		ls.first[ls.n] = l
	} else {
		ls.more = append(ls.more, l)
	}
	ls.n++
}

func (ls *levelSpans) at(i int) levelSpan {
	if i < len(ls.first) {
		return ls.first[i]
	}
	return ls.more[i-len(ls.first)]
}

// span is the offsets of a string's bytes in the payload.
type span struct{ start, end int }

// strSpan is a string field and its value.
type strSpan struct {
	dst *string
	v   span
}

// levelSpan is a level's price and size.
type levelSpan [2]span

// sideSpan is a levels field and its levels, the n levels from the
// first-th of jsonReader.lvls.
type sideSpan struct {
	dst      *[]proto.Level
	first, n int
}

// keep sets the string fields and levels that were read, each a slice of
// one new string.
func (r *jsonReader) keep() {
	var sb strings.Builder
	sb.Grow(r.size) // never grows again: each value is a slice of one allocation
	str := func(v span) string {
		if v.start == v.end {
			return ""
		}
		n := sb.Len()
		sb.Write(r.p[v.start:v.end])
		return sb.String()[n:]
	}
	for _, f := range r.strs[:r.nstrs] {
		*f.dst = str(f.v)
	}
	for _, side := range r.sides[:r.nsides] {
		ls := make([]proto.Level, side.n) // empty, not nil, as encoding/json makes it
		for j := range ls {
			l := r.lvls.at(side.first + j)
			ls[j] = proto.Level{str(l[0]), str(l[1])}
		}
		*side.dst = ls
	}
}

// envelope reads the envelope {"seq","type","data"}, data into d.
func (fs jsonFields[T]) envelope(r *jsonReader, d *T) (seq uint64, typ string, ok bool) {
	var seen [3]bool // seq, type, data
	once := func(i int) bool {
		ok := !seen[i]
		seen[i] = true
		return ok
	}
	ok = r.token('{') && r.members(func(key []byte) bool {
		switch string(key) {
		case "seq":
			var ok bool
			seq, ok = r.unsigned(math.MaxUint64)
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
			return fs.object(r, d)
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
		return 0, "", false
	}
	return seq, typ, true
}

// feedType reads the envelope's type, one of the proto constants.
func (r *jsonReader) feedType() (string, bool) {
	v, ok := r.raw()
	if !ok {
		return "", false
	}
	for _, t := range [...]string{proto.FeedUpdate, proto.FeedSnapshot, proto.FeedHeartbeat} {
		if string(r.p[v.start:v.end]) == t {
			return t, true
		}
	}
	return "", false
}

// members reads the members of an object after its '{', through its '}':
// member reads the value of each key.
func (r *jsonReader) members(member func(key []byte) bool) bool {
	if r.token('}') {
		return true
	}
	for {
		key, ok := r.raw()
		if !ok || !r.token(':') || !member(r.p[key.start:key.end]) {
			return false
		}
		if !r.token(',') {
			return r.token('}')
		}
	}
}

// levels reads an array of levels, [[price, size], ...], each exactly two
// strings, for dst.
func (r *jsonReader) levels(dst *[]proto.Level) bool {
	if r.nsides == len(r.sides) || !r.token('[') {
		return false
	}
	side := sideSpan{dst: dst, first: r.lvls.n}
	if !r.token(']') {
		for {
			var l levelSpan
			if !r.token('[') || !r.span(&l[0]) || !r.token(',') || !r.span(&l[1]) || !r.token(']') {
				return false
			}
			r.lvls.add(l)
			if !r.token(',') {
				break
			}
		}
		if !r.token(']') {
			return false
		}
	}
	side.n = r.lvls.n - side.first
	r.sides[r.nsides] = side
	r.nsides++
	return true
}

// str reads a string value (see raw) for dst.
func (r *jsonReader) str(dst *string) bool {
	if r.nstrs == len(r.strs) {
		return false
	}
	f := &r.strs[r.nstrs]
	if !r.span(&f.v) {
		return false
	}
	f.dst = dst
	r.nstrs++
	return true
}

// span reads a string value (see raw) into v, and counts its bytes.
func (r *jsonReader) span(v *span) bool {
	var ok bool
	*v, ok = r.raw()
	r.size += v.end - v.start
	return ok
}

// raw reads a string whose bytes are its value: printable ASCII, no
// escape. It returns the offsets of the bytes between the quotes.
func (r *jsonReader) raw() (span, bool) {
	r.space()
	if r.i >= len(r.p) || r.p[r.i] != '"' {
		return span{}, false
	}
	start := r.i + 1
	j := start
	for j < len(r.p) && r.p[j]-0x20 < 0x60 && r.p[j] != '"' && r.p[j] != '\\' {
		j++ // 0x20 to 0x7f, and neither a quote nor a backslash
	}
	if j == len(r.p) || r.p[j] != '"' {
		return span{}, false
	}
	r.i = j + 1
	return span{start, j}, true
}

// unsigned reads an unsigned integer of at most max: digits, no leading zero.
func (r *jsonReader) unsigned(max uint64) (uint64, bool) {
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

// boolean reads true or false.
func (r *jsonReader) boolean() (v, ok bool) {
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

// token reads c when it is the next byte after whitespace.
func (r *jsonReader) token(c byte) bool {
	r.space()
	if r.i < len(r.p) && r.p[r.i] == c {
		r.i++
		return true
	}
	return false
}

// space skips JSON whitespace.
func (r *jsonReader) space() {
	for r.i < len(r.p) && r.p[r.i] <= ' ' && (r.p[r.i] == ' ' || r.p[r.i] == '\t' || r.p[r.i] == '\n' || r.p[r.i] == '\r') {
		r.i++
	}
}

func skipDigits(p []byte, i int) int {
	for i < len(p) && isDigit(p[i]) {
		i++
	}
	return i
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
