package gateway

import (
	"sync"
	"sync/atomic"
	"time"
)

// A connection's writer runs only while it has work: a wake-up that finds
// no writer starts one (a goroutine), and the writer ends when a round
// took nothing new since it last looked. An idle connection thus holds no
// writer goroutine, no goroutine stack and no write buffer: at 10,000
// connections that is 10,000 parked stacks fewer. What a writer keeps
// from one run to the next lives in conn (deadline, throttle) and is
// touched by one writer at a time; its batch and write buffer come from
// writerScratchPool for the run and go back at its end.

// writerRun is the run state of an outbox's writer, with the function that
// starts one. The zero value is runOff: the outbox has no on-demand
// writer, and a wake-up goes to outbox.wake for a loop of its own (tests,
// models) to read.
//
// States and who moves them:
//
//	runOff   -> runBusy  startWriter (once, before the first run)
//	runIdle  -> runBusy  a wake-up, which then starts a writer
//	runBusy  -> runAgain a wake-up while a writer runs
//	runAgain -> runBusy  the writer, before it takes from the outbox
//	runBusy  -> runIdle  the writer, when it ends its run
//	any      -> runOver  the writer, when it ends for good (done, close
//	                     frame written, write failed)
//
// No wake-up is lost: the writer moves to runBusy before it takes, so a
// wake-up after its take finds runAgain (the writer goes round again)
// or, once it moved to runIdle, starts a new writer; a wake-up before the
// take was for work the take sees.
type writerRun struct {
	state atomic.Int32
	// start launches a writer run on a new goroutine. Written once by
	// startWriter before state leaves runOff, read after it did.
	start func()
}

const (
	runOff   int32 = iota // no on-demand writer: wake-ups go to outbox.wake
	runIdle               // no writer goroutine
	runBusy               // a writer runs
	runAgain              // a writer runs and was woken since it last took
	runOver               // the writer ended for good; wake-ups are ignored
)

// wake makes sure a writer will look at the outbox: it starts one when
// none runs, or marks the running one to go round again. It reports false
// when the outbox has no on-demand writer (runOff).
func (r *writerRun) wake() bool {
	for {
		switch s := r.state.Load(); s {
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
		default: // runAgain, runOver
			return true
		}
	}
}

// next is called by the writer before each round; it reports whether the
// round happens. The first round of a run always does; a later one only
// when a wake-up came during the round before, and otherwise the run ends
// (runIdle) and the writer must return.
func (r *writerRun) next(first bool) bool {
	if !first && r.state.CompareAndSwap(runBusy, runIdle) {
		return false
	}
	r.state.Store(runBusy) // from runAgain: this round takes what the wake-up was for
	return true
}

// over marks the writer ended for good: later wake-ups start nothing.
func (r *writerRun) over() { r.state.Store(runOver) }

// running reports whether a writer goroutine runs (or is about to).
func (r *writerRun) running() bool {
	s := r.state.Load()
	return s == runBusy || s == runAgain
}

// startWriter switches the connection to on-demand writers and starts the
// first run (the welcome is queued already). Wake-ups before it went to
// outbox.wake, which nobody reads then; the first run takes what they
// were for.
func (c *conn) startWriter() {
	c.out.run.start = func() { go c.writeLoop() }
	c.out.run.state.Store(runBusy)
	go c.writeLoop()
}

// writerScratch is what a writer run uses and a connection does not keep
// between runs: the batch it takes into and the buffer it writes from.
type writerScratch struct {
	b   batch
	buf []byte
}

// maxScratchBuf bounds the write buffer kept in writerScratchPool: a batch
// is cut at maxWriteBytes, plus at most one frame beyond it (a frame larger
// than that is written from a buffer that is then dropped).
const maxScratchBuf = 2 * maxWriteBytes

var writerScratchPool = sync.Pool{New: func() any { return new(writerScratch) }}

func getWriterScratch() *writerScratch { return writerScratchPool.Get().(*writerScratch) }

// putWriterScratch returns w to the pool, holding no frame.
func putWriterScratch(w *writerScratch) {
	clear(w.b.items)
	w.b.items = w.b.items[:0]
	if cap(w.buf) > maxScratchBuf {
		w.buf = nil
	}
	w.buf = w.buf[:0]
	writerScratchPool.Put(w)
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
	putWriterScratch(w)
	if idle {
		return
	}
	c.out.run.over()
	if c.throttle != nil {
		c.throttle.Stop()
	}
}
