//go:build integration

package main

import (
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTopInTmux drives `tickgate top` in a real terminal: tmux runs it
// against a live `tickgate dev` node (with an admin token) that one
// client is subscribed to, and the screen, read with capture-pane, shows
// the node, that client's connection (session id and sub) and its
// channels; q ends the program.
func TestTopInTmux(t *testing.T) {
	tmux := itNeed(t, "tmux", "tmux", "this test reads tickgate top's screen from a real terminal")
	dir := t.TempDir()
	bin := itBuild(t, dir)
	tokenFile := filepath.Join(dir, "admin.token")
	itWriteFile(t, tokenFile, []byte("top-test-admin-token-0123456789\n"))
	ports := itFreePorts(t, 3)
	devDir := filepath.Join(dir, "dev")
	dev := itStart(t, dir, "dev", bin, []string{"dev",
		"--listen", fmt.Sprintf("127.0.0.1:%d", ports[0]), "--admin", fmt.Sprintf("127.0.0.1:%d", ports[1]),
		"--nats-listen", fmt.Sprintf("127.0.0.1:%d", ports[2]), "--dir", devDir, "--admin-token-file", tokenFile,
		"--symbols", "3", "--rate", "200", "--log-level", "warn"}, nil)
	var printed map[string]string
	itWaitFor(t, 20*time.Second, "dev printed its token", func() bool {
		printed = map[string]string{}
		for line := range strings.SplitSeq(dev.output(), "\n") {
			if k, v, ok := strings.Cut(line, ": "); ok {
				printed[k] = v
			}
		}
		return printed["token"] != ""
	})
	admin := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	itWaitFor(t, 10*time.Second, "/readyz 200", func() bool { return itStatus(admin+"/readyz") == http.StatusOK })

	client, ws := dialDev(t, devDir, printed["url"], printed["token"])
	if err := ws.WriteString(`{"op":"subscribe","id":1,"channels":["ticker.BTC-USD","book.ETH-USD","trade.SOL-USD"]}`); err != nil {
		t.Fatal(err)
	}
	session := ""
	for session == "" {
		select {
		case m := <-client.msgs:
			if m["type"] == "welcome" {
				session, _ = m["session"].(string)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no welcome")
		}
	}
	go func() { // keep reading, so the client stays a fast one
		for range client.msgs {
		}
	}()

	socket := filepath.Join(dir, "tmux.sock")
	tm := func(args ...string) (string, error) {
		out, err := exec.Command(tmux, append([]string{"-S", socket}, args...)...).CombinedOutput()
		return string(out), err
	}
	t.Cleanup(func() { _, _ = tm("kill-server") })
	cmdline := fmt.Sprintf("%s top --admin %s --admin-token-file %s --rows 20", bin, admin, tokenFile)
	if out, err := tm("new-session", "-d", "-s", "top", "-x", "200", "-y", "60", cmdline); err != nil {
		t.Fatalf("tmux new-session: %v: %s", err, out)
	}
	want := []string{"tickgate top · 1 node(s)", "dev-1", session, " dev ", "ticker.BTC-USD", "book.ETH-USD", "trade.SOL-USD",
		"BUSIEST CHANNELS", "SLOWEST CONNECTIONS", "STALE CHANNELS", "lag_timeout"}
	var screen string
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, err := tm("capture-pane", "-p", "-t", "top")
		if err != nil {
			t.Fatalf("capture-pane: %v: %s", err, out)
		}
		screen = out
		missing := ""
		for _, w := range want {
			if !strings.Contains(screen, w) {
				missing = w
				break
			}
		}
		// Rates need two readings: the node's deliveries per second show
		// as a number once they do.
		if missing == "" && !strings.Contains(nodeRow(screen, "dev-1"), " - ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the screen lacks %q after 20s:\n%s", missing, screen)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("tickgate top in tmux:\n%s", strings.TrimRight(screen, "\n"))
	if out, err := tm("send-keys", "-t", "top", "q"); err != nil {
		t.Fatalf("send-keys: %v: %s", err, out)
	}
	itWaitFor(t, 5*time.Second, "q ends tickgate top", func() bool {
		_, err := tm("has-session", "-t", "top")
		return err != nil
	})
}

// nodeRow is the first line of screen that starts with the node's name.
func nodeRow(screen, node string) string {
	for line := range strings.SplitSeq(screen, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), node+" ") {
			return line
		}
	}
	return ""
}
