//go:build integration

package main

// A short reconnect storm with Debian's nats-server (JetStream) and two
// real `tickgate serve` processes: 300 clients of the Go client library
// on node A, which is SIGKILLed, come back on node B and resume; 50 on B
// are not disturbed. The full run (10,000 clients) is the command in
// docs/benchmarks.md.
//
//	apt-get install -y nats-server
//	go test -tags integration -count=1 -run Storm -v ./cmd/tickstorm/

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestStormShort(t *testing.T) {
	natsBin, err := exec.LookPath("nats-server")
	if err != nil {
		natsBin, err = exec.LookPath("/usr/sbin/nats-server")
	}
	if err != nil {
		msg := "nats-server is not installed (apt-get install -y nats-server): the storm runs the real binary with JetStream"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg) // .ci/run installs it: a silent skip would prove nothing
		}
		t.Skip(msg)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "tickgate")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/tickgate/tickgate/cmd/tickgate").CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/tickgate: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var stderr bytes.Buffer
	cfg, err := parseConfig([]string{
		"--clients", "300", "--steady", "50", "--symbols", "20", "--rate", "100",
		"--settle", "1s", "--before", "3s", "--after", "3s", "--storm-timeout", "60s",
		"--gateway-bin", bin, "--nats-server-bin", natsBin,
	}, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := storm(ctx, cfg, &stderr)
	if rep != nil {
		var out bytes.Buffer
		rep.writeText(&out)
		t.Logf("report:\n%s", out.String())
	}
	if err != nil {
		t.Fatalf("storm: %v\n%s", err, stderr.String())
	}
	s := rep.Storm
	switch {
	case s.Live.N != 300 || s.NotBack != 0 || s.WrongNode != 0:
		t.Errorf("storm clients: %d live again, %d not back, %d on another node; want all 300 live on gw-b", s.Live.N, s.NotBack, s.WrongNode)
	case s.TradeResumed != s.TradeResumable || s.TradeResumable < 250:
		// A client whose channel had no trade yet has no seq to resume
		// from (a quiet symbol of the synthetic feed).
		t.Errorf("trade channels resumed on B: %d of %d that held a trade, want all, and most of 300 (--history jetstream)", s.TradeResumed, s.TradeResumable)
	}
	if tr := rep.Trades; tr.Lost != 0 || tr.Dups != 0 || tr.Received != tr.Expected || tr.Subscriptions != 350 || tr.NoneHeld != 0 {
		t.Errorf("trades %+v: want every expected trade received once, none lost", tr)
	}
	if rep.Books != 350 || rep.Tickers != 350 {
		t.Errorf("books equal %d, tickers equal %d, want 350 each; faults: %s", rep.Books, rep.Tickers,
			strings.Join(append(rep.BookFaults, rep.TickerFaults...), "; "))
	}
	if rep.SteadyDisturbed != 0 {
		t.Errorf("%d steady clients on B lost their connection", rep.SteadyDisturbed)
	}
	for _, l := range rep.Steady {
		if l.Count == 0 {
			t.Errorf("steady clients received no live data in phase %s", l.Phase)
		}
	}
	if !rep.OK {
		t.Error("the report's verdict is NOT OK")
	}
}
