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
	log        *slog.Logger     // Static after construction.
	metrics    *Metrics         // Static after construction.
	now        func() time.Time // Static after construction.
	seed       maphash.Seed     // Static after construction.
	wakes      *wakes           // Safe for concurrent use: writers' wake-ups held during a feed burst.
	shards     [hubShards]hubShard
}

type hubShard struct {
	mu sync.RWMutex
	m  map[proto.Channel]*channel // Guarded by mu.
}

func newHub(src Source, codecs *codecSet, cfg *Config) *hub {
	h := &hub{src: src, codecs: codecs, historyLen: cfg.HistoryLen, log: cfg.Logger, metrics: cfg.Metrics, now: cfg.Now,
		staleAfter: cfg.StaleAfter, history: cfg.History, seed: maphash.MakeSeed(), wakes: newWakes(cfg.Now)}
	for i := range h.shards {
		h.shards[i].m = make(map[proto.Channel]*channel)
	}
	return h
}

func (h *hub) shard(ch proto.Channel) *hubShard {
	var mh maphash.Hash
	mh.SetSeed(h.seed)
	mh.WriteByte(byte(ch.Kind))
	mh.WriteString(ch.Symbol)
	return &h.shards[mh.Sum64()%hubShards]
}

// channel is one channel's state and subscribers on this node.
type channel struct {
	ch   proto.Channel // Static after construction.
	name string        // Static after construction: ch.String().

	refs int // Guarded by the shard's mu: subscriptions holding this entry.

	mu    sync.Mutex
	state feed.State      // Guarded by mu.
	subs  []*subscription // Guarded by mu.
	// snap is the state's snapshot as of the newest feed message, shared
	// by every subscriber that starts from it; nil until one is wanted
	// again after a feed message changed the state. Guarded by mu; the
	// snapshot itself is immutable but for its lazily encoded frames.
	snap *snapshot

	// Status (status.go), all guarded by mu: what subscribers are told
	// (nil: live), whether NATS was lost since the last arrival, and when
	// the last feed message or publisher heartbeat arrived.
	status       *status
	disconnected bool
	arrived      time.Time
	warming      bool          // a start from the history stream is under way (history.go)
	filled       time.Time     // when a gap was last filled from the history stream (history.go)
	stateNow     atomic.Uint32 // status's chanState, for counting without mu

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
func (h *hub) acquire(ch proto.Channel) (*channel, *feed.Pending, error) {
	sh := h.shard(ch)
	sh.mu.Lock()
	e := sh.m[ch]
	if e == nil {
		e = &channel{ch: ch, name: ch.String(), state: feed.NewState(ch, h.historyLen), arrived: h.now()}
		sh.m[ch] = e
		h.metrics.channelsByState[stateLive].Inc()
	}
	e.refs++
	sh.mu.Unlock()
	p, err := h.src.AcquireAsync(ch, h.onFeed)
	if err != nil {
		h.drop(e)
		return nil, nil, err
	}
	return e, p, nil
}

// abandon undoes one acquire whatever became of its Pending.
func (h *hub) abandon(e *channel, p *feed.Pending) {
	p.Cancel()
	h.drop(e)
}

// drop removes one reference; the last removes the entry and its state.
func (h *hub) drop(e *channel) {
	sh := h.shard(e.ch)
	sh.mu.Lock()
	e.refs--
	if e.refs == 0 && sh.m[e.ch] == e {
		delete(sh.m, e.ch)
		h.metrics.channelsByState[e.stateNow.Load()].Dec()
	}
	sh.mu.Unlock()
}

func (h *hub) lookup(ch proto.Channel) *channel {
	sh := h.shard(ch)
	sh.mu.RLock()
	e := sh.m[ch]
	sh.mu.RUnlock()
	return e
}

// onFeed applies one feed message to the channel's state and fans out
// whatever it means for subscribers. It runs on the channel's NATS delivery
// goroutine.
func (h *hub) onFeed(ch proto.Channel, m *feed.Message) {
	e := h.lookup(ch)
	if e == nil {
		return // the last subscriber left while the message was in flight
	}
	if h.history != nil && ch.Kind == proto.KindTrade {
		h.fillGap(e, m) // trades the node never had, from the stream, before m
	}
	h.process(e, m)
}

// process applies one feed message to e and delivers what it means.
func (h *hub) process(e *channel, m *feed.Message) {
	ch := e.ch
	var starts []restart
	h.wakes.begin()
	out := h.apply(e, m, &starts)
	h.wakes.end()
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
// bug) costs this message, not the process: it runs on the NATS delivery
// goroutine.
func (h *hub) apply(e *channel, m *feed.Message, starts *[]restart) (out feed.Outcome) {
	e.mu.Lock()
	defer e.mu.Unlock()
	defer func() {
		if v := recover(); v != nil {
			h.log.Error("panic applying a feed message", "channel", e.name, "seq", m.Seq, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			out = feed.OutcomeInvalid
		}
	}()
	ev, emit, out := e.state.Apply(m)
	if out != feed.OutcomeDuplicate {
		e.snap = nil // the state moved on
	}
	e.received.Add(1)
	e.lastSeq.Store(e.state.LastSeq())
	e.historyLen.Store(int32(e.state.HistoryLen()))
	if emit {
		e.fanout(h, &ev, starts)
	}
	// Something arrived: the channel is back (after a NATS loss) and not
	// silent; a book may have lost or regained its sync.
	e.arrived, e.disconnected = h.now(), false
	e.updateStatus(h)
	return out
}

// encoded caches one event's frames, per codec and form, so that every
// subscriber in step shares the same bytes.
type encoded struct {
	update [numCodecs][]byte
	gap    [numCodecs][]byte
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
	if ev.GapTo != 0 {
		enc.gapFrame(cs, ci, name, ev)
	}
	if likely && !ev.Snapshot && ev.Data != nil {
		enc.updateFrame(cs, ci, name, ev)
	}
}

func (enc *encoded) updateFrame(cs *codecSet, ci int, name string, ev *feed.Event) []byte {
	if enc.update[ci] == nil {
		enc.update[ci] = cs.frame(ci, proto.Update{Type: proto.TypeUpdate, Channel: name, Seq: ev.Seq, Prev: ev.Prev, N: 1, Data: ev.Data})
	}
	return enc.update[ci]
}

func (enc *encoded) gapFrame(cs *codecSet, ci int, name string, ev *feed.Event) []byte {
	if enc.gap[ci] == nil {
		enc.gap[ci] = cs.frame(ci, proto.Gap{Type: proto.TypeGap, Channel: name, From: ev.GapFrom, To: ev.GapTo})
	}
	return enc.gap[ci]
}

// fanout queues ev to every subscriber and adds to starts those whose
// chain restarts from a snapshot (see deliver). Called with e.mu held.
func (e *channel) fanout(h *hub, ev *feed.Event, starts *[]restart) {
	var enc encoded
	for _, s := range e.subs {
		reason, plan := e.deliver(h, s, ev, &enc)
		if reason != "" {
			s.c.evict(reason)
		}
		if plan != nil {
			*starts = append(*starts, restart{s, plan})
		}
	}
}

// eventSnapshot returns the snapshot that ev, a book snapshot event or a
// ticker event (whose data is the whole state), stands for, and caches it
// for joiners: the state's snapshot is that same data. Called with e.mu
// held.
func (e *channel) eventSnapshot(ev *feed.Event) *snapshot {
	if sn := e.snap; sn != nil && sn.seq == ev.Seq {
		return sn
	}
	sn := &snapshot{seq: ev.Seq, data: ev.Data, channel: e.name}
	if ev.Snapshot || e.ch.Kind == proto.KindTicker {
		e.snap = sn
	}
	return sn
}

// deliver queues ev to one subscriber in the form its place in the chain
// needs: the shared frame when it is in step and its writer is free, a
// fold into what is pending when its writer is busy. It returns an
// eviction reason when the subscriber cannot take it, and the plan of the
// snapshot its chain restarts from, which the caller must encode
// (fillHead) once the lock is released. Called with e.mu held.
func (e *channel) deliver(h *hub, s *subscription, ev *feed.Event, enc *encoded) (evict string, start *headPlan) {
	o := s.c.out
	ci := s.c.codecIdx
	enc.prepare(h.codecs, ci, e.name, ev, e.ch.Kind == proto.KindTrade || !o.busy.Load())
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closing != nil || s.dead {
		return "", nil
	}
	switch {
	case ev.Snapshot || s.needSnapshot:
		// A book snapshot event, or a ticker event (its data is the whole
		// state) for a subscriber still waiting for its snapshot. (A book
		// that made a joiner wait was unsynced: its next event is a
		// snapshot.)
		start = s.planSnapshot(e.eventSnapshot(ev), ev.TS)
	case ev.Seq <= s.last && !ev.Restart:
		return "", nil // already covered by what the subscriber holds
	case e.ch.Kind == proto.KindTrade:
		if f := e.gapFor(h, s, ev, enc); f != nil && !s.addTrade(pending{frame: f}) {
			return evictTradeOverflow, nil
		}
		if ev.Data == nil {
			break // a gap only (a publisher heartbeat ahead of the node): no update
		}
		if !s.addTrade(pendingUpdate(h.codecs, ci, e.name, s, ev, enc)) {
			return evictTradeOverflow, nil
		}
		s.last = ev.Seq
	case s.unmerged(o.writing, h.now):
		s.queue = append(s.queue, pendingUpdate(h.codecs, ci, e.name, s, ev, enc))
		s.last = ev.Seq
	default:
		if s.fold(ev.Seq, ev.TS, ev.Data) {
			h.metrics.coalescedByKind[e.ch.Kind].Inc()
		}
		s.last = ev.Seq
		if g := &s.group; g.bids.len()+g.asks.len() > mergedLevels {
			// Behind for so long that the merged delta outgrows a fresh
			// book: send the book instead.
			if sn := e.currentSnapshot(); sn != nil {
				start = s.planSnapshot(sn, 0)
			}
		}
	}
	s.needSnapshot = false
	o.ready(s, h.now)
	return "", start
}

// gapFor is the gap message s gets before the trade event ev, or nil: the
// event's gap as far as s does not hold those seqs already (it may have
// them from the history stream), and for the first live trade after a
// resume from the stream, any seqs between the resume and it, which the
// node's own state may never have seen. Called with e.mu and c.out.mu
// held.
func (e *channel) gapFor(h *hub, s *subscription, ev *feed.Event, enc *encoded) []byte {
	from, to := ev.GapFrom, ev.GapTo
	if s.checkFirst && ev.Data != nil {
		s.checkFirst = false
		if ev.Seq > s.last+1 {
			from, to = s.last+1, ev.Seq-1
		}
	}
	switch {
	case to == 0 || to <= s.last:
		return nil
	case from == ev.GapFrom && to == ev.GapTo && from > s.last:
		return enc.gapFrame(h.codecs, s.c.codecIdx, e.name, ev)
	}
	return h.codecs.frame(s.c.codecIdx, proto.Gap{Type: proto.TypeGap, Channel: e.name, From: max(from, s.last+1), To: to})
}

// pendingUpdate is ev as an update for s: the shared frame when s is in
// step with the node's chain (and the frame was prepared: nothing is
// encoded here, under s's outbox lock), else an update the writer encodes
// with s's own prev. (The codec set it once encoded with is no longer
// used; the parameter stays so that its callers read as before.)
func pendingUpdate(_ *codecSet, ci int, name string, s *subscription, ev *feed.Event, enc *encoded) pending {
	if s.last == ev.Prev && enc.update[ci] != nil {
		return pending{frame: enc.update[ci], ts: ev.TS}
	}
	return pending{ts: ev.TS, upd: proto.Update{Type: proto.TypeUpdate, Channel: name, Seq: ev.Seq, Prev: s.last, N: 1, Data: ev.Data}}
}

// ungate lets what is pending, and later events, flow to the writer.
func (s *subscription) ungate(now func() time.Time) {
	o := s.c.out
	o.mu.Lock()
	defer o.mu.Unlock()
	s.gated = false
	o.ready(s, now)
}

// leave removes s from the channel and drops what it has pending.
func (e *channel) leave(s *subscription) {
	e.mu.Lock()
	if s.idx >= 0 {
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
	o.mu.Lock()
	s.dead = true
	s.reset()
	o.mu.Unlock()
}
