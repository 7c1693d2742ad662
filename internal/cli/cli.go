// Package cli holds what the project's command-line tools (tickbench,
// tickstorm, tickattack, tickwatch) share around their own run function:
// the signal handling of main and the exit codes of flag parsing.
package cli

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

// Run is a tool's body: it returns the process exit code.
type Run func(ctx context.Context, args []string, stdout, stderr io.Writer) int

// Main runs run with the command line and the standard streams, under a
// context canceled by SIGINT or SIGTERM, and exits with its code.
func Main(run Run) {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// FlagsFailed reports whether parsing the flags ended the run, and with
// which exit code: 0 after -help, 2 (the error written to stderr after
// name) for a usage mistake. It returns false for err == nil.
func FlagsFailed(name string, err error, stderr io.Writer) (code int, ended bool) {
	switch {
	case err == nil:
		return 0, false
	case errors.Is(err, flag.ErrHelp):
		return 0, true
	}
	fmt.Fprintf(stderr, "%s: %v\n", name, err)
	return 2, true
}
