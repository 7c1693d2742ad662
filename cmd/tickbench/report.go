package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/tickgate/tickgate/internal/proc"
	"github.com/tickgate/tickgate/internal/spawn"
	"github.com/tickgate/tickgate/internal/wsconn"
)

// report is the result of a run; its JSON form is what --json writes.
type report struct {
	Config struct {
		Mode              string           `json:"mode"`   // "spawn" or "attach"
		Server            string           `json:"server"` // tickgate, nats or centrifugo
		URL               string           `json:"url"`
		Connections       int              `json:"connections"`
		RampRate          float64          `json:"ramp_rate"`
		DurationSeconds   float64          `json:"duration_seconds"`
		MsgpackFraction   float64          `json:"msgpack_fraction"`
		ChannelsPerConn   int              `json:"channels_per_conn"`
		Symbols           int              `json:"symbols"`
		Kinds             []string         `json:"kinds"`
		FeedRate          float64          `json:"feed_rate"`
		StallFraction     float64          `json:"stall_fraction"`
		StallChannels     int              `json:"stall_channels"`
		StallRcvbuf       int              `json:"stall_rcvbuf"`
		GatewayFlags      []string         `json:"gateway_flags,omitempty"`
		Compression       bool             `json:"compression,omitempty"`
		ProbeIntervalMS   float64          `json:"probe_interval_ms"`
		LatencyHistogram  string           `json:"latency_histogram"`
		GatewayBuild      *spawn.BuildInfo `json:"gateway_build,omitempty"`
		SourceAddressesIn int              `json:"source_addresses"`
		// FeedNote says why the feed's NATS server was not raised above
		// the load client (feednats.go); empty when it was, or in attach
		// mode.
		FeedNote string `json:"feed_note,omitempty"`
	} `json:"config"`

	RampSeconds   float64 `json:"ramp_seconds"`
	WindowSeconds float64 `json:"window_seconds"`

	Connections struct {
		Subscribed       int            `json:"subscribed"`
		Healthy          int            `json:"healthy"`
		Stalled          int            `json:"stalled"`
		Failed           int            `json:"failed"`
		FirstErrors      []string       `json:"first_errors,omitempty"`
		SubscribeErrors  int64          `json:"subscribe_errors"`
		DecodeErrors     int64          `json:"decode_errors"`
		HealthyClosed    int            `json:"healthy_closed"` // wrongly closed: must be 0
		HealthyCloseCode map[string]int `json:"healthy_close_codes"`
		HealthySilent    int            `json:"healthy_without_messages"`
	} `json:"connections"`

	Delivered struct {
		Messages          int64   `json:"messages"`
		PerSecond         float64 `json:"per_second"`
		PerConnPerSecond  float64 `json:"per_conn_per_second"`
		Gaps              int64   `json:"gaps"`
		FeedPublished     int64   `json:"feed_published"`
		FeedPublishErrors int64   `json:"feed_publish_errors"`
		// WireBytes is what healthy clients read off their sockets in the
		// window, and WireBytesPerMessage that per message delivered.
		WireBytes           int64   `json:"wire_bytes"`
		WireBytesPerMessage float64 `json:"wire_bytes_per_message"`
		// Frames is how many WebSocket messages carried them (a server
		// may put several of its messages in one).
		Frames int64 `json:"frames"`
	} `json:"delivered"`

	LatencyMS *latencySummary `json:"latency_ms"`
	// LatencyAtSocketMS is the same updates' latency to their arrival at
	// the client's socket, by the kernel's receive timestamps
	// (stamp_linux.go): without the load client's own queue, an upper
	// bound where one read took several segments. Nil when no update
	// carried a stamp.
	LatencyAtSocketMS *latencySummary `json:"latency_at_socket_ms,omitempty"`
	// Unstamped counts healthy connections read without those stamps.
	Unstamped int64 `json:"unstamped_connections,omitempty"`

	Stalled struct {
		Count        int            `json:"count"`
		Evicted      int            `json:"evicted"`
		NotEvicted   int            `json:"not_evicted"`
		EvictP50MS   float64        `json:"evict_p50_ms"`
		EvictMaxMS   float64        `json:"evict_max_ms"`
		EvictMinMS   float64        `json:"evict_min_ms"`
		CloseCodes   map[string]int `json:"close_codes"`
		ProbeErrors  map[string]int `json:"probe_errors,omitempty"`
		StillOpenIDs []int          `json:"still_open_ids,omitempty"`
	} `json:"stalled"`

	Gateway *gatewayUsage `json:"gateway,omitempty"`
	// GatewayLogTail is the end of a spawned gateway's log, kept when it
	// exited early or closed healthy connections.
	GatewayLogTail []string `json:"gateway_log_tail,omitempty"`

	Machine struct {
		CPUs              int     `json:"cpus"`
		BusyCoresInWindow float64 `json:"busy_cores_in_window"`
		// OtherCoresInWindow is what neither the gateway nor tickbench
		// (with its embedded NATS server) used: other work on the machine.
		OtherCoresInWindow float64 `json:"other_cores_in_window"`
		// StolenCoresInWindow is the CPU the hypervisor gave other guests
		// while this machine's CPUs had work (steal): not in Busy. Every
		// process here ran slower by about that share, the servers alike;
		// it is what tells a slow hour on a shared host.
		StolenCoresInWindow float64 `json:"stolen_cores_in_window"`
	} `json:"machine"`

	Bench struct {
		CPUSeconds float64 `json:"cpu_seconds_in_window"`
		RSSBytes   int64   `json:"rss_bytes"`
	} `json:"tickbench"`
}

// latencySummary is publish-to-receive latency of healthy clients'
// updates in the window, in milliseconds.
type latencySummary struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p99_9"`
	Max   float64 `json:"max"`
	Mean  float64 `json:"mean"`
}

// gatewayUsage is the gateway process's cost, from /proc.
type gatewayUsage struct {
	PID                int     `json:"pid"`
	ExitedEarly        string  `json:"exited_early,omitempty"` // a spawned gateway that died during the run
	CPUSecondsInWindow float64 `json:"cpu_seconds_in_window"`
	CPUCoresInWindow   float64 `json:"cpu_cores_in_window"` // CPU seconds / window seconds
	// SystemSecondsInWindow is the kernel's part of CPUSecondsInWindow
	// (stime): the write syscalls, and on loopback the receive side the
	// kernel runs in the writer's context.
	SystemSecondsInWindow float64 `json:"system_seconds_in_window"`
	CPUMicrosPerConnSec   float64 `json:"cpu_us_per_conn_per_second"`
	RSSBaselineBytes      int64   `json:"rss_baseline_bytes"` // before any connection
	RSSBytes              int64   `json:"rss_bytes"`          // at the end of the window
	RSSPeakBytes          int64   `json:"rss_peak_bytes"`
	RSSPerConnBytes       float64 `json:"rss_per_conn_bytes"` // (rss - baseline) / connections
	CPUsAllowed           string  `json:"cpus_allowed"`       // the CPUs it could run on
}

func summarize(h *hdrhistogram.Histogram) *latencySummary {
	ms := func(us int64) float64 { return float64(us) / 1000 }
	return &latencySummary{
		Count: h.TotalCount(),
		P50:   ms(h.ValueAtQuantile(50)),
		P90:   ms(h.ValueAtQuantile(90)),
		P99:   ms(h.ValueAtQuantile(99)),
		P999:  ms(h.ValueAtQuantile(99.9)),
		Max:   ms(h.Max()),
		Mean:  h.Mean() / 1000,
	}
}

func (r *report) fillConfig(c *config, t *target) {
	rc := &r.Config
	rc.Mode = "attach"
	if c.spawn || c.workload != nil {
		rc.Mode = "spawn"
	}
	rc.URL, rc.Server = t.url, t.dialect.name()
	rc.Connections, rc.RampRate, rc.DurationSeconds = c.conns, c.rampRate, c.duration.Seconds()
	rc.MsgpackFraction, rc.ChannelsPerConn, rc.Symbols = c.msgpackFraction, c.channelsPerConn, c.symbols
	for _, k := range c.kinds {
		rc.Kinds = append(rc.Kinds, k.String())
	}
	rc.FeedRate, rc.StallFraction, rc.StallChannels, rc.StallRcvbuf = c.rate, c.stallFraction, c.stallChannels, c.stallRcvbuf
	rc.GatewayFlags = c.gatewayFlags
	rc.Compression = c.compression
	rc.ProbeIntervalMS = float64(probeInterval) / float64(time.Millisecond)
	rc.LatencyHistogram = fmt.Sprintf("HdrHistogram %d..%d us, %d significant digits", latencyMinMicros, latencyMaxMicros, latencyDigits)
	rc.GatewayBuild = t.build
	rc.FeedNote = t.feedNote
	rc.SourceAddressesIn = (c.conns + c.connsPerSource - 1) / c.connsPerSource
}

func (r *report) fillResults(b *bench, window time.Duration) {
	r.WindowSeconds = window.Seconds()
	cn := &r.Connections
	cn.Subscribed, cn.Failed, cn.FirstErrors = len(b.clients), b.failures, b.firstErrs
	cn.SubscribeErrors, cn.DecodeErrors = b.cnt.subErrors.Load(), b.cnt.decodeErrors.Load()
	cn.HealthyClosed = int(b.cnt.healthyClosed.Load())
	var healthyCodes, stalledCodes, probeErrs []string
	var evict []time.Duration
	st := &r.Stalled
	for _, c := range b.clients {
		if !c.spec.stalled {
			cn.Healthy++
			if c.received.Load() == 0 {
				cn.HealthySilent++
			}
			if c.byPeer {
				healthyCodes = append(healthyCodes, wsconn.CloseCode(c.closeErr))
			}
			continue
		}
		st.Count++
		at := c.evictedAt.Load()
		if at == 0 {
			st.NotEvicted++
			st.StillOpenIDs = append(st.StillOpenIDs, c.spec.idx)
			if e, ok := c.probeErr.Load().(error); ok {
				probeErrs = append(probeErrs, e.Error())
			}
			continue
		}
		st.Evicted++
		evict = append(evict, time.Unix(0, at).Sub(c.stalledAt))
		stalledCodes = append(stalledCodes, wsconn.CloseCode(c.closeErr))
	}
	cn.Stalled = st.Count
	cn.HealthyCloseCode = tally(healthyCodes)
	st.CloseCodes = tally(stalledCodes)
	if len(probeErrs) > 0 {
		st.ProbeErrors = tally(probeErrs)
	}
	if len(st.StillOpenIDs) > 20 {
		st.StillOpenIDs = st.StillOpenIDs[:20]
	}
	sort.Ints(st.StillOpenIDs)
	if len(evict) > 0 {
		evict = sortedDurations(evict)
		ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
		st.EvictMinMS, st.EvictP50MS, st.EvictMaxMS = ms(evict[0]), ms(evict[(len(evict)-1)/2]), ms(evict[len(evict)-1])
	}
	d := &r.Delivered
	d.Messages = b.cnt.delivered.Load()
	d.PerSecond = float64(d.Messages) / window.Seconds()
	if cn.Healthy > 0 {
		d.PerConnPerSecond = d.PerSecond / float64(cn.Healthy)
	}
	d.Gaps = b.cnt.gaps.Load()
	d.FeedPublished, d.FeedPublishErrors = b.cnt.published.Load(), b.cnt.publishErrors.Load()
	d.WireBytes, d.Frames = b.cnt.wireBytes.Load(), b.cnt.frames.Load()
	if d.Messages > 0 {
		d.WireBytesPerMessage = float64(d.WireBytes) / float64(d.Messages)
	}
	r.LatencyMS = lat(b.lat)
	if s := lat(b.sock); s.Count > 0 {
		r.LatencyAtSocketMS = s
	}
	r.Unstamped = b.cnt.unstamped.Load()
}

func (r *report) fillGateway(base, start, end proc.Sample, conns int) {
	g := &gatewayUsage{
		CPUSecondsInWindow:    (end.CPU - start.CPU).Seconds(),
		SystemSecondsInWindow: (end.System - start.System).Seconds(),
		RSSBaselineBytes:      base.RSS,
		RSSBytes:              end.RSS,
		RSSPeakBytes:          end.PeakRSS,
		CPUsAllowed:           end.CPUs,
	}
	if w := end.At.Sub(start.At).Seconds(); w > 0 {
		g.CPUCoresInWindow = g.CPUSecondsInWindow / w
		if conns > 0 {
			g.CPUMicrosPerConnSec = g.CPUSecondsInWindow / w / float64(conns) * 1e6
		}
	}
	if conns > 0 {
		g.RSSPerConnBytes = float64(end.RSS-base.RSS) / float64(conns)
	}
	r.Gateway = g
}

// writeText prints the report for a person.
func (r *report) writeText(w io.Writer) {
	c := &r.Config
	p := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	p("tickbench report (%s, %s mode, %s)", c.Server, c.Mode, c.URL)
	if c.GatewayBuild != nil {
		dirty := ""
		if c.GatewayBuild.Dirty {
			dirty = " + uncommitted changes"
		}
		p("  gateway built from: %s%s", c.GatewayBuild.Commit, dirty)
	}
	if len(c.GatewayFlags) > 0 {
		p("  gateway flags:      %s", strings.Join(c.GatewayFlags, " "))
	}
	p("  load:               %d connections (%.0f%% msgpack), %d channels each of %d symbols x %s, feed %.0f msg/s",
		c.Connections, c.MsgpackFraction*100, c.ChannelsPerConn, c.Symbols, strings.Join(c.Kinds, ","), c.FeedRate)
	if c.FeedNote != "" {
		p("  feed:               %s", c.FeedNote)
	}
	p("  ramp:               %.1fs at %.0f handshakes/s from %d source address(es); window %.1fs", r.RampSeconds, c.RampRate, c.SourceAddressesIn, r.WindowSeconds)
	cn := &r.Connections
	p("  connections:        %d subscribed (%d healthy, %d stalled), %d failed", cn.Subscribed, cn.Healthy, cn.Stalled, cn.Failed)
	for _, e := range cn.FirstErrors {
		p("    failure: %s", e)
	}
	if cn.SubscribeErrors+cn.DecodeErrors > 0 {
		p("  errors:             %d subscribe errors, %d undecodable messages", cn.SubscribeErrors, cn.DecodeErrors)
	}
	d := &r.Delivered
	p("  delivered:          %.0f msg/s to healthy clients (%.2f per connection), %d in the window, %d seq gaps",
		d.PerSecond, d.PerConnPerSecond, d.Messages, d.Gaps)
	p("  feed published:     %d messages (%d errors)", d.FeedPublished, d.FeedPublishErrors)
	offered := "not offered"
	if c.Compression {
		offered = "permessage-deflate offered"
	}
	perFrame := 0.0
	if d.Frames > 0 {
		perFrame = float64(d.Messages) / float64(d.Frames)
	}
	p("  on the wire:        %.1f MiB read by healthy clients in the window, %.1f bytes per message, %.2f messages per WebSocket frame (%s)",
		mib(d.WireBytes), d.WireBytesPerMessage, perFrame, offered)
	l := r.LatencyMS
	p("  latency (publish to receive, %d updates): p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, max %.2f ms",
		l.Count, l.P50, l.P90, l.P99, l.P999, l.Max)
	if l := r.LatencyAtSocketMS; l != nil {
		p("  at the socket (publish to the kernel's receipt, %d updates): p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, max %.2f ms",
			l.Count, l.P50, l.P90, l.P99, l.P999, l.Max)
	}
	if r.Unstamped > 0 {
		p("  receive timestamps: %d healthy connections read without them", r.Unstamped)
	}
	p("  healthy wrongly closed: %d %v; healthy that received nothing: %d", cn.HealthyClosed, codes(cn.HealthyCloseCode), cn.HealthySilent)
	st := &r.Stalled
	if st.Count > 0 {
		p("  stalled:            %d, evicted %d (close codes %s), not evicted %d", st.Count, st.Evicted, codes(st.CloseCodes), st.NotEvicted)
		if st.Evicted > 0 {
			p("  time to eviction:   min %.0f ms, p50 %.0f ms, max %.0f ms (probe resolution %.0f ms)", st.EvictMinMS, st.EvictP50MS, st.EvictMaxMS, c.ProbeIntervalMS)
		}
	}
	if g := r.Gateway; g != nil {
		if g.ExitedEarly != "" {
			p("  GATEWAY EXITED DURING THE RUN: %s", g.ExitedEarly)
		}
		p("  gateway CPU:        %.2f s in the window (%.2f s in the kernel; %.2f cores, %.1f us per connection-second), on CPUs %s", g.CPUSecondsInWindow, g.SystemSecondsInWindow, g.CPUCoresInWindow, g.CPUMicrosPerConnSec, g.CPUsAllowed)
		if d := r.Delivered.Messages; d > 0 {
			p("  per delivery:       %.2f us CPU, %.2f us of it in the kernel", g.CPUSecondsInWindow/float64(d)*1e6, g.SystemSecondsInWindow/float64(d)*1e6)
		}
		p("  gateway RSS:        %.1f MiB (baseline %.1f MiB, peak %.1f MiB): %.1f KiB per connection",
			mib(g.RSSBytes), mib(g.RSSBaselineBytes), mib(g.RSSPeakBytes), g.RSSPerConnBytes/1024)
	}
	if len(r.GatewayLogTail) > 0 {
		p("  gateway log (last lines):")
		for _, l := range r.GatewayLogTail {
			p("    %s", l)
		}
	}
	p("  tickbench itself:   %.2f CPU s in the window (with its NATS server), RSS %.1f MiB", r.Bench.CPUSeconds, mib(r.Bench.RSSBytes))
	p("  machine:            %d CPUs, %.2f busy on average in the window, %.2f of them by other processes; %.2f stolen by the hypervisor (steal)",
		r.Machine.CPUs, r.Machine.BusyCoresInWindow, r.Machine.OtherCoresInWindow, r.Machine.StolenCoresInWindow)
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// codes formats a tally as "{4008: 3, no close frame: 1}".
func codes(m map[string]int) string {
	if len(m) == 0 {
		return "{}"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s: %d", k, m[k])
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// writeJSON writes the report to path.
func (r *report) writeJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
