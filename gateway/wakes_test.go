package gateway

import (
	"bytes"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"
)

// A writer's wake-up is held only while another fan-out than the one that
// queued its data is under way, and released when the last ends, or once
// the oldest held wake-up is older than maxHold.
func TestWakesHoldDuringBurst(t *testing.T) {
	type step struct {
		do   string // begin, end, signal, signal other (another connection's), late (the clock moves past maxHold)
		woke bool   // after the step: the writer has a wake-up
	}
	cases := map[string][]step{
		"lone message wakes at once": {
			{"begin", false}, {"signal", true}, {"end", true},
		},
		"no fan-out: a reply wakes at once": {
			{"signal", true},
		},
		"burst: held until the last fan-out ends": {
			{"begin", false}, {"begin", false}, {"signal", false}, {"signal", false},
			{"end", false}, {"end", true},
		},
		"a reply during a burst waits for it too": {
			{"begin", false}, {"begin", false}, {"signal", false}, {"end", false}, {"end", true},
		},
		"a busy node releases after maxHold, on the next end": {
			{"begin", false}, {"begin", false}, {"signal", false}, {"late", false},
			{"begin", false}, {"end", true},
		},
		"a busy node releases after maxHold, on the next hold": {
			{"begin", false}, {"begin", false}, {"signal", false}, {"late", false},
			{"signal other", true},
		},
	}
	for name, steps := range cases {
		t.Run(name, func(t *testing.T) {
			now := time.Unix(1, 0)
			w := newWakes(func() time.Time { return now })
			o := newOutbox(16, w.now)
			o.wakes = w
			other := newOutbox(16, w.now)
			other.wakes = w
			for i, st := range steps {
				switch st.do {
				case "begin":
					w.begin()
				case "end":
					w.end(false, false)
				case "signal":
					o.signal(w.now)
				case "signal other":
					other.signal(w.now)
				case "late":
					now = now.Add(2 * maxHold)
				}
				if got := len(o.wake) == 1; got != st.woke {
					t.Fatalf("step %d (%s): woken %v, want %v", i, st.do, got, st.woke)
				}
			}
			if o.held.Load() {
				t.Fatal("outbox still marked held")
			}
		})
	}
}

// A connection whose writer rounds may run inline has its wake-up held
// by its own fan-out, and its round run by that fan-out's end: unless the
// feed is behind on the channel (end(true)) or unread feed waits
// (backlog), when its writer is started instead.
func TestWakesInlineOrWake(t *testing.T) {
	cases := map[string]struct {
		behind, backlog bool
		inline          bool
	}{
		"a lone message: inline":         {inline: true},
		"the channel is behind: writer":  {behind: true},
		"feed bytes wait unread: writer": {backlog: true},
		"both: writer":                   {behind: true, backlog: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			w := newWakes(time.Now)
			w.backlog = func() bool { return tc.backlog }
			o, ran := inlineOutbox(w)
			w.begin()
			o.signal(w.now)
			if ran.started+ran.inlined != 0 {
				t.Fatal("the writer ran before the fan-out ended")
			}
			w.end(tc.behind, false)
			ran.check(t, tc.inline)
		})
	}
}

// writerRuns counts how an outbox's writer ran: rounds run inline, and
// writer goroutines started (inlineOutbox).
type writerRuns struct{ inlined, started int }

// check fails t unless exactly one round ran, inline when inline, else
// on a writer started for it.
func (r *writerRuns) check(t *testing.T, inline bool) {
	t.Helper()
	if inline && (r.inlined != 1 || r.started != 0) || !inline && (r.inlined != 0 || r.started != 1) {
		t.Fatalf("%d inline rounds, %d writers started; want inline %v", r.inlined, r.started, inline)
	}
}

// inlineOutbox is an outbox of w whose writer rounds may run inline, with
// an idle writer, counting how its rounds run.
func inlineOutbox(w *wakes) (*outbox, *writerRuns) {
	o := newOutbox(16, w.now)
	o.wakes = w
	ran := &writerRuns{}
	o.run.start = func() { ran.started++ }
	o.run.inline = inlineFunc(func(at time.Time) time.Time {
		ran.inlined++
		o.run.state.Store(runIdle)
		return at
	})
	o.run.state.Store(runIdle)
	return o, ran
}

// A fan-out followed at once by another on the same goroutine (the feed's
// dispatcher said more follows: feed.Message.More) leaves its wake-ups
// held, and the last fan-out of the burst runs the rounds; unless they
// have waited maxHold, when the writers are started.
func TestWakesHeldWhileMoreFollows(t *testing.T) {
	cases := map[string]struct {
		late   bool // the clock passes maxHold between the fan-outs
		inline bool
	}{
		"the burst's last fan-out runs the round": {inline: true},
		"held past maxHold: writer":               {late: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			now := time.Unix(1, 0)
			w := newWakes(func() time.Time { return now })
			o, ran := inlineOutbox(w)
			w.begin()
			o.signal(w.now)
			w.end(false, true)
			if ran.started+ran.inlined != 0 {
				t.Fatal("the writer ran before the burst ended")
			}
			if tc.late {
				now = now.Add(2 * maxHold)
			}
			w.begin()
			w.end(false, tc.late)
			ran.check(t, tc.inline)
		})
	}
}

// The writer rounds a fan-out's end runs inline carry one clock: each
// round starts at the reading the round before took after its write
// (fanClock.read, returned by the round), so a sweep of n rounds reads
// the clock n+1 times, not 2n, and no round's instant is later than the
// clock it stands for.
func TestInlineSweepCarriesOneClock(t *testing.T) {
	var reads int64
	clock := func() time.Time { reads++; return time.Unix(0, reads) }
	w := newWakes(clock)
	w.procs = 1 // every held round runs on the caller's goroutine (sweepParts)
	const n = 5
	var starts, writes []int64
	w.begin() // one fan-out to n connections
	for range n {
		o := newOutbox(16, w.now)
		o.wakes = w
		o.run.start = func() { t.Error("a writer was started") }
		o.run.inline = inlineFunc(func(at time.Time) time.Time { // as conn.writeInline and round do: now, the write, then read
			clk := fanClock{clock: w.now, at: at}
			starts = append(starts, clk.now().UnixNano())
			writes = append(writes, clk.read().UnixNano())
			o.run.state.Store(runIdle)
			return clk.at
		})
		o.run.state.Store(runIdle)
		o.signal(w.now)
	}
	if len(starts) != 0 {
		t.Fatal("rounds ran before the fan-out ended")
	}
	reads = 0
	w.end(false, false)
	if len(starts) != n {
		t.Fatalf("%d inline rounds, want %d", len(starts), n)
	}
	for i := 1; i < n; i++ {
		if starts[i] != writes[i-1] {
			t.Fatalf("round %d starts at %d, want the reading after round %d's write (%d)", i, starts[i], i-1, writes[i-1])
		}
	}
	if reads != n+1 {
		t.Fatalf("%d clock reads for %d rounds, want %d", reads, n, n+1)
	}
}

// A fan-out's end that runs a writer round inline allocates nothing: the
// sweep's clock is a value handed from round to round, not a pointer the
// round's indirect call would move to the heap.
func TestInlineSweepAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	w := newWakes(time.Now)
	w.procs = 1
	o := newOutbox(16, w.now)
	o.wakes = w
	rounds := 0
	o.run.start = func() { t.Error("a writer was started") }
	o.run.inline = inlineFunc(func(at time.Time) time.Time {
		rounds++
		o.run.state.Store(runIdle)
		return at
	})
	o.run.state.Store(runIdle)
	sweep := func() {
		w.begin()
		o.signal(w.now)
		w.end(false, false)
	}
	sweep() // the held list's array is made once
	if allocs := testing.AllocsPerRun(100, sweep); allocs != 0 {
		t.Fatalf("%v allocations per fan-out end with an inline round", allocs)
	}
	if rounds < 100 {
		t.Fatalf("%d inline rounds, want one per fan-out", rounds)
	}
}

// goroutineID is the calling goroutine's number, from its stack's header.
func goroutineID() uint64 {
	var buf [64]byte
	b := bytes.TrimPrefix(buf[:runtime.Stack(buf[:], false)], []byte("goroutine "))
	var id uint64
	fmt.Sscan(string(b), &id)
	return id
}

// On more than one core the held connections' writer rounds are split
// into parts (sweepParts): the fan-out's end runs one, a goroutine started
// for each other part runs it, every round runs once and inline (no
// writer goroutine is woken), and a connection whose writer is running
// has it woken instead.
func TestSweepSplitsAcrossCores(t *testing.T) {
	for _, tc := range []struct {
		procs, n  int
		wantParts int
	}{
		{1, 40, 1},
		{2, 2*minSweep - 1, 1},
		{2, 2 * minSweep, 2},
		{2, 41, 2},
		{4, 41, 4},
		{4, 3 * minSweep, 3},
	} {
		t.Run(fmt.Sprintf("procs=%d,n=%d", tc.procs, tc.n), func(t *testing.T) {
			w := newWakes(func() time.Time { return time.Unix(0, 1) }) // no wake-up is ever late (maxHold)
			w.procs = tc.procs
			if got := sweepParts(tc.n, tc.procs); got != tc.wantParts {
				t.Fatalf("sweepParts(%d, %d) = %d, want %d", tc.n, tc.procs, got, tc.wantParts)
			}
			var (
				mu      sync.Mutex
				ran     = map[int]int{}    // rounds by outbox
				by      = map[uint64]int{} // rounds by goroutine
				wg      sync.WaitGroup
				woken   int
				busyOne = tc.n / 2 // its writer is running: woken, not run
				busy    *outbox
			)
			caller := goroutineID()
			w.begin()
			for i := range tc.n {
				o := newOutbox(16, w.now)
				o.wakes = w
				o.run.start = func() { t.Error("a writer was started"); wg.Done() }
				o.run.inline = inlineFunc(func(at time.Time) time.Time {
					mu.Lock()
					ran[i]++
					by[goroutineID()]++
					mu.Unlock()
					o.run.state.Store(runIdle)
					wg.Done()
					return at
				})
				o.run.state.Store(runIdle)
				o.signal(w.now)
				if i == busyOne {
					busy = o
					o.run.state.Store(runBusy)
					o.run.start = func() { mu.Lock(); woken++; mu.Unlock() }
				} else {
					wg.Add(1)
				}
			}
			w.end(false, false)
			wg.Wait()
			mu.Lock()
			defer mu.Unlock()
			for i := range tc.n {
				if want := map[bool]int{true: 0, false: 1}[i == busyOne]; ran[i] != want {
					t.Errorf("connection %d: %d rounds, want %d", i, ran[i], want)
				}
			}
			if len(by) != tc.wantParts {
				t.Errorf("rounds ran on %d goroutines, want %d", len(by), tc.wantParts)
			}
			if by[caller] == 0 {
				t.Error("the fan-out's end ran no round itself")
			}
			if woken != 0 {
				t.Errorf("%d writers started for a connection whose writer runs", woken)
			}
			if st := busy.run.state.Load(); st != runAgain {
				t.Errorf("the running writer's state is %d, want runAgain (woken)", st)
			}
		})
	}
}
