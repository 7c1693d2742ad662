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
	busy, total, err := MachineCPU()
	if err != nil || busy <= 0 || total < busy {
		t.Errorf("MachineCPU = %v, %v, %v", busy, total, err)
	}
}

func TestSampleMissingProcess(t *testing.T) {
	if _, err := NewReader(1 << 30).Sample(); err == nil {
		t.Fatal("no error for a process that does not exist")
	}
}
