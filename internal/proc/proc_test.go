package proc

import (
	"os"
	"testing"
	"time"
)

func TestSampleSelf(t *testing.T) {
	r := NewReader(os.Getpid())
	a, err := r.Sample()
	if err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(30 * time.Millisecond); time.Now().Before(end); {
	}
	b, err := r.Sample()
	if err != nil {
		t.Fatal(err)
	}
	if a.RSS <= 0 || b.PeakRSS < b.RSS || b.CPU < a.CPU || b.System < a.System || b.System > b.CPU || a.CPUs == "" {
		t.Fatalf("samples %+v then %+v: want RSS > 0, peak >= RSS, CPU and its system part not decreasing, allowed CPUs", a, b)
	}
	if c := Cores(a, b); c < 0 || c > 64 {
		t.Errorf("Cores = %v", c)
	}
	m, err := MachineCPU()
	if err != nil || m.Busy <= 0 || m.Steal < 0 || m.Total < m.Busy+m.Steal {
		t.Errorf("MachineCPU = %+v, %v", m, err)
	}
}

func TestParseMachineCPU(t *testing.T) {
	const tick = 10 * time.Millisecond
	cases := map[string]struct {
		line    string
		want    MachineTimes
		wantErr bool
	}{
		"a virtual machine, with steal and guest": {
			line: "cpu  600540 2194 160132 1098378 3968 0 57128 15753 7 3",
			want: MachineTimes{Busy: (600540 + 2194 + 160132 + 57128) * tick, Steal: 15753 * tick, Total: (600540 + 2194 + 160132 + 1098378 + 3968 + 57128 + 15753) * tick},
		},
		"an old kernel's four fields": {
			line: "cpu 10 20 30 40",
			want: MachineTimes{Busy: 60 * tick, Total: 100 * tick},
		},
		"not the cpu line":     {line: "cpu0 1 2 3 4 5", wantErr: true},
		"too short":            {line: "cpu 1 2 3", wantErr: true},
		"a field not a number": {line: "cpu 1 2 x 4 5", wantErr: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := parseMachineCPU(tc.line, tick)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("parseMachineCPU(%q) = %+v, %v; want %+v, error %v", tc.line, got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestSampleMissingProcess(t *testing.T) {
	if _, err := NewReader(1 << 30).Sample(); err == nil {
		t.Fatal("no error for a process that does not exist")
	}
}
