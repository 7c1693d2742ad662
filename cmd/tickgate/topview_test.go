package main

import (
	"bytes"
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/tickgate/tickgate/gateway"
)

// metricsText builds an exposition with the series top reads.
func metricsText(conns, upgrades, refusals, sent, lagEvictions float64, latency [3]float64) string {
	return strings.Join([]string{
		"# TYPE tickgate_connections_active gauge",
		"tickgate_connections_active " + f64(conns),
		"# TYPE tickgate_nats_connected gauge",
		"tickgate_nats_connected 1",
		"# TYPE tickgate_messages_sent_total counter",
		"tickgate_messages_sent_total " + f64(sent),
		"# TYPE tickgate_handshake_failures_total counter",
		`tickgate_handshake_failures_total{reason="invalid_token"} ` + f64(refusals),
		`tickgate_handshake_failures_total{reason="draining"} 0`,
		"# TYPE tickgate_evictions_total counter",
		`tickgate_evictions_total{reason="lag_timeout"} ` + f64(lagEvictions),
		`tickgate_evictions_total{reason="trade_overflow"} 0`,
		"# TYPE tickgate_handshake_duration_seconds histogram",
		`tickgate_handshake_duration_seconds_bucket{le="+Inf"} ` + f64(upgrades),
		"tickgate_handshake_duration_seconds_sum 1",
		"tickgate_handshake_duration_seconds_count " + f64(upgrades),
		"# TYPE tickgate_delivery_latency_seconds histogram",
		// cumulative: latency[0] at or below 1ms, latency[1] up to 10ms, latency[2] beyond
		`tickgate_delivery_latency_seconds_bucket{le="0.001"} ` + f64(latency[0]),
		`tickgate_delivery_latency_seconds_bucket{le="0.01"} ` + f64(latency[0]+latency[1]),
		`tickgate_delivery_latency_seconds_bucket{le="+Inf"} ` + f64(latency[0]+latency[1]+latency[2]),
		"tickgate_delivery_latency_seconds_sum 1",
		"tickgate_delivery_latency_seconds_count " + f64(latency[0]+latency[1]+latency[2]),
		"# TYPE tickgate_revocation_closes_total counter",
		"tickgate_revocation_closes_total 2",
		"",
	}, "\n")
}

func f64(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

func parseMetrics(t *testing.T, text string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	m, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	return m
}

func TestQuantile(t *testing.T) {
	bs := []bucket{{0.001, 50}, {0.01, 90}, {0.1, 100}, {math.Inf(1), 100}}
	tests := []struct {
		q    float64
		bs   []bucket
		want float64
	}{
		{0.5, bs, 0.001},                                       // the rank falls on the first bucket's bound
		{0.25, bs, 0.0005},                                     // linear from 0 within the first
		{0.7, bs, 0.001 + 0.009*20/40},                         // within the second
		{0.99, bs, 0.01 + 0.09*9/10},                           // within the third
		{0.99, []bucket{{0.001, 1}, {math.Inf(1), 10}}, 0.001}, // in +Inf: the highest finite bound
		{0.5, []bucket{{0.001, 0}, {math.Inf(1), 0}}, math.NaN()},
		{0.5, nil, math.NaN()},
	}
	for _, tt := range tests {
		got := quantile(tt.q, tt.bs)
		if math.IsNaN(tt.want) != math.IsNaN(got) || !math.IsNaN(got) && math.Abs(got-tt.want) > 1e-12 {
			t.Errorf("quantile(%v, %v) = %v, want %v", tt.q, tt.bs, got, tt.want)
		}
	}
	prev := []bucket{{0.001, 10}, {math.Inf(1), 20}}
	if d := deltaBuckets(prev, []bucket{{0.001, 15}, {math.Inf(1), 40}}); d[0].count != 5 || d[1].count != 20 {
		t.Errorf("delta %v", d)
	}
	if d := deltaBuckets(prev, []bucket{{0.001, 1}, {math.Inf(1), 2}}); d[0].count != 1 { // a restart
		t.Errorf("delta after a restart %v", d)
	}
}

// TestTopView: two readings of two nodes (one failing) make the screen:
// rates over the interval, the latency of what was delivered in it,
// evictions, and the three tables merged over the nodes.
func TestTopView(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	rtt := 0.25
	conns := gateway.ConnectionList{Node: "gw-1", Total: 2, Connections: []gateway.ConnectionInfo{
		{ID: "slow0001", Sub: "alice", Remote: "10.0.0.1:5000", Codec: "json", LagMS: 1500, Pending: 40, Subscriptions: []string{"book.BTC-USD"}, MessagesSent: 900, LastPongRTTMS: &rtt},
		{ID: "fast0002", Sub: "bob", Remote: "10.0.0.2:5000", Codec: "msgpack", Subscriptions: []string{}},
	}}
	chans := gateway.ChannelList{Node: "gw-1", Total: 3, Channels: []gateway.ChannelInfo{
		{Channel: "ticker.BTC-USD", Subscribers: 2, FeedRate: 50, LastSeq: 1000, History: 1024, State: "live"},
		{Channel: "book.ETH-USD", Subscribers: 1, FeedRate: 2, LastSeq: 7, History: 3, State: "resyncing"},
		{Channel: "trade.SOL-USD", Subscribers: 9, FeedRate: 0, State: "stale"},
	}}
	prev := []nodeSample{
		{url: "http://127.0.0.1:9090", at: t0, metrics: parseMetrics(t, metricsText(2, 10, 4, 1000, 1, [3]float64{100, 0, 0})), conns: conns, chans: chans},
		{url: "http://127.0.0.1:9091", at: t0, err: errors.New("connection refused")},
	}
	cur := []nodeSample{
		{url: "http://127.0.0.1:9090", at: t0.Add(2 * time.Second), metrics: parseMetrics(t, metricsText(3, 14, 6, 3000, 2, [3]float64{150, 50, 0})), conns: conns, chans: chans},
		{url: "http://127.0.0.1:9091", at: t0.Add(2 * time.Second), err: errors.New("connection refused")},
	}
	v := buildView(prev, cur, 2, time.Second)
	n := v.nodes[0]
	if n.name != "gw-1" || n.connections != 3 || n.connsPerSec != 2 || n.refused != 1 || n.handshakes != 3 || n.deliveries != 1000 || n.nats != "up" {
		t.Fatalf("node %+v", n)
	}
	// 100 new deliveries: 50 within 1ms, 50 within 10ms: the median at
	// 1ms, the 99th in the second bucket.
	if math.Abs(n.p50-0.001) > 1e-9 || math.Abs(n.p99-(0.001+0.009*49/50)) > 1e-9 {
		t.Fatalf("p50 %v p99 %v", n.p50, n.p99)
	}
	if e := n.evictions["lag_timeout"]; e != [2]float64{1, 2} || n.stale != 2 || n.revoked != 2 {
		t.Fatalf("evictions %v stale %d revoked %v", n.evictions, n.stale, n.revoked)
	}
	if len(v.busiest) != 2 || v.busiest[0].Channel != "ticker.BTC-USD" || len(v.slowest) != 2 || v.slowest[0].ID != "slow0001" || len(v.stale) != 2 {
		t.Fatalf("tables %+v %+v %+v", v.busiest, v.slowest, v.stale)
	}

	screen := render(v, 200, 0)
	for _, want := range []string{
		"tickgate top · 2 node(s) · every 1s · 12:00:02 UTC",
		"gw-1", "1000.0", "1.0ms", "9.8ms",
		"http://127.0.0.1:9091  error: connection refused",
		"lag_timeout 1/2",
		"ticker.BTC-USD", "50.0",
		"slow0001", "alice", "10.0.0.1:5000", "1500ms", "250µs",
		"book.ETH-USD", "resyncing", "trade.SOL-USD", "stale",
	} {
		if !strings.Contains(screen, want) {
			t.Errorf("screen lacks %q:\n%s", want, screen)
		}
	}
	// A narrow, short terminal gets a clipped screen, never wider or longer.
	small := render(v, 40, 10)
	lines := strings.Split(small, "\n")
	if len(lines) != 10 {
		t.Fatalf("%d lines, want 10", len(lines))
	}
	for _, l := range lines {
		if len([]rune(l)) > 40 {
			t.Fatalf("line wider than 40: %q", l)
		}
	}
	// The first reading has no rates yet.
	first := render(buildView(nil, prev, 8, time.Second), 200, 0)
	row := strings.Fields(strings.Split(first, "\n")[3])
	if strings.Join(row, " ") != "gw-1 2 - - - - - - 3 2 2 up" {
		t.Fatalf("first view's node row %q:\n%s", row, first)
	}
}

// top --once, for a script, exits 1 when a node could not be read (its
// row says why); before, it exited 0 with every node failing.
func TestTopOnceExitsByNodesRead(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), []string{"top", "--once", "--interval", "100ms", "--admin", "127.0.0.1:1"}, &stdout, &stderr); code != 1 ||
		!strings.Contains(stderr.String(), "1 of 1 node(s) not read") || !strings.Contains(stdout.String(), "127.0.0.1:1") {
		t.Fatalf("a node that cannot be reached: exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
	if err := unreadNodes([]nodeSample{{url: "http://a:1"}, {url: "http://b:1"}}); err != nil {
		t.Fatalf("every node read: %v", err)
	}
}
