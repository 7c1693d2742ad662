package feed

import (
	"time"

	"github.com/tickgate/tickgate/proto"
)

// candleKind: OHLCV bars (contract 1.1), each message an event
// (proto.KindSpec.Events) and the newest bars the state, kept by a
// candleState.
var candleKind = kind{
	validate: validCandle,
	newState: newCandleState,
	warms:    true,
	json: jsonFields[proto.Candle]{
		jsonString("symbol", func(c *proto.Candle) *string { return &c.Symbol }),
		jsonString("interval", func(c *proto.Candle) *string { return &c.Interval }),
		jsonInt("start", func(c *proto.Candle) *int64 { return &c.Start }),
		jsonString("open", func(c *proto.Candle) *string { return &c.Open }),
		jsonString("high", func(c *proto.Candle) *string { return &c.High }),
		jsonString("low", func(c *proto.Candle) *string { return &c.Low }),
		jsonString("close", func(c *proto.Candle) *string { return &c.Close }),
		jsonString("volume", func(c *proto.Candle) *string { return &c.Volume }),
		jsonInt("trades", func(c *proto.Candle) *int64 { return &c.Trades }),
		jsonBool("closed", func(c *proto.Candle) *bool { return &c.Closed }),
		jsonInt("ts", func(c *proto.Candle) *int64 { return &c.TS }),
	},
	// The bars of a default snapshot: their every revision in the stream.
	window: func(ch proto.Channel) time.Duration {
		return proto.IntervalDuration(ch.Param) * time.Duration(proto.DefaultBars)
	},
}

// Candle returns the message's data on a candle channel, or nil.
func (m *Message) Candle() *proto.Candle {
	c, _ := m.Data.(*proto.Candle)
	return c
}

// validCandle checks one bar on its own (docs/protocol.md §9.4): decimal
// open, high, low, close and volume; a start aligned to the channel's
// interval (a multiple of its length since the Unix epoch); high at least
// max(open, close) and low at most min(open, close); trades and ts not
// negative; the interval, when given, the channel's. A candle "snapshot"
// is rejected: publishers send updates only. What involves several bars
// (exactly one closed bar per start, starts never going back) is the
// state's to check.
func validCandle(ch proto.Channel, m *Message) error {
	if m.Snapshot {
		return badf(ch, "candle feeds send only updates")
	}
	c := m.Candle()
	if err := fillSymbol(ch, &c.Symbol); err != nil {
		return err
	}
	switch c.Interval {
	case ch.Param:
	case "":
		c.Interval = ch.Param
	default:
		return badf(ch, "data interval does not match the channel")
	}
	fields := [...]struct{ name, v string }{
		{"open", c.Open}, {"high", c.High}, {"low", c.Low}, {"close", c.Close}, {"volume", c.Volume},
	}
	for _, f := range fields {
		if !proto.ValidDecimal(f.v) {
			return badf(ch, "candle %s is not a decimal string", f.name)
		}
	}
	if d := proto.IntervalDuration(ch.Param).Nanoseconds(); d == 0 || c.Start < 0 || c.Start%d != 0 {
		return badf(ch, "candle start is not aligned to the %s interval", ch.Param)
	}
	if proto.CompareDecimal(c.High, c.Open) < 0 || proto.CompareDecimal(c.High, c.Close) < 0 {
		return badf(ch, "candle high is below its open or close")
	}
	if proto.CompareDecimal(c.Low, c.Open) > 0 || proto.CompareDecimal(c.Low, c.Close) > 0 {
		return badf(ch, "candle low is above its open or close")
	}
	if c.Trades < 0 || c.TS < 0 {
		return badf(ch, "negative trades or ts")
	}
	return nil
}

// candleState is the State of a candle channel: the chain of bar
// messages (a streamState: seqs, gaps, restarts, the history for Since)
// and the newest bars, oldest first, the last one possibly open. It
// checks what one message cannot show: a bar never goes back (a start
// older than the newest bar's) and is closed once (nothing after its
// closed message). A message that breaks either is dropped
// (OutcomeInvalid) without moving the chain, so subscribers see its seq
// as a gap.
type candleState struct {
	stream *streamState
	bars   []*proto.Candle // newest last; immutable bars, each as last sent
	limit  int             // Static after construction: bars kept at most.
}

func newCandleState(ch proto.Channel, cfg stateConfig) State {
	return &candleState{stream: makeStreamState(ch, cfg), limit: max(cfg.candleBars, 1)}
}

// newest returns the newest bar, or nil.
func (s *candleState) newest() *proto.Candle {
	if len(s.bars) == 0 {
		return nil
	}
	return s.bars[len(s.bars)-1]
}

func (s *candleState) Apply(m *Message) (Event, bool, Outcome) {
	if m.Heartbeat {
		return s.stream.Apply(m)
	}
	c := m.Candle()
	if c == nil {
		return Event{}, false, OutcomeInvalid
	}
	seen := s.stream.seen
	restart := m.Seq <= seen && PublisherRestarted(m.Seq, seen)
	if last := s.newest(); last != nil && !restart && m.Seq > seen {
		if c.Start < last.Start || c.Start == last.Start && last.Closed {
			return Event{}, false, OutcomeInvalid
		}
	}
	ev, emit, out := s.stream.Apply(m)
	if !emit {
		return ev, emit, out
	}
	if restart {
		// The new run may send bars again from an earlier start.
		for len(s.bars) > 0 && s.newest().Start > c.Start {
			s.bars = s.bars[:len(s.bars)-1]
		}
	}
	if last := s.newest(); last != nil && last.Start == c.Start {
		s.bars[len(s.bars)-1] = c
	} else {
		s.push(c)
	}
	return ev, emit, out
}

// push appends a bar, keeping at most limit: the storage is compacted
// when it reaches twice the limit, so a push is O(1) amortised.
func (s *candleState) push(c *proto.Candle) {
	if len(s.bars) == 2*s.limit {
		n := copy(s.bars, s.bars[len(s.bars)-s.limit:])
		clear(s.bars[n:])
		s.bars = s.bars[:n]
	}
	s.bars = append(s.bars, c)
}

func (s *candleState) Short(SnapshotOptions) bool { return false }

func (s *candleState) Snapshot(o SnapshotOptions, _ ...*Message) (uint64, any, bool) {
	if len(s.bars) == 0 {
		return 0, nil, false
	}
	n := min(o.bars(), s.limit, len(s.bars))
	return s.stream.last, &proto.CandleSnapshot{
		Symbol:   s.stream.ch.Symbol,
		Interval: s.stream.ch.Param,
		Bars:     append([]*proto.Candle(nil), s.bars[len(s.bars)-n:]...),
	}, true
}

func (s *candleState) Since(seq uint64) ([]Event, bool) { return s.stream.Since(seq) }
func (s *candleState) LastSeq() uint64                  { return s.stream.LastSeq() }
func (s *candleState) Seen() uint64                     { return s.stream.Seen() }
func (s *candleState) Resyncing() bool                  { return false }
func (s *candleState) Track(SnapshotOptions, bool)      {}

// Warm gives a state without bars the bars of msgs, the channel's messages
// of a recent window of the history stream (History.Recent), oldest
// first: they are applied in order on a scratch state, each message being
// its bar's whole state, so a revision missing from the window costs
// nothing but itself. The event it returns carries no data: it only
// starts the subscribers that wait for a snapshot.
func (s *candleState) Warm(msgs []*Message) (Event, bool) {
	if len(s.bars) > 0 || len(msgs) == 0 {
		return Event{}, false
	}
	w := &candleState{stream: makeStreamState(s.stream.ch, stateConfig{historyLen: 0}), limit: s.limit}
	for _, m := range msgs {
		if m.Candle() != nil {
			w.Apply(m)
		}
	}
	if len(w.bars) == 0 {
		return Event{}, false
	}
	s.bars = w.bars
	// Older than a heartbeat the node saw, they are still the newest bars
	// the node can have: the newer revisions were lost on the way.
	s.stream.last, s.stream.ts = w.stream.last, w.stream.ts
	s.stream.seen = max(s.stream.seen, w.stream.last)
	return Event{Channel: s.stream.ch, Seq: w.stream.last, Prev: 0, TS: w.stream.ts}, true
}
func (s *candleState) HistoryLen() int { return s.stream.HistoryLen() }
