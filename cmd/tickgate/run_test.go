package main

import (
	"bufio"
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

// runInProcess runs `tickgate args…` through run() for the rest of the
// test (then cancels it and expects exit 0), and returns what it printed
// up to the line that starts with until, keyed by each line's "key: "
// prefix (the whole line when it has none).
func runInProcess(t *testing.T, stderr io.Writer, until string, args ...string) map[string]string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, args, pw, stderr)
		pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("tickgate %s exited %d", args[0], code)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("tickgate %s did not stop", args[0])
		}
	})
	lines := map[string]string{}
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		line := sc.Text()
		key, val, ok := strings.Cut(line, ": ")
		if !ok {
			key, val = line, line
		}
		lines[key] = val
		if strings.HasPrefix(line, until) {
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	return lines
}
