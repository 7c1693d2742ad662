package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tickgate/tickgate/client"
	"github.com/tickgate/tickgate/internal/nodetest"
	"github.com/tickgate/tickgate/proto"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// syncBuffer is a bytes.Buffer safe for the watcher's goroutine and the
// test's.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestUsage(t *testing.T) {
	dir := t.TempDir()
	tok := filepath.Join(dir, "token")
	if err := os.WriteFile(tok, []byte("x.y.z\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"help", []string{"-h"}, 0, "usage: tickwatch"},
		{"no url", []string{"--token-file", tok, "--channels", "book.X"}, 2, "--url is required"},
		{"not a websocket url", []string{"--url", "https://x", "--token-file", tok, "--channels", "book.X"}, 2, "want wss://"},
		{"no token file", []string{"--url", "wss://x/v1/ws", "--channels", "book.X"}, 2, "--token-file is required"},
		{"no channels", []string{"--url", "wss://x/v1/ws", "--token-file", tok, "--channels", " , "}, 2, "--channels is required"},
		{"bad channel", []string{"--url", "wss://x/v1/ws", "--token-file", tok, "--channels", "book.X,candles.Y"}, 2, "unknown kind"},
		{"bad duration", []string{"--url", "wss://x/v1/ws", "--token-file", tok, "--channels", "book.X", "--duration", "soon"}, 2, "invalid value"},
		{"stray argument", []string{"--url", "wss://x/v1/ws", "--token-file", tok, "--channels", "book.X", "extra"}, 2, "unexpected arguments"},
		{"bad depth", []string{"--url", "wss://x/v1/ws", "--token-file", tok, "--channels", "book.X", "--depth", "7"}, 2, "depth 7 is not"},
		{"recent out of range", []string{"--url", "wss://x/v1/ws", "--token-file", tok, "--channels", "trade.X", "--recent", "1001"}, 2, "recent 1001"},
		{"bars out of range", []string{"--url", "wss://x/v1/ws", "--token-file", tok, "--channels", "candle.1m.X", "--bars", "-1"}, 2, "bars -1"},
		{"unreadable token file", []string{"--url", "wss://x/v1/ws", "--token-file", filepath.Join(dir, "none"), "--channels", "book.X"}, 1, "no such file"},
		{"empty ca file", []string{"--url", "wss://x/v1/ws", "--token-file", tok, "--ca-file", tok, "--channels", "book.X"}, 1, "no PEM certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := run(t.Context(), tt.args, &out, &errOut); code != tt.code || !strings.Contains(out.String()+errOut.String(), tt.want) {
				t.Fatalf("exit %d, want %d; output:\n%s%s", code, tt.code, out.String(), errOut.String())
			}
		})
	}
}

// node starts a node with a running market and writes its token and
// certificate to files; it returns the flags that reach it.
func node(t *testing.T, seed uint64) (*nodetest.Env, *nodetest.Node, *nodetest.Market, []string) {
	t.Helper()
	env := nodetest.NewEnv(t)
	n := env.Start(t, "127.0.0.1:0")
	m := env.NewMarket("BTC-USD", seed)
	m.Run(t, 3*time.Millisecond)
	dir := t.TempDir()
	tok, ca := filepath.Join(dir, "token"), filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(tok, []byte(env.Token(t, "watch", time.Hour, ">")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ca, env.Cert.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return env, n, m, []string{"--url", n.URL(), "--token-file", tok, "--ca-file", ca}
}

// With --json every line is an object with channel, type, seq and prev
// (and checksum_ok for books); the last is the summary.
func TestJSONLines(t *testing.T) {
	_, _, _, flags := node(t, 1)
	var out, errOut bytes.Buffer
	args := append(flags, "--json", "--msgpack", "--duration", "800ms", "--channels", "book.BTC-USD,trade.BTC-USD,ticker.BTC-USD")
	if code := run(t.Context(), args, &out, &errOut); code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	seen := map[string]int{}
	for i, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %d is not JSON: %s", i, l)
		}
		if i == len(lines)-1 {
			if m["type"] != "summary" || m["ok"] != true || m["messages"].(float64) == 0 || m["gaps"].(float64) != 0 {
				t.Fatalf("summary %s", l)
			}
			continue
		}
		for _, k := range []string{"channel", "type", "seq", "prev"} {
			if _, ok := m[k]; !ok {
				t.Fatalf("line %d has no %s: %s", i, k, l)
			}
		}
		ch, typ := m["channel"].(string), m["type"].(string)
		seen[ch+" "+typ]++
		if strings.HasPrefix(ch, "book.") && (typ == "snapshot" || typ == "update") && m["checksum_ok"] != true {
			t.Fatalf("book line without checksum_ok: %s", l)
		}
	}
	for _, want := range []string{" connected", "book.BTC-USD snapshot", "book.BTC-USD update", "trade.BTC-USD update", "ticker.BTC-USD update", "book.BTC-USD state"} {
		if seen[want] == 0 {
			t.Fatalf("no %q line in %v", want, seen)
		}
	}
}

// The subscribe options reach the node: a depth-limited book never holds
// more levels than asked, and a trade channel starts with its recent
// trades.
func TestSubscribeOptions(t *testing.T) {
	_, _, _, flags := node(t, 2)
	time.Sleep(300 * time.Millisecond) // trades for recent to return
	var out, errOut bytes.Buffer
	args := append(flags, "--json", "--duration", "600ms", "--depth", "10", "--recent", "5", "--channels", "book.BTC-USD,trade.BTC-USD")
	if code := run(t.Context(), args, &out, &errOut); code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errOut.String())
	}
	books, recent := 0, 0
	for l := range strings.SplitSeq(strings.TrimSpace(out.String()), "\n") {
		var m struct {
			Channel, Type string
			Levels        *[2]int
			Trades        int
		}
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("%s: %v", l, err)
		}
		if m.Levels != nil {
			books++
			if m.Levels[0] > 10 || m.Levels[1] > 10 {
				t.Fatalf("depth 10 book with %v levels: %s", *m.Levels, l)
			}
		}
		if m.Channel == "trade.BTC-USD" && m.Type == "snapshot" {
			recent++
			if m.Trades < 1 || m.Trades > 5 {
				t.Fatalf("recent 5: %s", l)
			}
		}
	}
	if books == 0 || recent != 1 {
		t.Fatalf("%d book lines, %d trade snapshots:\n%s", books, recent, out.String())
	}
}

// A candle bar reads as one line: its minute, OHLCV, trades, closed.
func TestHumanCandle(t *testing.T) {
	c := &proto.Candle{Symbol: "X", Interval: "1m", Start: time.Date(2026, 1, 1, 9, 30, 0, 0, time.UTC).UnixNano(),
		Open: "1", High: "3", Low: "0.5", Close: "2", Volume: "10", Trades: 4, Closed: true}
	e := client.Event{Type: client.EventUpdate, Channel: "candle.1m.X", Seq: 2, Prev: 1, Candle: c}
	got := human(e, &line{Type: "update"})
	if !strings.HasSuffix(got, "candle.1m.X update seq=2 prev=1 09:30 o=1 h=3 l=0.5 c=2 v=10 trades=4 closed") {
		t.Fatalf("%q", got)
	}
}

// The node is killed and restarted mid-run: tickwatch reconnects, the book
// and ticker resync (recovered: exit 0); with the trade channel too, the
// trades lost meanwhile are reported and cannot be recovered (exit 1).
func TestRecoveryVerdict(t *testing.T) {
	for _, tt := range []struct {
		name     string
		channels string
		ready    string // the line after which the node is killed
		code     int
		want     string
	}{
		{"state channels recover", "book.BTC-USD,ticker.BTC-USD", "state live", 0, "unrecovered=0; ok"},
		// A client that held no trade yet when the node went cannot know
		// what it missed: the node is killed once one arrived.
		{"lost trades do not", "book.BTC-USD,trade.BTC-USD", "trade.BTC-USD update", 1, "NOT OK"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env, n, _, flags := node(t, 2)
			out := &syncBuffer{}
			var errOut bytes.Buffer
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			code := make(chan int, 1)
			go func() { code <- run(ctx, append(flags, "--channels", tt.channels), out, &errOut) }()
			waitLine(t, out, tt.ready)
			n.Kill(t)
			waitLine(t, out, "disconnected")
			env.Start(t, n.Addr)
			waitLine(t, out, "connected node=")
			time.Sleep(300 * time.Millisecond) // the book waits for the feed's next snapshot
			cancel()
			if got := <-code; got != tt.code {
				t.Fatalf("exit %d, want %d\n%s%s", got, tt.code, out.String(), errOut.String())
			}
			sum := lastLine(out.String())
			if !strings.HasPrefix(sum, "summary: messages=") || !strings.Contains(sum, "reconnects=1") || !strings.Contains(sum, tt.want) {
				t.Fatalf("summary %q", sum)
			}
		})
	}
}

// A node that refuses the token ends tickwatch with status 1 and the
// node's reason.
func TestRefusedToken(t *testing.T) {
	env, _, _, flags := node(t, 3)
	bad := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(bad, []byte(env.Token(t, "x", time.Hour, "ticker.*")), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	args := append(flags, "--token-file", bad, "--channels", "book.BTC-USD", "--duration", "5s")
	if code := run(t.Context(), args, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "forbidden") {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errOut.String())
	}
}

func waitLine(t *testing.T, out *syncBuffer, substr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), substr) {
		if time.Now().After(deadline) {
			t.Fatalf("no line with %q in:\n%s", substr, out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func lastLine(s string) string {
	var last string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		last = sc.Text()
	}
	return last
}
