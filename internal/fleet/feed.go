package fleet

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tickgate/tickgate/feed"
	"github.com/tickgate/tickgate/feed/feedsim"
	"github.com/tickgate/tickgate/proto"
)

// Feed publishes the synthetic feed (feedsim) on NATS and keeps what it
// published, per channel: the newest seq, the newest ticker, how many
// trades. A run compares what its clients hold at the end with it.
type Feed struct {
	pub    *feed.Publisher // Static after StartFeed.
	prefix string          // Static after StartFeed.
	cancel context.CancelFunc
	done   chan struct{}
	err    error // written before done closes

	published, failed atomic.Int64

	mu      sync.Mutex
	last    map[string]uint64       // Guarded by mu: channel → newest seq published (heartbeats excluded).
	tickers map[string]proto.Ticker // Guarded by mu: ticker channel → newest value published.
	trades  map[string]int          // Guarded by mu: trade channel → trades published.
	// bars: candle channel → the newest revision of each bar published,
	// by start. Guarded by mu.
	bars map[string]map[int64]proto.Candle
}

// FeedConfig configures StartFeed.
type FeedConfig struct {
	// NATS is the URL (or comma-separated URLs) to publish to. Required.
	NATS string
	// Sim configures the synthetic feed (symbols, rate, seed, snapshot
	// period). Its SubjectPrefix, zero: "md".
	Sim feedsim.Config
	// Durable publishes every message with a JetStream acknowledgement
	// and retries it until the history stream has it (a publisher that
	// must not lose trades across the loss of a NATS node). Zero: core
	// NATS publish, at most once.
	Durable bool
}

// publishTimeout bounds one durable publish, retries included.
const publishTimeout = 30 * time.Second

// StartFeed connects and starts publishing; Stop ends it.
func StartFeed(cfg FeedConfig) (*Feed, error) {
	sim, err := feedsim.New(cfg.Sim)
	if err != nil {
		return nil, err
	}
	prefix := cfg.Sim.SubjectPrefix
	if prefix == "" {
		prefix = feed.DefaultSubjectPrefix
	}
	pub, err := feed.DialPublisher(cfg.NATS, "fleet feed", prefix)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &Feed{pub: pub, prefix: prefix, cancel: cancel, done: make(chan struct{}),
		last: map[string]uint64{}, tickers: map[string]proto.Ticker{}, trades: map[string]int{}, bars: map[string]map[int64]proto.Candle{}}
	go func() {
		defer close(f.done)
		f.err = sim.Run(ctx, func(subject string, payload []byte) error {
			// Not ctx: a message under way when Stop is called is
			// published (or given up after a while) and accounted for, so
			// that what the clients got can be compared with what was sent.
			pctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
			defer cancel()
			return f.publish(pctx, cfg.Durable, subject, payload)
		})
	}()
	return f, nil
}

// publish sends one message and records it once NATS (or, durable, the
// stream) has it.
func (f *Feed) publish(ctx context.Context, durable bool, subject string, payload []byte) error {
	ch, err := proto.ParseChannel(strings.TrimPrefix(subject, f.prefix+"."))
	if err != nil {
		return err
	}
	m, err := feed.Decode(ch, payload)
	if err != nil {
		return fmt.Errorf("fleet: the feed made a message it cannot decode: %w", err)
	}
	if durable {
		err = f.pub.PublishDurable(ctx, subject, payload)
	} else {
		err = f.pub.Publish(subject, payload)
	}
	if err != nil {
		f.failed.Add(1)
		return err
	}
	f.published.Add(1)
	if m.Heartbeat {
		return nil
	}
	name := ch.String()
	f.mu.Lock()
	f.last[name] = m.Seq
	if t := m.Ticker(); t != nil {
		f.tickers[name] = *t
	} else if m.Trade() != nil {
		f.trades[name]++
	} else if c := m.Candle(); c != nil {
		if f.bars[name] == nil {
			f.bars[name] = map[int64]proto.Candle{}
		}
		f.bars[name][c.Start] = *c
	}
	f.mu.Unlock()
	return nil
}

// Stop stops publishing, waits until the publisher is idle and flushed,
// and closes it.
func (f *Feed) Stop(ctx context.Context) error {
	f.cancel()
	<-f.done
	err := f.pub.Flush(ctx)
	f.pub.Close()
	if f.err != nil && !errors.Is(f.err, context.Canceled) {
		return f.err
	}
	return err
}

// Published returns how many messages (heartbeats included) were
// published, and how many publishes failed.
func (f *Feed) Published() (ok, failed int64) { return f.published.Load(), f.failed.Load() }

// LastSeq returns the newest seq published on channel, 0 for none.
func (f *Feed) LastSeq(channel string) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last[channel]
}

// Ticker returns the newest ticker published on channel.
func (f *Feed) Ticker(channel string) (proto.Ticker, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.tickers[channel]
	return t, ok
}

// Bar returns the newest revision published of channel's bar that
// begins at start.
func (f *Feed) Bar(channel string, start int64) (proto.Candle, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.bars[channel][start]
	return c, ok
}

// Trades returns how many trades were published on channel.
func (f *Feed) Trades(channel string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.trades[channel]
}

// StreamHoles reads every trade channel the feed published on back from
// the history stream and returns, per channel with a difference, how many
// of its published trades the stream lacks (core NATS publishing is at
// most once: a stream under load can miss messages, which no resume can
// then give back). A channel whose first trade is missing counts all.
func (f *Feed) StreamHoles(ctx context.Context, natsURL, stream string) (map[string]int, error) {
	src, err := feed.Connect(feed.Config{URL: natsURL, SubjectPrefix: f.prefix, Name: "fleet stream check"})
	if err != nil {
		return nil, err
	}
	defer src.Close()
	h, err := feed.NewHistory(src, stream, 1_000_000)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	published := maps.Clone(f.trades)
	f.mu.Unlock()
	out := map[string]int{}
	for name, n := range published {
		ch, err := proto.ParseChannel(name)
		if err != nil {
			return nil, err
		}
		var msgs []*feed.Message
		for {
			msgs, _, err = h.Since(ctx, ch, 0)
			if err == nil || errors.Is(err, feed.ErrNotCovered) || ctx.Err() != nil {
				break
			}
			time.Sleep(50 * time.Millisecond) // not connected yet
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if missing := n - len(msgs); missing != 0 {
			out[name] = missing
		}
	}
	return out, nil
}
