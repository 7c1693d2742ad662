package codec

// registry lists every codec, in the order they are documented. It is the
// one declaration of a codec's name, subprotocol and frame type (through
// the Codec's methods): negotiation, the gateway's per-codec encodings,
// its handshake errors and the feed simulator read it. How to add a
// codec: docs/architecture.md, "Adding a codec".
var registry = [...]Codec{jsonCodec{}, msgpackCodec{}}

// Count is how many codecs there are; Index numbers them 0 to Count-1,
// so that per-codec values can sit in arrays.
const Count = len(registry)

// All returns every codec, in Index order.
func All() []Codec { return append([]Codec(nil), registry[:]...) }

// Lookup returns the codec named name ("json", "msgpack").
func Lookup(name string) (Codec, bool) {
	for _, c := range registry {
		if c.Name() == name {
			return c, true
		}
	}
	return nil, false
}

// BySubprotocol returns the codec that the Sec-WebSocket-Protocol entry p
// selects. Subprotocol names compare case-sensitively, as RFC 6455 tokens
// do.
func BySubprotocol(p string) (Codec, bool) {
	for _, c := range registry {
		if c.Subprotocol() == p {
			return c, true
		}
	}
	return nil, false
}

// Index returns c's position in All, or -1 for a codec not in the
// registry.
func Index(c Codec) int {
	for i, r := range registry {
		if r.Name() == c.Name() {
			return i
		}
	}
	return -1
}

// Names returns every codec's name, in Index order ("json", "msgpack").
func Names() []string {
	out := make([]string, len(registry))
	for i, c := range registry {
		out[i] = c.Name()
	}
	return out
}

// Subprotocols returns every codec's subprotocol, in Index order.
func Subprotocols() []string {
	out := make([]string, len(registry))
	for i, c := range registry {
		out[i] = c.Subprotocol()
	}
	return out
}

// JSON returns the JSON codec (subprotocol tickgate.v1.json, text frames).
func JSON() Codec { return jsonCodec{} }

// Msgpack returns the msgpack codec (subprotocol tickgate.v1.msgpack,
// binary frames).
func Msgpack() Codec { return msgpackCodec{} }

// ForFeed returns the codec of a feed payload (docs/protocol.md §9.2):
// JSON when its first byte is '{', msgpack otherwise.
func ForFeed(payload []byte) Codec {
	if len(payload) > 0 && payload[0] == '{' {
		return JSON()
	}
	return Msgpack()
}
