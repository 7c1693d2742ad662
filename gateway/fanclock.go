package gateway

import "time"

// fanClock is the node's clock as one fan-out reads it: once, at its
// first use, and that reading for every subscriber of the feed message.
// What a fan-out stamps (outbox.queuedAt, wakes' heldSince) and the
// throttle checks it makes need the fan-out's instant, not each
// recipient's: a fan-out of a few thousand recipients takes about a
// millisecond, and a reading per recipient was two clock reads per
// delivery, 2-3% of a node's CPU in workload C (docs/benchmarks.md).
// The reading errs early, never late: a hold looks at least as old as it
// is, and is released no later than maxHold.
//
// A writer round has one too (conn.round): its instant, and the reading
// after its write (read), for the delivery latency. An inline sweep
// (wakes.releaseInline) hands that reading to the next round as its
// instant, so that a sweep reads the clock once per round, not twice
// (docs/benchmarks.md); the staleness is bounded the same way: one
// sweep, after one fan-out.
//
// Owned by the goroutine that reads it; not for use across fan-outs or
// rounds.
type fanClock struct {
	clock func() time.Time // the node's clock
	at    time.Time        // the reading; zero until the first
}

// now is the fan-out's instant, read from the clock on the first call.
func (f *fanClock) now() time.Time {
	if f.at.IsZero() {
		f.at = f.clock()
	}
	return f.at
}

// read reads the clock, and makes the reading the instant of what follows.
func (f *fanClock) read() time.Time {
	f.at = f.clock()
	return f.at
}
