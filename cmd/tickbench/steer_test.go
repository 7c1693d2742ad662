package main

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

func TestCPUMask(t *testing.T) {
	tests := map[string]struct {
		from, to int
		want     string
	}{
		"CPU 1 of 2":        {1, 1, "2"},
		"CPUs 1-3 of 4":     {1, 3, "e"},
		"CPUs 2-7":          {2, 7, "fc"},
		"CPU 31":            {31, 31, "80000000"},
		"CPU 32":            {32, 32, "1,00000000"},
		"CPUs 4-63":         {4, 63, "ffffffff,fffffff0"},
		"CPUs 30-33":        {30, 33, "3,c0000000"},
		"an empty range":    {3, 2, "0"},
		"a negative bottom": {-1, 2, "0"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := cpuMask(tc.from, tc.to); got != tc.want {
				t.Fatalf("cpuMask(%d, %d) = %q, want %q", tc.from, tc.to, got, tc.want)
			}
		})
	}
}

func TestSteerReceiveWritesAndRestores(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rps_cpus")
	if err := os.WriteFile(path, []byte("00000000,00000000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	restore, err := steerReceive(path, "2")
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "2\n" {
		t.Fatalf("steered: file holds %q, want the mask", b)
	}
	if err := restore(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "00000000,00000000\n" {
		t.Fatalf("restored: file holds %q, want what it held before", b)
	}
}

func TestSteerReceiveUnavailable(t *testing.T) {
	dir := t.TempDir()
	ro := filepath.Join(dir, "ro")
	if err := os.WriteFile(ro, []byte("0\n"), 0o444); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		path     string
		rootOnly bool // root writes a read-only file
	}{
		"no such file": {path: filepath.Join(dir, "missing")},
		"read-only":    {path: ro, rootOnly: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if tc.rootOnly && os.Geteuid() == 0 {
				t.Skip("root writes a read-only file")
			}
			if _, err := steerReceive(tc.path, "2"); !errors.Is(err, errSteerUnavailable) {
				t.Fatalf("err = %v, want errSteerUnavailable", err)
			}
		})
	}
}

func TestSteerReceiveFlag(t *testing.T) {
	n := runtime.NumCPU()
	tests := map[string]struct {
		args    []string
		wantErr bool
	}{
		"without a workload": {args: []string{"--spawn", "--steer-receive"}, wantErr: true},
		"without --cpus":     {args: []string{"--workload", "C-burst", "--steer-receive"}, wantErr: true},
		"every CPU pinned":   {args: []string{"--workload", "C-burst", "--steer-receive", "--cpus", strconv.Itoa(n)}, wantErr: true},
		"one CPU pinned":     {args: []string{"--workload", "C-burst", "--steer-receive", "--cpus", "1"}, wantErr: n < 2},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c, err := parseConfig(tc.args, &strings.Builder{})
			if tc.wantErr {
				if err == nil {
					t.Fatal("no error, want one")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !c.steerReceive || c.cpus != 1 {
				t.Fatalf("config %+v", c)
			}
		})
	}
}

func TestComparisonTableNamesTheSteering(t *testing.T) {
	cmp := &comparison{Workload: "C-burst", Connections: 100, CPUs: 1, Runs: []compareRun{fakeRun("tickgate", 1, 1000, 1000, 0.1, 1, 2)}}
	if strings.Contains(tableText(cmp), "steered") {
		t.Fatalf("a comparison without steering says it had some:\n%s", tableText(cmp))
	}
	cmp.ReceiveOn = "2"
	tableHas(t, tableText(cmp), "pinned to 1 CPU(s), the loopback's receive steered to CPU mask 2 (the load client's)")
}
