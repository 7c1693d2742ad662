package codec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"runtime"
	"strconv"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// both lists the codecs under test.
var both = []Codec{JSON(), Msgpack()}

// generic decodes one encoded message of c into maps, slices, strings,
// bools, nil and json.Number, whatever the codec, so that the JSON and the
// msgpack encodings of a message compare equal.
func generic(t testing.TB, c Codec, b []byte) any {
	t.Helper()
	v, err := genericErr(c, b)
	if err != nil {
		t.Fatalf("%s: decode %.60x: %v", c.Name(), b, err)
	}
	return v
}

func genericErr(c Codec, b []byte) (any, error) {
	var v any
	if c.Binary() {
		dec := msgpack.NewDecoder(bytes.NewReader(b))
		dec.UseLooseInterfaceDecoding(true)
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		if _, err := dec.DecodeRaw(); err == nil {
			return nil, fmt.Errorf("trailing bytes after the first value")
		}
	} else {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		if dec.More() {
			return nil, fmt.Errorf("trailing bytes after the first value")
		}
	}
	return canon(v), nil
}

// fromJSON parses JSON text into the generic form.
func fromJSON(t testing.TB, s string) any {
	t.Helper()
	return generic(t, JSON(), []byte(s))
}

// canon maps numbers to json.Number and msgpack's map and slice types to
// JSON's.
func canon(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = canon(e)
		}
		return m
	case []any:
		s := make([]any, len(x))
		for i, e := range x {
			s[i] = canon(e)
		}
		return s
	case int64:
		return json.Number(strconv.FormatInt(x, 10))
	case uint64:
		return json.Number(strconv.FormatUint(x, 10))
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return json.Number(strconv.FormatInt(int64(x), 10))
		}
		return json.Number(strconv.FormatFloat(x, 'g', -1, 64))
	}
	return v
}

// encodeFor turns JSON text into the bytes the codec would receive: the text
// itself for JSON; for msgpack, the same map in msgpack (integers as
// integers, other numbers as float64).
func encodeFor(t testing.TB, c Codec, s string) []byte {
	t.Helper()
	if !c.Binary() {
		return []byte(s)
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("bad JSON in test table %.60q: %v", s, err)
	}
	b, err := msgpack.Marshal(numbers(v))
	if err != nil {
		t.Fatalf("msgpack.Marshal(%.60q): %v", s, err)
	}
	return b
}

func numbers(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = numbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = numbers(e)
		}
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		if u, err := strconv.ParseUint(string(x), 10, 64); err == nil {
			return u
		}
		f, _ := x.Float64()
		return f
	}
	return v
}

// allocBytes returns the bytes that one call of f allocates, averaged over
// a few runs after a warm-up.
func allocBytes(f func()) uint64 {
	const runs = 8
	f()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&after)
	return (after.TotalAlloc - before.TotalAlloc) / runs
}

// mustEqual fails when got and want differ.
func mustEqual(t testing.TB, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %#v\nwant %#v", got, want)
	}
}

func ptr[T any](v T) *T { return &v }
