package gateway

import (
	"math"
	"math/bits"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// The delivery latency histogram, tickgate_delivery_latency_seconds, and
// the messages a writer round takes, tickgate_outbox_pending.
//
// The first has a sample per delivered message, the second one per
// round. A prometheus.Histogram's Observe is four atomic operations on
// shared lines (the count, the bucket, a compare-and-swap loop on the
// float sum, the hot/cold index), and a search of the bounds: 1.1% of
// the node's CPU in the bursty workload, where the write the samples
// belong to carries a dozen messages (docs/benchmarks.md). Here the
// writer rounds tally their samples in a tally (in a writeTally, with
// the counters of messages and bytes sent), and add the tally to the
// histogram at once: after each round on a writer goroutine, after the
// last round of an inline sweep (sweepHeld) for all of its rounds. That
// is an atomic add per bucket the samples fell in (mostly one or two),
// and one for the sum. The buckets are powers of two (of 50 µs, of one
// message), found by a bit length, not a search.

const (
	latencyBuckets = 18     // finite buckets: 50 µs × 2^k, k = 0..17 (about 6.6 s)
	latencyFirstNs = 50_000 // the first bucket's upper bound, in ns
)

// latencyBounds are the buckets' upper bounds in seconds, as exposed.
func latencyBounds() []float64 {
	return prometheus.ExponentialBuckets(float64(latencyFirstNs)/1e9, 2, latencyBuckets)
}

// latencyBucket is the bucket of a latency of ns nanoseconds: the first
// whose upper bound is at least ns (le), latencyBuckets for +Inf. A
// negative latency (a feed clock ahead of the node's) is in the first.
func latencyBucket(ns int64) int {
	if ns <= latencyFirstNs {
		return 0
	}
	return pow2Bucket(uint64(ns-1)/latencyFirstNs+1, latencyBuckets) // ceil(ns / 50 µs)
}

// pow2Bucket is the bucket of q units among finite buckets of 1, 2, 4, …
// 2^(finite-1) units: the first whose bound is at least q, finite for
// +Inf.
func pow2Bucket(q uint64, finite int) int {
	if q <= 1 {
		return 0
	}
	return min(bits.Len64(q-1), finite)
}

// pendingBuckets is tickgate_outbox_pending's finite buckets: 1, 2, 4,
// … 8192 messages a round, as prometheus.ExponentialBuckets(1, 2, 14)
// made them when it was a prometheus.Histogram.
const pendingBuckets = 14

// pendingBucket is the bucket of a round that took n messages (n ≥ 1):
// the first whose upper bound 2^k is at least n, pendingBuckets for +Inf.
func pendingBucket(n int) int { return pow2Bucket(uint64(max(n, 1)), pendingBuckets) }

// tallyBuckets is the most buckets, +Inf included, a tally has room for:
// the delivery latency's.
const tallyBuckets = latencyBuckets + 1

// tally counts samples of one pow2Histogram by bucket, to be added to it
// at once (flush); the zero value is empty. Owned by the writer that
// fills it.
type tally struct {
	counts [tallyBuckets]uint32 // by bucket, not cumulative; the histogram's last is +Inf
	n      uint32               // samples
	sum    float64              // in the samples' unit; a float, as prometheus.Histogram's: a feed clock decades off (ts=1) must not wrap it
}

// add counts a sample v in bucket b.
func (t *tally) add(b int, v int64) {
	t.counts[b]++
	t.n++
	t.sum += float64(v)
}

// pow2Histogram is a histogram whose bounds double from one bucket to
// the next, filled by tally.flush and read by the registry's scrapes:
// tickgate_delivery_latency_seconds and tickgate_outbox_pending. Safe
// for concurrent use.
type pow2Histogram struct {
	desc   *prometheus.Desc
	bounds []float64                   // Static: the upper bounds, as exposed.
	per    float64                     // Static: samples' units in the exposed one (1e9: ns in a second).
	counts [tallyBuckets]atomic.Uint64 // By bucket, not cumulative; counts[len(bounds)] is +Inf.
	sum    atomic.Uint64               // The bits of a float64, in the samples' unit (addSum).
}

func newLatencyHistogram(name, help string) *pow2Histogram {
	return &pow2Histogram{desc: prometheus.NewDesc(name, help, nil, nil), bounds: latencyBounds(), per: 1e9}
}

func newPendingHistogram(name, help string) *pow2Histogram {
	return &pow2Histogram{desc: prometheus.NewDesc(name, help, nil, nil), bounds: prometheus.ExponentialBuckets(1, 2, pendingBuckets), per: 1}
}

// flush adds t's samples to h and empties t.
func (t *tally) flush(h *pow2Histogram) {
	if t.n == 0 {
		return
	}
	for b, c := range t.counts {
		if c > 0 {
			h.counts[b].Add(uint64(c))
		}
	}
	h.addSum(t.sum)
	*t = tally{}
}

// addSum adds v to h's sum. A flush runs once per writer round or sweep,
// so the loop rarely turns more than once.
func (h *pow2Histogram) addSum(v float64) {
	for {
		old := h.sum.Load()
		if h.sum.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

// Describe is prometheus.Collector's.
func (h *pow2Histogram) Describe(ch chan<- *prometheus.Desc) { ch <- h.desc }

// Collect is prometheus.Collector's. The count is the buckets' total, so
// a scrape that lands in the middle of a flush is consistent in its
// buckets and count; the sum may lack that flush's share until the next.
func (h *pow2Histogram) Collect(ch chan<- prometheus.Metric) {
	cum := make(map[float64]uint64, len(h.bounds))
	var n uint64
	for b, upper := range h.bounds {
		n += h.counts[b].Load()
		cum[upper] = n
	}
	for b := len(h.bounds); b < tallyBuckets; b++ {
		n += h.counts[b].Load() // +Inf (the slots beyond it stay empty)
	}
	ch <- prometheus.MustNewConstHistogram(h.desc, n, math.Float64frombits(h.sum.Load())/h.per, cum)
}

// writeTally gathers what writer rounds add to the node's write metrics:
// the delivery latency, the messages each round took
// (tickgate_outbox_pending), and the messages and bytes sent. Whoever runs
// the rounds owns it and flushes it: a writer goroutine after each round,
// a sweep of inline rounds once after its last (sweepHeld), so that a
// sweep of a hundred rounds touches the node's shared metric lines once
// rather than a hundred times. The connection's own counters
// (conn.msgsSent, bytesSent) are added per write.
type writeTally struct {
	m       *Metrics // the node's, set by each round (conn.round); nil: no round, nothing to flush
	lat     tally    // tickgate_delivery_latency_seconds
	pending tally    // tickgate_outbox_pending
	msgs    uint64
	bytes   uint64
}

// delivered counts a message delivered ns nanoseconds after its event.
func (t *writeTally) delivered(ns int64) { t.lat.add(latencyBucket(ns), ns) }

// took counts a round that took n messages (n ≥ 1).
func (t *writeTally) took(n int) { t.pending.add(pendingBucket(n), int64(n)) }

// flush adds what t holds to the node's metrics and empties t.
func (t *writeTally) flush() {
	m := t.m
	if m == nil {
		return
	}
	t.lat.flush(m.deliveryLatency)
	t.pending.flush(m.outboxPending)
	if t.msgs > 0 {
		m.messagesSent.Add(float64(t.msgs))
	}
	if t.bytes > 0 {
		m.bytesSent.Add(float64(t.bytes))
	}
	*t = writeTally{}
}
