// Command tickbench is the load generator of tickgate. It opens many WSS
// connections to a gateway (from several 127.0.0.x source addresses, so the
// ephemeral port range is not a limit), each with a token, a codec (JSON or
// msgpack) and K of the feed's channels; drives a synthetic feed at R
// messages/s through NATS, every message stamped with its publish time in
// data.ts; stalls a share of the connections (they stop reading their socket
// once subscribed, so the gateway's buffers toward them fill); and reports:
//
//   - delivered messages/s to the healthy connections, and seq gaps;
//   - publish-to-receive latency of updates (receive time - data.ts), p50,
//     p99 and p99.9 from an HDR histogram: once as the read loop has them,
//     once as they reached the client's socket, by the kernel's receive
//     timestamps (stamp_linux.go: without the load client's own queue, an
//     upper bound);
//   - stalled connections the gateway evicted, and the time from stalling to
//     the eviction (a stalled client writes a tiny unsolicited pong every
//     50 ms and never reads: the first write after the gateway closed its
//     side draws a TCP reset, and the one after fails), and the close code
//     each one finds in its socket once it reads again at the end;
//   - healthy connections the gateway closed (must be 0);
//   - the gateway process's CPU seconds and RSS from /proc, per connection.
//
// It either spawns the gateway (--spawn: an embedded NATS server on a random
// port, a self-signed certificate and an HMAC secret in a temp dir, and the
// tickgate binary, built with go build when --gateway-bin is not given, run
// as `tickgate serve` with extra --gateway-flag flags) or attaches to one
// (--url, --nats, --hmac-secret-file or --token, --gateway-pid). Every run
// is bounded: ramp-up at --ramp-rate handshakes/s, each bounded by
// --handshake-timeout, a --duration window, then a teardown of a few
// seconds; and it only ever connects to loopback addresses.
//
// With --workload NAME (A, B, C, C-burst, idle, stalled) it compares
// servers side by side instead (compare.go): tickgate, nats-server's
// WebSocket listener (this binary's hidden nats-server subcommand, an
// embedded server in a process of its own) and Centrifugo in raw NATS mode
// when a centrifugo binary is on PATH, one after the other, with the same
// load client and the same feed bytes; each server's client protocol is a
// dialect (dialect.go, natsws.go, centrifugo.go). It prints each run's
// report, a table with the ratios of tickgate to the others, and with
// --sweep an SVG plot of deliveries per server core and p99 against
// offered load. --cpus N pins the server to N CPUs and the load client to
// the rest.
//
// Progress goes to stderr once a second; the report to stdout, and as JSON
// to --json FILE. Exit code 0 after a completed run, 1 on errors, 2 on usage
// mistakes. The report's verdict is for the caller to judge (see
// bench_test.go for the assertions the project makes).
package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/tickgate/tickgate/internal/cli"

	"github.com/tickgate/tickgate/internal/proc"
)

func main() { cli.Main(run) }

// run executes tickbench and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == natsServerCommand {
		return runNATSServer(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == feedProbeCommand {
		return runFeedProbe(ctx, args[1:], stdout, stderr)
	}
	cfg, err := parseConfig(args, stderr)
	if code, ended := cli.FlagsFailed("tickbench", err, stderr); ended {
		return code
	}
	if cfg.replot != "" {
		if err := replot(cfg.replot, cfg.svgFile); err != nil {
			fmt.Fprintf(stderr, "tickbench: --replot: %v\n", err)
			return 1
		}
		return 0
	}
	if cfg.workload != nil {
		if err := compare(ctx, cfg, stdout, stderr); err != nil {
			fmt.Fprintf(stderr, "tickbench: %v\n", err)
			return 1
		}
		return 0
	}
	rep, err := execute(ctx, cfg, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "tickbench: %v\n", err)
		return 1
	}
	rep.writeText(stdout)
	if cfg.jsonFile != "" {
		if err := rep.writeJSON(cfg.jsonFile); err != nil {
			fmt.Fprintf(stderr, "tickbench: --json: %v\n", err)
			return 1
		}
	}
	return 0
}

// execute sets up the target, runs the bench and tears everything down.
func execute(ctx context.Context, cfg *config, stderr io.Writer) (*report, error) {
	var (
		t   *target
		err error
	)
	if cfg.spawn {
		t, err = start(ctx, cfg, "tickgate", logger(cfg, stderr))
	} else {
		t, err = attach(cfg)
	}
	if err != nil {
		return nil, err
	}
	defer t.close()
	return measure(ctx, cfg, t, stderr)
}

// logger returns the progress logger of a run: stderr unless --quiet.
func logger(cfg *config, stderr io.Writer) func(string, ...any) {
	return func(format string, a ...any) {
		if !cfg.quiet {
			fmt.Fprintf(stderr, "tickbench: "+format+"\n", a...)
		}
	}
}

// measure runs the bench against a started or attached target.
func measure(ctx context.Context, cfg *config, t *target, stderr io.Writer) (*report, error) {
	b := &bench{
		cfg:     cfg,
		target:  t,
		stderr:  stderr,
		cnt:     &counters{},
		lat:     newLatencies(),
		sock:    newLatencies(),
		self:    proc.NewReader(os.Getpid()),
		release: make(chan struct{}),
	}
	if t.pid != 0 {
		b.gw = proc.NewReader(t.pid)
	}
	return b.run(ctx)
}
