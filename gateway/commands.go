package gateway

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lxzan/gws"

	"github.com/tickgate/tickgate/auth"
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
func (events) OnOpen(socket *gws.Conn)                      { connOf(socket).start() }
func (events) OnPong(socket *gws.Conn, payload []byte)      { connOf(socket).pong(payload) }
func (events) OnClose(socket *gws.Conn, err error)          { connOf(socket).ended(err) }
func (events) OnPing(socket *gws.Conn, payload []byte)      { connOf(socket).ping(payload) }
func (events) OnMessage(socket *gws.Conn, msg *gws.Message) { connOf(socket).message(msg) }

func (c *conn) pong(payload []byte) {
	c.touch()
	c.prog.pong(payload)
}

func (c *conn) ping(payload []byte) {
	c.touch()
	if !c.limits.pings.Allow() {
		c.strike("ping flood")
		return
	}
	c.send(frameOf(gws.OpcodePong, payload))
}

// strike counts a rate-limited or bad command; a client that keeps at it
// is closed with 1008.
func (c *conn) strike(why string) {
	if !c.limits.strikes.Allow() {
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
	if !c.limits.commands.Allow() {
		c.replyError(cmd.ID, proto.CodeRateLimited, fmt.Sprintf("more than %g commands per second; this one was not run", c.srv.cfg.CommandRate), "")
		c.strike("rate limit abuse")
		return
	}
	switch cmd.Op {
	case proto.OpSubscribe:
		c.subscribe(&cmd)
	case proto.OpUnsubscribe:
		c.unsubscribe(&cmd)
	case proto.OpAuth:
		c.auth(&cmd)
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
	sub   *subscription
	since *uint64
}

func (c *conn) subscribe(cmd *proto.Command) {
	if len(cmd.Channels) == 0 {
		c.replyError(cmd.ID, proto.CodeBadRequest, "subscribe needs a non-empty channels list", "")
		return
	}
	if t := cmd.ThrottleMS; t != nil && (*t < 0 || *t > maxThrottleMS) {
		c.replyError(cmd.ID, proto.CodeBadRequest, fmt.Sprintf("throttle_ms must be within 0..%d", maxThrottleMS), "")
		return
	}
	opt := joinOptions{snapshot: cmd.Snapshot == nil || *cmd.Snapshot}
	if cmd.ThrottleMS != nil {
		opt.throttle = time.Duration(*cmd.ThrottleMS) * time.Millisecond
	}
	picks := c.validate(cmd)
	if len(picks) == 0 {
		return
	}

	ctx, cancel := context.WithTimeout(context.Background(), c.srv.cfg.SubscribeTimeout)
	defer cancel()
	ok := picks[:0]
	for _, p := range picks {
		if p.sub == nil {
			e, err := c.srv.hub.acquire(ctx, p.ch)
			if err != nil {
				c.srv.log.Warn("subscribe failed", c.logAttrs("channel", p.name, "err", err.Error())...)
				c.replyError(cmd.ID, proto.CodeBadRequest, "channel unavailable: the feed is not reachable, retry later", p.name)
				continue
			}
			p.sub = c.newSubscription(e)
			c.subs[p.ch] = p.sub
			c.srv.metrics.subscriptions.Inc()
		}
		ok = append(ok, p)
	}
	if len(ok) == 0 {
		return
	}

	ack := proto.Subscribed{Type: proto.TypeSubscribed, ID: cmd.ID, Channels: make([]string, 0, len(ok))}
	var lost []string
	for _, p := range ok {
		opt.since = p.since
		resumed, historyLost := p.sub.entry.join(c.srv.codecs, p.sub, opt)
		ack.Channels = append(ack.Channels, p.name)
		if resumed {
			ack.Resumed = append(ack.Resumed, p.name)
		}
		if historyLost {
			lost = append(lost, p.name)
		}
	}
	c.reply(ack)
	for _, name := range lost {
		c.replyError(cmd.ID, proto.CodeHistoryUnavailable, "history after the given seq is not available; live trades follow from prev 0", name)
	}
	for _, p := range ok {
		p.sub.ungate(c.srv.cfg.Now)
	}
}

// validate parses, authorizes and limits the channels of a subscribe,
// answering an error for each refused one.
func (c *conn) validate(cmd *proto.Command) []pick {
	picks := make([]pick, 0, len(cmd.Channels))
	fresh := 0
	c.eachChannel(cmd, func(ch proto.Channel, name string) {
		if !c.claims.Allows(name) {
			c.replyError(cmd.ID, proto.CodeForbidden, "the token does not allow this channel", name)
			return
		}
		existing := c.subs[ch]
		if existing == nil {
			if len(c.subs)+fresh >= c.srv.cfg.MaxSubscriptions {
				c.replyError(cmd.ID, proto.CodeTooManySubscriptions,
					fmt.Sprintf("at most %d subscriptions per connection", c.srv.cfg.MaxSubscriptions), name)
				return
			}
			fresh++
		}
		p := pick{ch: ch, name: name, sub: existing}
		if seq, ok := cmd.Since[name]; ok {
			p.since = &seq
		}
		picks = append(picks, p)
	})
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

func (c *conn) unsubscribe(cmd *proto.Command) {
	if len(cmd.Channels) == 0 {
		c.replyError(cmd.ID, proto.CodeBadRequest, "unsubscribe needs a non-empty channels list", "")
		return
	}
	done := make([]string, 0, len(cmd.Channels))
	c.eachChannel(cmd, func(ch proto.Channel, name string) {
		c.drop(ch)
		done = append(done, name)
	})
	if len(done) > 0 {
		c.reply(proto.Unsubscribed{Type: proto.TypeUnsubscribed, ID: cmd.ID, Channels: done})
	}
}

// drop ends the subscription to ch, if any.
func (c *conn) drop(ch proto.Channel) {
	s := c.subs[ch]
	if s == nil {
		return
	}
	s.entry.leave(s)
	c.srv.hub.release(s.entry)
	delete(c.subs, ch)
	c.srv.metrics.subscriptions.Dec()
}

// newSubscription makes c's subscription to e's channel, not yet joined.
func (c *conn) newSubscription(e *channel) *subscription {
	cfg := &c.srv.cfg
	return &subscription{
		c: c, entry: e, kind: e.ch.Kind, name: e.name, idx: -1,
		limit: tradeLimits{messages: cfg.TradeBufferMessages, bytes: cfg.TradeBufferBytes},
	}
}

// auth refreshes the token: same sub, new expiry and permissions.
// Subscriptions the new token no longer allows end with a forbidden error.
func (c *conn) auth(cmd *proto.Command) {
	if cmd.Token == "" {
		c.replyError(cmd.ID, proto.CodeInvalidToken, "auth needs a token", "")
		return
	}
	claims, err := c.srv.verifier.Verify(cmd.Token)
	if err != nil {
		c.replyError(cmd.ID, proto.CodeInvalidToken, tokenErrorText(err), "")
		return
	}
	if claims.Subject != c.subject {
		c.replyError(cmd.ID, proto.CodeInvalidToken, "the new token's sub differs from the connection's", "")
		return
	}
	c.claims = claims
	c.refreshExpiry(claims.ExpiresAt)
	c.reply(proto.Authenticated{Type: proto.TypeAuthenticated, ID: cmd.ID, Exp: claims.ExpiresAt.Unix()})
	for ch, s := range c.subs {
		if !claims.Allows(s.entry.name) {
			c.drop(ch)
			c.replyError(cmd.ID, proto.CodeForbidden, "the refreshed token no longer allows this channel; unsubscribed", s.entry.name)
		}
	}
}

// tokenErrorText says why a token failed, without any of the token.
func tokenErrorText(err error) string {
	switch {
	case errors.Is(err, auth.ErrTokenExpired):
		return "token expired"
	case errors.Is(err, auth.ErrMissingToken):
		return "missing token"
	}
	return "invalid token"
}

// clip bounds client text quoted back in errors.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
