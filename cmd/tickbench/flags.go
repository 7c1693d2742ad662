package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/tickgate/tickgate/feed"
	"github.com/tickgate/tickgate/proto"
)

// errUsage marks a command-line mistake (exit code 2).
var errUsage = errors.New("usage")

// config is everything a run is told by its flags. Static after parsing.
type config struct {
	// Load shape.
	conns           int           // --connections: connections to open
	rampRate        float64       // --ramp-rate: handshakes started per second
	duration        time.Duration // --duration: measurement window after the ramp
	msgpackFraction float64       // --msgpack-fraction: share of connections on msgpack
	channelsPerConn int           // --channels-per-conn: K
	symbols         int           // --symbols: M
	kinds           []proto.Kind  // --kinds
	rate            float64       // --rate: feed messages per second (R)
	snapshotEvery   time.Duration // --snapshot-every: feed book snapshot period
	stallFraction   float64       // --stall-fraction
	stallChannels   int           // --stall-channels: channels of a stalled connection (0: K)
	stallRcvbuf     int           // --stall-rcvbuf: SO_RCVBUF of stalled sockets (0: kernel default)
	connsPerSource  int           // --conns-per-source: connections per 127.0.0.x source address
	handshakeWait   time.Duration // --handshake-timeout: dial + TLS + upgrade + subscribed ack
	seed            int64         // --seed
	jsonFile        string        // --json
	quiet           bool          // --quiet: no progress lines
	compression     bool          // --compression: clients offer permessage-deflate; spawned servers compress

	// Gateway under test, spawned.
	spawn        bool          // --spawn
	gatewayBin   string        // --gateway-bin ("" builds one)
	moduleDir    string        // --module-dir: where `go build` runs
	gatewayFlags []string      // --gateway-flag, repeatable, split on spaces
	gatewayLog   string        // --gateway-log ("" keeps it in the temp dir)
	startTimeout time.Duration // --start-timeout

	// Gateway under test, attached.
	url                string // --url
	natsURL            string // --nats ("" in attach mode: no feed is driven)
	hmacSecretFile     string // --hmac-secret-file
	token              string // --token
	caFile             string // --ca-file
	insecureSkipVerify bool   // --insecure-skip-verify
	gatewayPID         int    // --gateway-pid

	// Side-by-side comparison (compare.go).
	workload      *workload // --workload: nil runs the flags' own load against one gateway
	servers       []string  // --servers: the servers to compare, in order
	plain         bool      // not --tls: plain ws:// for every server of a comparison
	cpus          int       // --cpus: pin the server to CPUs 0..N-1 and GOMAXPROCS=N (0: no pinning)
	steerReceive  bool      // --steer-receive: the loopback's receive work on the load client's CPUs (steer.go)
	rpsPath       string    // the loopback's steering file: loopbackRPS, a temporary file in tests
	sweep         []float64 // --sweep: multiples of the workload's feed rate, one run each
	rounds        int       // --rounds: how many times every server runs, in turn, the order reversed every other round (turned); 1 without --workload
	floor         bool      // --floor: measure the bare writer of the workload (floor.go) in each round (turned)
	svgFile       string    // --svg: where a sweep's plot goes
	burst         int       // --burst: messages the feed publishes back to back per tick (1: evenly spaced; 0 without --workload: feedsim's 10 ms tick)
	centrifugoBin string    // --centrifugo-bin ("": centrifugo on PATH)
	replot        string    // --replot: draw --svg from this comparison's --json, run nothing

	// Both.
	audience      string // --audience
	issuer        string // --issuer
	subjectPrefix string // --subject-prefix
}

// stringsFlag is a repeatable string flag.
type stringsFlag []string

func (s *stringsFlag) String() string     { return strings.Join(*s, " ") }
func (s *stringsFlag) Set(v string) error { *s = append(*s, v); return nil }

// parseConfig parses args into a validated config.
func parseConfig(args []string, stderr io.Writer) (*config, error) {
	c := &config{rpsPath: loopbackRPS}
	fs := flag.NewFlagSet("tickbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usageText)
		fs.PrintDefaults()
	}
	fs.IntVar(&c.conns, "connections", 1000, "WebSocket connections to open")
	fs.Float64Var(&c.rampRate, "ramp-rate", 500, "handshakes started per second during the ramp-up")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "measurement window, after every connection is subscribed")
	fs.Float64Var(&c.msgpackFraction, "msgpack-fraction", 0.5, "share of connections that negotiate tickgate.v1.msgpack (the rest JSON), 0..1")
	fs.IntVar(&c.channelsPerConn, "channels-per-conn", 3, "channels each connection subscribes to (K), drawn at random from the kinds x symbols")
	fs.IntVar(&c.symbols, "symbols", 100, "symbols the feed publishes (M); channels are <kind>.<symbol>")
	kinds := fs.String("kinds", "ticker,book,trade", "channel kinds connections subscribe to (the feed publishes all three)")
	fs.Float64Var(&c.rate, "rate", 200, "feed messages per second over NATS, all channels together (R)")
	fs.IntVar(&c.burst, "burst", 0, "messages the feed publishes back to back per tick, ticks burst/rate apart: 1 spaces every message evenly, 20 at 2000 msg/s is a burst every 10 ms (0: the workload's own, C-burst 20 and the others 1; without --workload, a tick every 10 ms)")
	fs.DurationVar(&c.snapshotEvery, "snapshot-every", 2*time.Second, "how often the feed republishes each book as a snapshot")
	fs.Float64Var(&c.stallFraction, "stall-fraction", 0, "share of connections that stop reading after their subscribe is acknowledged, 0..1")
	fs.IntVar(&c.stallChannels, "stall-channels", 0, "channels a stalled connection subscribes to (0: --channels-per-conn)")
	fs.IntVar(&c.stallRcvbuf, "stall-rcvbuf", 0, "SO_RCVBUF in bytes of stalled connections' sockets, a small TCP window (0: kernel default)")
	fs.IntVar(&c.connsPerSource, "conns-per-source", 20000, "connections per source address 127.0.0.x before moving to the next (ephemeral ports)")
	fs.DurationVar(&c.handshakeWait, "handshake-timeout", 10*time.Second, "bound on dial, TLS, upgrade and the subscribed ack of one connection")
	fs.Int64Var(&c.seed, "seed", 1, "random seed of channel choice, codec choice and the feed")
	fs.StringVar(&c.jsonFile, "json", "", "also write the report as JSON to this file")
	fs.BoolVar(&c.quiet, "quiet", false, "no per-second progress lines on stderr")
	fs.BoolVar(&c.compression, "compression", false, "clients offer permessage-deflate as browsers do; a spawned tickgate gets --compression and Centrifugo websocket.compression (nats-server's listener stays uncompressed)")

	fs.BoolVar(&c.spawn, "spawn", false, "run an embedded NATS server and the gateway binary as a child process (TLS, HMAC secret in a temp dir)")
	fs.StringVar(&c.gatewayBin, "gateway-bin", "", "with --spawn: tickgate binary (empty: go build ./cmd/tickgate into the temp dir)")
	fs.StringVar(&c.moduleDir, "module-dir", ".", "with --spawn and no --gateway-bin: a directory inside the tickgate module to build from")
	fs.Var((*stringsFlag)(&c.gatewayFlags), "gateway-flag", "with --spawn: extra `tickgate serve` flag, repeatable (\"--write-timeout=2s\" or \"--send-queue 256\")")
	fs.StringVar(&c.gatewayLog, "gateway-log", "", "with --spawn: file for the gateway's stderr (empty: a file in the temp dir, shown on failure)")
	fs.DurationVar(&c.startTimeout, "start-timeout", 60*time.Second, "with --spawn: bound on building and starting the gateway")

	fs.StringVar(&c.url, "url", "", "attach to a running gateway: its wss:// (or ws://) URL, loopback only")
	fs.StringVar(&c.natsURL, "nats", "", "attach: NATS URL to publish the feed on (empty: no feed is driven, latency still comes from ts)")
	fs.StringVar(&c.hmacSecretFile, "hmac-secret-file", "", "attach: the gateway's HS256 secret file, to mint one token per connection")
	fs.StringVar(&c.token, "token", "", "attach: a token to use for every connection instead of minting")
	fs.StringVar(&c.caFile, "ca-file", "", "attach: PEM certificate(s) to trust for wss://")
	fs.BoolVar(&c.insecureSkipVerify, "insecure-skip-verify", false, "attach: do not verify the gateway's certificate")
	fs.IntVar(&c.gatewayPID, "gateway-pid", 0, "attach: gateway process id, to sample its CPU and RSS from /proc")

	fs.StringVar(&c.audience, "audience", "tickgate", "aud claim of minted tokens (spawn: the gateway's --audience)")
	fs.StringVar(&c.issuer, "issuer", "", "iss claim of minted tokens (spawn: the gateway's --issuer)")
	fs.StringVar(&c.subjectPrefix, "subject-prefix", feed.DefaultSubjectPrefix, "NATS subject prefix of the feed")

	workloadName := fs.String("workload", "", "compare servers on a named workload: "+workloadNames()+" (sets connections, channels, symbols and feed; --connections, --duration and --stall-fraction still apply when given)")
	servers := fs.String("servers", serverNames(), "with --workload: the servers to compare, in order (a server that cannot run here is skipped)")
	tlsOn := fs.Bool("tls", false, "with --workload: every server over TLS (wss://); default plain ws://")
	fs.IntVar(&c.cpus, "cpus", 0, "pin the server to CPUs 0..N-1 (taskset, where present) with GOMAXPROCS=N; 0: no pinning")
	fs.BoolVar(&c.steerReceive, "steer-receive", false, "with --workload and --cpus: for the whole comparison, steer the loopback's receive work (the client side of every server's write: its TCP receive, its reader's wake-up) to the load client's CPUs, as on the client's machine over a network (at the price of an interrupt to them per write that finds their backlog idle), by receive packet steering ("+loopbackRPS+", root); the file's value is put back at the end")
	sweep := fs.String("sweep", "", "with --workload: comma-separated multiples of the workload's feed rate, one run per server each (e.g. 0.5,1,2,4), plotted to --svg")
	fs.StringVar(&c.svgFile, "svg", "", "with --sweep: the SVG plot's file (default tickbench-<workload>.svg)")
	fs.IntVar(&c.rounds, "rounds", 1, "with --workload at one feed rate: run the servers and the floor in turn this many times, every other round in the reverse order (tickgate, nats, centrifugo, floor, then floor, centrifugo, nats, tickgate, ...; an even number cancels a steady drift of the machine's speed), and print each round's ratios and their median, least and greatest: on a shared machine one run of each is a sample, not a figure")
	fs.BoolVar(&c.floor, "floor", true, "with --workload: in each round, after the servers (before them in a turned round: --rounds), measure the floor, a bare writer of the workload's frames to its connections at its pace (no NATS, no fan-out): the least CPU per message any server could take here (--floor=false: skip)")
	fs.StringVar(&c.centrifugoBin, "centrifugo-bin", "", "with --workload: the centrifugo binary (default: centrifugo on PATH)")
	fs.StringVar(&c.replot, "replot", "", "draw the plot of a comparison saved with --json into --svg again, and run nothing")

	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	for k := range strings.SplitSeq(*kinds, ",") {
		kind, err := proto.ParseKind(strings.TrimSpace(k))
		if err != nil {
			return nil, fmt.Errorf("%w: --kinds: %v", errUsage, err)
		}
		c.kinds = append(c.kinds, kind)
	}
	if c.burst < 0 {
		return nil, fmt.Errorf("%w: --burst must not be negative", errUsage)
	}
	if c.replot != "" {
		if *workloadName != "" || c.spawn || c.url != "" || c.svgFile == "" {
			return nil, fmt.Errorf("%w: --replot takes --svg and nothing to run", errUsage)
		}
		return c, nil
	}
	if *workloadName != "" {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if err := c.applyWorkload(*workloadName, set, *servers, *tlsOn, *sweep); err != nil {
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
	} else if *sweep != "" || *tlsOn || c.svgFile != "" || c.rounds != 1 || c.steerReceive {
		return nil, fmt.Errorf("%w: --sweep, --rounds, --tls, --svg and --steer-receive need --workload", errUsage)
	}
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	return c, nil
}

// applyWorkload sets the load of a comparison from a named workload,
// except what the command line set explicitly (set).
func (c *config) applyWorkload(name string, set map[string]bool, servers string, tlsOn bool, sweep string) error {
	w, err := lookupWorkload(name)
	if err != nil {
		return err
	}
	if c.spawn || c.url != "" {
		return errors.New("--workload starts every server itself: it excludes --spawn and --url")
	}
	c.workload, c.plain = &w, !tlsOn
	if !set["connections"] {
		c.conns = w.conns
	}
	if !set["stall-fraction"] {
		c.stallFraction = w.stall
	}
	c.channelsPerConn, c.symbols = w.subs, w.symbols
	if c.burst == 0 {
		c.burst = max(w.burst, 1)
	} else if c.burst != w.burst {
		w.about += fmt.Sprintf(", --burst %d", c.burst) // the spacing the run had, not the workload's
	}
	c.kinds = []proto.Kind{proto.KindTicker}
	c.rate = float64(w.symbols) * w.hz
	c.msgpackFraction = 0 // JSON for every server: the others forward the feed's JSON bytes
	for s := range strings.SplitSeq(servers, ",") {
		s = strings.TrimSpace(s)
		if _, err := lookupServer(s); err != nil {
			return fmt.Errorf("--servers: %v", err)
		}
		c.servers = append(c.servers, s)
	}
	if c.rounds < 1 {
		return fmt.Errorf("--rounds %d: want at least 1", c.rounds)
	}
	if sweep == "" {
		c.sweep = []float64{1}
	} else {
		if c.rounds > 1 {
			return errors.New("--rounds repeats a run at one feed rate: it excludes --sweep")
		}
		for f := range strings.SplitSeq(sweep, ",") {
			v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
			if err != nil || !(v > 0) || math.IsInf(v, 0) {
				return fmt.Errorf("--sweep %q: want positive numbers", sweep)
			}
			c.sweep = append(c.sweep, v)
		}
		if c.svgFile == "" {
			c.svgFile = "tickbench-" + w.name + ".svg"
		}
	}
	return nil
}

const usageText = `usage: tickbench [flags]

tickbench opens many WSS connections to a tickgate gateway, drives a
synthetic feed through NATS, stalls a share of the connections, and reports
delivered messages/s, publish-to-receive latency, slow-consumer evictions and
the gateway's CPU and memory per connection.

  tickbench --spawn --connections 10000 --stall-fraction 0.01 --gateway-flag=--write-timeout=2s
  tickbench --url wss://127.0.0.1:8443/v1/ws --ca-file cert.pem --hmac-secret-file hmac.secret --nats nats://127.0.0.1:4222

With --workload it compares servers side by side on one named load, one
after the other with the same load client and the same feed bytes:
tickgate, nats-server's WebSocket listener (embedded, run as a process of
its own) and Centrifugo (raw NATS mode, when a centrifugo binary is on
PATH), and prints each one's figures and the ratios.

  tickbench --workload C-burst --servers tickgate,nats,centrifugo --cpus 1
  tickbench --workload C --burst 5 --servers tickgate,centrifugo --cpus 1
  tickbench --workload A --connections 2000 --sweep 0.5,1,2,4 --svg a.svg
  tickbench --workload C --servers tickgate,centrifugo --cpus 1 --rounds 5
  tickbench --workload A --connections 2000 --tls --cpus 1 --steer-receive --rounds 8

flags:
`

// maxConns bounds --connections: 127.0.0.1..127.0.0.254 times ports.
const maxConns = 1_000_000

func (c *config) validate() error {
	switch {
	case c.conns < 1 || c.conns > maxConns:
		return fmt.Errorf("--connections %d outside 1..%d", c.conns, maxConns)
	case !(c.rampRate > 0) || math.IsInf(c.rampRate, 0):
		return errors.New("--ramp-rate must be positive")
	case c.duration <= 0 || c.duration > time.Hour:
		return errors.New("--duration must be in (0, 1h]")
	case !(c.msgpackFraction >= 0 && c.msgpackFraction <= 1):
		return errors.New("--msgpack-fraction must be in 0..1")
	case !(c.stallFraction >= 0 && c.stallFraction <= 1):
		return errors.New("--stall-fraction must be in 0..1")
	case c.symbols < 1 || c.symbols > 100_000:
		return errors.New("--symbols must be in 1..100000")
	case c.channelsPerConn < 1 || c.channelsPerConn > len(c.kinds)*c.symbols:
		return fmt.Errorf("--channels-per-conn must be in 1..%d (kinds x symbols)", len(c.kinds)*c.symbols)
	case c.stallChannels < 0 || c.stallChannels > len(c.kinds)*c.symbols:
		return fmt.Errorf("--stall-channels must be in 0..%d (kinds x symbols)", len(c.kinds)*c.symbols)
	case c.stallRcvbuf < 0:
		return errors.New("--stall-rcvbuf must not be negative")
	case !(c.rate >= 0) || math.IsInf(c.rate, 0):
		return errors.New("--rate must not be negative")
	case c.snapshotEvery <= 0:
		return errors.New("--snapshot-every must be positive")
	case c.connsPerSource < 1 || c.connsPerSource > 28000:
		return errors.New("--conns-per-source must be in 1..28000")
	case (c.conns+c.connsPerSource-1)/c.connsPerSource > 254:
		return errors.New("--connections / --conns-per-source needs more than 254 source addresses")
	case c.handshakeWait <= 0:
		return errors.New("--handshake-timeout must be positive")
	}
	if c.cpus < 0 || c.cpus > runtime.NumCPU() {
		return fmt.Errorf("--cpus must be in 0..%d", runtime.NumCPU())
	}
	if c.steerReceive && (c.cpus < 1 || c.cpus >= runtime.NumCPU()) {
		return fmt.Errorf("--steer-receive needs --cpus in 1..%d, so that the load client has CPUs of its own to steer to", runtime.NumCPU()-1)
	}
	if c.workload != nil {
		return nil
	}
	if c.spawn {
		if c.url != "" || c.natsURL != "" || c.hmacSecretFile != "" || c.token != "" || c.caFile != "" || c.gatewayPID != 0 {
			return errors.New("--spawn excludes --url, --nats, --hmac-secret-file, --token, --ca-file and --gateway-pid")
		}
		return nil
	}
	if c.url == "" {
		return errors.New("either --spawn or --url is required")
	}
	if c.gatewayBin != "" || len(c.gatewayFlags) > 0 || c.gatewayLog != "" {
		return errors.New("--gateway-bin, --gateway-flag and --gateway-log need --spawn")
	}
	u, err := url.Parse(c.url)
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") {
		return fmt.Errorf("--url %q: want ws:// or wss://", c.url)
	}
	if err := loopbackHost(u.Hostname()); err != nil {
		return fmt.Errorf("--url: %v", err)
	}
	if c.natsURL != "" {
		for s := range strings.SplitSeq(c.natsURL, ",") {
			n, err := url.Parse(strings.TrimSpace(s))
			if err != nil || n.Hostname() == "" {
				return fmt.Errorf("--nats %q: want nats://host:port", s)
			}
			if err := loopbackHost(n.Hostname()); err != nil {
				return fmt.Errorf("--nats: %v", err)
			}
		}
	}
	if (c.token == "") == (c.hmacSecretFile == "") {
		return errors.New("attach mode needs exactly one of --token and --hmac-secret-file")
	}
	return nil
}

// loopbackHost refuses any host but localhost and loopback addresses:
// tickbench sends load only to this machine.
func loopbackHost(h string) error {
	if h == "localhost" {
		return nil
	}
	if ip := net.ParseIP(h); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("host %q is not a loopback address; tickbench only targets this machine", h)
}
