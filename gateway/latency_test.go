package gateway

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/tickgate/tickgate/proto"
)

// The tallied histograms put every sample where prometheus.Histogram, with
// the bounds tickgate_delivery_latency_seconds and tickgate_outbox_pending
// always had, puts it, and expose the same buckets, count and sum, however
// the samples are split into flushes.
func TestPow2HistogramsMatchPrometheus(t *testing.T) {
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
	// A round takes one message at least.
	pendingEdges := []int64{1, 2, 3}
	for k := 2; k < pendingBuckets+2; k++ {
		pendingEdges = append(pendingEdges, int64(1)<<k-1, int64(1)<<k, int64(1)<<k+1)
	}
	pendingEdges = append(pendingEdges, 1<<30)
	// A feed whose ts is 1 (or in milliseconds): every delivery is about
	// 56 years old; six of them took an int64 sum of nanoseconds past its
	// range, and the node's sum went negative.
	decades := make([]int64, 100)
	for i := range decades {
		decades[i] = time.Now().UnixNano() - 1
	}
	pendingRandom := make([]int64, 5000)
	for i := range pendingRandom {
		pendingRandom[i] = 1 + int64(rng.ExpFloat64()*8) // around ten, now and then hundreds
	}
	latency := func() (*pow2Histogram, prometheus.Histogram, func(int64) (int, float64)) {
		return newLatencyHistogram("x", ""), prometheus.NewHistogram(prometheus.HistogramOpts{Name: "x", Buckets: prometheus.ExponentialBuckets(0.00005, 2, 18)}),
			func(ns int64) (int, float64) { return latencyBucket(ns), float64(ns) / 1e9 }
	}
	pending := func() (*pow2Histogram, prometheus.Histogram, func(int64) (int, float64)) {
		return newPendingHistogram("x", ""), prometheus.NewHistogram(prometheus.HistogramOpts{Name: "x", Buckets: prometheus.ExponentialBuckets(1, 2, 14)}),
			func(n int64) (int, float64) { return pendingBucket(int(n)), float64(n) }
	}
	cases := map[string]struct {
		hist     func() (*pow2Histogram, prometheus.Histogram, func(int64) (int, float64))
		samples  []int64
		perFlush int
	}{
		"latency: bucket edges, one per flush":                {latency, edges, 1},
		"latency: bucket edges, all in one flush":             {latency, edges, len(edges)},
		"latency: random latencies, a dozen a flush":          {latency, random, 12},
		"latency: random latencies, 1000 a flush":             {latency, random, 1000},
		"latency: no samples":                                 {latency, nil, 1},
		"latency: a feed clock decades off, one per flush":    {latency, decades, 1},
		"latency: a feed clock decades off, all in one flush": {latency, decades, len(decades)},
		"pending: bucket edges, one per flush":                {pending, pendingEdges, 1},
		"pending: bucket edges, all in one flush":             {pending, pendingEdges, len(pendingEdges)},
		"pending: random rounds, a hundred a flush":           {pending, pendingRandom, 100},
		"pending: no samples":                                 {pending, nil, 1},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, want, sample := tc.hist()
			var tl tally
			for i, v := range tc.samples {
				b, observed := sample(v)
				want.Observe(observed)
				tl.add(b, v)
				if (i+1)%tc.perFlush == 0 {
					tl.flush(got)
				}
			}
			tl.flush(got)
			if tl != (tally{}) {
				t.Fatalf("flush left %+v", tl)
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
			var t tally
			for _, ns := range lat {
				t.add(latencyBucket(ns), ns)
			}
			t.flush(h)
		}
	})
}

// What the writer rounds add to the node's write metrics, gathered in a
// writeTally per round on a writer goroutine and per sweep of inline
// rounds, adds up to what each connection counted at each write, and to
// the messages its client got: nothing is lost or counted twice between
// a round and its sweep's flush.
func TestWriteMetricsAddUpToTheConnections(t *testing.T) {
	e := newTestEnv(t, func(c *Config) {
		c.HeartbeatInterval = time.Hour
		c.LagTimeout = time.Hour
	})
	rounds := countWriters(e.srv)
	const conns, msgs = 4, 30
	tok := e.token(t, "tally", time.Hour, ">")
	clients := subscribedClients(t, e, conns, tok, "ticker.ETH-USD")
	waitWritersIdle(t, e.srv)
	type sums struct{ node, nodeBytes, pending, rounds, conn, connBytes uint64 }
	read := func() (s sums) {
		m := e.srv.metrics
		var d dto.Metric
		if err := m.messagesSent.Write(&d); err != nil {
			t.Fatal(err)
		}
		s.node = uint64(d.GetCounter().GetValue())
		if err := m.bytesSent.Write(&d); err != nil {
			t.Fatal(err)
		}
		s.nodeBytes = uint64(d.GetCounter().GetValue())
		h := histogramOf(t, m.outboxPending)
		s.pending, s.rounds = uint64(h.GetSampleSum()), h.GetSampleCount()
		e.srv.mu.Lock()
		for c := range e.srv.conns {
			s.conn += c.msgsSent.Load()
			s.connBytes += c.bytesSent.Load()
		}
		e.srv.mu.Unlock()
		return s
	}
	before := read()
	inline := rounds.inline.Load()
	got := uint64(0) // frames the clients got: the snapshot, then updates (merged when behind)
	publish := func(from, to uint64) {
		for seq := from; seq <= to; seq++ {
			e.publish(t, "ticker.ETH-USD", seq, proto.FeedUpdate, &proto.Ticker{Symbol: "ETH-USD", Bid: "1", BidSize: "1", Ask: "2", AskSize: "1", Last: fmt.Sprint(seq), Volume: "1", TS: time.Now().UnixNano()})
		}
		for _, c := range clients {
			for w := c.next(t); ; w = c.next(t) {
				got++
				if w.Seq == to {
					break
				}
			}
		}
		waitWritersIdle(t, e.srv)
	}
	publish(1, 1) // the channel's first state: each client's snapshot
	publish(2, 2) // a lone message to idle writers: a sweep of inline rounds
	if rounds.inline.Load() == inline {
		t.Fatal("no round ran inline: a sweep's tally was not exercised")
	}
	starts := rounds.starts.Load()
	publish(3, msgs) // back to back: the writers woken while the node catches up
	if rounds.starts.Load() == starts {
		t.Fatal("no writer goroutine started: a goroutine's tally was not exercised")
	}
	var now sums
	waitFor(t, "the node's write metrics to add up to its connections'", func() bool {
		now = read()
		return now.node-before.node == got && now.conn-before.conn == got &&
			now.nodeBytes-before.nodeBytes == now.connBytes-before.connBytes && now.pending-before.pending == got
	})
	if r := now.rounds - before.rounds; r < conns || r > got {
		t.Fatalf("%d rounds with data for %d messages to %d connections", r, got, conns)
	}
}
