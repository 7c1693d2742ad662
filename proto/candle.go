package proto

import "time"

// candleIntervals are the intervals of candle channels, in wire order, and
// their lengths.
var candleIntervals = [...]struct {
	name string
	d    time.Duration
}{
	{"1m", time.Minute},
	{"5m", 5 * time.Minute},
	{"15m", 15 * time.Minute},
	{"1h", time.Hour},
	{"4h", 4 * time.Hour},
	{"1d", 24 * time.Hour},
}

// CandleIntervals returns the intervals of candle channels, shortest
// first: candle.<interval>.<symbol> (docs/protocol.md §5.1).
func CandleIntervals() []string {
	out := make([]string, len(candleIntervals))
	for i, iv := range candleIntervals {
		out[i] = iv.name
	}
	return out
}

// IntervalDuration returns the length of a candle interval ("1m": one
// minute), or 0 for a name that is not one. Bars start at multiples of it
// since the Unix epoch, UTC: a 1d bar at midnight UTC.
func IntervalDuration(interval string) time.Duration {
	for _, iv := range candleIntervals {
		if iv.name == interval {
			return iv.d
		}
	}
	return 0
}

// Candle is one OHLCV bar of a candle channel (contract 1.1), identified
// by Start, the Unix nanosecond its interval begins. The publisher sends
// the open bar as it changes and exactly one message with Closed set per
// bar, before the first message of the next bar.
type Candle struct {
	Symbol   string `json:"symbol" msgpack:"symbol"`
	Interval string `json:"interval" msgpack:"interval"`
	Start    int64  `json:"start" msgpack:"start"`
	Open     string `json:"open" msgpack:"open"`
	High     string `json:"high" msgpack:"high"`
	Low      string `json:"low" msgpack:"low"`
	Close    string `json:"close" msgpack:"close"`
	Volume   string `json:"volume" msgpack:"volume"`
	Trades   int64  `json:"trades" msgpack:"trades"`
	Closed   bool   `json:"closed" msgpack:"closed"`
	TS       int64  `json:"ts" msgpack:"ts"`
}

// EventTS implements Data.
func (c *Candle) EventTS() int64 { return c.TS }

// Revises implements Revisable: a bar revises a pending one that is still
// open and has the same start.
func (c *Candle) Revises(prev any) bool {
	p, ok := prev.(*Candle)
	return ok && !p.Closed && p.Start == c.Start
}

// CandleSnapshot is the data of a candle channel's snapshot: up to the
// subscriber's bars newest bars, oldest first, the last one possibly open.
type CandleSnapshot struct {
	Symbol   string    `json:"symbol" msgpack:"symbol"`
	Interval string    `json:"interval" msgpack:"interval"`
	Bars     []*Candle `json:"bars" msgpack:"bars"`
}

// TradeSnapshot is the data of a trade channel's snapshot, when a
// subscriber asked for recent trades: up to that many newest trades,
// oldest first.
type TradeSnapshot struct {
	Symbol string   `json:"symbol" msgpack:"symbol"`
	Trades []*Trade `json:"trades" msgpack:"trades"`
}
