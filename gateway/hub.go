package gateway

import (
	"context"
	"hash/maphash"
	"log/slog"
	"sync"

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
	src        Source       // Static after construction.
	codecs     *codecSet    // Static after construction.
	historyLen int          // Static after construction.
	log        *slog.Logger // Static after construction.
	seed       maphash.Seed // Static after construction.
	shards     [hubShards]hubShard
}

type hubShard struct {
	mu sync.RWMutex
	m  map[proto.Channel]*channel // Guarded by mu.
}

func newHub(src Source, codecs *codecSet, historyLen int, log *slog.Logger) *hub {
	h := &hub{src: src, codecs: codecs, historyLen: historyLen, log: log, seed: maphash.MakeSeed()}
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

// subscription is one connection's subscription to one channel.
type subscription struct {
	c     *conn    // Static after construction.
	entry *channel // Static after construction.

	// All below guarded by entry.mu.
	idx          int     // position in entry.subs, -1 when removed
	last         uint64  // seq of the last snapshot or update queued to the connection
	needSnapshot bool    // the next event goes out as a snapshot
	gated        bool    // frames collect in held until the ack is queued
	held         []frame // frames queued while gated
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
	e.mu.Lock()
	ev, emit, out := e.state.Apply(m)
	if emit {
		e.fanout(h.codecs, &ev)
	}
	e.mu.Unlock()
	switch out {
	case feed.OutcomeApplied, feed.OutcomeSnapshotUnchanged:
	default:
		h.log.Debug("feed message not applied", "channel", e.name, "seq", m.Seq, "outcome", out.String())
	}
}

// encoded caches one event's encodings, per codec and form, so that every
// subscriber in sync shares the same bytes.
type encoded struct {
	update   [numCodecs][]byte
	snapshot [numCodecs][]byte
}

// fanout queues ev to every subscriber. Called with e.mu held.
func (e *channel) fanout(codecs *codecSet, ev *feed.Event) {
	var enc encoded
	for _, s := range e.subs {
		e.deliver(codecs, s, ev, &enc)
	}
}

// deliver queues ev to one subscriber in the form its position in the
// chain needs. Called with e.mu held.
func (e *channel) deliver(codecs *codecSet, s *subscription, ev *feed.Event, enc *encoded) {
	ci := s.c.codecIdx
	var b []byte
	var seq uint64
	switch {
	case s.needSnapshot && !ev.Snapshot && e.ch.Kind == proto.KindBook:
		// A waiting book subscriber gets the whole book, which now includes ev.
		var data any
		var ok bool
		if seq, data, ok = e.state.Snapshot(); !ok {
			return
		}
		b = codecs.encode(ci, proto.Snapshot{Type: proto.TypeSnapshot, Channel: e.name, Seq: seq, Data: data})
	case ev.Snapshot || s.needSnapshot:
		// A book snapshot event, or a ticker event (its data is the whole
		// state) for a subscriber still waiting for its snapshot.
		seq = ev.Seq
		if enc.snapshot[ci] == nil {
			enc.snapshot[ci] = codecs.encode(ci, proto.Snapshot{Type: proto.TypeSnapshot, Channel: e.name, Seq: ev.Seq, Data: ev.Data})
		}
		b = enc.snapshot[ci]
	case ev.Seq <= s.last:
		return // already covered by what the subscriber holds
	case s.last == ev.Prev:
		seq = ev.Seq
		if enc.update[ci] == nil {
			enc.update[ci] = codecs.encode(ci, updateOf(e.name, ev, ev.Prev))
		}
		b = enc.update[ci]
	default:
		// Out of step with the node's chain (first trade, snapshot:false,
		// a snapshot newer than the last event): its own encoding.
		seq = ev.Seq
		b = codecs.encode(ci, updateOf(e.name, ev, s.last))
	}
	if b == nil {
		return // encoding failed; logged by the codec set
	}
	s.needSnapshot = false
	s.last = seq
	s.queue(frame{op: s.c.opcode, b: b})
}

func updateOf(channel string, ev *feed.Event, prev uint64) proto.Update {
	return proto.Update{Type: proto.TypeUpdate, Channel: channel, Seq: ev.Seq, Prev: prev, N: 1, Data: ev.Data}
}

// queue sends f to the connection, or holds it while the subscription is
// gated. Called with entry.mu held.
func (s *subscription) queue(f frame) {
	if s.gated {
		if len(s.held) >= s.c.srv.cfg.SendQueueLimit {
			s.c.evict("send queue overflow")
			return
		}
		s.held = append(s.held, f)
		return
	}
	s.c.send(f)
}

// joinOptions say how a subscriber starts on a channel.
type joinOptions struct {
	snapshot bool    // wants the current state first
	since    *uint64 // resume from this seq when the node can
}

// join registers s (new or re-subscribing) gated, and holds what it starts
// with: a snapshot, a replay from since, or nothing. It reports whether the
// subscription resumed, and for a trade channel that could not resume,
// historyLost. The caller queues the ack, then calls ungate.
func (e *channel) join(codecs *codecSet, s *subscription, opt joinOptions) (resumed, historyLost bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if s.idx < 0 {
		s.idx = len(e.subs)
		e.subs = append(e.subs, s)
	}
	s.gated = true
	s.held = s.held[:0]
	s.last = 0
	s.needSnapshot = false
	ci := s.c.codecIdx
	if opt.since != nil {
		if evs, ok := e.state.Since(*opt.since); ok {
			// The chain starts at the client's seq, which may be a periodic
			// snapshot the node absorbed rather than the last event it sent.
			s.last = *opt.since
			for i := range evs {
				s.held = append(s.held, frame{op: s.c.opcode, b: codecs.encode(ci, updateOf(e.name, &evs[i], s.last))})
				s.last = evs[i].Seq
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
	s.held = append(s.held, frame{op: s.c.opcode, b: codecs.encode(ci, proto.Snapshot{Type: proto.TypeSnapshot, Channel: e.name, Seq: seq, Data: data})})
	return false, false
}

// ungate queues everything held and lets later events flow directly.
func (e *channel) ungate(s *subscription) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if s.idx < 0 {
		return
	}
	s.gated = false
	for i, f := range s.held {
		s.c.send(f)
		s.held[i] = frame{}
	}
	s.held = s.held[:0]
}

// leave removes s from the channel.
func (e *channel) leave(s *subscription) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if s.idx < 0 {
		return
	}
	last := len(e.subs) - 1
	e.subs[s.idx] = e.subs[last]
	e.subs[s.idx].idx = s.idx
	e.subs[last] = nil
	e.subs = e.subs[:last]
	s.idx = -1
	s.held = nil
}
