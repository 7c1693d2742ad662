package gateway

import (
	"sync"
	"sync/atomic"
	"time"
)

// A connection's writer runs only while it has work: a wake-up that finds
// no writer starts one (a goroutine), and a writer whose round took
// nothing new waits for a wake-up only until the node's next sweep tick
// (its grace), then ends. An idle connection thus holds no writer
// goroutine, no goroutine stack and no write buffer: at 10,000
// connections that is 10,000 parked stacks fewer. A busy one keeps its
// writer across the gaps between messages, as before: starting a
// goroutine per message (and growing its stack to what a write needs)
// cost about a tenth of the deliveries per core in bursty loads
// (docs/benchmarks.md). What a writer keeps from one run to the next lives in conn
// (deadline, throttle) and is touched by one writer at a time; its batch
// and write buffer come from the node's scratchPool for the run and go back at
// its end.

// writerRun is the run state of an outbox's writer, with the function that
// starts one. The zero value is runOff: the outbox has no on-demand
// writer, and a wake-up goes to outbox.wake for a loop of its own (tests,
// models) to read.
//
// States and who moves them:
//
//	runOff    -> runBusy   startWriter (once, before the first run)
//	runIdle   -> runBusy   a wake-up, which then starts a writer
//	runBusy   -> runAgain  a wake-up while a writer runs
//	runAgain  -> runBusy   the writer, before it takes from the outbox
//	runBusy   -> runParked the writer, when a round found no wake-up behind it
//	runParked -> runBusy   a wake-up, which then signals outbox.wake
//	runParked -> runIdle   the writer, at the grace tick after it parked: it ends
//	runBusy   -> runIdle   the writer, when it has no grace (tests): it ends
//	any       -> runOver   the writer, when it ends for good (done, close
//	                       frame written, write failed)
//
// No wake-up is lost: the writer moves to runBusy before it takes, so a
// wake-up after its take finds runAgain (the writer goes round again),
// runParked (the wake-up moves it to runBusy and signals the parked
// writer) or, once it ended (runIdle), starts a new writer; a wake-up
// before the take was for work the take sees. Only the writer leaves
// runParked for runIdle, so a writer that finds runBusy after waking was
// woken, and is the only one.
type writerRun struct {
	state atomic.Int32
	// start launches a writer run on a new goroutine. Written once by
	// startWriter before state leaves runOff, read after it did.
	start func()
	// grace is the node's sweep tick that ends parked writers; nil: a
	// writer ends as soon as a round finds no wake-up behind it. Written
	// with start.
	grace *graceTicks
	// inline runs one writer round on the caller's goroutine at an
	// instant (zero: the clock's now), returning the clock's reading after
	// the round (conn.writeInline); nil: every round runs on a writer
	// goroutine. Written with start. An interface, not a func: a bound
	// method value is an object of its own, one more cold cache line to
	// load per delivery on a node with thousands of connections, where
	// the interface's method table is shared by all of them and its data
	// is the connection itself.
	inline inlineRounder
}

// inlineRounder runs a writer round on the caller's goroutine: conn, or
// an inlineFunc in tests.
type inlineRounder interface {
	writeInline(at time.Time, t *writeTally) (after time.Time)
}

// inlineFunc is a function as an inlineRounder.
type inlineFunc func(at time.Time) time.Time

func (f inlineFunc) writeInline(at time.Time, _ *writeTally) time.Time { return f(at) }

const (
	runOff    int32 = iota // no on-demand writer: wake-ups go to outbox.wake
	runIdle                // no writer goroutine
	runBusy                // a writer runs
	runAgain               // a writer runs and was woken since it last took
	runParked              // a writer waits for a wake-up until the next grace tick
	runOver                // the writer ended for good; wake-ups are ignored
)

// wake makes sure a writer will look at the outbox: it starts one when
// none runs, wakes a parked one (through wake, the outbox's channel), or
// marks a running one to go round again. It reports false when the
// outbox has no on-demand writer (runOff).
func (r *writerRun) wake(wake chan struct{}) bool {
	for {
		switch r.state.Load() {
		case runOff:
			return false
		case runIdle:
			if r.state.CompareAndSwap(runIdle, runBusy) {
				r.start()
				return true
			}
		case runBusy:
			if r.state.CompareAndSwap(runBusy, runAgain) {
				return true
			}
		case runParked:
			if r.state.CompareAndSwap(runParked, runBusy) {
				select {
				case wake <- struct{}{}:
				default: // a stale signal is there already: it wakes the writer as well
				}
				return true
			}
		default: // runAgain, runOver
			return true
		}
	}
}

// next is called by the writer before each round, with the outbox's
// channel; it reports whether the round happens. The first round of a run
// always does; a later one when a wake-up came during the round before,
// or while the writer is parked. Parked, it ends at the grace tick: next
// reports false (runIdle) and the writer must return.
func (r *writerRun) next(first bool, wake <-chan struct{}) bool {
	if first || r.state.CompareAndSwap(runAgain, runBusy) {
		r.state.Store(runBusy) // from runAgain: this round takes what the wake-up was for
		return true
	}
	if r.grace == nil {
		if r.state.CompareAndSwap(runBusy, runIdle) {
			return false
		}
		r.state.Store(runBusy) // woken meanwhile
		return true
	}
	tick := r.grace.next()
	if !r.state.CompareAndSwap(runBusy, runParked) {
		r.state.Store(runBusy) // woken meanwhile
		return true
	}
	for {
		select {
		case <-wake:
			if r.state.Load() != runParked {
				r.state.Store(runBusy) // runBusy or runAgain: woken
				return true
			}
			// a signal left from an earlier wake-up: keep waiting
		case <-tick:
			if r.state.CompareAndSwap(runParked, runIdle) {
				return false
			}
			r.state.Store(runBusy) // woken just now
			return true
		}
	}
}

// over marks the writer ended for good: later wake-ups start nothing.
func (r *writerRun) over() { r.state.Store(runOver) }

// running reports whether a writer goroutine runs or is parked.
func (r *writerRun) running() bool {
	switch r.state.Load() {
	case runBusy, runAgain, runParked:
		return true
	}
	return false
}

// graceTicks is the node's grace tick for parked writers: a channel that
// the sweep closes on each of its ticks and replaces.
type graceTicks struct {
	ch atomic.Pointer[chan struct{}]
}

func newGraceTicks() *graceTicks {
	g := &graceTicks{}
	ch := make(chan struct{})
	g.ch.Store(&ch)
	return g
}

// next returns the channel that the next tick closes.
func (g *graceTicks) next() <-chan struct{} { return *g.ch.Load() }

// tick ends the current grace: every writer parked now ends, unless
// woken meanwhile.
func (g *graceTicks) tick() {
	ch := make(chan struct{})
	close(*g.ch.Swap(&ch))
}

// startWriter switches the connection to on-demand writers and starts the
// first run (the welcome is queued already). Wake-ups before it went to
// outbox.wake, which nobody reads then; the first run takes what they
// were for.
func (c *conn) startWriter() {
	c.out.run.start = func() {
		if n := c.srv.counts.Load(); n != nil {
			n.starts.Add(1)
		}
		go c.writeLoop()
	}
	if c.sock != nil {
		// Every feed message's round runs inline while the node keeps up
		// (on more than one core, split among goroutines: sweepParts): a
		// writer goroutine is for what a round cannot finish there (kept
		// bytes, the close frame), for replies and chores, and for a node
		// that is behind; parked (a grace), it would only keep the next
		// message's round from running inline. (On two cores, in turns:
		// 3% less CPU per message in C-burst, 2% in A, a tenth less RSS
		// in A.)
		c.out.run.inline = c // rounds for feed messages (inline.go: writeInline)
	} else {
		c.out.run.grace = c.srv.grace
	}
	c.out.run.state.Store(runBusy)
	go c.writeLoop()
}

// writerScratch is what a writer run uses and a connection does not keep
// between runs: the batch it takes into and the buffer it writes from.
type writerScratch struct {
	b   batch
	buf []byte
}

// maxScratchBuf bounds the write buffer kept in a scratchPool: a batch is
// cut at maxWriteBytes, plus at most one frame beyond it (a frame larger
// than that is written from a buffer that is then dropped).
const maxScratchBuf = 2 * maxWriteBytes

// maxScratchFrames bounds the frames slice kept in a scratchPool, as
// maxScratchBuf bounds the buffer: 256 entries (12 KiB), where a burst's
// round takes about ten.
const maxScratchFrames = 256

// scratchPool holds the node's writer scratch between runs; the zero
// value is ready and safe for concurrent use.
type scratchPool struct{ p sync.Pool }

func (sp *scratchPool) get() *writerScratch {
	if w, ok := sp.p.Get().(*writerScratch); ok {
		return w
	}
	return new(writerScratch)
}

// put returns w to the pool, holding no frame, and without a frames
// slice or buffer beyond its bound (one that grew while a connection
// was behind).
func (sp *scratchPool) put(w *writerScratch) {
	w.b.reset()
	if cap(w.b.frames) > maxScratchFrames {
		w.b.frames = nil
	}
	if cap(w.buf) > maxScratchBuf {
		w.buf = nil
	}
	w.buf = w.buf[:0]
	sp.p.Put(w)
}

// armThrottle has the writer started again in d, when the earliest
// throttled subscription falls due. The timer is made on first use and
// kept (a connection with a throttled subscription needs it again).
// Called by the writer.
func (c *conn) armThrottle(d time.Duration) {
	if c.throttle == nil {
		c.throttle = time.AfterFunc(d, c.out.wakeWriter)
		return
	}
	c.throttle.Reset(d)
}

// endWriter is the end of a writer run: the scratch goes back to the pool,
// and unless the run ended idle (the writer may be started again) the
// writer is over and its timer stopped.
func (c *conn) endWriter(w *writerScratch, idle bool) {
	if w != nil {
		c.srv.scratch.put(w)
	}
	if idle {
		return
	}
	c.out.run.over()
	if c.throttle != nil {
		c.throttle.Stop()
	}
}
