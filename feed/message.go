package feed

import (
	"fmt"
	"slices"

	"github.com/tickgate/tickgate/codec"
	"github.com/tickgate/tickgate/proto"
)

// MaxBookLevels bounds the levels per side of one book feed message.
const MaxBookLevels = 5000

// Message is one decoded and validated feed message. Exactly one of Ticker,
// Book and Trade is set, by the channel's kind. A Message and its data are
// owned by whoever received it from Decode; State.Apply keeps references to
// its data (as immutable event data), so it must not be changed afterwards.
type Message struct {
	// Seq is the publisher's per-channel sequence number, > 0.
	Seq uint64
	// Snapshot is true for a book feed "snapshot". It is always false for
	// ticker and trade channels: see Decode.
	Snapshot bool
	// Ticker is set on ticker channels; Symbol is the channel's symbol.
	Ticker *proto.Ticker
	// Book is set on book channels. Bids are best (highest) first and asks
	// best (lowest) first for a snapshot; an update's levels are as sent.
	// Symbol is the channel's symbol for a snapshot and empty for an update.
	Book *proto.Book
	// Trade is set on trade channels; Symbol is the channel's symbol.
	Trade *proto.Trade
	// Heartbeat is a publisher's sign of life (contract 1.1): no data is
	// set, and Seq is the publisher's newest seq on the channel (0 when it
	// has published nothing yet).
	Heartbeat bool
}

// Decode decodes one feed payload (msgpack, or JSON when its first byte is
// '{') of channel ch and validates it against the feed contract:
//
//   - seq > 0 and type "snapshot" or "update";
//   - prices and sizes are decimal strings (proto.ValidDecimal), trade side
//     is "buy" or "sell", ts is not negative;
//   - a book message has at most MaxBookLevels levels per side;
//   - a book snapshot has no zero sizes and no two levels of one side at the
//     same price (numerically, "1.5" = "1.50"). Its sides are sorted best
//     first here when the publisher sent them in another order: the order
//     carries no information beyond the prices, and the book checksum is
//     defined over book order. A non-zero snapshot checksum must match its
//     levels;
//   - the data's symbol, where the shape has one, equals ch.Symbol or is
//     empty and then filled in. A book update's Symbol is cleared.
//
// The contract says ticker and trade feeds send only "update". A ticker
// "snapshot" is accepted as an update, since every ticker message is the
// full state anyway; a trade "snapshot" is rejected, since a trade is an
// event and cannot be a state.
//
// Errors wrap ErrBadFeedMessage and never quote the payload.
func Decode(ch proto.Channel, payload []byte) (*Message, error) {
	var (
		m    Message
		data any
	)
	switch ch.Kind {
	case proto.KindTicker:
		m.Ticker = new(proto.Ticker)
		data = m.Ticker
	case proto.KindBook:
		m.Book = new(proto.Book)
		data = m.Book
	case proto.KindTrade:
		m.Trade = new(proto.Trade)
		data = m.Trade
	default:
		return nil, fmt.Errorf("%w: unknown channel kind %v", ErrBadFeedMessage, ch.Kind)
	}
	h, err := codec.DecodeFeed(payload, data)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrBadFeedMessage, ch, err)
	}
	if h.Type == proto.FeedHeartbeat {
		// Not forwarded: only its seq matters (a gap when above the
		// node's newest). Data has no place in it; well-formed data is
		// ignored.
		return &Message{Seq: h.Seq, Heartbeat: true}, nil
	}
	if h.Seq == 0 {
		return nil, badf(ch, "seq is 0 or missing")
	}
	m.Seq = h.Seq
	switch h.Type {
	case proto.FeedSnapshot:
		m.Snapshot = true
	case proto.FeedUpdate:
	default:
		return nil, badf(ch, "type must be snapshot or update")
	}
	switch ch.Kind {
	case proto.KindTicker:
		m.Snapshot = false
		err = validTicker(ch, m.Ticker)
	case proto.KindBook:
		err = validBook(ch, m.Book, m.Snapshot)
	case proto.KindTrade:
		if m.Snapshot {
			return nil, badf(ch, "trade feeds send only updates")
		}
		err = validTrade(ch, m.Trade)
	}
	if err != nil {
		return nil, err
	}
	return &m, nil
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

func validTicker(ch proto.Channel, t *proto.Ticker) error {
	if err := fillSymbol(ch, &t.Symbol); err != nil {
		return err
	}
	fields := [...]struct{ name, v string }{
		{"bid", t.Bid}, {"bid_size", t.BidSize}, {"ask", t.Ask},
		{"ask_size", t.AskSize}, {"last", t.Last}, {"volume", t.Volume},
	}
	for _, f := range fields {
		if !proto.ValidDecimal(f.v) {
			return badf(ch, "ticker %s is not a decimal string", f.name)
		}
	}
	if t.TS < 0 {
		return badf(ch, "negative ts")
	}
	return nil
}

func validTrade(ch proto.Channel, t *proto.Trade) error {
	if err := fillSymbol(ch, &t.Symbol); err != nil {
		return err
	}
	if !proto.ValidDecimal(t.Price) || !proto.ValidDecimal(t.Size) {
		return badf(ch, "trade price or size is not a decimal string")
	}
	if t.Side != proto.SideBuy && t.Side != proto.SideSell {
		return badf(ch, "trade side must be buy or sell")
	}
	if t.TS < 0 {
		return badf(ch, "negative ts")
	}
	return nil
}

func validBook(ch proto.Channel, b *proto.Book, snapshot bool) error {
	if snapshot {
		if err := fillSymbol(ch, &b.Symbol); err != nil {
			return err
		}
	} else {
		if b.Symbol != "" && b.Symbol != ch.Symbol {
			return badf(ch, "data symbol does not match the channel")
		}
		b.Symbol = ""
	}
	if b.TS < 0 {
		return badf(ch, "negative ts")
	}
	if b.Bids == nil {
		b.Bids = []proto.Level{}
	}
	if b.Asks == nil {
		b.Asks = []proto.Level{}
	}
	for _, side := range [...]struct {
		name   string
		levels []proto.Level
		cmp    func(a, b proto.Level) int
	}{{"bids", b.Bids, bidOrder}, {"asks", b.Asks, askOrder}} {
		if len(side.levels) > MaxBookLevels {
			return badf(ch, "%s: more than %d levels", side.name, MaxBookLevels)
		}
		for _, l := range side.levels {
			if !proto.ValidDecimal(l[0]) || !proto.ValidDecimal(l[1]) {
				return badf(ch, "%s: price or size is not a decimal string", side.name)
			}
			if snapshot && proto.IsZeroDecimal(l[1]) {
				return badf(ch, "%s: zero size in a snapshot", side.name)
			}
		}
		if !snapshot {
			continue
		}
		if !slices.IsSortedFunc(side.levels, side.cmp) {
			slices.SortStableFunc(side.levels, side.cmp)
		}
		for i := 1; i < len(side.levels); i++ {
			if side.cmp(side.levels[i-1], side.levels[i]) == 0 {
				return badf(ch, "%s: duplicate price in a snapshot", side.name)
			}
		}
	}
	if snapshot && b.Checksum != 0 && b.Checksum != proto.BookChecksum(b.Bids, b.Asks) {
		return badf(ch, "snapshot checksum does not match its levels")
	}
	return nil
}

// bidOrder orders bids best (highest price) first.
func bidOrder(a, b proto.Level) int { return proto.CompareDecimal(b[0], a[0]) }

// askOrder orders asks best (lowest price) first.
func askOrder(a, b proto.Level) int { return proto.CompareDecimal(a[0], b[0]) }
