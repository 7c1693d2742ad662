package feed

import "github.com/tickgate/tickgate/proto"

// tickerKind: every message is the whole state (proto.KindSpec.WholeState),
// kept by a streamState.
var tickerKind = kind{
	validate: validTicker,
	newState: newStreamState,
	warms:    true,
}

// Ticker returns the message's data on a ticker channel, or nil.
func (m *Message) Ticker() *proto.Ticker {
	t, _ := m.Data.(*proto.Ticker)
	return t
}

// validTicker checks a ticker message. The contract says ticker feeds
// send only "update"; a ticker "snapshot" is accepted as an update, since
// every ticker message is the full state anyway.
func validTicker(ch proto.Channel, m *Message) error {
	t := m.Ticker()
	m.Snapshot = false
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
