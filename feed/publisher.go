package feed

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tickgate/tickgate/codec"
	"github.com/tickgate/tickgate/proto"
)

// Publisher is a NATS connection for feed publishers: the synthetic feed of
// the dev mode and `tickgate feedsim`, and tests. It reconnects forever.
type Publisher struct {
	nc     *nats.Conn // Static after construction; safe for concurrent use.
	prefix string     // Static after construction.

	jsOnce sync.Once
	js     jetstream.JetStream // Static after jsOnce.
	jsErr  error               // Static after jsOnce.
	idBase string              // Static after jsOnce: this publisher's message id prefix.
	ids    atomic.Uint64       // the next message id's counter
}

// DialPublisher connects to url (comma-separated URLs allowed) and
// publishes under subject prefix (zero: "md").
func DialPublisher(url, name, prefix string, opts ...PublisherOption) (*Publisher, error) {
	if prefix == "" {
		prefix = DefaultSubjectPrefix
	}
	if err := ValidSubjectPrefix(prefix); err != nil {
		return nil, err
	}
	var o publisherOptions
	for _, opt := range opts {
		opt(&o)
	}
	natsOpts := []nats.Option{nats.Name(name), nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true)}
	if l := o.log; l != nil {
		natsOpts = append(natsOpts,
			nats.ConnectHandler(func(nc *nats.Conn) { l.Info("NATS connected", "url", nc.ConnectedUrlRedacted()) }),
			nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
				l.Warn("NATS connection lost; publishing resumes when it is back", "err", fmt.Sprint(err))
			}),
			nats.ReconnectHandler(func(nc *nats.Conn) { l.Info("NATS reconnected", "url", nc.ConnectedUrlRedacted()) }),
		)
	}
	nc, err := nats.Connect(url, natsOpts...)
	if err != nil {
		return nil, fmt.Errorf("feed: publisher: %w", err)
	}
	if o.log != nil && !nc.IsConnected() {
		o.log.Warn("NATS not reachable yet; retrying until it is")
	}
	return &Publisher{nc: nc, prefix: prefix}, nil
}

// PublisherOption configures DialPublisher.
type PublisherOption func(*publisherOptions)

type publisherOptions struct {
	log *slog.Logger
}

// PublisherLogger makes the publisher log its connection's changes to l:
// not reachable at start, lost, back.
func PublisherLogger(l *slog.Logger) PublisherOption {
	return func(o *publisherOptions) { o.log = l }
}

// Publish sends a raw payload on subject.
func (p *Publisher) Publish(subject string, payload []byte) error {
	return p.nc.Publish(subject, payload)
}

// PublishMessage encodes m as msgpack and sends it on ch's subject.
func (p *Publisher) PublishMessage(ch proto.Channel, m proto.FeedMessage) error {
	b, err := codec.Msgpack().Append(nil, m)
	if err != nil {
		return err
	}
	return p.nc.Publish(ch.Subject(p.prefix), b)
}

// durableRetry is the pause between two attempts of PublishDurable, and
// durableAttempt bounds the wait for one acknowledgement.
const (
	durableRetry   = 100 * time.Millisecond
	durableAttempt = 2 * time.Second
)

// PublishDurable sends a raw payload on subject through JetStream and
// returns once the stream over subject has stored it. An attempt that
// gets no acknowledgement (no stream leader while a NATS node is lost,
// the connection reconnecting) is retried with the same message id, so
// the stream keeps one copy even when a lost acknowledgement hid a stored
// message; core NATS subscribers may then see the message twice (a
// gateway drops the second by its seq). It returns ctx's error when ctx
// ends first. Calls must not overlap if their order matters.
func (p *Publisher) PublishDurable(ctx context.Context, subject string, payload []byte) error {
	p.jsOnce.Do(func() {
		p.js, p.jsErr = jetstream.New(p.nc)
		b := make([]byte, 6)
		_, _ = rand.Read(b)
		p.idBase = hex.EncodeToString(b) + "-"
	})
	if p.jsErr != nil {
		return fmt.Errorf("feed: publisher: %w", p.jsErr)
	}
	id := p.idBase + strconv.FormatUint(p.ids.Add(1), 10)
	msg := &nats.Msg{Subject: subject, Data: payload}
	for {
		actx, cancel := context.WithTimeout(ctx, durableAttempt)
		_, err := p.js.PublishMsg(actx, msg, jetstream.WithMsgID(id))
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, nats.ErrConnectionClosed) {
			return fmt.Errorf("feed: publisher: %w", err)
		}
		t := time.NewTimer(durableRetry)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Flush waits until the server has everything published so far.
func (p *Publisher) Flush(ctx context.Context) error { return p.nc.FlushWithContext(ctx) }

// Close drains nothing and closes the connection.
func (p *Publisher) Close() { p.nc.Close() }
