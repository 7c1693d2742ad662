package gateway

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/tickgate/tickgate/feed"
	"github.com/tickgate/tickgate/proto"
)

// Revocation (docs/operations.md, "Revocation"): an operator ends a subscriber's access
// now, on every node, instead of waiting for its tokens' exp. A node that
// learns of a revocation (from its admin API, from the NATS subject, or
// from the bucket when it starts or gets NATS back) refuses from then on
// the sub's tokens issued before the cut-off, at the handshake (401
// token_revoked) and in an auth refresh (invalid_token), and closes the
// sub's connections whose current token is one of them with 4003 revoked,
// dropping what was pending for them. The node keeps it until every token
// it refuses has expired: the TTL (the longest token lifetime) after the
// later of its time and its cut-off.

// RevocationBus carries revocations between the nodes of a deployment
// (feed.Control in production).
type RevocationBus interface {
	// Publish sends r to every node that is up.
	Publish(ctx context.Context, r feed.Revocation) error
	// Store keeps r for nodes that start later (feed.ErrNoStore when it
	// cannot).
	Store(ctx context.Context, r feed.Revocation) error
	// Subscribe calls fn with every revocation published, until the
	// returned function is called.
	Subscribe(fn func(feed.Revocation)) (func(), error)
	// Stored returns every revocation kept.
	Stored(ctx context.Context) ([]feed.Revocation, error)
}

// Where a node learned of a revocation: label values of
// tickgate_revocations_received_total.
const (
	revokedByAPI   = "api"   // this node's admin API
	revokedByNATS  = "nats"  // the revocation subject
	revokedByStore = "store" // the bucket, read at start or after NATS came back
)

// ErrRevocation reports a revocation request that cannot be applied.
var ErrRevocation = errors.New("gateway: bad revocation")

// maxCutoffAhead bounds how far in the future an issued_before may lie:
// further is a mistake (milliseconds given for seconds), not a cut-off.
const maxCutoffAhead = time.Minute

// revoked is one sub's revocation in force on the node.
type revoked struct {
	rec    feed.Revocation // the cut-off and time, as published
	cutoff time.Time       // rec.IssuedBefore
	until  time.Time       // when every token it refuses has expired
}

// revocations is the node's set of revocations in force, by sub. Safe
// for concurrent use; the handshake reads it on every request.
type revocations struct {
	ttl time.Duration // Static after construction.

	mu sync.RWMutex
	m  map[string]revoked // Guarded by mu.
}

func newRevocations(ttl time.Duration) *revocations {
	return &revocations{ttl: ttl, m: make(map[string]revoked)}
}

// add merges r into the set at now: the later cut-off and the later time
// win. It returns the revocation in force for r.Sub afterwards, and
// whether r changed anything (false also for one that has lapsed).
func (rs *revocations) add(r feed.Revocation, now time.Time) (feed.Revocation, bool) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	cur, ok := rs.m[r.Sub]
	if ok && !now.Before(cur.until) {
		ok = false
	}
	merged := r
	if ok {
		merged.IssuedBefore = max(cur.rec.IssuedBefore, r.IssuedBefore)
		if cur.rec.At > r.At {
			merged.At, merged.Node = cur.rec.At, cur.rec.Node
		}
		if merged == cur.rec {
			return cur.rec, false
		}
	}
	e := revoked{rec: merged, cutoff: time.Unix(merged.IssuedBefore, 0)}
	e.until = time.Unix(max(merged.At, merged.IssuedBefore), 0).Add(rs.ttl)
	if !now.Before(e.until) {
		if ok {
			return cur.rec, false
		}
		return merged, false // lapsed before it arrived
	}
	rs.m[r.Sub] = e
	return merged, !ok || merged.IssuedBefore != cur.rec.IssuedBefore
}

// boundRevocation holds r, from the subject or the bucket, to what the
// admin API makes (another tool, or a node whose clock runs ahead, may
// make others): a time at most maxCutoffAhead past now, else now; a
// cut-off at most maxCutoffAhead past that time. Milliseconds given for
// seconds would otherwise refuse every token of the sub for millennia,
// and the later cut-off wins every merge, so no correction could lower
// it; and a revocation is never dropped for a clock. The cut-off is
// bound to the revocation's own time, not to now, so that reading it
// again from the bucket later (at every start and reconnect) gives the
// same cut-off rather than a later one.
func boundRevocation(r feed.Revocation, now time.Time) feed.Revocation {
	if r.At > now.Add(maxCutoffAhead).Unix() {
		r.At = now.Unix()
	}
	r.IssuedBefore = min(r.IssuedBefore, r.At+int64(maxCutoffAhead/time.Second))
	return r
}

// current returns the revocation of sub in force at now, if any.
func (rs *revocations) current(sub string, now time.Time) (feed.Revocation, bool) {
	rs.mu.RLock()
	defer rs.mu.RUnlock()
	e, ok := rs.m[sub]
	if !ok || !now.Before(e.until) {
		return feed.Revocation{}, false
	}
	return e.rec, true
}

// refuses reports whether a token of sub issued at iat (zero: no iat) is
// revoked at now.
func (rs *revocations) refuses(sub string, iat, now time.Time) bool {
	rs.mu.RLock()
	e, ok := rs.m[sub]
	rs.mu.RUnlock()
	return ok && now.Before(e.until) && (iat.IsZero() || iat.Before(e.cutoff))
}

// prune forgets the revocations that lapsed by now and returns how many
// remain.
func (rs *revocations) prune(now time.Time) int {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for sub, e := range rs.m {
		if !now.Before(e.until) {
			delete(rs.m, sub)
		}
	}
	return len(rs.m)
}

// Revoke applies r on this node, as learned from source (a label value of
// tickgate_revocations_received_total): the sub's tokens issued before the
// cut-off are refused from now on, and its connections whose current
// token is one of them are closed with 4003. It returns the revocation in
// force for the sub (r merged with one the node had) and how many
// connections it closed. It neither publishes nor stores r.
func (s *Server) Revoke(r feed.Revocation, source string) (inForce feed.Revocation, closed int) {
	m := s.metrics
	m.revocationsReceived.WithLabelValues(source).Inc()
	now := s.cfg.Now()
	if bounded := boundRevocation(r, now); bounded != r {
		s.log.Warn("revocation with a time or cut-off far ahead (a clock ahead, or milliseconds): applied with its time now and its cut-off at most a minute after it",
			"sub", r.Sub, "issued_before", r.IssuedBefore, "at", r.At, "from", source, "origin", r.Node)
		r = bounded
	}
	inForce, changed := s.revoked.add(r, now)
	if !changed {
		return inForce, 0
	}
	m.revocationsApplied.Inc()
	m.revocationsActive.Set(float64(s.revoked.prune(now)))
	// Registered first, then the scan: a handshake or a refresh that
	// passed its check before the registration is seen here (its conn is
	// tracked, its claims set under cmdMu), one after it is refused.
	s.mu.Lock()
	var conns []*conn
	for c := range s.conns {
		if c.subject == r.Sub {
			conns = append(conns, c)
		}
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.cmdMu.Lock()
		iat := c.claims.IssuedAt
		c.cmdMu.Unlock()
		if s.revoked.refuses(r.Sub, iat, now) && c.revoke() {
			closed++
		}
	}
	s.log.Info("revocation applied", "sub", inForce.Sub, "issued_before", inForce.IssuedBefore, "from", source,
		"origin", inForce.Node, "connections_closed", closed)
	return inForce, closed
}

// revoke closes the connection with 4003 revoked at once: what is pending
// is dropped, and the socket is cut a second later if the close frame
// cannot get through. It reports whether this was the connection's first
// close.
func (c *conn) revoke() bool {
	if !c.out.evict(proto.Disconnect{Code: proto.CloseRevoked, Reason: "revoked"}) {
		return false
	}
	c.srv.metrics.revocationCloses.Inc()
	c.srv.log.Info("connection closed: token revoked", c.logAttrs()...)
	c.cutAfter(closeWriteTimeout)
	return true
}

// RevokeResult is what RevokeEverywhere did.
type RevokeResult struct {
	Sub          string   `json:"sub"`
	IssuedBefore int64    `json:"issued_before"` // the cut-off in force: the sub's tokens with an earlier iat, or none, are refused
	ExpiresAt    int64    `json:"expires_at"`    // when the node forgets it (every token it refuses has expired by then)
	Closed       int      `json:"closed"`        // connections this node closed (other nodes close theirs as it reaches them)
	Published    bool     `json:"published"`     // sent to every node that is up
	Stored       bool     `json:"stored"`        // kept in the bucket, for nodes that start later
	Warnings     []string `json:"warnings"`      // what did not happen, and why
}

// RevokeEverywhere is the operator's revocation (POST /v1/revoke): it
// revokes sub's tokens issued before issuedBefore (Unix seconds; 0: every
// token issued up to now, the current second included), applies it on
// this node, publishes it to every node that is up and stores it for
// nodes that start later. A bad sub or cut-off fails with ErrRevocation
// and changes nothing; a bus that cannot publish or store is reported in
// the result, not as an error: the revocation holds on this node anyway.
func (s *Server) RevokeEverywhere(ctx context.Context, sub string, issuedBefore int64) (RevokeResult, error) {
	now := s.cfg.Now()
	if issuedBefore == 0 {
		issuedBefore = now.Unix() + 1
	}
	if issuedBefore < 0 || issuedBefore > now.Add(maxCutoffAhead).Unix() {
		return RevokeResult{}, fmt.Errorf("%w: issued_before must be Unix seconds, at most a minute ahead", ErrRevocation)
	}
	r := feed.Revocation{Sub: sub, IssuedBefore: issuedBefore, At: now.Unix(), Node: s.cfg.NodeID}
	if err := r.Validate(); err != nil {
		return RevokeResult{}, fmt.Errorf("%w: %w", ErrRevocation, err)
	}
	inForce, closed := s.Revoke(r, revokedByAPI)
	res := RevokeResult{Sub: inForce.Sub, IssuedBefore: inForce.IssuedBefore, Closed: closed, Warnings: []string{}}
	res.ExpiresAt = time.Unix(max(inForce.At, inForce.IssuedBefore), 0).Add(s.cfg.RevocationTTL).Unix()
	bus := s.cfg.Revocations
	if bus == nil {
		res.Warnings = append(res.Warnings, "this node has no revocation bus: the revocation holds on this node only")
		return res, nil
	}
	ctx, cancel := context.WithTimeout(ctx, revocationLoad)
	defer cancel()
	if err := bus.Publish(ctx, inForce); err != nil {
		s.log.Warn("revocation not published", "sub", sub, "err", err.Error())
		res.Warnings = append(res.Warnings, "not sent to the other nodes: "+err.Error())
	} else {
		res.Published = true
	}
	if err := bus.Store(ctx, inForce); err != nil {
		s.log.Warn("revocation not stored: nodes that start later will not know it", "sub", sub, "err", err.Error())
		res.Warnings = append(res.Warnings, "not stored for nodes that start later: "+err.Error())
	} else {
		res.Stored = true
	}
	return res, nil
}

// revocationLoad bounds reading the stored revocations when the node
// starts or gets NATS back; revocationRetry is how soon a read that
// failed is tried again.
const (
	revocationLoad      = 5 * time.Second
	revocationRetry     = 2 * time.Second  // the first retry's, doubling (with jitter) ...
	revocationLookAgain = 30 * time.Second // ... up to this, which is also how often a node without JetStream looks again
)

// followRevocations subscribes to the bus and applies what it stores,
// before the node takes connections; then, on its own goroutine until
// stop is closed, it reads the store again each time NATS comes back (a
// revocation published while the node was cut off reached it only
// there), tries again a read that failed (a timeout, a JetStream leader
// election: until one succeeds the node does not know the revocations
// made before), backing off from revocationRetry to revocationLookAgain,
// and forgets lapsed revocations.
// Without a bus it does nothing.
func (s *Server) followRevocations(stop <-chan struct{}) {
	bus := s.cfg.Revocations
	if bus == nil {
		return
	}
	unsubscribe, err := bus.Subscribe(func(r feed.Revocation) { s.Revoke(r, revokedByNATS) })
	if err != nil {
		s.log.Error("revocations: cannot subscribe; this node learns of none from other nodes", "err", err.Error())
		unsubscribe = func() {}
	}
	// A reconnect between two sweeps is seen by the count of reconnects,
	// where the source keeps one (feed.Source does).
	counter, _ := s.hub.src.(interface{ Reconnects() uint64 })
	reconnects := func() uint64 {
		if counter == nil {
			return 0
		}
		return counter.Reconnects()
	}
	seen := reconnects()
	up := s.hub.src.Connected()
	var (
		pending = true    // the store is to be read: at the start, after each reconnect, after a failed read
		failed  int       // reads failed in a row since the last reconnect
		retryAt time.Time // not before: after a failed read, or a look that found no JetStream
	)
	load := func(first bool) {
		err := s.loadRevocations(bus, first, failed)
		switch {
		case err == nil:
			pending, failed = false, 0
			s.revocationsUnread.Store(false)
		case errors.Is(err, feed.ErrStoreDisabled):
			// Nothing answers JetStream's API: a deployment without it has
			// nothing to read, and the node is not waiting for a read. It
			// looks again now and then, as a server whose JetStream is
			// away for a while (a leaf cut off from its hub) looks the
			// same.
			s.revocationsUnread.Store(false)
			retryAt = time.Now().Add(revocationLookAgain)
		default:
			// A backoff with jitter, so that the nodes of a fleet do not
			// come back to a JetStream that was down all at once.
			failed++
			backoff := min(revocationRetry<<min(failed-1, 4), revocationLookAgain)
			retryAt = time.Now().Add(backoff/2 + rand.N(backoff/2+1))
		}
	}
	if up {
		load(true)
	} else {
		s.log.Warn("revocations: no NATS connection at start; stored revocations are read once it is up")
	}
	sweep := func() {
		connected, n := s.hub.src.Connected(), reconnects()
		if connected && (!up || n != seen) {
			// Read again: one published meanwhile reached the node only there.
			s.revocationsUnread.Store(true)
			pending, failed, seen, retryAt = true, 0, n, time.Time{}
		}
		up = connected
		if connected && pending && !time.Now().Before(retryAt) {
			load(false)
		}
		s.metrics.revocationsActive.Set(float64(s.revoked.prune(s.cfg.Now())))
	}
	go func() {
		defer unsubscribe()
		every(stop, statusSweep, sweep)
	}()
}

// RevocationsUnread reports whether the node has a revocation store it
// has not read since it started or last got NATS back (a read failed, or
// NATS is away): until it has, revocations made while it was not
// listening are unknown to it. /readyz says so.
func (s *Server) RevocationsUnread() bool { return s.revocationsUnread.Load() } // never true without a bus

// loadRevocations applies every stored revocation; first says it is the
// node's start (logged at Info either way), failed how many reads before
// failed in a row (the first failure is a warning, the others are not
// repeated).
func (s *Server) loadRevocations(bus RevocationBus, first bool, failed int) error {
	ctx, cancel := context.WithTimeout(context.Background(), revocationLoad)
	defer cancel()
	stored, err := bus.Stored(ctx)
	switch {
	case errors.Is(err, feed.ErrStoreDisabled):
		if first {
			s.log.Warn("revocations: no store (nothing answers JetStream's API); they reach only the nodes that are up when made, and this node knows none made before it started; it looks again every "+revocationLookAgain.String(),
				"err", err.Error())
		}
		return err
	case err != nil && failed == 0:
		s.log.Warn("revocations: stored ones not read; trying again (from "+revocationRetry.String()+", backing off to "+revocationLookAgain.String()+"); until then this node knows none made while it was not listening",
			"err", err.Error())
		return err
	case err != nil:
		s.log.Debug("revocations: stored ones not read again", "tries", failed+1, "err", err.Error())
		return err
	}
	for _, r := range stored {
		s.Revoke(r, revokedByStore)
	}
	if first || failed > 0 {
		s.log.Info("revocations: stored ones read", "count", len(stored), "failed_before", failed)
	}
	return nil
}
