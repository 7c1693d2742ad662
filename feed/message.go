package feed

import (
	"fmt"
	"slices"

	"github.com/tickgate/tickgate/proto"
)

// MaxBookLevels bounds the levels per side of one book feed message.
const MaxBookLevels = 5000

// Message is one decoded and validated feed message. A Message and its
// data are owned by whoever received it from Decode; State.Apply keeps
// references to its data (as immutable event data), so it must not be
// changed afterwards.
type Message struct {
	// Seq is the publisher's per-channel sequence number, > 0.
	Seq uint64
	// Snapshot is true for a feed "snapshot" of a kind that has them (a
	// book); false for an update, and always false for ticker and trade
	// channels: see Decode.
	Snapshot bool
	// Data is the message's data, of the channel kind's data shape
	// (proto.KindSpec.Data: *proto.Ticker, *proto.Book, *proto.Trade), with
	// the channel's symbol where the shape has one. A book snapshot's bids
	// are best (highest) first and asks best (lowest) first; an update's
	// levels are as sent. The kinds' files add typed accessors (Ticker,
	// Book, Trade). Nil for a heartbeat.
	Data any
	// Heartbeat is a publisher's sign of life (contract 1.1): no data is
	// set, and Seq is the publisher's newest seq on the channel (0 when it
	// has published nothing yet).
	Heartbeat bool
	// Behind reports that more of the channel's messages waited to be
	// handed over when this one was: the node is behind on the channel,
	// or in a burst of it. Set by Source.
	Behind bool
	// More reports that more feed messages, of this channel or others,
	// waited to be handed over right after this one, on the same
	// goroutine: the node is in a feed burst. Set by Source.
	More bool

	// disp and route, set by the dispatcher that hands the message over,
	// are what Pause needs; nil for a Message made otherwise.
	disp  *dispatcher
	route *route
}

// Pause, called by a Handler before it returns, lets it finish with m on
// a goroutine of its own when that means waiting (on the network): the
// channel's later messages are queued, within its pending limits, and
// handed over only once resume is called, which the handler must do when
// it is done with m. It returns nil for a Message that no dispatcher
// handed over (nothing to pause: finish with it before returning).
func (m *Message) Pause() (resume func()) {
	if m.disp == nil {
		return nil
	}
	return m.disp.pause(m.route)
}

// Local is a slot for the Handler's own state that lives as long as the
// dispatcher that handed m over, and that only that dispatcher's
// goroutine touches: what a Handler keeps there during its call is there
// at its next call on the same dispatcher, which for a message with More
// set comes right after (the gateway keeps the outbox locks of a feed
// burst there). Nil for a Message that no dispatcher handed over. Only
// for use during the Handler's call, on its goroutine: never after Pause.
func (m *Message) Local() *any {
	if m.disp == nil {
		return nil
	}
	return &m.disp.local
}

// Decode decodes one feed payload (msgpack, or JSON when its first byte is
// '{') of channel ch and validates it against the feed contract
// (docs/protocol.md §9.4):
//
//   - seq > 0 and type "snapshot" or "update" (or "heartbeat");
//   - prices and sizes are decimal strings (proto.ValidDecimal), ts is not
//     negative, and what the channel's kind checks besides (its validate:
//     trade side, book order and limits);
//   - the data's symbol, where the shape has one, equals ch.Symbol or is
//     empty and then filled in.
//
// Errors wrap ErrBadFeedMessage and never quote the payload.
func Decode(ch proto.Channel, payload []byte) (*Message, error) {
	k := kindOf(ch.Kind)
	if k == nil {
		return nil, fmt.Errorf("%w: unknown channel kind %v", ErrBadFeedMessage, ch.Kind)
	}
	data := ch.Kind.Spec().Data()
	seq, typ, err := decodeEnvelope(payload, data)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrBadFeedMessage, ch, err)
	}
	if typ == proto.FeedHeartbeat {
		// Not forwarded: only its seq matters (a gap when above the
		// node's newest). Data has no place in it; well-formed data is
		// ignored.
		return &Message{Seq: seq, Heartbeat: true}, nil
	}
	if seq == 0 {
		return nil, badf(ch, "seq is 0 or missing")
	}
	m := &Message{Seq: seq, Data: data, Snapshot: typ == proto.FeedSnapshot}
	if err := k.validate(ch, m); err != nil {
		return nil, err
	}
	return m, nil
}

// TS returns the data's ts, the source event time in Unix nanoseconds; 0
// without data.
func (m *Message) TS() int64 {
	if d, ok := m.Data.(proto.Data); ok {
		return d.EventTS()
	}
	return 0
}

// badf returns an ErrBadFeedMessage error about channel ch.
func badf(ch proto.Channel, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrBadFeedMessage, ch, fmt.Sprintf(format, args...))
}

// fillSymbol checks that a data symbol names ch or is empty, and fills it in.
func fillSymbol(ch proto.Channel, sym *string) error {
	switch *sym {
	case ch.Symbol:
		return nil
	case "":
		*sym = ch.Symbol
		return nil
	}
	return badf(ch, "data symbol does not match the channel")
}

// validLevels checks one side of a book message: at most MaxBookLevels
// decimal levels; for a snapshot, no zero size and no price twice, sorted
// best first by cmp.
func validLevels(ch proto.Channel, name string, levels []proto.Level, cmp func(a, b proto.Level) int, snapshot bool) error {
	if len(levels) > MaxBookLevels {
		return badf(ch, "%s: more than %d levels", name, MaxBookLevels)
	}
	for _, l := range levels {
		if !proto.ValidDecimal(l[0]) || !proto.ValidDecimal(l[1]) {
			return badf(ch, "%s: price or size is not a decimal string", name)
		}
		if snapshot && proto.IsZeroDecimal(l[1]) {
			return badf(ch, "%s: zero size in a snapshot", name)
		}
	}
	if !snapshot {
		return nil
	}
	if !slices.IsSortedFunc(levels, cmp) {
		slices.SortStableFunc(levels, cmp)
	}
	for i := 1; i < len(levels); i++ {
		if cmp(levels[i-1], levels[i]) == 0 {
			return badf(ch, "%s: duplicate price in a snapshot", name)
		}
	}
	return nil
}

// bidOrder orders bids best (highest price) first.
func bidOrder(a, b proto.Level) int { return proto.CompareDecimal(b[0], a[0]) }

// askOrder orders asks best (lowest price) first.
func askOrder(a, b proto.Level) int { return proto.CompareDecimal(a[0], b[0]) }
