package client

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/tickgate/tickgate/proto"
)

// chanState is what the client holds for one subscribed channel, and the
// rules of docs/protocol.md §5 that keep it right: the prev chain, the
// book and its checksum, re-subscribing on a gap. Every field is guarded
// by the Client's mu (the router's owner).
type chanState struct {
	name string        // Static.
	ch   proto.Channel // Static.
	opts subOptions    // the subscription's options

	state ChannelState // as last reported
	last  uint64       // the seq of the last message applied, 0 for none
	// held: the client holds state it knows to be right as of last. For a
	// ticker or book, from its snapshot (or first update without one); for
	// a trade channel from the subscribe on: a chain of events needs no
	// state to start.
	held bool
	// bookOK: book holds the verified book as of last (book channels).
	bookOK bool
	// broken: the client saw a gap or mismatch and waits for the node's
	// snapshot or resume; updates of the old chain are ignored.
	broken bool
	book   *Book          // book channels: the verified book
	ticker *proto.Ticker  // ticker channels: the latest ticker; immutable
	bars   []proto.Candle // candle channels: the newest bars, oldest first

	server  string // the node's last status ("stale", "resyncing"; "" for live)
	offline bool   // not receiving: the connection is down or the node has not acked the re-subscribe yet

	// awaitAck is the id of the subscribe whose ack starts the channel's
	// new chain; messages before it belong to the old chain and are
	// ignored. 0 when none is in flight.
	awaitAck int64
	fresh    bool // never acked yet: a user's Subscribe in flight owns it
	// want: a re-subscribe is due (a gap, a reconnect, a retry), not before
	// retryAt.
	want       bool
	retryAt    time.Time
	retries    int    // re-subscribes refused in a row, for the backoff
	resumeFrom uint64 // the since of the re-subscribe in flight, 0 for none
	// bad counts the resyncs in a row for state the client could not use
	// (a checksum mismatch, a malformed message) with no good snapshot
	// between: the second and later wait (retryBackoff), so that a node
	// that keeps sending a book the client rejects is not asked again
	// thousands of times a second.
	bad int
}

func newChanState(name string, ch proto.Channel, opts subOptions) *chanState {
	s := &chanState{name: name, ch: ch, opts: opts, fresh: true}
	if ch.Kind == proto.KindBook {
		s.book = NewBook()
	}
	return s
}

// wantsSnapshot reports whether the channel's chain starts with a
// snapshot.
func (s *chanState) wantsSnapshot() bool { return s.ch.Kind.HasSnapshot() && !s.opts.noSnapshot }

// since is the seq the client would resume from: the last seq of state it
// holds and knows right, 0 for none.
func (s *chanState) since() uint64 {
	if !s.held || s.ch.Kind == proto.KindBook && s.wantsSnapshot() && !s.bookOK {
		return 0
	}
	return s.last
}

// compute returns the channel's state from its flags.
func (s *chanState) compute() ChannelState {
	switch {
	case s.broken || !s.held:
		return StateResyncing
	case s.offline || s.server == "stale":
		return StateStale
	case s.server == "resyncing":
		return StateResyncing
	}
	return StateLive
}

// bookData is what a book event changes in the user's copy of the book:
// a reset to the given levels, then delta levels in order.
type bookData struct {
	reset      bool
	bids, asks []proto.Level // the reset's levels
	dbids      []proto.Level // delta levels, in order
	dasks      []proto.Level
}

// sink receives the events the router produces (the client's event queue).
type sink interface {
	// push queues ev for the handler; bd carries book data. s.book is the
	// verified book after ev, for a sink that prefers a copy of it.
	push(s *chanState, ev Event, bd *bookData)
	// drop forgets a channel's pending events.
	drop(name string)
}

// router keeps the channels and turns server messages into state and
// events. It is not safe for concurrent use: its owner serialises calls
// (the Client under its mu). It never writes to the socket: a channel that
// needs a re-subscribe is marked want and kick is called.
type router struct {
	chans map[string]*chanState
	sink  sink
	stats *counters
	kick  func() // a re-subscribe is due; must not block
	now   func() time.Time

	batch []queued // events of the message being handled
}

type queued struct {
	ev Event
	bd *bookData
}

func newRouter(sk sink, stats *counters, kick func(), now func() time.Time) *router {
	return &router{chans: map[string]*chanState{}, sink: sk, stats: stats, kick: kick, now: now}
}

func (r *router) out(ev Event, bd *bookData) { r.batch = append(r.batch, queued{ev, bd}) }

// flush reports what handling a message did to s: its events, then a
// state change. Every event carries the state after the message.
func (r *router) flush(s *chanState, resumed bool) {
	st := s.compute()
	for i := range r.batch {
		q := &r.batch[i]
		q.ev.Channel, q.ev.State = s.name, st
		r.sink.push(s, q.ev, q.bd)
		q.bd = nil
	}
	r.batch = r.batch[:0]
	if st != s.state {
		s.state = st
		r.sink.push(s, Event{Type: EventState, Channel: s.name, State: st, Seq: s.last, Resumed: resumed && st == StateLive}, nil)
	}
}

// handle applies one data message: snapshot, update, gap or status.
func (r *router) handle(m *message) {
	s := r.chans[m.Channel]
	if s == nil || s.awaitAck != 0 {
		return // not subscribed, or the old chain of a re-subscribe in flight
	}
	r.stats.messages.Add(1)
	switch m.Type {
	case proto.TypeSnapshot:
		r.snapshot(s, m)
	case proto.TypeUpdate:
		r.update(s, m)
	case proto.TypeGap:
		if !s.ch.Kind.Spec().Events {
			break // only event channels (trades, candle bars) have them
		}
		r.stats.gaps.Add(1)
		r.out(Event{Type: EventGap, Seq: s.last, Gap: &Gap{Reason: GapNode, From: m.From, To: m.To}}, nil)
	case typeStatus:
		switch m.State {
		case "stale", "resyncing":
			s.server = m.State
		case "live":
			s.server = ""
		}
	}
	r.flush(s, false)
}

func (r *router) snapshot(s *chanState, m *message) {
	switch s.ch.Kind {
	case proto.KindBook:
		d, ok := dataOf[proto.Book](r, s, m)
		if !ok {
			return
		}
		if !validLevels(d.Bids) || !validLevels(d.Asks) {
			r.malformed(s, m)
			return
		}
		s.book.Reset(d.Bids, d.Asks)
		if s.book.Checksum() != d.Checksum {
			r.mismatch(s, m)
			return
		}
		s.bookOK = true
		r.out(Event{Type: EventSnapshot, Seq: m.Seq, Prev: m.Prev, N: 1, TS: d.TS},
			&bookData{reset: true, bids: d.Bids, asks: d.Asks})
	case proto.KindTicker:
		d, ok := dataOf[proto.Ticker](r, s, m)
		if !ok {
			return
		}
		s.ticker = d
		r.out(Event{Type: EventSnapshot, Seq: m.Seq, Prev: m.Prev, N: 1, Ticker: s.ticker, TS: d.TS}, nil)
	case proto.KindTrade:
		d, ok := dataOf[proto.TradeSnapshot](r, s, m)
		if !ok {
			return
		}
		r.out(Event{Type: EventSnapshot, Seq: m.Seq, Prev: m.Prev, N: 1, Trades: derefAll(d.Trades)}, nil)
	case proto.KindCandle:
		d, ok := dataOf[proto.CandleSnapshot](r, s, m)
		if !ok {
			return
		}
		bars := derefAll(d.Bars)
		for i := range bars {
			if !validBar(&bars[i]) || i > 0 && bars[i].Start <= bars[i-1].Start {
				r.malformed(s, m)
				return
			}
		}
		s.bars = append(s.bars[:0], bars...)
		var ts int64
		if n := len(bars); n > 0 {
			ts = bars[n-1].TS
		}
		r.out(Event{Type: EventSnapshot, Seq: m.Seq, Prev: m.Prev, N: 1, Bars: bars, TS: ts}, nil)
	default:
		return
	}
	// A snapshot replaces whatever the client held, at any time; it also
	// ends a resync the node announced.
	s.last, s.held, s.broken, s.bad = m.Seq, true, false, 0
	if s.server == "resyncing" {
		s.server = ""
	}
}

func (r *router) update(s *chanState, m *message) {
	if s.broken || !s.held {
		return // the old chain of a gap, or before the first snapshot
	}
	if m.Prev != s.last {
		r.stats.gaps.Add(1)
		g := &Gap{Reason: GapPrev}
		if m.Prev > s.last {
			g.To = m.Prev
			if s.last > 0 {
				g.From = s.last + 1
			}
		}
		if s.ch.Kind == proto.KindTrade {
			// No snapshot can bring trades back: report and go on.
			r.out(Event{Type: EventGap, Seq: s.last, Gap: g}, nil)
		} else {
			g.Resync = true
			r.out(Event{Type: EventGap, Seq: s.last, Gap: g}, nil)
			r.resync(s)
			return
		}
	}
	switch s.ch.Kind {
	case proto.KindBook:
		d, ok := dataOf[proto.Book](r, s, m)
		if !ok {
			return
		}
		if !validLevels(d.Bids) || !validLevels(d.Asks) {
			r.malformed(s, m)
			return
		}
		bd := &bookData{dbids: d.Bids, dasks: d.Asks}
		if s.bookOK {
			s.book.Update(d.Bids, d.Asks)
			if s.book.Checksum() != d.Checksum {
				r.mismatch(s, m)
				return
			}
		}
		r.out(Event{Type: EventUpdate, Seq: m.Seq, Prev: m.Prev, N: 1, TS: d.TS,
			Delta: &proto.Book{Bids: d.Bids, Asks: d.Asks, Checksum: d.Checksum, TS: d.TS}}, bd)
	case proto.KindTicker:
		d, ok := dataOf[proto.Ticker](r, s, m)
		if !ok {
			return
		}
		s.ticker = d
		r.out(Event{Type: EventUpdate, Seq: m.Seq, Prev: m.Prev, N: 1, Ticker: s.ticker, TS: d.TS}, nil)
	case proto.KindTrade:
		d, ok := dataOf[proto.Trade](r, s, m)
		if !ok {
			return
		}
		r.out(Event{Type: EventUpdate, Seq: m.Seq, Prev: m.Prev, N: 1, Trade: d, TS: d.TS}, nil)
	case proto.KindCandle:
		bar, ok := dataOf[proto.Candle](r, s, m)
		if !ok {
			return
		}
		if !validBar(bar) {
			r.malformed(s, m)
			return
		}
		s.bars = applyBar(s.bars, *bar, s.opts.barLimit())
		r.out(Event{Type: EventUpdate, Seq: m.Seq, Prev: m.Prev, N: 1, Candle: bar, TS: bar.TS}, nil)
	default:
		return
	}
	s.last, s.bad = m.Seq, 0 // good state again: a later bad one resyncs at once
}

// validBar reports whether a bar is one the client can keep: decimal
// prices and volume, and a start.
func validBar(b *proto.Candle) bool {
	return b.Start > 0 && proto.ValidDecimal(b.Open) && proto.ValidDecimal(b.High) && proto.ValidDecimal(b.Low) &&
		proto.ValidDecimal(b.Close) && proto.ValidDecimal(b.Volume)
}

// applyBar puts bar into bars (oldest first): it replaces the bar with
// its start (the open bar revised, or closed) or follows the newest, and
// the oldest go beyond limit. A bar older than the newest that the client
// does not hold is ignored: the publisher sends bars in order.
func applyBar(bars []proto.Candle, bar proto.Candle, limit int) []proto.Candle {
	if n := len(bars); n > 0 {
		switch last := bars[n-1].Start; {
		case bar.Start == last:
			bars[n-1] = bar
			return bars
		case bar.Start < last:
			i, found := slices.BinarySearchFunc(bars, bar.Start, func(c proto.Candle, start int64) int { return cmp.Compare(c.Start, start) })
			if found {
				bars[i] = bar
			}
			return bars
		}
	}
	bars = append(bars, bar)
	if over := len(bars) - limit; over > 0 {
		bars = append(bars[:0], bars[over:]...)
	}
	return bars
}

// mismatch: the book after message m does not have m's checksum. The book
// is wrong: it is dropped, and the channel resyncs from a fresh snapshot.
func (r *router) mismatch(s *chanState, m *message) {
	r.stats.checksumFailures.Add(1)
	r.stats.gaps.Add(1)
	s.bookOK, s.held = false, false
	r.out(Event{Type: EventGap, Seq: m.Seq, Prev: m.Prev, Gap: &Gap{Reason: GapChecksum, Resync: true}}, nil)
	r.resyncBad(s)
}

// resyncBad is resync for state the client could not use: at once the
// first time, then with a backoff until a snapshot is good again.
func (r *router) resyncBad(s *chanState) {
	s.bad++
	s.broken = true
	var at time.Time
	if s.bad > 1 {
		at = r.now().Add(retryBackoff(s.bad - 1))
	}
	r.want(s, at)
}

// malformed: a message the client cannot use. A trade channel reports it
// and goes on; a state channel resyncs.
func (r *router) malformed(s *chanState, m *message) {
	r.stats.gaps.Add(1)
	g := &Gap{Reason: GapMalformed, From: m.Seq, To: m.Seq}
	if s.ch.Kind == proto.KindTrade {
		s.last = m.Seq
		r.out(Event{Type: EventGap, Seq: m.Seq, Prev: m.Prev, Gap: g}, nil)
		return
	}
	s.bookOK = false
	g.Resync = true
	r.out(Event{Type: EventGap, Seq: m.Seq, Prev: m.Prev, Gap: g}, nil)
	r.resyncBad(s)
}

// resync marks s broken and wants a re-subscribe. Stats count the
// outcome: resumed, or restarted (acked).
func (r *router) resync(s *chanState) {
	s.broken = true
	r.want(s, time.Time{})
}

func (r *router) want(s *chanState, at time.Time) {
	s.want, s.retryAt = true, at
	if r.kick != nil {
		r.kick()
	}
}

// add registers channel name for a user's subscribe with id: an existing
// channel keeps its state until the ack restarts it. It reports whether
// the channel existed.
func (r *router) add(name string, ch proto.Channel, opts subOptions, id int64) bool {
	s, ok := r.chans[name]
	if !ok {
		s = newChanState(name, ch, opts)
		r.chans[name] = s
	}
	s.awaitAck, s.want = id, false
	return ok
}

// remove forgets a channel (unsubscribe, or a refusal).
func (r *router) remove(name string) {
	delete(r.chans, name)
	r.sink.drop(name)
}

// acked handles the subscribed ack of command id for one channel with
// the options of that command. A channel whose awaitAck is another id was
// taken over by a newer command, whose ack decides.
func (r *router) acked(id int64, name string, opts subOptions, resumed bool) {
	s := r.chans[name]
	if s == nil || s.awaitAck != id {
		return
	}
	wasFresh := s.fresh
	s.awaitAck, s.fresh, s.offline, s.want, s.retries = 0, false, false, false, 0
	s.opts = opts
	// The node tells a status after the ack only when the channel is not
	// live there: one held from before (another node's, or this one's
	// before the re-subscribe) no longer stands.
	s.server = ""
	if resumed && s.since() > 0 {
		// The node replays from the seq the client holds: the chain and
		// the state go on.
		r.stats.resumed.Add(1)
		s.broken = false
		r.flush(s, true)
		return
	}
	if !wasFresh {
		r.stats.resyncs.Add(1)
	}
	// A new chain: a snapshot first (ticker, book), or an update with prev
	// 0 (trade, and without snapshot).
	s.broken = false
	s.last = 0
	s.held = !s.wantsSnapshot()
	s.bookOK = false
	r.flush(s, false)
}

// refused handles an error of command id about one channel. A user's
// command reports it to the user (the channel is dropped if the command
// created it, or keeps its old subscription); for the client's own
// re-subscribe, a passing condition is retried and any other ends the
// channel with an EventError.
func (r *router) refused(id int64, user bool, e *ServerError) {
	s := r.chans[e.Channel]
	if s == nil || s.awaitAck != id {
		return
	}
	s.awaitAck = 0
	if user {
		switch {
		case s.fresh:
			r.remove(s.name)
		case s.offline || s.broken:
			// Sent while the client's own re-subscribe was owed (after a
			// reconnect, where the node holds nothing of it on this
			// connection, or after a gap or a bad book, waiting for its
			// backoff): that re-subscribe, with the options the channel
			// had, is still owed.
			r.retryLater(s, e)
		}
		return
	}
	switch e.Code {
	case proto.CodeUnavailable, proto.CodeRateLimited:
		// The node cannot take it now: the data held is stale until a
		// retry succeeds.
		s.offline = true
		r.retryLater(s, e)
		r.flush(s, false)
	default:
		r.end(s, e)
	}
}

// retryLater wants s re-subscribed after e's retry_ms, or the backoff of
// its refusals in a row.
func (r *router) retryLater(s *chanState, e *ServerError) {
	s.retries++
	wait := e.RetryAfter
	if wait <= 0 {
		wait = retryBackoff(s.retries)
	}
	r.want(s, r.now().Add(wait))
}

// retryBackoff is the wait before the n-th retry of a refused re-subscribe
// that named no time: 1 s doubling to 30 s, with jitter.
func retryBackoff(n int) time.Duration {
	d := min(time.Second<<min(n-1, 5), 30*time.Second)
	return d/2 + rand.N(d/2+1)
}

// end drops a subscription the node ended or refused, and tells the user.
func (r *router) end(s *chanState, err error) {
	r.remove(s.name)
	r.sink.push(s, Event{Type: EventError, Channel: s.name, State: s.state, Seq: s.last, Err: err}, nil)
}

// unsolicited handles an error about a channel that answers no command in
// flight: a forbidden after a token refresh (the subscription has ended),
// or history_unavailable after the ack of a resume.
func (r *router) unsolicited(e *ServerError) {
	s := r.chans[e.Channel]
	if s == nil || s.awaitAck != 0 {
		return
	}
	switch e.Code {
	case proto.CodeForbidden:
		r.end(s, e)
	case proto.CodeHistoryUnavailable:
		if s.ch.Kind != proto.KindTrade || s.resumeFrom == 0 {
			return
		}
		r.stats.gaps.Add(1)
		r.out(Event{Type: EventGap, Gap: &Gap{Reason: GapHistory, From: s.resumeFrom + 1}}, nil)
		s.resumeFrom = 0
		r.flush(s, false)
	}
}

// disconnected marks every channel offline and due for a re-subscribe on
// the next connection. Channels a user's Subscribe still owns are left to
// it.
func (r *router) disconnected() {
	names := make([]string, 0, len(r.chans))
	for name := range r.chans {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		s := r.chans[name]
		if s.fresh {
			continue
		}
		s.offline, s.awaitAck = true, 0
		s.want, s.retryAt, s.retries = true, time.Time{}, 0
		r.flush(s, false)
	}
}

// resubscribe is one subscribe command the client owes: channels with the
// same options and, per channel, the seq to resume from.
type resubscribe struct {
	id       int64
	opts     subOptions
	channels []string
	since    map[string]uint64
}

// due returns the re-subscribes due now, marks their channels in flight
// under the ids that next assigns, and returns when the next retry falls
// due (zero for none).
func (r *router) due(next func() int64) ([]resubscribe, time.Time) {
	now := r.now()
	var (
		groups []resubscribe
		later  time.Time
	)
	names := make([]string, 0, len(r.chans))
	for name, s := range r.chans {
		if !s.want || s.awaitAck != 0 {
			continue
		}
		if s.retryAt.After(now) {
			if later.IsZero() || s.retryAt.Before(later) {
				later = s.retryAt
			}
			continue
		}
		names = append(names, name)
	}
	slices.Sort(names) // a stable order, for logs and tests
	ids := map[subOptions]int{}
	for _, name := range names {
		s := r.chans[name]
		i, ok := ids[s.opts]
		if !ok {
			i = len(groups)
			ids[s.opts] = i
			groups = append(groups, resubscribe{opts: s.opts})
		}
		g := &groups[i]
		g.channels = append(g.channels, name)
		s.resumeFrom = 0
		if since := s.since(); since > 0 {
			if g.since == nil {
				g.since = map[string]uint64{}
			}
			g.since[name] = since
			s.resumeFrom = since
		}
		s.want = false
	}
	for i := range groups {
		groups[i].id = next()
		for _, name := range groups[i].channels {
			r.chans[name].awaitAck = groups[i].id
		}
	}
	return groups, later
}
