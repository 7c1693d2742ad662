package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/tickgate/tickgate/feed"
	"github.com/tickgate/tickgate/feed/feedsim"
)

// runFeedsim publishes a synthetic feed on NATS until interrupted.
func runFeedsim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("feedsim", stderr)
	url := fs.String("nats", "nats://127.0.0.1:4222", "NATS server URL(s), comma separated")
	symbols := fs.Int("symbols", 100, "how many symbols (BTC-USD, ETH-USD, SOL-USD first)")
	rate := fs.Float64("rate", 1000, "messages per second, all channels together")
	prefix := fs.String("subject-prefix", "md", "NATS subject prefix")
	codecName := fs.String("codec", "msgpack", "payload encoding: msgpack or json")
	seed := fs.Int64("seed", 0, "random seed (0: time based)")
	var lf logFlags
	lf.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	logger, err := lf.logger(stderr)
	if err != nil {
		return err
	}
	sim, err := feedsim.New(feedsim.Config{Count: *symbols, Rate: *rate, SubjectPrefix: *prefix, Codec: *codecName, Seed: *seed, Logger: logger})
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	pub, err := feed.DialPublisher(*url, "tickgate feedsim", *prefix)
	if err != nil {
		return fmt.Errorf("--nats: %w", err)
	}
	defer pub.Close()
	fmt.Fprintf(stdout, "feedsim: %d symbols at %g msg/s on %s.<kind>.<symbol> via %s\n", *symbols, *rate, *prefix, *url)
	if err := sim.Run(ctx, pub.Publish); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
