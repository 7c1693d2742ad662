package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/tickgate/tickgate/proto"
)

// errUsage marks a command-line mistake (exit status 2).
var errUsage = errors.New("usage")

func usagef(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, args...))
}

const usageText = `usage: tickwatch --url URL --token-file F [--ca-file F] [--msgpack] --channels C1,C2,... [--json] [--duration D]

Watches channels of a tickgate node, checking every prev chain and book
checksum, and prints one line per event and a summary. Exit status: 0 when
every inconsistency seen was recovered, 1 otherwise, 2 for usage mistakes.

flags:
`

// config is what the flags say. Static after parsing.
type config struct {
	url         string
	tokenFile   string
	caFile      string
	msgpack     bool
	channels    []string
	json        bool
	duration    time.Duration
	grace       time.Duration
	subprotocol bool
}

func parseConfig(args []string, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("tickwatch", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usageText)
		fs.PrintDefaults()
	}
	var channels string
	fs.StringVar(&c.url, "url", "", "the node's WebSocket URL, wss://host:port/v1/ws (required)")
	fs.StringVar(&c.tokenFile, "token-file", "", "file holding the JWT, read again at every connection and refresh (required)")
	fs.StringVar(&c.caFile, "ca-file", "", "PEM certificate(s) to trust for wss:// (default: the system's roots)")
	fs.BoolVar(&c.msgpack, "msgpack", false, "use the msgpack codec instead of JSON")
	fs.StringVar(&channels, "channels", "", "comma-separated channels, for example book.BTC-USD,trade.ETH-USD (required)")
	fs.BoolVar(&c.json, "json", false, "print one JSON object per line")
	fs.DurationVar(&c.duration, "duration", 0, "stop after this long (0: until interrupted)")
	fs.DurationVar(&c.grace, "grace", 5*time.Second, "at the end, how long to wait for channels still recovering")
	fs.BoolVar(&c.subprotocol, "bearer-subprotocol", false, "send the token as a bearer. subprotocol entry (as browsers do) instead of the Authorization header")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, usagef("%v", err)
	}
	switch {
	case fs.NArg() > 0:
		return nil, usagef("unexpected arguments %q", fs.Args())
	case c.url == "":
		return nil, usagef("--url is required")
	case !strings.HasPrefix(c.url, "wss://") && !strings.HasPrefix(c.url, "ws://"):
		return nil, usagef("--url %q: want wss:// or ws://", c.url)
	case c.tokenFile == "":
		return nil, usagef("--token-file is required")
	case c.duration < 0 || c.grace < 0:
		return nil, usagef("--duration and --grace must not be negative")
	}
	for ch := range strings.SplitSeq(channels, ",") {
		if ch = strings.TrimSpace(ch); ch == "" {
			continue
		}
		if _, err := proto.ParseChannel(ch); err != nil {
			return nil, usagef("--channels: %v", err)
		}
		c.channels = append(c.channels, ch)
	}
	if len(c.channels) == 0 {
		return nil, usagef("--channels is required")
	}
	return c, nil
}
