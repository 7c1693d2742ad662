package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// The floor's plan is the workload's writes: one write per connection per
// feed tick, holding every frame of that tick for it, for the load
// client's subscriptions; stalled connections get none.
func TestPlanFloor(t *testing.T) {
	tests := map[string]struct {
		args  []string
		cycle int // ticks before the feed's order of symbols repeats
	}{
		"C-burst":          {args: []string{"--workload", "C-burst", "--connections", "40"}, cycle: 5},
		"C evenly spaced":  {args: []string{"--workload", "C", "--connections", "40"}, cycle: 100},
		"C in bursts of 3": {args: []string{"--workload", "C", "--connections", "40", "--burst", "3"}, cycle: 100},
		"A, 1% stalled":    {args: []string{"--workload", "stalled", "--connections", "300"}, cycle: 100},
		"B, another seed":  {args: []string{"--workload", "B", "--connections", "60", "--seed", "7"}, cycle: 100},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg, err := parseConfig(tc.args, &strings.Builder{})
			if err != nil {
				t.Fatal(err)
			}
			p, err := planFloor(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if len(p.ticks) != tc.cycle {
				t.Fatalf("%d ticks in the cycle, want %d", len(p.ticks), tc.cycle)
			}
			if want := time.Duration(float64(cfg.burst) / cfg.rate * float64(time.Second)); p.period != want {
				t.Errorf("period %v, want %v (burst / rate)", p.period, want)
			}
			specs, err := (&bench{cfg: cfg, target: &target{}}).specs()
			if err != nil {
				t.Fatal(err)
			}
			// Over a cycle every symbol is published cycle*burst/symbols
			// times, so every channel of a reading connection gets that
			// many frames.
			perChannel := tc.cycle * cfg.burst / cfg.symbols
			want := make([]int, cfg.conns)
			for _, s := range specs {
				if !s.stalled {
					want[s.idx] = len(s.channels) * perChannel
				}
			}
			got := make([]int, cfg.conns)
			for k, tick := range p.ticks {
				seen := map[int32]bool{}
				for _, w := range tick {
					if seen[w.conn] {
						t.Fatalf("tick %d writes connection %d twice", k, w.conn)
					}
					seen[w.conn] = true
					if w.frames < 1 || int(w.frames) > cfg.burst {
						t.Fatalf("tick %d: a write of %d frames, want 1..%d", k, w.frames, cfg.burst)
					}
					got[w.conn] += int(w.frames)
				}
			}
			for c := range want {
				if got[c] != want[c] {
					t.Fatalf("connection %d: %d frames over the cycle, want %d (stalled: %v)", c, got[c], want[c], specs[c].stalled)
				}
			}
			if !bytes.HasPrefix(p.frame, []byte{0x81, 126}) || int(p.frame[2])<<8|int(p.frame[3]) != len(p.frame)-4 {
				t.Errorf("frame header % x for %d bytes: want a text frame with a 16-bit length", p.frame[:4], len(p.frame))
			}
		})
	}
	cfg, err := parseConfig([]string{"--workload", "idle"}, &strings.Builder{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := planFloor(cfg); err == nil {
		t.Error("a floor for a workload without a feed, want an error")
	}
}

// The floor writes the workload's frames at its pace, over TLS too, and
// reports the writing thread's CPU.
func TestMeasureFloor(t *testing.T) {
	for name, extra := range map[string][]string{"plain": nil, "TLS": {"--tls"}} {
		t.Run(name, func(t *testing.T) {
			cfg, err := parseConfig(append([]string{"--workload", "C-burst", "--connections", "20", "--duration", "1s"}, extra...), &strings.Builder{})
			if err != nil {
				t.Fatal(err)
			}
			r, err := measureFloor(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			offered := cfg.workload.offered(cfg.conns, cfg.stallFraction, 1)
			if got := float64(r.Messages) / r.WindowSeconds; got < 0.8*offered || got > 1.2*offered {
				t.Errorf("%.0f frames/s over %.2fs, want the offered %.0f", got, r.WindowSeconds, offered)
			}
			// 20 connections x 50 of 100 symbols: about 10 of a burst's 20
			// frames each, one write per connection per burst.
			if r.Writes <= 0 || r.Messages/r.Writes < 5 {
				t.Errorf("%d frames in %d writes, want about 10 a write", r.Messages, r.Writes)
			}
			if r.CPUSeconds <= 0 || r.SystemSeconds > r.CPUSeconds || r.perCore() <= 0 {
				t.Errorf("CPU %v s, kernel %v s: want a positive CPU time holding the kernel's", r.CPUSeconds, r.SystemSeconds)
			}
			// Each frame's time into its tick's writes: one figure per
			// frame, and a tick's writes end within the tick (50 ms).
			if sw := r.SweepMS; sw == nil || sw.Count != r.Messages || sw.P50 <= 0 || sw.P50 > sw.P99 || sw.P99 > 50 {
				t.Errorf("sweep %+v for %d frames: want a figure per frame, 0 < p50 <= p99 <= 50 ms", sw, r.Messages)
			}
		})
	}
}

// The floor's line in the table, and each server's distance from it.
func TestComparisonFloor(t *testing.T) {
	cmp := &comparison{Workload: "C", About: "x", Connections: 100, Rounds: 2}
	for round := range 2 {
		a := fakeRun("tickgate", 1, 1000, 1000, 0.5, 2, 8) // 500 us per delivery
		b := fakeRun("nats", 1, 1000, 1000, 1, 2, 4)       // 1000 us
		a.Round, b.Round = round, round
		cmp.Runs = append(cmp.Runs, a, b)
		// 10,000 messages on 2.5 s of CPU: 250 us each, 4,000 per core.
		cmp.Floors = append(cmp.Floors, floorRun{Round: round, Factor: 1, Offered: 1000, Messages: 10_000, Writes: 1000,
			FrameBytes: 189, WindowSeconds: 10, CPUSeconds: 2.5, SystemSeconds: 2, SweepMS: &latencySummary{Count: 10_000, P50: 0.5, P99: 1.5}})
		// nats' p99 at the socket 6 ms: the floor's sweep is a quarter of it.
		cmp.Runs[len(cmp.Runs)-1] = withSocketP99(cmp.Runs[len(cmp.Runs)-1], 6)
	}
	cmp.Floors[1] = floorRun{Round: 1, Factor: 1, Error: "floor connections: too many open files"}
	text := tableText(cmp)
	tableHas(t, text,
		"floor       x1         1000        1000   0.25        4000  250.00  200.00        -        -        -     1.50        -",
		"floor       x1    error: floor connections: too many open files",
		"r1 x1    floor 250.00 us/msg; tickgate own work 250.00 us (50%); nats own work 750.00 us (75%); floor / nats 4.00x; floor's sweep p99 / nats's at the socket 0.25x",
		"x1    tickgate   per core / the floor's 0.50x (0.50x-0.50x) (1 rounds)",
		"x1    nats       per core / the floor's 0.25x (0.25x-0.25x) (1 rounds)",
	)
	if strings.Contains(text, "r2 x1    floor") {
		t.Errorf("a floor that failed is compared:\n%s", text)
	}
	// Every server skipped: the floor is still printed.
	alone := &comparison{Workload: "C", About: "x", Connections: 100, Skipped: []skipped{{"centrifugo", "no binary"}},
		Floors: cmp.Floors[:1]}
	tableHas(t, tableText(alone), "floor       x1         1000        1000   0.25")
	if i, j := strings.Index(text, "round 2 of 2"), strings.Index(text, "floor       x1         1000"); i < 0 || j < 0 || j > i {
		t.Errorf("the first round's floor is not printed with the first round:\n%s", text)
	}
}
