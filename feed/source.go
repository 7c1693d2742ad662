package feed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/tickgate/tickgate/proto"
)

// Handler receives each decoded feed message of a channel, in NATS order,
// from one goroutine per channel (nats.go's per-subscription delivery). A
// payload that fails Decode is logged (rate-limited, without the payload),
// counted in Source.DecodeErrors and dropped: the handler is not called.
//
// When a channel's last interest is released and a new one acquired soon
// after, the old subscription's goroutine may still be delivering while the
// new one starts, so a handler must tolerate being called concurrently for
// one channel during that overlap (the gateway's per-channel mutex does).
type Handler func(ch proto.Channel, m *Message)

// decodeLogEvery bounds how often decode errors are logged.
const decodeLogEvery = 5 * time.Second

// Source is a node's one NATS connection with interest-counted
// subscriptions: a channel is subscribed on NATS while at least one Acquire
// holds it. It is safe for concurrent use.
type Source struct {
	cfg Config       // Static after construction; defaults applied.
	log *slog.Logger // Static after construction.
	nc  *nats.Conn   // Static after construction.

	decodeErrors  atomic.Uint64
	lastDecodeLog atomic.Int64  // Unix nanoseconds of the last decode error logged
	suppressed    atomic.Uint64 // decode errors not logged since then

	mu     sync.Mutex
	subs   map[proto.Channel]*interest // Guarded by mu.
	closed bool                        // Guarded by mu.
}

// interest is one channel's NATS subscription and how many Acquires hold it.
type interest struct {
	refs int                // Guarded by Source.mu.
	sub  *nats.Subscription // Guarded by Source.mu; nil until confirmed.
	// ready is closed once the first Acquire's subscription is confirmed
	// or failed; err (and leaderCtx) are written before and only read after.
	ready chan struct{}
	err   error
	// leaderCtx reports that err came from the first Acquirer's own
	// context: waiting Acquirers then try again instead of sharing it.
	leaderCtx bool
}

// Connect creates the node's NATS connection. It retries forever, also when
// the first connect fails (the Source works once a server is reachable),
// with a jittered reconnect wait, and logs disconnects and reconnects.
// Errors wrap ErrBadConfig or come from nats.Connect (a malformed URL).
func Connect(cfg Config) (*Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	s := &Source{
		cfg:  cfg,
		log:  cfg.Logger.With("component", "feed"),
		subs: make(map[proto.Channel]*interest),
	}
	log := s.log
	nc, err := nats.Connect(cfg.URL,
		nats.Name(cfg.Name),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		nats.ReconnectWait(cfg.ReconnectWait),
		nats.ReconnectJitter(cfg.ReconnectWait/2, cfg.ReconnectWait),
		// A half-open connection is found within about 15 s (three ping
		// intervals), not nats.go's default of minutes, so /readyz turns
		// 503 while no data flows.
		nats.PingInterval(5*time.Second),
		nats.MaxPingsOutstanding(2),
		nats.ConnectHandler(func(nc *nats.Conn) {
			log.Info("nats connected", "url", nc.ConnectedUrlRedacted())
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", err)
				return
			}
			log.Info("nats disconnected")
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("nats reconnected", "url", nc.ConnectedUrlRedacted())
		}),
		nats.ClosedHandler(func(*nats.Conn) {
			log.Debug("nats connection closed")
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			if sub != nil {
				log.Warn("nats subscription error", "subject", sub.Subject, "err", err)
				return
			}
			log.Warn("nats error", "err", err)
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("feed: connect to nats: %w", err)
	}
	s.nc = nc
	return s, nil
}

// Close unsubscribes everything and closes the NATS connection. Acquire
// afterwards returns ErrClosed; Release is a no-op. Close is idempotent.
func (s *Source) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	clear(s.subs)
	s.mu.Unlock()
	s.nc.Close()
}

// Connected reports whether the NATS connection is currently up.
func (s *Source) Connected() bool { return s.nc.IsConnected() }

// Reconnects returns how many times the NATS connection reconnected.
func (s *Source) Reconnects() uint64 { return s.nc.Stats().Reconnects }

// Channels returns how many channels the node holds NATS subscriptions
// for.
func (s *Source) Channels() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.subs)
}

// DecodeErrors returns how many feed payloads failed Decode so far.
func (s *Source) DecodeErrors() uint64 { return s.decodeErrors.Load() }

// SubjectPrefix returns the prefix of the feed subjects (defaults applied).
func (s *Source) SubjectPrefix() string { return s.cfg.SubjectPrefix }

// Acquire registers interest in ch. The first Acquire of a channel subscribes
// on NATS subject <prefix>.<kind>.<symbol> with h as the handler and waits,
// bounded by ctx and Config.FlushTimeout, until the server confirmed the
// subscription: when Acquire returns nil, everything published afterwards
// reaches h. Acquires of the same channel while the first one is still
// waiting wait for the same confirmation and share its outcome, except that
// when the first Acquire's own ctx ended, they try again with theirs. Later
// Acquires only count.
//
// One handler per channel per Source: every Acquire of a channel must pass
// the same h; the handler of the Acquire that subscribed is the one used.
//
// On failure nothing is counted and the error wraps ErrSubscribe (or is
// ErrClosed); a ctx that ended shows as ctx.Err() in the chain.
func (s *Source) Acquire(ctx context.Context, ch proto.Channel, h Handler) error {
	if h == nil {
		return fmt.Errorf("%w: %s: nil handler", ErrSubscribe, ch)
	}
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrSubscribe, ch, err)
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return ErrClosed
		}
		in, ok := s.subs[ch]
		if !ok {
			in = &interest{refs: 1, ready: make(chan struct{})}
			s.subs[ch] = in
			s.mu.Unlock()
			return s.subscribe(ctx, ch, h, in)
		}
		in.refs++
		s.mu.Unlock()

		select {
		case <-in.ready:
		case <-ctx.Done():
			s.drop(ch, in)
			return fmt.Errorf("%w: %s: %w", ErrSubscribe, ch, ctx.Err())
		}
		if in.err == nil {
			return nil
		}
		// The entry was removed with the failure, and our count with it.
		if !in.leaderCtx || ctx.Err() != nil {
			return in.err
		}
	}
}

// subscribe performs the first Acquire of ch, for which in is registered.
func (s *Source) subscribe(ctx context.Context, ch proto.Channel, h Handler, in *interest) error {
	subject := ch.Subject(s.cfg.SubjectPrefix)
	sub, err := s.nc.Subscribe(subject, func(msg *nats.Msg) {
		m, err := Decode(ch, msg.Data)
		if err != nil {
			s.decodeFailed(ch, err)
			return
		}
		h(ch, m)
	})
	if err == nil {
		fctx, cancel := context.WithTimeout(ctx, s.cfg.FlushTimeout)
		err = s.nc.FlushWithContext(fctx)
		cancel()
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil && s.closed {
		err = ErrClosed
	}
	if err != nil {
		in.leaderCtx = ctx.Err() != nil
		if errors.Is(err, ErrClosed) {
			in.err = err
		} else {
			in.err = fmt.Errorf("%w: %s: %w", ErrSubscribe, ch, err)
		}
		if s.subs[ch] == in {
			delete(s.subs, ch)
		}
		if sub != nil {
			_ = sub.Unsubscribe()
		}
		close(in.ready)
		return in.err
	}
	in.sub = sub
	close(in.ready)
	return nil
}

// Release drops one interest in ch; the last Release unsubscribes from NATS.
// A Release without a matching successful Acquire is a no-op.
func (s *Source) Release(ch proto.Channel) {
	s.mu.Lock()
	defer s.mu.Unlock()
	in, ok := s.subs[ch]
	if !ok || s.closed {
		return
	}
	s.releaseLocked(ch, in)
}

// drop undoes the count of an Acquire that gave up waiting on in.
func (s *Source) drop(ch proto.Channel, in *interest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.subs[ch] != in {
		return // failed meanwhile: the count went with the entry
	}
	s.releaseLocked(ch, in)
}

// releaseLocked drops one count of in, the entry of ch. s.mu must be held.
func (s *Source) releaseLocked(ch proto.Channel, in *interest) {
	if in.sub == nil {
		// Still subscribing: the first Acquire's own count keeps it alive,
		// so a Release beyond the others' counts is unmatched.
		if in.refs > 1 {
			in.refs--
		}
		return
	}
	in.refs--
	if in.refs > 0 {
		return
	}
	delete(s.subs, ch)
	if err := in.sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		s.log.Warn("nats unsubscribe failed", "channel", ch.String(), "err", err)
	}
}

// decodeFailed counts a payload that failed Decode and logs it at most once
// per decodeLogEvery, with how many were not logged.
func (s *Source) decodeFailed(ch proto.Channel, err error) {
	s.decodeErrors.Add(1)
	now := time.Now().UnixNano()
	last := s.lastDecodeLog.Load()
	if now-last < int64(decodeLogEvery) || !s.lastDecodeLog.CompareAndSwap(last, now) {
		s.suppressed.Add(1)
		return
	}
	s.log.Warn("dropped undecodable feed message",
		"channel", ch.String(), "err", err, "suppressed", s.suppressed.Swap(0))
}
