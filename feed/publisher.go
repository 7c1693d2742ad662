package feed

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go"

	"github.com/tickgate/tickgate/codec"
	"github.com/tickgate/tickgate/proto"
)

// Publisher is a NATS connection for feed publishers: the synthetic feed of
// the dev mode and `tickgate feedsim`, and tests. It reconnects forever.
type Publisher struct {
	nc     *nats.Conn // Static after construction; safe for concurrent use.
	prefix string     // Static after construction.
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

// Flush waits until the server has everything published so far.
func (p *Publisher) Flush(ctx context.Context) error { return p.nc.FlushWithContext(ctx) }

// Close drains nothing and closes the connection.
func (p *Publisher) Close() { p.nc.Close() }
