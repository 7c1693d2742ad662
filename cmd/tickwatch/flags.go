package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/tickgate/tickgate/client"
	"github.com/tickgate/tickgate/proto"
)

// errUsage marks a command-line mistake (exit status 2).
var errUsage = errors.New("usage")

func usagef(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, args...))
}

const usageText = `usage: tickwatch --url URL --token-file F [--ca-file F] [--msgpack] --channels C1,C2,... [--depth N] [--recent N] [--bars N] [--json] [--duration D]

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
	// The subscribe options of contract 1.1, each checked by the client
	// library; none when nil.
	options []client.SubscribeOption
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
	var depth, recent, bars int
	fs.IntVar(&depth, "depth", 0, "book channels: only the best N levels per side (10, 25, 100, 500 or 1000; 0: the whole book)")
	fs.IntVar(&recent, "recent", 0, "trade channels: start with up to N (at most 1000) recent trades")
	fs.IntVar(&bars, "bars", 0, "candle channels: start with up to N (1 to 1000) bars (0: the node's default, 100)")
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
	for _, o := range []struct {
		set bool
		opt client.SubscribeOption
	}{{depth != 0, client.Depth(depth)}, {recent != 0, client.Recent(recent)}, {bars != 0, client.Bars(bars)}} {
		if o.set {
			if err := client.CheckOption(o.opt); err != nil {
				return nil, usagef("%v", err)
			}
			c.options = append(c.options, o.opt)
		}
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
