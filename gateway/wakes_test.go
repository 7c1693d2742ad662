package gateway

import (
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
					w.end()
				case "signal":
					o.signal()
				case "signal other":
					other.signal()
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
