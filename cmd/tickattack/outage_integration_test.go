//go:build integration

package main

// The nats-outage scenario kills Debian's nats-server with SIGKILL, so it
// needs the real binary:
//
//	apt-get install -y nats-server
//	go test -tags integration -count=1 -run NATSOutage -v ./cmd/tickattack/

import (
	"os"
	"os/exec"
	"testing"
)

func TestNATSOutageScenario(t *testing.T) {
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		bin, err = exec.LookPath("/usr/sbin/nats-server")
	}
	if err != nil {
		msg := "nats-server is not installed (apt-get install -y nats-server): the scenario kills the real binary"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg) // .ci/run installs it: a silent skip would prove nothing
		}
		t.Skip(msg)
	}
	var r outageResult
	runScenario(t, &r, "nats-outage", "--nats-server-bin", bin, "--record", "3s", "--channels", "2")
	if len(r.Sent) != 2 || r.Sent[0].Channel != "ticker.NEW1" {
		t.Fatalf("sent %+v, want 2 subscribes for ticker.NEW1, ticker.NEW2", r.Sent)
	}
	if len(r.Samples) == 0 {
		t.Fatal("no samples of the node during the recording")
	}
	// Whether the node answers within 3 s is what the scenario measures
	// (before the fixes of issue 8 it may stall for seconds); only the
	// shape of what was recorded is checked.
	if r.Closed != nil && (r.Closed.How == "" || r.Closed.AtMS < 0) {
		t.Errorf("close %+v", r.Closed)
	}
	for _, e := range r.Events {
		if e.AtMS < 0 || e.AtMS > 10_000 || e.Kind == "" {
			t.Errorf("event %+v: want a kind and a time within the recording", e)
		}
	}
	if last := r.Samples[len(r.Samples)-1]; last.Readyz == 0 {
		t.Errorf("the admin listener did not answer /readyz during the outage: %+v", last)
	}
}
