package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// gatewayBin is cmd/tickgate built once for the package's tests (TestMain).
var gatewayBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tickattack-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	gatewayBin = filepath.Join(dir, "tickgate")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	out, err := exec.CommandContext(ctx, "go", "build", "-o", gatewayBin, "github.com/tickgate/tickgate/cmd/tickgate").CombinedOutput()
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "go build ./cmd/tickgate: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// testReport is a --json report with the scenario's result kept raw.
type testReport struct {
	Scenario string          `json:"scenario"`
	Seconds  float64         `json:"seconds"`
	NATS     string          `json:"nats"`
	Result   json.RawMessage `json:"result"`
	Gateway  struct {
		ExitedEarly string `json:"exited_early"`
	} `json:"gateway"`
}

// runScenario runs tickattack with args against the test's gateway and
// decodes the result of its --json report into res.
func runScenario(t *testing.T, res any, args ...string) {
	t.Helper()
	jsonPath := filepath.Join(t.TempDir(), "report.json")
	args = append(args, "--gateway-bin", gatewayBin, "--json", jsonPath, "--quiet",
		"--gateway-log", filepath.Join(t.TempDir(), "gateway.log"))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	if code := run(ctx, args, &stdout, &stderr); code != 0 {
		t.Fatalf("tickattack %v exited %d\nstderr:\n%s", args, code, stderr.String())
	}
	t.Logf("report:\n%s", stdout.String())
	raw, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var r testReport
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("--json: %v", err)
	}
	if r.Scenario != args[0] || r.Seconds <= 0 || r.NATS == "" || r.Gateway.ExitedEarly != "" {
		t.Errorf("report envelope: %+v", r)
	}
	if err := json.Unmarshal(r.Result, res); err != nil {
		t.Fatalf("--json result: %v\n%s", err, r.Result)
	}
}
