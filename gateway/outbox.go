package gateway

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tickgate/tickgate/proto"
)

// outbox is everything waiting for one connection's writer, bounded:
//
//   - a FIFO of items: a reply or control frame, a subscription whose
//     pending data is ready (each subscription is in the FIFO at most once),
//     or a shared update frame of a subscription that had nothing else
//     pending (see queueUpdate: the common case of a writer keeping up);
//   - per subscription (see subscription), what is pending on its channel,
//     coalesced by the kind's rule while the writer is busy: the newest
//     ticker, one merged book delta, or the trades in order.
//
// Everyone who sends to the connection (fan-out, command replies, timers)
// holds mu only for O(1) work and never waits on the socket; the writer
// holds mu only to take what is ready, never while writing. Memory is
// bounded: control frames by limit, tickers by one per channel, books by
// the book's size, trades by TradeBufferMessages/TradeBufferBytes (beyond
// which the connection is evicted).
type outbox struct {
	// The fan-out takes mu and reads or writes the fields up to busy for
	// every message it delivers: they share the first cache line (the
	// struct fits the 192-byte size class, whose objects start on a line;
	// TestHotLayouts). The first message of a burst also reads the
	// wake-up fields on the second.
	mu       sync.Mutex
	queue    []item            // Guarded by mu.
	closing  *proto.Disconnect // Guarded by mu. Set once; no data is queued after it.
	queuedAt int64             // Guarded by mu: when the oldest entry now in queue was queued (Unix ns, 0: queue empty), for inspection (stats).
	// takes counts the writer's takes, guarded by mu: a subscription's
	// update frames queued since the last take (subscription.directAt)
	// are still in queue.
	takes   uint64
	discard bool // Guarded by mu: drop what is pending (eviction).
	writing bool // Guarded by mu: the writer is writing what it took; updates fold meanwhile.
	// busy is writing, written with it, for reading without mu: a hint
	// to the fan-out that this connection's updates will likely fold, so
	// that it does not encode a shared frame for it (encoded.prepare).
	busy atomic.Bool

	// wakes, when set, may hold a wake-up back during a feed burst (see
	// wakes). Static after construction (newConn sets it before the
	// connection is in use); held is true while it holds this outbox's.
	wakes *wakes
	held  atomic.Bool
	// holder marks mu as kept by a feed burst across its fan-outs
	// (burstLocks): that holder's id while it keeps it, else 0. Written
	// only by that holder, with mu held; read without it.
	holder atomic.Uint32
	// run starts the writer on demand once the connection is open
	// (writerrun.go); until then, and for outboxes without one, wake-ups
	// go to wake.
	run      writerRun
	wake     chan struct{} // Capacity 1: a pending wake-up for the writer.
	controls int           // Guarded by mu: control frames in queue.

	limit   int              // Static after construction: control frames pending at most.
	now     func() time.Time // Static after construction: the clock.
	delayed []item           // Guarded by mu: throttled subscriptions, waiting for their time.
	// For inspection (stats), guarded by mu: the messages the writer took
	// and has not finished writing, with when the oldest of them was
	// queued.
	taken     int
	takenFrom int64
}

// item is one entry of the FIFO: a frame, a subscription with data, or
// both: an update frame of that subscription (queueUpdate), which the
// writer takes without visiting the subscription. A subscription entry
// whose gen is not the subscription's current one was left behind by a
// re-subscribe and is skipped; an update frame dropped with what its
// subscription had pending (dropDirect) is left empty and skipped.
type item struct {
	frame []byte        // a complete frame (reply, pong, …, or an update of sub), or nil
	sub   *subscription // a subscription whose pending data is due, or whose update frame is
	gen   uint32        // sub.gen when queued (not set with a frame)
	ts    int64         // with an update frame: its source event time
}

func newOutbox(limit int, now func() time.Time) *outbox {
	return &outbox{limit: limit, now: now, wake: make(chan struct{}, 1)}
}

// lock takes mu. When it is taken, it asks the feed bursts to let the
// locks they keep go at their next delivery rather than at their end
// (burstLocks): whether a burst keeps this one is not asked, as a burst
// marks a lock kept (holder) only once it has it. Every taker of mu but a
// burst's fan-out goes through here.
func (o *outbox) lock() {
	if o.mu.TryLock() {
		return
	}
	if o.wakes != nil {
		o.wakes.yields.Add(1)
	}
	o.mu.Lock()
}

// pushResult says what happened to a pushed frame.
type pushResult uint8

const (
	pushed     pushResult = iota
	pushClosed            // the connection is closing; the frame was dropped
	pushFull              // too many control frames pending; the caller evicts
)

// push queues a control or reply frame.
func (o *outbox) push(f []byte) pushResult {
	o.lock()
	if o.closing != nil {
		o.mu.Unlock()
		return pushClosed
	}
	if o.controls >= o.limit {
		o.mu.Unlock()
		return pushFull
	}
	if o.queuedAt == 0 {
		o.queuedAt = o.now().UnixNano()
	}
	o.queue = append(o.queue, item{frame: f})
	o.controls++
	o.mu.Unlock()
	o.signal(o.now)
	return pushed
}

// ready puts s in the FIFO (or, when throttled and early, in delayed) if it
// has something pending and is not there yet. Called with o.mu held.
func (o *outbox) ready(s *subscription, now func() time.Time) {
	if s.queued || s.gated || s.plan != nil || o.closing != nil || !s.hasPending() {
		return
	}
	s.queued = true
	it := item{sub: s, gen: s.gen}
	switch {
	case s.notDue(now()):
		o.delayed = append(o.delayed, it)
	default:
		if o.queuedAt == 0 {
			o.queuedAt = now().UnixNano()
		}
		o.queue = append(o.queue, it)
	}
	o.signal(now)
}

// queueUpdate queues p, a ticker or book update of s that goes out on its
// own (subscription.unmerged): a shared frame of a subscription with
// nothing else pending or queued goes straight into the FIFO, so that the
// writer takes it without visiting s's queue; anything else waits in s's
// queue, in order behind what s has pending. Either way it counts against
// maxUnmerged until the writer takes it. Called with o.mu held.
func (o *outbox) queueUpdate(s *subscription, p pending, now func() time.Time) {
	if p.frame == nil {
		s.queue = append(s.queue, p)
		return
	}
	o.queueFrame(s, p.frame, p.ts, now)
}

// queueFrame is queueUpdate of a shared frame (with the event's time ts),
// the fan-out's common case: the frame, not a pending built and copied on
// the way, which for a 128-byte pending passed on the stack was a copy
// per recipient. It reports whether the frame went straight into the FIFO
// (queueDirect): then nothing of s is pending, and ready has nothing to
// do. Called with o.mu held.
func (o *outbox) queueFrame(s *subscription, frame []byte, ts int64, now func() time.Time) (direct bool) {
	if o.queueDirect(s, frame, ts, now) {
		return true
	}
	s.queue = append(s.queue, pending{frame: frame, ts: ts})
	return false
}

// queueDirect puts frame, an update frame of s, straight into the FIFO,
// counted in s.direct, when nothing of s waits before it there or in s's
// queue (else the frame would overtake it) and s is not held back (a
// join, a head to encode, a throttle); it reports whether it did. Called
// with o.mu held.
func (o *outbox) queueDirect(s *subscription, frame []byte, ts int64, now func() time.Time) bool {
	if s.queued || s.gated || s.plan != nil || s.thr != nil || o.closing != nil || s.hasPending() {
		return false
	}
	if o.queuedAt == 0 {
		o.queuedAt = now().UnixNano()
	}
	first := len(o.queue) == 0
	// Filled in place, field by field: an item literal, appended or
	// assigned, is built on the stack in words and copied in wider loads,
	// which wait for every store before them, cache misses included, to
	// reach the cache (docs/benchmarks.md, *A stall in the FIFO's
	// append*).
	if len(o.queue) == cap(o.queue) {
		o.queue = grow(o.queue)
	}
	o.queue = o.queue[:len(o.queue)+1]
	it := &o.queue[len(o.queue)-1]
	it.frame, it.sub, it.gen, it.ts = frame, s, 0, ts
	if s.directAt != o.takes {
		s.directAt, s.direct = o.takes, 0
	}
	s.direct++
	if first {
		// Whoever queued into a FIFO that is not empty signalled the
		// writer, which has not taken it yet: one wake-up covers both.
		o.signal(now)
	}
	return true
}

// grow returns q with room for one more item: append's growth, out of
// line (queueDirect fills the new item in place).
//
//go:noinline
func grow(q []item) []item {
	return slices.Grow(q, 1)
}

// directPending is how many update frames of s wait in the FIFO (see
// queueUpdate). Called with o.mu held.
func (o *outbox) directPending(s *subscription) int {
	if s.directAt != o.takes {
		return 0 // the writer took them
	}
	return int(s.direct)
}

// dropDirect drops the update frames of s that wait in the FIFO, with
// the rest of what s had pending (subscription.reset). Called with o.mu
// held.
func (o *outbox) dropDirect(s *subscription) {
	n := o.directPending(s)
	for i := len(o.queue) - 1; i >= 0 && n > 0; i-- {
		if it := &o.queue[i]; it.sub == s && it.frame != nil {
			*it = item{}
			n--
		}
	}
	s.direct, s.directBytes = 0, 0
}

// requeue forgets s's place in the FIFO (a re-subscribe): its old entry is
// skipped, and ready queues it anew behind what is queued meanwhile (the
// ack). Called with o.mu held.
func (o *outbox) requeue(s *subscription) {
	s.gen++
	s.queued = false
}

// close marks the outbox closing with d, unless it already is; it reports
// whether d was the first close. Everything already queued is still
// written, then the close frame.
func (o *outbox) close(d proto.Disconnect) bool {
	return o.shut(d, false)
}

// evict is close for a slow consumer: what is pending is dropped so the
// close frame goes out as soon as the writer is free.
func (o *outbox) evict(d proto.Disconnect) bool {
	return o.shut(d, true)
}

func (o *outbox) shut(d proto.Disconnect, discard bool) bool {
	o.lock()
	first := o.closing == nil
	if first {
		o.closing = &d
		o.discard = discard
		if discard {
			clear(o.queue)
			o.queue = o.queue[:0]
			o.controls = 0
			o.queuedAt = 0
		}
	}
	o.mu.Unlock()
	o.signal(o.now)
	return first
}

// signal wakes the writer, or leaves that to the node's wakes during a
// feed burst.
func (o *outbox) signal(now func() time.Time) {
	if o.wakes != nil && o.wakes.hold(o, now) {
		return
	}
	o.wakeWriter()
}

// wakeWriter wakes the writer now, starting one if none runs.
func (o *outbox) wakeWriter() {
	if o.run.wake(o.wake) {
		return
	}
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// batch is what the writer took from the outbox in one go: the FIFO's
// entries as they are when it held frames only (frames, copied whole by
// take), else what it held as pendings built one by one (items). A writer
// round hands take an empty batch, so it holds one or the other; a batch
// that holds both (a second take before a write) is written frames
// first, which is the order they were taken in. The writer clears what
// it wrote (writeBatch): a batch goes back to the node's scratch pool
// holding no frame.
type batch struct {
	frames []item
	items  []pending
	// delayed, set by take, says throttled subscriptions wait in the
	// outbox's delayed list: the writer arms its throttle timer
	// (nextDelayed) only then, not with one more lock every round. One
	// that joins the list later signals the writer, whose next round
	// sees it.
	delayed bool
}

func (b *batch) add(p pending) { b.items = append(b.items, p) }

// len is how many messages the batch holds.
func (b *batch) len() int { return len(b.frames) + len(b.items) }

// reset empties the batch, keeping its slices.
func (b *batch) reset() {
	clear(b.frames)
	b.frames = b.frames[:0]
	clear(b.items)
	b.items = b.items[:0]
}

// onlyFrames reports whether every entry of q is a frame (an update
// frame or a control frame), which a writer takes as it is.
func onlyFrames(q []item) bool {
	for i := range q {
		if q[i].frame == nil {
			return false
		}
	}
	return true
}

// take moves everything due into b: the FIFO in order, with throttled
// subscriptions whose time has come appended. It returns the close reason
// once the outbox is closing; after an eviction it takes nothing.
func (o *outbox) take(b *batch, now time.Time) *proto.Disconnect {
	o.lock()
	defer o.mu.Unlock()
	b.delayed = false
	if o.discard {
		return o.closing // an eviction: nothing more but the close frame
	}
	if len(o.delayed) > 0 {
		keep := o.delayed[:0]
		for _, it := range o.delayed {
			switch {
			case it.gen != it.sub.gen || it.sub.dead:
				// gone or re-queued: drop it now, not at its time
			case it.sub.notDue(now):
				keep = append(keep, it)
			default:
				o.queue = append(o.queue, it)
			}
		}
		clear(o.delayed[len(keep):])
		o.delayed = keep
		b.delayed = len(keep) > 0
	}
	o.takes++ // the update frames queued so far are taken now (directPending)
	if len(b.items) == 0 && onlyFrames(o.queue) {
		// The fan-out's common case: frames only. They are copied as
		// they are, in one move, rather than built into pendings one
		// by one. (Swapping the two slices instead would copy nothing,
		// but it passes FIFOs from one connection to the next through
		// the scratch pool: a quiet connection would keep a busy one's
		// long FIFO, and a busy one regrow its own every round.)
		b.frames = append(b.frames, o.queue...)
		clear(o.queue)
		o.queue = o.queue[:0]
		return o.tookAll(b, now)
	}
	for _, it := range o.queue {
		if it.frame != nil {
			b.add(pending{frame: it.frame, ts: it.ts})
			continue
		}
		s := it.sub
		if s == nil {
			continue // an update frame dropped (dropDirect)
		}
		if it.gen != s.gen {
			continue // left behind by a re-subscribe
		}
		s.queued = false
		if s.dead || s.gated || s.plan != nil {
			continue // gone, or back in line when ungated or its head is encoded
		}
		s.collect(b)
		if s.thr != nil {
			s.thr.nextAt = now.Add(s.thr.every)
		}
	}
	clear(o.queue)
	o.queue = o.queue[:0]
	return o.tookAll(b, now)
}

// tookAll is the end of take, once the FIFO is empty and b holds what
// it held. Called with o.mu held.
func (o *outbox) tookAll(b *batch, now time.Time) *proto.Disconnect {
	o.controls = 0
	o.writing = b.len() > 0
	o.busy.Store(o.writing)
	if o.writing {
		o.taken, o.takenFrom = b.len(), o.queuedAt
		if o.takenFrom == 0 { // only throttled subscriptions that fell due
			o.takenFrom = now.UnixNano()
		}
	}
	o.queuedAt = 0
	return o.closing
}

// wrote tells the outbox the writer finished writing what it took.
func (o *outbox) wrote() {
	o.lock()
	o.writing = false
	o.busy.Store(false)
	o.taken, o.takenFrom = 0, 0
	o.mu.Unlock()
}

// stats returns how many messages wait for the connection's socket (in
// the queue, throttled, or taken by the writer and not yet written) and
// since when the oldest of them waits (Unix ns; 0: none). Throttled
// subscriptions count from when they fall due. It walks the queue under
// mu: O(entries pending), and an idle connection has none.
func (o *outbox) stats() (pending int, oldest int64) {
	o.lock()
	defer o.mu.Unlock()
	pending = o.taken
	count := func(items []item) {
		for _, it := range items {
			switch {
			case it.frame != nil:
				pending++
			case it.sub == nil: // dropped (dropDirect)
			case it.gen == it.sub.gen && !it.sub.dead:
				pending += it.sub.pendingCount()
			}
		}
	}
	count(o.queue)
	count(o.delayed)
	oldest = o.takenFrom
	if oldest == 0 || o.queuedAt != 0 && o.queuedAt < oldest {
		oldest = o.queuedAt
	}
	return pending, oldest
}

// nextDelayed returns when the earliest throttled subscription is due
// (zero when none is waiting).
func (o *outbox) nextDelayed() time.Time {
	o.lock()
	defer o.mu.Unlock()
	var next time.Time
	for _, it := range o.delayed {
		if it.gen != it.sub.gen || it.sub.dead {
			continue
		}
		if t := it.sub.thr; t != nil && (next.IsZero() || t.nextAt.Before(next)) {
			next = t.nextAt
		}
	}
	return next
}
