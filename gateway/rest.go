package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tickgate/tickgate/codec"
	"github.com/tickgate/tickgate/feed"
	"github.com/tickgate/tickgate/proto"
)

// SnapshotPath is where REST snapshots are served (contract 1.1 §10,
// docs/protocol.md §11.4): GET /v1/snapshot/<channel>[?depth=&bars=&recent=].
const SnapshotPath = "/v1/snapshot/"

// REST snapshot results beyond the handshake's codes and the command
// error codes, label values of tickgate_rest_snapshots_total.
const (
	restOK           = "ok"
	restNoData       = "no_data"            // 404: nothing for the channel within restWait
	restBadMethod    = "method_not_allowed" // 405
	restUnavailable  = string(proto.CodeUnavailable)
	restBadRequest   = string(proto.CodeBadRequest)
	restBadChannel   = string(proto.CodeBadChannel)
	restForbidden    = string(proto.CodeForbidden)
	restTooManyHolds = 10_000 // channels held for REST at most; beyond, each is given back at once
)

// restResults lists every result, for metrics that start each series at
// zero.
func restResults() []string {
	out := []string{restOK, restNoData, restBadMethod, restUnavailable, restBadRequest, restBadChannel, restForbidden}
	for _, c := range proto.HandshakeCodes() {
		if c != proto.HandshakeBadSubprotocol {
			out = append(out, string(c))
		}
	}
	return out
}

// restWait is how long a REST snapshot waits for the node to have data
// for the channel (contract 1.1 §10: 404 no_data after 2 s).
const restWait = 2 * time.Second

// restError is a refused REST snapshot: the status and the body's code.
type restError struct {
	status  int
	code    string
	message string
	retry   time.Duration // with unavailable and too_many_connections: Retry-After
}

// serveSnapshot answers GET /v1/snapshot/<channel>: the channel's
// snapshot as {"channel","seq","data"}, JSON, with the handshake's
// authentication, origin check, pacing and refusals, each counted in
// tickgate_rest_snapshots_total{result}.
func (s *Server) serveSnapshot(w http.ResponseWriter, r *http.Request) {
	body, hit, rerr := s.restSnapshot(r)
	if rerr != nil {
		s.metrics.restResult(rerr.code)
		if rerr.status == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", "GET, HEAD")
		}
		if rerr.retry > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(rerr.retry/time.Second)+1))
		}
		if rerr.code == restUnavailable {
			writeJSONRetry(w, rerr.status, rerr.code, rerr.message, rerr.retry.Milliseconds())
			return
		}
		writeJSONError(w, rerr.status, rerr.code, rerr.message)
		return
	}
	s.metrics.restResult(restOK)
	if hit {
		s.metrics.restCacheHits.Inc()
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// restSnapshot runs the checks of a REST snapshot in the handshake's order
// (draining, origin, credentials), then the channel's and the options',
// then the pacing, then the subscriber's subscription slots, and returns
// the body, and whether it was encoded already (a cache hit). A channel
// held for REST takes one of the subscriptions (MaxSubscriptionsPerSubject)
// of the last subscriber that asked for it and could take one.
func (s *Server) restSnapshot(r *http.Request) ([]byte, bool, *restError) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return nil, false, &restError{http.StatusMethodNotAllowed, restBadMethod, "GET or HEAD", 0}
	}
	refuse := func(code proto.HandshakeCode, msg string) *restError {
		e := &restError{status: code.HTTPStatus(), code: string(code), message: msg}
		if code == proto.HandshakeDraining {
			e.retry = time.Second - 1 // Retry-After: 1
		}
		return e
	}
	query := r.URL.Query() // before the credentials: an access_token leaves the URL with the whole query
	if s.draining.Load() {
		return nil, false, refuse(proto.HandshakeDraining, "this node is draining; ask another node")
	}
	if origins := r.Header.Values("Origin"); len(origins) > 0 && len(s.origins) > 0 {
		if _, ok := s.origins[normalizeOrigin(origins[0], false)]; !ok || len(origins) > 1 {
			return nil, false, refuse(proto.HandshakeOriginNotAllowed, "origin not allowed")
		}
	}
	claims, aerr := s.authenticate(r)
	if aerr != nil {
		return nil, false, refuse(aerr.Code, aerr.Text)
	}
	name := strings.TrimPrefix(r.URL.Path, SnapshotPath)
	ch, err := proto.ParseChannel(name)
	if err != nil {
		return nil, false, &restError{http.StatusBadRequest, restBadChannel, err.Error(), 0}
	}
	if !claims.Allows(name) {
		return nil, false, &restError{http.StatusForbidden, restForbidden, "the token does not allow this channel", 0}
	}
	spec := ch.Kind.Spec()
	view, bad := restView(query)
	if bad != "" {
		return nil, false, &restError{http.StatusBadRequest, restBadRequest, bad, 0}
	}
	view = view.For(spec)
	if !wantsSnapshot(spec, true, view) {
		return nil, false, &restError{http.StatusBadRequest, restBadRequest,
			fmt.Sprintf("a %s channel's snapshot needs recent (1..%d)", ch.Kind, proto.MaxRecent), 0}
	}
	// Paced after the checks of the request itself (credentials, channel,
	// options), from a budget apart from the handshakes'
	// (admission.paceREST).
	if ok, wait := s.admit.paceREST(); !ok {
		e := refuse(proto.HandshakeTooManyConnections, "the node is taking requests slowly; retry after the given seconds, or on another node")
		e.retry = wait
		return nil, false, e
	}
	ctx, cancel := context.WithTimeout(r.Context(), restWait)
	defer cancel()
	body, hit, err := s.hub.restSnapshot(ctx, ch, view, claims.Subject)
	switch {
	case errors.Is(err, errRESTHolds):
		return nil, false, &restError{http.StatusTooManyRequests, string(proto.HandshakeTooManyConnections),
			fmt.Sprintf("at most %d subscriptions per subscriber (token sub) on this node, the channels held for its REST snapshots included", s.cfg.MaxSubscriptionsPerSubject),
			s.cfg.RESTLinger}
	case errors.Is(err, feed.ErrUnavailable) || errors.Is(err, feed.ErrSubscribe):
		retry := s.cfg.SubscribeRetry
		return nil, false, &restError{http.StatusServiceUnavailable, restUnavailable,
			"the feed is not reachable from this node now; retry later", retry}
	case err != nil:
		return nil, false, &restError{http.StatusNotFound, restNoData,
			fmt.Sprintf("the node has no data for %s within %v", name, restWait), 0}
	}
	return body, hit, nil
}

// restView reads the options of a REST snapshot from the query, as the
// subscribe command's (viewOptions): depth, bars, recent; other
// parameters (access_token) are not options.
func restView(q url.Values) (feed.SnapshotOptions, string) {
	var cmd proto.Command
	for name, dst := range map[string]**int64{"depth": &cmd.Depth, "bars": &cmd.Bars, "recent": &cmd.Recent} {
		vs, ok := q[name]
		if !ok {
			continue
		}
		v, err := strconv.ParseInt(vs[0], 10, 64)
		if err != nil || len(vs) > 1 {
			return feed.SnapshotOptions{}, name + " must be one integer"
		}
		*dst = &v
	}
	return viewOptions(&cmd)
}

// restHold keeps a channel on the node for a while after a REST snapshot,
// so that the requests that follow find its state (and the encoded body)
// rather than a cold channel.
type restHold struct {
	e     *hubEntry
	p     *feed.Pending
	sub   string    // Guarded by restHolds.mu: the subscriber whose subscription slot the hold takes, the last that asked and could take one.
	until time.Time // Guarded by restHolds.mu: when the hold ends, unless extended.
	done  bool      // Guarded by restHolds.mu: given back.
}

// errRESTHolds: the subscriber asking for a REST snapshot of a channel the
// node does not hold for REST holds as many subscriptions as it may.
var errRESTHolds = errors.New("gateway: too many subscriptions for a REST hold")

// restHolds are the channels held for REST snapshots.
type restHolds struct {
	slots *admission // Static after construction: the subscribers' subscription slots, one taken per hold.

	mu    sync.Mutex
	holds map[proto.Channel]*restHold // Guarded by mu.
}

// holdForREST returns the entry of ch, held on the node for restLinger
// after the last REST request for it: a new hold (NATS interest included),
// taking a subscription slot of sub, the subscriber asking (errRESTHolds
// when it has none to spare), or the one under way, extended and taking
// sub's slot from then on when sub has one, and neither when it has not:
// a subscriber's slot is not kept taken by others' requests after its own
// stopped.
func (h *hub) holdForREST(ch proto.Channel, sub string) (*hubEntry, *feed.Pending, error) {
	slots := h.rest.slots
	h.rest.mu.Lock()
	defer h.rest.mu.Unlock()
	if rh := h.rest.holds[ch]; rh != nil {
		if rh.sub != sub {
			if !slots.reserve(sub) {
				// Answered from the hold, which it does not extend: a
				// subscriber without a slot to spare holds nothing, and
				// does not keep the other's slot taken.
				return rh.e, rh.p, nil
			}
			slots.unreserve(rh.sub, 1)
			rh.sub = sub
		}
		rh.until = h.now().Add(h.restLinger)
		return rh.e, rh.p, nil
	}
	if !slots.reserve(sub) {
		return nil, nil, errRESTHolds
	}
	e, p, err := h.acquire(ch)
	if err != nil {
		slots.unreserve(sub, 1)
		return nil, nil, err
	}
	if len(h.rest.holds) >= restTooManyHolds {
		time.AfterFunc(restWait, func() { h.abandon(e, p); slots.unreserve(sub, 1) }) // answered, then given back
		return e, p, nil
	}
	rh := &restHold{e: e, p: p, sub: sub, until: h.now().Add(h.restLinger)}
	if h.rest.holds == nil {
		h.rest.holds = make(map[proto.Channel]*restHold)
	}
	h.rest.holds[ch] = rh
	var expire func()
	expire = func() {
		h.rest.mu.Lock()
		if rh.done {
			h.rest.mu.Unlock()
			return
		}
		if left := rh.until.Sub(h.now()); left > 0 {
			h.rest.mu.Unlock()
			time.AfterFunc(left, expire)
			return
		}
		rh.done = true
		delete(h.rest.holds, ch)
		sub := rh.sub
		h.rest.mu.Unlock()
		h.abandon(e, p)
		slots.unreserve(sub, 1)
	}
	time.AfterFunc(h.restLinger, expire)
	return e, p, nil
}

// dropREST gives back a REST hold whose NATS interest failed.
func (h *hub) dropREST(ch proto.Channel, p *feed.Pending) {
	h.rest.mu.Lock()
	defer h.rest.mu.Unlock()
	if rh := h.rest.holds[ch]; rh != nil && rh.p == p && !rh.done {
		rh.done = true // its timer does nothing
		delete(h.rest.holds, ch)
		h.abandon(rh.e, rh.p)
		h.rest.slots.unreserve(rh.sub, 1)
	}
}

// restSnapshot returns the REST body of ch's snapshot for view, encoded
// once per snapshot (it is the hub entry's cached one, dropped when the
// state moves on) and whether it was encoded already. It holds the channel
// on the node (holdForREST), waits until NATS confirmed it and the state
// has data, reading recent trades the memory is short of from the
// history stream, all within ctx.
func (h *hub) restSnapshot(ctx context.Context, ch proto.Channel, view feed.SnapshotOptions, sub string) ([]byte, bool, error) {
	e, p, err := h.holdForREST(ch, sub)
	if err != nil {
		return nil, false, err
	}
	select {
	case <-p.Done():
		if err := p.Err(); err != nil {
			h.dropREST(ch, p)
			return nil, false, err
		}
	case <-ctx.Done():
		return nil, false, ctx.Err()
	}
	var older []*feed.Message
	if h.history != nil && view.Recent > 0 {
		e.mu.Lock()
		short := e.state.Short(view)
		e.mu.Unlock()
		if short {
			older = h.fetchRecent(ctx, ch, view.Recent)
		}
	}
	for {
		e.mu.Lock()
		sn := e.currentSnapshot(view)
		if len(older) > 0 {
			sn, older = e.completedSnapshot(view, older), nil
		}
		if sn != nil {
			e.mu.Unlock()
			return sn.restBody(), sn.restHit.Swap(true), nil
		}
		h.warm(e) // a book or ticker the stream may start
		if e.changed == nil {
			e.changed = make(chan struct{})
		}
		changed := e.changed
		e.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
}

// restBody returns the snapshot's REST body, encoding it on first use.
func (sn *snapshot) restBody() []byte {
	sn.rest.once.Do(func() {
		sn.rest.b, _ = codec.JSON().Append(nil, proto.RESTSnapshot{Channel: sn.channel, Seq: sn.seq, Data: sn.data})
	})
	return sn.rest.b
}

// writeJSONRetry is writeJSONError with retry_ms, for unavailable.
func writeJSONRetry(w http.ResponseWriter, status int, code, msg string, retryMS int64) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	b, _ := codec.JSON().Append(nil, struct {
		Error   string `json:"error"`
		Message string `json:"message"`
		RetryMS int64  `json:"retry_ms"`
	}{code, msg, retryMS})
	_, _ = w.Write(b)
}
