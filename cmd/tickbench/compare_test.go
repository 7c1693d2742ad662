package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fakeRun is a run with the figures the table and the plot read.
func fakeRun(server string, factor, offered, delivered, cores, p50, p99 float64) compareRun {
	// A 10 s window, half of the server's CPU in the kernel.
	r := &report{LatencyMS: &latencySummary{Count: 1, P50: p50, P99: p99}, Gateway: &gatewayUsage{
		CPUCoresInWindow: cores, CPUSecondsInWindow: cores * 10, SystemSecondsInWindow: cores * 5, RSSPerConnBytes: 40 << 10}}
	r.Delivered.PerSecond, r.Delivered.Messages = delivered, int64(delivered*10)
	return compareRun{Server: server, Factor: factor, Offered: offered, Report: r}
}

// withSocketP99 is r with a latency at the socket whose p99 is p99 ms.
func withSocketP99(r compareRun, p99 float64) compareRun {
	rep := *r.Report
	rep.LatencyAtSocketMS = &latencySummary{Count: rep.LatencyMS.Count, P50: p99 / 4, P99: p99}
	r.Report = &rep
	return r
}

// tableText is the table cmp prints.
func tableText(cmp *comparison) string {
	var out bytes.Buffer
	cmp.writeTable(&out)
	return out.String()
}

// tableHas fails t for each of want that text lacks.
func tableHas(t *testing.T, text string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("table lacks %q:\n%s", w, text)
		}
	}
}

func TestCompareRunSteady(t *testing.T) {
	tests := map[string]struct {
		run            compareRun
		judged, steady bool
	}{
		"kept up":             {run: fakeRun("nats", 1, 1000, 990, 0.1, 3, 9), judged: true, steady: true},
		"delivered too few":   {run: fakeRun("nats", 1, 1000, 900, 0.1, 3, 9), judged: true},
		"delivered a backlog": {run: fakeRun("nats", 1, 1000, 1100, 0.1, 3, 9), judged: true},
		"latency behind":      {run: fakeRun("nats", 1, 1000, 1000, 0.1, 400, 900), judged: true},
		"idle, not judged":    {run: fakeRun("nats", 1, 0, 0, 0.01, 0, 0)},
		"no report":           {run: compareRun{Server: "nats", Offered: 1000}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if judged, steady := tc.run.steady(); judged != tc.judged || steady != tc.steady {
				t.Fatalf("steady() = %v, %v, want %v, %v", judged, steady, tc.judged, tc.steady)
			}
		})
	}
}

func TestComparisonTableAndPlot(t *testing.T) {
	cmp := &comparison{Workload: "C", About: "x & y", Connections: 100,
		Skipped: []skipped{{"centrifugo", "no binary"}},
		Runs: []compareRun{
			withSocketP99(fakeRun("tickgate", 1, 1000, 1000, 0.5, 2, 8), 3),
			withSocketP99(fakeRun("nats", 1, 1000, 1000, 0.25, 2, 4), 2),
			fakeRun("tickgate", 2, 2000, 1500, 0.5, 300, 900),
			fakeRun("nats", 2, 2000, 2000, 0.5, 2, 4),
		}}
	tableHas(t, tableText(cmp),
		"x1    vs nats       per core 0.50x, delivered/s 1.00x, p99 2.00x (at the socket 1.50x), RSS/conn 1.00x, ceiling 1.00x",
		// tickgate 500 us per delivery, 250 in the kernel; nats 250 us;
		// p50, p99, p99.9 and p99 at the socket.
		"500.00  250.00     2.00     8.00     0.00     3.00",
		// Without stamps: a dash in the column and the ratio.
		"2000        1500   0.50        3000  333.33  166.67   300.00   900.00     0.00        -",
		"x2    vs nats       per core 0.75x, delivered/s 0.75x, p99 225.00x (at the socket -)",
		"centrifugo  skipped: no binary",
		"steady NO:",
	)
	svg := cmp.svg()
	d := xml.NewDecoder(bytes.NewReader(svg))
	for {
		if _, err := d.Token(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("the plot is not well-formed XML: %v\n%s", err, svg)
		}
	}
	if n := strings.Count(string(svg), "<polyline"); n != 4 {
		t.Errorf("%d lines, want 2 servers x 2 panels", n)
	}
	if !strings.Contains(string(svg), `fill="white" stroke="#1f77b4"`) {
		t.Error("the run that fell behind is not drawn hollow")
	}

	// The same plot again from the comparison's JSON.
	dir := t.TempDir()
	raw, err := json.Marshal(cmp)
	if err != nil {
		t.Fatal(err)
	}
	jsonFile, svgFile := filepath.Join(dir, "c.json"), filepath.Join(dir, "c.svg")
	if err := os.WriteFile(jsonFile, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	if code := run(context.Background(), []string{"--replot", jsonFile, "--svg", svgFile}, io.Discard, &stderr); code != 0 {
		t.Fatalf("--replot exited %d: %s", code, stderr.String())
	}
	if again, err := os.ReadFile(svgFile); err != nil || !bytes.Equal(again, svg) {
		t.Errorf("--replot drew another plot (%v)", err)
	}
}

// With --rounds each round's runs are compared with each other only, and
// the rounds' ratios are summed up by their median, least and greatest,
// whatever order a round ran its servers in.
func TestComparisonRounds(t *testing.T) {
	cmp := &comparison{Workload: "C", About: "x", Connections: 100, Rounds: 3}
	// tickgate's per-core figure over nats' per round: 1.0, 2.0, 1.5;
	// its p99 over nats': 2.0, 0.5, 1.0.
	// At the socket, tickgate's p99 is half its own, nats' a quarter of its.
	for round, tg := range []struct{ cores, p99 float64 }{{0.5, 8}, {0.25, 2}, {1.0 / 3, 4}} {
		a := withSocketP99(fakeRun("tickgate", 1, 1000, 1000, tg.cores, 2, tg.p99), tg.p99/2)
		b := withSocketP99(fakeRun("nats", 1, 1000, 1000, 0.5, 2, 4), 1)
		a.Round, b.Round = round, round
		if turned(round) {
			cmp.Runs = append(cmp.Runs, b, a) // as compare runs the second round
		} else {
			cmp.Runs = append(cmp.Runs, a, b)
		}
		// 250 us per message.
		cmp.Floors = append(cmp.Floors, floorRun{Round: round, Factor: 1, Offered: 1000, Messages: 10_000, Writes: 1000,
			FrameBytes: 189, WindowSeconds: 10, CPUSeconds: 2.5, SystemSeconds: 2})
	}
	text := tableText(cmp)
	tableHas(t, text,
		"round 1 of 3",
		"round 3 of 3",
		// The floor's line names the servers in the first round's order,
		// whatever the round's own.
		"r2 x1    floor 250.00 us/msg; tickgate own work 0.00 us (0%); nats own work 250.00 us (50%); floor / nats 2.00x",
		"r1 x1    vs nats       per core 1.00x, delivered/s 1.00x, p99 2.00x",
		"r2 x1    vs nats       per core 2.00x, delivered/s 1.00x, p99 0.50x",
		"r3 x1    vs nats       per core 1.50x, delivered/s 1.00x, p99 1.00x",
		"over the 3 rounds: median (least-greatest) of each round's ratio",
		"x1    vs nats       per core 1.50x (1.00x-2.00x), p99 1.00x (0.50x-2.00x), at the socket 2.00x (1.00x-4.00x) (3 rounds)",
	)
	if n := strings.Count(text, " vs nats       per core "); n != 4 {
		t.Errorf("%d ratio lines against nats, want one per round and the summary (runs of different rounds are not compared):\n%s", n, text)
	}
}

func TestSpread(t *testing.T) {
	for name, tc := range map[string]struct {
		in   []float64
		want string
	}{
		"none":      {nil, "-"},
		"one":       {[]float64{1.25}, "1.25x (1.25x-1.25x)"},
		"odd":       {[]float64{2, 1, 1.5}, "1.50x (1.00x-2.00x)"},
		"even":      {[]float64{1, 2, 1.2, 1.4}, "1.30x (1.00x-2.00x)"},
		"unchanged": {[]float64{3, 1}, "2.00x (1.00x-3.00x)"},
	} {
		t.Run(name, func(t *testing.T) {
			in := slices.Clone(tc.in)
			if got := spread(tc.in); got != tc.want {
				t.Fatalf("spread(%v) = %q, want %q", tc.in, got, tc.want)
			}
			if !slices.Equal(in, tc.in) {
				t.Fatalf("spread reordered its argument: %v", tc.in)
			}
		})
	}
}

// Every other round runs the servers in the reverse order, and the list
// it was given stays as it was.
func TestRoundOrder(t *testing.T) {
	var run []serverKind
	for _, name := range []string{"tickgate", "nats", "centrifugo"} {
		s, err := lookupServer(name)
		if err != nil {
			t.Fatal(err)
		}
		run = append(run, s)
	}
	names := func(ss []serverKind) string {
		var out []string
		for _, s := range ss {
			out = append(out, s.name)
		}
		return strings.Join(out, ",")
	}
	for round, want := range []string{
		"tickgate,nats,centrifugo",
		"centrifugo,nats,tickgate",
		"tickgate,nats,centrifugo",
		"centrifugo,nats,tickgate",
	} {
		if got := names(roundOrder(run, round)); got != want {
			t.Errorf("round %d: %s, want %s", round, got, want)
		}
	}
	if got := names(run); got != "tickgate,nats,centrifugo" {
		t.Errorf("the servers' list became %s", got)
	}
	if got := names(roundOrder(run[:1], 1)); got != "tickgate" {
		t.Errorf("one server, second round: %s", got)
	}
}

func TestComparisonOutcome(t *testing.T) {
	ok := fakeRun("tickgate", 1, 1000, 1000, 0.1, 1, 2)
	tests := map[string]struct {
		runs        []compareRun
		floors      []floorRun
		interrupted error
		want        string // "" for nil
	}{
		"every run and floor measured": {runs: []compareRun{ok, ok}, floors: []floorRun{{Messages: 10}}},
		"a run failed":                 {runs: []compareRun{ok, {Server: "centrifugo", Error: "exit 1"}}, floors: []floorRun{{Messages: 10}}, want: "1 of 2 runs and 0 of 1 floors failed"},
		"a floor failed":               {runs: []compareRun{ok}, floors: []floorRun{{Error: "dial: refused"}}, want: "0 of 1 runs and 1 of 1 floors failed"},
		"interrupted":                  {runs: []compareRun{ok}, floors: []floorRun{{Error: "context canceled"}}, interrupted: context.Canceled, want: "interrupted after 1 runs and 1 floors: context canceled"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := (&comparison{Runs: tc.runs, Floors: tc.floors}).outcome(tc.interrupted)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("err = %v, want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("err = %v, want one saying %q", err, tc.want)
			case tc.interrupted != nil && !errors.Is(err, tc.interrupted):
				t.Fatalf("err = %v does not wrap %v", err, tc.interrupted)
			}
		})
	}
}
