package gateway

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// maxHold bounds how long a writer's wake-up may be held back while other
// fan-outs keep running (a node busy without a pause): beyond it the held
// wake-ups go out when the next fan-out ends.
const maxHold = 500 * time.Microsecond

// wakes holds back writers' wake-ups while several feed messages are fanned
// out (a feed burst: one after another on a feed dispatcher, or at once on
// several), so that a writer wakes once for everything the burst left it
// and writes it in one syscall, instead of once per message. A wake-up is
// held while another fan-out is under way, and, for a connection whose
// writer rounds may run inline (inline.go), while the caller's own is, and
// until the next when the dispatcher says one follows (end's more). The
// last fan-out to end releases them all, once the fan-outs runnable then
// have run (settle): it runs its share of the writer rounds itself and
// wakes the other writers. Any fan-out that ends or holds a wake-up while
// the oldest held one is older than maxHold wakes them all. Nothing waits
// for a timer.
//
// Ownership: busy is atomic; held and heldSince are guarded by mu. An
// outbox is in held at most once (outbox.held).
type wakes struct {
	now   func() time.Time // Static after construction: the clock.
	procs int              // Static after construction: GOMAXPROCS then (sweepParts).
	// backlog reports whether feed messages wait unread (feed.Source's
	// Backlogged); nil: never. Static after construction (newHub).
	backlog func() bool
	busy    atomic.Int32  // fan-outs under way
	begun   atomic.Uint64 // fan-outs begun so far
	// yields counts the waits for an outbox lock (outbox.lock): on
	// seeing it move, the feed bursts let the locks they keep go at their
	// next delivery or message (burstLocks).
	yields atomic.Uint64

	mu        sync.Mutex
	held      []*outbox // Guarded by mu: outboxes whose writer waits for a wake-up.
	heldSince int64     // Guarded by mu: when held became non-empty (Unix ns).
	spare     []*outbox // Guarded by mu: the previous held's array, for reuse.

	// touch is what sweeps need to read their connections' lines ahead of
	// their rounds (touch.go). Safe for concurrent use.
	touch touches
}

func newWakes(now func() time.Time) *wakes {
	return &wakes{now: now, procs: runtime.GOMAXPROCS(0)}
}

// begin marks a fan-out under way; end must follow.
func (w *wakes) begin() {
	w.begun.Add(1)
	w.busy.Add(1)
}

// end marks a fan-out done, and releases the held wake-ups when it was the
// last one under way (settle), or when they have waited maxHold.
//
// behind reports that more messages of the fan-out's channel wait in the
// feed (feed.Message.Behind): the node is behind, or in a burst of one
// channel. The writers are then woken, as on a node whose writers are
// writing: they run after the fan-outs of what waits and take it
// together, where writing each message inline would make a node that is
// behind write once per message, and fall further behind.
//
// more reports that other feed messages wait to be fanned out right
// after this one on the caller's goroutine (feed.Message.More): a feed
// burst. The wake-ups stay held for the fan-out that follows, whose end
// releases them, unless they have waited maxHold.
func (w *wakes) end(behind, more bool) {
	if w.busy.Add(-1) == 0 {
		switch {
		case more && !behind: // late looks at what is held: one lock
			if w.late() {
				w.release()
			}
		case !w.holding():
		case behind:
			w.release()
		default:
			w.settle()
		}
		return
	}
	if w.late() {
		w.release()
	}
}

// pass stands for the fan-out of a feed message that runs none on the
// caller's goroutine (its channel has no entry left, or its fan-out runs
// on another): the wake-ups the burst held for it are let go as that
// fan-out's end would.
func (w *wakes) pass(behind, more bool) {
	w.begin()
	w.end(behind, more)
}

// late reports whether the oldest wake-up held has waited maxHold.
func (w *wakes) late() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.held) > 0 && w.now().UnixNano()-w.heldSince > int64(maxHold)
}

// hold defers o's wake-up while a fan-out is under way: another one than
// the caller's, or any for a connection whose writer rounds may run
// inline (released at the fan-out's end); it reports false when o's
// writer must be woken now. After queueing
// o it looks at busy again: a fan-out that released everything just before
// o was queued would otherwise leave it waiting for the next one. It
// releases everything held when the oldest has waited maxHold. now is the
// caller's clock: a fan-out's (fanClock), or the node's.
func (w *wakes) hold(o *outbox, now func() time.Time) bool {
	if n := w.busy.Load(); n == 0 || n == 1 && !o.run.inlines() {
		return false
	}
	if !o.held.CompareAndSwap(false, true) {
		return true // already held: its wake-up comes with the others
	}
	at := now().UnixNano()
	w.mu.Lock()
	if len(w.held) == 0 {
		w.heldSince = at
	}
	w.held = append(w.held, o)
	late := at-w.heldSince > int64(maxHold)
	w.mu.Unlock()
	if late || w.busy.Load() == 0 {
		w.release()
	}
	return true
}

// maxSettleYields bounds the yields of settle: a node whose fan-outs
// never pause wakes its writers after that many.
const maxSettleYields = 4

// settle runs once the last fan-out under way ended with wake-ups held:
// it yields until a yield passes with no fan-out begun (the feed burst,
// if any, is fanned out), then runs its share of the held connections'
// writer rounds on its goroutine (releaseInline). A fan-out under way
// after a yield releases at its own end. When fan-outs keep beginning it
// wakes the writers instead.
func (w *wakes) settle() {
	for range maxSettleYields {
		seen := w.begun.Load()
		runtime.Gosched()
		if w.busy.Load() != 0 {
			return
		}
		if w.begun.Load() == seen {
			if w.backlog != nil && w.backlog() {
				break // more feed waits unread: wake the writers, as end does for a message behind
			}
			w.releaseInline(true)
			return
		}
	}
	w.release()
}

// holding reports whether a wake-up is held.
func (w *wakes) holding() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.held) > 0
}

// release wakes every held writer.
func (w *wakes) release() { w.releaseInline(false) }

// releaseInline wakes every held writer, or, with inline, runs the held
// connections' writer rounds, where their writers are not running, and
// wakes the other writers: on the caller's goroutine, and on more
// cores on goroutines started for parts of them (sweepParts). With
// inline the caller holds no lock.
func (w *wakes) releaseInline(inline bool) {
	w.mu.Lock()
	held := w.held
	w.held, w.spare = w.spare[:0], nil
	w.mu.Unlock()
	parts := 1
	if inline {
		parts = sweepParts(len(held), w.procs)
	}
	if parts == 1 {
		sweepHeld(held, inline, &w.touch)
		w.recycle(held)
		return
	}
	// The other parts' goroutines own their parts of held's array, which
	// is not recycled.
	per := (len(held) + parts - 1) / parts
	for lo := per; lo < len(held); lo += per {
		go func(part []*outbox) {
			reserveStack()
			sweepHeld(part, true, &w.touch)
		}(held[lo:min(lo+per, len(held))])
	}
	sweepHeld(held[:per], true, &w.touch)
}

// sweepHeld releases held's connections: with inline, it runs the writer
// round of each whose writer is not running, one after another with one
// clock reading carried from round to round (fanClock), having read
// their lines first (touchHeld), and adding what the rounds wrote to the
// node's metrics once, after the last (writeTally); and it wakes the
// writers of the others. Without inline, it wakes every writer.
func sweepHeld(held []*outbox, inline bool, touch *touches) {
	var (
		at time.Time
		t  writeTally // the rounds' metrics, added once at the end
	)
	if inline && len(held) > 1 {
		touchHeld(held, touch)
	}
	for i, o := range held {
		o.held.Store(false)
		ran := false
		if inline {
			ran, at = o.run.tryInline(at, &t)
		}
		if !ran {
			o.wakeWriter()
		}
		held[i] = nil
	}
	t.flush()
}

// recycle keeps held's array for the next held list.
func (w *wakes) recycle(held []*outbox) {
	w.mu.Lock()
	if w.spare == nil && cap(held) <= 4096 {
		w.spare = held[:0]
	}
	w.mu.Unlock()
}
