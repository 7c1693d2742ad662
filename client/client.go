package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/tickgate/tickgate/proto"
)

// Client is a connection to a tickgate node that keeps itself up: it
// reconnects, re-subscribes and resumes, checks every chain and checksum,
// and keeps each channel's state. Its methods are safe for concurrent use.
type Client struct {
	url  string          // Static.
	opts Options         // Static: with defaults.
	log  *slog.Logger    // Static.
	ctx  context.Context // Static: cancelled by Close.
	stop context.CancelFunc
	sink sink   // Static: the event queue, or nopSink.
	q    *queue // Static: nil without OnEvent.

	stats counters
	kickC chan struct{} // cap 1: a re-subscribe is due
	done  chan struct{} // closed when run returned
	wg    sync.WaitGroup
	close sync.Once

	mu      sync.Mutex
	r       *router            // Guarded by mu.
	reqs    map[int64]*request // Guarded by mu.
	nextID  int64              // Guarded by mu.
	cur     *conn              // Guarded by mu: the connection up, nil between.
	connUp  chan struct{}      // Guarded by mu: closed when a connection comes up.
	lastErr error              // Guarded by mu: the last failed attempt's error.
}

// Dial connects to a node at url (wss://host:port/v1/ws, or ws:// behind a
// TLS-terminating load balancer) and returns once the first connection is
// up. It retries while failures may pass (refused, 429, 503, timeouts),
// until ctx ends; it returns at once an error that retrying cannot fix (a
// 401, 403 or 400 answer: a *HandshakeError; a certificate the client
// refuses). The client then lives until Close: ctx bounds Dial only.
func Dial(ctx context.Context, rawURL string, opts Options) (*Client, error) {
	opts = opts.withDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%w: url: %v", ErrConfig, err)
	}
	if u.Scheme != "wss" && u.Scheme != "ws" {
		return nil, fmt.Errorf("%w: url scheme %q: want wss or ws", ErrConfig, u.Scheme)
	}
	c := &Client{
		url:    rawURL,
		opts:   opts,
		log:    opts.Logger,
		sink:   nopSink{},
		kickC:  make(chan struct{}, 1),
		done:   make(chan struct{}),
		reqs:   map[int64]*request{},
		connUp: make(chan struct{}),
	}
	c.ctx, c.stop = context.WithCancel(context.Background())
	if opts.OnEvent != nil {
		c.q = newQueue(opts.OnEvent, opts.MaxPending, &c.stats)
		c.sink = c.q
		go c.q.run()
	}
	c.r = newRouter(c.sink, &c.stats, c.kick, opts.Now)
	first := make(chan error, 1)
	c.wg.Go(func() { c.run(first) })
	select {
	case err := <-first:
		if err != nil {
			_ = c.Close()
			return nil, err
		}
		return c, nil
	case <-ctx.Done():
		c.mu.Lock()
		last := c.lastErr
		c.mu.Unlock()
		_ = c.Close()
		if last != nil {
			return nil, fmt.Errorf("client: dial %s: %w (last attempt: %w)", u.Redacted(), ctx.Err(), last)
		}
		return nil, fmt.Errorf("client: dial %s: %w", u.Redacted(), ctx.Err())
	}
}

// Close closes the connection (1000), stops reconnecting, and waits for
// every goroutine of the client to end: the handler call under way, if
// any, finishes; events still waiting are discarded. Calls waiting in
// Subscribe, Unsubscribe or Ping return ErrClosed. Do not call Close
// from the handler: it would wait for itself.
func (c *Client) Close() error {
	c.close.Do(func() {
		c.stop()
		c.wg.Wait()
		c.mu.Lock()
		for _, req := range c.reqs {
			req.complete()
		}
		clear(c.reqs)
		c.mu.Unlock()
		if c.q != nil {
			c.q.close()
		}
	})
	return nil
}

func (c *Client) kick() {
	select {
	case c.kickC <- struct{}{}:
	default:
	}
}

// run connects, serves and reconnects until Close. It reports the first
// connection's outcome on first.
func (c *Client) run(first chan<- error) {
	defer close(c.done)
	bo := backoff{min: c.opts.BackoffMin, max: c.opts.BackoffMax, rand: jitter}
	up := false
	for {
		cn, err := c.connect()
		if c.ctx.Err() != nil {
			if !up {
				first <- ErrClosed
			}
			return
		}
		var e ended
		if err != nil {
			if !up && permanent(err) {
				first <- err
				return
			}
			c.mu.Lock()
			c.lastErr = err
			c.mu.Unlock()
			e = ended{err: err}
		} else {
			if up {
				c.stats.reconnects.Add(1)
			}
			c.up(cn) // before Dial returns: Conn and Subscribe see it
			if !up {
				up = true
				first <- nil
			}
			start := time.Now()
			err = c.serve(cn)
			c.down()
			if c.ctx.Err() != nil {
				return
			}
			e = ended{err: err, lived: time.Since(start), withinMS: cn.withinMS.Load()}
		}
		d := reconnectDelay(e, &bo, &c.opts)
		c.log.Info("disconnected; reconnecting", "err", fmt.Sprint(err), "in", d.Round(time.Millisecond).String())
		c.sink.push(nil, Event{Type: EventDisconnected, Err: err, Delay: d}, nil)
		t := time.NewTimer(d)
		select {
		case <-c.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// up makes cn the connection: waiting calls go on, every channel is due
// for a re-subscribe.
func (c *Client) up(cn *conn) {
	c.mu.Lock()
	c.cur = cn
	close(c.connUp)
	c.lastErr = nil
	info := cn.info
	c.mu.Unlock()
	c.log.Info("connected", "node", info.Node, "session", info.Session, "codec", info.Codec)
	c.sink.push(nil, Event{Type: EventConnected, Conn: &info}, nil)
	c.kick()
}

// down forgets the connection that ended: commands waiting for an answer
// learn it was lost, every channel goes stale and due for a re-subscribe.
func (c *Client) down() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cur = nil
	c.connUp = make(chan struct{})
	for id, req := range c.reqs {
		req.lost = true
		req.complete()
		delete(c.reqs, id)
	}
	c.r.disconnected()
}

// serve runs a connection until it ends: it sends the re-subscribes that
// fall due and refreshes the token. It returns why the connection ended.
func (c *Client) serve(cn *conn) error {
	ctx, cancel := context.WithCancel(c.ctx)
	var wg sync.WaitGroup
	wg.Go(func() { c.refreshLoop(ctx, cn) })
	defer func() {
		cancel()
		wg.Wait()
	}()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		c.mu.Lock()
		groups, next := c.r.due(c.newID)
		for _, g := range groups {
			c.reqs[g.id] = &request{id: g.id, op: proto.OpSubscribe, channels: g.channels, opts: g.opts, done: make(chan struct{})}
		}
		c.mu.Unlock()
		for _, g := range groups {
			c.log.Debug("re-subscribing", "channels", g.channels, "since", g.since)
			if err := cn.send(subscribeCommand(g.id, g.channels, g.opts, g.since)); err != nil {
				break // the read loop ends too
			}
		}
		if next.IsZero() {
			timer.Stop()
		} else {
			timer.Reset(max(time.Until(next), time.Millisecond))
		}
		select {
		case <-cn.done:
			return cn.err
		case <-c.ctx.Done():
			_ = cn.ws.WriteClose(uint16(proto.CloseNormal), []byte("client closed"))
			<-cn.done
			return ErrClosed
		case <-c.kickC:
		case <-timer.C:
		}
	}
}

func subscribeCommand(id int64, channels []string, o subOptions, since map[string]uint64) command {
	cmd := command{Op: proto.OpSubscribe, ID: id, Channels: channels, ThrottleMS: o.throttleMS,
		Since: since, Depth: o.depth, Recent: o.recent, Bars: o.bars}
	if o.noSnapshot {
		f := false
		cmd.Snapshot = &f
	}
	return cmd
}

// newID returns the next command id. Guarded by mu.
func (c *Client) newID() int64 {
	c.nextID++
	return c.nextID
}

// handle routes one message of a connection (read loop).
func (c *Client) handle(cn *conn, m *message) {
	switch m.Type {
	case proto.TypeSnapshot, proto.TypeUpdate, proto.TypeGap, typeStatus:
		c.mu.Lock()
		c.r.handle(m)
		c.mu.Unlock()
	case proto.TypeSubscribed, proto.TypeUnsubscribed, proto.TypeError, proto.TypeAuthenticated, proto.TypePong:
		c.reply(m)
	case proto.TypeReconnect:
		cn.withinMS.Store(m.WithinMS)
		c.log.Info("the node asks to reconnect", "reason", m.Reason, "within_ms", m.WithinMS)
	}
}

// reply matches an answer to its command.
func (c *Client) reply(m *message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var req *request
	if m.ID != nil {
		req = c.reqs[*m.ID]
	}
	if req == nil {
		if m.Type == proto.TypeError {
			e := serverError(m)
			if e.Channel != "" {
				c.r.unsolicited(e)
			} else {
				c.log.Warn("error from the node", "err", e.Error())
			}
		}
		return
	}
	done := func() {
		delete(c.reqs, req.id)
		req.complete()
	}
	switch m.Type {
	case proto.TypeSubscribed:
		for _, name := range m.Channels {
			c.r.acked(req.id, name, req.opts, slices.Contains(m.Resumed, name))
		}
		req.accepted = m.Channels
		done()
	case proto.TypeUnsubscribed:
		req.accepted = m.Channels
		done()
	case proto.TypeAuthenticated:
		req.exp = m.Exp
		done()
	case proto.TypePong:
		req.ts = m.TS
		done()
	case proto.TypeError:
		e := serverError(m)
		req.errs = append(req.errs, e)
		if e.Channel == "" {
			// The whole command failed: every channel of it is refused.
			if req.op == proto.OpSubscribe {
				for _, name := range req.channels {
					ce := *e
					ce.Channel = name
					c.r.refused(req.id, req.user, &ce)
				}
			}
			done()
			return
		}
		if req.op == proto.OpSubscribe {
			c.r.refused(req.id, req.user, e)
		}
		if req.answered++; req.answered >= len(req.channels) {
			done() // every channel refused: no ack comes
		}
	}
}

// await sends cmd on the connection up (waiting for one) once register
// has made its request, and waits for the answer. A connection lost
// before the answer is retried on the next one when retry allows.
func (c *Client) await(ctx context.Context, retry bool, register func(cn *conn) (*request, command)) (*request, error) {
	for {
		cn, err := c.waitConn(ctx)
		if err != nil {
			return nil, err
		}
		c.mu.Lock()
		if c.cur != cn {
			c.mu.Unlock()
			continue
		}
		req, cmd := register(cn)
		c.reqs[req.id] = req
		c.mu.Unlock()
		if err := cn.send(cmd); err != nil {
			// The connection is failing; its end completes req as lost.
			c.log.Debug("send failed", "op", cmd.Op, "err", err.Error())
		}
		select {
		case <-req.done:
		case <-ctx.Done():
			c.mu.Lock()
			delete(c.reqs, req.id)
			c.mu.Unlock()
			return req, ctx.Err()
		}
		if c.ctx.Err() != nil {
			return req, ErrClosed
		}
		if req.lost && retry {
			continue
		}
		return req, nil
	}
}

// waitConn returns the connection up, waiting for one.
func (c *Client) waitConn(ctx context.Context) (*conn, error) {
	for {
		c.mu.Lock()
		cn, up := c.cur, c.connUp
		c.mu.Unlock()
		if cn != nil {
			return cn, nil
		}
		select {
		case <-up:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-c.ctx.Done():
			return nil, ErrClosed
		}
	}
}

// parseChannels checks and de-duplicates channel names.
func parseChannels(names []string) ([]string, []proto.Channel, error) {
	if len(names) == 0 {
		return nil, nil, fmt.Errorf("%w: no channels", ErrConfig)
	}
	out := make([]string, 0, len(names))
	chs := make([]proto.Channel, 0, len(names))
	for _, n := range names {
		ch, err := proto.ParseChannel(n)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %w", ErrBadChannel, err)
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
			chs = append(chs, ch)
		}
	}
	return out, chs, nil
}

// Subscribe subscribes to channels and waits for the node's answer. It
// returns the channels the node accepted, which the client keeps from then
// on across reconnects; and, when the node refused some (or the whole
// command), an error joining one *ServerError per refusal (errors.Is
// finds ErrForbidden, ErrBadChannel, ErrRateLimited,
// ErrTooManySubscriptions, ErrUnavailable with its RetryAfter, ...). A
// name that is not <kind>.<symbol> fails the call before anything is sent
// (ErrBadChannel).
//
// Subscribing to a channel already held restarts it with the new options:
// a fresh snapshot follows. While disconnected, Subscribe waits for the
// next connection; a connection lost before the answer is retried on the
// next one. If ctx ends first, the channels may still become subscribed
// when the answer comes; Unsubscribe them to be sure.
func (c *Client) Subscribe(ctx context.Context, channels []string, opts ...SubscribeOption) ([]string, error) {
	var o subOptions
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	names, chs, err := parseChannels(channels)
	if err != nil {
		return nil, err
	}
	req, err := c.await(ctx, true, func(*conn) (*request, command) {
		id := c.newID()
		for i, name := range names {
			c.r.add(name, chs[i], o, id)
		}
		return &request{id: id, op: proto.OpSubscribe, channels: names, user: true, opts: o, done: make(chan struct{})},
			subscribeCommand(id, names, o, nil)
	})
	if err != nil {
		if req != nil {
			c.abandon(req)
		}
		return nil, err
	}
	return req.accepted, errors.Join(req.errs...)
}

// abandon forgets the channels a Subscribe created and no longer waits
// for; channels it re-subscribed are resynced.
func (c *Client) abandon(req *request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, name := range req.channels {
		s := c.r.chans[name]
		if s == nil || s.awaitAck != req.id {
			continue
		}
		if s.fresh {
			c.r.remove(name)
			continue
		}
		s.awaitAck = 0
		c.r.resync(s)
	}
}

// Unsubscribe stops the channels: no event of theirs is delivered once it
// is called, and the client no longer keeps them. It tells the node when
// connected and waits for its answer (a malformed name fails before
// anything is sent).
func (c *Client) Unsubscribe(ctx context.Context, channels []string) error {
	names, _, err := parseChannels(channels)
	if err != nil {
		return err
	}
	c.mu.Lock()
	for _, name := range names {
		c.r.remove(name)
	}
	up := c.cur != nil
	c.mu.Unlock()
	if !up {
		return nil // the next connection will not re-subscribe them
	}
	req, err := c.await(ctx, false, func(*conn) (*request, command) {
		id := c.newID()
		return &request{id: id, op: proto.OpUnsubscribe, channels: names, user: true, done: make(chan struct{})},
			command{Op: proto.OpUnsubscribe, ID: id, Channels: names}
	})
	if err != nil {
		return err
	}
	return errors.Join(req.errs...)
}

// Ping sends a ping op and returns the round trip time to the node's pong.
func (c *Client) Ping(ctx context.Context) (time.Duration, error) {
	var start time.Time
	req, err := c.await(ctx, false, func(*conn) (*request, command) {
		id := c.newID()
		start = time.Now()
		return &request{id: id, op: proto.OpPing, user: true, done: make(chan struct{})}, command{Op: proto.OpPing, ID: id}
	})
	if err != nil {
		return 0, err
	}
	if req.lost {
		return 0, fmt.Errorf("client: ping: connection lost")
	}
	return time.Since(start), nil
}

// refreshLoop refreshes the token on cn before it expires: at 80 % of
// the time left, and at least a second before expiry where it can.
func (c *Client) refreshLoop(ctx context.Context, cn *conn) {
	exp := cn.info.TokenExpiry
	for !exp.IsZero() {
		left := exp.Sub(c.opts.Now())
		wait := max(0, left-max(left/5, min(time.Second, left/2)))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		next, err := c.refresh(ctx, cn)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			c.log.Warn("token refresh failed", "err", err.Error())
			c.sink.push(nil, Event{Type: EventError, Err: err}, nil)
			left = exp.Sub(c.opts.Now())
			if left <= 0 {
				return // the node closes with 4001; the next connection gets a token
			}
			t := time.NewTimer(max(100*time.Millisecond, min(time.Second, left/4)))
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		case !next.After(exp):
			// The source has nothing fresher: the node closes at expiry
			// (4001) and the next connection asks the source again.
			c.log.Info("token source gave no fresher token; reconnecting at expiry", "exp", exp)
			return
		default:
			exp = next
			c.mu.Lock()
			cn.info.TokenExpiry = exp
			c.mu.Unlock()
		}
	}
}

// refresh sends a fresh token with the auth op; it returns the new expiry.
func (c *Client) refresh(ctx context.Context, cn *conn) (time.Time, error) {
	tctx, cancel := context.WithTimeout(ctx, c.opts.HandshakeTimeout)
	defer cancel()
	token, err := c.opts.TokenSource(tctx)
	if err != nil {
		return time.Time{}, fmt.Errorf("client: token source: %w", err)
	}
	req, err := c.await(tctx, false, func(cur *conn) (*request, command) {
		id := c.newID()
		return &request{id: id, op: proto.OpAuth, user: true, done: make(chan struct{})}, command{Op: proto.OpAuth, ID: id, Token: token}
	})
	switch {
	case err != nil:
		return time.Time{}, err
	case req.lost:
		return time.Time{}, fmt.Errorf("client: refresh: connection lost")
	case len(req.errs) > 0:
		return time.Time{}, errors.Join(req.errs...)
	}
	return time.Unix(req.exp, 0), nil
}

// Book returns a copy of the channel's verified book and its seq; ok is
// false unless the channel is a book channel in StateLive.
func (c *Client) Book(channel string) (b *Book, seq uint64, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.r.chans[channel]
	if s == nil || s.book == nil || !s.bookOK || s.compute() != StateLive {
		return nil, 0, false
	}
	return s.book.Clone(), s.last, true
}

// Ticker returns the channel's latest ticker and its seq; ok is false
// unless the channel is a ticker channel in StateLive.
func (c *Client) Ticker(channel string) (t proto.Ticker, seq uint64, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.r.chans[channel]
	if s == nil || s.ticker == nil || s.compute() != StateLive {
		return proto.Ticker{}, 0, false
	}
	return *s.ticker, s.last, true
}

// Candles returns a copy of a candle channel's bars, oldest first (the
// last one possibly open), and the seq they are as of; ok is false unless
// the channel is live.
func (c *Client) Candles(channel string) (bars []proto.Candle, seq uint64, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.r.chans[channel]
	if s == nil || s.ch.Kind != proto.KindCandle || s.compute() != StateLive {
		return nil, 0, false
	}
	return slices.Clone(s.bars), s.last, true
}

// State returns the channel's state; ok is false for a channel the
// client does not hold.
func (c *Client) State(channel string) (st ChannelState, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.r.chans[channel]
	if s == nil {
		return 0, false
	}
	return s.compute(), true
}

// Channels returns every channel the client holds with its state.
func (c *Client) Channels() map[string]ChannelState {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]ChannelState, len(c.r.chans))
	for name, s := range c.r.chans {
		out[name] = s.compute()
	}
	return out
}

// Conn describes the connection up; ok is false between connections.
func (c *Client) Conn() (info ConnInfo, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == nil {
		return ConnInfo{}, false
	}
	return c.cur.info, true
}

// Stats returns the client's counters.
func (c *Client) Stats() Stats { return c.stats.snapshot() }

// nopSink discards events (a client without OnEvent).
type nopSink struct{}

func (nopSink) push(*chanState, Event, *bookData) {}
func (nopSink) drop(string)                       {}
