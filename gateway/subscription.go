package gateway

import (
	"strings"
	"sync/atomic"
	"time"

	"github.com/tickgate/tickgate/feed"
	"github.com/tickgate/tickgate/proto"
)

// subscription is one connection's subscription to one channel, and what
// is pending for it while the connection's writer is busy.
type subscription struct {
	// The fan-out reads and writes the first two cache lines for every
	// message it delivers (hubEntry.deliver, outbox.queueUpdate, ready,
	// unmerged): the fields they use sit there, together, and the struct
	// fits the 192-byte size class, whose objects start on a cache line
	// (TestHotLayouts). A connection holds one per channel.
	//
	// Line 1: all guarded by c.out.mu, but c (static) and shapes.
	c            *conn        // Static after construction.
	last         uint64       // seq of the last message queued on this channel (the chain's head)
	plan         *headPlan    // a head (snapshot, replay) to encode outside the locks; the writer skips s until it is in head
	directAt     uint64       // update frames of s queued in the FIFO (outbox.queueUpdate) counted in direct ...
	direct       int32        // ... while c.out.takes was directAt
	gen          uint32       // bumped by a re-subscribe: older FIFO entries are stale
	group        *updateGroup // the ticker/book updates folded while the writer was busy; allocated by the first fold and kept (nil: never folded)
	thr          *throttled   // at most one write per interval on this channel; nil: not throttled (most subscriptions)
	queued       bool         // in the outbox FIFO or its delayed list (with gen)
	gated        bool         // joining: pending data waits until the ack is queued
	dead         bool         // unsubscribed: pending data is dropped
	needSnapshot bool         // the next event goes out as a snapshot
	checkFirst   bool         // resumed from the history stream: the first live trade may follow a hole the node never saw
	shapes       bool         // Guarded by entry.mu: view.ShapesUpdates(), set with view

	// Line 2: what hasPending looks at, all guarded by c.out.mu.
	head  []pending // a snapshot or a resume replay, written first
	queue []pending // then updates one by one: trades always, tickers and books while the writer is free
	// status is the channel's status to tell the client (nil: live), kept
	// across reset; written with c.out.mu held. It is atomic so that the
	// fan-out's first pass may load it without the lock, to bring this
	// line in beside the others (hubEntry.fanout).
	status atomic.Pointer[status]
	told   *status // the status the client was told last (nil: live, or nothing)

	// Line 3: the rest.
	entry      *hubEntry            // Static after construction.
	hold       *feed.Pending        // Static after construction: the NATS interest it holds, given back when it ends.
	idx        int                  // Guarded by entry.mu: position in entry.subs, -1 when not there.
	view       feed.SnapshotOptions // Guarded by entry.mu: what its snapshots hold (set by join, with shapes).
	tradeBytes int32                // Guarded by c.out.mu: bytes of the encoded trades in queue (at most MaxTradeBufferBytes).
	// directBytes is, guarded by c.out.mu, the bytes of the trade frames
	// of s in the outbox's FIFO (queueKept), valid while they are
	// (directAt is c.out.takes).
	directBytes int32
	// waitGap is, guarded by c.out.mu, the feed seqs the node never had
	// (from, to) that events without a snapshot to start from reported
	// while s waited for its first one on an event channel (a publisher
	// heartbeat ahead of the node): told right after that snapshot. Nil:
	// none (nearly always).
	waitGap *[2]uint64
}

// throttled is a throttled subscription's schedule, guarded by c.out.mu
// as the subscription's pending state is: at most one write per every,
// the next not before nextAt.
type throttled struct {
	every  time.Duration
	nextAt time.Time
}

// notDue reports whether s is throttled and not due at now. Called with
// c.out.mu held.
func (s *subscription) notDue(now time.Time) bool {
	return s.thr != nil && now.Before(s.thr.nextAt)
}

// folded is how many updates s has folded in its group (0: none).
// Called with c.out.mu held.
func (s *subscription) folded() uint32 {
	if s.group == nil {
		return 0
	}
	return s.group.n
}

// pending is one message waiting for the writer: frame when it is already
// encoded (often shared by many connections), else an update the writer
// encodes for this connection alone.
type pending struct {
	frame []byte
	upd   proto.Update // valid when frame is nil
	ts    int64        // source event time, for the delivery latency
	// data and prev, on an update of a PendingRevise kind, are its data
	// and prev, so that a newer update can revise it (revise); nil data
	// otherwise.
	data any
	prev uint64
}

// updateGroup is the update pending while the connection's writer is busy,
// for a kind whose updates fold (proto.Pending.Coalesces): each further
// event folds in by the kind's rule (PendingReplace keeps the newest data,
// PendingMerge merges book deltas level by level) and n counts the events.
// It is encoded for this connection alone when the writer takes it.
type updateGroup struct {
	n    uint32
	prev uint64 // the chain's head before the group: the update's prev
	seq  uint64
	ts   int64
	// data is the newest data (PendingReplace), or the first delta as
	// emitted (PendingMerge, n == 1); nil once deltas were merged.
	data     any
	bids     levelMerge // PendingMerge, n > 1: the merged delta, owned here
	asks     levelMerge
	checksum uint32
}

// maxUnmerged bounds the ticker/book updates pending one by one for a
// connection whose writer is free but has not run yet; beyond it they
// fold as for a busy writer.
const maxUnmerged = 64

// hasPending reports whether the writer has something to take. Called with
// c.out.mu held.
func (s *subscription) hasPending() bool {
	return len(s.head) > 0 || len(s.queue) > 0 || s.folded() > 0 || s.statusDue()
}

// pendingCount is how many messages s has pending for the writer.
// Called with c.out.mu held.
func (s *subscription) pendingCount() int {
	n := len(s.head) + len(s.queue)
	if s.folded() > 0 {
		n++
	}
	if s.statusDue() {
		n++
	}
	return n
}

// reset drops whatever is pending, a planned head and update frames in
// the outbox's FIFO included. Called with
// c.out.mu held.
func (s *subscription) reset() {
	s.c.out.dropDirect(s)
	s.plan = nil
	clear(s.head)
	s.head = s.head[:0]
	clear(s.queue)
	s.queue = s.queue[:0]
	if s.group != nil {
		*s.group = updateGroup{}
	}
	s.tradeBytes = 0
}

// addKept queues one update that is never dropped or merged (a trade);
// it reports false when the bound (the trade buffer) overflows and the
// caller evicts. Called with c.out.mu held.
func (s *subscription) addKept(p pending) bool {
	n := pendingSize(p)
	if !s.keptRoom(n) {
		return false
	}
	s.queue = append(s.queue, p)
	s.tradeBytes += int32(n)
	return true
}

// queueKept queues frame, a trade's shared frame in step with s (with
// the event's time ts), straight into the outbox's FIFO when nothing of
// s waits before it (outbox.queueDirect) and the trade buffer has room,
// as a ticker's goes: the writer then takes it with the FIFO's other
// frames in one move, where a kept update waits in s's queue for the
// writer to visit s. It reports false when it did not: the caller keeps
// the update (addKept). Called with c.out.mu held.
func (s *subscription) queueKept(frame []byte, ts int64, now func() time.Time) bool {
	o := s.c.out
	if !s.keptRoom(len(frame)) {
		return false
	}
	if s.directAt != o.takes {
		s.directBytes = 0 // the writer took them
	}
	if !o.queueDirect(s, frame, ts, now) {
		return false
	}
	s.directBytes += int32(len(frame))
	return true
}

// keptRoom reports whether a kept update of n bytes fits the trade
// buffer, whose bounds count what s keeps and its trade frames waiting
// in the outbox's FIFO (queueKept). Called with c.out.mu held.
func (s *subscription) keptRoom(n int) bool {
	cfg := &s.c.srv.cfg
	msgs, bytes := len(s.queue), int(s.tradeBytes)
	if d := s.c.out.directPending(s); d > 0 {
		msgs, bytes = msgs+d, bytes+int(s.directBytes)
	}
	return msgs < cfg.TradeBufferMessages && bytes+n <= cfg.TradeBufferBytes
}

// revise replaces the newest pending update with ev when ev's data
// revises it (proto.Revisable: a candle's open bar by a newer message for
// the same start), keeping its prev and counting both in n. It reports
// whether it did. Called with c.out.mu held.
func (s *subscription) revise(ev *feed.Event) bool {
	if len(s.queue) == 0 {
		return false
	}
	tail := &s.queue[len(s.queue)-1]
	r, ok := ev.Data.(proto.Revisable)
	if !ok || tail.data == nil || !r.Revises(tail.data) {
		return false
	}
	n := uint32(1)
	if tail.frame == nil {
		n = tail.upd.N
	}
	s.tradeBytes -= int32(pendingSize(*tail))
	*tail = pending{ts: ev.TS, data: ev.Data, prev: tail.prev,
		upd: proto.Update{Type: proto.TypeUpdate, Channel: s.entry.name, Seq: ev.Seq, Prev: tail.prev, N: n + 1, Data: ev.Data}}
	s.tradeBytes += int32(pendingSize(*tail))
	return true
}

// pendingSize is what p counts against the trade buffer's bytes: its
// frame, or an estimate until the writer encodes it.
func pendingSize(p pending) int {
	if p.frame == nil {
		return 256
	}
	return len(p.frame)
}

// unmerged reports whether a ticker/book update goes out on its own: the
// writer is free, the channel is not held back by its throttle, nothing
// is folded yet, and the backlog is short. Called with c.out.mu held.
func (s *subscription) unmerged(writerBusy bool, now func() time.Time) bool {
	if writerBusy || s.folded() > 0 {
		return false
	}
	if s.thr != nil { // one write per interval: only a lone update when due
		return !s.hasPending() && !s.notDue(now())
	}
	return len(s.queue)+s.c.out.directPending(s) < maxUnmerged
}

// fold adds an update to the group of updates pending while the writer
// is busy, by the kind's pending rule: PendingReplace keeps the newest
// data (a ticker's whole state), PendingMerge merges book deltas level by
// level. It reports whether the update was folded into an earlier one
// (false when it starts the group). Called with c.out.mu held.
func (s *subscription) fold(rule proto.Pending, seq uint64, ts int64, data any) (folded bool) {
	if s.group == nil {
		s.group = new(updateGroup)
	}
	g := s.group
	if g.n == 0 {
		*g = updateGroup{n: 1, prev: s.last, seq: seq, ts: ts, data: data}
		if b, ok := data.(*proto.Book); ok && rule == proto.PendingMerge {
			g.checksum = b.Checksum
		}
		return false
	}
	g.n++
	g.seq, g.ts = seq, ts
	switch rule {
	case proto.PendingReplace:
		g.data = data
	case proto.PendingMerge:
		d := data.(*proto.Book)
		if b, ok := g.data.(*proto.Book); ok { // the first fold: copy, emitted data is shared
			g.bids.add(b.Bids)
			g.asks.add(b.Asks)
			g.data = nil
		}
		g.bids.add(d.Bids)
		g.asks.add(d.Asks)
		g.checksum = d.Checksum
	}
	return true
}

// mergedLevels is how many levels a merged book delta may hold (both
// sides) before the subscriber gets a fresh snapshot instead: a
// connection behind for long on a busy book would otherwise merge without
// bound.
const mergedLevels = 4096

// levelMerge is one side of a merged book delta: a later level for the
// same price (numerically) replaces the earlier one, size "0" included, so
// applying it equals applying the deltas in order. Levels are found through
// an index by canonical price, so a merge costs O(levels added).
type levelMerge struct {
	levels []proto.Level
	index  map[string]int // canonical price → position in levels
}

func (m *levelMerge) add(delta []proto.Level) {
	if m.index == nil {
		m.index = make(map[string]int, len(delta))
	}
	for _, l := range delta {
		key := canonicalPrice(l.Price())
		if i, ok := m.index[key]; ok {
			m.levels[i] = l
			continue
		}
		m.index[key] = len(m.levels)
		m.levels = append(m.levels, l)
	}
}

func (m *levelMerge) len() int { return len(m.levels) }

// canonicalPrice is p without leading zeros in the integer part and
// trailing zeros in the fraction, so prices equal as numbers are equal as
// keys ("064000.10" and "64000.1"). It returns a substring: no allocation.
func canonicalPrice(p string) string {
	if strings.IndexByte(p, '.') >= 0 {
		p = strings.TrimSuffix(strings.TrimRight(p, "0"), ".") // "5.10" → "5.1", "5.00" → "5"
	}
	t := strings.TrimLeft(p, "0")
	switch {
	case t == "":
		return "0"
	case t[0] == '.':
		return p[len(p)-len(t)-1:] // keep the zero before the point: "0.5"
	}
	return t
}

func nonNil(l []proto.Level) []proto.Level {
	if l == nil {
		return []proto.Level{}
	}
	return l
}

// collect moves everything pending into the writer's batch, in order: head,
// the updates one by one, then the folded group. Called with c.out.mu held.
func (s *subscription) collect(b *batch) {
	for _, p := range s.head {
		b.add(p)
	}
	for _, p := range s.queue {
		b.add(p)
	}
	if g := s.group; g != nil && g.n > 0 {
		p := pending{ts: g.ts, upd: proto.Update{Type: proto.TypeUpdate, Channel: s.entry.name, Seq: g.seq, Prev: g.prev, N: g.n}}
		p.upd.Data = g.data
		if p.upd.Data == nil { // merged: the slices move to the batch
			p.upd.Data = &proto.Book{Bids: nonNil(g.bids.levels), Asks: nonNil(g.asks.levels), Checksum: g.checksum, TS: g.ts}
		}
		b.add(p)
	}
	if s.statusDue() {
		// After the data pending: that data was there before the change
		// (a book's fresh snapshot, then live; the last updates before the
		// loss of NATS, then stale).
		st := s.status.Load()
		b.add(pending{frame: st.frames[s.c.variant]})
		s.told = st
	}
	s.reset()
}
