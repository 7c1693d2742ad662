package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/tickgate/tickgate/feed"
)

// runStream creates or updates the history stream that `serve --history
// jetstream` reads (docs/operations.md "History stream"), or with --check
// only says whether it exists as configured.
func runStream(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("stream", stderr)
	url := fs.String("nats", "nats://127.0.0.1:4222", "NATS server URL(s), comma separated (JetStream enabled)")
	name := fs.String("name", feed.DefaultStream, "stream name (serve's --history-stream)")
	prefix := fs.String("subject-prefix", feed.DefaultSubjectPrefix, "NATS subject prefix of the feeds: the stream takes <prefix>.>")
	maxAge := fs.Duration("max-age", feed.DefaultStreamMaxAge, "drop messages older than this")
	perSubject := fs.Int64("max-msgs-per-subject", feed.DefaultStreamMsgsPerSubj, "keep at most this many messages per channel")
	replicas := fs.Int("replicas", 1, "copies in a NATS cluster (3 in production)")
	memory := fs.Bool("memory", false, "keep the stream in memory instead of files (tests, dev)")
	check := fs.Bool("check", false, "change nothing: say whether the stream exists as configured (exit 1 if not)")
	if err := parseToolFlags(fs, args); err != nil {
		return err
	}
	switch {
	case *maxAge <= 0:
		return usagef("--max-age must be above 0 (got %v)", *maxAge)
	case *perSubject <= 0:
		return usagef("--max-msgs-per-subject must be above 0 (got %d)", *perSubject)
	case *replicas < 1 || *replicas > 5:
		return usagef("--replicas must be between 1 and 5 (got %d)", *replicas)
	}
	if err := feed.ValidSubjectPrefix(*prefix); err != nil {
		return usagef("--subject-prefix: %v", err)
	}
	src, err := feed.Connect(feed.Config{URL: *url, SubjectPrefix: *prefix, Name: "tickgate stream"})
	if err != nil {
		return fmt.Errorf("--nats: %w", err)
	}
	defer src.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for !src.Connected() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("--nats: %s not reachable", redactURLs(*url))
		case <-time.After(20 * time.Millisecond):
		}
	}
	cfg := feed.StreamConfig{Name: *name, SubjectPrefix: *prefix, MaxAge: *maxAge, MaxMsgsPerSubject: *perSubject, Replicas: *replicas, Memory: *memory}
	what := "checked"
	if *check {
		err = src.CheckStream(ctx, cfg)
	} else {
		what, err = src.EnsureStream(ctx, cfg)
	}
	if err != nil {
		return err
	}
	spec := cfg.Spec()
	fmt.Fprintf(stdout, "stream %s %s: subjects %s, max age %v, max %d messages per subject, %d replica(s), %s storage\n",
		spec.Name, what, spec.Subjects[0], spec.MaxAge, spec.MaxMsgsPerSubject, spec.Replicas, spec.Storage)
	return nil
}
