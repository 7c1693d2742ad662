package feed

import (
	"time"

	"github.com/tickgate/tickgate/proto"
)

// kind is how the node handles one channel kind: how its feed messages are
// validated and what state turns them into events. The wire side of a kind
// (its name, channel grammar, data shape, pending rule) is its
// proto.KindSpec; this is the node's side, declared once per kind in the
// kind's own file (ticker.go, book.go, trade.go, candle.go) and listed in
// kinds.
type kind struct {
	// validate checks a decoded message of channel ch against the feed
	// contract (docs/protocol.md §9.4), normalises it (the data's symbol,
	// the book order). m.Data holds the kind's data shape
	// (proto.KindSpec.Data) and m.Snapshot says whether the publisher sent
	// a "snapshot"; validate may clear it when the kind has none.
	validate func(ch proto.Channel, m *Message) error
	// newState returns the empty state of a channel of the kind.
	newState func(ch proto.Channel, cfg stateConfig) State
	// warms: the state can start from the history stream (History.Recent,
	// State.Warm) when the node holds nothing current of the channel.
	warms bool
	// window, when set: the state starts from every message of this recent
	// window of the stream (each message a whole item of it, such as a
	// candle bar), rather than from the newest whole state and what
	// follows it.
	window func(ch proto.Channel) time.Duration
	// json, when set, is the kind's data shape as the JSON fast path reads
	// it (fastjson.go): its keys, each with the field it fills. Without
	// it, every JSON payload of the kind takes encoding/json.
	json jsonShape
}

// warmWindow is the kind's window (kind.window), 0 for none.
func warmWindow(ch proto.Channel) time.Duration {
	if d := kindOf(ch.Kind); d != nil && d.window != nil {
		return d.window(ch)
	}
	return 0
}

// kinds lists every kind's declaration, indexed by proto.Kind.
var kinds = [proto.NumKinds + 1]*kind{
	proto.KindTicker: &tickerKind,
	proto.KindBook:   &bookKind,
	proto.KindTrade:  &tradeKind,
	proto.KindCandle: &candleKind,
}

// kindOf returns k's declaration, or nil for an invalid kind.
func kindOf(k proto.Kind) *kind {
	if !k.Valid() {
		return nil
	}
	return kinds[k]
}

// Warms reports whether a channel of kind k can start from the history
// stream (History.Recent then State.Warm) when the node holds nothing
// current of it.
func Warms(k proto.Kind) bool {
	d := kindOf(k)
	return d != nil && d.warms
}
