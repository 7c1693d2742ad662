package feed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/tickgate/tickgate/proto"
)

// Handler receives each decoded feed message of a channel, in NATS order,
// on the goroutine of the channel's dispatcher (dispatch.go), which hands
// other channels their messages too: a handler must not wait, and one
// that must (on the network) pauses its channel (Message.Pause). A
// payload that fails Decode is logged (rate-limited, without the payload),
// counted in Source.DecodeErrors and dropped: the handler is not called.
//
// When a channel's last interest is released and a new one acquired soon
// after, the new subscription may be on another dispatcher than the old
// one, which may still be handing a message over, so a handler must
// tolerate being called concurrently for one channel during that overlap
// (the gateway's per-channel mutex does).
type Handler func(ch proto.Channel, m *Message)

// Source is a node's one NATS connection with interest-counted
// subscriptions: a channel is subscribed on NATS while at least one Acquire
// holds it. It is safe for concurrent use.
type Source struct {
	cfg Config       // Static after construction; defaults applied.
	log *slog.Logger // Static after construction.
	nc  *nats.Conn   // Static after construction.
	// dialer dials nc and keeps its socket (Backlogged). Static after
	// construction; nil for a Source not made by Connect.
	dialer *feedDialer

	decodeErrors atomic.Uint64
	decodeLog    logLimiter // decode errors
	slowLog      logLimiter // NATS slow-consumer drops

	// disp are the dispatchers (dispatch.go), one per core when the
	// Source connected; a channel's is disp[n % len(disp)] for the n-th
	// subscription made (nextDisp). Static after construction.
	disp     []*dispatcher
	nextDisp atomic.Uint32
	routes   routes

	mu      sync.Mutex
	subs    map[proto.Channel]*interest // Guarded by mu.
	closed  bool                        // Guarded by mu.
	dropped uint64                      // Guarded by mu: messages NATS dropped on subscriptions since released.
}

// interest is one channel's NATS subscription and how many holds (Pending
// acquires and successful ones) it has.
type interest struct {
	ch   proto.Channel      // Static after construction: the channel held.
	refs int                // Guarded by Source.mu.
	sub  *nats.Subscription // Guarded by Source.mu; nil until confirmed.
	// route is the channel's place at its dispatcher, while subscribed.
	// Written before ready is closed, read after.
	route *route
	// ready is closed, under Source.mu, once the subscription is confirmed
	// or failed; err is written before and only read after.
	ready chan struct{}
	err   error
	// abort ends the wait for the server's confirmation, when every hold
	// was canceled before it came. Static after construction.
	abort context.CancelFunc
}

// done reports whether the subscription was confirmed or failed. Called
// with Source.mu held (ready is closed under it).
func (in *interest) done() bool {
	select {
	case <-in.ready:
		return true
	default:
		return false
	}
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
	for range runtime.GOMAXPROCS(0) {
		s.disp = append(s.disp, newDispatcher(s))
	}
	s.dialer = newFeedDialer(nats.DefaultTimeout, s.relieve)
	nc, err := nats.Connect(cfg.URL,
		nats.Name(cfg.Name),
		nats.SetCustomDialer(s.dialer),
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
			if sub != nil && errors.Is(err, nats.ErrSlowConsumer) {
				// Edge-triggered by nats.go each time a subscription turns
				// slow, which under a flood is many times a second: the
				// drops are counted (Dropped) and show as feed gaps.
				if ok, suppressed := s.slowLog.allow(); ok {
					log.Warn("nats dropped feed messages: the node's feed queue was full",
						"subject", sub.Subject, "suppressed", suppressed)
				}
				return
			}
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
	for _, d := range s.disp {
		go d.run()
	}
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
	for _, in := range s.subs { // Dropped keeps counting them
		if in.sub != nil {
			s.retire(in) // the dispatchers' bySub ends with them
		}
	}
	clear(s.subs)
	s.mu.Unlock()
	s.nc.Close()
	for _, d := range s.disp {
		close(d.stop)
	}
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
	n := 0
	for _, in := range s.subs {
		if in.refs > 0 { // not one whose holds were all canceled while it waited
			n++
		}
	}
	return n
}

// DecodeErrors returns how many feed payloads failed Decode so far.
func (s *Source) DecodeErrors() uint64 { return s.decodeErrors.Load() }

// SubjectPrefix returns the prefix of the feed subjects (defaults applied).
func (s *Source) SubjectPrefix() string { return s.cfg.SubjectPrefix }

// Pending is one hold on a channel's NATS interest, from AcquireAsync
// until Release (after it succeeded) or Cancel. Done is closed once the
// NATS server confirmed the channel's subscription or it failed; Err then
// says which. It is owned by its caller: Cancel at most once, and not after
// Release.
//
// A gateway connection keeps one per subscription for its lifetime, so it
// is two pointers (16 bytes): the channel is the interest's, shared by
// every hold of it, and no hold keeps a copy of the name it was asked for.
type Pending struct {
	s  *Source
	in *interest
}

// Done is closed once the subscription is confirmed (Err is nil) or failed.
func (p *Pending) Done() <-chan struct{} { return p.in.ready }

// Err returns nil once the subscription is confirmed, the failure once it
// failed (wrapping ErrSubscribe, or ErrClosed), and ErrPending before.
func (p *Pending) Err() error {
	select {
	case <-p.in.ready:
		return p.in.err
	default:
		return ErrPending
	}
}

// Resolved returns a Pending that is done with err (nil: confirmed) and
// holds nothing on any Source: for channel sources that need no server
// (tests and tools). Its Cancel does nothing.
func Resolved(err error) *Pending {
	in := &interest{ready: make(chan struct{}), err: err}
	close(in.ready)
	return &Pending{in: in}
}

// Cancel gives the hold up: after a success it is Release, after a failure
// nothing (the count went with it), and while the subscription is still
// being confirmed it drops this hold, so that a subscription nobody holds
// any more is undone once the server answers.
func (p *Pending) Cancel() {
	s := p.s
	if s == nil {
		return // Resolved
	}
	var gone *route // forgotten by its dispatcher once s.mu is let go
	defer func() { gone.forget() }()
	s.mu.Lock()
	defer s.mu.Unlock()
	in := p.in
	switch {
	case !in.done():
		if in.refs--; in.refs == 0 {
			in.abort() // nobody waits: stop waiting for the server
		}
	case in.err == nil && !s.closed && s.subs[in.ch] == in:
		gone = s.releaseLocked(in.ch, in)
	}
}

// AcquireAsync registers interest in ch without waiting for NATS. The
// first hold of a channel subscribes on NATS subject
// <prefix>.<kind>.<symbol> with h as the handler and asks the server to
// confirm it, bounded by Config.FlushTimeout; once the Pending's Done is
// closed with a nil Err, everything published afterwards reaches h. Holds
// of a channel already confirmed are done at once.
//
// A channel that needs the server (not yet confirmed on this node) while
// the NATS connection is down is refused at once with an error wrapping
// ErrUnavailable, so that callers never wait on a connection that is not
// there; ErrClosed after Close.
//
// One handler per channel per Source: every hold of a channel must pass the
// same h; the handler of the hold that subscribed is the one used.
func (s *Source) AcquireAsync(ch proto.Channel, h Handler) (*Pending, error) {
	if h == nil {
		return nil, fmt.Errorf("%w: %s: nil handler", ErrSubscribe, ch)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	in, ok := s.subs[ch]
	if ok && in.sub != nil {
		in.refs++
		return &Pending{s: s, in: in}, nil
	}
	if !s.nc.IsConnected() {
		return nil, fmt.Errorf("%w: %s", ErrUnavailable, ch)
	}
	if ok && in.refs > 0 {
		in.refs++
		return &Pending{s: s, in: in}, nil
	}
	// A new interest; or one whose every hold was canceled, whose wait is
	// aborted and which will fail: a fresh one takes its place (the old
	// one's goroutine then leaves the map alone and undoes only its own
	// NATS subscription).
	ctx, abort := context.WithTimeout(context.Background(), s.cfg.FlushTimeout)
	in = &interest{ch: ch, refs: 1, ready: make(chan struct{}), abort: abort}
	s.subs[ch] = in
	go s.subscribe(ctx, ch, h, in)
	return &Pending{s: s, in: in}, nil
}

// Acquire is AcquireAsync followed by a wait for the server's confirmation,
// bounded by ctx: when it returns nil, everything published afterwards
// reaches h. On failure nothing is counted and the error wraps ErrSubscribe
// (a ctx that ended shows as ctx.Err() in the chain), ErrUnavailable or
// ErrClosed.
func (s *Source) Acquire(ctx context.Context, ch proto.Channel, h Handler) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrSubscribe, ch, err)
	}
	p, err := s.AcquireAsync(ch, h)
	if err != nil {
		return err
	}
	select {
	case <-p.Done():
		return p.Err()
	case <-ctx.Done():
		p.Cancel()
		return fmt.Errorf("%w: %s: %w", ErrSubscribe, ch, ctx.Err())
	}
}

// subscribe performs the NATS side of the first hold of ch, for which in
// is registered, on its own goroutine, waiting for the server's
// confirmation at most until ctx ends.
func (s *Source) subscribe(ctx context.Context, ch proto.Channel, h Handler, in *interest) {
	defer in.abort()
	subject := ch.Subject(s.cfg.SubjectPrefix)
	d := s.disp[int(s.nextDisp.Add(1)-1)%len(s.disp)]
	r := &route{subject: subject, ch: ch, h: h, d: d}
	// The route goes in only while in is the channel's interest, under
	// s.mu: every hold of in may have been canceled before this goroutine
	// ran, and a fresh interest's goroutine may have put its route
	// already. Put after it, this one would replace it, and take the
	// subject's only route with it when it fails: the fresh interest's
	// messages would then find no route, and its subscribers nothing.
	s.mu.Lock()
	current := s.subs[ch] == in && in.refs > 0 && !s.closed
	if current {
		s.routes.put(r)
	}
	s.mu.Unlock()
	var sub *nats.Subscription
	var err error
	if current {
		sub, err = s.nc.ChanSubscribe(subject, d.transit)
		if err == nil {
			r.sub.Store(sub)
			err = s.nc.FlushWithContext(ctx)
		}
	}

	var gone *route // forgotten by its dispatcher once s.mu is let go
	defer func() { gone.forget() }()
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case err != nil:
		err = fmt.Errorf("%w: %s: %w", ErrSubscribe, ch, err)
	case s.closed:
		err = ErrClosed
	case in.refs <= 0 || !current:
		err = fmt.Errorf("%w: %s: every hold was canceled", ErrSubscribe, ch)
	}
	if err != nil {
		in.err = err
		if s.subs[ch] == in {
			delete(s.subs, ch)
		}
		if sub != nil {
			_ = sub.Unsubscribe()
		}
		s.routes.remove(r)
		gone = r
		close(in.ready)
		return
	}
	in.sub, in.route = sub, r
	close(in.ready)
}

// Release drops one successful hold of ch; the last Release unsubscribes
// from NATS. A Release without a matching successful hold is a no-op.
func (s *Source) Release(ch proto.Channel) {
	var gone *route // forgotten by its dispatcher once s.mu is let go
	defer func() { gone.forget() }()
	s.mu.Lock()
	defer s.mu.Unlock()
	in, ok := s.subs[ch]
	if !ok || s.closed || in.sub == nil {
		return
	}
	gone = s.releaseLocked(ch, in)
}

// releaseLocked drops one count of in, the confirmed entry of ch, and
// returns its route when that was the last: the caller has its
// dispatcher forget it (route.forget) once it lets s.mu go. s.mu must be
// held.
func (s *Source) releaseLocked(ch proto.Channel, in *interest) (gone *route) {
	in.refs--
	if in.refs > 0 {
		return nil
	}
	delete(s.subs, ch)
	s.retire(in)
	if err := in.sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		s.log.Warn("nats unsubscribe failed", "channel", ch.String(), "err", err)
	}
	return in.route
}

// Dropped returns how many feed messages were dropped because a channel's
// pending limits (Config.PendingMessages, PendingBytes) were reached, or
// its dispatcher's transit queue was full: messages that never reached
// the handler. The State sees them as a seq gap.
func (s *Source) Dropped() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.dropped
	for _, in := range s.subs {
		if in.sub != nil {
			n += in.drops()
		}
	}
	return n
}

// retire takes in's channel off its dispatcher (what is queued is
// dropped) and keeps its drops counted in s.dropped. Called with s.mu
// held, once the subscription is confirmed.
func (s *Source) retire(in *interest) {
	s.dropped += in.drops()
	s.routes.remove(in.route)
}

// drops is how many of the channel's messages were dropped: by NATS (the
// dispatcher's transit queue full) and by the dispatcher or the read loop
// relieving it (the channel's pending limits). Called with Source.mu
// held, once the subscription is confirmed.
func (in *interest) drops() uint64 {
	n := in.route.dropped.Load()
	if d, err := in.sub.Dropped(); err == nil {
		n += uint64(d)
	}
	return n
}

// slowChannel logs, at most once per logEvery, that ch's messages are
// dropped for its pending limits.
func (s *Source) slowChannel(ch proto.Channel) {
	if ok, suppressed := s.slowLog.allow(); ok {
		s.log.Warn("dropped feed messages: the channel's pending limit was reached",
			"channel", ch.String(), "suppressed", suppressed)
	}
}

// decodeFailed counts a payload that failed Decode and logs it at most once
// per logEvery, with how many were not logged.
func (s *Source) decodeFailed(ch proto.Channel, err error) {
	s.decodeErrors.Add(1)
	if ok, suppressed := s.decodeLog.allow(); ok {
		s.log.Warn("dropped undecodable feed message", "channel", ch.String(), "err", err, "suppressed", suppressed)
	}
}

// logEvery bounds how often one kind of feed trouble is logged.
const logEvery = 5 * time.Second

// logLimiter lets one log line through per logEvery and counts the ones it
// held back. Safe for concurrent use.
type logLimiter struct {
	last       atomic.Int64  // Unix nanoseconds of the last line let through
	suppressed atomic.Uint64 // lines held back since then
}

// allow reports whether a line may be logged now and, if so, how many
// were held back before it.
func (l *logLimiter) allow() (ok bool, suppressed uint64) {
	now := time.Now().UnixNano()
	last := l.last.Load()
	if now-last < int64(logEvery) || !l.last.CompareAndSwap(last, now) {
		l.suppressed.Add(1)
		return false, 0
	}
	return true, l.suppressed.Swap(0)
}
