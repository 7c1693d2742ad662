package codec

import (
	"testing"

	"github.com/tickgate/tickgate/proto"
)

// Every codec of the registry is found by its name and its subprotocol,
// has its index, and names and subprotocols are unique: negotiation, the
// gateway's per-codec arrays and the feed simulator rely on it.
func TestRegistry(t *testing.T) {
	if got := len(All()); got != Count {
		t.Fatalf("All has %d codecs, Count says %d", got, Count)
	}
	names, subs := map[string]bool{}, map[string]bool{}
	for i, c := range All() {
		if names[c.Name()] || subs[c.Subprotocol()] {
			t.Fatalf("codec %d (%s) repeats a name or subprotocol", i, c.Name())
		}
		names[c.Name()], subs[c.Subprotocol()] = true, true
		if got, ok := Lookup(c.Name()); !ok || got != c {
			t.Fatalf("Lookup(%q) = %v, %v", c.Name(), got, ok)
		}
		if got, ok := BySubprotocol(c.Subprotocol()); !ok || got != c {
			t.Fatalf("BySubprotocol(%q) = %v, %v", c.Subprotocol(), got, ok)
		}
		if Index(c) != i || Names()[i] != c.Name() || Subprotocols()[i] != c.Subprotocol() {
			t.Fatalf("codec %s: index %d, want %d", c.Name(), Index(c), i)
		}
	}
	for _, bad := range []string{"", "JSON", "xml"} {
		if _, ok := Lookup(bad); ok {
			t.Fatalf("Lookup(%q) found a codec", bad)
		}
	}
	if _, ok := BySubprotocol("tickgate.v1.JSON"); ok {
		t.Fatal("subprotocols compare case-insensitively")
	}
	if c, _ := BySubprotocol(proto.SubprotocolMsgpack); c != Msgpack() {
		t.Fatal("tickgate.v1.msgpack does not select msgpack")
	}
}

// Decode is strict about unsigned fields in msgpack, whatever integer
// encoding carries the value: a negative one is refused, a non-negative
// one in a signed encoding is taken.
func TestMsgpackDecodeUnsigned(t *testing.T) {
	var v struct {
		Seq uint64 `msgpack:"seq"`
		N   uint32 `msgpack:"n"`
	}
	for name, tc := range map[string]struct {
		in []byte
		ok bool
	}{
		"positive fixint": {[]byte{0x81, 0xa3, 's', 'e', 'q', 0x05}, true},
		"uint64":          {[]byte{0x81, 0xa3, 's', 'e', 'q', 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, true},
		"int8 positive":   {[]byte{0x81, 0xa3, 's', 'e', 'q', 0xd0, 0x05}, true},
		"negative fixint": {[]byte{0x81, 0xa3, 's', 'e', 'q', 0xff}, false},
		"int64 negative":  {[]byte{0x81, 0xa3, 's', 'e', 'q', 0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe}, false},
		"uint32 overflow": {[]byte{0x81, 0xa1, 'n', 0xcf, 0, 0, 0, 1, 0, 0, 0, 0}, false},
		"float":           {[]byte{0x81, 0xa3, 's', 'e', 'q', 0xca, 0x3f, 0x80, 0, 0}, false},
		"string":          {[]byte{0x81, 0xa3, 's', 'e', 'q', 0xa1, '1'}, false},
	} {
		t.Run(name, func(t *testing.T) {
			if err := Msgpack().Decode(tc.in, &v); (err == nil) != tc.ok {
				t.Fatalf("Decode(%x) = %v, want ok=%v", tc.in, err, tc.ok)
			}
		})
	}
}
