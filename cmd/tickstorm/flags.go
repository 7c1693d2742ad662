package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// config is the parsed command line. Static after parseConfig.
type config struct {
	clients, steady int
	symbols         int
	rate            float64
	msgpackFraction float64
	rampRate        float64
	before, after   time.Duration
	settle          time.Duration
	stormTimeout    time.Duration
	history         string
	durable         bool
	seed            int64
	gatewayBin      string
	natsServerBin   string
	embeddedNATS    bool
	gatewayFlags    []string
	moduleDir       string
	jsonFile        string
	keep            bool
	quiet           bool
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, " ") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func parseConfig(args []string, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("tickstorm", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&c.clients, "clients", 10000, "clients on node A, the node that is killed (the storm)")
	fs.IntVar(&c.steady, "steady", 300, "undisturbed clients on node B, whose latency is measured")
	fs.IntVar(&c.symbols, "symbols", 100, "symbols of the feed; each client takes one trade, one book and one ticker channel")
	fs.Float64Var(&c.rate, "rate", 50, "feed messages per second, all symbols and kinds")
	fs.Float64Var(&c.msgpackFraction, "msgpack-fraction", 0.5, "share of clients on msgpack (the rest JSON)")
	fs.Float64Var(&c.rampRate, "ramp-rate", 800, "new clients per second while opening (below the nodes' --handshake-rate)")
	fs.DurationVar(&c.before, "before", 10*time.Second, "latency window before the kill")
	fs.DurationVar(&c.settle, "settle", 3*time.Second, "wait after every client subscribed before the latency window (not measured)")
	fs.DurationVar(&c.after, "after", 10*time.Second, "latency window after the last storm client is live again")
	fs.DurationVar(&c.stormTimeout, "storm-timeout", 180*time.Second, "give up on storm clients not live again this long after the kill")
	fs.StringVar(&c.history, "history", "jetstream", "the nodes' --history: jetstream (a history stream is created) or memory")
	fs.BoolVar(&c.durable, "durable", true, "publish through JetStream and wait for the stream's acknowledgement (false: core NATS, at most once: the stream may miss messages under load)")
	fs.Int64Var(&c.seed, "seed", 1, "seed of the feed and the channel choice")
	fs.StringVar(&c.gatewayBin, "gateway-bin", "", "tickgate binary (default: go build ./cmd/tickgate into a temp dir)")
	fs.StringVar(&c.natsServerBin, "nats-server-bin", "", "nats-server binary (default: nats-server on PATH or in /usr/sbin)")
	fs.BoolVar(&c.embeddedNATS, "embedded-nats", false, "run NATS embedded in this process even when nats-server is installed")
	fs.Var((*multiFlag)(&c.gatewayFlags), "gateway-flag", "extra `flag` for both nodes' tickgate serve (repeatable; later wins)")
	fs.StringVar(&c.moduleDir, "module-dir", ".", "directory inside the tickgate module, for go build")
	fs.StringVar(&c.jsonFile, "json", "", "also write the report as JSON to this `file`")
	fs.BoolVar(&c.keep, "keep", false, "keep the temp dir (logs of the nodes and NATS)")
	fs.BoolVar(&c.quiet, "quiet", false, "no progress lines on stderr")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	switch {
	case c.clients < 1:
		return nil, fmt.Errorf("--clients must be at least 1")
	case c.steady < 1:
		return nil, fmt.Errorf("--steady must be at least 1")
	case c.symbols < 1:
		return nil, fmt.Errorf("--symbols must be at least 1")
	case c.rate <= 0:
		return nil, fmt.Errorf("--rate must be above 0")
	case c.msgpackFraction < 0 || c.msgpackFraction > 1:
		return nil, fmt.Errorf("--msgpack-fraction must be within 0..1")
	case c.rampRate <= 0:
		return nil, fmt.Errorf("--ramp-rate must be above 0")
	case c.before <= 0 || c.after <= 0 || c.stormTimeout <= 0:
		return nil, fmt.Errorf("--before, --after and --storm-timeout must be above 0")
	case c.history != "jetstream" && c.history != "memory":
		return nil, fmt.Errorf("--history must be jetstream or memory")
	}
	// Each client holds one socket here and one on a node; leave room.
	if need := uint64(c.clients+c.steady) + 200; fdLimit() < need {
		return nil, fmt.Errorf("%d clients need about %d file descriptors; ulimit -n is %d", c.clients+c.steady, need, fdLimit())
	}
	return c, nil
}

// fdLimit is this process's soft limit on open files.
func fdLimit() uint64 {
	var l struct{ cur, max uint64 }
	b, err := os.ReadFile("/proc/self/limits")
	if err != nil {
		return 1 << 20
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "Max open files") {
			_, _ = fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(line, "Max open files")), "%d %d", &l.cur, &l.max)
			return l.cur
		}
	}
	return 1 << 20
}
