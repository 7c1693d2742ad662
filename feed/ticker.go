package feed

import "github.com/tickgate/tickgate/proto"

// tickerKind: every message is the whole state (proto.KindSpec.WholeState),
// kept by a streamState.
var tickerKind = kind{
	validate: validTicker,
	newState: newStreamState,
	warms:    true,
	json: jsonFields[proto.Ticker]{
		jsonString("symbol", func(t *proto.Ticker) *string { return &t.Symbol }),
		jsonString("bid", func(t *proto.Ticker) *string { return &t.Bid }),
		jsonString("bid_size", func(t *proto.Ticker) *string { return &t.BidSize }),
		jsonString("ask", func(t *proto.Ticker) *string { return &t.Ask }),
		jsonString("ask_size", func(t *proto.Ticker) *string { return &t.AskSize }),
		jsonString("last", func(t *proto.Ticker) *string { return &t.Last }),
		jsonString("volume", func(t *proto.Ticker) *string { return &t.Volume }),
		jsonInt("ts", func(t *proto.Ticker) *int64 { return &t.TS }),
	},
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
