package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/tickgate/tickgate/internal/fleet"
	"github.com/tickgate/tickgate/internal/spawn"
	"github.com/tickgate/tickgate/proto"
)

// report is a run's result, as text and JSON.
type report struct {
	OK              bool               `json:"ok"`
	Config          reportConfig       `json:"config"`
	NATS            string             `json:"nats"`
	Build           *spawn.BuildInfo   `json:"build,omitempty"`
	OpenSeconds     float64            `json:"open_seconds"`
	Storm           stormReport        `json:"storm"`
	Trades          fleet.TradeTotals  `json:"trades"`
	TradeFaults     []string           `json:"trade_faults,omitempty"`
	Books           int                `json:"books_equal"`
	BookFaults      []string           `json:"book_faults,omitempty"`
	Tickers         int                `json:"tickers_equal"`
	TickerFaults    []string           `json:"ticker_faults,omitempty"`
	Steady          []latency          `json:"steady_latency"`
	Gaps            map[string]int     `json:"gaps"`
	Machine         []phaseCPU         `json:"machine"`
	SteadyDisturbed int                `json:"steady_disturbed"`
	NodeB           []phaseCPU         `json:"node_b"`
	NodeBMetrics    map[string]float64 `json:"node_b_metrics"`
	StormRefusedByB float64            `json:"storm_refused_by_b"`
	Feed            feedReport         `json:"feed"`
	StreamHoles     map[string]int     `json:"stream_holes,omitempty"` // trade channel → published trades the history stream lacks
}

type reportConfig struct {
	Clients         int      `json:"clients"`
	Steady          int      `json:"steady"`
	Symbols         int      `json:"symbols"`
	Rate            float64  `json:"rate"`
	History         string   `json:"history"`
	Durable         bool     `json:"durable_publisher"`
	MsgpackFraction float64  `json:"msgpack_fraction"`
	GatewayFlags    []string `json:"gateway_flags,omitempty"`
}

type stormReport struct {
	Noticed      durations      `json:"noticed"`    // kill → the client saw its connection end
	Waited       durations      `json:"waited"`     // the client's own backoff waits before it was back
	Back         durations      `json:"back"`       // kill → welcome on B
	Live         durations      `json:"live"`       // kill → every channel live on B
	AllLiveSec   float64        `json:"all_live_s"` // kill → the last storm client live; 0 when not all
	Attempts     int            `json:"failed_attempts"`
	AttemptKinds map[string]int `json:"failed_attempt_kinds"`
	Refused      int            `json:"refused_429_503"`
	MaxAttempts  int            `json:"max_failed_attempts_one_client"`
	TradeResumed int            `json:"trade_channels_resumed"`
	// TradeResumable: storm clients whose trade channel had a trade when
	// A was killed; the others have no seq to resume from.
	TradeResumable int `json:"trade_channels_resumable"`
	NotBack        int `json:"not_back"`
	WrongNode      int `json:"wrong_node"`
}

type durations struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
	Min float64 `json:"min_ms"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func toDurations(ds []time.Duration) durations {
	s := fleet.Summarize(ds)
	return durations{N: s.N, P50: ms(s.P50), P99: ms(s.P99), Max: ms(s.Max), Min: ms(s.Min)}
}

type latency struct {
	Phase string  `json:"phase"`
	Count int64   `json:"count"`
	P50   float64 `json:"p50_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	Max   float64 `json:"max_ms"`
}

type phaseCPU struct {
	Phase   string  `json:"phase"`
	Seconds float64 `json:"seconds"`
	Cores   float64 `json:"cores"`
	RSSMiB  float64 `json:"rss_mib,omitempty"`
	Note    string  `json:"note,omitempty"`
}

func sortedCounts(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %d", k, m[k])
	}
	return b.String()
}

type feedReport struct {
	Published int64 `json:"published"`
	Failed    int64 `json:"failed"`
}

// fill computes the storm's figures from the fleet.
func (r *report) fill(fl *fleet.Fleet, killAt, allLive time.Time, v *fleet.Verdict) {
	var back, live, noticed, waited []time.Duration
	for _, m := range fl.Group(groupStorm) {
		rec := m.RecoveryAfter(killAt)
		r.Storm.Attempts += rec.Attempts
		for k, n := range rec.Kinds {
			if r.Storm.AttemptKinds == nil {
				r.Storm.AttemptKinds = map[string]int{}
			}
			r.Storm.AttemptKinds[k] += n
		}
		r.Storm.Refused += rec.Refused
		r.Storm.MaxAttempts = max(r.Storm.MaxAttempts, rec.Attempts)
		if rec.Back == 0 {
			r.Storm.NotBack++
			continue
		}
		if rec.Node != "gw-b" {
			r.Storm.WrongNode++
		}
		back = append(back, rec.Back)
		if rec.Done {
			live = append(live, rec.Live)
			noticed = append(noticed, rec.Noticed)
			waited = append(waited, rec.Waited)
		}
		for _, ch := range rec.Resumed {
			if strings.HasPrefix(ch, proto.KindTrade.String()+".") {
				r.Storm.TradeResumed++
			}
		}
		for _, ch := range m.Channels() {
			if strings.HasPrefix(ch, proto.KindTrade.String()+".") && m.HeldTradeBefore(ch, killAt) {
				r.Storm.TradeResumable++
			}
		}
	}
	r.Storm.Back, r.Storm.Live = toDurations(back), toDurations(live)
	r.Storm.Noticed, r.Storm.Waited = toDurations(noticed), toDurations(waited)
	if !allLive.IsZero() {
		r.Storm.AllLiveSec = allLive.Sub(killAt).Seconds()
	}
	for _, m := range fl.Group(groupSteady) {
		if m.Sessions() != 1 {
			r.SteadyDisturbed++
		}
	}
	r.Gaps = map[string]int{}
	for _, m := range fl.Members() {
		for reason, n := range m.Gaps() {
			r.Gaps[m.Group+" "+string(reason)] += n
		}
	}
	for _, l := range fl.Latencies(groupSteady) {
		r.Steady = append(r.Steady, latency{Phase: l.Phase, Count: l.Count, P50: ms(l.P50), P99: ms(l.P99), P999: ms(l.P999), Max: ms(l.Max)})
	}
	r.Trades, r.TradeFaults = v.Trades, v.TradeFaults
	r.Books, r.BookFaults = v.Books, v.BookFaults
	r.Tickers, r.TickerFaults = v.Tickers, v.TickerFaults
}

func (r *report) writeText(w io.Writer) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	c := r.Config
	p("tickstorm: %d storm clients on node A (SIGKILLed), %d steady clients on node B; %d symbols, feed %.0f msg/s (durable publisher %v); --history %s; NATS %s",
		c.Clients, c.Steady, c.Symbols, c.Rate, c.Durable, c.History, r.NATS)
	if r.Build != nil {
		p("gateway: %s (dirty %v)", r.Build.Commit, r.Build.Dirty)
	}
	if len(c.GatewayFlags) > 0 {
		p("gateway flags: %s", strings.Join(c.GatewayFlags, " "))
	}
	p("opened every client in %.1fs", r.OpenSeconds)
	s := r.Storm
	p("")
	p("storm clients noticed the loss (kill → disconnect): n %d  p50 %.0f ms  p99 %.0f ms  max %.0f ms", s.Noticed.N, s.Noticed.P50, s.Noticed.P99, s.Noticed.Max)
	p("their own backoff waits (sum per client):          n %d  p50 %.0f ms  p99 %.0f ms  max %.0f ms", s.Waited.N, s.Waited.P50, s.Waited.P99, s.Waited.Max)
	p("storm clients back on B (kill → welcome):        n %d  p50 %.0f ms  p99 %.0f ms  max %.0f ms", s.Back.N, s.Back.P50, s.Back.P99, s.Back.Max)
	p("storm clients resumed (kill → every channel live): n %d  p50 %.0f ms  p99 %.0f ms  max %.0f ms", s.Live.N, s.Live.P50, s.Live.P99, s.Live.Max)
	p("last storm client live at +%.1fs; not back %d; on another node %d", s.AllLiveSec, s.NotBack, s.WrongNode)
	p("failed attempts on the way: %d (%d refused 429/503 by the node's pacing; B counted %.0f), at most %d for one client",
		s.Attempts, s.Refused, r.StormRefusedByB, s.MaxAttempts)
	p("  by kind: %s", sortedCounts(s.AttemptKinds))
	p("trade channels resumed by B: %d of the %d that held a trade when A was killed (%d clients; the others had no seq to resume from)",
		s.TradeResumed, s.TradeResumable, c.Clients)
	p("")
	t := r.Trades
	p("trades: %d subscriptions, expected %d, received %d, recovered by resume %d, lost %d, duplicates %d",
		t.Subscriptions, t.Expected, t.Received, t.Replayed, t.Lost, t.Dups)
	p("  subscriptions that held no trade yet (no seq to resume from): %d", t.NoneHeld)
	p("gaps the clients saw: %s", sortedCounts(r.Gaps))
	p("books equal to a fresh subscriber's: %d; tickers equal to the last published: %d", r.Books, r.Tickers)
	for _, f := range slices.Concat(r.TradeFaults, r.BookFaults, r.TickerFaults) {
		p("  FAULT %s", f)
	}
	p("")
	p("steady clients (undisturbed: %d of %d kept one connection) — publish-to-receive latency of live data:", c.Steady-r.SteadyDisturbed, c.Steady)
	p("  %-7s %9s %9s %9s %9s %9s", "phase", "messages", "p50 ms", "p99 ms", "p99.9 ms", "max ms")
	for _, l := range r.Steady {
		p("  %-7s %9d %9.2f %9.2f %9.2f %9.2f", l.Phase, l.Count, l.P50, l.P99, l.P999, l.Max)
	}
	p("node B CPU and memory:")
	for _, n := range r.NodeB {
		p("  %-7s %5.1fs  %.2f cores  RSS %.0f MiB", n.Phase, n.Seconds, n.Cores, n.RSSMiB)
	}
	p("machine (both cores; this process and node B included) and this process (the clients):")
	for _, n := range r.Machine {
		p("  %-7s %.2f cores busy; %s", n.Phase, n.Cores, n.Note)
	}
	keys := make([]string, 0, len(r.NodeBMetrics))
	for k := range r.NodeBMetrics {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	p("node B metrics (change over the run):")
	for _, k := range keys {
		p("  %s %.0f", k, r.NodeBMetrics[k])
	}
	p("feed: %d published, %d failed; trades the history stream lacks: %s", r.Feed.Published, r.Feed.Failed, sortedCounts(r.StreamHoles))
	verdict := "OK"
	if !r.OK {
		verdict = "NOT OK"
	}
	p("verdict: %s", verdict)
}

func (r *report) writeJSON(name string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(name, append(b, '\n'), 0o644)
}
