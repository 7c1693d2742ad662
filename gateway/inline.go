package gateway

import "time"

// Inline writer rounds.
//
// A feed message fanned out to a connection whose writer is not running
// used to wake a writer goroutine for it: a goroutine start or a parked
// goroutine made runnable, a scheduler switch, and the goroutine's park
// again after its write, for every message on a connection that gets one
// at a time. Instead, the fan-out's goroutine runs that connection's
// writer round itself once the fan-out is over (wakes.end): the same
// round (conn.round), with the socket in inline mode (sockConn), where a
// write never waits. What the socket does not take at once is kept and
// written by a writer goroutine, within the write deadline, before
// anything else; so is the close frame. A connection whose writer runs
// when the fan-out ends is woken as before.
//
// The fan-out never waits on a socket, and its writer rounds run after
// the channel's lock is released. One writer round runs at a time per
// connection: the round is entered by the same move of the run state
// (runIdle to runBusy) that starts a writer goroutine, and left by the
// move back (or, when a wake-up came meanwhile, by starting one).
//
// A feed burst (many channels' messages at once) is fanned out on many
// goroutines, one per channel, and a connection should get the burst in
// one write, not one per message. So the wake-ups of a fan-out are held
// until no fan-out is under way (wakes), and the last one to end yields
// until a yield passes with no fan-out begun (wakes.settle), letting the
// burst's other fan-outs, runnable by then, go first; then it runs the
// rounds. A lone message waits for nothing: the yield returns at once
// when nothing else is runnable.

// minSweep is the fewest held connections a sweep is split for: a
// helper goroutine (its start, and waking a thread for it on an idle
// core) costs about what a few writer rounds do.
const minSweep = 8

// sweepParts is how many goroutines run the writer rounds of n held
// connections, with procs the node's GOMAXPROCS: the fan-out's end runs
// one part, and each other part is a goroutine started for it, so that
// the rounds run on every core and a connection's round never waits for
// all the others. On one core, and for fewer than 2 × minSweep
// connections, one part.
//
// (The parts replaced waking the writer goroutine of every connection
// beyond a GOMAXPROCS-th share: a wake-up per connection, each a
// goroutine made runnable, its own write deadline armed, and a park
// after its round. With the node on two cores that cost 6% of the CPU
// per message in the bursty workload and in A, docs/benchmarks.md.)
func sweepParts(n, procs int) int {
	return max(1, min(procs, n/minSweep))
}

// writeInline runs one writer round of c on the caller's goroutine, at
// the instant at (zero: the clock's reading now), and returns the clock's
// reading after the round's write of messages (the round's instant, when
// it wrote none: a ping or a heartbeat alone reads no clock), for the
// next round of the caller's sweep (fanClock); the
// caller moved the run state from runIdle to runBusy. It leaves the state
// at runIdle, or starts a writer goroutine for what the round could not
// finish (bytes the socket kept, the close frame, a wake-up that came
// during the round). What it writes goes to t's metrics, which the caller
// flushes.
func (c *conn) writeInline(at time.Time, t *writeTally) (after time.Time) {
	r := &c.out.run
	after = at
	inlineMode := false
	defer func() {
		if v := recover(); v != nil {
			if inlineMode {
				c.sock.endInline()
			}
			r.over()
			c.srv.panicked("inline writer", c, v)
		}
	}()
	if !c.sock.tryBeginInline() {
		r.start() // a write that may wait is under way: the goroutine's to wait for
		return
	}
	inlineMode = true
	if n := c.srv.counts.Load(); n != nil {
		n.inline.Add(1)
	}
	w := c.srv.scratch.get()
	clk := fanClock{clock: c.srv.cfg.Now, at: at}
	over, handOff := c.round(w, &clk, true, t)
	after = clk.at
	kept := c.sock.endInline()
	inlineMode = false
	c.srv.scratch.put(w)
	if !kept {
		c.out.wrote() // else the goroutine does, once it wrote what was kept (flushKept)
	}
	switch {
	case over:
		c.endWriter(nil, false)
	case kept || handOff || !r.state.CompareAndSwap(runBusy, runIdle):
		r.state.Store(runBusy) // from runAgain: the goroutine takes what it was for
		r.start()
	}
	return after
}

// tryInline runs a writer round for o on the caller's goroutine, at the
// instant at (as writeInline), when o's writer is not running (runIdle),
// and reports whether it did, with the clock's reading after the round. A
// connection without inline rounds gets its writer goroutine started
// instead, as a wake-up would. What the round writes goes to t's metrics.
//
// A connection's round is a static call: t, passed through the
// interface's indirect call, would leave the sweep's stack for the heap
// (one allocation per sweep; TestInlineSweepAllocatesNothing). Any other
// rounder (a test's) writes nothing, and gets no tally.
func (r *writerRun) tryInline(at time.Time, t *writeTally) (ran bool, after time.Time) {
	if !r.state.CompareAndSwap(runIdle, runBusy) {
		return false, at
	}
	switch in := r.inline.(type) {
	case nil:
		r.start()
		return true, at
	case *conn:
		return true, in.writeInline(at, t)
	default:
		return true, in.writeInline(at, nil)
	}
}

// inlines reports whether o's writer rounds may run inline.
func (r *writerRun) inlines() bool {
	return r.state.Load() != runOff && r.inline != nil
}
