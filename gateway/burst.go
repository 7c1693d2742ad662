package gateway

import "github.com/tickgate/tickgate/feed"

// Keeping outbox locks through a feed burst.
//
// A fan-out takes each subscriber's outbox lock to queue one message and
// lets it go: two atomic read-modify-writes per delivery, and the release
// waits for the stores of the queueing (a FIFO slot last touched a burst
// ago) to drain. In a feed burst the same connections are delivered to
// again and again: at 100 connections of 50 channels, a burst of 20
// messages reaches each connection about ten times. So while a
// dispatcher hands over messages back to back (feed.Message.More), its
// fan-outs keep the outbox locks they take, in burstLocks, until the
// burst's last message is fanned out: one lock and one release per
// connection per burst, not per message.
//
// The rule that keeps this free of deadlocks: a goroutine that keeps
// burst locks never waits for a lock that anyone waiting for an outbox
// may hold. It takes a channel's lock
// (hubEntry.mu) and each further outbox lock with TryLock; when one is
// taken, it lets every kept lock go first and then waits, holding what
// any fan-out holds (the channel's lock, then at most one outbox lock:
// the usual order). The locks it does wait for while keeping some (the
// hub's shards, the dispatcher's own, wakes.mu, the metrics' and the
// logger's) are never held by anyone waiting for an outbox. Whatever a
// fan-out calls that takes an outbox lock itself (an eviction, a status
// change, a snapshot's head, the writer rounds run inline at the burst's
// end) comes after the kept locks are let go. A dispatcher shared with
// another hub lets this hub's go at that hub's message (burstOf).
//
// Others wait less: whoever else waits for an outbox lock (a writer, a
// command's reply, the sweep, a fan-out that keeps none; outbox.lock)
// bumps wakes.yields, and every burst lets its locks go at its next
// delivery or message, whichever comes first. A burst also lets them go
// after maxBurstDeliveries deliveries and messages, so a writer on
// another core waits for at most about that many.

// maxBurstDeliveries bounds the deliveries (and messages) a burst makes
// while it keeps its locks; beyond it they are let go and taken again.
const maxBurstDeliveries = 2048

// burstLocks is a feed dispatcher's kept outbox locks (feed.Message.Local).
type burstLocks struct {
	hub *hub   // Static after construction: the hub whose fan-outs use it.
	id  uint32 // Static after construction: nonzero, unique in hub; the mark it leaves in outbox.holder.

	// The rest is owned by the dispatcher's goroutine.
	//
	// keep: the fan-out under way keeps the locks it takes (another
	// message follows right after it). held: the outboxes whose locks it
	// keeps, in the order taken. n: the deliveries and messages since the
	// locks were last let go. seen: wakes.yields when they were.
	keep bool
	held []*outbox
	n    int
	seen uint64
}

// burstOf returns the kept locks of the dispatcher that handed m over,
// made on its first message; nil for a message no dispatcher handed over
// (then every delivery locks and unlocks as it goes).
func (h *hub) burstOf(m *feed.Message) *burstLocks { return h.burstIn(m.Local()) }

// burstIn is burstOf of the dispatcher's slot (nil: none).
func (h *hub) burstIn(slot *any) *burstLocks {
	if slot == nil {
		return nil
	}
	switch b := (*slot).(type) {
	case *burstLocks:
		if b.hub == h {
			return b
		}
		// A dispatcher shared with another hub's channels: not this
		// hub's to use, and the other hub's burst, whose next message may
		// never come, lets its locks go here, on the same goroutine.
		b.release()
		return nil
	case nil:
		nb := h.newBurst()
		*slot = nb
		return nb
	}
	return nil
}

// newBurst returns kept locks for one goroutine's fan-outs.
func (h *hub) newBurst() *burstLocks {
	return &burstLocks{hub: h, id: h.burstIDs.Add(1), seen: h.wakes.yields.Load()}
}

// holds reports whether b keeps o's lock. held lists each kept lock
// once: lock is not called for one b holds, and release empties it.
func (b *burstLocks) holds(o *outbox) bool {
	return b.keeping() && o.holder.Load() == b.id
}

// keeping reports whether b keeps any lock.
func (b *burstLocks) keeping() bool { return b != nil && len(b.held) > 0 }

// lock takes o's lock and keeps it. When another has it, b lets its own
// go before waiting.
func (b *burstLocks) lock(o *outbox) {
	if !o.mu.TryLock() {
		b.release()
		o.lock()
	}
	o.holder.Store(b.id)
	b.held = append(b.held, o)
}

// lockEntry takes e's lock for a fan-out, waiting for it only once b
// keeps nothing. b may be nil.
func (b *burstLocks) lockEntry(e *hubEntry) {
	if b.keeping() {
		if e.mu.TryLock() {
			return
		}
		b.release()
	}
	e.mu.Lock()
}

// step counts one delivery of a fan-out that keeps locks, or one message
// (which may deliver nothing: a duplicate, a channel without
// subscribers), and lets the locks go when someone waits for one
// (wakes.yields moved) or after maxBurstDeliveries. After a wait the rest
// of the fan-out keeps none: each lock is let go after its delivery, so
// the waiter, woken, finds its lock free, rather than taken again by the
// next message's delivery.
func (b *burstLocks) step() {
	b.n++
	if y := b.hub.wakes.yields.Load(); y != b.seen {
		b.release()
		b.keep = false
	} else if b.n > maxBurstDeliveries {
		b.release()
	}
}

// release lets every kept lock go. b may be nil.
func (b *burstLocks) release() {
	if b == nil {
		return
	}
	for i, o := range b.held {
		o.holder.Store(0)
		o.mu.Unlock()
		b.held[i] = nil
	}
	b.held = b.held[:0]
	b.n = 0
	b.seen = b.hub.wakes.yields.Load()
}
