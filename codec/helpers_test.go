package codec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/tickgate/tickgate/internal/codectest"
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

// encodeFor turns JSON text into the bytes the codec would receive
// (codectest.Encode).
func encodeFor(t testing.TB, c Codec, s string) []byte {
	t.Helper()
	return codectest.Encode(t, c.Binary(), s)
}

var (
	allocBytes = codectest.AllocBytes
	mustEqual  = codectest.MustEqual
)

func ptr[T any](v T) *T { return &v }
