package feedsim

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/tickgate/tickgate/codec"
	"github.com/tickgate/tickgate/proto"
)

// Sim generates a synthetic feed. It is not safe for concurrent use: one
// goroutine calls Next, or Run, at a time.
type Sim struct {
	cfg     Config      // Static after construction; defaults applied.
	enc     codec.Codec // Static after construction.
	rng     *rand.Rand
	markets []*market
	pending int // markets[pending:] still need their first snapshot

	oldBids, oldAsks []level       // scratch for deltas
	wire             []proto.Level // scratch for checksums
}

// New returns a Sim for cfg. Errors wrap ErrBadConfig.
func New(cfg Config) (*Sim, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	enc, _ := codec.Lookup(cfg.Codec) // Validate checked it
	s := &Sim{
		cfg: cfg,
		enc: enc,
		rng: rand.New(rand.NewPCG(uint64(cfg.Seed), uint64(cfg.Seed)^0x9e3779b97f4a7c15)),
	}
	for _, sym := range cfg.Symbols {
		s.markets = append(s.markets, newMarket(sym, cfg.SubjectPrefix, cfg.BookDepth, s.rng))
	}
	return s, nil
}

// Symbols returns the symbols the Sim feeds.
func (s *Sim) Symbols() []string { return append([]string(nil), s.cfg.Symbols...) }

// Next produces the next feed message: its subject and a fresh payload.
// The first message of every symbol's book is a snapshot (they come first,
// in symbol order); after that, each call picks a symbol at random and a
// kind: about 36% book (a delta, or a snapshot when SnapshotEvery passed
// since the symbol's last one), 27% ticker, 27% trade and 10% candle
// (candle).
func (s *Sim) Next() (subject string, payload []byte, err error) {
	now := s.cfg.Now()
	if s.pending < len(s.markets) {
		m := s.markets[s.pending]
		s.pending++
		return s.snapshot(m, now)
	}
	m := s.markets[s.rng.IntN(len(s.markets))]
	switch r := s.rng.Float64(); {
	case r < 0.36:
		if now.Sub(m.lastSnap) >= s.cfg.SnapshotEvery {
			return s.snapshot(m, now)
		}
		return s.delta(m, now)
	case r < 0.63:
		return s.ticker(m, now)
	case r < 0.9:
		return s.trade(m, now)
	default:
		return s.candle(m, now)
	}
}

// encode returns the subject of channel k (an index in m.channels) and
// the payload of its next feed message, made at now.
func (s *Sim) encode(m *market, now time.Time, k int, typ string, data any) (string, []byte, error) {
	c := &m.channels[k]
	c.seq++
	c.sent = now
	p, err := s.enc.Append(nil, proto.FeedMessage{Seq: c.seq, Type: typ, Data: data})
	if err != nil {
		return "", nil, fmt.Errorf("feedsim: encode %s: %w", c.subject, err)
	}
	return c.subject, p, nil
}

// candle publishes a bar of m built from its trades: first, a bar whose
// period ended, as closed (each exactly once, before any message of the
// interval's next bar); else the open bar of an interval at random. A
// market without trades yet publishes a ticker instead.
func (s *Sim) candle(m *market, now time.Time) (string, []byte, error) {
	ns := now.UnixNano()
	for i := range m.series {
		sr := &m.series[i]
		if sr.cur != nil && len(sr.closing) == 0 && sr.cur.start+sr.d <= ns {
			sr.closing = append(sr.closing, *sr.cur) // its period ended without a trade in the next
			sr.cur = nil
		}
		if len(sr.closing) > 0 {
			b := sr.closing[0]
			sr.closing = append(sr.closing[:0], sr.closing[1:]...)
			return s.encodeBar(m, now, sr, &b, true)
		}
	}
	open := make([]int, 0, len(m.series))
	for i := range m.series {
		if m.series[i].cur != nil {
			open = append(open, i)
		}
	}
	if len(open) == 0 {
		return s.ticker(m, now)
	}
	sr := &m.series[open[s.rng.IntN(len(open))]]
	return s.encodeBar(m, now, sr, sr.cur, false)
}

// encodeBar publishes b of series sr.
func (s *Sim) encodeBar(m *market, now time.Time, sr *barSeries, b *bar, closed bool) (string, []byte, error) {
	c := &proto.Candle{
		Symbol: m.sym, Interval: sr.interval, Start: b.start,
		Open: m.price(b.open), High: m.price(b.high), Low: m.price(b.low), Close: m.price(b.close),
		Volume: m.size(b.volume), Trades: b.trades, Closed: closed, TS: now.UnixNano(),
	}
	return s.encode(m, now, m.channel(proto.KindCandle, sr.interval), proto.FeedUpdate, c)
}

func (s *Sim) snapshot(m *market, now time.Time) (string, []byte, error) {
	m.lastSnap = now
	b := &proto.Book{
		Symbol:   m.sym,
		Bids:     m.levels(nil, m.bids, -1),
		Asks:     m.levels(nil, m.asks, -1),
		Checksum: m.checksum(s.wire),
		TS:       now.UnixNano(),
	}
	return s.encode(m, now, m.channel(proto.KindBook, ""), proto.FeedSnapshot, b)
}

func (s *Sim) delta(m *market, now time.Time) (string, []byte, error) {
	s.oldBids = append(s.oldBids[:0], m.bids...)
	s.oldAsks = append(s.oldAsks[:0], m.asks...)
	m.step(s.rng)
	b := &proto.Book{
		Bids: m.diff([]proto.Level{}, s.oldBids, m.bids, true),
		Asks: m.diff([]proto.Level{}, s.oldAsks, m.asks, false),
		TS:   now.UnixNano(),
	}
	if len(b.Bids)+len(b.Asks) == 0 {
		// Every size change drew the size it had: change the best ask.
		m.asks[0].size = m.asks[0].size%(2*m.typical) + 1
		b.Asks = append(b.Asks, proto.Level{m.price(m.asks[0].tick), m.size(m.asks[0].size)})
	}
	b.Checksum = m.checksum(s.wire)
	return s.encode(m, now, m.channel(proto.KindBook, ""), proto.FeedUpdate, b)
}

func (s *Sim) ticker(m *market, now time.Time) (string, []byte, error) {
	t := &proto.Ticker{
		Symbol: m.sym,
		Last:   m.price(m.last),
		Volume: m.size(m.volume),
		TS:     now.UnixNano(),
	}
	if len(m.bids) > 0 {
		t.Bid, t.BidSize = m.price(m.bids[0].tick), m.size(m.bids[0].size)
	} else {
		t.Bid, t.BidSize = "0", "0"
	}
	t.Ask, t.AskSize = m.price(m.asks[0].tick), m.size(m.asks[0].size)
	return s.encode(m, now, m.channel(proto.KindTicker, ""), proto.FeedUpdate, t)
}

func (s *Sim) trade(m *market, now time.Time) (string, []byte, error) {
	side, tick := proto.SideBuy, m.asks[0].tick
	if s.rng.IntN(2) == 0 && len(m.bids) > 0 {
		side, tick = proto.SideSell, m.bids[0].tick
	}
	lots := 1 + s.rng.Int64N(max(1, m.typical/4))
	m.tradeID++
	m.last = tick
	m.volume += lots
	m.addTrade(tick, lots, now)
	t := &proto.Trade{
		Symbol: m.sym,
		ID:     m.tradeID,
		Price:  m.price(tick),
		Size:   m.size(lots),
		Side:   side,
		TS:     now.UnixNano(),
	}
	return s.encode(m, now, m.channel(proto.KindTrade, ""), proto.FeedUpdate, t)
}

// Heartbeats returns a publisher heartbeat (contract 1.1,
// {"type":"heartbeat","seq":<newest seq>}) for every channel that published
// nothing for Config.HeartbeatEvery, as subject and payload pairs, and
// counts them as sent.
func (s *Sim) Heartbeats() (subjects []string, payloads [][]byte, err error) {
	now := s.cfg.Now()
	for _, m := range s.markets {
		for i := range m.channels {
			c := &m.channels[i]
			if now.Sub(c.sent) < s.cfg.HeartbeatEvery {
				continue
			}
			p, err := s.enc.Append(nil, proto.FeedMessage{Seq: c.seq, Type: proto.FeedHeartbeat})
			if err != nil {
				return nil, nil, fmt.Errorf("feedsim: encode heartbeat %s: %w", c.subject, err)
			}
			c.sent = now
			subjects, payloads = append(subjects, c.subject), append(payloads, p)
		}
	}
	return subjects, payloads, nil
}

// Run publishes Next's messages at Config.Rate, Config.Burst at a time,
// until ctx is done, then
// returns nil, and every Config.HeartbeatEvery a heartbeat on each channel
// that was quiet meanwhile (Heartbeats). A failing publish is logged (at most once per second, with a
// count) and the message is lost, as on a real feed; the seq moves on, so
// consumers see a gap. An encoding error ends Run.
func (s *Sim) Run(ctx context.Context, publish func(subject string, payload []byte) error) error {
	interval := 10 * time.Millisecond
	switch {
	case s.cfg.Burst > 0:
		interval = time.Duration(float64(s.cfg.Burst) / s.cfg.Rate * float64(time.Second))
	case s.cfg.Rate < 100:
		interval = time.Duration(float64(time.Second) / s.cfg.Rate)
	}
	perTick := s.cfg.Rate * interval.Seconds()
	if s.cfg.Burst > 0 {
		perTick = float64(s.cfg.Burst) // exactly: a tick is one burst
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	var hb <-chan time.Time // nil: never
	if s.cfg.HeartbeatEvery > 0 {
		ht := time.NewTicker(s.cfg.HeartbeatEvery / 2) // a quiet channel's heartbeat is at most 1.5 intervals apart
		defer ht.Stop()
		hb = ht.C
	}
	var (
		due      float64
		failed   int
		lastWarn time.Time
	)
	warn := func(subject string, err error) {
		failed++
		if now := time.Now(); now.Sub(lastWarn) >= time.Second {
			s.cfg.Logger.Warn("feedsim: publish failed", "subject", subject, "err", err, "failed", failed)
			lastWarn, failed = now, 0
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hb:
			subjects, payloads, err := s.Heartbeats()
			if err != nil {
				return err
			}
			for i, subject := range subjects {
				if err := publish(subject, payloads[i]); err != nil {
					warn(subject, err)
				}
			}
			continue
		case <-t.C:
		}
		due = min(due+perTick, max(s.cfg.Rate, 1)) // at most a second's worth at once
		for ; due >= 1; due-- {
			subject, payload, err := s.Next()
			if err != nil {
				return err
			}
			if err := publish(subject, payload); err != nil {
				warn(subject, err)
			}
		}
	}
}
