package client_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tickgate/tickgate/internal/nodetest"
)

// The bot of docs/clients.md is testdata/bot/main.go, word for word: the
// test checks that, builds it, and runs it against a real node.
func TestDocsBot(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a program")
	}
	src, err := os.ReadFile(filepath.Join("testdata", "bot", "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join("..", "docs", "clients.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(doc, []byte("```go\n"+string(src)+"```\n")) {
		t.Fatal("docs/clients.md does not show client/testdata/bot/main.go as it is")
	}
	bin := filepath.Join(t.TempDir(), "bot")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "./testdata/bot").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	env := nodetest.NewEnv(t)
	node := env.Start(t, "127.0.0.1:0")
	m := env.NewMarket("BTC-USD", 8)
	m.Run(t, 3*time.Millisecond)
	ca := filepath.Join(t.TempDir(), "cert.pem")
	if err := os.WriteFile(ca, env.Cert.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	run, stop := context.WithTimeout(ctx, 20*time.Second)
	defer stop()
	out, err := exec.CommandContext(run, bin, node.URL(), env.Token(t, "bot", time.Hour, "book.*"), ca).CombinedOutput()
	if err != nil {
		t.Fatalf("bot: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	re := regexp.MustCompile(`^book\.BTC-USD seq \d+: bid \d+\.\d+ × [\d.]+, ask \d+\.\d+ × [\d.]+$`)
	if len(lines) != 20 {
		t.Fatalf("%d lines:\n%s", len(lines), out)
	}
	for _, l := range lines {
		if !re.MatchString(l) {
			t.Fatalf("line %q", l)
		}
	}
}
