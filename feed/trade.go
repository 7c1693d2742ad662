package feed

import "github.com/tickgate/tickgate/proto"

// tradeKind: every message is an event (proto.KindSpec.Events), kept by a
// streamState for resume.
var tradeKind = kind{
	validate: validTrade,
	newState: newStreamState,
}

// Trade returns the message's data on a trade channel, or nil.
func (m *Message) Trade() *proto.Trade {
	t, _ := m.Data.(*proto.Trade)
	return t
}

// validTrade checks a trade message. A trade "snapshot" is rejected: a
// trade is an event and cannot be a state.
func validTrade(ch proto.Channel, m *Message) error {
	if m.Snapshot {
		return badf(ch, "trade feeds send only updates")
	}
	t := m.Trade()
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
