// Command tickattack replays the outside attacks of issue 8 against a real
// `tickgate serve` process and prints what happened, as figures. Each
// scenario is a subcommand that spawns its own NATS server and gateway on
// random loopback ports, with real TLS (a self-signed certificate) and an
// HMAC secret it writes, so a run needs nothing but the gateway binary:
//
//	claims        hand-signed tokens whose claims differ only in the case
//	              or the type of a key, or name one twice
//	resubscribe   a 5,000-level book, two legitimate readers, and attackers
//	              that re-subscribe to the book many times a second and
//	              never read
//	nats-outage   a client subscribes while Debian's nats-server has just
//	              been killed with SIGKILL
//	nats-flood    a book (or --kind trade) channel flooded through NATS as
//	              fast as the publisher can
//	token-cost    one token opens as many connections as the node allows,
//	              each subscribing to 1,000 distinct channels
//
// A scenario measures; it does not judge. It reports outcomes generically
// (HTTP statuses, reply types and error codes, close codes with times,
// latencies, the node's CPU, RSS, metrics and log), so the same command
// line gives comparable figures against a gateway before and after a fix.
// The figures go to stdout, progress to stderr, and with --json FILE the
// whole report as JSON. Exit code 0 after a completed run, 1 when the run
// could not be completed, 2 on usage mistakes.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/tickgate/tickgate/internal/cli"
)

const usageText = `usage: tickattack <scenario> [flags]

Replays the outside attacks of issue 8 against a real 'tickgate serve'
process (spawned with its own NATS server, TLS and HMAC secret) and prints
the outcomes.

scenarios:
  claims        tokens with shadowed, mistyped or duplicated claims
  resubscribe   repeated subscribes to a 5,000-level book by clients that never read
  nats-outage   subscribes right after nats-server is killed with SIGKILL
  nats-flood    a book (or --kind trade) channel flooded through NATS
  token-cost    one token: as many connections as allowed, 1,000 channels each

  tickattack resubscribe --gateway-bin /tmp/tickgate-before --json /tmp/resub.json

Run 'tickattack <scenario> -h' for a scenario's flags.
`

func main() { cli.Main(run) }

// scenario is one subcommand: it registers its own flags, then runs
// against a node that run starts for it.
type scenario interface {
	// register adds the scenario's flags.
	register(fs *flag.FlagSet)
	// check validates them.
	check() error
	// nodeNeeds says how the node must be set up.
	nodeNeeds() nodeNeeds
	// run attacks the node and returns the scenario's result.
	run(ctx context.Context, n *node, logf logFunc) (result, error)
}

// logFunc prints a progress line to stderr (unless --quiet).
type logFunc func(format string, a ...any)

func scenarios() map[string]func() scenario {
	return map[string]func() scenario{
		"claims":      func() scenario { return &claimsScenario{} },
		"resubscribe": func() scenario { return &resubscribeScenario{} },
		"nats-outage": func() scenario { return &outageScenario{} },
		"nats-flood":  func() scenario { return &floodScenario{} },
		"token-cost":  func() scenario { return &tokenCostScenario{} },
	}
}

// run executes one scenario and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usageText)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usageText)
		return 0
	}
	mk, ok := scenarios()[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "tickattack: unknown scenario %q\n\n%s", args[0], usageText)
		return 2
	}
	name, sc := args[0], mk()
	cfg, err := parseFlags(name, sc, args[1:], stderr)
	if code, ended := cli.FlagsFailed("tickattack "+name, err, stderr); ended {
		return code
	}
	rep, err := execute(ctx, name, sc, cfg, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "tickattack %s: %v\n", name, err)
		return 1
	}
	rep.writeText(stdout)
	if cfg.jsonFile != "" {
		if err := rep.writeJSON(cfg.jsonFile); err != nil {
			fmt.Fprintf(stderr, "tickattack %s: --json: %v\n", name, err)
			return 1
		}
	}
	return 0
}

// execute starts the node, runs the scenario and tears the node down.
func execute(ctx context.Context, name string, sc scenario, cfg *config, stderr io.Writer) (*report, error) {
	logf := func(format string, a ...any) {
		if !cfg.quiet {
			fmt.Fprintf(stderr, "tickattack: "+format+"\n", a...)
		}
	}
	n, err := startNode(ctx, cfg, sc.nodeNeeds(), logf)
	if err != nil {
		return nil, err
	}
	defer n.close()
	rep := newReport(name, sc, n)
	res, err := sc.run(ctx, n, logf)
	if err != nil {
		return nil, err
	}
	rep.finish(n, res)
	return rep, nil
}
