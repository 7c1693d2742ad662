package main

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// tickerFeed is the comparison's feed: JSON ticker updates (the feed
// contract's shape, docs/protocol.md §9, about 170 bytes each) for every symbol
// in turn, stamped with the publish time in data.ts. Every server gets the
// same bytes: tickgate decodes them, nats-server and Centrifugo forward
// them as they are. Owned by the goroutine that runs it.
type tickerFeed struct {
	symbols  []string
	subjects []string // <prefix>.ticker.<symbol>
	seq      []uint64 // last seq per symbol
	period   time.Duration
	burst    int    // messages per period
	buf      []byte // the payload being built
	next     int    // the symbol the next message is for
}

// newTickerFeed publishes rate messages per second over all symbols, in
// groups of burst messages back to back (1: evenly spaced).
func newTickerFeed(prefix string, symbols []string, rate float64, burst int) (*tickerFeed, error) {
	if !(rate > 0) || burst < 1 {
		return nil, fmt.Errorf("ticker feed: rate %v, burst %d: want both positive", rate, burst)
	}
	f := &tickerFeed{
		symbols: symbols,
		seq:     make([]uint64, len(symbols)),
		period:  time.Duration(float64(burst) / rate * float64(time.Second)),
		burst:   burst,
	}
	for _, s := range symbols {
		f.subjects = append(f.subjects, prefix+".ticker."+s)
	}
	return f, nil
}

// message returns the next message's subject and payload; the payload is
// valid until the next call.
func (f *tickerFeed) message(now time.Time) (string, []byte) {
	i := f.next
	f.next = (f.next + 1) % len(f.symbols)
	f.seq[i]++
	seq := f.seq[i]
	cents := strconv.FormatUint(100+seq%900, 10)
	b := append(f.buf[:0], `{"seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, `,"type":"update","data":{"symbol":"`...)
	b = append(b, f.symbols[i]...)
	b = append(b, `","bid":"64000.`...)
	b = append(b, cents...)
	b = append(b, `","bid_size":"1.5","ask":"64001.`...)
	b = append(b, cents...)
	b = append(b, `","ask_size":"0.7","last":"64000.`...)
	b = append(b, cents...)
	b = append(b, `","volume":"1234.5","ts":`...)
	b = strconv.AppendInt(b, now.UnixNano(), 10)
	b = append(b, "}}"...)
	f.buf = b
	return f.subjects[i], b
}

// run publishes until ctx ends, keeping to the schedule: a publisher that
// fell behind catches up at once rather than slipping. Each tick's burst
// is published, then flushed: it reaches NATS together, as a feed
// handler's burst through the NATS client library does.
func (f *tickerFeed) run(ctx context.Context, publish func(subject string, payload []byte) error, flush func() error) error {
	start := time.Now()
	for k := 0; ; k++ {
		if d := time.Until(start.Add(time.Duration(k) * f.period)); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		} else if err := ctx.Err(); err != nil {
			return err
		}
		for range f.burst {
			subject, payload := f.message(time.Now())
			if err := publish(subject, payload); err != nil {
				return err
			}
		}
		if err := flush(); err != nil {
			return err
		}
	}
}
