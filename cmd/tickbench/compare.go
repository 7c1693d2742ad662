package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/tickgate/tickgate/internal/spawn"
)

// comparison is a side-by-side run: every server on the same workload, at
// every feed rate multiple of the sweep, one after the other with the same
// load client. Its JSON form is what --json writes in this mode.
type comparison struct {
	Workload    string           `json:"workload"`
	About       string           `json:"about"`
	Connections int              `json:"connections"`
	TLS         bool             `json:"tls"`
	CPUs        int              `json:"cpus,omitempty"`                    // --cpus: the servers' pinning
	ReceiveOn   string           `json:"receive_steered_to,omitempty"`      // the loopback's receive steering in effect: a CPU mask (steer.go)
	ReceiveSet  bool             `json:"receive_steered_by_flag,omitempty"` // ReceiveOn is --steer-receive's; otherwise it was found so
	Compression bool             `json:"compression,omitempty"`
	Build       *spawn.BuildInfo `json:"tickgate_build,omitempty"`
	Skipped     []skipped        `json:"skipped,omitempty"`
	Rounds      int              `json:"rounds,omitempty"` // --rounds (0: one)
	Runs        []compareRun     `json:"runs"`
	Floors      []floorRun       `json:"floors,omitempty"` // --floor (floor.go)
}

// skipped is a server that cannot run on this machine.
type skipped struct {
	Server string `json:"server"`
	Why    string `json:"why"`
}

// compareRun is one server at one feed rate.
type compareRun struct {
	Server  string  `json:"server"`
	Round   int     `json:"round,omitempty"` // which of --rounds, from 0
	Factor  float64 `json:"factor"`          // multiple of the workload's feed rate
	Offered float64 `json:"offered"`         // deliveries/s the load asks for
	Error   string  `json:"error,omitempty"`
	Report  *report `json:"report,omitempty"`
}

// perCore is deliveries/s divided by the server's CPU cores in use; 0
// when the server used no measurable CPU.
func (r *compareRun) perCore() float64 {
	if r.Report == nil || r.Report.Gateway == nil || r.Report.Gateway.CPUCoresInWindow <= 0 {
		return 0
	}
	return r.Report.Delivered.PerSecond / r.Report.Gateway.CPUCoresInWindow
}

// perDelivery is the server's CPU per delivered message in the window,
// in microseconds, and the kernel's part of it; zeros without figures.
func (r *compareRun) perDelivery() (cpu, system float64) {
	if r.Report == nil || r.Report.Gateway == nil || r.Report.Delivered.Messages <= 0 {
		return 0, 0
	}
	g, n := r.Report.Gateway, float64(r.Report.Delivered.Messages)
	return g.CPUSecondsInWindow / n * 1e6, g.SystemSecondsInWindow / n * 1e6
}

// Bounds of a steady run: one in which the server and the load client kept
// up with the feed, so that its per-core figure is the server's steady
// state and not the batching a backlog allows.
const (
	steadyDeliveryError = 0.05 // delivered/s within 5% of offered
	steadyP50MS         = 50   // and the median latency at most 50 ms
)

// steady reports whether the run kept up with its offered load; a run
// with no feed (idle) is not judged.
func (r *compareRun) steady() (judged, ok bool) {
	if r.Report == nil || r.Offered <= 0 {
		return false, false
	}
	d := r.Report.Delivered.PerSecond
	return true, math.Abs(d-r.Offered) <= steadyDeliveryError*r.Offered && r.Report.LatencyMS.P50 <= steadyP50MS
}

// compare runs the comparison, prints every run's report and the table
// of figures and ratios, and writes --json and the sweep's --svg.
func compare(ctx context.Context, cfg *config, stdout, stderr io.Writer) (err error) {
	logf := logger(cfg, stderr)
	cmp := &comparison{Workload: cfg.workload.name, About: cfg.workload.about, Connections: cfg.conns, TLS: !cfg.plain, CPUs: cfg.cpus, Compression: cfg.compression}
	if cfg.rounds > 1 {
		cmp.Rounds = cfg.rounds
	}
	var run []serverKind
	for _, name := range cfg.servers {
		s, _ := lookupServer(name) // validated
		if why := s.unavailable(cfg); why != "" {
			cmp.Skipped = append(cmp.Skipped, skipped{s.name, why})
			fmt.Fprintf(stdout, "skipping %s: %s\n", s.name, why)
			continue
		}
		run = append(run, s)
	}
	if cfg.cpus > 0 {
		if err := pinSelf(cfg.cpus); err != nil {
			if cfg.steerReceive {
				return fmt.Errorf("--steer-receive: the load client is not on CPUs of its own: %w", err)
			}
			logf("the load client is not pinned: %v", err)
		}
	}
	mask, restore, err := applySteering(cfg, runtime.NumCPU())
	if err != nil {
		return fmt.Errorf("--steer-receive: %w", err)
	}
	if restore != nil {
		defer func() { err = errors.Join(err, restore()) }()
	}
	cmp.ReceiveOn, cmp.ReceiveSet = mask, restore != nil
	if mask != "" && restore == nil {
		fmt.Fprintf(stderr, "tickbench: the loopback's receive is steered to CPU mask %s (%s), not by this run; the comparison says so\n", mask, cfg.rpsPath)
	}
	base := *cfg
	if base.gatewayBin == "" && cfg.hasServer("tickgate") {
		dir, err := os.MkdirTemp("", "tickbench-build-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		base.gatewayBin = filepath.Join(dir, "tickgate")
		logf("building the gateway: go build -o %s ./cmd/tickgate (in %s)", base.gatewayBin, cfg.moduleDir)
		if cmp.Build, err = spawn.Build(ctx, cfg.moduleDir, base.gatewayBin); err != nil {
			return err
		}
	}
	for round := range max(cfg.rounds, 1) {
		for _, f := range cfg.sweep {
			floor := func() {
				if cfg.floor && cfg.rate > 0 {
					cmp.Floors = append(cmp.Floors, runFloor(ctx, &base, round, f, cfg.workload.offered(cfg.conns, cfg.stallFraction, f), logf))
				}
			}
			if turned(round) {
				floor()
			}
			for _, s := range roundOrder(run, round) {
				if err := ctx.Err(); err != nil {
					return err
				}
				c := base
				c.rate = base.rate * f
				r := compareRun{Server: s.name, Round: round, Factor: f, Offered: cfg.workload.offered(cfg.conns, cfg.stallFraction, f)}
				logf("%s: workload %s x%g, round %d of %d, offered %.0f deliveries/s", s.name, cfg.workload.name, f, round+1, max(cfg.rounds, 1), r.Offered)
				rep, err := startAndMeasure(ctx, &c, s.name, stderr)
				if err != nil {
					r.Error = err.Error()
					fmt.Fprintf(stdout, "%s x%g: %v\n", s.name, f, err)
				} else {
					r.Report = rep
					rep.writeText(stdout)
				}
				cmp.Runs = append(cmp.Runs, r)
			}
			if !turned(round) {
				floor()
			}
		}
	}
	cmp.writeTable(stdout)
	if cfg.jsonFile != "" {
		b, err := json.MarshalIndent(cmp, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(cfg.jsonFile, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("--json: %w", err)
		}
	}
	if len(cfg.sweep) > 1 {
		if err := os.WriteFile(cfg.svgFile, cmp.svg(), 0o644); err != nil {
			return fmt.Errorf("--svg: %w", err)
		}
		fmt.Fprintf(stdout, "plot: %s\n", cfg.svgFile)
	}
	return cmp.outcome(ctx.Err())
}

// outcome is the comparison's error once its table is printed: the
// interruption that cut it short (interrupted), or how many of its runs
// and floors failed; nil when every one of them measured.
func (cmp *comparison) outcome(interrupted error) error {
	if interrupted != nil {
		return fmt.Errorf("interrupted after %d runs and %d floors: %w", len(cmp.Runs), len(cmp.Floors), interrupted)
	}
	failed := 0
	for _, r := range cmp.Runs {
		if r.Report == nil {
			failed++
		}
	}
	floors := 0
	for _, f := range cmp.Floors {
		if f.Error != "" {
			floors++
		}
	}
	if failed > 0 || floors > 0 {
		return fmt.Errorf("%d of %d runs and %d of %d floors failed (see above)", failed, len(cmp.Runs), floors, len(cmp.Floors))
	}
	return nil
}

// pinSelf moves every thread of tickbench (the load client, and the NATS
// server it embeds for tickgate and Centrifugo) to the CPUs the server
// does not have, when there are any: taskset -a -p.
func pinSelf(serverCPUs int) error {
	n := runtime.NumCPU()
	if serverCPUs >= n {
		return fmt.Errorf("--cpus %d leaves no CPU of %d to the load client", serverCPUs, n)
	}
	ts, err := exec.LookPath("taskset")
	if err != nil {
		return err
	}
	out, err := exec.Command(ts, "-a", "-p", "-c", fmt.Sprintf("%d-%d", serverCPUs, n-1), strconv.Itoa(os.Getpid())).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v: %s", err, out)
	}
	runtime.GOMAXPROCS(n - serverCPUs)
	return nil
}

// replot draws the plot of a comparison saved with --json.
func replot(jsonFile, svgFile string) error {
	raw, err := os.ReadFile(jsonFile)
	if err != nil {
		return err
	}
	var cmp comparison
	if err := json.Unmarshal(raw, &cmp); err != nil {
		return fmt.Errorf("%s: %w", jsonFile, err)
	}
	return os.WriteFile(svgFile, cmp.svg(), 0o644)
}

// hasServer reports whether name is among --servers.
func (c *config) hasServer(name string) bool {
	for _, s := range c.servers {
		if s == name {
			return true
		}
	}
	return false
}

// startAndMeasure starts one server, runs the bench and stops it.
func startAndMeasure(ctx context.Context, cfg *config, name string, stderr io.Writer) (*report, error) {
	t, err := start(ctx, cfg, name, logger(cfg, stderr))
	if err != nil {
		return nil, err
	}
	defer t.close()
	return measure(ctx, cfg, t, stderr)
}

// runFloor measures the floor at one round and feed rate multiple f; an
// error is kept in the run, as a server's is.
func runFloor(ctx context.Context, base *config, round int, f, offered float64, logf func(string, ...any)) floorRun {
	c := *base
	c.rate = base.rate * f
	logf("floor: workload %s x%g, round %d of %d", c.workload.name, f, round+1, max(c.rounds, 1))
	r, err := measureFloor(ctx, &c)
	r.Round, r.Factor, r.Offered = round, f, offered
	if err != nil {
		r.Error = err.Error()
	}
	return r
}

// floorOf is the floor measured at a round and feed rate, nil when none
// was (or its measurement failed).
func (cmp *comparison) floorOf(round int, factor float64) *floorRun {
	for i := range cmp.Floors {
		if f := &cmp.Floors[i]; f.Round == round && f.Factor == factor && f.Error == "" {
			return f
		}
	}
	return nil
}

// turned reports whether round (from 0) runs in the reverse order: the
// floor first, then the servers from last to first (roundOrder). Each
// ratio compares runs of one round, a minute or two apart; on a machine
// whose speed drifts over a sitting, a fixed order would hand whichever
// run comes first the same side of the drift in every round, and the
// median over the rounds would keep it. Over two rounds each run sits
// once on either side (tickgate, others, floor; floor, others reversed,
// tickgate), so an even number of rounds cancels a steady drift.
func turned(round int) bool { return round%2 == 1 }

// roundOrder is the order the servers run in round: as given, or reversed
// in a turned round.
func roundOrder(run []serverKind, round int) []serverKind {
	if !turned(round) {
		return run
	}
	rev := slices.Clone(run)
	slices.Reverse(rev)
	return rev
}

// writeTable prints the figures of every run side by side, then the
// ratios of tickgate to each other server at the same feed rate.
func (cmp *comparison) writeTable(w io.Writer) {
	mode := "plain ws"
	if cmp.TLS {
		mode = "TLS"
	}
	pin := "not pinned"
	if cmp.CPUs > 0 {
		pin = fmt.Sprintf("pinned to %d CPU(s)", cmp.CPUs)
	}
	switch {
	case cmp.ReceiveOn != "" && cmp.ReceiveSet:
		pin += fmt.Sprintf(", the loopback's receive steered to CPU mask %s (the load client's)", cmp.ReceiveOn)
	case cmp.ReceiveOn != "":
		pin += fmt.Sprintf(", the loopback's receive steered to CPU mask %s (found so, not set by tickbench)", cmp.ReceiveOn)
	}
	unsteady := false
	if cmp.Compression {
		mode += ", permessage-deflate offered"
	}
	fmt.Fprintf(w, "\ncomparison: workload %s (%s), %d connections, %s, servers %s\n", cmp.Workload, cmp.About, cmp.Connections, mode, pin)
	fmt.Fprintf(w, "%-11s %5s %9s %11s %6s %11s %7s %7s %8s %8s %8s %8s %8s %8s %6s %6s %7s %6s %7s %6s\n",
		"server", "load", "offered/s", "delivered/s", "cores", "per core", "us/msg", "sys us", "p50 ms", "p99 ms", "p99.9 ms", "sock p99", "RSS MiB", "KiB/conn", "gaps", "failed", "evicted", "steady", "B/msg", "steal")
	for i := range cmp.Runs {
		r := &cmp.Runs[i]
		if cmp.Rounds > 1 && (i == 0 || cmp.Runs[i-1].Round != r.Round) {
			fmt.Fprintf(w, "round %d of %d\n", r.Round+1, cmp.Rounds)
		}
		if !writeRow(w, r) {
			unsteady = true
		}
		if i+1 == len(cmp.Runs) || cmp.Runs[i+1].Round != r.Round {
			cmp.writeFloors(w, r.Round)
		}
	}
	if len(cmp.Runs) == 0 { // every server skipped: the floors alone
		for round := range max(cmp.Rounds, 1) {
			cmp.writeFloors(w, round)
		}
	}
	for _, s := range cmp.Skipped {
		fmt.Fprintf(w, "%-11s skipped: %s\n", s.Server, s.Why)
	}
	if unsteady {
		fmt.Fprintf(w, "steady NO: delivered/s more than %.0f%% off the offered load or p50 above %d ms: the server or the load client fell behind\n"+
			"  (see each report's machine line), so that run's per-core figure measures batching under a backlog, not the steady state\n",
			steadyDeliveryError*100, steadyP50MS)
	}
	lines := cmp.ratios()
	if len(lines) > 0 {
		fmt.Fprintln(w, "ratios tickgate / other (per core and deliveries: above 1 is better for tickgate; p99 and memory: below 1 is)")
		for _, l := range lines {
			fmt.Fprintln(w, "  "+l)
		}
		fmt.Fprintln(w, "  ceiling: the per-core ratio tickgate would reach if its user-space CPU were zero and its kernel time stayed (other's us/msg / tickgate's sys us);\n"+
			"    rough: the kernel samples the user/kernel split at its tick, which beats with a bursty feed; the floor, where measured, is the figure to use")
	}
	if lines := cmp.floorLines(); len(lines) > 0 {
		fmt.Fprintln(w, "against the floor (the least CPU per message any server could take here: floor.go)")
		for _, l := range lines {
			fmt.Fprintln(w, "  "+l)
		}
		fmt.Fprintln(w, "  own work: a server's us/msg above the floor's (its share of the server's CPU); floor / other: the most tickgate's per-core ratio against that server could be;\n"+
			"  floor's sweep p99 / other's at the socket: about the least tickgate's p99 ratio at the socket against that server could be (the floor makes no feed hop)")
	}
	if lines := cmp.roundSummary(); len(lines) > 0 {
		fmt.Fprintf(w, "over the %d rounds: median (least-greatest) of each round's ratio\n", cmp.Rounds)
		for _, l := range lines {
			fmt.Fprintln(w, "  "+l)
		}
	}
}

// writeRow prints one run's line of the table, and reports false when
// the run was judged not steady.
func writeRow(w io.Writer, r *compareRun) (steadyOrUnjudged bool) {
	if r.Report == nil {
		fmt.Fprintf(w, "%-11s x%-4g error: %s\n", r.Server, r.Factor, r.Error)
		return true
	}
	rep, g := r.Report, r.Report.Gateway
	evicted := "-"
	if st := rep.Stalled; st.Count > 0 {
		evicted = fmt.Sprintf("%d/%d", st.Evicted, st.Count)
	}
	steady := "-"
	judged, ok := r.steady()
	if judged && ok {
		steady = "yes"
	} else if judged {
		steady = "NO"
	}
	cpu, sys := r.perDelivery()
	fmt.Fprintf(w, "%-11s x%-4g %9.0f %11.0f %6.2f %11.0f %7.2f %7.2f %8.2f %8.2f %8.2f %8s %8.1f %8.1f %6d %6d %7s %6s %7.1f %6.2f\n",
		r.Server, r.Factor, r.Offered, rep.Delivered.PerSecond, g.CPUCoresInWindow, r.perCore(), cpu, sys,
		rep.LatencyMS.P50, rep.LatencyMS.P99, rep.LatencyMS.P999, msOrDash(r.socketP99()), mib(g.RSSBytes), g.RSSPerConnBytes/1024,
		rep.Delivered.Gaps, rep.Connections.Failed, evicted, steady, rep.Delivered.WireBytesPerMessage, rep.Machine.StolenCoresInWindow)
	return !judged || ok
}

// writeFloors prints the floor's lines of a round: its writer's figures
// in the servers' columns, "-" where it has none (no latency of a load
// client, no memory: it is not a server); its sweep's p99 (floor.go) in
// the column of the latency at the socket, which it bounds.
func (cmp *comparison) writeFloors(w io.Writer, round int) {
	for i := range cmp.Floors {
		f := &cmp.Floors[i]
		if f.Round != round {
			continue
		}
		if f.Error != "" {
			fmt.Fprintf(w, "%-11s x%-4g error: %s\n", "floor", f.Factor, f.Error)
			continue
		}
		cpu, sys := f.perDelivery()
		fmt.Fprintf(w, "%-11s x%-4g %9.0f %11.0f %6.2f %11.0f %7.2f %7.2f %8s %8s %8s %8s %8s %8s %6s %6s %7s %6s %7d %6.2f\n",
			"floor", f.Factor, f.Offered, float64(f.Messages)/f.WindowSeconds, f.CPUSeconds/f.WindowSeconds, f.perCore(), cpu, sys,
			"-", "-", "-", msOrDash(f.sweepP99()), "-", "-", "-", "-", "-", "-", f.FrameBytes, f.StolenCores)
	}
}

// pairs calls f with each run of tickgate and each other server's run of
// the same round and feed rate, both with figures.
func (cmp *comparison) pairs(f func(tg, o *compareRun)) {
	for i := range cmp.Runs {
		tg := &cmp.Runs[i]
		if tg.Server != "tickgate" || tg.Report == nil {
			continue
		}
		for j := range cmp.Runs {
			o := &cmp.Runs[j]
			if o.Server == "tickgate" || o.Round != tg.Round || o.Factor != tg.Factor || o.Report == nil {
				continue
			}
			f(tg, o)
		}
	}
}

// roundSummary gives, for each other server, the median, least and
// greatest over the rounds of the per-core and p99 ratios; nothing for
// one round.
func (cmp *comparison) roundSummary() []string {
	if cmp.Rounds < 2 {
		return nil
	}
	type key struct {
		server string
		factor float64
	}
	perCore, p99, sockP99 := map[key][]float64{}, map[key][]float64{}, map[key][]float64{}
	var order []key // first seen first
	seen := map[key]bool{}
	cmp.pairs(func(tg, o *compareRun) {
		k := key{o.Server, tg.Factor}
		if !seen[k] {
			seen[k] = true
			order = append(order, k)
		}
		if a, b := tg.perCore(), o.perCore(); a > 0 && b > 0 {
			perCore[k] = append(perCore[k], a/b)
		}
		if a, b := tg.Report.LatencyMS.P99, o.Report.LatencyMS.P99; a > 0 && b > 0 {
			p99[k] = append(p99[k], a/b)
		}
		if a, b := tg.socketP99(), o.socketP99(); a > 0 && b > 0 {
			sockP99[k] = append(sockP99[k], a/b)
		}
	})
	var out []string
	for _, k := range order {
		out = append(out, fmt.Sprintf("x%-4g vs %-10s per core %s, p99 %s, at the socket %s (%d rounds)",
			k.factor, k.server, spread(perCore[k]), spread(p99[k]), spread(sockP99[k]), len(perCore[k])))
	}
	// Against the floor: how much of it each server reaches.
	reach := map[key][]float64{}
	var floorOrder []key
	for i := range cmp.Runs {
		r := &cmp.Runs[i]
		f := cmp.floorOf(r.Round, r.Factor)
		if f == nil || r.perCore() <= 0 {
			continue
		}
		k := key{r.Server, r.Factor}
		if reach[k] == nil {
			floorOrder = append(floorOrder, k)
		}
		reach[k] = append(reach[k], r.perCore()/f.perCore())
	}
	for _, k := range floorOrder {
		out = append(out, fmt.Sprintf("x%-4g %-10s per core / the floor's %s (%d rounds)", k.factor, k.server, spread(reach[k]), len(reach[k])))
	}
	return out
}

// floorLines gives, for each floor measured, every server's own work per
// message at that round and feed rate, and the floor's per-core figure
// over each other server's.
func (cmp *comparison) floorLines() []string {
	var out []string
	for i := range cmp.Floors {
		f := &cmp.Floors[i]
		floorCPU, _ := f.perDelivery()
		if floorCPU <= 0 {
			continue
		}
		lead := fmt.Sprintf("x%-4g", f.Factor)
		if cmp.Rounds > 1 {
			lead = fmt.Sprintf("r%d %s", f.Round+1, lead)
		}
		parts := []string{fmt.Sprintf("%s floor %.2f us/msg", lead, floorCPU)}
		var bounds []string
		for _, name := range cmp.names() { // the first round's order, whatever this round's
			r := cmp.runOf(name, f.Round, f.Factor)
			if r == nil {
				continue
			}
			cpu, _ := r.perDelivery()
			if cpu <= 0 {
				continue
			}
			parts = append(parts, fmt.Sprintf("%s own work %.2f us (%.0f%%)", r.Server, cpu-floorCPU, (cpu-floorCPU)/cpu*100))
			if r.Server != "tickgate" {
				bounds = append(bounds, fmt.Sprintf("floor / %s %s", r.Server, ratio(f.perCore(), r.perCore())))
				if sp := r.socketP99(); sp > 0 && f.sweepP99() > 0 {
					bounds = append(bounds, fmt.Sprintf("floor's sweep p99 / %s's at the socket %s", r.Server, ratio(f.sweepP99(), sp)))
				}
			}
		}
		out = append(out, strings.Join(append(parts, bounds...), "; "))
	}
	return out
}

// spread formats ratios as "1.23x (1.01x-1.40x)": their median, least and
// greatest; "-" for none.
func spread(v []float64) string {
	if len(v) == 0 {
		return "-"
	}
	v = slices.Clone(v)
	slices.Sort(v)
	m := v[len(v)/2]
	if len(v)%2 == 0 {
		m = (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return fmt.Sprintf("%.2fx (%.2fx-%.2fx)", m, v[0], v[len(v)-1])
}

// ratios compares tickgate with every other server at each feed rate (and
// round, each line then led by its round's number).
func (cmp *comparison) ratios() []string {
	var out []string
	cmp.pairs(func(tg, o *compareRun) {
		_, tgSys := tg.perDelivery()
		oCPU, _ := o.perDelivery()
		round := ""
		if cmp.Rounds > 1 {
			round = fmt.Sprintf("r%d ", tg.Round+1)
		}
		out = append(out, fmt.Sprintf("%sx%-4g vs %-10s per core %s, delivered/s %s, p99 %s (at the socket %s), RSS/conn %s, ceiling %s",
			round, tg.Factor, o.Server,
			ratio(tg.perCore(), o.perCore()),
			ratio(tg.Report.Delivered.PerSecond, o.Report.Delivered.PerSecond),
			ratio(tg.Report.LatencyMS.P99, o.Report.LatencyMS.P99),
			ratio(tg.socketP99(), o.socketP99()),
			ratio(tg.Report.Gateway.RSSPerConnBytes, o.Report.Gateway.RSSPerConnBytes),
			ratio(oCPU, tgSys)))
	})
	return out
}

// socketP99 is the run's p99 latency at the socket in ms; 0 without one.
func (r *compareRun) socketP99() float64 {
	if r.Report == nil || r.Report.LatencyAtSocketMS == nil {
		return 0
	}
	return r.Report.LatencyAtSocketMS.P99
}

// sweepP99 is the floor's sweep p99 in ms; 0 without one.
func (f *floorRun) sweepP99() float64 {
	if f.Error != "" || f.SweepMS == nil {
		return 0
	}
	return f.SweepMS.P99
}

// msOrDash formats milliseconds as a table cell, "-" for none.
func msOrDash(ms float64) string {
	if ms <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", ms)
}

// ratio formats a/b as "1.23x", or "-" when either is not positive.
func ratio(a, b float64) string {
	if a <= 0 || b <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", a/b)
}

// runOf returns server's run in round at factor, nil when there is none.
func (cmp *comparison) runOf(server string, round int, factor float64) *compareRun {
	for i := range cmp.Runs {
		if r := &cmp.Runs[i]; r.Server == server && r.Round == round && r.Factor == factor {
			return r
		}
	}
	return nil
}

// names of the servers that ran, in order of first appearance.
func (cmp *comparison) names() []string {
	var names []string
	seen := map[string]bool{}
	for _, r := range cmp.Runs {
		if !seen[r.Server] {
			seen[r.Server] = true
			names = append(names, r.Server)
		}
	}
	return names
}
