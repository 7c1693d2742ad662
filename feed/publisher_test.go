package feed

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tickgate/tickgate/codec"
	"github.com/tickgate/tickgate/internal/natstest"
)

// TestPublishDurable: a durable publish waits until the history stream
// has the message, retrying while there is no stream to take it (as while
// a NATS cluster elects a stream leader), and the stream keeps one copy.
func TestPublishDurable(t *testing.T) {
	srv := natstest.RunJetStream(t, natstest.RandomPort)
	src := connectSource(t, srv.ClientURL(), Config{})
	pub, err := DialPublisher(srv.ClientURL(), "durable test", "md")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pub.Close)
	payload, err := codec.Msgpack().Append(nil, trade(1))
	if err != nil {
		t.Fatal(err)
	}

	// No stream yet: the publish keeps trying until ctx ends.
	short, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := pub.PublishDurable(short, "md.trade.BTC-USD", payload); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("PublishDurable without a stream = %v, want the context's deadline", err)
	}

	// The stream appears while a publish is retrying: it lands, once.
	done := make(chan error, 1)
	go func() { done <- pub.PublishDurable(ctxTimeout(t, 10*time.Second), "md.trade.BTC-USD", payload) }()
	time.Sleep(3 * durableRetry)
	if _, err := src.EnsureStream(ctxTimeout(t, 5*time.Second), StreamConfig{Memory: true}); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("PublishDurable once the stream exists = %v", err)
	}
	h, err := NewHistory(src, DefaultStream, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.PublishDurable(ctxTimeout(t, 5*time.Second), "md.trade.BTC-USD", mustTrade(t, 2)); err != nil {
		t.Fatal(err)
	}
	msgs, _, err := h.Since(ctxTimeout(t, 5*time.Second), tradeBTC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := seqsOf(msgs); len(got) != 2 || got[0] != 1 || got[1] != 2 {
		t.Fatalf("the stream holds trades %v, want [1 2]", got)
	}

	pub.Close()
	if err := pub.PublishDurable(ctxTimeout(t, 5*time.Second), "md.trade.BTC-USD", payload); err == nil {
		t.Fatal("PublishDurable on a closed publisher succeeded")
	}
}

func mustTrade(t *testing.T, seq uint64) []byte {
	t.Helper()
	b, err := codec.Msgpack().Append(nil, trade(seq))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
