package gateway

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// The tallied histogram puts every sample where prometheus.Histogram, with
// the bounds tickgate_delivery_latency_seconds always had, puts it, and
// exposes the same buckets, count and sum, however the samples are split
// into writes.
func TestLatencyHistogramMatchesPrometheus(t *testing.T) {
	edges := []int64{math.MinInt64 / 2, -1, 0, 1, latencyFirstNs - 1, latencyFirstNs, latencyFirstNs + 1}
	for k := 1; k < latencyBuckets+2; k++ {
		bound := int64(latencyFirstNs) << k
		edges = append(edges, bound-1, bound, bound+1)
	}
	edges = append(edges, math.MaxInt64/4)
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]int64, 5000)
	for i := range random {
		random[i] = int64(rng.ExpFloat64() * 2e6) // around a few ms, with a long tail
	}
	cases := map[string]struct {
		samples  []int64
		perWrite int
	}{
		"bucket edges, one per write":       {edges, 1},
		"bucket edges, all in one write":    {edges, len(edges)},
		"random latencies, a dozen a write": {random, 12},
		"random latencies, 1000 a write":    {random, 1000},
		"no samples":                        {nil, 1},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			want := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "x", Buckets: prometheus.ExponentialBuckets(0.00005, 2, 18)})
			got := newLatencyHistogram("x", "")
			var tally latencyTally
			for i, ns := range tc.samples {
				want.Observe(float64(ns) / 1e9)
				tally.add(ns)
				if (i+1)%tc.perWrite == 0 {
					tally.flush(got)
				}
			}
			tally.flush(got)
			if tally != (latencyTally{}) {
				t.Fatalf("flush left %+v", tally)
			}
			w, g := histogramOf(t, want), histogramOf(t, got)
			if g.GetSampleCount() != w.GetSampleCount() {
				t.Fatalf("count %d, want %d", g.GetSampleCount(), w.GetSampleCount())
			}
			if math.Abs(g.GetSampleSum()-w.GetSampleSum()) > 1e-6*math.Max(1, math.Abs(w.GetSampleSum())) {
				t.Fatalf("sum %g, want %g", g.GetSampleSum(), w.GetSampleSum())
			}
			if len(g.Bucket) != len(w.Bucket) {
				t.Fatalf("%d buckets, want %d", len(g.Bucket), len(w.Bucket))
			}
			for i := range w.Bucket {
				if g.Bucket[i].GetUpperBound() != w.Bucket[i].GetUpperBound() || g.Bucket[i].GetCumulativeCount() != w.Bucket[i].GetCumulativeCount() {
					t.Fatalf("bucket %d: le=%g %d, want le=%g %d", i, g.Bucket[i].GetUpperBound(), g.Bucket[i].GetCumulativeCount(),
						w.Bucket[i].GetUpperBound(), w.Bucket[i].GetCumulativeCount())
				}
			}
		})
	}
}

func histogramOf(t *testing.T, c prometheus.Collector) *dto.Histogram {
	t.Helper()
	ch := make(chan prometheus.Metric, 1)
	c.Collect(ch)
	var m dto.Metric
	if err := (<-ch).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram()
}

func BenchmarkDeliveryLatency(b *testing.B) {
	lat := make([]int64, 12) // a write of a dozen messages, 0.3-1.5 ms old
	for i := range lat {
		lat[i] = 300_000 + int64(i)*100_000
	}
	b.Run("observe", func(b *testing.B) {
		h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "x", Buckets: prometheus.ExponentialBuckets(0.00005, 2, 18)})
		b.ReportAllocs()
		for range b.N {
			for _, ns := range lat {
				h.Observe(float64(ns) / 1e9)
			}
		}
	})
	b.Run("tally", func(b *testing.B) {
		h := newLatencyHistogram("x", "")
		b.ReportAllocs()
		for range b.N {
			var t latencyTally
			for _, ns := range lat {
				t.add(ns)
			}
			t.flush(h)
		}
	})
}
