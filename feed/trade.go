package feed

import (
	"slices"

	"github.com/tickgate/tickgate/proto"
)

// tradeKind: every message is an event (proto.KindSpec.Events), kept by a
// tradeState: a streamState for the chain, gaps and resume, and the newest
// trades for snapshots of recent trades (contract 1.1 §8).
var tradeKind = kind{
	validate: validTrade,
	newState: newTradeState,
	json: jsonFields[proto.Trade]{
		jsonString("symbol", func(t *proto.Trade) *string { return &t.Symbol }),
		jsonInt("id", func(t *proto.Trade) *int64 { return &t.ID }),
		jsonString("price", func(t *proto.Trade) *string { return &t.Price }),
		jsonString("size", func(t *proto.Trade) *string { return &t.Size }),
		jsonString("side", func(t *proto.Trade) *string { return &t.Side }),
		jsonInt("ts", func(t *proto.Trade) *int64 { return &t.TS }),
	},
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

// heldTrade is a trade the state keeps, with its feed seq.
type heldTrade struct {
	seq   uint64
	trade *proto.Trade
}

// tradeState is the State of a trade channel: its streamState, and a ring
// of the newest proto.MaxRecent trades, whatever the history length, for
// snapshots of recent trades. A publisher restart keeps them: they were
// trades all the same.
type tradeState struct {
	*streamState
	ring  []heldTrade // oldest at start once full
	start int
}

func newTradeState(ch proto.Channel, cfg stateConfig) State {
	return &tradeState{streamState: makeStreamState(ch, cfg)}
}

func (s *tradeState) Apply(m *Message) (Event, bool, Outcome) {
	ev, emit, out := s.streamState.Apply(m)
	if emit && ev.Data != nil {
		h := heldTrade{seq: ev.Seq, trade: ev.Data.(*proto.Trade)}
		if len(s.ring) < proto.MaxRecent {
			s.ring = append(s.ring, h)
		} else {
			s.ring[s.start] = h
			s.start = (s.start + 1) % len(s.ring)
		}
	}
	return ev, emit, out
}

// held returns the newest n trades held, oldest first.
func (s *tradeState) held(n int) []heldTrade {
	out := make([]heldTrade, 0, min(n, len(s.ring)))
	for i := max(len(s.ring)-n, 0); i < len(s.ring); i++ {
		out = append(out, s.ring[(s.start+i)%len(s.ring)])
	}
	return out
}

func (s *tradeState) Short(o SnapshotOptions) bool {
	if o.Recent <= 0 || len(s.ring) >= o.Recent {
		return false
	}
	return len(s.ring) == 0 || s.ring[s.start].seq > 1 // the publisher's first trade is seq 1
}

// Snapshot implements State: up to o.Recent newest trades, from the ring
// and, older than what it holds, from older (the history stream's), by
// seq, each once.
func (s *tradeState) Snapshot(o SnapshotOptions, older ...*Message) (uint64, any, bool) {
	if o.Recent <= 0 {
		return 0, nil, false
	}
	held := s.held(o.Recent)
	if len(older) > 0 {
		first := ^uint64(0)
		if len(held) > 0 {
			first = held[0].seq
		}
		var extra []heldTrade
		for _, m := range older {
			if t := m.Trade(); t != nil && m.Seq < first {
				extra = append(extra, heldTrade{seq: m.Seq, trade: t})
			}
		}
		slices.SortStableFunc(extra, func(a, b heldTrade) int { return cmpSeq(a.seq, b.seq) })
		extra = slices.CompactFunc(extra, func(a, b heldTrade) bool { return a.seq == b.seq })
		held = append(extra, held...)
		held = held[max(len(held)-o.Recent, 0):]
	}
	if len(held) == 0 {
		return 0, nil, false
	}
	snap := &proto.TradeSnapshot{Symbol: s.ch.Symbol, Trades: make([]*proto.Trade, len(held))}
	for i, h := range held {
		snap.Trades[i] = h.trade
	}
	return held[len(held)-1].seq, snap, true
}

func cmpSeq(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
