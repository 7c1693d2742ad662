//go:build integration

package main

import (
	"path/filepath"
	"testing"
	"time"
)

// TestCompareShort runs the comparison for real, briefly: every server
// that can run here (Centrifugo only with a centrifugo binary on PATH), 50
// connections for 2 seconds on workload B's shape (2,000 deliveries/s),
// plain and over TLS, and checks that each one delivered the feed to every
// connection, so that the harness cannot silently measure nothing.
//
//	go test -tags integration -run CompareShort ./cmd/tickbench/
func TestCompareShort(t *testing.T) {
	bin := buildGateway(t)
	for name, extra := range map[string][]string{"plain": nil, "TLS": {"--tls"}} {
		t.Run(name, func(t *testing.T) {
			jsonPath := filepath.Join(t.TempDir(), "compare.json")
			args := append([]string{
				"--workload", "B", "--connections", "50", "--duration", "2s",
				"--gateway-bin", bin, "--json", jsonPath, "--quiet",
			}, extra...)
			cmp := runJSON[comparison](t, args, jsonPath, 3*time.Minute)
			if len(cmp.Runs)+len(cmp.Skipped) != 3 {
				t.Fatalf("%d runs and %d skipped, want 3 servers in all", len(cmp.Runs), len(cmp.Skipped))
			}
			for _, s := range cmp.Skipped {
				if s.Server != "centrifugo" {
					t.Errorf("%s skipped (%s): only centrifugo may be missing", s.Server, s.Why)
				}
				t.Logf("%s not compared: %s", s.Server, s.Why)
			}
			for _, r := range cmp.Runs {
				checkRun(t, r)
			}
			// The floor, measured after the servers: the workload's
			// frames written at its pace.
			if len(cmp.Floors) != 1 {
				t.Fatalf("%d floors, want one", len(cmp.Floors))
			}
			f := cmp.Floors[0]
			if f.Error != "" || f.WindowSeconds <= 0 || f.CPUSeconds <= 0 || f.Writes <= 0 {
				t.Fatalf("floor %+v: want frames written and their CPU", f)
			}
			if got := float64(f.Messages) / f.WindowSeconds; got < 0.8*f.Offered {
				t.Errorf("floor: %.0f frames/s of %.0f offered, want at least 80%%", got, f.Offered)
			}
			if f.SweepMS == nil || f.SweepMS.Count != f.Messages {
				t.Errorf("floor: sweep %+v, want one figure per frame of the window (%d)", f.SweepMS, f.Messages)
			}
		})
	}
}

// checkRun asserts that one server delivered the feed to every connection.
func checkRun(t *testing.T, r compareRun) {
	t.Helper()
	if r.Report == nil {
		t.Errorf("%s: no report: %s", r.Server, r.Error)
		return
	}
	rep := r.Report
	cn := rep.Connections
	if cn.Subscribed != 50 || cn.Failed != 0 || cn.HealthySilent != 0 || cn.HealthyClosed != 0 {
		t.Errorf("%s: connections %+v: want 50 subscribed, every one receiving, none closed", r.Server, cn)
	}
	if cn.SubscribeErrors != 0 || cn.DecodeErrors != 0 || rep.Delivered.Gaps != 0 {
		t.Errorf("%s: %d subscribe errors, %d undecodable, %d gaps: want none", r.Server, cn.SubscribeErrors, cn.DecodeErrors, rep.Delivered.Gaps)
	}
	// 50 connections x 5 subscriptions x 8 Hz; the machine may be busy.
	if got := rep.Delivered.PerSecond; got < 0.8*r.Offered {
		t.Errorf("%s: delivered %.0f/s of %.0f offered, want at least 80%%", r.Server, got, r.Offered)
	}
	if rep.LatencyMS == nil || rep.LatencyMS.Count == 0 || rep.LatencyMS.P50 <= 0 {
		t.Errorf("%s: no latency measured: %+v", r.Server, rep.LatencyMS)
	} else if s := rep.LatencyAtSocketMS; s == nil || s.Count != rep.LatencyMS.Count || s.P50 <= 0 {
		t.Errorf("%s: latency at the socket %+v, want every one of the %d updates stamped", r.Server, s, rep.LatencyMS.Count)
	}
	if g := rep.Gateway; g == nil || g.CPUSecondsInWindow <= 0 || g.RSSBytes <= 0 {
		t.Errorf("%s: server CPU and memory not sampled: %+v", r.Server, g)
	}
}
