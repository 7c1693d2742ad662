package codec

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/tickgate/tickgate/proto"
)

func TestDecodeCommand(t *testing.T) {
	// Each input is JSON text; the msgpack codec gets the same map in
	// msgpack (see encodeFor).
	tests := map[string]struct {
		in       string
		want     proto.Command
		wantErr  bool
		wantID   *int64 // on error: the id kept for the error reply
		jsonOnly bool   // too deep for encodeFor; TestDecodeCommandHostile has msgpack twins
	}{
		"id kept when a field has the wrong type": {in: `{"op":"subscribe","id":3,"throttle_ms":1.5}`, wantErr: true, wantID: ptr[int64](3)},
		"id kept when a later field is wrong":     {in: `{"id":-7,"op":"subscribe","since":{"trade.X":-1}}`, wantErr: true, wantID: ptr[int64](-7)},
		"id of the wrong type is not kept":        {in: `{"op":"ping","id":"x"}`, wantErr: true},
		"fractional id is not kept":               {in: `{"op":"ping","id":1.5}`, wantErr: true},
		"ID in other case is not the id":          {in: `{"op":5,"ID":4}`, wantErr: true},
		"subscribe": {
			in: `{"op":"subscribe","id":1,"channels":["ticker.BTC-USD","book.ETH-USD"],"throttle_ms":250,"snapshot":true}`,
			want: proto.Command{Op: proto.OpSubscribe, ID: ptr[int64](1), Channels: []string{"ticker.BTC-USD", "book.ETH-USD"},
				ThrottleMS: ptr[int64](250), Snapshot: ptr(true)},
		},
		"subscribe no snapshot": {
			in:   `{"op":"subscribe","id":5,"channels":["book.X"],"snapshot":false}`,
			want: proto.Command{Op: proto.OpSubscribe, ID: ptr[int64](5), Channels: []string{"book.X"}, Snapshot: ptr(false)},
		},
		"resume": {
			in: `{"op":"subscribe","id":9,"channels":["trade.BTC-USD","book.ETH-USD"],"since":{"trade.BTC-USD":1234,"book.ETH-USD":88}}`,
			want: proto.Command{Op: proto.OpSubscribe, ID: ptr[int64](9), Channels: []string{"trade.BTC-USD", "book.ETH-USD"},
				Since: map[string]uint64{"trade.BTC-USD": 1234, "book.ETH-USD": 88}},
		},
		"since max uint64": {
			in:   `{"op":"subscribe","since":{"trade.X":18446744073709551615}}`,
			want: proto.Command{Op: proto.OpSubscribe, Since: map[string]uint64{"trade.X": 18446744073709551615}},
		},
		"unsubscribe": {
			in:   `{"op":"unsubscribe","id":2,"channels":["ticker.BTC-USD"]}`,
			want: proto.Command{Op: proto.OpUnsubscribe, ID: ptr[int64](2), Channels: []string{"ticker.BTC-USD"}},
		},
		"empty channels": {
			in:   `{"op":"unsubscribe","channels":[]}`,
			want: proto.Command{Op: proto.OpUnsubscribe, Channels: []string{}},
		},
		"auth":         {in: `{"op":"auth","id":3,"token":"eyJ.a.b"}`, want: proto.Command{Op: proto.OpAuth, ID: ptr[int64](3), Token: "eyJ.a.b"}},
		"ping":         {in: `{"op":"ping","id":4}`, want: proto.Command{Op: proto.OpPing, ID: ptr[int64](4)}},
		"ping no id":   {in: `{"op":"ping"}`, want: proto.Command{Op: proto.OpPing}},
		"null id":      {in: `{"op":"ping","id":null}`, want: proto.Command{Op: proto.OpPing}},
		"null fields":  {in: `{"op":null,"channels":null,"since":null,"snapshot":null,"throttle_ms":null,"token":null}`},
		"negative id":  {in: `{"op":"ping","id":-7}`, want: proto.Command{Op: proto.OpPing, ID: ptr[int64](-7)}},
		"max id":       {in: `{"op":"ping","id":9223372036854775807}`, want: proto.Command{Op: proto.OpPing, ID: ptr[int64](9223372036854775807)}},
		"min id":       {in: `{"op":"ping","id":-9223372036854775808}`, want: proto.Command{Op: proto.OpPing, ID: ptr[int64](-9223372036854775808)}},
		"unknown op":   {in: `{"op":"dance","id":1}`, want: proto.Command{Op: "dance", ID: ptr[int64](1)}},
		"empty map":    {in: `{}`},
		"unknown keys": {in: `{"op":"ping","id":4,"x":{"y":[1,2,{"z":null}],"w":1.5},"v":"s","u":true}`, want: proto.Command{Op: proto.OpPing, ID: ptr[int64](4)}},
		"depth 32 ok":  {in: `{"x":` + strings.Repeat("[", 31) + strings.Repeat("]", 31) + `,"op":"ping"}`, want: proto.Command{Op: proto.OpPing}},
		"keys match exactly": {in: `{"OP":"auth","Op":"x","op":"ping","ID":1,"Channels":["a"],"\u0074oken":"t","since":null}`,
			want: proto.Command{Op: proto.OpPing, Token: "t"}},
		"folded key ignored": {in: `{"CHANNELS":["a"],"\u212aey":1,"to\u212aen":"x"}`},
		"kelvin key ignored": {in: "{\"to\u212aen\":\"x\",\"op\":\"ping\"}", want: proto.Command{Op: proto.OpPing}},
		"duplicate key":      {in: `{"op":"ping","op":"auth"}`, want: proto.Command{Op: proto.OpAuth}},

		"channels number":     {in: `{"op":"subscribe","channels":5}`, wantErr: true},
		"channels of numbers": {in: `{"op":"subscribe","channels":[1]}`, wantErr: true},
		"channels map":        {in: `{"op":"subscribe","channels":{"a":"b"}}`, wantErr: true},
		"id string":           {in: `{"op":"ping","id":"x"}`, wantErr: true},
		"id float":            {in: `{"op":"ping","id":1.5}`, wantErr: true},
		"id bool":             {in: `{"op":"ping","id":true}`, wantErr: true},
		"id overflow":         {in: `{"op":"ping","id":9223372036854775808}`, wantErr: true},
		"id max uint64":       {in: `{"op":"ping","id":18446744073709551615}`, wantErr: true},
		"throttle string":     {in: `{"op":"subscribe","throttle_ms":"250"}`, wantErr: true},
		"snapshot string":     {in: `{"op":"subscribe","snapshot":"yes"}`, wantErr: true},
		"snapshot number":     {in: `{"op":"subscribe","snapshot":1}`, wantErr: true},
		"since negative":      {in: `{"op":"subscribe","since":{"a":-1}}`, wantErr: true},
		"since float":         {in: `{"op":"subscribe","since":{"a":1.5}}`, wantErr: true},
		"since list":          {in: `{"op":"subscribe","since":[1]}`, wantErr: true},
		"since string value":  {in: `{"op":"subscribe","since":{"a":"1"}}`, wantErr: true},
		"op number":           {in: `{"op":5}`, wantErr: true},
		"op list":             {in: `{"op":["ping"]}`, wantErr: true},
		"token number":        {in: `{"op":"auth","token":5}`, wantErr: true},
		"top-level array":     {in: `[{"op":"ping"}]`, wantErr: true},
		"top-level string":    {in: `"ping"`, wantErr: true},
		"top-level number":    {in: `5`, wantErr: true},
		"top-level null":      {in: `null`, wantErr: true},
		"depth 33":            {in: `{"x":` + strings.Repeat("[", 32) + strings.Repeat("]", 32) + `}`, wantErr: true},
		"nested 10000":        {in: `{"x":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}`, wantErr: true, jsonOnly: true},
		"nested maps 10000":   {in: strings.Repeat(`{"a":`, 10000) + `1` + strings.Repeat(`}`, 10000), wantErr: true, jsonOnly: true},
	}
	for name, tc := range tests {
		for _, c := range both {
			if tc.jsonOnly && c.Binary() {
				continue
			}
			t.Run(name+"/"+c.Name(), func(t *testing.T) {
				in := encodeFor(t, c, tc.in)
				cmd := proto.Command{Op: "stale", Token: "stale"}
				err := c.DecodeCommand(in, &cmd)
				if tc.wantErr {
					if !errors.Is(err, ErrMalformed) {
						t.Fatalf("DecodeCommand(%x) = %v, want ErrMalformed", in, err)
					}
					mustEqual(t, cmd, proto.Command{ID: tc.wantID})
					return
				}
				if err != nil {
					t.Fatalf("DecodeCommand(%x): %v", in, err)
				}
				mustEqual(t, cmd, tc.want)
			})
		}
	}
}

// TestDecodeCommandHostile feeds raw bytes that no encoder would write and
// checks that each fails with ErrMalformed, fast and with bounded memory.
func TestDecodeCommandHostile(t *testing.T) {
	const maxAlloc = 64 << 10
	mp := func(h string) []byte {
		b, err := hex.DecodeString(strings.ReplaceAll(h, " ", ""))
		if err != nil {
			panic(err)
		}
		return b
	}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	rep := func(h string, n int) []byte { return bytes.Repeat(mp(h), n) }
	opKey := mp("a2 6f 70") // "op"
	tests := map[string]struct {
		codec Codec
		in    []byte
	}{
		"array32 4G":                  {Msgpack(), mp("dd ff ff ff ff")},
		"array16 64K":                 {Msgpack(), mp("dc ff ff")},
		"map32 4G":                    {Msgpack(), mp("df ff ff ff ff")},
		"map16 64K":                   {Msgpack(), mp("de ff ff")},
		"str32 4G":                    {Msgpack(), mp("db ff ff ff ff")},
		"bin32 4G":                    {Msgpack(), mp("c6 ff ff ff ff")},
		"ext32 4G":                    {Msgpack(), mp("c9 ff ff ff ff 01")},
		"op array32 4G":               {Msgpack(), cat(mp("81"), opKey, mp("dd ff ff ff ff"))},
		"op str32 4G":                 {Msgpack(), cat(mp("81"), opKey, mp("db ff ff ff ff"))},
		"channels array32 4G":         {Msgpack(), cat(mp("81 a8"), []byte("channels"), mp("dd ff ff ff ff"))},
		"since map32 4G":              {Msgpack(), cat(mp("81 a5"), []byte("since"), mp("df ff ff ff ff"))},
		"unknown key map32 4G":        {Msgpack(), cat(mp("81 a1 78 df ff ff ff ff"))},
		"top-level map32 small":       {Msgpack(), cat(mp("df 00 00 00 02"), opKey, mp("a4"), []byte("ping"))},
		"timestamp top level":         {Msgpack(), mp("d6 ff 00 00 00 00")},
		"timestamp value":             {Msgpack(), mp("81 a1 78 d6 ff 00 00 00 00")},
		"fixext1 value":               {Msgpack(), mp("81 a1 78 d4 01 00")},
		"ext8 value":                  {Msgpack(), mp("81 a1 78 c7 01 05 00")},
		"reserved c1":                 {Msgpack(), mp("81 a1 78 c1")},
		"non-string key":              {Msgpack(), mp("81 01 02")},
		"array key":                   {Msgpack(), mp("81 90 02")},
		"trailing byte":               {Msgpack(), cat(mp("81"), opKey, mp("a4"), []byte("ping"), mp("00"))},
		"two maps":                    {Msgpack(), mp("80 80")},
		"truncated key":               {Msgpack(), mp("82 a2 6f")},
		"truncated value":             {Msgpack(), cat(mp("81"), opKey, mp("a4 70 69"))},
		"truncated map":               {Msgpack(), cat(mp("82"), opKey, mp("a4"), []byte("ping"))},
		"truncated uint64":            {Msgpack(), mp("81 a2 69 64 cf 00 00")},
		"empty":                       {Msgpack(), nil},
		"top-level nil":               {Msgpack(), mp("c0")},
		"top-level array":             {Msgpack(), mp("91 80")},
		"nested arrays 10000":         {Msgpack(), rep("91", 10000)},
		"nested arrays 10000 in map":  {Msgpack(), cat(mp("81 a1 78"), rep("91", 10000), mp("c0"))},
		"nested maps 10000":           {Msgpack(), cat(rep("81 a1 78", 10000), mp("c0"))},
		"nested 33":                   {Msgpack(), cat(mp("81 a1 78"), rep("91", 32), mp("c0"))},
		"id float64":                  {Msgpack(), mp("81 a2 69 64 cb 3f f8 00 00 00 00 00 00")},
		"id uint64 overflow":          {Msgpack(), mp("81 a2 69 64 cf 80 00 00 00 00 00 00 00")},
		"since int8 -1":               {Msgpack(), cat(mp("81 a5"), []byte("since"), mp("81 a1 61 d0 ff"))},
		"since int key":               {Msgpack(), cat(mp("81 a5"), []byte("since"), mp("81 01 01"))},
		"channels nested array":       {Msgpack(), cat(mp("81 a8"), []byte("channels"), mp("91 91 a0"))},
		"json empty":                  {JSON(), nil},
		"json spaces":                 {JSON(), []byte(" \n\t ")},
		"json nested arrays 10000":    {JSON(), []byte(strings.Repeat("[", 10000))},
		"json nested in key 10000":    {JSON(), []byte(`{"x":` + strings.Repeat("[", 10000))},
		"json nested objects 10000":   {JSON(), []byte(strings.Repeat(`{"a":`, 10000))},
		"json truncated":              {JSON(), []byte(`{"op":"pi`)},
		"json truncated after key":    {JSON(), []byte(`{"op":`)},
		"json trailing garbage":       {JSON(), []byte(`{"op":"ping"} x`)},
		"json two objects":            {JSON(), []byte(`{"op":"ping"}{"op":"ping"}`)},
		"json unbalanced":             {JSON(), []byte(`{"op":"ping"]`)},
		"json huge number":            {JSON(), []byte(`{"id":` + strings.Repeat("9", 4000) + `}`)},
		"json exponent id":            {JSON(), []byte(`{"id":1e3}`)},
		"json single quotes":          {JSON(), []byte(`{'op':'ping'}`)},
		"json NaN":                    {JSON(), []byte(`{"id":NaN}`)},
		"json bad escape":             {JSON(), []byte(`{"op":"\x"}`)},
		"json msgpack bytes":          {JSON(), mp("dd ff ff ff ff")},
		"msgpack json bytes":          {Msgpack(), []byte(`{"op":"ping"}`)},
		"json unterminated string 1M": {JSON(), []byte(`{"op":"` + strings.Repeat("a", 1<<20))},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var cmd proto.Command
			if err := tc.codec.DecodeCommand(tc.in, &cmd); !errors.Is(err, ErrMalformed) {
				t.Fatalf("DecodeCommand(%.40x) = %v, want ErrMalformed", tc.in, err)
			}
			n := allocBytes(func() { _ = tc.codec.DecodeCommand(tc.in, &cmd) })
			if n >= maxAlloc {
				t.Errorf("DecodeCommand allocated %d bytes, want < %d", n, maxAlloc)
			}
		})
	}
}

// TestDecodeCommandAllocBound checks the "small multiple of len(b)" promise
// on valid inputs built to allocate as much as possible per byte.
func TestDecodeCommandAllocBound(t *testing.T) {
	const factor = 32 // encoding/json grows slices by 1.5x: ~26x for ["","",…]
	n := 20000
	jsonChannels := `{"channels":[` + strings.Repeat(`"",`, n) + `""]}`
	jsonSince := `{"since":{` + strings.Repeat(`"a":1,`, n) + `"b":2}}`
	var mpChannels, mpSince, mpSinceDistinct bytes.Buffer
	mpChannels.Write([]byte{0x81, 0xa8})
	mpChannels.WriteString("channels")
	mpChannels.Write([]byte{0xdc, byte(n >> 8), byte(n)})
	mpChannels.Write(bytes.Repeat([]byte{0xa0}, n))
	mpSince.Write([]byte{0x81, 0xa5})
	mpSince.WriteString("since")
	mpSince.Write([]byte{0xde, byte(n >> 8), byte(n)})
	mpSince.Write(bytes.Repeat([]byte{0xa0, 0x00}, n))
	mpSinceDistinct.Write([]byte{0x81, 0xa5})
	mpSinceDistinct.WriteString("since")
	mpSinceDistinct.Write([]byte{0xde, byte(n >> 8), byte(n)})
	for i := range n {
		mpSinceDistinct.Write([]byte{0xa2, byte('a' + i%26), byte(i / 26), 0x00})
	}
	tests := map[string]struct {
		codec Codec
		in    []byte
	}{
		"json channels":          {JSON(), []byte(jsonChannels)},
		"json since":             {JSON(), []byte(jsonSince)},
		"msgpack channels":       {Msgpack(), mpChannels.Bytes()},
		"msgpack since":          {Msgpack(), mpSince.Bytes()},
		"msgpack since distinct": {Msgpack(), mpSinceDistinct.Bytes()},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var cmd proto.Command
			if err := tc.codec.DecodeCommand(tc.in, &cmd); err != nil {
				t.Fatal(err)
			}
			got := allocBytes(func() { _ = tc.codec.DecodeCommand(tc.in, &cmd) })
			if limit := uint64(factor * len(tc.in)); got > limit {
				t.Errorf("allocated %d bytes for %d input bytes (%.1fx), want <= %dx",
					got, len(tc.in), float64(got)/float64(len(tc.in)), factor)
			} else {
				t.Logf("allocated %.1fx the input", float64(got)/float64(len(tc.in)))
			}
		})
	}
}

func TestDecodeCommandZeroAllocPing(t *testing.T) {
	in := []byte{0x82, 0xa2, 'o', 'p', 0xa4, 'p', 'i', 'n', 'g', 0xa2, 'i', 'd', 0x04}
	var cmd proto.Command
	// The one allocation is the *int64 of ID.
	if n := testing.AllocsPerRun(100, func() { _ = Msgpack().DecodeCommand(in, &cmd) }); n > 1 {
		t.Errorf("msgpack ping allocates %v times, want <= 1", n)
	}
}
