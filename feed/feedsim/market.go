package feedsim

import (
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/tickgate/tickgate/proto"
)

// level is one book level in integer units: price in ticks, size in lots.
type level struct{ tick, size int64 }

// simChannel is one channel a market publishes on.
type simChannel struct {
	ch      proto.Channel
	subject string
	seq     uint64    // last seq
	sent    time.Time // when it last published (message or heartbeat)
}

// bar is a candle in integer units, built from the market's trades.
type bar struct {
	start                  int64 // Unix ns, aligned to the interval
	open, high, low, close int64 // ticks
	volume, trades         int64 // lots, count
}

// barSeries is one candle interval of a market: the bar of the newest
// trade's period, and the bars whose period ended and whose closed message
// is still to be published, oldest first.
type barSeries struct {
	interval string
	d        int64 // interval length, ns
	cur      *bar
	closing  []bar
}

// market is the simulated state of one symbol. Owned by its Sim.
type market struct {
	sym      string
	channels []simChannel // every channel of every kind: one per kind, one per param of a kind with params
	series   []barSeries  // candle intervals, in proto.CandleIntervals order

	priceDec int   // decimals of a price: one tick is 10^-priceDec
	sizeDec  int   // decimals of a size: one lot is 10^-sizeDec
	typical  int64 // typical level size in lots
	minMid   int64 // floor of the random walk, in ticks

	mid        int64   // mid price in ticks; bids < mid < asks
	bids, asks []level // book order: bids highest first, asks lowest first
	depth      int

	lastSnap time.Time // when the last snapshot went out

	tradeID int64 // id of the last trade
	last    int64 // last trade price in ticks
	volume  int64 // traded volume in lots
}

// preset is the starting point of a well-known symbol.
type preset struct {
	price             float64
	priceDec, sizeDec int
}

var presets = map[string]preset{
	"BTC-USD": {64000, 2, 4},
	"ETH-USD": {3400, 2, 3},
	"SOL-USD": {150, 2, 2},
}

func newMarket(sym, prefix string, depth int, rng *rand.Rand) *market {
	p, ok := presets[sym]
	if !ok {
		// Log-uniform between 0.05 and 5000, with a plausible tick and lot.
		price := math.Exp(math.Log(0.05) + rng.Float64()*(math.Log(5000)-math.Log(0.05)))
		p = preset{price: price, priceDec: 2, sizeDec: 0}
		switch {
		case price < 1:
			p.priceDec = 4
		case price < 10:
			p.priceDec = 3
		}
		switch {
		case price >= 1000:
			p.sizeDec = 4
		case price >= 10:
			p.sizeDec = 2
		}
	}
	m := &market{
		sym:      sym,
		priceDec: p.priceDec,
		sizeDec:  p.sizeDec,
		depth:    depth,
		minMid:   10,
		tradeID:  1000 + rng.Int64N(1_000_000),
	}
	for _, k := range proto.Kinds() {
		params := k.Spec().Params
		if len(params) == 0 {
			params = []string{""}
		}
		for _, p := range params {
			ch := proto.Channel{Kind: k, Param: p, Symbol: sym}
			m.channels = append(m.channels, simChannel{ch: ch, subject: ch.Subject(prefix)})
		}
	}
	for _, iv := range proto.CandleIntervals() {
		m.series = append(m.series, barSeries{interval: iv, d: proto.IntervalDuration(iv).Nanoseconds()})
	}
	m.mid = max(int64(math.Round(p.price*math.Pow10(p.priceDec))), m.minMid)
	m.typical = max(1, int64(math.Round(20000/p.price*math.Pow10(p.sizeDec))))
	m.last = m.mid
	m.fill(rng)
	return m
}

// channel returns the index in m.channels of the channel of kind k with
// param p.
func (m *market) channel(k proto.Kind, p string) int {
	for i := range m.channels {
		if c := &m.channels[i].ch; c.Kind == k && c.Param == p {
			return i
		}
	}
	panic("feedsim: no channel " + k.String() + "." + p)
}

// trade adds a trade of lots at tick, made at now, to every interval's
// bars: a trade in a new period closes the bar before.
func (m *market) addTrade(tick, lots int64, now time.Time) {
	ns := now.UnixNano()
	for i := range m.series {
		s := &m.series[i]
		start := ns - ns%s.d
		if s.cur != nil && s.cur.start != start {
			s.closing = append(s.closing, *s.cur)
			s.cur = nil
		}
		if s.cur == nil {
			s.cur = &bar{start: start, open: tick, high: tick, low: tick}
		}
		b := s.cur
		b.high, b.low, b.close = max(b.high, tick), min(b.low, tick), tick
		b.volume += lots
		b.trades++
	}
}

// price formats ticks with the market's fixed decimals ("64000.10").
func (m *market) price(tick int64) string { return fixed(tick, m.priceDec, false) }

// size formats lots without trailing zeros ("1.5", "2").
func (m *market) size(lots int64) string { return fixed(lots, m.sizeDec, true) }

// fixed formats v·10^-dec, trimming trailing fractional zeros when trim.
func fixed(v int64, dec int, trim bool) string {
	s := strconv.FormatInt(v, 10)
	if dec == 0 {
		return s
	}
	for len(s) <= dec {
		s = "0" + s
	}
	ip, fp := s[:len(s)-dec], s[len(s)-dec:]
	if trim {
		for len(fp) > 0 && fp[len(fp)-1] == '0' {
			fp = fp[:len(fp)-1]
		}
		if fp == "" {
			return ip
		}
	}
	return ip + "." + fp
}

func (m *market) randSize(rng *rand.Rand) int64 { return 1 + rng.Int64N(2*m.typical) }

// fill trims both sides to depth and fills them up to depth beyond their
// worst level, one or two ticks apart. Bids stop above tick 0.
func (m *market) fill(rng *rand.Rand) {
	if len(m.bids) > m.depth {
		m.bids = m.bids[:m.depth]
	}
	if len(m.asks) > m.depth {
		m.asks = m.asks[:m.depth]
	}
	for len(m.bids) < m.depth {
		t := m.mid - 1
		if n := len(m.bids); n > 0 {
			t = m.bids[n-1].tick - 1 - rng.Int64N(2)
		}
		if t <= 0 {
			break
		}
		m.bids = append(m.bids, level{t, m.randSize(rng)})
	}
	for len(m.asks) < m.depth {
		t := m.mid + 1
		if n := len(m.asks); n > 0 {
			t = m.asks[n-1].tick + 1 + rng.Int64N(2)
		}
		m.asks = append(m.asks, level{t, m.randSize(rng)})
	}
}

// step moves the book: a random walk of the mid, a few size changes, an
// occasional level removal, new inside levels when the mid moved away, and
// depth kept; the book never crosses (bids < mid < asks).
func (m *market) step(rng *rand.Rand) {
	if rng.Float64() < 0.35 {
		d := 1 + rng.Int64N(3)
		if rng.IntN(2) == 0 {
			d = -d
		}
		m.mid = max(m.mid+d, m.minMid)
	}
	for len(m.bids) > 0 && m.bids[0].tick >= m.mid {
		m.bids = m.bids[1:]
	}
	for len(m.asks) > 0 && m.asks[0].tick <= m.mid {
		m.asks = m.asks[1:]
	}
	for range 1 + rng.IntN(3) {
		side := m.bids
		if rng.IntN(2) == 0 {
			side = m.asks
		}
		if len(side) == 0 {
			continue
		}
		j := rng.IntN(len(side))
		if rng.Float64() < 0.7 {
			j = rng.IntN(min(len(side), 5))
		}
		side[j].size = m.randSize(rng)
	}
	if rng.Float64() < 0.15 && len(m.bids) > 1 {
		j := 1 + rng.IntN(len(m.bids)-1)
		m.bids = append(m.bids[:j], m.bids[j+1:]...)
	}
	if rng.Float64() < 0.15 && len(m.asks) > 1 {
		j := 1 + rng.IntN(len(m.asks)-1)
		m.asks = append(m.asks[:j], m.asks[j+1:]...)
	}
	if len(m.bids) == 0 || m.bids[0].tick < m.mid-3 {
		if t := m.mid - 1 - rng.Int64N(2); t > 0 {
			m.bids = append([]level{{t, m.randSize(rng)}}, m.bids...)
		}
	}
	if len(m.asks) == 0 || m.asks[0].tick > m.mid+3 {
		t := m.mid + 1 + rng.Int64N(2)
		m.asks = append([]level{{t, m.randSize(rng)}}, m.asks...)
	}
	m.fill(rng)
}

// diff appends to dst the delta that turns old into cur, both in book order
// (desc: highest first): removed levels with size "0", new or resized ones
// with their size.
func (m *market) diff(dst []proto.Level, old, cur []level, desc bool) []proto.Level {
	ahead := func(a, b int64) bool {
		if desc {
			return a > b
		}
		return a < b
	}
	i, j := 0, 0
	for i < len(old) || j < len(cur) {
		switch {
		case j == len(cur) || (i < len(old) && ahead(old[i].tick, cur[j].tick)):
			dst = append(dst, proto.Level{m.price(old[i].tick), "0"})
			i++
		case i == len(old) || ahead(cur[j].tick, old[i].tick):
			dst = append(dst, proto.Level{m.price(cur[j].tick), m.size(cur[j].size)})
			j++
		default:
			if old[i].size != cur[j].size {
				dst = append(dst, proto.Level{m.price(cur[j].tick), m.size(cur[j].size)})
			}
			i++
			j++
		}
	}
	return dst
}

// levels appends up to n levels of side to dst in wire form (n < 0: all).
func (m *market) levels(dst []proto.Level, side []level, n int) []proto.Level {
	if n >= 0 && len(side) > n {
		side = side[:n]
	}
	for _, l := range side {
		dst = append(dst, proto.Level{m.price(l.tick), m.size(l.size)})
	}
	return dst
}

// checksum returns proto.BookChecksum of the current book.
func (m *market) checksum(scratch []proto.Level) uint32 {
	b := m.levels(scratch[:0], m.bids, proto.ChecksumDepth)
	nb := len(b)
	b = m.levels(b, m.asks, proto.ChecksumDepth)
	return proto.BookChecksum(b[:nb], b[nb:])
}
