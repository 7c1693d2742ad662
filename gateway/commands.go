package gateway

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/lxzan/gws"

	"github.com/tickgate/tickgate/feed"
	"github.com/tickgate/tickgate/proto"
)

// maxThrottleMS bounds throttle_ms.
const maxThrottleMS = 60_000

// events adapts gws's callbacks to the connection. gws runs them all on
// the connection's read loop (ParallelEnabled is off), one at a time.
type events struct{}

// sessionSlot is the gws session storage of a connection: it carries our
// conn from the handshake to the callbacks without a map lookup.
type sessionSlot struct{ c *conn }

func (s *sessionSlot) Len() int                             { return 0 }
func (s *sessionSlot) Load(string) (any, bool)              { return nil, false }
func (s *sessionSlot) Delete(string)                        {}
func (s *sessionSlot) Store(string, any)                    {}
func (s *sessionSlot) Range(func(key string, v any) bool)   {}
func connOf(socket *gws.Conn) *conn                         { return socket.Session().(*sessionSlot).c }
func (events) OnClose(socket *gws.Conn, err error)          { connOf(socket).ended(err) }
func (events) OnPong(socket *gws.Conn, payload []byte)      { connOf(socket).frameRead().pong(payload) }
func (events) OnPing(socket *gws.Conn, payload []byte)      { connOf(socket).frameRead().ping(payload) }
func (events) OnMessage(socket *gws.Conn, msg *gws.Message) { connOf(socket).frameRead().message(msg) }

// OnOpen starts the connection. gws calls it each time its read loop
// starts, and a parked connection's loop starts again (park.go).
func (events) OnOpen(socket *gws.Conn) {
	c := connOf(socket)
	if r := c.parking(); r == nil || r.open() {
		c.start()
	}
}

// parking is the connection's parkingReader, or nil when its read loop
// never parks.
func (c *conn) parking() *parkingReader {
	if c.sock == nil || c.sock.rd == nil || c.sock.rd.sock == nil {
		return nil
	}
	return c.sock.rd
}

// frameRead tells the parkingReader that gws has handled a whole frame
// (park.go), and returns c.
func (c *conn) frameRead() *conn {
	if r := c.parking(); r != nil {
		r.frameRead()
	}
	return c
}

func (c *conn) pong(payload []byte) {
	c.touch()
	c.prog.pong(payload, c.srv.cfg.Now().UnixNano())
}

func (c *conn) ping(payload []byte) {
	c.touch()
	if !c.limits.ping(&c.srv.cfg) {
		c.strike("ping flood")
		return
	}
	c.send(frameOf(gws.OpcodePong, payload))
}

// strike counts a rate-limited or bad command; a client that keeps at it
// is closed with 1008.
func (c *conn) strike(why string) {
	if !c.limits.strike(&c.srv.cfg) {
		if c.out.close(proto.Disconnect{Code: proto.ClosePolicy, Reason: "policy: " + why}) {
			c.srv.log.Warn("connection closed for policy", c.logAttrs("reason", why)...)
		}
	}
}

func (c *conn) ended(err error) {
	defer c.srv.recoverPanic("close", c)
	c.cleanup()
	var ce *gws.CloseError
	if errors.As(err, &ce) {
		c.srv.log.Info("connection ended", c.logAttrs("code", int(ce.Code), "reason", string(ce.Reason))...)
	} else if err != nil {
		c.srv.log.Info("connection ended", c.logAttrs("err", err.Error())...)
	}
}

func (c *conn) message(msg *gws.Message) {
	defer msg.Close()
	defer c.srv.recoverPanic("command", c)
	c.touch()
	var cmd proto.Command
	if err := c.codec.DecodeCommand(msg.Bytes(), &cmd); err != nil {
		// cmd.ID survives a wrongly typed field, so the reply names the
		// command it answers.
		c.replyError(cmd.ID, proto.CodeBadRequest, "malformed message: expected one "+c.codec.Name()+" map with an op and fields of their types", "")
		c.strike("too many bad commands")
		return
	}
	if !c.limits.command(&c.srv.cfg) {
		c.replyError(cmd.ID, proto.CodeRateLimited, fmt.Sprintf("more than %g commands per second; this one was not run", c.srv.cfg.CommandRate), "")
		c.strike("rate limit abuse")
		return
	}
	c.cmdMu.Lock()
	defer c.unlockCmd()
	c.run(&cmd)
}

// run executes one command. Called with cmdMu held, from the read loop or,
// for a command that waited behind a subscribe, from that subscribe's
// completion.
func (c *conn) run(cmd *proto.Command) {
	switch cmd.Op {
	case proto.OpSubscribe:
		c.subscribe(cmd)
	case proto.OpUnsubscribe:
		c.unsubscribe(cmd)
	case proto.OpAuth:
		c.auth(cmd)
	case proto.OpPing:
		c.reply(proto.Pong{Type: proto.TypePong, ID: cmd.ID, TS: c.srv.cfg.Now().UnixNano()})
	case "":
		c.replyError(cmd.ID, proto.CodeBadRequest, "missing op", "")
		c.strike("too many bad commands")
	default:
		c.replyError(cmd.ID, proto.CodeUnknownOp, fmt.Sprintf("unknown op %q", clip(cmd.Op, 32)), "")
		c.strike("too many bad commands")
	}
}

// pick is one channel of a subscribe that passed validation.
type pick struct {
	ch    proto.Channel
	name  string
	sub   *subscription // a re-subscribe: the subscription it restarts
	since *uint64
	// fetch: a resume the node's memory cannot serve, to be read from the
	// history stream while the subscribe waits; fetched: what was read.
	fetch   bool
	fetched *fetched
	busy    error // the history read failed on the way (fetchHistory): retry
	// fetchRecent: recent trades the node's memory is short of, to be read
	// from the history stream while the subscribe waits (recent, up to
	// that many); older: what was read.
	recent int
	older  []*feed.Message
	// A new channel: its hub entry and NATS hold, and the per-subject
	// subscription slot reserved for it (admission).
	entry *hubEntry
	hold  *feed.Pending
}

// waitingSubscribe is a subscribe some of whose channels wait for NATS to
// confirm them. The connection's other commands go on meanwhile; those
// that name one of its channels run after it (after).
type waitingSubscribe struct {
	cmd   *proto.Command
	opt   joinOptions
	picks []pick
	fresh int              // picks that are new channels
	after []*proto.Command // Guarded by cmdMu: commands held back behind this one
}

// Bounds of what waits for NATS, per connection: subscribes waiting (and
// so goroutines), and commands held back behind them.
const (
	maxWaitingSubscribes = 32
	maxHeldBack          = 64
)

// subscribe answers a subscribe command. It never waits for NATS: a
// channel this node already receives is joined at once; a new one is
// refused at once with unavailable while NATS is down, and otherwise the
// subscribe completes (ack, snapshots) once NATS confirmed its new
// channels, on another goroutine, while the read loop goes on with the
// connection's pings, pongs and other commands. Called with cmdMu held.
func (c *conn) subscribe(cmd *proto.Command) {
	if len(cmd.Channels) == 0 {
		c.replyError(cmd.ID, proto.CodeBadRequest, "subscribe needs a non-empty channels list", "")
		return
	}
	if t := cmd.ThrottleMS; t != nil && (*t < 0 || *t > maxThrottleMS) {
		c.replyError(cmd.ID, proto.CodeBadRequest, fmt.Sprintf("throttle_ms must be within 0..%d", maxThrottleMS), "")
		return
	}
	views, bad := viewOptions(cmd)
	if bad != "" {
		c.replyError(cmd.ID, proto.CodeBadRequest, bad, "")
		return
	}
	if c.holdBack(cmd) {
		return
	}
	opt := joinOptions{snapshot: cmd.Snapshot == nil || *cmd.Snapshot, views: views}
	if cmd.ThrottleMS != nil {
		opt.throttle = time.Duration(*cmd.ThrottleMS) * time.Millisecond
	}
	picks := c.validate(cmd, opt)
	if len(picks) == 0 {
		return
	}
	ok := picks[:0]
	fresh, waits := 0, false
	for _, p := range picks {
		if p.sub == nil {
			e, hold, err := c.srv.hub.acquire(p.ch)
			if err != nil {
				c.srv.admit.unreserve(c.subject, 1)
				c.unavailable(cmd.ID, p.name, err)
				continue
			}
			select {
			case <-hold.Done():
				if err := hold.Err(); err != nil { // failed already: the node does not receive it
					c.srv.hub.abandon(e, hold)
					c.srv.admit.unreserve(c.subject, 1)
					c.unavailable(cmd.ID, p.name, err)
					continue
				}
			default:
				waits = true
			}
			p.entry, p.hold = e, hold
			fresh++
		}
		if p.fetch = c.needsHistory(p); p.fetch {
			waits = true
		}
		if view := opt.views.For(p.ch.Kind.Spec()); c.needsRecent(p, view) {
			p.recent, waits = view.Recent, true
		}
		ok = append(ok, p)
	}
	if !waits {
		c.finishSubscribe(cmd.ID, opt, ok)
		return
	}
	if c.waiting >= maxWaitingSubscribes {
		c.giveBack(ok)
		c.replyError(cmd.ID, proto.CodeRateLimited, fmt.Sprintf("%d subscribes are waiting for the feed already; this one was not run", c.waiting), "")
		c.strike("rate limit abuse")
		return
	}
	w := &waitingSubscribe{cmd: cmd, opt: opt, picks: ok, fresh: fresh}
	if c.inflight == nil {
		c.inflight = make(map[proto.Channel]*waitingSubscribe, len(ok))
	}
	for _, p := range ok {
		c.inflight[p.ch] = w
	}
	c.waiting++
	c.reserved += fresh
	go c.await(w)
}

// viewOptions reads the subscribe options of contract 1.1 (depth, recent,
// bars), or says why they are not acceptable (bad_request). A value equal
// to the default is the default, so that its subscribers share one view.
// Each applies to the channels of the kinds that take it
// (feed.SnapshotOptions.For) and is ignored on the others.
func viewOptions(cmd *proto.Command) (feed.SnapshotOptions, string) {
	var v feed.SnapshotOptions
	if r := cmd.Recent; r != nil {
		if *r < 0 || *r > proto.MaxRecent {
			return v, fmt.Sprintf("recent must be within 0..%d", proto.MaxRecent)
		}
		v.Recent = int(*r)
	}
	if d := cmd.Depth; d != nil {
		if !proto.ValidDepth(*d) {
			return v, "depth must be one of " + strings.Trim(strings.Join(strings.Fields(fmt.Sprint(proto.Depths())), ", "), "[]")
		}
		v.Depth = int(*d)
	}
	if b := cmd.Bars; b != nil {
		if *b < 1 || *b > proto.MaxBars {
			return v, fmt.Sprintf("bars must be within 1..%d", proto.MaxBars)
		}
		if *b != proto.DefaultBars {
			v.Bars = int(*b)
		}
	}
	return v, ""
}

// holdBack queues cmd behind a waiting subscribe that names one of its
// channels, so that the commands on one channel take effect, and are
// answered, in order. It reports whether it did. Called with cmdMu held.
func (c *conn) holdBack(cmd *proto.Command) bool {
	if len(c.inflight) == 0 {
		return false
	}
	for _, name := range cmd.Channels {
		ch, err := proto.ParseChannel(name)
		if err != nil {
			continue
		}
		if w := c.inflight[ch]; w != nil {
			if c.heldBack >= maxHeldBack {
				c.replyError(cmd.ID, proto.CodeRateLimited, fmt.Sprintf("%d commands wait behind subscribes waiting for the feed; this one was not run", c.heldBack), "")
				c.strike("rate limit abuse")
				return true
			}
			w.after = append(w.after, cmd)
			c.heldBack++
			return true
		}
	}
	return false
}

// giveBack undoes what a subscribe took for its new channels: the hub
// entry, the NATS hold, the per-subject slot. Called with cmdMu held.
func (c *conn) giveBack(picks []pick) {
	for _, p := range picks {
		if p.hold != nil {
			c.srv.hub.abandon(p.entry, p.hold)
			c.srv.admit.unreserve(c.subject, 1)
		}
	}
}

// await waits, on its own goroutine, until NATS confirmed or refused every
// new channel of w (at most SubscribeTimeout), then completes it.
func (c *conn) await(w *waitingSubscribe) {
	defer c.srv.recoverPanic("subscribe", c)
	timer := time.NewTimer(c.srv.cfg.SubscribeTimeout)
	defer timer.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), c.srv.cfg.SubscribeTimeout)
	defer cancel()
wait:
	for _, p := range w.picks {
		if p.hold == nil {
			continue
		}
		select {
		case <-p.hold.Done():
		case <-timer.C:
			break wait
		case <-c.done:
			break wait
		}
	}
	for i := range w.picks {
		if p := &w.picks[i]; p.fetch && (p.hold == nil || p.hold.Err() == nil) {
			p.fetched, p.busy = c.fetchHistory(ctx, p.ch, *p.since)
		}
		if p := &w.picks[i]; p.recent > 0 && (p.hold == nil || p.hold.Err() == nil) {
			p.older = c.srv.hub.fetchRecent(ctx, p.ch, p.recent)
		}
	}
	c.cmdMu.Lock()
	defer c.unlockCmd()
	for _, p := range w.picks {
		if c.inflight[p.ch] == w {
			delete(c.inflight, p.ch)
		}
	}
	c.waiting--
	c.reserved -= w.fresh
	c.heldBack -= int32(len(w.after))
	if c.closed {
		c.giveBack(w.picks)
		return
	}
	ok := w.picks[:0]
	for _, p := range w.picks {
		if p.hold != nil { // a new subscription: every one holds its NATS interest
			err := p.hold.Err() // failed, or not confirmed in time
			if err == nil && p.busy != nil {
				// The history read failed on the way (it timed out, in a
				// reconnect storm): the client should try the resume
				// again rather than be told its trades are gone.
				err = p.busy
			}
			if err != nil {
				c.srv.hub.abandon(p.entry, p.hold)
				c.srv.admit.unreserve(c.subject, 1)
				c.unavailable(w.cmd.ID, p.name, err)
				continue
			}
		}
		ok = append(ok, p)
	}
	c.finishSubscribe(w.cmd.ID, w.opt, ok)
	for _, cmd := range w.after {
		c.run(cmd)
	}
}

// unavailable answers a channel that NATS could not give the node now.
func (c *conn) unavailable(id *int64, name string, err error) {
	if !errors.Is(err, feed.ErrUnavailable) {
		c.srv.log.Warn("subscribe failed", c.logAttrs("channel", name, "err", err.Error())...)
	}
	c.srv.metrics.commandError(proto.CodeUnavailable)
	retry := c.srv.cfg.SubscribeRetry
	retry += time.Duration(rand.Int64N(int64(retry))) // spread the retries of a node's clients
	c.reply(proto.Error{Type: proto.TypeError, ID: id, Code: proto.CodeUnavailable,
		Message: "the feed is not reachable from this node now; retry later", Channel: name, RetryMS: retry.Milliseconds()})
}

// finishSubscribe joins the picks (new channels confirmed by NATS, and
// re-subscribes), queues their heads (snapshots, replays), the ack, and
// lets their data flow. Called with cmdMu held.
func (c *conn) finishSubscribe(id *int64, opt joinOptions, picks []pick) {
	ok := picks[:0]
	for _, p := range picks {
		switch {
		case !c.claims.Allows(p.name):
			// A token refreshed while the subscribe waited for NATS.
			if p.sub == nil {
				c.giveBack([]pick{p})
			}
			c.replyError(id, proto.CodeForbidden, "the token does not allow this channel", p.name)
			continue
		case p.sub == nil:
			p.sub = c.newSubscription(p.entry, p.hold)
			c.subs.put(p.sub)
			c.subsDirty = true
			c.srv.metrics.subscriptions.Inc()
		case c.subs.get(p.ch) != p.sub:
			continue // dropped by a token refresh meanwhile, which answered it
		}
		ok = append(ok, p)
	}
	if len(ok) == 0 {
		return
	}
	ack := proto.Subscribed{Type: proto.TypeSubscribed, ID: id, Channels: make([]string, 0, len(ok))}
	var lost, behind []string
	joinedOK := ok[:0]
	for _, p := range ok {
		opt.since, opt.fetched, opt.older = p.since, p.fetched, p.older
		opt.view = opt.views.For(p.sub.entry.spec)
		j := p.sub.entry.join(c.srv.hub, p.sub, opt)
		if j.streamBehind {
			// Nothing was sent on it yet: end it, and let the client try
			// the resume again.
			c.endSubscription(p.ch)
			behind = append(behind, p.name)
			continue
		}
		joinedOK = append(joinedOK, p)
		c.snapshots.charge(p.sub.fillHead(c.srv.codecs, j.plan))
		ack.Channels = append(ack.Channels, p.name)
		if j.resumed {
			ack.Resumed = append(ack.Resumed, p.name)
		}
		if j.historyLost {
			lost = append(lost, p.name)
		}
	}
	for _, name := range behind {
		c.unavailable(id, name, errStreamBehind)
	}
	if len(joinedOK) == 0 {
		return
	}
	c.reply(ack)
	for _, name := range lost {
		c.replyError(id, proto.CodeHistoryUnavailable, "history after the given seq is not available; live trades follow from prev 0", name)
	}
	for _, p := range joinedOK {
		p.sub.ungate(c.srv.cfg.Now)
	}
}

// validate parses, authorizes and limits the channels of a subscribe,
// answering an error for each refused one. Each new channel it passes has
// a per-subject slot reserved (admission). Called with cmdMu held.
func (c *conn) validate(cmd *proto.Command, opt joinOptions) []pick {
	picks := make([]pick, 0, len(cmd.Channels))
	fresh := 0
	budget, limited := c.snapshots.allow(c.srv.cfg.Now()), false
	c.eachChannel(cmd, func(ch proto.Channel, name string) {
		if !c.claims.Allows(name) {
			c.replyError(cmd.ID, proto.CodeForbidden, "the token does not allow this channel", name)
			return
		}
		p := pick{ch: ch, name: name, sub: c.subs.get(ch)}
		if seq, ok := cmd.Since[name]; ok {
			p.since = &seq
		}
		if !budget && (p.since != nil || wantsSnapshot(ch.Kind.Spec(), opt.snapshot, opt.views.For(ch.Kind.Spec()))) {
			c.replyError(cmd.ID, proto.CodeRateLimited,
				fmt.Sprintf("more than %d snapshot bytes per second asked for; subscribe again later", c.srv.cfg.SnapshotRate), name)
			limited = true
			return
		}
		if p.sub == nil {
			if c.subs.len()+c.reserved+fresh >= c.srv.cfg.MaxSubscriptions {
				c.replyError(cmd.ID, proto.CodeTooManySubscriptions,
					fmt.Sprintf("at most %d subscriptions per connection", c.srv.cfg.MaxSubscriptions), name)
				return
			}
			if !c.srv.admit.reserve(c.subject) {
				c.replyError(cmd.ID, proto.CodeTooManySubscriptions,
					fmt.Sprintf("at most %d subscriptions per subscriber (token sub) on this node", c.srv.cfg.MaxSubscriptionsPerSubject), name)
				return
			}
			fresh++
		}
		picks = append(picks, p)
	})
	if limited {
		c.strike("snapshot rate abuse") // once per command, however many channels it named
	}
	return picks
}

// eachChannel calls fn once per distinct valid channel the command names,
// in order, answering bad_channel for each invalid name.
func (c *conn) eachChannel(cmd *proto.Command, fn func(ch proto.Channel, name string)) {
	seen := make(map[proto.Channel]bool, len(cmd.Channels))
	for _, name := range cmd.Channels {
		ch, err := proto.ParseChannel(name)
		if err != nil {
			c.replyError(cmd.ID, proto.CodeBadChannel, err.Error(), clip(name, 64))
			continue
		}
		if !seen[ch] {
			seen[ch] = true
			fn(ch, name)
		}
	}
}

// unsubscribe answers an unsubscribe command. Called with cmdMu held.
func (c *conn) unsubscribe(cmd *proto.Command) {
	if len(cmd.Channels) == 0 {
		c.replyError(cmd.ID, proto.CodeBadRequest, "unsubscribe needs a non-empty channels list", "")
		return
	}
	if c.holdBack(cmd) {
		return
	}
	done := make([]string, 0, len(cmd.Channels))
	c.eachChannel(cmd, func(ch proto.Channel, name string) {
		c.endSubscription(ch)
		done = append(done, name)
	})
	if len(done) > 0 {
		c.reply(proto.Unsubscribed{Type: proto.TypeUnsubscribed, ID: cmd.ID, Channels: done})
	}
}

// endSubscription ends the subscription to ch, if any. Called with cmdMu held.
func (c *conn) endSubscription(ch proto.Channel) {
	s := c.subs.get(ch)
	if s == nil {
		return
	}
	s.entry.leave(s)
	c.srv.hub.abandon(s.entry, s.hold)
	c.subs.remove(ch)
	c.subsDirty = true
	c.srv.admit.unreserve(c.subject, 1)
	c.srv.metrics.subscriptions.Dec()
}

// newSubscription makes c's subscription to e's channel, holding its NATS
// interest through hold, not yet joined.
func (c *conn) newSubscription(e *hubEntry, hold *feed.Pending) *subscription {
	return &subscription{c: c, entry: e, hold: hold, idx: -1}
}

// auth refreshes the token: same sub, new expiry and permissions.
// Subscriptions the new token no longer allows end with a forbidden error;
// those of a subscribe still waiting for NATS are checked when it
// completes. Called with cmdMu held.
func (c *conn) auth(cmd *proto.Command) {
	claims, aerr := c.srv.refresh(cmd.Token, c.subject, c.srv.cfg.Now())
	if aerr != nil {
		c.replyError(cmd.ID, proto.CodeInvalidToken, aerr.Text, "")
		return
	}
	c.claims = claims
	c.refreshExpiry(claims.ExpiresAt)
	c.reply(proto.Authenticated{Type: proto.TypeAuthenticated, ID: cmd.ID, Exp: claims.ExpiresAt.Unix()})
	for ch, s := range c.subs.all() {
		if !claims.Allows(s.entry.name) {
			c.endSubscription(ch)
			c.replyError(cmd.ID, proto.CodeForbidden, "the refreshed token no longer allows this channel; unsubscribed", s.entry.name)
		}
	}
}

// clip bounds client text quoted back in errors.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
