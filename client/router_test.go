package client

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/tickgate/tickgate/proto"
)

// routerRig is a router with a synchronous queue and a clock.
type routerRig struct {
	r     *router
	q     *queue
	stats *counters
	now   time.Time
	evs   []Event
	kicks int
	id    int64
}

func newRig(t *testing.T, channels ...string) *routerRig {
	t.Helper()
	g := &routerRig{stats: new(counters), now: time.Unix(1000, 0)}
	g.q = newQueue(func(e Event) { g.evs = append(g.evs, e) }, 1000, g.stats)
	g.r = newRouter(g.q, g.stats, func() { g.kicks++ }, func() time.Time { return g.now })
	g.id = 1
	for _, name := range channels {
		ch, err := proto.ParseChannel(name)
		if err != nil {
			t.Fatal(err)
		}
		g.r.add(name, ch, subOptions{}, g.id)
		g.r.acked(g.id, name, subOptions{}, false)
	}
	return g
}

func (g *routerRig) nextID() int64 { g.id++; return g.id }

// events delivers what waits and returns it.
func (g *routerRig) events() []Event {
	g.evs = g.evs[:0]
	g.q.flushNow()
	return g.evs
}

func (g *routerRig) ticker(seq, prev uint64, snapshot bool) {
	typ := proto.TypeUpdate
	if snapshot {
		typ = proto.TypeSnapshot
	}
	g.r.handle(withData(message{Type: typ, Channel: "ticker.X", Seq: seq, Prev: prev}, &proto.Ticker{Bid: "1", BidSize: "1", Ask: "2", AskSize: "1", Last: "1", Volume: "1"}))
}

func states(evs []Event) []string {
	var out []string
	for _, e := range evs {
		if e.Type == EventState {
			s := e.Channel + " " + e.State.String()
			if e.Resumed {
				s += " resumed"
			}
			out = append(out, s)
		}
	}
	return out
}

// A lost connection makes every channel stale and due; the next one
// re-subscribes them in one command per set of options, each with the seq
// it holds; what the node resumes goes on, the rest restarts.
func TestRouterReconnect(t *testing.T) {
	g := newRig(t, "ticker.X", "trade.X", "book.X")
	g.ticker(10, 0, true)
	g.r.handle(tradeMessage(5, 0))
	g.r.chans["book.X"].opts.throttleMS = 100 // another set of options
	g.events()

	g.r.disconnected()
	// book.X still waits for its first snapshot: it holds nothing that
	// could be stale, and stays resyncing.
	if got := states(g.events()); !slices.Equal(got, []string{"ticker.X stale", "trade.X stale"}) {
		t.Fatalf("states after the loss: %v", got)
	}
	for _, name := range []string{"ticker.X", "trade.X"} {
		if st := g.r.chans[name].compute(); st != StateStale {
			t.Fatalf("%s is %v", name, st)
		}
	}
	groups, later := g.r.due(g.nextID)
	if len(groups) != 2 || !later.IsZero() {
		t.Fatalf("groups %+v, later %v", groups, later)
	}
	plain := groups[0]
	if plain.opts.throttleMS != 0 {
		plain = groups[1]
	}
	if !slices.Equal(plain.channels, []string{"ticker.X", "trade.X"}) || plain.since["ticker.X"] != 10 || plain.since["trade.X"] != 5 {
		t.Fatalf("re-subscribe %+v", plain)
	}
	if again, _ := g.r.due(g.nextID); len(again) != 0 {
		t.Fatalf("due twice: %+v", again)
	}
	// The old chain never reaches the channels while the ack is awaited.
	g.ticker(11, 10, false)
	if g.r.chans["ticker.X"].last != 10 {
		t.Fatal("a message before the ack was applied")
	}
	g.r.acked(plain.id, "ticker.X", plain.opts, true)
	g.r.acked(plain.id, "trade.X", plain.opts, false)
	g.r.unsolicited(&ServerError{Code: proto.CodeHistoryUnavailable, Channel: "trade.X"})
	evs := g.events()
	if got := states(evs); !slices.Equal(got, []string{"ticker.X live resumed", "trade.X live"}) {
		t.Fatalf("states after the acks: %v", got)
	}
	var gap *Gap
	for _, e := range evs {
		if e.Type == EventGap {
			gap = e.Gap
		}
	}
	if gap == nil || gap.Reason != GapHistory || gap.From != 6 || gap.To != 0 {
		t.Fatalf("history_unavailable reported as %+v", gap)
	}
	g.ticker(11, 10, false) // the resumed chain goes on
	g.r.handle(tradeMessage(9, 0))
	if g.r.chans["ticker.X"].last != 11 || g.r.chans["trade.X"].last != 9 {
		t.Fatal("the new chains did not go on")
	}
	st := g.stats.snapshot()
	if st.Resumed != 1 || st.Resyncs != 1 || st.Gaps != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// A re-subscribe the node cannot take now is retried after retry_ms (or a
// backoff), stale meanwhile; one it refuses for good ends the channel
// with an EventError.
func TestRouterRefusals(t *testing.T) {
	g := newRig(t, "ticker.X", "ticker.Y")
	g.ticker(3, 0, true)
	g.r.disconnected()
	groups, _ := g.r.due(g.nextID)
	id := groups[0].id
	g.events()
	g.r.refused(id, false, &ServerError{Code: proto.CodeUnavailable, Channel: "ticker.X", RetryAfter: 2 * time.Second})
	g.r.refused(id, false, &ServerError{Code: proto.CodeForbidden, Channel: "ticker.Y"})
	evs := g.events()
	if _, ok := g.r.chans["ticker.Y"]; ok {
		t.Fatal("a forbidden channel is still held")
	}
	var ended error
	for _, e := range evs {
		if e.Type == EventError && e.Channel == "ticker.Y" {
			ended = e.Err
		}
	}
	if !errors.Is(ended, ErrForbidden) {
		t.Fatalf("the end of ticker.Y reported as %v", ended)
	}
	if st := g.r.chans["ticker.X"].compute(); st != StateStale {
		t.Fatalf("ticker.X is %v while it waits for a retry", st)
	}
	groups, later := g.r.due(g.nextID)
	if len(groups) != 0 || !later.Equal(g.now.Add(2*time.Second)) {
		t.Fatalf("retry due at %v (groups %v)", later, groups)
	}
	g.now = g.now.Add(2 * time.Second)
	groups, _ = g.r.due(g.nextID)
	if len(groups) != 1 || groups[0].since["ticker.X"] != 3 {
		t.Fatalf("retry %+v", groups)
	}
	g.r.refused(groups[0].id, false, &ServerError{Code: proto.CodeRateLimited, Channel: "ticker.X"})
	if _, later := g.r.due(g.nextID); later.Sub(g.now) < 500*time.Millisecond || later.Sub(g.now) > 30*time.Second {
		t.Fatalf("rate_limited retried after %v", later.Sub(g.now))
	}
}

// A user's refused subscribe forgets a channel it created and leaves one
// it re-subscribed as it was; a forbidden that answers no command (after
// a token refresh) ends the channel.
func TestRouterUserRefusalAndForbidden(t *testing.T) {
	g := newRig(t, "ticker.X")
	g.ticker(3, 0, true)
	ch, _ := proto.ParseChannel("ticker.Y")
	id := g.nextID()
	g.r.add("ticker.Y", ch, subOptions{}, id)
	g.r.add("ticker.X", proto.Channel{Kind: proto.KindTicker, Symbol: "X"}, subOptions{}, id)
	g.r.refused(id, true, &ServerError{Code: proto.CodeForbidden, Channel: "ticker.Y"})
	g.r.refused(id, true, &ServerError{Code: proto.CodeRateLimited, Channel: "ticker.X"})
	if _, ok := g.r.chans["ticker.Y"]; ok {
		t.Fatal("a refused new channel is held")
	}
	if s := g.r.chans["ticker.X"]; s == nil || s.awaitAck != 0 || s.compute() != StateLive {
		t.Fatal("a refused re-subscribe changed the channel")
	}
	g.events()
	g.r.unsolicited(&ServerError{Code: proto.CodeForbidden, Channel: "ticker.X"})
	if _, ok := g.r.chans["ticker.X"]; ok {
		t.Fatal("a subscription the node ended is held")
	}
	evs := g.events()
	if len(evs) != 1 || evs[0].Type != EventError || !errors.Is(evs[0].Err, ErrForbidden) {
		t.Fatalf("events %+v", evs)
	}
}

// The node's status messages (contract 1.1) map onto the channel's state.
func TestRouterStatus(t *testing.T) {
	g := newRig(t, "ticker.X")
	g.ticker(3, 0, true)
	g.events()
	for _, tt := range []struct{ state, want string }{
		{"stale", "stale"}, {"live", "live"}, {"resyncing", "resyncing"}, {"live", "live"},
	} {
		g.r.handle(&message{Type: typeStatus, Channel: "ticker.X", State: tt.state, Reason: "feed_silent"})
		if got := g.r.chans["ticker.X"].compute().String(); got != tt.want {
			t.Fatalf("after status %s: %s", tt.state, got)
		}
	}
	if got := states(g.events()); !slices.Equal(got, []string{"ticker.X stale", "ticker.X live", "ticker.X resyncing", "ticker.X live"}) {
		t.Fatalf("state events %v", got)
	}
}

func TestOptions(t *testing.T) {
	if err := (Options{}).withDefaults().Validate(); !errors.Is(err, ErrConfig) {
		t.Fatalf("no TokenSource: %v", err)
	}
	o := Options{TokenSource: func(ctx context.Context) (string, error) { return "", nil }}.withDefaults()
	if err := o.Validate(); err != nil || o.Codec.Name() != "json" || o.MaxPending != 16384 {
		t.Fatalf("defaults %+v: %v", o, err)
	}
	o.BackoffMax = o.BackoffMin / 2
	if err := o.Validate(); !errors.Is(err, ErrConfig) {
		t.Fatalf("BackoffMax below BackoffMin: %v", err)
	}
	var so subOptions
	for _, opt := range []SubscribeOption{Throttle(250 * time.Millisecond), Snapshot(false), Depth(25), Recent(10)} {
		if err := opt(&so); err != nil {
			t.Fatal(err)
		}
	}
	if so != (subOptions{throttleMS: 250, noSnapshot: true, depth: 25, recent: 10}) {
		t.Fatalf("options %+v", so)
	}
	for _, opt := range []SubscribeOption{Throttle(-1), Throttle(2 * time.Minute), Depth(7), Recent(1001)} {
		if err := opt(&so); !errors.Is(err, ErrConfig) {
			t.Fatalf("a bad option passed: %v", err)
		}
	}
}

// A channel the old node marked stale, resumed on a node where it is
// live (which tells a joiner a status only when it is not live), comes
// back live with the resume; before, it stayed stale while data flowed.
func TestRouterResumeDropsTheOldNodesStatus(t *testing.T) {
	g := newRig(t, "ticker.X")
	g.ticker(10, 0, true)
	g.r.handle(&message{Type: typeStatus, Channel: "ticker.X", State: "stale"})
	g.events()
	g.r.disconnected()
	groups, _ := g.r.due(g.nextID)
	if len(groups) != 1 || groups[0].since["ticker.X"] != 10 {
		t.Fatalf("groups %+v", groups)
	}
	g.r.acked(groups[0].id, "ticker.X", groups[0].opts, true)
	g.ticker(11, 10, false)
	if st := g.r.chans["ticker.X"].compute(); st != StateLive {
		t.Fatalf("after a resume on a live node and an update: %v (server %q)", st, g.r.chans["ticker.X"].server)
	}
}

// A user's Subscribe of a held channel made while the client was down
// takes over the client's own re-subscribe; when the node refuses it, that
// re-subscribe is still owed (the node holds nothing of the channel on the
// new connection). Before, nothing ever re-subscribed it.
func TestRouterUserSubscribeRefusedAfterReconnect(t *testing.T) {
	g := newRig(t, "ticker.X")
	g.ticker(10, 0, true)
	g.r.disconnected()
	ch, _ := proto.ParseChannel("ticker.X")
	id := g.nextID()
	g.r.add("ticker.X", ch, subOptions{throttleMS: 250}, id) // the user's Subscribe, sent on the new connection
	g.r.refused(id, true, &ServerError{Code: proto.CodeUnavailable, Channel: "ticker.X", RetryAfter: time.Second})
	if groups, later := g.r.due(g.nextID); len(groups) != 0 || later.IsZero() {
		t.Fatalf("right after the refusal: %+v, next at %v; want one later", groups, later)
	}
	g.now = g.now.Add(2 * time.Second)
	groups, _ := g.r.due(g.nextID)
	if len(groups) != 1 || groups[0].since["ticker.X"] != 10 || groups[0].opts.throttleMS != 0 {
		t.Fatalf("after the retry's wait: %+v; want the channel's own re-subscribe from 10", groups)
	}
}

// A book waiting out its backoff after a second bad snapshot, and a
// user's Subscribe of it that the node refuses: the channel's own resync
// is still owed. Before, it was never re-subscribed.
func TestRouterBadBookUserRefusedStillResyncs(t *testing.T) {
	g := newRig(t, "book.X")
	bad := func(seq uint64) { // a snapshot whose checksum is wrong
		g.r.handle(withData(message{Type: proto.TypeSnapshot, Channel: "book.X", Seq: seq}, &proto.Book{Bids: []proto.Level{{"10", "1"}}, Asks: []proto.Level{}, Checksum: 12345}))
	}
	bad(1)
	groups, _ := g.r.due(g.nextID)
	if len(groups) != 1 {
		t.Fatalf("after the first bad snapshot, a resync at once: %+v", groups)
	}
	g.r.acked(groups[0].id, "book.X", groups[0].opts, false)
	bad(2)
	if groups, later := g.r.due(g.nextID); len(groups) != 0 || later.IsZero() {
		t.Fatalf("after the second, a resync later: %+v %v", groups, later)
	}
	ch, _ := proto.ParseChannel("book.X")
	id := g.nextID()
	g.r.add("book.X", ch, subOptions{depth: 25}, id)
	g.r.refused(id, true, &ServerError{Code: proto.CodeRateLimited, Channel: "book.X"})
	g.now = g.now.Add(time.Minute)
	if groups, later := g.r.due(g.nextID); len(groups) != 1 {
		t.Fatalf("a minute later: no resync owed (%+v, %v); state %v", groups, later, g.r.chans["book.X"].compute())
	}
}
