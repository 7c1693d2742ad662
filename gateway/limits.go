package gateway

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// admission counts open connections per client address and per token
// subject, and paces new handshakes node-wide, so that one client, one
// credential or a reconnect storm cannot take the node.
type admission struct {
	perIP   int           // Static after construction: at most this many per address (0: no limit).
	perSub  int           // Static after construction: at most this many per sub (0: no limit).
	subsCap int           // Static after construction: subscriptions per sub, all its connections (0: no limit).
	rate    *rate.Limiter // Safe for concurrent use: handshakes per second, node-wide.
	rest    *rate.Limiter // Safe for concurrent use: REST snapshots per second, node-wide, apart from the handshakes'.
	proxies []netip.Prefix

	mu    sync.Mutex
	byIP  map[netip.Addr]int // Guarded by mu.
	bySub map[string]int     // Guarded by mu.
	subs  map[string]int     // Guarded by mu: subscriptions (and reserved slots) per sub.
}

func newAdmission(cfg *Config) *admission {
	return &admission{
		perIP:   max(cfg.MaxConnsPerIP, 0),
		perSub:  max(cfg.MaxConnsPerSubject, 0),
		subsCap: max(cfg.MaxSubscriptionsPerSubject, 0),
		rate:    rate.NewLimiter(rate.Limit(cfg.HandshakeRate), cfg.HandshakeBurst),
		rest:    rate.NewLimiter(rate.Limit(cfg.HandshakeRate), cfg.HandshakeBurst),
		proxies: cfg.TrustedProxies,
		byIP:    make(map[netip.Addr]int),
		bySub:   make(map[string]int),
		subs:    make(map[string]int),
	}
}

// reserve counts one subscription of sub, or reports false when sub holds
// as many as it may on this node, over all its connections.
func (a *admission) reserve(sub string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.subsCap > 0 && a.subs[sub] >= a.subsCap {
		return false
	}
	a.subs[sub]++
	return true
}

// unreserve undoes n reserves of sub.
func (a *admission) unreserve(sub string, n int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.subs[sub] -= n; a.subs[sub] <= 0 {
		delete(a.subs, sub)
	}
}

// pace reports whether a handshake may proceed now, or how long to wait.
func (a *admission) pace() (ok bool, retryAfter time.Duration) { return paceBy(a.rate) }

// paceREST is pace for REST snapshots, at the same rate and burst but
// from a budget of their own: a client polling snapshots, however hard,
// never keeps another from connecting.
func (a *admission) paceREST() (ok bool, retryAfter time.Duration) { return paceBy(a.rest) }

func paceBy(l *rate.Limiter) (ok bool, retryAfter time.Duration) {
	r := l.Reserve()
	if d := r.Delay(); d > 0 {
		r.Cancel()
		return false, d
	}
	return true, 0
}

// admit counts a connection of addr and sub, or reports which limit it
// would exceed ("" when admitted).
func (a *admission) admit(addr netip.Addr, sub string) (refused string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.perIP > 0 && a.byIP[addr] >= a.perIP {
		return "connections from this address"
	}
	if a.perSub > 0 && a.bySub[sub] >= a.perSub {
		return "connections for this subscriber"
	}
	a.byIP[addr]++
	a.bySub[sub]++
	return ""
}

// leave undoes one admit.
func (a *admission) leave(addr netip.Addr, sub string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.byIP[addr]--; a.byIP[addr] <= 0 {
		delete(a.byIP, addr)
	}
	if a.bySub[sub]--; a.bySub[sub] <= 0 {
		delete(a.bySub, sub)
	}
}

// clientAddr is the address a connection is counted under: the peer, or,
// when the peer is a trusted proxy, the nearest untrusted address in
// X-Forwarded-For.
func (a *admission) clientAddr(r *http.Request) netip.Addr {
	peer := parseAddr(r.RemoteAddr)
	if !a.trusted(peer) {
		return peer
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop := parseAddr(strings.TrimSpace(hops[i]))
		if !hop.IsValid() {
			break
		}
		if !a.trusted(hop) {
			return hop
		}
	}
	return peer
}

func (a *admission) trusted(addr netip.Addr) bool {
	for _, p := range a.proxies {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// parseAddr reads "host:port" or a bare address; invalid gives the zero
// Addr (one shared bucket).
func parseAddr(s string) netip.Addr {
	if host, _, err := net.SplitHostPort(s); err == nil {
		s = host
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

// byteBudget paces the snapshot and replay bytes one connection asks for:
// a token bucket of rate bytes per second up to burst, charged after the
// fact with what was actually queued, so it may go into debt; while it is
// in debt, subscribes that want a snapshot or a replay are refused. A
// re-subscribe loop on a big book thus costs the node at most rate bytes
// per second per connection, then strikes it out (1008). Not safe for
// concurrent use (the connection's cmdMu guards it).
type byteBudget struct {
	rate, burst float64
	tokens      float64
	at          time.Time
}

func newByteBudget(rate, burst int, now time.Time) byteBudget {
	return byteBudget{rate: float64(rate), burst: float64(burst), tokens: float64(burst), at: now}
}

// allow refills the bucket up to now and reports whether it is out of
// debt.
func (b *byteBudget) allow(now time.Time) bool {
	if d := now.Sub(b.at); d > 0 {
		b.tokens = min(b.burst, b.tokens+d.Seconds()*b.rate)
		b.at = now
	}
	return b.tokens > 0
}

// charge takes n bytes from the bucket.
func (b *byteBudget) charge(n int) { b.tokens -= float64(n) }

// commandLimits pace one connection's commands and pings. Excess gets a
// rate_limited error (or, for pings, no pong); a client that keeps at it,
// or keeps sending bad commands, is closed with 1008. Owned by the read
// loop.
//
// Each limiter is made on its first use: a bucket starts full and a full
// bucket stays full, so one made when first asked says what one made with
// the connection would have said. Most connections never ping or strike,
// and an idle one keeps 80 bytes per limiter it never used otherwise.
type commandLimits struct {
	commands *rate.Limiter // commands per second; nil until the first command
	pings    *rate.Limiter // WebSocket pings per second; nil until the first ping
	strikes  *rate.Limiter // rate-limit hits and bad commands tolerated; nil until the first
}

// command reports whether one more command may run now.
func (l *commandLimits) command(cfg *Config) bool {
	if l.commands == nil {
		l.commands = rate.NewLimiter(rate.Limit(cfg.CommandRate), cfg.CommandBurst)
	}
	return l.commands.Allow()
}

// ping reports whether one more WebSocket ping may be answered now.
func (l *commandLimits) ping(cfg *Config) bool {
	if l.pings == nil {
		l.pings = rate.NewLimiter(rate.Limit(cfg.CommandRate), cfg.CommandBurst)
	}
	return l.pings.Allow()
}

// strike reports whether one more strike is tolerated now.
func (l *commandLimits) strike(cfg *Config) bool {
	if l.strikes == nil {
		// a strike refills every 10 s; MaxStrikes in a row close the connection
		l.strikes = rate.NewLimiter(rate.Every(10*time.Second), cfg.MaxStrikes)
	}
	return l.strikes.Allow()
}
