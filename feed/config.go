package feed

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// Config configures a Source. The zero Config connects to a local NATS
// server with the defaults documented on each field.
type Config struct {
	// URL is the NATS server URL, or a comma-separated list of them.
	// Zero: nats.DefaultURL (nats://127.0.0.1:4222).
	URL string
	// SubjectPrefix is the first token(s) of every feed subject,
	// <prefix>.<kind>.<symbol>. It must be a valid NATS subject without
	// wildcards. Zero: "md".
	SubjectPrefix string
	// Name is the NATS connection name, shown in the server's monitoring.
	// Zero: "tickgate".
	Name string
	// FlushTimeout bounds how long Acquire waits for the server to confirm a
	// new subscription (on top of Acquire's context). Zero: 5s.
	FlushTimeout time.Duration
	// PendingMessages and PendingBytes bound what the node queues for one
	// channel while it is busy; beyond either, the channel's messages are
	// dropped as its dispatcher takes them (counted by Source.Dropped,
	// seen by the channel's State as a seq gap). Zero: 65536 messages and
	// 16 MiB. What arrives waits first in its dispatcher's transit queue
	// (transitSlots messages, shared by the dispatcher's channels), which
	// the dispatcher drains before each hand-over and the NATS read loop
	// while a handler call runs (Source.relieve); these apply there.
	PendingMessages int
	PendingBytes    int
	// ReconnectWait is the pause between reconnect attempts to the same
	// server; a random jitter of up to half of it is added (all of it for
	// TLS connections) so that nodes do not reconnect in one herd.
	// Zero: 2s.
	ReconnectWait time.Duration
	// Logger receives connection events and rate-limited decode errors.
	// Zero: a logger that discards everything.
	Logger *slog.Logger
}

// Defaults of Config.
const (
	DefaultSubjectPrefix = "md"
	DefaultName          = "tickgate"
	DefaultFlushTimeout  = 5 * time.Second
	DefaultReconnectWait = 2 * time.Second
	DefaultPendingMsgs   = 65536
	DefaultPendingBytes  = 16 << 20
)

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.URL == "" {
		c.URL = nats.DefaultURL
	}
	if c.SubjectPrefix == "" {
		c.SubjectPrefix = DefaultSubjectPrefix
	}
	if c.Name == "" {
		c.Name = DefaultName
	}
	if c.FlushTimeout == 0 {
		c.FlushTimeout = DefaultFlushTimeout
	}
	if c.ReconnectWait == 0 {
		c.ReconnectWait = DefaultReconnectWait
	}
	if c.PendingMessages == 0 {
		c.PendingMessages = DefaultPendingMsgs
	}
	if c.PendingBytes == 0 {
		c.PendingBytes = DefaultPendingBytes
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports whether c (with defaults applied) is usable. Errors wrap
// ErrBadConfig.
func (c Config) Validate() error {
	c = c.withDefaults()
	if err := ValidSubjectPrefix(c.SubjectPrefix); err != nil {
		return err
	}
	if c.FlushTimeout < 0 {
		return fmt.Errorf("%w: negative FlushTimeout %v", ErrBadConfig, c.FlushTimeout)
	}
	if c.ReconnectWait < 0 {
		return fmt.Errorf("%w: negative ReconnectWait %v", ErrBadConfig, c.ReconnectWait)
	}
	if c.PendingMessages < 1 {
		return fmt.Errorf("%w: PendingMessages %d below 1", ErrBadConfig, c.PendingMessages)
	}
	if c.PendingBytes < 1<<10 {
		return fmt.Errorf("%w: PendingBytes %d below 1 KiB", ErrBadConfig, c.PendingBytes)
	}
	return nil
}

// ValidSubjectPrefix reports whether p can prefix feed subjects: one or more
// non-empty tokens separated by '.', without wildcards ('*', '>'), whitespace
// or control characters. Errors wrap ErrBadConfig.
func ValidSubjectPrefix(p string) error {
	if p == "" {
		return fmt.Errorf("%w: empty subject prefix", ErrBadConfig)
	}
	if len(p) > 128 {
		return fmt.Errorf("%w: subject prefix longer than 128 bytes", ErrBadConfig)
	}
	for tok := range strings.SplitSeq(p, ".") {
		if tok == "" {
			return fmt.Errorf("%w: subject prefix %q has an empty token", ErrBadConfig, p)
		}
		for i := 0; i < len(tok); i++ {
			switch c := tok[i]; {
			case c == '*' || c == '>':
				return fmt.Errorf("%w: subject prefix %q has a wildcard", ErrBadConfig, p)
			case c <= ' ' || c == 0x7f:
				return fmt.Errorf("%w: subject prefix %q has whitespace or a control character", ErrBadConfig, p)
			}
		}
	}
	return nil
}
