package gateway

import (
	"fmt"
	"hash/maphash"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tickgate/tickgate/feed"
	"github.com/tickgate/tickgate/proto"
)

// Source is the feed the hub draws channels from: interest-counted NATS
// subscriptions (feed.Source in production).
type Source interface {
	// AcquireAsync registers interest in ch without waiting for NATS: the
	// Pending is done once the node receives the channel, or failed. A
	// channel that needs NATS while the node has no connection is refused
	// at once (feed.ErrUnavailable). The Pending's Cancel gives the
	// interest back, whatever became of it; only the holder's own
	// interest, never a newer one of the same channel.
	AcquireAsync(ch proto.Channel, h feed.Handler) (*feed.Pending, error)
	// Connected reports whether the node's NATS connection is up.
	Connected() bool
}

const hubShards = 64

// hub maps channels to their state and local subscribers. It is sharded so
// that subscribes on different channels do not contend; each channel has
// its own mutex, held while a feed message is applied and fanned out and
// while a subscriber joins, so a joiner's snapshot and the updates after it
// form one unbroken chain. Snapshots are encoded outside every lock (see
// join.go).
type hub struct {
	src        Source           // Static after construction.
	history    History          // Static after construction: nil without a history stream.
	staleAfter time.Duration    // Static after construction: feed_silent after this; <= 0: never.
	codecs     *codecSet        // Static after construction.
	historyLen int              // Static after construction.
	candleBars int              // Static after construction: bars a candle channel keeps.
	restLinger time.Duration    // Static after construction: how long a channel stays held after a REST snapshot.
	rest       restHolds        // the channels held for REST snapshots (rest.go)
	log        *slog.Logger     // Static after construction.
	metrics    *Metrics         // Static after construction.
	now        func() time.Time // Static after construction.
	seed       maphash.Seed     // Static after construction.
	wakes      *wakes           // Safe for concurrent use: writers' wake-ups held during a feed burst.
	burstIDs   atomic.Uint32    // the ids of the dispatchers' kept locks (burstLocks) given out so far
	shards     [hubShards]hubShard
}

type hubShard struct {
	mu sync.RWMutex
	m  map[proto.Channel]*hubEntry // Guarded by mu.
}

// newHub returns the hub of a node whose subscribers' subscription slots
// admit counts (REST holds take them, rest.go).
func newHub(src Source, codecs *codecSet, cfg *Config, admit *admission) *hub {
	h := &hub{src: src, codecs: codecs, historyLen: cfg.HistoryLen, candleBars: cfg.CandleBars, restLinger: cfg.RESTLinger, log: cfg.Logger, metrics: cfg.Metrics, now: cfg.Now,
		staleAfter: cfg.StaleAfter, history: cfg.History, seed: maphash.MakeSeed(), wakes: newWakes(cfg.Now), rest: restHolds{slots: admit}}
	if b, ok := src.(interface{ Backlogged() bool }); ok {
		h.wakes.backlog = b.Backlogged // feed.Source: whether feed bytes wait unread (inline.go)
	}
	for i := range h.shards {
		h.shards[i].m = make(map[proto.Channel]*hubEntry)
	}
	return h
}

func (h *hub) shard(ch proto.Channel) *hubShard {
	var mh maphash.Hash
	mh.SetSeed(h.seed)
	mh.WriteByte(byte(ch.Kind))
	mh.WriteString(ch.Param)
	mh.WriteByte('.')
	mh.WriteString(ch.Symbol)
	return &h.shards[mh.Sum64()%hubShards]
}

// hubEntry is the hub's entry for one channel: its state and its
// subscribers on this node.
type hubEntry struct {
	ch   proto.Channel  // Static after construction.
	spec proto.KindSpec // Static after construction: ch.Kind's declaration, which decides how events are delivered.
	name string         // Static after construction: ch.String().

	refs int // Guarded by the shard's mu: subscriptions holding this entry.
	// gone is set, under the shard's mu, when the last reference went and
	// the entry left the hub: a later entry may hold the channel.
	gone atomic.Bool
	// fed is the entry's feed handler (hub.entryFeed bound to it), which
	// the entry's NATS interest calls. Static after construction.
	fed feed.Handler

	mu    sync.Mutex
	state feed.State      // Guarded by mu.
	subs  []*subscription // Guarded by mu.
	// snap is the state's snapshot as of the newest feed message, shared
	// by every subscriber of the default view that starts from it; nil
	// until one is wanted again after a feed message changed the state.
	// views holds the same for subscribers of other views (a candle's
	// bars). Guarded by mu; a snapshot itself is immutable but for its
	// lazily encoded frames.
	snap  *snapshot
	views map[feed.SnapshotOptions]*snapshot
	// changed, when not nil, is closed (and cleared) the next time the
	// state moves on: REST requests wait on it for data. Guarded by mu.
	changed chan struct{}

	// Status (status.go), all guarded by mu: what subscribers are told
	// (nil: live), whether NATS was lost since the last arrival, and when
	// the last feed message or publisher heartbeat arrived.
	status       *status
	disconnected bool
	arrived      time.Time
	warming      bool      // a start from the history stream is under way (history.go)
	filled       time.Time // when a gap was last filled from the history stream (history.go)
	// fromStream: the newest seq a subscriber was resumed to from the
	// history stream while the node had seen nothing live of the channel;
	// its first live trade is joined to it by a fill (history.go); zero
	// again once the node has seen the channel live.
	fromStream uint64
	stateNow   atomic.Uint32 // status's chanState, for counting without mu

	// For inspection (inspect.go), read without mu: written under mu
	// (subscribers, the state's newest emitted seq and history depth, feed
	// messages applied), and by the hub's sweep (rate).
	subscribers atomic.Int32
	lastSeq     atomic.Uint64
	historyLen  atomic.Int32
	received    atomic.Uint64
	rate        atomic.Uint64 // math.Float64bits of feed messages per second over the sweep's last second
	rateFrom    uint64        // Owned by the hub's sweep: received when it last measured the rate.
}

// acquire returns the channel's entry, creating it on first use, and
// registers NATS interest without waiting: the node receives the channel
// once the Pending is done without error. The caller gives both back with
// abandon, when it is done with them or when the Pending failed.
func (h *hub) acquire(ch proto.Channel) (*hubEntry, *feed.Pending, error) {
	sh := h.shard(ch)
	sh.mu.Lock()
	e := sh.m[ch]
	if e == nil {
		e = &hubEntry{ch: ch, spec: ch.Kind.Spec(), name: ch.String(), arrived: h.now(),
			state: feed.NewState(ch, h.historyLen, feed.CandleBars(h.candleBars))}
		e.fed = func(_ proto.Channel, m *feed.Message) { h.entryFeed(e, m) }
		sh.m[ch] = e
		h.metrics.channelsByState[stateLive].Inc()
	}
	e.refs++
	sh.mu.Unlock()
	p, err := h.src.AcquireAsync(e.ch, e.fed) // the entry's name: no hold keeps the caller's
	if err != nil {
		h.unref(e)
		return nil, nil, err
	}
	return e, p, nil
}

// abandon undoes one acquire whatever became of its Pending.
func (h *hub) abandon(e *hubEntry, p *feed.Pending) {
	p.Cancel()
	h.unref(e)
}

// unref removes one reference; the last removes the entry and its state.
func (h *hub) unref(e *hubEntry) {
	sh := h.shard(e.ch)
	sh.mu.Lock()
	e.refs--
	if e.refs == 0 {
		e.gone.Store(true)
		if sh.m[e.ch] == e {
			delete(sh.m, e.ch)
			h.metrics.channelsByState[e.stateNow.Load()].Dec()
		}
	}
	sh.mu.Unlock()
}

func (h *hub) lookup(ch proto.Channel) *hubEntry {
	sh := h.shard(ch)
	sh.mu.RLock()
	e := sh.m[ch]
	sh.mu.RUnlock()
	return e
}

// entryFeed applies one feed message to e's state and fans out whatever
// it means for subscribers. It is e's NATS interest's handler
// (hubEntry.fed), so it finds the channel's entry without a lookup as
// long as e is in the hub: an interest lives only while subscriptions
// hold it, and each gives its hold back before it lets its entry go
// (abandon). Once e is gone (a message in flight when the last subscriber
// left) the channel is looked up (feedMessage). It runs on the goroutine
// of the channel's feed dispatcher, shared with other channels
// (feed/dispatch.go), and never waits there: a gap fill from the history
// stream pauses the channel and runs on its own (fillGap).
func (h *hub) entryFeed(e *hubEntry, m *feed.Message) {
	bl := h.burstOf(m)
	if e.gone.Load() {
		h.feedMessage(e.ch, m, bl)
		return
	}
	h.feedEntry(e, m, bl)
}

// feedMessage applies m to the channel's entry, looked up by its name,
// with the kept outbox locks of the dispatcher that handed m over, bl
// (burst.go; nil: none).
func (h *hub) feedMessage(ch proto.Channel, m *feed.Message, bl *burstLocks) {
	e := h.lookup(ch)
	if e == nil {
		// The last subscriber left while the message was in flight.
		bl.release()
		h.wakes.pass(m.Behind, m.More)
		return
	}
	h.feedEntry(e, m, bl)
}

// feedEntry is feedMessage once the channel's entry is found.
func (h *hub) feedEntry(e *hubEntry, m *feed.Message, bl *burstLocks) {
	if h.history != nil && e.spec.Events && h.fillGap(e, m, bl) {
		return // m applied after events the node never had, from the stream
	}
	h.process(e, m, bl)
}

// process applies one feed message to e and delivers what it means. bl
// is the calling dispatcher's kept outbox locks (burst.go), nil when the
// caller is not a dispatcher handing m over: its fan-out keeps the locks
// it takes when another message follows on the same goroutine, and lets
// all of them go otherwise.
func (h *hub) process(e *hubEntry, m *feed.Message, bl *burstLocks) {
	ch := e.ch
	var starts []restart
	if bl != nil {
		bl.keep = m.More && !m.Behind
		if bl.keeping() {
			bl.step() // a message that delivers nothing must let a waiter in too
		}
	}
	h.wakes.begin()
	out := h.apply(e, m, &starts, bl)
	if bl != nil && (!bl.keep || len(starts) > 0) {
		// The writer rounds run inline at the burst's end (wakes.end)
		// and fillHead take outbox locks.
		bl.release()
	}
	h.wakes.end(m.Behind, m.More)
	// Subscribers whose chain starts again from a snapshot get it encoded
	// here, once per codec, after the channel's lock is released.
	for _, r := range starts {
		r.s.fillHead(h.codecs, r.plan)
	}
	h.metrics.feedMessages.Inc()
	h.metrics.feedOutcome(out)
	switch out {
	case feed.OutcomeApplied, feed.OutcomeSnapshot, feed.OutcomeSnapshotUnchanged:
	case feed.OutcomeGap:
		h.metrics.feedGapsByKind[ch.Kind].Inc()
		h.log.Debug("feed gap", "channel", e.name, "seq", m.Seq)
	default:
		h.log.Debug("feed message not applied as is", "channel", e.name, "seq", m.Seq, "outcome", out.String())
	}
}

// restart is a subscriber whose chain restarts from a snapshot, with the
// head planned for it.
type restart struct {
	s    *subscription
	plan *headPlan
}

// apply runs one feed message through the channel under its lock. It adds
// to starts the subscribers whose chain restarts from a snapshot, for the
// caller to encode outside the lock (also those planned before a panic:
// an unfilled plan would stop the subscription for good). A panic here (a
// bug) costs this message, not the process: it runs on a feed dispatcher's
// goroutine.
func (h *hub) apply(e *hubEntry, m *feed.Message, starts *[]restart, bl *burstLocks) (out feed.Outcome) {
	bl.lockEntry(e)
	defer e.mu.Unlock()
	defer func() {
		if v := recover(); v != nil {
			h.log.Error("panic applying a feed message", "channel", e.name, "seq", m.Seq, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			out = feed.OutcomeInvalid
		}
	}()
	ev, emit, out := e.state.Apply(m)
	if out != feed.OutcomeDuplicate {
		e.dropSnapshots() // the state moved on
	}
	e.received.Add(1)
	e.lastSeq.Store(e.state.LastSeq())
	e.historyLen.Store(int32(e.state.HistoryLen()))
	if emit {
		e.fanout(h, &ev, starts, bl)
	}
	// Something arrived: the channel is back (after a NATS loss) and not
	// silent; a book may have lost or regained its sync.
	now := h.now()
	e.arrived, e.disconnected = now, false
	e.updateStatus(h, now, bl)
	return out
}

// encoded caches one event's frames, per codec and form, so that every
// subscriber in step shares the same bytes: the update, per view that
// shapes updates (a book's depth: one frame per channel, depth and codec),
// and the gap. "Codec" ci here is a frame variant (deflate.go): a codec,
// plain or deflated.
type encoded struct {
	update [numVariants][]byte
	gap    [numVariants][]byte
	views  []viewFrames
}

// viewFrames are one view's update frames of an event.
type viewFrames struct {
	view   feed.SnapshotOptions
	update [numVariants][]byte
}

// viewFrame returns the frame of u, the event's update for one view, in
// codec ci, encoding it once.
func (enc *encoded) viewFrame(cs *codecSet, ci int, name string, ev *feed.Event, u *feed.ViewUpdate) []byte {
	i := 0
	for i < len(enc.views) && enc.views[i].view != u.View {
		i++
	}
	if i == len(enc.views) {
		enc.views = append(enc.views, viewFrames{view: u.View})
	}
	f := &enc.views[i].update
	if f[ci] == nil {
		cs.variantFrame(f, ci, func(ci int) []byte {
			return cs.frame(ci, proto.Update{Type: proto.TypeUpdate, Channel: name, Seq: ev.Seq, Prev: u.Prev, N: u.N, Data: u.Data})
		})
	}
	return f[ci]
}

// prepare encodes the shared frames of ev in codec ci that a subscriber
// may queue, before the caller takes that subscriber's outbox lock: no
// frame is encoded under a per-connection lock, so a writer taking its
// batch never waits for an encoding. The update frame is encoded only when
// the subscriber likely queues it as is (likely: a trade, or a ticker or
// book whose writer is not busy, so it does not fold); one that turns out
// to need it when it is not there gets the update encoded by its own
// writer (pendingUpdate).
func (enc *encoded) prepare(cs *codecSet, ci int, name string, ev *feed.Event, likely bool) {
	if ev.GapTo != 0 || likely && enc.update[ci] == nil {
		enc.encode(cs, ci, name, ev, likely)
	}
}

// encode is prepare past its inlined check, which spares the common
// delivery (the update frame already there, no gap) a call: it encodes
// what ev's frames in codec ci still lack (gapFrame and updateFrame
// encode each once).
func (enc *encoded) encode(cs *codecSet, ci int, name string, ev *feed.Event, likely bool) {
	if ev.GapTo != 0 {
		enc.gapFrame(cs, ci, name, ev)
	}
	if likely && !ev.Snapshot && ev.Data != nil {
		enc.updateFrame(cs, ci, name, ev)
	}
}

func (enc *encoded) updateFrame(cs *codecSet, ci int, name string, ev *feed.Event) []byte {
	if enc.update[ci] == nil {
		cs.variantFrame(&enc.update, ci, func(ci int) []byte {
			return cs.frame(ci, proto.Update{Type: proto.TypeUpdate, Channel: name, Seq: ev.Seq, Prev: ev.Prev, N: 1, Data: ev.Data})
		})
	}
	return enc.update[ci]
}

func (enc *encoded) gapFrame(cs *codecSet, ci int, name string, ev *feed.Event) []byte {
	if enc.gap[ci] == nil {
		cs.variantFrame(&enc.gap, ci, func(ci int) []byte {
			return cs.frame(ci, proto.Gap{Type: proto.TypeGap, Channel: name, From: ev.GapFrom, To: ev.GapTo})
		})
	}
	return enc.gap[ci]
}

// fanout queues ev to every subscriber and adds to starts those whose
// chain restarts from a snapshot (see deliver). bl, when not nil, is the
// dispatcher's kept outbox locks (burst.go). Called with e.mu held.
func (e *hubEntry) fanout(h *hub, ev *feed.Event, starts *[]restart, bl *burstLocks) {
	var enc encoded
	// Reach every subscriber's outbox and both of the subscription's lines
	// that deliver reads (layout_test.go) first: the loads of this loop do
	// not wait on one another, so the CPU has many in flight, while
	// deliver's (subscription, connection, outbox) follow one another and,
	// on a busy node, each would wait for memory on its own. Atomic loads,
	// which the compiler keeps though their values go unused.
	for _, s := range e.subs {
		s.c.out.busy.Load()
		s.status.Load()
	}
	clk := fanClock{clock: h.now}
	now := clk.now
	for _, s := range e.subs {
		if bl.keeping() {
			bl.step()
		}
		reason, plan := e.deliver(h, s, ev, &enc, now, bl)
		if reason != "" {
			bl.release() // the eviction takes the lock, and may wait for it
			s.c.evict(reason)
		}
		if plan != nil {
			*starts = append(*starts, restart{s, plan})
		}
	}
}

// snapshotFor returns the snapshot a subscriber of view v starts from at
// ev, an event the state has applied: for the default view, the one ev
// stands for when it is a snapshot event or its data is the whole state
// (eventSnapshot, no copy), else the state's (currentSnapshot). Nil when
// the state has none. Called with e.mu held.
func (e *hubEntry) snapshotFor(ev *feed.Event, v feed.SnapshotOptions) *snapshot {
	if v == (feed.SnapshotOptions{}) && (ev.Snapshot || e.spec.WholeState) {
		return e.eventSnapshot(ev)
	}
	return e.currentSnapshot(v)
}

// eventSnapshot returns the snapshot that ev, a snapshot event or an
// event of a kind whose data is the whole state (ticker), stands for, and
// caches it for joiners: the state's snapshot is that same data. Called
// with e.mu held.
func (e *hubEntry) eventSnapshot(ev *feed.Event) *snapshot {
	if sn := e.snap; sn != nil && sn.seq == ev.Seq {
		return sn
	}
	sn := &snapshot{seq: ev.Seq, data: ev.Data, channel: e.name}
	if ev.Snapshot || e.spec.WholeState {
		e.snap = sn
	}
	return sn
}

// deliver queues ev to one subscriber in the form its place in the chain
// needs: the shared frame when it is in step and its writer is free, a
// fold into what is pending when its writer is busy. It returns an
// eviction reason when the subscriber cannot take it, and the plan of the
// snapshot its chain restarts from, which the caller must encode
// (fillHead) once the lock is released. now is the fan-out's clock
// (fanClock). It takes the subscriber's outbox lock, or finds it kept by
// bl (which may be nil), and keeps it in bl when bl keeps locks or is
// to: the caller lets it go (burstLocks). Called with e.mu held.
func (e *hubEntry) deliver(h *hub, s *subscription, ev *feed.Event, enc *encoded, now func() time.Time, bl *burstLocks) (evict string, start *headPlan) {
	o := s.c.out
	ci := s.c.variant
	// Events that are never merged (trades, candle bars) are queued as
	// they are; others only while the writer is not busy. A depth's
	// subscriber takes its depth's frame, shared by the subscribers of
	// that depth, never the whole event's.
	likely := e.spec.Events || !o.busy.Load()
	var (
		view   feed.ViewUpdate // a depth subscriber's part of ev, looked up once
		viewOK bool
	)
	if s.shapes {
		view, viewOK = ev.View(s.view)
		if likely && viewOK && view.Data != nil && !ev.Snapshot && !s.needSnapshot {
			enc.viewFrame(h.codecs, ci, e.name, ev, &view)
		}
		likely = false
	}
	enc.prepare(h.codecs, ci, e.name, ev, likely)
	switch {
	case bl.holds(o):
	case bl != nil && (bl.keep || bl.keeping()):
		bl.lock(o) // never waits while keeping others
	default:
		o.lock()
		defer o.mu.Unlock()
	}
	if o.closing != nil || s.dead {
		return "", nil
	}
	switch {
	case ev.Snapshot || s.needSnapshot:
		// A book snapshot event, or any event for a subscriber still
		// waiting for its snapshot (a book that made a joiner wait was
		// unsynced: its next event is a snapshot).
		// On an event channel (recent trades, candle bars) the feed
		// messages the node never had are reported to every subscriber,
		// one waiting for its snapshot too: after the snapshot, which
		// comes first, and before the next update; those an event without
		// a snapshot reported (a publisher heartbeat ahead of the node)
		// are kept until then.
		sn := e.snapshotFor(ev, s.view)
		if sn == nil {
			if ev.Restart {
				s.waitGap = nil // the publisher's older run
			}
			if e.spec.Events && ev.GapTo > 0 {
				if w := s.waitGap; w != nil {
					w[0], w[1] = min(w[0], ev.GapFrom), max(w[1], ev.GapTo)
				} else {
					s.waitGap = &[2]uint64{ev.GapFrom, ev.GapTo}
				}
			}
			return "", nil // still nothing to start from
		}
		var gap []byte
		if e.spec.Events { // a waiter has no checkFirst (join): the event's own gap, with what was kept
			from, to := ev.GapFrom, ev.GapTo
			if w := s.waitGap; w != nil && !ev.Restart && w[0] < sn.seq {
				// Kept from this run of the publisher (a restart makes the
				// older run's seqs moot), as far as it lies before the
				// snapshot.
				wFrom, wTo := w[0], min(w[1], sn.seq-1)
				if to == 0 {
					from, to = wFrom, wTo
				} else {
					from, to = min(from, wFrom), max(to, wTo)
				}
			}
			s.waitGap = nil
			gap = e.gapRange(h, s, ev, enc, from, to)
		}
		start = s.planSnapshot(sn, ev.TS)
		if gap != nil && !s.addKept(pending{frame: gap}) {
			return evictTradeOverflow, nil
		}
	case ev.Seq <= s.last && !ev.Restart:
		return "", nil // already covered by what the subscriber holds
	case e.spec.Pending == proto.PendingKeep || e.spec.Pending == proto.PendingRevise:
		// Never dropped or merged (trades, closed bars): queued in order,
		// bounded.
		if f := e.gapFor(h, s, ev, enc); f != nil && !s.addKept(pending{frame: f}) {
			return evictTradeOverflow, nil
		}
		if ev.Data == nil {
			break // a gap only (a publisher heartbeat ahead of the node): no update
		}
		if e.spec.Pending == proto.PendingRevise && !s.unmerged(o.writing, now) && s.revise(ev) {
			// A busy connection: the pending open bar is replaced.
			h.metrics.coalescedByKind[e.ch.Kind].Inc()
			s.last = ev.Seq
			break
		}
		if e.spec.Pending == proto.PendingKeep {
			// A trade in step goes into the FIFO as a ticker's frame does,
			// when nothing of s waits before it.
			if f := enc.sharedUpdate(ci, s, ev); f != nil && s.queueKept(f, ev.TS, now) {
				s.last = ev.Seq
				return "", nil // nothing of s pending: ready has nothing to do
			}
		}
		p := pendingUpdate(ci, e.name, s, ev, enc)
		p.data, p.prev = ev.Data, s.last
		if !s.addKept(p) {
			return evictTradeOverflow, nil
		}
		s.last = ev.Seq
	case s.shapes:
		// A book's depth: what the event changed within it, or nothing.
		u := &view
		switch {
		case !viewOK:
			// Not tracked when the event was emitted: start again.
			if sn := e.currentSnapshot(s.view); sn != nil {
				start = s.planSnapshot(sn, ev.TS)
			}
		case u.Data == nil:
			return "", nil // nothing changed within the subscriber's depth
		case s.unmerged(o.writing, now):
			p := pending{ts: ev.TS}
			if s.last == u.Prev {
				p.frame = enc.viewFrame(h.codecs, ci, e.name, ev, u)
			} else {
				p.upd = proto.Update{Type: proto.TypeUpdate, Channel: e.name, Seq: ev.Seq, Prev: s.last, N: uint32(min(ev.Seq-s.last, 1<<32-1)), Data: u.Data}
			}
			o.queueUpdate(s, p, now)
			s.last = ev.Seq
		default:
			start = e.fold(h, s, ev, u.Data, uint32(min(ev.Seq-s.last, 1<<32-1)))
		}
	case s.unmerged(o.writing, now):
		if f := enc.sharedUpdate(ci, s, ev); f != nil {
			// The common case, without building a pending. Straight into
			// the FIFO, nothing of s is pending, so ready has nothing to
			// do (needSnapshot is false past the first case).
			if o.queueFrame(s, f, ev.TS, now) {
				s.last = ev.Seq
				return "", nil
			}
		} else {
			o.queueUpdate(s, pendingUpdate(ci, e.name, s, ev, enc), now)
		}
		s.last = ev.Seq
	default:
		start = e.fold(h, s, ev, ev.Data, 1)
	}
	s.needSnapshot = false
	o.ready(s, now)
	return "", start
}

// fold folds data, what ev is for s, n feed messages, into the update s
// has pending while its writer is busy (subscription.fold), and plans a
// fresh snapshot instead when the merged delta outgrew one. Called with
// e.mu and c.out.mu held.
func (e *hubEntry) fold(h *hub, s *subscription, ev *feed.Event, data any, n uint32) (start *headPlan) {
	if s.fold(e.spec.Pending, ev.Seq, ev.TS, data) {
		h.metrics.coalescedByKind[e.ch.Kind].Inc()
	}
	s.group.n += n - 1
	s.last = ev.Seq
	if g := s.group; g.bids.len()+g.asks.len() > mergedLevels {
		// Behind for so long that the merged delta outgrows a fresh
		// book: send the book instead.
		if sn := e.currentSnapshot(s.view); sn != nil {
			start = s.planSnapshot(sn, 0)
		}
	}
	return start
}

// gapFor is the gap message s gets before the trade event ev, or nil: the
// event's gap as far as s does not hold those seqs already (it may have
// them from the history stream), and for the first live trade after a
// resume from the stream, any seqs between the resume and it, which the
// node's own state may never have seen. Called with e.mu and c.out.mu
// held.
func (e *hubEntry) gapFor(h *hub, s *subscription, ev *feed.Event, enc *encoded) []byte {
	from, to := ev.GapFrom, ev.GapTo
	if s.checkFirst && ev.Data != nil {
		s.checkFirst = false
		if ev.Seq > s.last+1 {
			from, to = s.last+1, ev.Seq-1
		}
	}
	return e.gapRange(h, s, ev, enc, from, to)
}

// gapRange is the gap message naming the seqs from..to that s does not
// hold already, or nil when there are none: ev's shared gap frame when
// that is exactly ev's own gap. Called with e.mu and c.out.mu held.
func (e *hubEntry) gapRange(h *hub, s *subscription, ev *feed.Event, enc *encoded, from, to uint64) []byte {
	switch {
	case to == 0 || to <= s.last || from > to:
		return nil
	case from == ev.GapFrom && to == ev.GapTo && from > s.last:
		return enc.gapFrame(h.codecs, s.c.variant, e.name, ev)
	}
	return h.codecs.frame(s.c.variant, proto.Gap{Type: proto.TypeGap, Channel: e.name, From: max(from, s.last+1), To: to})
}

// sharedUpdate is ev's shared update frame in codec variant ci when s is
// in step with the node's chain (its last is ev's prev) and the frame was
// prepared (nothing is encoded here, under s's outbox lock); nil else.
func (enc *encoded) sharedUpdate(ci int, s *subscription, ev *feed.Event) []byte {
	if s.last != ev.Prev {
		return nil
	}
	return enc.update[ci]
}

// pendingUpdate is ev as an update for s: the shared frame when there is
// one for s (sharedUpdate), else an update the writer encodes with s's
// own prev.
func pendingUpdate(ci int, name string, s *subscription, ev *feed.Event, enc *encoded) pending {
	if f := enc.sharedUpdate(ci, s, ev); f != nil {
		return pending{frame: f, ts: ev.TS}
	}
	return pending{ts: ev.TS, upd: proto.Update{Type: proto.TypeUpdate, Channel: name, Seq: ev.Seq, Prev: s.last, N: 1, Data: ev.Data}}
}

// ungate lets what is pending, and later events, flow to the writer.
func (s *subscription) ungate(now func() time.Time) {
	o := s.c.out
	o.lock()
	defer o.mu.Unlock()
	s.gated = false
	o.ready(s, now)
}

// leave removes s from the channel and drops what it has pending.
func (e *hubEntry) leave(s *subscription) {
	e.mu.Lock()
	if s.idx >= 0 {
		e.state.Track(s.view, false)
		last := len(e.subs) - 1
		e.subs[s.idx] = e.subs[last]
		e.subs[s.idx].idx = s.idx
		e.subs[last] = nil
		e.subs = e.subs[:last]
		s.idx = -1
		e.subscribers.Store(int32(len(e.subs)))
	}
	e.mu.Unlock()
	o := s.c.out
	o.lock()
	s.dead = true
	s.reset()
	o.mu.Unlock()
}
