package feed

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// StreamConfig is the history stream a deployment keeps (docs/operations.md
// "History stream"): every feed subject, kept by age and by messages per
// subject. Zero fields take the defaults named on each.
type StreamConfig struct {
	// Name of the stream. Zero: "MD".
	Name string
	// SubjectPrefix of the feed subjects; the stream takes
	// <prefix>.>. Zero: "md".
	SubjectPrefix string
	// MaxAge drops messages older than this. Zero: 24h.
	MaxAge time.Duration
	// MaxMsgsPerSubject keeps at most this many messages per channel.
	// Zero: 1,000,000.
	MaxMsgsPerSubject int64
	// Replicas is the number of copies in a NATS cluster (1, or 3 for a
	// cluster of at least three). Zero: 1.
	Replicas int
	// Memory keeps the stream in memory instead of files (tests, dev).
	Memory bool
}

// Defaults of StreamConfig.
const (
	DefaultStream            = "MD"
	DefaultStreamMaxAge      = 24 * time.Hour
	DefaultStreamMsgsPerSubj = 1_000_000
)

func (c StreamConfig) withDefaults() StreamConfig {
	if c.Name == "" {
		c.Name = DefaultStream
	}
	if c.SubjectPrefix == "" {
		c.SubjectPrefix = DefaultSubjectPrefix
	}
	if c.MaxAge == 0 {
		c.MaxAge = DefaultStreamMaxAge
	}
	if c.MaxMsgsPerSubject == 0 {
		c.MaxMsgsPerSubject = DefaultStreamMsgsPerSubj
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	return c
}

// Spec is the JetStream configuration of the stream.
func (c StreamConfig) Spec() jetstream.StreamConfig {
	c = c.withDefaults()
	storage := jetstream.FileStorage
	if c.Memory {
		storage = jetstream.MemoryStorage
	}
	return jetstream.StreamConfig{
		Name:              c.Name,
		Description:       "tickgate feed history (docs/operations.md)",
		Subjects:          []string{c.SubjectPrefix + ".>"},
		Retention:         jetstream.LimitsPolicy,
		Discard:           jetstream.DiscardOld,
		MaxAge:            c.MaxAge,
		MaxMsgsPerSubject: c.MaxMsgsPerSubject,
		Replicas:          c.Replicas,
		Storage:           storage,
		AllowDirect:       true, // gets served by any replica: the position search is gets
		Duplicates:        time.Minute,
	}
}

// ErrStreamMismatch: the stream exists with other settings than asked.
var ErrStreamMismatch = errors.New("feed: stream differs")

// CheckStream reports whether the stream exists as cfg describes it: nil,
// or an error wrapping ErrNoHistory (missing) or ErrStreamMismatch.
func (s *Source) CheckStream(ctx context.Context, cfg StreamConfig) error {
	js, err := jetstream.New(s.nc)
	if err != nil {
		return fmt.Errorf("feed: jetstream: %w", err)
	}
	spec := cfg.Spec()
	st, err := js.Stream(ctx, spec.Name)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return fmt.Errorf("%w: stream %s does not exist", ErrNoHistory, spec.Name)
	case err != nil:
		return fmt.Errorf("%w: stream %s: %w", ErrNoHistory, spec.Name, err)
	}
	if !sameLimits(st.CachedInfo().Config, spec) {
		have := st.CachedInfo().Config
		return fmt.Errorf("%w: %s has subjects %v, max age %v, %d messages per subject, %d replica(s), %s storage",
			ErrStreamMismatch, spec.Name, have.Subjects, have.MaxAge, have.MaxMsgsPerSubject, have.Replicas, have.Storage)
	}
	return nil
}

// sameLimits reports whether have has the subjects and limits of want.
func sameLimits(have, want jetstream.StreamConfig) bool {
	return have.MaxAge == want.MaxAge && have.MaxMsgsPerSubject == want.MaxMsgsPerSubject &&
		have.Replicas == want.Replicas && have.Storage == want.Storage &&
		len(have.Subjects) == 1 && have.Subjects[0] == want.Subjects[0]
}

// EnsureStream creates the stream, or updates it to cfg when it exists
// with other limits, through src's connection. It reports what it did:
// "created", "updated" or "unchanged".
func (s *Source) EnsureStream(ctx context.Context, cfg StreamConfig) (string, error) {
	if err := ValidSubjectPrefix(cfg.withDefaults().SubjectPrefix); err != nil {
		return "", err
	}
	js, err := jetstream.New(s.nc)
	if err != nil {
		return "", fmt.Errorf("feed: jetstream: %w", err)
	}
	spec := cfg.Spec()
	st, err := js.Stream(ctx, spec.Name)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		if _, err := js.CreateStream(ctx, spec); err != nil {
			return "", fmt.Errorf("feed: create stream %s: %w", spec.Name, err)
		}
		return "created", nil
	case err != nil:
		return "", fmt.Errorf("feed: stream %s: %w", spec.Name, err)
	}
	if sameLimits(st.CachedInfo().Config, spec) {
		return "unchanged", nil
	}
	if _, err := js.UpdateStream(ctx, spec); err != nil {
		return "", fmt.Errorf("feed: update stream %s: %w", spec.Name, err)
	}
	return "updated", nil
}
