package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/tickgate/tickgate/auth"
	"github.com/tickgate/tickgate/client"
	"github.com/tickgate/tickgate/feed/feedsim"
	"github.com/tickgate/tickgate/internal/fleet"
	"github.com/tickgate/tickgate/internal/proc"
	"github.com/tickgate/tickgate/internal/spawn"
	"github.com/tickgate/tickgate/proto"
)

// Groups and phases of a run.
const (
	groupStorm  = "storm"
	groupSteady = "steady"
)

var phases = []string{"before", "storm", "after"}

// env is what a run started; close stops it in reverse order.
type env struct {
	dir      string
	creds    *spawn.Credentials
	natsURL  string
	natsKind string
	bin      string
	build    *spawn.BuildInfo
	nodes    [2]*spawn.Process
	admin    [2]string
	cleanup  []func()
}

func (e *env) close() {
	for i := len(e.cleanup) - 1; i >= 0; i-- {
		e.cleanup[i]()
	}
}

// storm runs the whole measurement.
func storm(ctx context.Context, cfg *config, stderr io.Writer) (*report, error) {
	logf := func(format string, a ...any) {
		if !cfg.quiet {
			fmt.Fprintf(stderr, "tickstorm: "+format+"\n", a...)
		}
	}
	e, err := setUp(ctx, cfg, logf)
	if e != nil {
		defer e.close()
	}
	if err != nil {
		return nil, err
	}
	rep := &report{Config: reportConfig{Clients: cfg.clients, Steady: cfg.steady, Symbols: cfg.symbols, Rate: cfg.rate,
		History: cfg.history, Durable: cfg.durable && cfg.history == "jetstream", MsgpackFraction: cfg.msgpackFraction, GatewayFlags: cfg.gatewayFlags}, NATS: e.natsKind, Build: e.build}

	// The feed first: channels the clients subscribe to are live at once.
	fd, err := fleet.StartFeed(fleet.FeedConfig{NATS: e.natsURL, Durable: cfg.durable && cfg.history == "jetstream",
		Sim: feedsim.Config{Count: cfg.symbols, Rate: cfg.rate, Seed: cfg.seed}})
	if err != nil {
		return nil, err
	}
	feedStopped := false
	defer func() {
		if !feedStopped {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = fd.Stop(sctx)
			cancel()
		}
	}()

	fl := fleet.New(fleet.Config{TLS: e.creds.ClientTLS, Phases: phases})
	defer fl.Close()
	specs, err := makeSpecs(cfg, e)
	if err != nil {
		return nil, err
	}
	opened := time.Now()
	logf("opening %d steady clients on B, then %d storm clients on A, at %.0f/s", cfg.steady, cfg.clients, cfg.rampRate)
	last := time.Now()
	if err := fl.Open(ctx, specs, cfg.rampRate, func(n int) {
		if n%1000 == 0 || time.Since(last) > 5*time.Second {
			last = time.Now()
			logf("  %d of %d subscribed", n, len(specs))
		}
	}); err != nil {
		return nil, err
	}
	rep.OpenSeconds = time.Since(opened).Seconds()
	logf("all %d clients subscribed in %.1fs", len(specs), rep.OpenSeconds)

	procB, self := proc.NewReader(e.nodes[1].PID), proc.NewReader(os.Getpid())
	type marks struct {
		b, self  proc.Sample
		busy, at time.Duration
	}
	var mk []marks
	sample := func() proc.Sample {
		var m marks
		m.b, _ = procB.Sample()
		m.self, _ = self.Sample()
		t, _ := proc.MachineCPU()
		m.busy, m.at = t.Busy, t.Total
		mk = append(mk, m)
		return m.b
	}
	metricsBefore := scrape(e.admin[1])

	// Let the subscriptions settle (snapshots, warm-up), then phase 1.
	if !sleep(ctx, cfg.settle) {
		return nil, ctx.Err()
	}
	fl.SetPhase(0)
	s0 := sample()
	if !sleep(ctx, cfg.before) {
		return nil, ctx.Err()
	}
	s1 := sample()

	// The kill.
	logf("SIGKILL node A (pid %d) with %d clients", e.nodes[0].PID, cfg.clients)
	fl.SetPhase(1)
	killAt := time.Now()
	if err := e.nodes[0].Kill(); err != nil {
		return nil, fmt.Errorf("kill node A: %w", err)
	}
	storm := fl.Group(groupStorm)
	deadline := killAt.Add(cfg.stormTimeout)
	var allLive time.Time
	for {
		back, live := 0, 0
		for _, m := range storm {
			r := m.RecoveryAfter(killAt)
			if r.Back > 0 {
				back++
			}
			if r.Done {
				live++
			}
		}
		logf("  +%5.1fs: %d of %d back on B, %d live", time.Since(killAt).Seconds(), back, len(storm), live)
		if live == len(storm) {
			allLive = time.Now()
			break
		}
		if time.Now().After(deadline) || !sleep(ctx, time.Second) {
			break
		}
	}
	s2 := sample()
	metricsStorm := scrape(e.admin[1])

	// Phase 3: after.
	fl.SetPhase(2)
	if !sleep(ctx, cfg.after) {
		return nil, ctx.Err()
	}
	s3 := sample()

	// The feed stops; every client must converge on what it published.
	logf("stopping the feed; verifying every client against it")
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = fd.Stop(sctx)
	cancel()
	feedStopped = true
	if err != nil {
		return nil, fmt.Errorf("feed: %w", err)
	}
	fresh, err := client.Dial(ctx, e.nodes[1].URL, client.Options{
		TLS:         e.creds.ClientTLS,
		TokenSource: func(context.Context) (string, error) { return token(e, "fresh") },
	})
	if err != nil {
		return nil, fmt.Errorf("fresh subscriber: %w", err)
	}
	defer fresh.Close()
	vctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	verdict, err := fl.Verify(vctx, fd, fresh)
	cancel()
	if err != nil {
		return nil, err
	}
	published, failed := fd.Published()
	if cfg.history == "jetstream" {
		hctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		holes, err := fd.StreamHoles(hctx, e.natsURL, "MD")
		cancel()
		if err != nil {
			logf("reading the history stream back: %v", err)
		}
		rep.StreamHoles = map[string]int{}
		for ch, n := range holes {
			rep.StreamHoles[ch] = n
		}
	}
	if verdict.Stuck != "" {
		logf("not converged after the feed stopped: %s", verdict.Stuck)
	}

	// The report.
	rep.fill(fl, killAt, allLive, verdict)
	rep.Feed = feedReport{Published: published, Failed: failed}
	rep.NodeB = []phaseCPU{
		{Phase: "before", Seconds: s1.At.Sub(s0.At).Seconds(), Cores: proc.Cores(s0, s1), RSSMiB: float64(s1.RSS) / (1 << 20)},
		{Phase: "storm", Seconds: s2.At.Sub(s1.At).Seconds(), Cores: proc.Cores(s1, s2), RSSMiB: float64(s2.RSS) / (1 << 20)},
		{Phase: "after", Seconds: s3.At.Sub(s2.At).Seconds(), Cores: proc.Cores(s2, s3), RSSMiB: float64(s3.RSS) / (1 << 20)},
	}
	for i, name := range phases {
		a, b := mk[i], mk[i+1]
		cores := 0.0
		if b.at > a.at {
			cores = float64(b.busy-a.busy) / float64(b.at-a.at) * float64(runtime.NumCPU())
		}
		rep.Machine = append(rep.Machine, phaseCPU{Phase: name, Seconds: b.self.At.Sub(a.self.At).Seconds(), Cores: cores,
			Note: fmt.Sprintf("the clients %.2f cores, node B %.2f, others %.2f", proc.Cores(a.self, b.self), proc.Cores(a.b, b.b),
				cores-proc.Cores(a.self, b.self)-proc.Cores(a.b, b.b))})
	}
	after := scrape(e.admin[1])
	rep.NodeBMetrics = map[string]float64{}
	for _, k := range []string{
		`tickgate_handshake_failures_total{reason="too_many_connections"}`,
		`tickgate_connections_active`,
		`tickgate_history_reads_total{result="resumed"}`,
		`tickgate_history_reads_total{result="unavailable"}`,
		`tickgate_history_reads_total{result="not_covered"}`,
		`tickgate_handshake_failures_total{reason="client_gone"}`,
		`tickgate_feed_gaps_total{kind="trade"}`,
		`tickgate_evictions_total{reason="lag_timeout"}`,
		`tickgate_evictions_total{reason="write_timeout"}`,
	} {
		rep.NodeBMetrics[k] = after[k] - metricsBefore[k]
		if k == `tickgate_connections_active` {
			rep.NodeBMetrics[k] = after[k]
		}
	}
	rep.StormRefusedByB = metricsStorm[`tickgate_handshake_failures_total{reason="too_many_connections"}`] -
		metricsBefore[`tickgate_handshake_failures_total{reason="too_many_connections"}`]
	rep.OK = rep.Storm.Live.N == cfg.clients && verdict.OK() && verdict.Trades.Lost == 0 && len(rep.StreamHoles) == 0
	if cfg.keep {
		logf("kept %s", e.dir)
	}
	return rep, nil
}

// makeSpecs decides every client: group, node(s), channels, codec, token.
// Steady clients come first so that they are settled before the storm
// clients open.
func makeSpecs(cfg *config, e *env) ([]fleet.Spec, error) {
	rng := rand.New(rand.NewPCG(uint64(cfg.seed), 0x73746f726d))
	sims, err := feedsim.New(feedsim.Config{Count: cfg.symbols})
	if err != nil {
		return nil, err
	}
	symbols := sims.Symbols()
	addrA, addrB := hostPort(e.nodes[0].URL), hostPort(e.nodes[1].URL)
	var specs []fleet.Spec
	for i := range cfg.steady + cfg.clients {
		s := fleet.Spec{Group: groupSteady, URL: e.nodes[1].URL}
		if i >= cfg.steady {
			// The storm clients' list of nodes: A first, then B.
			s = fleet.Spec{Group: groupStorm, URL: e.nodes[0].URL, Addrs: []string{addrA, addrB}}
		}
		for _, k := range []proto.Kind{proto.KindTrade, proto.KindBook, proto.KindTicker} {
			s.Channels = append(s.Channels, proto.Channel{Kind: k, Symbol: symbols[rng.IntN(len(symbols))]}.String())
		}
		s.Msgpack = rng.Float64() < cfg.msgpackFraction
		if s.Token, err = token(e, fmt.Sprintf("%s-%d", s.Group, i)); err != nil {
			return nil, err
		}
		specs = append(specs, s)
	}
	return specs, nil
}

func token(e *env, sub string) (string, error) {
	return e.creds.Signer.Sign(auth.TokenSpec{Subject: sub, Channels: []string{">"}, TTL: 4 * time.Hour})
}

func hostPort(url string) string {
	rest := url[strings.Index(url, "://")+3:]
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		rest = rest[:i]
	}
	return rest
}

// setUp starts NATS, the history stream and the two nodes.
func setUp(ctx context.Context, cfg *config, logf func(string, ...any)) (*env, error) {
	e := &env{}
	var err error
	if e.dir, err = os.MkdirTemp("", "tickstorm-"); err != nil {
		return nil, err
	}
	if !cfg.keep {
		e.cleanup = append(e.cleanup, func() { _ = os.RemoveAll(e.dir) })
	}
	if e.creds, err = spawn.WriteCredentials(e.dir); err != nil {
		return e, err
	}
	if err := e.startNATS(ctx, cfg); err != nil {
		return e, err
	}
	logf("NATS: %s at %s", e.natsKind, e.natsURL)
	e.bin = cfg.gatewayBin
	if e.bin == "" {
		e.bin = filepath.Join(e.dir, "tickgate")
		logf("building the gateway: go build -o %s ./cmd/tickgate", e.bin)
		if e.build, err = spawn.Build(ctx, cfg.moduleDir, e.bin); err != nil {
			return e, err
		}
	} else {
		e.build = spawn.GitInfo(ctx, cfg.moduleDir)
		e.build.Binary = e.bin
	}
	if cfg.history == "jetstream" {
		out, err := exec.CommandContext(ctx, e.bin, "stream", "--nats", e.natsURL, "--memory", "--max-age", "1h").CombinedOutput()
		if err != nil {
			return e, fmt.Errorf("tickgate stream: %v\n%s", err, out)
		}
		logf("%s", strings.TrimSpace(string(out)))
	}
	for i, name := range []string{"gw-a", "gw-b"} {
		port, err := spawn.FreePort()
		if err != nil {
			return e, err
		}
		e.admin[i] = fmt.Sprintf("http://127.0.0.1:%d", port)
		args := append([]string{"serve", "--listen=127.0.0.1:0", fmt.Sprintf("--admin=127.0.0.1:%d", port), "--nats=" + e.natsURL},
			e.creds.Args()...)
		args = append(args, "--node-id="+name, "--history="+cfg.history, "--log-level=warn",
			"--max-conns-per-ip=-1", "--max-conns-per-sub=-1", "--drain-within=1s", "--shutdown-timeout=5s")
		for _, f := range cfg.gatewayFlags {
			args = append(args, strings.Fields(f)...)
		}
		p, err := spawn.Start(ctx, spawn.Options{Bin: e.bin, Args: args, LogPath: filepath.Join(e.dir, name+".log")})
		if err != nil {
			return e, fmt.Errorf("%s: %w", name, err)
		}
		e.nodes[i] = p
		e.cleanup = append(e.cleanup, p.Stop)
		logf("node %s: pid %d, %s, admin %s", name, p.PID, p.URL, e.admin[i])
	}
	return e, nil
}

// startNATS starts nats-server with JetStream, or an embedded server.
func (e *env) startNATS(ctx context.Context, cfg *config) error {
	bin := cfg.natsServerBin
	if bin == "" && !cfg.embeddedNATS {
		if p, err := exec.LookPath("nats-server"); err == nil {
			bin = p
		} else if p, err := exec.LookPath("/usr/sbin/nats-server"); err == nil {
			bin = p
		}
	}
	store := filepath.Join(e.dir, "jetstream")
	if bin == "" {
		ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: natsserver.RANDOM_PORT, NoSigs: true, NoLog: true,
			ServerName: "tickstorm", JetStream: true, StoreDir: store})
		if err != nil {
			return err
		}
		ns.Start()
		e.cleanup = append(e.cleanup, ns.Shutdown)
		if !ns.ReadyForConnections(10 * time.Second) {
			return fmt.Errorf("embedded NATS not ready")
		}
		e.natsURL, e.natsKind = ns.ClientURL(), "embedded nats-server "+natsserver.VERSION+" with JetStream"
		return nil
	}
	port, err := spawn.FreePort()
	if err != nil {
		return err
	}
	log, err := os.Create(filepath.Join(e.dir, "nats-server.log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, "-a", "127.0.0.1", "-p", strconv.Itoa(port), "-n", "tickstorm", "-js", "-sd", store)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("nats-server: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	e.cleanup = append(e.cleanup, func() { _ = cmd.Process.Kill(); <-done; _ = log.Close() })
	ver, _ := exec.CommandContext(ctx, bin, "--version").Output()
	e.natsKind = strings.TrimSpace(string(ver)) + " (" + bin + ") with JetStream"
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	e.natsURL = "nats://" + addr
	for range 200 {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			_ = c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("nats-server did not listen on %s", addr)
}

var metricLine = regexp.MustCompile(`^(tickgate_[a-z_]+(?:\{[^}]*\})?) (\S+)$`)

// scrape reads the tickgate_* series of a node's /metrics.
func scrape(admin string) map[string]float64 {
	out := map[string]float64{}
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(admin + "/metrics")
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if m := metricLine.FindStringSubmatch(line); m != nil {
			if v, err := strconv.ParseFloat(m[2], 64); err == nil {
				out[m[1]] = v
			}
		}
	}
	return out
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
