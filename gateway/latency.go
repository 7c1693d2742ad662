package gateway

import (
	"math/bits"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// The delivery latency histogram, tickgate_delivery_latency_seconds.
//
// It has a sample per delivered message. A prometheus.Histogram's Observe
// is four atomic operations on shared lines (the count, the bucket, a
// compare-and-swap loop on the float sum, the hot/cold index), and a
// search of the bounds: 1.1% of the node's CPU in the bursty workload,
// where the write the samples belong to carries a dozen messages
// (docs/benchmarks.md). Here a writer tallies a write's samples in a
// latencyTally on its stack, and adds the tally to the histogram once
// per write: an atomic add per bucket the write's samples fell in
// (mostly one or two), and one for the sum. The buckets are powers of two
// of 50 µs, found by a bit length, not a search.

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
	q := uint64(ns-1)/latencyFirstNs + 1 // ceil(ns / 50 µs) ≥ 2
	return min(bits.Len64(q-1), latencyBuckets)
}

// latencyTally counts one write's samples; the zero value is empty.
// Owned by the writer that fills it.
type latencyTally struct {
	counts [latencyBuckets + 1]uint32 // by bucket, not cumulative; the last is +Inf
	n      uint32                     // samples
	sumNs  int64
}

// add counts a latency of ns nanoseconds.
func (t *latencyTally) add(ns int64) {
	t.counts[latencyBucket(ns)]++
	t.n++
	t.sumNs += ns
}

// latencyHistogram is tickgate_delivery_latency_seconds, filled by
// latencyTally.flush and read by the registry's scrapes. Safe for
// concurrent use.
type latencyHistogram struct {
	desc   *prometheus.Desc
	bounds []float64                         // Static: the upper bounds in seconds.
	counts [latencyBuckets + 1]atomic.Uint64 // By bucket, not cumulative; the last is +Inf.
	sumNs  atomic.Int64
}

func newLatencyHistogram(name, help string) *latencyHistogram {
	return &latencyHistogram{
		desc:   prometheus.NewDesc(name, help, nil, nil),
		bounds: latencyBounds(),
	}
}

// flush adds t's samples to h and empties t.
func (t *latencyTally) flush(h *latencyHistogram) {
	if t.n == 0 {
		return
	}
	for b, c := range t.counts {
		if c > 0 {
			h.counts[b].Add(uint64(c))
		}
	}
	h.sumNs.Add(t.sumNs)
	*t = latencyTally{}
}

// Describe is prometheus.Collector's.
func (h *latencyHistogram) Describe(ch chan<- *prometheus.Desc) { ch <- h.desc }

// Collect is prometheus.Collector's. The count is the buckets' total, so
// a scrape that lands in the middle of a flush is consistent in its
// buckets and count; the sum may lack that flush's share until the next.
func (h *latencyHistogram) Collect(ch chan<- prometheus.Metric) {
	cum := make(map[float64]uint64, len(h.bounds))
	var n uint64
	for b, upper := range h.bounds {
		n += h.counts[b].Load()
		cum[upper] = n
	}
	n += h.counts[latencyBuckets].Load()
	ch <- prometheus.MustNewConstHistogram(h.desc, n, float64(h.sumNs.Load())/1e9, cum)
}
