package main

import "testing"

func TestWorkloadOffered(t *testing.T) {
	tests := map[string]struct {
		name     string
		conns    int
		stall, f float64
		want     float64
	}{
		"A":                {"A", 10_000, 0, 1, 100_000},
		"C at twice":       {"C", 200, 0, 2, 400_000},
		"stalled: healthy": {"stalled", 10_000, 0.01, 1, 99_000},
		"idle":             {"idle", 10_000, 0, 1, 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			w, err := lookupWorkload(tc.name)
			if err != nil {
				t.Fatal(err)
			}
			if got := w.offered(tc.conns, tc.stall, tc.f); got != tc.want {
				t.Fatalf("offered = %v, want %v", got, tc.want)
			}
		})
	}
}
