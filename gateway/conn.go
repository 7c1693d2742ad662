package gateway

import (
	"crypto/tls"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lxzan/gws"

	"github.com/tickgate/tickgate/auth"
	"github.com/tickgate/tickgate/codec"
	"github.com/tickgate/tickgate/proto"
)

// conn is one client connection after the upgrade.
//
// Goroutines: gws's read loop (commands, ping/pong, close: it owns subs and
// claims), the writer (owns every socket write; it runs only while there
// is something to write, writerrun.go), the feed's dispatcher goroutines
// (fan-out: they only push to out), and the expiry timer.
type conn struct {
	srv *Server   // Static after construction.
	ws  *gws.Conn // Static after the upgrade, before the read loop starts.
	// sock is the TCP socket under ws (and TLS), whose writes an inline
	// writer round makes without waiting (inline.go); nil when the
	// listener's connections are not TCP. Static after the upgrade, before
	// the writer starts.
	sock *sockConn
	// tlsConn is the TLS connection under ws, when the listener is TLS.
	// The writer writes its frames to it, or to sock when there is no
	// TLS (netConn), not through ws.NetConn(): that is gws's Conn and the
	// echoReasonConn it holds, two objects a write would load, and cache
	// misses on a cold connection. echoReasonConn passes the writer's
	// frames (data, ping, heartbeat) through untouched; it is for the
	// close frames gws writes. Static after the upgrade, before the
	// writer starts.
	tlsConn  *tls.Conn
	codec    codec.Codec // Static after construction.
	codecIdx int         // Static after construction.
	session  string      // Static after construction.
	subject  string      // Static after construction: the token's sub.
	remote   string      // Static after construction.
	addr     netip.Addr  // Static after the handshake: the address admission counted.
	client   string      // Static after the handshake: remote as a listing shows it (clientAddr).
	since    time.Time   // Static after construction: when the handshake was accepted.

	// variant indexes the connection's frames (deflate.go): codecIdx, or
	// its deflated variant when the handshake accepted permessage-deflate.
	// Static after the handshake, which sets it before the welcome.
	variant int
	// out is next to variant: the fan-out reads both for every message it
	// delivers, from one cache line.
	out *outbox // Safe for concurrent use.

	// What the writer sent, for inspection (inspect.go): added once per
	// batch (messages) and once per socket write (bytes) by the writer.
	msgsSent  atomic.Uint64
	bytesSent atomic.Uint64
	// subList is the names of the subscriptions, sorted, for inspection:
	// replaced (never changed) when a command that changed subs releases
	// cmdMu (unlockCmd). Nil: none.
	subList atomic.Pointer[[]string]

	prog progress // Pings and pongs; see progress for ownership.

	lastSeen  atomic.Int64  // Written by the read loop: when the last frame arrived (Unix ns).
	lastWrite atomic.Int64  // Written by the writer: when data or a heartbeat last went out (Unix ns).
	chores    atomic.Uint32 // Set by the node's sweep, taken by the writer: choreHeartbeat, chorePing.
	gone      atomic.Bool   // Set by cleanup before it closes done: the writer's look at done, without a channel.
	deadline  writeDeadline // Owned by the writer: the socket's write deadline (see write).
	throttle  *time.Timer   // Owned by the writer: starts it when a throttled subscription falls due (armThrottle).
	done      chan struct{} // Closed by the read loop when the connection ends.

	limits commandLimits // Owned by the read loop; its limiters are safe for concurrent use.

	// Command state, changed by the read loop's commands and by the
	// completions of subscribes that waited for NATS (commands.go).
	cmdMu     sync.Mutex
	claims    *auth.Claims                        // Guarded by cmdMu.
	subs      subSet                              // Guarded by cmdMu.
	inflight  map[proto.Channel]*waitingSubscribe // Guarded by cmdMu: channels of subscribes waiting for NATS; made by the first.
	waiting   int32                               // Guarded by cmdMu: subscribes waiting for NATS (at most maxWaitingSubscribes).
	heldBack  int32                               // Guarded by cmdMu: commands waiting behind them (at most maxHeldBack).
	reserved  int                                 // Guarded by cmdMu: their new channels, counted against the limits.
	snapshots byteBudget                          // Guarded by cmdMu: snapshot and replay bytes asked for.
	closed    bool                                // Guarded by cmdMu: cleanup ran; waiting subscribes only undo.
	subsDirty bool                                // Guarded by cmdMu: subs changed since subList was published.

	drainOnce sync.Once   // drain runs once
	drainT    *time.Timer // Written once by drain: the close to come.

	expMu sync.Mutex
	exp   time.Time   // Guarded by expMu: when the current token expires.
	timer *time.Timer // Guarded by expMu: fires at exp.
}

func (s *Server) newConn(cd codec.Codec, claims *auth.Claims, remote string) *conn {
	ci := s.codecs.index(cd)
	c := &conn{
		srv:       s,
		codec:     cd,
		codecIdx:  ci,
		variant:   ci,
		session:   newSessionID(),
		subject:   claims.Subject,
		remote:    remote,
		since:     s.cfg.Now(),
		out:       newOutbox(s.cfg.SendQueueLimit, s.cfg.Now),
		done:      make(chan struct{}),
		claims:    claims,
		snapshots: newByteBudget(s.cfg.SnapshotRate, s.cfg.SnapshotBurst, s.cfg.Now()),
		exp:       claims.ExpiresAt,
	}
	c.out.wakes = s.hub.wakes
	// The sweep may see the connection before its writer starts: it was
	// seen, written to and pinged now, as far as timeouts go.
	now := c.since.UnixNano()
	c.lastSeen.Store(now)
	c.lastWrite.Store(now)
	c.prog.sentNs.Store(now)
	return c
}

// unlockCmd publishes the subscription list for inspection when a
// command changed it, then releases cmdMu. Every holder of cmdMu that may
// change subs releases it through here.
func (c *conn) unlockCmd() {
	if c.subsDirty {
		c.subsDirty = false
		names := make([]string, 0, c.subs.len())
		for _, s := range c.subs.all() {
			names = append(names, s.entry.name)
		}
		slices.Sort(names)
		c.subList.Store(&names)
	}
	c.cmdMu.Unlock()
}

// logAttrs returns the connection's log attributes followed by extra.
func (c *conn) logAttrs(extra ...any) []any {
	return append([]any{"session", c.session, "sub", c.subject, "node", c.srv.cfg.NodeID, "codec", c.codec.Name(), "remote", c.remote}, extra...)
}

// welcome queues the first message. It runs before the connection is
// tracked, so nothing (a drain's reconnect notice) can precede it.
func (c *conn) welcome() {
	c.reply(proto.Welcome{
		Type:        proto.TypeWelcome,
		V:           proto.Version,
		Session:     c.session,
		Node:        c.srv.cfg.NodeID,
		Codec:       c.codec.Name(),
		HeartbeatMS: c.srv.cfg.HeartbeatInterval.Milliseconds(),
		Exp:         c.exp.Unix(),
		Features:    c.srv.features(),
	})
}

// start runs once the socket is open: the writer's first run (the welcome
// is queued already; later runs start on demand, writerrun.go) and the
// expiry timer.
func (c *conn) start() {
	c.touch()
	c.startWriter()
	if c.srv.draining.Load() {
		// Upgraded while the node began to drain, after Drain took its list.
		c.srv.mu.Lock()
		within := c.srv.drainWithin
		c.srv.mu.Unlock()
		c.drain(within)
	}
	c.expMu.Lock()
	c.timer = time.AfterFunc(c.exp.Sub(c.srv.cfg.Now()), c.checkExpiry)
	c.expMu.Unlock()
	c.srv.log.Info("connection opened", c.logAttrs()...)
}

// drain sends the reconnect notice and closes the connection with 1001 at
// a random moment within within, once.
func (c *conn) drain(within time.Duration) {
	c.drainOnce.Do(func() {
		c.reply(proto.Reconnect{Type: proto.TypeReconnect, Reason: "draining", WithinMS: within.Milliseconds()})
		var delay time.Duration
		if within > 0 {
			delay = rand.N(within)
		}
		c.drainT = time.AfterFunc(delay, func() {
			c.close(proto.Disconnect{Code: proto.CloseGoingAway, Reason: "node draining"})
		})
	})
}

// checkExpiry closes the connection with 4001 unless the token was
// refreshed since the timer was set.
func (c *conn) checkExpiry() {
	c.expMu.Lock()
	remaining := c.exp.Sub(c.srv.cfg.Now())
	if remaining > 0 {
		c.timer.Reset(remaining)
		c.expMu.Unlock()
		return
	}
	c.expMu.Unlock()
	c.close(proto.Disconnect{Code: proto.CloseTokenExpired, Reason: "token expired"})
}

// refreshExpiry moves the expiry to exp.
func (c *conn) refreshExpiry(exp time.Time) {
	c.expMu.Lock()
	c.exp = exp
	if c.timer != nil {
		c.timer.Reset(exp.Sub(c.srv.cfg.Now()))
	}
	c.expMu.Unlock()
}

// touch records that a frame arrived from the client. The node's sweep
// closes a connection silent for IdleTimeout (conn.sweep); a socket read
// deadline would do it with gws's close reason, which quotes the socket
// error and with it the node's own address.
func (c *conn) touch() {
	c.lastSeen.Store(c.srv.cfg.Now().UnixNano())
}

// send queues a reply or control frame; too many pending evicts the
// connection.
func (c *conn) send(f []byte) {
	if c.out.push(f) == pushFull {
		c.evict(evictQueueOverflow)
	}
}

// reply encodes v with the connection's codec and queues it.
func (c *conn) reply(v any) {
	if f := c.srv.codecs.frame(c.variant, v); f != nil {
		c.send(f)
	}
}

// replyError answers a command with an error; the connection stays open.
func (c *conn) replyError(id *int64, code proto.ErrorCode, msg, channel string) {
	c.srv.metrics.commandError(code)
	c.reply(proto.Error{Type: proto.TypeError, ID: id, Code: code, Message: msg, Channel: channel})
}

// close queues the close frame after what is already queued.
func (c *conn) close(d proto.Disconnect) {
	c.out.close(d)
}

// evict closes a slow consumer with 4008, counted by reason and logged
// once. It never waits: what is pending is dropped, the writer sends the
// close frame as soon as it is free, and if the socket keeps it stuck the
// connection is cut closeWriteTimeout later.
func (c *conn) evict(reason string) {
	if !c.out.evict(proto.Disconnect{Code: proto.CloseSlowConsumer, Reason: "slow consumer: " + reason}) {
		return
	}
	c.srv.metrics.evictions.WithLabelValues(reason).Inc()
	c.srv.log.Warn("slow consumer evicted", c.logAttrs("reason", reason)...)
	c.cutAfter(closeWriteTimeout)
}

// cutAfter closes the socket after d unless the connection ended by then:
// a close frame that the socket cannot take in time is given up.
func (c *conn) cutAfter(d time.Duration) {
	time.AfterFunc(d, func() {
		select {
		case <-c.done:
		default:
			if c.ws != nil {
				_ = c.ws.NetConn().Close()
			}
		}
	})
}

// cleanup runs once on the read loop when the connection ends.
func (c *conn) cleanup() {
	c.gone.Store(true)
	close(c.done)
	c.out.wakeWriter()        // the writer (started if none runs) sees done and ends
	c.drainOnce.Do(func() {}) // no drain timer after this
	if c.drainT != nil {
		c.drainT.Stop()
	}
	c.expMu.Lock()
	if c.timer != nil {
		c.timer.Stop()
	}
	c.expMu.Unlock()
	c.cmdMu.Lock()
	c.closed = true
	for ch := range c.subs.all() {
		c.endSubscription(ch)
	}
	c.unlockCmd()
	c.srv.admit.leave(c.addr, c.subject)
	c.srv.untrack(c)
}
