//go:build integration

package main

// tickwatch as a binary against `tickgate dev`, the README's first
// command: a clean run exits 0; a drain (SIGTERM) with no node to come
// back to is reported, and the verdict is 1.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tickgate/tickgate/internal/spawn"
)

func build(t *testing.T, dir, pkg string) string {
	t.Helper()
	bin := filepath.Join(dir, filepath.Base(pkg))
	if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

// startDev runs `tickgate dev` on free ports and returns it with its URL,
// token file and certificate.
func startDev(t *testing.T, bin, dir string) (cmd *exec.Cmd, url, tokenFile, cert string) {
	t.Helper()
	var ports [3]int
	for i := range ports {
		p, err := spawn.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = p
	}
	cmd = exec.Command(bin, "dev", "--listen", fmt.Sprintf("127.0.0.1:%d", ports[0]), "--admin", fmt.Sprintf("127.0.0.1:%d", ports[1]),
		"--nats-listen", fmt.Sprintf("127.0.0.1:%d", ports[2]), "--dir", dir, "--drain-within", "300ms")
	logPath := filepath.Join(dir, "dev.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = logFile
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	sc := bufio.NewScanner(stdout)
	var token string
	for token == "" && sc.Scan() {
		line := sc.Text()
		if u, ok := strings.CutPrefix(line, "url: "); ok {
			url = u
		}
		if tok, ok := strings.CutPrefix(line, "token: "); ok {
			token = tok
		}
	}
	go func() { // keep the pipe drained
		for sc.Scan() {
		}
	}()
	if url == "" || token == "" {
		t.Fatalf("tickgate dev printed no url and token; its log:\n%s", spawn.Tail(logPath, 20))
	}
	tokenFile = filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return cmd, url, tokenFile, filepath.Join(dir, "cert.pem")
}

func TestTickwatchAgainstDev(t *testing.T) {
	dir := t.TempDir()
	tickgate := build(t, dir, "github.com/tickgate/tickgate/cmd/tickgate")
	tickwatch := build(t, dir, "github.com/tickgate/tickgate/cmd/tickwatch")
	dev, url, tokenFile, cert := startDev(t, tickgate, t.TempDir())
	flags := []string{"--url", url, "--token-file", tokenFile, "--ca-file", cert,
		"--channels", "book.BTC-USD,trade.ETH-USD,ticker.SOL-USD", "--grace", "500ms"}

	t.Run("a clean run exits 0", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, tickwatch, append(flags, "--json", "--msgpack", "--duration", "3s")...).Output()
		if err != nil {
			t.Fatalf("tickwatch: %v\n%s", err, out)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		var sum map[string]any
		if err := json.Unmarshal([]byte(lines[len(lines)-1]), &sum); err != nil || sum["ok"] != true || sum["messages"].(float64) == 0 {
			t.Fatalf("summary %s (%v)", lines[len(lines)-1], err)
		}
		t.Logf("%d lines; summary %s", len(lines), lines[len(lines)-1])
	})

	t.Run("a drain with no node to come back to exits 1", func(t *testing.T) {
		w := exec.Command(tickwatch, flags...)
		var out strings.Builder
		w.Stdout = &out
		if err := w.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Second)
		if err := dev.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := dev.Wait(); err != nil {
			t.Fatalf("tickgate dev after SIGTERM: %v", err)
		}
		time.Sleep(time.Second)
		_ = w.Process.Signal(syscall.SIGINT)
		err := w.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Fatalf("tickwatch exited with %v, want 1\n%s", err, out.String())
		}
		text := out.String()
		for _, want := range []string{"disconnected: client: connection closed by the node: 1001", "state stale", "summary: ", "NOT OK: not live at the end"} {
			if !strings.Contains(text, want) {
				t.Fatalf("no %q in:\n%s", want, text)
			}
		}
	})
}
