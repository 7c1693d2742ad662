package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/tickgate/tickgate/codec"
	"github.com/tickgate/tickgate/feed"
	"github.com/tickgate/tickgate/feed/feedsim"
)

// runFeedsim publishes a synthetic feed on NATS until interrupted.
func runFeedsim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("feedsim", stderr)
	url := fs.String("nats", "nats://127.0.0.1:4222", "NATS server URL(s), comma separated")
	symbols := fs.Int("symbols", 100, "how many symbols (BTC-USD, ETH-USD, SOL-USD first)")
	rate := fs.Float64("rate", 1000, "messages per second, all channels together")
	prefix := fs.String("subject-prefix", feed.DefaultSubjectPrefix, "NATS subject prefix")
	codecName := fs.String("codec", feedsim.DefaultCodec, "payload encoding: "+strings.Join(codec.Names(), " or "))
	seed := fs.Int64("seed", 0, "random seed (0: time based)")
	var lf logFlags
	lf.register(fs)
	if err := parseToolFlags(fs, args); err != nil {
		return err
	}
	logger, err := lf.logger(stderr)
	if err != nil {
		return err
	}
	if err := checkSimFlags(*symbols, *rate); err != nil {
		return err
	}
	sim, err := feedsim.New(feedsim.Config{Count: *symbols, Rate: *rate, SubjectPrefix: *prefix, Codec: *codecName, Seed: *seed, Logger: logger})
	if err != nil {
		return usagef("%v", err)
	}
	pub, err := feed.DialPublisher(*url, "tickgate feedsim", *prefix, feed.PublisherLogger(logger))
	if err != nil {
		return fmt.Errorf("--nats: %w", err)
	}
	defer pub.Close()
	fmt.Fprintf(stdout, "feedsim: %d symbols at %g msg/s on %s.<kind>.<symbol> via %s\n", *symbols, *rate, *prefix, redactURLs(*url))
	if err := sim.Run(ctx, pub.Publish); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// checkSimFlags checks --symbols and --rate of feedsim and dev: feedsim
// itself would take a zero for its default.
func checkSimFlags(symbols int, rate float64) error {
	switch {
	case symbols < 1 || symbols > feedsim.MaxCount:
		return usagef("--symbols must be between 1 and %d (got %d)", feedsim.MaxCount, symbols)
	case rate <= 0:
		return usagef("--rate must be above 0 (got %g)", rate)
	}
	return nil
}
