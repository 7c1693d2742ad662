package gateway

import (
	"context"
	"fmt"
	"hash/maphash"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/tickgate/tickgate/feed"
	"github.com/tickgate/tickgate/proto"
)

// Source is the feed the hub draws channels from: interest-counted NATS
// subscriptions (feed.Source in production).
type Source interface {
	Acquire(ctx context.Context, ch proto.Channel, h feed.Handler) error
	Release(ch proto.Channel)
}

const hubShards = 64

// hub maps channels to their state and local subscribers. It is sharded so
// that subscribes on different channels do not contend; each channel has
// its own mutex, held while a feed message is applied and fanned out and
// while a subscriber joins, so a joiner's snapshot and the updates after it
// form one unbroken chain.
type hub struct {
	src        Source           // Static after construction.
	codecs     *codecSet        // Static after construction.
	historyLen int              // Static after construction.
	log        *slog.Logger     // Static after construction.
	metrics    *Metrics         // Static after construction.
	now        func() time.Time // Static after construction.
	seed       maphash.Seed     // Static after construction.
	shards     [hubShards]hubShard
}

type hubShard struct {
	mu sync.RWMutex
	m  map[proto.Channel]*channel // Guarded by mu.
}

func newHub(src Source, codecs *codecSet, cfg *Config) *hub {
	h := &hub{src: src, codecs: codecs, historyLen: cfg.HistoryLen, log: cfg.Logger, metrics: cfg.Metrics, now: cfg.Now, seed: maphash.MakeSeed()}
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
}

// acquire returns the channel's entry, creating it on first use, and
// registers NATS interest; it returns once the node receives the channel.
func (h *hub) acquire(ctx context.Context, ch proto.Channel) (*channel, error) {
	sh := h.shard(ch)
	sh.mu.Lock()
	e := sh.m[ch]
	if e == nil {
		e = &channel{ch: ch, name: ch.String(), state: feed.NewState(ch, h.historyLen)}
		sh.m[ch] = e
	}
	e.refs++
	sh.mu.Unlock()
	if err := h.src.Acquire(ctx, ch, h.onFeed); err != nil {
		h.drop(e)
		return nil, err
	}
	return e, nil
}

// release undoes one acquire.
func (h *hub) release(e *channel) {
	h.drop(e)
	h.src.Release(e.ch)
}

// drop removes one reference; the last removes the entry and its state.
func (h *hub) drop(e *channel) {
	sh := h.shard(e.ch)
	sh.mu.Lock()
	e.refs--
	if e.refs == 0 && sh.m[e.ch] == e {
		delete(sh.m, e.ch)
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
	out := h.apply(e, m)
	h.metrics.feedMessages.Inc()
	h.metrics.feedOutcome(out)
	switch out {
	case feed.OutcomeApplied, feed.OutcomeSnapshot, feed.OutcomeSnapshotUnchanged:
	default:
		h.log.Debug("feed message not applied as is", "channel", e.name, "seq", m.Seq, "outcome", out.String())
	}
}

// apply runs one feed message through the channel under its lock. A panic
// here (a bug) costs this message, not the process: it runs on the NATS
// delivery goroutine.
func (h *hub) apply(e *channel, m *feed.Message) (out feed.Outcome) {
	e.mu.Lock()
	defer e.mu.Unlock()
	defer func() {
		if v := recover(); v != nil {
			h.log.Error("panic applying a feed message", "channel", e.name, "seq", m.Seq, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			out = feed.OutcomeInvalid
		}
	}()
	ev, emit, out := e.state.Apply(m)
	if emit {
		e.fanout(h, &ev)
	}
	return out
}

// encoded caches one event's frames, per codec and form, so that every
// subscriber in step shares the same bytes.
type encoded struct {
	update   [numCodecs][]byte
	snapshot [numCodecs][]byte
}

func (enc *encoded) updateFrame(cs *codecSet, ci int, name string, ev *feed.Event) []byte {
	if enc.update[ci] == nil {
		enc.update[ci] = cs.frame(ci, proto.Update{Type: proto.TypeUpdate, Channel: name, Seq: ev.Seq, Prev: ev.Prev, N: 1, Data: ev.Data})
	}
	return enc.update[ci]
}

func (enc *encoded) snapshotFrame(cs *codecSet, ci int, name string, ev *feed.Event) []byte {
	if enc.snapshot[ci] == nil {
		enc.snapshot[ci] = cs.frame(ci, proto.Snapshot{Type: proto.TypeSnapshot, Channel: name, Seq: ev.Seq, Data: ev.Data})
	}
	return enc.snapshot[ci]
}

// fanout queues ev to every subscriber. Called with e.mu held.
func (e *channel) fanout(h *hub, ev *feed.Event) {
	var enc encoded
	for _, s := range e.subs {
		if reason := e.deliver(h, s, ev, &enc); reason != "" {
			s.c.evict(reason)
		}
	}
}

// deliver queues ev to one subscriber in the form its place in the chain
// needs: the shared frame when it is in step and its writer is free, a
// fold into what is pending when its writer is busy. It returns an
// eviction reason when the subscriber cannot take it. Called with e.mu held.
func (e *channel) deliver(h *hub, s *subscription, ev *feed.Event, enc *encoded) (evict string) {
	o := s.c.out
	ci := s.c.codecIdx
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closing != nil || s.dead {
		return ""
	}
	switch {
	case ev.Snapshot || s.needSnapshot:
		// A book snapshot event, or a ticker event (its data is the whole
		// state) for a subscriber still waiting for its snapshot. (A book
		// that made a joiner wait was unsynced: its next event is a
		// snapshot.)
		s.setHead(enc.snapshotFrame(h.codecs, ci, e.name, ev), ev.TS)
		s.last = ev.Seq
	case ev.Seq <= s.last && !ev.Restart:
		return "" // already covered by what the subscriber holds
	case e.ch.Kind == proto.KindTrade:
		if !s.addTrade(pendingUpdate(h.codecs, ci, e.name, s, ev, enc)) {
			return evictTradeOverflow
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
			if seq, data, ok := e.state.Snapshot(); ok {
				s.setHead(h.codecs.frame(ci, proto.Snapshot{Type: proto.TypeSnapshot, Channel: e.name, Seq: seq, Data: data}), 0)
				s.last = seq
			}
		}
	}
	s.needSnapshot = false
	o.ready(s, h.now)
	return ""
}

// pendingUpdate is ev as an update for s: the shared frame when s is in
// step with the node's chain, else an update the writer encodes with s's
// own prev.
func pendingUpdate(cs *codecSet, ci int, name string, s *subscription, ev *feed.Event, enc *encoded) pending {
	if s.last == ev.Prev {
		return pending{frame: enc.updateFrame(cs, ci, name, ev), ts: ev.TS}
	}
	return pending{ts: ev.TS, upd: proto.Update{Type: proto.TypeUpdate, Channel: name, Seq: ev.Seq, Prev: s.last, N: 1, Data: ev.Data}}
}

// joinOptions say how a subscriber starts on a channel.
type joinOptions struct {
	snapshot bool          // wants the current state first
	since    *uint64       // resume from this seq when the node can
	throttle time.Duration // at most one write per this on the channel
}

// join registers s (new or re-subscribing) gated, with what it starts
// with pending: a snapshot, a replay from since, or nothing. It reports
// whether the subscription resumed, and for a trade channel that could not
// resume, historyLost. The caller queues the ack, then calls ungate.
func (e *channel) join(codecs *codecSet, s *subscription, opt joinOptions) (resumed, historyLost bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if s.idx < 0 {
		s.idx = len(e.subs)
		e.subs = append(e.subs, s)
	}
	o := s.c.out
	o.mu.Lock()
	defer o.mu.Unlock()
	s.reset()
	o.requeue(s) // a re-subscribe must queue behind its ack
	s.gated, s.dead, s.needSnapshot = true, false, false
	s.last = 0
	s.throttle, s.nextAt = opt.throttle, time.Time{}
	if e.ch.Kind == proto.KindTrade {
		s.throttle = 0 // trades are never held back: they cannot be merged, only piled up
	}
	ci := s.c.codecIdx
	if opt.since != nil {
		if evs, ok := e.state.Since(*opt.since); ok {
			// The chain starts at the client's seq, which may be a periodic
			// snapshot the node absorbed rather than the last event it sent.
			s.last = *opt.since
			for i := range evs {
				ev := &evs[i]
				f := codecs.frame(ci, proto.Update{Type: proto.TypeUpdate, Channel: e.name, Seq: ev.Seq, Prev: s.last, N: 1, Data: ev.Data})
				s.head = append(s.head, pending{frame: f}) // no ts: a replay is not a live delivery
				s.last = ev.Seq
			}
			return true, false
		}
		if e.ch.Kind == proto.KindTrade {
			return false, true
		}
		opt.snapshot = true // a state channel falls back to a fresh snapshot
	}
	if !opt.snapshot || !e.ch.Kind.HasSnapshot() {
		return false, false
	}
	seq, data, ok := e.state.Snapshot()
	if !ok {
		s.needSnapshot = true // sent as soon as the node has state
		return false, false
	}
	s.last = seq
	s.head = append(s.head, pending{frame: codecs.frame(ci, proto.Snapshot{Type: proto.TypeSnapshot, Channel: e.name, Seq: seq, Data: data})})
	return false, false
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
	}
	e.mu.Unlock()
	o := s.c.out
	o.mu.Lock()
	s.dead = true
	s.reset()
	o.mu.Unlock()
}
