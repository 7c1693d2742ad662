// Command tickgate is the tickgate gateway binary: serve (a gateway node),
// dev (a node with embedded NATS, synthetic feed and self-signed TLS),
// token (mint an HS256 token), feedsim (publish a synthetic feed), stream
// (the JetStream history stream), revoke (end a subscriber's access on
// every node) and top (watch nodes live).
//
// Every flag also reads from the environment as TICKGATE_<FLAG> (upper
// case, '-' as '_') and from an optional YAML file (--config); flags win
// over the environment, which wins over the file.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `usage: tickgate <command> [flags]

commands:
  serve    run a gateway node
  dev      run a node with embedded NATS, a synthetic feed and self-signed TLS
  token    mint an HS256 token
  feedsim  publish a synthetic ticker/book/trade feed on NATS
  stream   create, update or check the JetStream history stream (serve --history jetstream)
  revoke   end a subscriber's access on every node now (through any node's admin API)
  top      watch one or more nodes live: connections, rates, latency, channels

Run 'tickgate <command> -h' for a command's flags.
`

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sigs
		cancel() // the first signal drains the node
		s := <-sigs
		os.Exit(128 + int(s.(syscall.Signal))) // a second one ends it at once
	}()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one subcommand and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = runServe(ctx, args[1:], stdout, stderr)
	case "dev":
		err = runDev(ctx, args[1:], stdout, stderr)
	case "token":
		err = runToken(args[1:], stdout, stderr)
	case "feedsim":
		err = runFeedsim(ctx, args[1:], stdout, stderr)
	case "stream":
		err = runStream(ctx, args[1:], stdout, stderr)
	case "revoke":
		err = runRevoke(ctx, args[1:], stdout, stderr)
	case "top":
		err = runTop(ctx, args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "tickgate: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "tickgate %s: %v\n", args[0], err)
		return 2
	default:
		fmt.Fprintf(stderr, "tickgate %s: %v\n", args[0], err)
		return 1
	}
}
