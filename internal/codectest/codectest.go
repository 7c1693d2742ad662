// Package codectest holds what the codec and feed tests share: test
// tables written as JSON text and turned into either codec's bytes, an
// allocation counter, a deep-equality check, and the market data both
// encode and decode (fixtures.go). Tests only.
package codectest

import (
	"bytes"
	"encoding/json"
	"reflect"
	"runtime"
	"strconv"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// Encode turns JSON text into the bytes a codec receives: the text itself
// for a text codec; for a binary one (msgpack), the same map in msgpack,
// integers as integers and other numbers as float64.
func Encode(t testing.TB, binary bool, s string) []byte {
	t.Helper()
	if !binary {
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

// AllocBytes returns the bytes that one call of f allocates, averaged over
// a few runs after a warm-up.
func AllocBytes(f func()) uint64 {
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

// MustEqual fails t when got and want differ.
func MustEqual(t testing.TB, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %#v\nwant %#v", got, want)
	}
}
