package gateway

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/tickgate/tickgate/feed"
	"github.com/tickgate/tickgate/proto"
)

// How a subscriber's chain starts (a snapshot, or a replay for a resume)
// is decided under the channel's lock, where it must be, and encoded after
// every lock is released: a 5,000-level book takes milliseconds to encode,
// and a channel's lock held that long stalls its feed for everyone. Until
// its head is encoded, a subscription is skipped by its writer (headPlan),
// while the updates after the head queue up behind it as usual.
//
// A snapshot is encoded once per channel, seq and codec, and shared by
// every subscriber that starts from it: a thousand clients (re)subscribing
// to one book between two feed messages cost one copy of the book and one
// encoding per codec.

// snapshot is a channel's state as of one feed seq, with its frames per
// codec encoded on first use. Immutable but for the frames, which are
// safe for concurrent use.
type snapshot struct {
	seq     uint64 // Static after construction.
	data    any    // Static after construction: immutable (*proto.Ticker, *proto.Book, ...).
	channel string // Static after construction.
	frames  [numVariants]lazyFrame
	rest    lazyFrame   // the REST body, JSON (rest.go)
	restHit atomic.Bool // the REST body was asked for again after its encoding
}

// lazyFrame is one codec's frame of a snapshot, encoded once.
type lazyFrame struct {
	once sync.Once
	b    []byte
}

// frame returns the snapshot's frame in codec ci, encoding it on first
// use; concurrent callers wait for that one encoding.
func (sn *snapshot) frame(cs *codecSet, ci int) []byte {
	f := &sn.frames[ci]
	f.once.Do(func() {
		if plain := ci % numCodecs; plain != ci { // deflated from the plain frame, made once too
			f.b = cs.deflate(sn.frame(cs, plain))
			return
		}
		f.b = cs.frame(ci, proto.Snapshot{Type: proto.TypeSnapshot, Channel: sn.channel, Seq: sn.seq, Data: sn.data})
	})
	return f.b
}

// currentSnapshot returns the state's snapshot for view v, shared until
// the next feed message changes the state, or nil when the node has none
// (no data yet, a book waiting for a snapshot, or a trade channel).
// Called with e.mu held.
func (e *hubEntry) currentSnapshot(v feed.SnapshotOptions) *snapshot {
	if v == (feed.SnapshotOptions{}) {
		if e.snap == nil {
			e.snap = e.makeSnapshot(v)
		}
		return e.snap
	}
	if sn := e.views[v]; sn != nil {
		return sn
	}
	sn := e.makeSnapshot(v)
	if sn != nil {
		e.cacheView(v, sn)
	}
	return sn
}

// maxCachedViews bounds the views other than the default one whose
// snapshot a channel keeps between two feed messages. Every recent
// (1..1000) and bars value is a view of its own: unbounded, a client
// asking for each in turn on a quiet channel held a thousand snapshots
// of up to a thousand trades or bars. Beyond the bound a view's snapshot
// serves its own request only. The five book depths fit.
const maxCachedViews = 8

// cacheView keeps sn as view v's snapshot until the state moves on, while
// the channel keeps fewer than maxCachedViews. Called with e.mu held.
func (e *hubEntry) cacheView(v feed.SnapshotOptions, sn *snapshot) {
	if e.views == nil {
		e.views = make(map[feed.SnapshotOptions]*snapshot)
	}
	if _, ok := e.views[v]; ok || len(e.views) < maxCachedViews {
		e.views[v] = sn
	}
}

// makeSnapshot reads the state's snapshot for view v, or nil. Called
// with e.mu held.
func (e *hubEntry) makeSnapshot(v feed.SnapshotOptions) *snapshot {
	seq, data, ok := e.state.Snapshot(v)
	if !ok {
		return nil
	}
	return &snapshot{seq: seq, data: data, channel: e.name}
}

// wantsSnapshot reports whether a subscriber starts with a snapshot on a
// channel of the kind declared by spec, given its subscribe's snapshot
// option and its view of the channel: a kind with state, unless it asked
// for none, and a trade channel asked for recent trades (since wins over
// recent: a resume is looked at first).
func wantsSnapshot(spec proto.KindSpec, snapshot bool, view feed.SnapshotOptions) bool {
	return spec.State && snapshot || view.Recent > 0
}

// completedSnapshot is the state's snapshot for view v completed with
// older messages from the history stream (recent trades the memory was
// short of); it becomes the view's cached snapshot, better than the
// memory's until the state moves on. Called with e.mu held.
func (e *hubEntry) completedSnapshot(v feed.SnapshotOptions, older []*feed.Message) *snapshot {
	seq, data, ok := e.state.Snapshot(v, older...)
	if !ok {
		return nil
	}
	sn := &snapshot{seq: seq, data: data, channel: e.name}
	if v == (feed.SnapshotOptions{}) {
		e.snap = sn
		return sn
	}
	e.cacheView(v, sn)
	return sn
}

// dropSnapshots forgets the cached snapshots: the state moved on; and
// wakes whoever waits for it to (REST snapshots). Called with e.mu held.
func (e *hubEntry) dropSnapshots() {
	e.snap = nil
	clear(e.views)
	if e.changed != nil {
		close(e.changed)
		e.changed = nil
	}
}

// headPlan is what a subscription's chain starts with, decided under the
// locks and encoded outside them: a snapshot, or a replay of the updates
// after from (a resume).
type headPlan struct {
	snap   *snapshot
	ts     int64 // with snap: the feed event it went out for, for the delivery latency (0: none)
	replay []feed.Event
	from   uint64
}

// encode returns the plan's frames in codec ci: the shared snapshot frame,
// or the replay with this subscriber's own prev chain (and a gap message
// before each update that skipped feed seqs).
func (p *headPlan) encode(cs *codecSet, ci int, name string) []pending {
	if p.snap != nil {
		return []pending{{frame: p.snap.frame(cs, ci), ts: p.ts}}
	}
	out := make([]pending, 0, len(p.replay))
	prev := p.from
	for i := range p.replay {
		ev := &p.replay[i]
		if ev.GapTo != 0 {
			out = append(out, pending{frame: cs.frame(ci, proto.Gap{Type: proto.TypeGap, Channel: name, From: ev.GapFrom, To: ev.GapTo})})
		}
		if ev.Data == nil {
			continue // a gap alone: no update, and the chain does not move
		}
		// no ts: a replay is not a live delivery
		out = append(out, pending{frame: cs.frame(ci, proto.Update{Type: proto.TypeUpdate, Channel: name, Seq: ev.Seq, Prev: prev, N: 1, Data: ev.Data})})
		prev = ev.Seq
	}
	return out
}

// planSnapshot restarts s's chain at sn: everything pending is dropped and
// the writer skips s until fillHead put sn's frame first. It returns the
// plan, for the caller to fill. Called with c.out.mu held.
func (s *subscription) planSnapshot(sn *snapshot, ts int64) *headPlan {
	s.reset()
	s.plan = &headPlan{snap: sn, ts: ts}
	s.last = sn.seq
	return s.plan
}

// fillHead encodes p, the head its caller planned for s, outside every
// lock, and puts it first in what s has pending, unless p was replaced
// meanwhile (a newer snapshot, a re-subscribe, an unsubscribe): each plan
// is filled by the one who made it (a command, with its bytes counted
// against the connection's snapshot budget, or the feed goroutine). It
// returns the bytes it queued.
func (s *subscription) fillHead(cs *codecSet, p *headPlan) (queued int) {
	if p == nil {
		return 0
	}
	o := s.c.out
	o.lock()
	current := s.plan == p
	o.mu.Unlock()
	if !current {
		return 0
	}
	head := p.encode(cs, s.c.variant, s.entry.name)
	o.lock()
	defer o.mu.Unlock()
	if s.plan != p {
		return 0 // replaced: whatever replaced it is filled by its own caller
	}
	s.plan = nil
	s.head = append(s.head[:0], head...)
	for _, h := range head {
		queued += len(h.frame)
	}
	o.ready(s, s.c.srv.cfg.Now)
	return queued
}

// joinOptions say how a subscriber starts on a channel.
type joinOptions struct {
	snapshot bool                 // wants the current state first
	views    feed.SnapshotOptions // the subscribe's options, for every kind
	view     feed.SnapshotOptions // those the channel's kind takes (views.For): what its snapshots hold
	since    *uint64              // resume from this seq when the node can
	fetched  *fetched             // with since: what the history stream holds after it, when memory does not
	older    []*feed.Message      // with a recent view: older trades from the history stream, when memory is short
	throttle time.Duration        // at most one write per this on the channel
}

// joined is how a subscriber starts on a channel.
type joined struct {
	resumed     bool // the subscription replays from since
	historyLost bool // a trade channel that could not resume
	// streamBehind: the history stream held the resume's trades, but not
	// up to where the node's memory begins: the subscribe is retried.
	streamBehind bool
	plan         *headPlan // what the chain starts with, for fillHead; nil: nothing
}

// join registers s (new or re-subscribing) gated, with what it starts
// with planned: a snapshot, a replay from since, or nothing. The caller
// encodes the plan (fillHead), queues the ack, then calls ungate.
func (e *hubEntry) join(h *hub, s *subscription, opt joinOptions) (j joined) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if s.idx < 0 {
		s.idx = len(e.subs)
		e.subs = append(e.subs, s)
		e.subscribers.Store(int32(len(e.subs)))
	} else {
		e.state.Track(s.view, false) // a re-subscribe: its old view goes
	}
	e.state.Track(opt.view, true)
	o := s.c.out
	o.lock()
	defer o.mu.Unlock()
	s.reset()
	o.requeue(s) // a re-subscribe must queue behind its ack
	s.gated, s.dead, s.needSnapshot = true, false, false
	s.status.Store(e.status) // a joiner is told a channel that is not live, after its ack
	s.told = nil             // a re-subscribe too: its client forgets what it was told with the new ack
	s.last, s.checkFirst, s.waitGap = 0, false, nil
	s.thr = nil
	if opt.throttle > 0 && e.spec.Pending.Coalesces() { // updates that cannot fold (trades) are never held back: they would only pile up
		s.thr = &throttled{every: opt.throttle}
	}
	s.view, s.shapes = opt.view, opt.view.ShapesUpdates()
	if opt.since != nil && s.view.ShapesUpdates() {
		// The history holds whole-book deltas, not what they were within a
		// depth: a fresh snapshot of the depth is exact, and smaller.
		opt.since, opt.snapshot = nil, true
	}
	if opt.since != nil {
		evs, ok := e.state.Since(*opt.since)
		if !ok && opt.fetched != nil {
			evs, ok = e.splice(opt.fetched)
			if !ok {
				return joined{streamBehind: true}
			}
			s.checkFirst = true // the node may not have seen what the stream had: check the first live trade
		}
		if ok {
			// The chain starts at the client's seq, which may be a periodic
			// snapshot the node absorbed rather than the last event it sent.
			s.last = *opt.since
			if len(evs) > 0 {
				s.plan = &headPlan{replay: evs, from: *opt.since}
				for i := len(evs) - 1; i >= 0; i-- {
					if evs[i].Data != nil { // not a gap alone
						s.last = evs[i].Seq
						break
					}
				}
			}
			return joined{resumed: true, plan: s.plan}
		}
		if !e.spec.State {
			return joined{historyLost: true}
		}
		opt.snapshot = true // a state channel falls back to a fresh snapshot
	}
	if !wantsSnapshot(e.spec, opt.snapshot, opt.view) {
		return joined{}
	}
	sn := e.currentSnapshot(s.view)
	if len(opt.older) > 0 {
		sn = e.completedSnapshot(s.view, opt.older)
	}
	if sn == nil {
		s.needSnapshot = true // sent as soon as the node has state
		h.warm(e)             // which the history stream may have now
		return joined{}
	}
	s.plan = &headPlan{snap: sn}
	s.last = sn.seq
	return joined{plan: s.plan}
}
