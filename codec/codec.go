package codec

import (
	"errors"

	"github.com/tickgate/tickgate/proto"
)

// Sentinel errors.
var (
	// ErrMalformed reports a client command or feed payload that is not a
	// well-formed message: bad syntax, truncated, wrongly typed, too deeply
	// nested, trailing bytes, or not a map at the top level.
	ErrMalformed = errors.New("codec: malformed message")
	// ErrBadSubprotocol reports a handshake that offered subprotocols but
	// none that names a codec (docs/protocol.md §2.2: HTTP 400
	// bad_subprotocol).
	ErrBadSubprotocol = errors.New("codec: no supported subprotocol offered")
)

// maxDepth bounds the nesting of maps and arrays in a decoded message; the
// top-level map counts as depth 1. Real commands and feed messages nest at
// most 4 deep.
const maxDepth = 32

// Codec encodes server messages and decodes client commands for one
// subprotocol. Implementations are stateless values, safe for concurrent
// use; every codec is declared in the registry (registry.go).
type Codec interface {
	// Name is the codec's name in the welcome message: "json" or "msgpack".
	Name() string
	// Subprotocol is the Sec-WebSocket-Protocol value that selects the
	// codec: proto.SubprotocolJSON or proto.SubprotocolMsgpack.
	Subprotocol() string
	// Binary reports whether messages travel in binary WebSocket frames
	// rather than text frames (which must hold UTF-8).
	Binary() bool
	// Append appends the encoding of v, a proto server message such as
	// proto.Update, proto.Snapshot, proto.Welcome or proto.Error (by value
	// or pointer), to dst and returns the extended buffer. Data fields hold
	// *proto.Ticker, *proto.Book or *proto.Trade. Nil Book.Bids/Asks and
	// Subscribed/Unsubscribed.Channels are encoded as empty lists, never as
	// null. On error dst is returned unchanged.
	Append(dst []byte, v any) ([]byte, error)
	// DecodeCommand decodes one client message into cmd, which is reset
	// first. Any malformed, truncated, wrongly typed or hostile input
	// returns an error wrapping ErrMalformed; it never panics and
	// allocates at most a small multiple of len(b). On error cmd is left
	// zero, except that cmd.ID holds the message's "id" when the message
	// is a well-formed map whose "id" is an integer, so that the error
	// reply can carry it. Unknown keys are ignored. The decoded strings
	// do not alias b.
	DecodeCommand(b []byte, cmd *proto.Command) error
	// Decode decodes b, one map encoded with this codec, into v (a pointer
	// to a struct or map): a server message on the client side, a feed
	// payload on the node. b passes the same checks as a command first
	// (one top-level map, nesting at most 32 deep, lengths within b, no
	// trailing bytes); integers must fit their field, an unsigned one
	// included. Errors wrap ErrMalformed. A Raw field keeps its value's
	// bytes for a later Decode.
	Decode(b []byte, v any) error
}

// sliceWriter appends everything written to b. It serves both json.Encoder
// (io.Writer) and msgpack.Encoder (which also wants WriteByte and
// WriteString), so encoders write straight into the caller's buffer.
type sliceWriter struct {
	b []byte
}

func (w *sliceWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

func (w *sliceWriter) WriteByte(c byte) error {
	w.b = append(w.b, c)
	return nil
}

func (w *sliceWriter) WriteString(s string) (int, error) {
	w.b = append(w.b, s...)
	return len(s), nil
}

// normalize returns v, or a shallow copy of it whose nil lists that the
// protocol shows as lists (Book.Bids/Asks, Subscribed/Unsubscribed.Channels,
// Welcome.Features)
// are empty instead, so that no codec ever writes null for them. It copies,
// and so allocates, only when such a nil list is present; it never modifies
// what v points to, because encoded messages are shared.
func normalize(v any) any {
	switch m := v.(type) {
	case *proto.Update:
		if m != nil {
			if d, ok := normalizeData(m.Data); ok {
				c := *m
				c.Data = d
				return &c
			}
		}
	case proto.Update:
		if d, ok := normalizeData(m.Data); ok {
			m.Data = d
			return m
		}
	case *proto.Snapshot:
		if m != nil {
			if d, ok := normalizeData(m.Data); ok {
				c := *m
				c.Data = d
				return &c
			}
		}
	case proto.Snapshot:
		if d, ok := normalizeData(m.Data); ok {
			m.Data = d
			return m
		}
	case *proto.FeedMessage:
		if m != nil {
			if d, ok := normalizeData(m.Data); ok {
				c := *m
				c.Data = d
				return &c
			}
		}
	case proto.FeedMessage:
		if d, ok := normalizeData(m.Data); ok {
			m.Data = d
			return m
		}
	case *proto.Welcome:
		if m != nil && m.Features == nil {
			c := *m
			c.Features = []string{}
			return &c
		}
	case proto.Welcome:
		if m.Features == nil {
			m.Features = []string{}
			return m
		}
	case *proto.Subscribed:
		if m != nil && m.Channels == nil {
			c := *m
			c.Channels = []string{}
			return &c
		}
	case proto.Subscribed:
		if m.Channels == nil {
			m.Channels = []string{}
			return m
		}
	case *proto.Unsubscribed:
		if m != nil && m.Channels == nil {
			c := *m
			c.Channels = []string{}
			return &c
		}
	case proto.Unsubscribed:
		if m.Channels == nil {
			m.Channels = []string{}
			return m
		}
	case *proto.Book, proto.Book:
		if d, ok := normalizeData(m); ok {
			return d
		}
	}
	return v
}

// normalizeData returns a copy of a book whose Bids or Asks is nil, with
// empty lists in their place, and true; otherwise it returns false.
func normalizeData(d any) (any, bool) {
	switch b := d.(type) {
	case *proto.Book:
		if b != nil && (b.Bids == nil || b.Asks == nil) {
			c := *b
			fillLevels(&c)
			return &c, true
		}
	case proto.Book:
		if b.Bids == nil || b.Asks == nil {
			fillLevels(&b)
			return b, true
		}
	}
	return nil, false
}

func fillLevels(b *proto.Book) {
	if b.Bids == nil {
		b.Bids = []proto.Level{}
	}
	if b.Asks == nil {
		b.Asks = []proto.Level{}
	}
}
