// Command tickstorm measures a reconnect storm: a tickgate node dies
// (SIGKILL) and all of its clients come back at once on another node.
//
// It starts, on loopback, a NATS server with JetStream (Debian's
// nats-server when it is on PATH or given with --nats-server-bin, else an
// embedded one) and the history stream (`tickgate stream`), two `tickgate
// serve` nodes A and B with --history jetstream, and the synthetic feed
// (feedsim, every message stamped with its publish time). It opens
// --clients clients of the Go client library (package client) on node A
// and --steady undisturbed ones on node B, each on one trade, one book and
// one ticker channel. The storm clients know both nodes (a client-side
// list: their Dialer tries A, then B), so it is the library's own
// reconnect policy (full-jitter backoff, Retry-After) and resume (since)
// that is measured. Then it kills node A and reports:
//
//   - per storm client, the time from the kill to its welcome on B
//     ("back") and to every channel live again ("live"), p50/p99/max, and
//     the handshakes B refused on the way (429, pacing);
//   - trades: every storm and steady client must hold every trade from
//     its first one to the last published, in order, none twice; those
//     published while it was away and delivered by the resume count as
//     recovered, the rest as lost;
//   - every book equal to a fresh subscriber's, every ticker equal to the
//     last published one;
//   - the publish-to-receive latency of the steady clients' live data
//     before, during and after the storm (p50, p99, p99.9, max), and node
//     B's CPU in each phase.
//
// Every run is bounded (--storm-timeout, windows) and only ever connects
// to loopback. The text report goes to stdout, JSON to --json. Exit code 0
// when every storm client came back live and nothing was lost, 1
// otherwise, 2 on usage mistakes.
package main

import (
	"context"
	"fmt"
	"io"

	"github.com/tickgate/tickgate/internal/cli"
)

func main() { cli.Main(run) }

// run executes tickstorm and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseConfig(args, stderr)
	if code, ended := cli.FlagsFailed("tickstorm", err, stderr); ended {
		return code
	}
	rep, err := storm(ctx, cfg, stderr)
	if rep != nil {
		rep.writeText(stdout)
		if cfg.jsonFile != "" {
			if err := rep.writeJSON(cfg.jsonFile); err != nil {
				fmt.Fprintf(stderr, "tickstorm: --json: %v\n", err)
				return 1
			}
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "tickstorm: %v\n", err)
		return 1
	}
	if !rep.OK {
		return 1
	}
	return 0
}
