package main

import (
	"context"
	"errors"
	"io"
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

func TestSteerReceiveUnavailable(t *testing.T) {
	dir := t.TempDir()
	tests := map[string]string{
		"no such file": filepath.Join(dir, "missing"),
		"a directory":  dir,
		"not writable": "/proc/version", // readable; no write, even for root
	}
	for name, path := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := os.Stat(path); name != "no such file" && err != nil {
				t.Skip(err)
			}
			if _, err := steerReceive(path, "2"); !errors.Is(err, errSteerUnavailable) {
				t.Fatalf("err = %v, want errSteerUnavailable", err)
			}
		})
	}
}

func TestApplySteering(t *testing.T) {
	tests := map[string]struct {
		steer    bool
		cpus     int
		ncpu     int
		before   string // the file's content; "" for no file
		mask     string
		during   string // the file's content during the comparison
		wantErr  bool
		restores bool
	}{
		"steered to the load client's CPUs": {steer: true, cpus: 1, ncpu: 4, before: "0\n", mask: "e", during: "e\n", restores: true},
		"two servers' CPUs of eight":        {steer: true, cpus: 2, ncpu: 8, before: "00\n", mask: "fc", during: "fc\n", restores: true},
		"two groups put back as they were":  {steer: true, cpus: 1, ncpu: 2, before: "00000000,00000000\n", mask: "2", during: "2\n", restores: true},
		"left as found, none":               {cpus: 1, ncpu: 2, before: "00000000,00000000\n", during: "00000000,00000000\n"},
		"left as found, steered":            {cpus: 1, ncpu: 2, before: "2\n", mask: "2", during: "2\n"},
		"no file, no flag":                  {cpus: 1, ncpu: 2},
		"no file, the flag":                 {steer: true, cpus: 1, ncpu: 2, wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "rps_cpus")
			if tc.before != "" {
				if err := os.WriteFile(path, []byte(tc.before), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			cfg := &config{steerReceive: tc.steer, cpus: tc.cpus, rpsPath: path}
			mask, restore, err := applySteering(cfg, tc.ncpu)
			if tc.wantErr {
				if !errors.Is(err, errSteerUnavailable) {
					t.Fatalf("err = %v, want errSteerUnavailable", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if mask != tc.mask || (restore != nil) != tc.restores {
				t.Fatalf("mask %q restore %v; want %q %v", mask, restore != nil, tc.mask, tc.restores)
			}
			if b, _ := os.ReadFile(path); string(b) != tc.during {
				t.Fatalf("during: the file holds %q, want %q", b, tc.during)
			}
			if restore == nil {
				return
			}
			if err := restore(); err != nil {
				t.Fatal(err)
			}
			if b, _ := os.ReadFile(path); string(b) != tc.before {
				t.Fatalf("after: the file holds %q, want %q", b, tc.before)
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
		"without a workload": {args: []string{"--spawn", "--steer-receive", "--cpus", "1"}, wantErr: true},
		"without --cpus":     {args: []string{"--workload", "C-burst", "--steer-receive"}, wantErr: true},
		"every CPU pinned":   {args: []string{"--workload", "C-burst", "--steer-receive", "--cpus", strconv.Itoa(n)}, wantErr: true},
		"one CPU pinned":     {args: []string{"--workload", "C-burst", "--steer-receive", "--cpus", "1"}, wantErr: n < 2},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c, err := parseConfig(tc.args, &strings.Builder{})
			if tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), "--steer-receive") {
					t.Fatalf("err = %v, want one naming --steer-receive", err)
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
	tableHas(t, tableText(cmp), "pinned to 1 CPU(s), the loopback's receive steered to CPU mask 2 (found so, not set by tickbench)")
	cmp.ReceiveSet = true
	tableHas(t, tableText(cmp), "pinned to 1 CPU(s), the loopback's receive steered to CPU mask 2 (the load client's)")
}

// A comparison cut short says so in its error, after steering is put back.
func TestCompareInterrupted(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // no centrifugo: the one server is skipped, the floor runs
	cfg, err := parseConfig([]string{"--workload", "C-burst", "--connections", "4", "--duration", "1s", "--servers", "centrifugo"}, &strings.Builder{})
	if err != nil {
		t.Fatal(err)
	}
	cfg.rpsPath = filepath.Join(t.TempDir(), "rps_cpus")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out strings.Builder
	err = compare(ctx, cfg, &out, io.Discard)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "interrupted after 0 runs and 1 floors") {
		t.Fatalf("err = %v, want the interruption\n%s", err, out.String())
	}
}
