package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/tickgate/tickgate/internal/proc"
	"github.com/tickgate/tickgate/internal/spawn"
)

// result is what a scenario found; its JSON form goes into the report.
type result interface {
	// text prints the result for a person, one figure per line.
	text(p printer)
}

// printer prints one indented line.
type printer func(format string, a ...any)

// report is a run's output; its JSON form is what --json writes.
type report struct {
	Tool      string    `json:"tool"`
	Scenario  string    `json:"scenario"`
	StartedAt time.Time `json:"started_at"`
	Seconds   float64   `json:"seconds"`
	Params    scenario  `json:"params"`
	Gateway   struct {
		Binary string           `json:"binary"`
		Build  *spawn.BuildInfo `json:"build,omitempty"`
		Args   []string         `json:"args"`
		// ExitedEarly is set when the gateway process died during the run.
		ExitedEarly string `json:"exited_early,omitempty"`
		// CPUCores is the gateway's CPU over the whole run, in cores.
		CPUCores float64 `json:"cpu_cores_whole_run"`
		PeakRSS  int64   `json:"peak_rss_bytes"`
	} `json:"gateway"`
	NATS    string `json:"nats"`
	Machine struct {
		CPUs int `json:"cpus"`
		// BusyCores is the machine's CPU use over the run, in cores;
		// OtherCores what neither the gateway nor tickattack (with an
		// embedded NATS server) used: other work on the shared machine.
		BusyCores  float64 `json:"busy_cores"`
		OtherCores float64 `json:"other_cores"`
	} `json:"machine"`
	Result result `json:"result"`

	gwStart, selfStart proc.Sample
	busyStart          time.Duration
}

func newReport(name string, sc scenario, n *node) *report {
	r := &report{Tool: "tickattack", Scenario: name, StartedAt: time.Now(), Params: sc, NATS: n.natsVer}
	r.Gateway.Binary, r.Gateway.Build, r.Gateway.Args = n.gwBin, n.build, n.gwArgs
	r.gwStart, _ = n.proc.Sample()
	r.selfStart, _ = proc.NewReader(os.Getpid()).Sample()
	m, _ := proc.MachineCPU()
	r.busyStart = m.Busy
	return r
}

// finish records the result and the run's cost.
func (r *report) finish(n *node, res result) {
	r.Result = res
	r.Seconds = time.Since(r.StartedAt).Seconds()
	if gone, err := n.gw.Exited(); gone {
		r.Gateway.ExitedEarly = fmt.Sprint(err)
	} else if end, err := n.proc.Sample(); err == nil {
		r.Gateway.CPUCores, r.Gateway.PeakRSS = proc.Cores(r.gwStart, end), end.PeakRSS
	}
	self, _ := proc.NewReader(os.Getpid()).Sample()
	m, _ := proc.MachineCPU()
	busy := m.Busy
	r.Machine.CPUs = runtime.NumCPU()
	if r.Seconds > 0 {
		r.Machine.BusyCores = (busy - r.busyStart).Seconds() / r.Seconds
	}
	r.Machine.OtherCores = max(0, r.Machine.BusyCores-r.Gateway.CPUCores-proc.Cores(r.selfStart, self))
}

// writeText prints the report for a person.
func (r *report) writeText(w io.Writer) {
	p := printer(func(format string, a ...any) { fmt.Fprintf(w, "  "+format+"\n", a...) })
	fmt.Fprintf(w, "tickattack %s (%.1f s)\n", r.Scenario, r.Seconds)
	build := ""
	if b := r.Gateway.Build; b != nil {
		build = " built from " + b.Commit
		if b.Dirty {
			build += " + uncommitted changes"
		}
	}
	p("gateway:  %s%s", r.Gateway.Binary, build)
	p("nats:     %s", r.NATS)
	if r.Gateway.ExitedEarly != "" {
		p("GATEWAY EXITED DURING THE RUN: %s", r.Gateway.ExitedEarly)
	}
	r.Result.text(p)
	p("machine:  %d CPUs, %.2f cores busy over the run: gateway %.2f, other processes %.2f",
		r.Machine.CPUs, r.Machine.BusyCores, r.Gateway.CPUCores, r.Machine.OtherCores)
}

// writeJSON writes the report to path.
func (r *report) writeJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// counts formats a tally as "{a: 1, b: 2}", keys sorted.
func counts(m map[string]int) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range slices.Sorted(maps.Keys(m)) {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s: %d", k, m[k])
	}
	b.WriteByte('}')
	return b.String()
}

// mib converts bytes to MiB.
func mib(b int64) float64 { return float64(b) / (1 << 20) }

// ms converts a duration to milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// latency is a histogram of delivery latency (receive time - data.ts),
// 1 µs to 60 s with three significant digits. Safe for concurrent use.
type latency struct {
	mu sync.Mutex
	h  *hdrhistogram.Histogram // Guarded by mu.
}

func newLatency() *latency { return &latency{h: hdrhistogram.New(1, 60_000_000, 3)} }

// record adds one latency, clamped to the histogram's range.
func (l *latency) record(d time.Duration) {
	l.mu.Lock()
	_ = l.h.RecordValue(min(max(d.Microseconds(), 1), 60_000_000))
	l.mu.Unlock()
}

// latencySummary is a latency histogram's figures in milliseconds.
type latencySummary struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
}

func (l *latency) summary() latencySummary {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := func(us int64) float64 { return float64(us) / 1000 }
	return latencySummary{Count: l.h.TotalCount(), P50: f(l.h.ValueAtQuantile(50)), P99: f(l.h.ValueAtQuantile(99)), Max: f(l.h.Max())}
}

func (s latencySummary) String() string {
	if s.Count == 0 {
		return "no samples"
	}
	return fmt.Sprintf("p50 %.2f ms, p99 %.2f ms, max %.2f ms (%d samples)", s.P50, s.P99, s.Max, s.Count)
}

// usage is the node's CPU and memory over a window.
type usage struct {
	Seconds  float64 `json:"seconds"`
	CPUCores float64 `json:"cpu_cores"` // CPU seconds / window seconds
	RSSStart int64   `json:"rss_start_bytes"`
	RSSEnd   int64   `json:"rss_end_bytes"`
	PeakRSS  int64   `json:"peak_rss_bytes"` // VmHWM at the end: the process's peak so far
}

func usageOf(a, b proc.Sample) usage {
	return usage{Seconds: b.At.Sub(a.At).Seconds(), CPUCores: proc.Cores(a, b), RSSStart: a.RSS, RSSEnd: b.RSS, PeakRSS: b.PeakRSS}
}

func (u usage) String() string {
	return fmt.Sprintf("CPU %.0f%% of a core over %.1f s; RSS %.1f -> %.1f MiB (peak %.1f MiB)",
		u.CPUCores*100, u.Seconds, mib(u.RSSStart), mib(u.RSSEnd), mib(u.PeakRSS))
}

// delta is how much each series of metric name grew between two scrapes,
// by label set; series that did not change are left out.
func delta(before, after metrics, name string) map[string]float64 {
	out := map[string]float64{}
	b := before.series(name)
	for k, v := range after.series(name) {
		if d := v - b[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}
