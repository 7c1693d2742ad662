package codec

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/tickgate/tickgate/internal/memtest"
	"github.com/tickgate/tickgate/proto"
	"github.com/vmihailenco/msgpack/v5"
)

// hostileSeeds are raw msgpack inputs that make an unguarded decoder
// allocate gigabytes or recurse without bound.
func hostileSeeds() [][]byte {
	return [][]byte{
		{0xdd, 0xff, 0xff, 0xff, 0xff},
		{0xdc, 0xff, 0xff},
		{0xdf, 0xff, 0xff, 0xff, 0xff},
		{0xde, 0xff, 0xff},
		{0xdb, 0xff, 0xff, 0xff, 0xff},
		{0xc6, 0xff, 0xff, 0xff, 0xff},
		{0xc9, 0xff, 0xff, 0xff, 0xff, 0x01},
		{0xd6, 0xff, 0x00, 0x00, 0x00, 0x00},
		{0x81, 0xa2, 'o', 'p', 0xdd, 0xff, 0xff, 0xff, 0xff},
		{0x81, 0xa4, 'd', 'a', 't', 'a', 0x81, 0xa4, 'b', 'i', 'd', 's', 0xdd, 0xff, 0xff, 0xff, 0xff},
		append([]byte{0x81, 0xa1, 'x'}, bytes.Repeat([]byte{0x91}, 10000)...),
		bytes.Repeat([]byte{0x91}, 10000),
		{0x80, 0x00},
		{0xc1},
		nil,
		bytes.Repeat([]byte{0x81, 0xa1, 'x'}, 5000), // maps nested 5000 deep
		{0xc7, 0xff, 0x01},                          // ext8 of 255 bytes, truncated
		{0xc9, 0x7f, 0xff, 0xff, 0xff, 0x01},        // ext32 of 2 GiB
		{0x81, 0xa2, 'i', 'd', 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, // id uint64 max
		{0x81, 0xa5, 's', 'i', 'n', 'c', 'e', 0xdf, 0xff, 0xff, 0xff, 0xff},          // since: map32 of 4G
		{0x81, 0xa8, 'c', 'h', 'a', 'n', 'n', 'e', 'l', 's', 0xdc, 0xff, 0xff},       // channels: array16 of 65535
	}
}

// checkAlloc fails when a decode of n input bytes allocated more than a
// small multiple of n (plus a constant): what the codec promises.
func checkAlloc(t *testing.T, n int, before uint64) {
	t.Helper()
	if got := memtest.HeapAllocated() - before; got > 64*uint64(n)+1<<20 {
		t.Fatalf("decoding %d bytes allocated %d bytes", n, got)
	}
}

// commandSeeds are valid commands as JSON text.
var commandSeeds = []string{
	`{"op":"subscribe","id":1,"channels":["ticker.BTC-USD","book.ETH-USD"],"throttle_ms":250,"snapshot":true}`,
	`{"op":"unsubscribe","id":2,"channels":["ticker.BTC-USD"]}`,
	`{"op":"auth","id":3,"token":"eyJ.a.b"}`,
	`{"op":"ping","id":4}`,
	`{"op":"subscribe","id":9,"channels":["trade.BTC-USD"],"since":{"trade.BTC-USD":1234}}`,
	`{"op":"ping","id":-1,"x":[1.5,null,{"y":true}]}`,
}

func FuzzDecodeCommandJSON(f *testing.F) {
	for _, s := range commandSeeds {
		f.Add([]byte(s))
	}
	for _, s := range []string{
		`{"id":1.5}`, `{"id":"x"}`, `{"channels":5}`, `[1]`, `{"op":"ping"} x`, `{"op":"pi`,
		`{"x":` + strings.Repeat("[", 10000), "{\"op\":\"\xff\"}", `{"OP":"ping"}`,
		strings.Repeat(`{"x":`, 10000), `{"channels":[` + strings.Repeat(`"a",`, 5000) + `"a"]}`,
		`{"id":1e400}`, `{"id":18446744073709551616}`, `{"since":{"a":-1}}`, "{\"op\":\"ping\"}\x00",
		`{"op":"\ud800"}`,
	} {
		f.Add([]byte(s))
	}
	for _, b := range hostileSeeds() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var cmd proto.Command
		before := memtest.HeapAllocated()
		err := JSON().DecodeCommand(b, &cmd)
		checkAlloc(t, len(b), before)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		// What decodes re-encodes and decodes to the same command.
		again, err := json.Marshal(&cmd)
		if err != nil {
			t.Fatal(err)
		}
		var cmd2 proto.Command
		if err := JSON().DecodeCommand(again, &cmd2); err != nil {
			t.Fatalf("re-decoding %s: %v", again, err)
		}
		mustEqual(t, cmd2, omitEmpty(cmd))
	})
}

// omitEmpty returns cmd as it reads back after encoding: proto.Command's
// omitempty tags drop empty channels and since.
func omitEmpty(cmd proto.Command) proto.Command {
	if len(cmd.Channels) == 0 {
		cmd.Channels = nil
	}
	if len(cmd.Since) == 0 {
		cmd.Since = nil
	}
	return cmd
}

func FuzzDecodeCommandMsgpack(f *testing.F) {
	for _, s := range commandSeeds {
		f.Add(encodeFor(f, Msgpack(), s))
	}
	for _, b := range hostileSeeds() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var cmd proto.Command
		before := memtest.HeapAllocated()
		err := Msgpack().DecodeCommand(b, &cmd)
		checkAlloc(t, len(b), before)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		// A valid command is one map that the library decodes too, and
		// what decodes re-encodes and decodes to the same command.
		var lib proto.Command
		if err := msgpack.Unmarshal(b, &lib); err != nil {
			t.Fatalf("accepted %x, which the library rejects: %v", b, err)
		}
		again, err := msgpack.Marshal(&cmd)
		if err != nil {
			t.Fatal(err)
		}
		var cmd2 proto.Command
		if err := Msgpack().DecodeCommand(again, &cmd2); err != nil {
			t.Fatalf("re-decoding %x: %v", again, err)
		}
		mustEqual(t, cmd2, omitEmpty(cmd))
	})
}
