package main

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/tickgate/tickgate/gateway"
)

// What `tickgate top` shows, computed from two samples of each node and
// drawn as plain text: no terminal needed, so it is tested as a function
// (topview_test.go) and the terminal program only puts it on screen.

// nodeSample is one reading of one node's admin listener.
type nodeSample struct {
	url     string
	at      time.Time
	err     error
	metrics map[string]*dto.MetricFamily
	conns   gateway.ConnectionList // the slowest first (sort=lag)
	chans   gateway.ChannelList
}

// nodeView is one node's line: current values and rates over the last
// interval (NaN: not known yet).
type nodeView struct {
	name, url   string
	err         string
	connections float64
	connsPerSec float64 // upgrades
	handshakes  float64 // attempts per second: upgrades and refusals
	refused     float64 // refusals per second
	deliveries  float64 // messages written per second
	p50, p99    float64 // delivery latency over the interval, seconds
	channels    int
	stale       int
	nats        string
	evictions   map[string][2]float64 // reason → {over the interval, total}
	revoked     float64               // connections closed 4003, total
}

// topView is one screen.
type topView struct {
	at       time.Time
	interval time.Duration
	nodes    []nodeView
	busiest  []chanRow
	slowest  []connRow
	stale    []chanRow
}

type chanRow struct {
	node string
	gateway.ChannelInfo
}

type connRow struct {
	node string
	gateway.ConnectionInfo
}

// buildView computes the screen from the previous and the current
// sample of each node (prev may lack a node, or be nil at the start);
// rows bounds each table.
func buildView(prev, cur []nodeSample, rows int, interval time.Duration) topView {
	v := topView{interval: interval}
	for i, s := range cur {
		if s.at.After(v.at) {
			v.at = s.at
		}
		var p *nodeSample
		if i < len(prev) && prev[i].url == s.url && prev[i].err == nil {
			p = &prev[i]
		}
		n := nodeView{name: s.url, url: s.url, p50: math.NaN(), p99: math.NaN(),
			connsPerSec: math.NaN(), handshakes: math.NaN(), refused: math.NaN(), deliveries: math.NaN()}
		if s.err != nil {
			n.err = s.err.Error()
			v.nodes = append(v.nodes, n)
			continue
		}
		if s.conns.Node != "" {
			n.name = s.conns.Node
		}
		m := s.metrics
		n.connections = sumValues(m, "tickgate_connections_active")
		n.nats = "down"
		if sumValues(m, "tickgate_nats_connected") > 0 {
			n.nats = "up"
		}
		n.channels = s.chans.Total
		n.revoked = sumValues(m, "tickgate_revocation_closes_total")
		n.evictions = map[string][2]float64{}
		for reason, total := range byLabel(m, "tickgate_evictions_total", "reason") {
			n.evictions[reason] = [2]float64{math.NaN(), total}
		}
		if p != nil {
			dt := s.at.Sub(p.at).Seconds()
			rate := func(name string) float64 {
				return max(sumValues(m, name)-sumValues(p.metrics, name), 0) / dt
			}
			n.connsPerSec = rate("tickgate_handshake_duration_seconds_count")
			n.refused = rate("tickgate_handshake_failures_total")
			n.handshakes = n.connsPerSec + n.refused
			n.deliveries = rate("tickgate_messages_sent_total")
			d := deltaBuckets(buckets(p.metrics, "tickgate_delivery_latency_seconds"), buckets(m, "tickgate_delivery_latency_seconds"))
			n.p50, n.p99 = quantile(0.5, d), quantile(0.99, d)
			before := byLabel(p.metrics, "tickgate_evictions_total", "reason")
			for reason, e := range n.evictions {
				n.evictions[reason] = [2]float64{max(e[1]-before[reason], 0), e[1]}
			}
		}
		for _, c := range s.chans.Channels {
			v.busiest = append(v.busiest, chanRow{n.name, c})
			if c.State != "live" {
				n.stale++
				v.stale = append(v.stale, chanRow{n.name, c})
			}
		}
		for _, c := range s.conns.Connections {
			v.slowest = append(v.slowest, connRow{n.name, c})
		}
		v.nodes = append(v.nodes, n)
	}
	slices.SortFunc(v.busiest, func(a, b chanRow) int {
		return cmp.Or(cmp.Compare(b.FeedRate*float64(max(b.Subscribers, 1)), a.FeedRate*float64(max(a.Subscribers, 1))),
			cmp.Compare(b.Subscribers, a.Subscribers), cmp.Compare(a.Channel, b.Channel), cmp.Compare(a.node, b.node))
	})
	slices.SortFunc(v.slowest, func(a, b connRow) int {
		return cmp.Or(cmp.Compare(b.LagMS, a.LagMS), cmp.Compare(b.Pending, a.Pending), cmp.Compare(a.ConnectedAt, b.ConnectedAt), cmp.Compare(a.ID, b.ID))
	})
	slices.SortFunc(v.stale, func(a, b chanRow) int { return cmp.Or(cmp.Compare(a.Channel, b.Channel), cmp.Compare(a.node, b.node)) })
	v.busiest = v.busiest[:min(len(v.busiest), rows)]
	v.slowest = v.slowest[:min(len(v.slowest), rows)]
	v.stale = v.stale[:min(len(v.stale), rows)]
	return v
}

// sumValues is the sum of every series of a counter, gauge or untyped
// family (0 when absent); for a histogram, of its counts.
func sumValues(m map[string]*dto.MetricFamily, name string) float64 {
	if c, ok := strings.CutSuffix(name, "_count"); ok {
		if mf := m[c]; mf != nil && mf.GetType() == dto.MetricType_HISTOGRAM {
			total := 0.0
			for _, s := range mf.GetMetric() {
				total += float64(s.GetHistogram().GetSampleCount())
			}
			return total
		}
	}
	total := 0.0
	for _, s := range m[name].GetMetric() {
		switch {
		case s.GetCounter() != nil:
			total += s.GetCounter().GetValue()
		case s.GetGauge() != nil:
			total += s.GetGauge().GetValue()
		case s.GetUntyped() != nil:
			total += s.GetUntyped().GetValue()
		}
	}
	return total
}

// byLabel sums a counter family by one label's value.
func byLabel(m map[string]*dto.MetricFamily, name, label string) map[string]float64 {
	out := map[string]float64{}
	for _, s := range m[name].GetMetric() {
		for _, l := range s.GetLabel() {
			if l.GetName() == label {
				out[l.GetValue()] += s.GetCounter().GetValue()
			}
		}
	}
	return out
}

// bucket is one cumulative histogram bucket.
type bucket struct {
	upper float64
	count float64
}

// buckets returns a histogram family's cumulative buckets, summed over
// its series, by upper bound, ending with +Inf (the sample count).
func buckets(m map[string]*dto.MetricFamily, name string) []bucket {
	mf := m[name]
	if mf == nil || mf.GetType() != dto.MetricType_HISTOGRAM {
		return nil
	}
	sums := map[float64]float64{}
	total := 0.0
	for _, s := range mf.GetMetric() {
		h := s.GetHistogram()
		total += float64(h.GetSampleCount())
		for _, b := range h.GetBucket() {
			sums[b.GetUpperBound()] += float64(b.GetCumulativeCount())
		}
	}
	out := make([]bucket, 0, len(sums)+1)
	for ub, c := range sums {
		if !math.IsInf(ub, 1) {
			out = append(out, bucket{ub, c})
		}
	}
	slices.SortFunc(out, func(a, b bucket) int { return cmp.Compare(a.upper, b.upper) })
	return append(out, bucket{math.Inf(1), total})
}

// deltaBuckets is what cur counted since prev (cur alone when prev is
// missing or its buckets differ, or a counter went back: a restart).
func deltaBuckets(prev, cur []bucket) []bucket {
	if len(prev) != len(cur) {
		return cur
	}
	out := make([]bucket, len(cur))
	for i := range cur {
		if prev[i].upper != cur[i].upper || cur[i].count < prev[i].count {
			return cur
		}
		out[i] = bucket{cur[i].upper, cur[i].count - prev[i].count}
	}
	return out
}

// quantile estimates the q-quantile of cumulative buckets as Prometheus's
// histogram_quantile does: linear within the bucket that holds the rank
// (from 0 for the first), the highest finite bound for the +Inf bucket;
// NaN without observations.
func quantile(q float64, bs []bucket) float64 {
	if len(bs) == 0 || bs[len(bs)-1].count <= 0 {
		return math.NaN()
	}
	rank := q * bs[len(bs)-1].count
	i, _ := slices.BinarySearchFunc(bs, rank, func(b bucket, r float64) int { return cmp.Compare(b.count, r) })
	i = min(i, len(bs)-1)
	if math.IsInf(bs[i].upper, 1) {
		if i == 0 {
			return math.NaN()
		}
		return bs[i-1].upper
	}
	lower, below := 0.0, 0.0
	if i > 0 {
		lower, below = bs[i-1].upper, bs[i-1].count
	}
	if bs[i].count == below {
		return bs[i].upper
	}
	return lower + (bs[i].upper-lower)*(rank-below)/(bs[i].count-below)
}

// render draws v in width columns and at most height lines (0: no limit).
func render(v topView, width, height int) string {
	var b strings.Builder
	line := func(s string) { b.WriteString(s + "\n") }
	at := "—"
	if !v.at.IsZero() {
		at = v.at.UTC().Format("15:04:05 UTC")
	}
	line(fmt.Sprintf("tickgate top · %d node(s) · every %v · %s · q quits", len(v.nodes), v.interval, at))
	line("")
	table(&b, []string{"NODE", "CONNS", "CONN/S", "HSHAKE/S", "REFUSED/S", "DELIVER/S", "P50", "P99", "CHANNELS", "STALE", "REVOKED", "NATS"}, len(v.nodes), func(i int) []string {
		n := v.nodes[i]
		if n.err != "" {
			return []string{n.name, "error: " + n.err}
		}
		return []string{n.name, fmt.Sprint(n.connections), rateText(n.connsPerSec), rateText(n.handshakes), rateText(n.refused),
			rateText(n.deliveries), latencyText(n.p50), latencyText(n.p99), fmt.Sprint(n.channels), fmt.Sprint(n.stale),
			fmt.Sprint(n.revoked), n.nats}
	})
	line("")
	line("EVICTIONS (last interval / total)")
	for _, n := range v.nodes {
		if n.err != "" {
			continue
		}
		reasons := make([]string, 0, len(n.evictions))
		for r := range n.evictions {
			reasons = append(reasons, r)
		}
		slices.Sort(reasons)
		parts := make([]string, 0, len(reasons))
		for _, r := range reasons {
			e := n.evictions[r]
			last := "-"
			if !math.IsNaN(e[0]) {
				last = fmt.Sprint(e[0])
			}
			parts = append(parts, fmt.Sprintf("%s %s/%v", r, last, e[1]))
		}
		line("  " + n.name + "  " + strings.Join(parts, "  "))
	}
	line("")
	line("BUSIEST CHANNELS")
	table(&b, []string{"NODE", "CHANNEL", "SUBS", "MSG/S", "LAST SEQ", "HISTORY", "STATE"}, len(v.busiest), func(i int) []string {
		c := v.busiest[i]
		return []string{c.node, c.Channel, fmt.Sprint(c.Subscribers), fmt.Sprintf("%.1f", c.FeedRate), fmt.Sprint(c.LastSeq), fmt.Sprint(c.History), c.State}
	})
	line("")
	line("SLOWEST CONNECTIONS")
	table(&b, []string{"NODE", "ID", "SUB", "REMOTE", "LAG", "PENDING", "RTT", "SUBS", "SENT", "CODEC"}, len(v.slowest), func(i int) []string {
		c := v.slowest[i]
		rtt := "-"
		if c.LastPongRTTMS != nil {
			rtt = latencyText(*c.LastPongRTTMS / 1e3)
		}
		return []string{c.node, c.ID, c.Sub, c.Remote, fmt.Sprintf("%dms", c.LagMS), fmt.Sprint(c.Pending), rtt,
			fmt.Sprint(len(c.Subscriptions)), fmt.Sprint(c.MessagesSent), c.Codec}
	})
	line("")
	line("STALE CHANNELS")
	table(&b, []string{"NODE", "CHANNEL", "STATE", "SUBS", "LAST SEQ"}, len(v.stale), func(i int) []string {
		c := v.stale[i]
		return []string{c.node, c.Channel, c.State, fmt.Sprint(c.Subscribers), fmt.Sprint(c.LastSeq)}
	})
	return clipScreen(b.String(), width, height)
}

// table writes a header and n rows as aligned columns, or "(none)".
func table(b *strings.Builder, header []string, n int, row func(i int) []string) {
	if n == 0 {
		b.WriteString("  (none)\n")
		return
	}
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  "+strings.Join(header, "\t"))
	for i := range n {
		fmt.Fprintln(tw, "  "+strings.Join(row(i), "\t"))
	}
	_ = tw.Flush()
}

// clipScreen cuts every line to width runes and the text to height lines.
func clipScreen(s string, width, height int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if height > 0 && len(lines) > height {
		lines = lines[:height]
	}
	for i, l := range lines {
		l = strings.TrimRight(l, " ")
		if r := []rune(l); width > 0 && len(r) > width {
			l = string(r[:width])
		}
		lines[i] = l
	}
	return strings.Join(lines, "\n")
}

func rateText(r float64) string {
	if math.IsNaN(r) {
		return "-"
	}
	return fmt.Sprintf("%.1f", r)
}

// latencyText shows seconds in a readable unit ("-" for NaN).
func latencyText(s float64) string {
	switch {
	case math.IsNaN(s):
		return "-"
	case s < 0.001:
		return fmt.Sprintf("%.0fµs", s*1e6)
	case s < 1:
		return fmt.Sprintf("%.1fms", s*1e3)
	}
	return fmt.Sprintf("%.2fs", s)
}
