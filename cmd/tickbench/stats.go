package main

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Latency histogram range, in microseconds: 1 µs to 60 s with three
// significant digits (HdrHistogram: every value is recorded with a relative
// error below 0.1%).
const (
	latencyMinMicros = 1
	latencyMaxMicros = 60_000_000
	latencyDigits    = 3
	latencyShards    = 16
)

// latencies is a sharded HDR histogram of publish-to-receive latency: each
// client records into the shard of its index, so 10k readers do not all
// contend on one lock.
type latencies struct {
	shards [latencyShards]struct {
		mu sync.Mutex
		h  *hdrhistogram.Histogram // Guarded by mu.
	}
}

func newLatencies() *latencies {
	l := &latencies{}
	for i := range l.shards {
		l.shards[i].h = hdrhistogram.New(latencyMinMicros, latencyMaxMicros, latencyDigits)
	}
	return l
}

// micros is d in the histograms' unit, clamped to their range.
func micros(d time.Duration) int64 {
	return min(max(d.Microseconds(), latencyMinMicros), latencyMaxMicros)
}

// record adds one latency, clamped to the histogram's range.
func (l *latencies) record(shard int, d time.Duration) {
	s := &l.shards[shard%latencyShards]
	s.mu.Lock()
	_ = s.h.RecordValue(micros(d))
	s.mu.Unlock()
}

// merged returns a copy holding every shard's values.
func (l *latencies) merged() *hdrhistogram.Histogram {
	out := hdrhistogram.New(latencyMinMicros, latencyMaxMicros, latencyDigits)
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		out.Merge(s.h)
		s.mu.Unlock()
	}
	return out
}

// counters are the run's shared tallies. Every field is atomic.
type counters struct {
	inWindow      atomic.Bool  // set during the measurement window
	delivered     atomic.Int64 // snapshot+update messages healthy clients got in the window
	deliveredAll  atomic.Int64 // the same over the whole run
	gaps          atomic.Int64 // updates whose prev was not the last seq held
	subErrors     atomic.Int64 // error replies to subscribes
	decodeErrors  atomic.Int64 // server messages that did not decode
	open          atomic.Int64 // connections subscribed and not closed
	healthyClosed atomic.Int64 // healthy connections closed by the other side
	evicted       atomic.Int64 // stalled connections seen closed by the gateway
	published     atomic.Int64 // feed messages published
	wireBytes     atomic.Int64 // bytes healthy clients read off their sockets in the window (TLS records included)
	frames        atomic.Int64 // WebSocket messages healthy clients read in the window (one may carry several server messages)
	publishErrors atomic.Int64
	unstamped     atomic.Int64 // healthy connections read without the kernel's receive timestamps
}
