// Package codec turns tickgate's wire messages into bytes and back, once per
// WebSocket subprotocol (docs/protocol.md §2.2 and §4).
//
// Two codecs exist, [JSON] (subprotocol tickgate.v1.json, text frames) and
// [Msgpack] (tickgate.v1.msgpack, binary frames). Both encode every server
// message as one map whose keys are the same in both encodings, and both
// decode client commands into [proto.Command]. [Negotiate] picks the codec of
// a handshake from the client's Sec-WebSocket-Protocol entries ([Offered]).
// [Codec.Decode] decodes any one map (a server message on the client side,
// a feed payload on the node, whose envelope feed reads); [Raw] keeps a
// value's bytes until its type is known. The codecs are declared in one
// registry ([All], [Lookup], [BySubprotocol]).
//
// Encoding is the hot path of the gateway: the hub encodes each feed message
// once per codec in use and shares the bytes with every subscriber. Append
// therefore appends into a caller-owned buffer and reuses pooled encoders.
//
// Decoding faces untrusted input. Every decoder first checks the raw bytes
// (one top-level map or object, nesting depth at most 32, every declared
// length within the bytes that remain, no msgpack extension types, no
// trailing bytes) and only then decodes into fixed structs, so a hostile
// message costs at most a small multiple of its own size in memory. Every
// decoding failure wraps [ErrMalformed].
//
// Codecs are stateless values, safe for concurrent use; two calls of JSON (or
// of Msgpack) return equal values, so a Codec can key a map.
package codec
