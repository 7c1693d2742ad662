package feedsim

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"time"

	"github.com/tickgate/tickgate/codec"
	"github.com/tickgate/tickgate/feed"
	"github.com/tickgate/tickgate/proto"
)

// ErrBadConfig reports an invalid Config.
var ErrBadConfig = errors.New("feedsim: bad config")

// Config configures a Sim.
type Config struct {
	// Symbols are the symbols to feed. Zero: BTC-USD, ETH-USD and SOL-USD.
	Symbols []string
	// Count, when set, is the number of symbols: Symbols is cut to Count,
	// or extended with generated ones (SIM0004-USD, …) to reach it.
	// Zero: len(Symbols).
	Count int
	// Rate is how many messages Run publishes per second, across all
	// symbols and kinds. Zero: 100.
	Rate float64
	// Burst, when set, is how many messages Run publishes back to back
	// per tick, every Burst/Rate seconds (1: evenly spaced, one message
	// per tick). Zero: a tick every 10 ms with Rate/100 messages, one
	// message per tick below 100 messages per second.
	Burst int
	// SubjectPrefix prefixes every subject, <prefix>.<kind>.<symbol>.
	// Zero: "md".
	SubjectPrefix string
	// BookDepth is the number of levels per book side. Zero: 25.
	BookDepth int
	// SnapshotEvery is how often each book is published as a snapshot
	// after its first one. Zero: 10s.
	SnapshotEvery time.Duration
	// HeartbeatEvery is how often Run sends a publisher heartbeat
	// (contract 1.1) on each channel that published nothing meanwhile, so
	// that gateways can tell a quiet channel from a dead one. Zero: 2s;
	// negative: none.
	HeartbeatEvery time.Duration
	// Seed seeds the generator; the same seed gives the same stream.
	// Zero: 0 (still deterministic).
	Seed int64
	// Codec is the payload encoding, a codec's name (codec.Lookup:
	// "msgpack", "json"). Zero: "msgpack".
	Codec string
	// Now is the clock for ts and snapshot timing. Zero: time.Now.
	Now func() time.Time
	// Logger receives publish errors (rate-limited). Zero: discards.
	Logger *slog.Logger
}

// Defaults of Config.
const (
	DefaultRate          = 100
	DefaultSubjectPrefix = feed.DefaultSubjectPrefix
	DefaultBookDepth     = 25
	DefaultSnapshotEvery = 10 * time.Second
	DefaultHeartbeat     = 2 * time.Second
	DefaultCodec         = "msgpack"
	// MaxBookDepth bounds BookDepth.
	MaxBookDepth = 1000
	// MaxCount bounds the number of symbols.
	MaxCount = 100_000
)

// DefaultSymbols returns the symbols fed when Config.Symbols is empty.
func DefaultSymbols() []string { return []string{"BTC-USD", "ETH-USD", "SOL-USD"} }

func (c Config) withDefaults() Config {
	if len(c.Symbols) == 0 {
		c.Symbols = DefaultSymbols()
	} else {
		c.Symbols = append([]string(nil), c.Symbols...)
	}
	if c.Count > 0 && c.Count <= MaxCount {
		if c.Count < len(c.Symbols) {
			c.Symbols = c.Symbols[:c.Count]
		}
		for i := len(c.Symbols); i < c.Count; i++ {
			c.Symbols = append(c.Symbols, fmt.Sprintf("SIM%04d-USD", i+1))
		}
	}
	if c.Rate == 0 {
		c.Rate = DefaultRate
	}
	if c.SubjectPrefix == "" {
		c.SubjectPrefix = DefaultSubjectPrefix
	}
	if c.BookDepth == 0 {
		c.BookDepth = DefaultBookDepth
	}
	if c.SnapshotEvery == 0 {
		c.SnapshotEvery = DefaultSnapshotEvery
	}
	if c.HeartbeatEvery == 0 {
		c.HeartbeatEvery = DefaultHeartbeat
	}
	if c.Codec == "" {
		c.Codec = DefaultCodec
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports whether c (with defaults applied) is usable. Errors wrap
// ErrBadConfig.
func (c Config) Validate() error {
	if c.Count < 0 || c.Count > MaxCount {
		return fmt.Errorf("%w: Count %d outside 0..%d", ErrBadConfig, c.Count, MaxCount)
	}
	c = c.withDefaults()
	seen := make(map[string]bool, len(c.Symbols))
	for _, s := range c.Symbols {
		if !proto.ValidSymbol(s) {
			return fmt.Errorf("%w: symbol %q must match [A-Za-z0-9_-]{1,32}", ErrBadConfig, s)
		}
		if seen[s] {
			return fmt.Errorf("%w: duplicate symbol %q", ErrBadConfig, s)
		}
		seen[s] = true
	}
	if c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0) {
		return fmt.Errorf("%w: Rate %v must be a positive number", ErrBadConfig, c.Rate)
	}
	if c.Burst < 0 {
		return fmt.Errorf("%w: negative Burst", ErrBadConfig)
	}
	if err := feed.ValidSubjectPrefix(c.SubjectPrefix); err != nil {
		return fmt.Errorf("%w: %w", ErrBadConfig, err)
	}
	if c.BookDepth < 1 || c.BookDepth > MaxBookDepth {
		return fmt.Errorf("%w: BookDepth %d outside 1..%d", ErrBadConfig, c.BookDepth, MaxBookDepth)
	}
	if c.SnapshotEvery < 0 {
		return fmt.Errorf("%w: negative SnapshotEvery", ErrBadConfig)
	}
	if _, ok := codec.Lookup(c.Codec); !ok {
		return fmt.Errorf("%w: Codec %q must be one of %s", ErrBadConfig, c.Codec, strings.Join(codec.Names(), ", "))
	}
	return nil
}
