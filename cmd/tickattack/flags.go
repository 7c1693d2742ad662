package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
)

// errUsage marks a command-line mistake (exit code 2).
var errUsage = errors.New("usage")

// config holds the flags every scenario has. Static after parsing.
type config struct {
	gatewayBin    string        // --gateway-bin ("" builds one)
	moduleDir     string        // --module-dir: where `go build` runs
	gatewayFlags  []string      // --gateway-flag, repeatable, split on spaces
	gatewayLog    string        // --gateway-log ("" keeps it in the temp dir)
	natsServerBin string        // --nats-server-bin (scenarios that need a real one)
	startTimeout  time.Duration // --start-timeout
	jsonFile      string        // --json
	quiet         bool          // --quiet
}

// stringsFlag is a repeatable string flag.
type stringsFlag []string

func (s *stringsFlag) String() string     { return strings.Join(*s, " ") }
func (s *stringsFlag) Set(v string) error { *s = append(*s, v); return nil }

// parseFlags parses the common flags and the scenario's own.
func parseFlags(name string, sc scenario, args []string, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("tickattack "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.gatewayBin, "gateway-bin", "", "tickgate binary to attack (empty: go build ./cmd/tickgate from --module-dir into a temp dir)")
	fs.StringVar(&c.moduleDir, "module-dir", ".", "with no --gateway-bin: a directory inside the tickgate module to build from")
	fs.Var((*stringsFlag)(&c.gatewayFlags), "gateway-flag", "extra `tickgate serve` flag, repeatable (\"--command-rate=50\")")
	fs.StringVar(&c.gatewayLog, "gateway-log", "", "file for the gateway's stderr (empty: a file in the temp dir)")
	fs.StringVar(&c.natsServerBin, "nats-server-bin", "", "nats-server binary run as a process; empty: an embedded NATS server, except for nats-outage, which needs the real binary (then: nats-server from PATH)")
	fs.DurationVar(&c.startTimeout, "start-timeout", 90*time.Second, "bound on building and starting the gateway")
	fs.StringVar(&c.jsonFile, "json", "", "also write the report as JSON to this file")
	fs.BoolVar(&c.quiet, "quiet", false, "no progress lines on stderr")
	sc.register(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	if c.startTimeout <= 0 {
		return nil, fmt.Errorf("%w: --start-timeout must be positive", errUsage)
	}
	if err := sc.check(); err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	return c, nil
}

// positive checks that each named value is above zero.
func positive(vals map[string]float64) error {
	for name, v := range vals {
		if !(v > 0) {
			return fmt.Errorf("--%s must be positive", name)
		}
	}
	return nil
}
