//go:build integration

package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// dashboardStats is window.tickgateDashboard.stats() (client/js/dashboard).
type dashboardStats struct {
	Connection string `json:"connection"`
	Badge      string `json:"badge"`
	Reconnects int    `json:"reconnects"`
	LastRound  *struct {
		Resumed     []string `json:"resumed"`
		Fresh       []string `json:"fresh"`
		Reconnected bool     `json:"reconnected"`
	} `json:"lastRound"`
	Frames   int `json:"frames"`
	RenderMS struct {
		Avg float64 `json:"avg"`
		Max float64 `json:"max"`
	} `json:"renderMs"`
	LatencyMS struct {
		P50 float64 `json:"p50"`
		P99 float64 `json:"p99"`
		N   int     `json:"n"`
	} `json:"latencyMs"`
	Messages    int               `json:"messages"`
	Trades      int               `json:"trades"`
	ChecksumOk  int               `json:"checksumOk"`
	ChecksumBad int               `json:"checksumBad"`
	ClientGaps  int               `json:"clientGaps"`
	FeedGaps    int               `json:"feedGaps"`
	Resyncs     int               `json:"resyncs"`
	Prices      map[string]string `json:"prices"`
	ShownPrices map[string]string `json:"shownPrices"`
	Ladder      struct {
		Channel  string `json:"channel"`
		State    string `json:"state"`
		Verified bool   `json:"verified"`
		Seq      string `json:"seq"`
		Checksum *int64 `json:"checksum"`
		Check    string `json:"check"`
		Rows     int    `json:"rows"`
	} `json:"ladder"`
	TapeRows int `json:"tapeRows"`
	Candles  struct {
		Channel string `json:"channel"`
		State   string `json:"state"`
		Bars    []struct {
			Start  string `json:"start"`
			Close  string `json:"close"`
			Closed bool   `json:"closed"`
		} `json:"bars"`
		Shown struct {
			Bars   int    `json:"bars"`
			Close  string `json:"close"`
			Start  string `json:"start"`
			Closed int    `json:"closed"`
		} `json:"shown"`
		Info string `json:"info"`
	} `json:"candles"`
	Channels []struct {
		Name  string `json:"name"`
		State string `json:"state"`
	} `json:"channels"`
	Log []string `json:"log"`
}

func (p *cdpPage) dashboardStats(t *testing.T) dashboardStats {
	t.Helper()
	var s dashboardStats
	if err := p.evalInto(`window.tickgateDashboard ? window.tickgateDashboard.stats() : null`, &s); err != nil {
		t.Fatalf("stats: %v", err)
	}
	return s
}

// changedPrices counts the symbols whose shown price differs between a and b.
func changedPrices(a, b map[string]string) int {
	n := 0
	for sym, p := range b {
		if p != "" && a[sym] != "" && a[sym] != p {
			n++
		}
	}
	return n
}

// TestDashboard opens the dashboard that `tickgate dev` serves at / (with
// 50 symbols) in headless Chromium, from the URL dev prints: the token in
// the fragment, which the page takes and removes. It checks that the
// overview shows every symbol with changing prices, that the ladder shows
// a book whose checksums the module verified (none failed), that the tape
// fills, and that a forced reconnect (the page's Reconnect button) is
// survived: the module reconnects and resumes the channels the node still
// holds (a second client keeps them there), and prices keep changing. It
// saves screenshots before and after the reconnect under artifactDir(),
// and logs the frame rate and render cost, which show that rendering runs
// per animation frame, not per message.
func TestDashboard(t *testing.T) {
	chromium := itNeed(t, "chromium", "chromium", "this test drives the dashboard in a real browser")
	began := time.Now()
	const symbols = 50
	wsURL, token, _, _, out := devForBrowser(t, "--symbols", fmt.Sprint(symbols), "--rate", "1500")
	page := out["dashboard"]
	if !strings.HasSuffix(page, "#token="+token) {
		t.Fatalf("dev printed dashboard %q", page)
	}

	// Another client holds BTC-USD on the node, so that the node keeps
	// its history while the dashboard reconnects.
	keeper := &itClient{url: wsURL, token: token, tls: &tls.Config{InsecureSkipVerify: true},
		channels: []string{"ticker.BTC-USD", "book.BTC-USD", "trade.BTC-USD"}, stopped: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go keeper.run(ctx)
	defer keeper.close()

	tab := cdpBrowser(t, chromium, t.TempDir(), 1440, 900)
	tab.navigate(page)
	var hash string
	if err := tab.evalInto(`location.hash`, &hash); err != nil || hash != "" {
		t.Fatalf("location.hash %q (%v): the page must remove the token from the address bar", hash, err)
	}

	var first dashboardStats
	itWaitFor(t, 30*time.Second, "every symbol's ticker, a verified ladder and trades on screen", func() bool {
		first = tab.dashboardStats(t)
		return len(first.Prices) == symbols && first.Ladder.Verified && first.Ladder.Rows >= 10 && first.TapeRows >= 3
	})
	var s dashboardStats
	itWaitFor(t, 20*time.Second, "prices changing on screen and books verified", func() bool {
		s = tab.dashboardStats(t)
		return changedPrices(first.ShownPrices, s.ShownPrices) >= 10 && s.ChecksumOk >= 5
	})
	if s.Connection != "open" || s.Badge != "live" {
		t.Errorf("connection %q, badge %q, want open and live", s.Connection, s.Badge)
	}
	if s.ChecksumOk < 5 || s.ChecksumBad != 0 || s.ClientGaps != 0 || s.Resyncs != 0 {
		t.Errorf("checksums %d ok, %d failed; %d gaps, %d resyncs", s.ChecksumOk, s.ChecksumBad, s.ClientGaps, s.Resyncs)
	}
	if !strings.HasPrefix(s.Ladder.Check, "✓ checksum ") {
		t.Errorf("ladder says %q", s.Ladder.Check)
	}
	// The candle chart draws the bars the module holds for the selected
	// symbol, the newest as held; another interval switches channels.
	chart := func(channel string) {
		t.Helper()
		itWaitFor(t, 20*time.Second, "the candle chart of "+channel, func() bool {
			s = tab.dashboardStats(t)
			c := s.Candles
			n := len(c.Bars)
			return c.Channel == channel && c.State == "live" && n >= 1 && c.Shown.Bars == n &&
				c.Shown.Close == c.Bars[n-1].Close && c.Shown.Start == c.Bars[n-1].Start
		})
		t.Logf("candle chart %s: %d bars drawn (%d closed): %s", channel, s.Candles.Shown.Bars, s.Candles.Shown.Closed, s.Candles.Info)
	}
	chart("candle.1m.BTC-USD")
	if _, err := tab.eval(`window.tickgateDashboard.chooseInterval("5m")`, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	chart("candle.5m.BTC-USD")
	t.Logf("50 symbols: %d of them changed price on screen; ladder %s at seq %s: %s; %d tape rows; feed-to-screen latency p50 %.0f ms, p99 %.0f ms (%d samples)",
		changedPrices(first.ShownPrices, s.ShownPrices), s.Ladder.Channel, s.Ladder.Seq, s.Ladder.Check, s.TapeRows, s.LatencyMS.P50, s.LatencyMS.P99, s.LatencyMS.N)

	// Smoothness: frames are drawn per animation frame, folding many
	// messages each, and each frame takes little time.
	pm0, err := tab.metrics()
	if err != nil {
		t.Fatal(err)
	}
	fr0, m0, t0 := s.Frames, s.Messages, time.Now()
	time.Sleep(2 * time.Second)
	s = tab.dashboardStats(t)
	pm1, _ := tab.metrics()
	secs := time.Since(t0).Seconds()
	fps, mps := float64(s.Frames-fr0)/secs, float64(s.Messages-m0)/secs
	busy := func(name string) float64 { return (pm1[name] - pm0[name]) / secs * 100 }
	// Task durations are wall time: on a loaded machine they include the
	// time the thread waited for a core; ThreadTime is its CPU time.
	t.Logf("rendering: %.0f frames/s for %.0f messages/s; a frame's JavaScript takes %.2f ms on average, %.1f ms at most; the page's main thread used %.0f%% of a core (tasks %.0f%% of wall time: script %.0f%%, style %.0f%%, layout %.0f%%)",
		fps, mps, s.RenderMS.Avg, s.RenderMS.Max, busy("ThreadTime"), busy("TaskDuration"), busy("ScriptDuration"), busy("RecalcStyleDuration"), busy("LayoutDuration"))
	// Headless Chromium's frame clock is not a display's, so the bound is
	// loose: what matters is that many messages share a frame.
	if fps > 130 || fps > mps/2 {
		t.Errorf("%.0f frames/s for %.0f messages/s: rendering is not bound to animation frames", fps, mps)
	}
	// Slow rendering shows as both a frame's script taking long and the
	// main thread busy. Either alone is the machine, not the page: under
	// load a frame's wall time includes the waits for a core (8.8–27 ms
	// seen with the thread at 17–31 % of a core), and on a quiet machine
	// the page draws more frames and its thread's CPU share rises with them
	// (70 % at 41 frames/s, 1.3 ms of script each).
	if cpu := busy("ThreadTime"); s.RenderMS.Avg > 8 && cpu > 50 {
		t.Errorf("a frame's script takes %.2f ms on average and the main thread used %.0f%% of a core, for %.0f messages/s with %d symbols: not smooth",
			s.RenderMS.Avg, cpu, mps, symbols)
	}

	dir := artifactDir()
	shot := filepath.Join(dir, "dashboard.png")
	if err := tab.screenshot(shot); err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	t.Logf("screenshot: %s", shot)

	// A forced reconnect, from the page's button.
	okBefore := s.ChecksumOk
	if _, err := tab.eval(`document.getElementById("reconnect").click()`, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	itWaitFor(t, 20*time.Second, "the dashboard to reconnect and resubscribe", func() bool {
		s = tab.dashboardStats(t)
		return s.Reconnects == 1 && s.Connection == "open" && s.LastRound != nil && s.LastRound.Reconnected && strings.HasPrefix(s.Badge, "live · resumed ")
	})
	// The node held BTC-USD for the other client: those channels resume;
	// the tickers it dropped with the dashboard's connection start afresh.
	// The candle channel resumes where the history stream covers it.
	resumed := slices.DeleteFunc(slices.Clone(s.LastRound.Resumed), func(ch string) bool { return ch == "candle.5m.BTC-USD" })
	if !slices.Equal(resumed, []string{"ticker.BTC-USD", "book.BTC-USD", "trade.BTC-USD"}) || len(s.LastRound.Resumed)+len(s.LastRound.Fresh) != symbols+3 {
		t.Errorf("after the reconnect: resumed %v, %d afresh", s.LastRound.Resumed, len(s.LastRound.Fresh))
	}
	afterReconnect := s.ShownPrices
	itWaitFor(t, 20*time.Second, "prices changing and books verified after the reconnect", func() bool {
		s = tab.dashboardStats(t)
		live := 0
		for _, ch := range s.Channels {
			if ch.State == "live" {
				live++
			}
		}
		return changedPrices(afterReconnect, s.ShownPrices) >= 10 && s.ChecksumOk >= okBefore+5 && s.Ladder.Verified && live == len(s.Channels)
	})
	if s.ChecksumBad != 0 || s.ClientGaps != 0 {
		t.Errorf("after the reconnect: %d failed checksums, %d gaps; log %q", s.ChecksumBad, s.ClientGaps, s.Log)
	}
	shot2 := filepath.Join(dir, "dashboard-resumed.png")
	if err := tab.screenshot(shot2); err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	t.Logf("screenshot: %s", shot2)
	t.Logf("reconnect: badge %q; resumed %d channels, %d afresh; %d checksums verified, none failed; total %v",
		s.Badge, len(s.LastRound.Resumed), len(s.LastRound.Fresh), s.ChecksumOk, time.Since(began).Round(time.Millisecond))
	if v := keeper.current().violations; len(v) > 0 {
		t.Errorf("the other client saw protocol violations: %q", v)
	}
}

// TestDashboardAsksForToken opens the dashboard without a token, as `serve
// --dashboard` is opened: the page asks for one; given the token and two
// symbols in its form, it connects and shows them.
func TestDashboardAsksForToken(t *testing.T) {
	chromium := itNeed(t, "chromium", "chromium", "this test drives the dashboard in a real browser")
	_, token, _, _, out := devForBrowser(t, "--symbols", "3", "--rate", "200")
	page, _, _ := strings.Cut(out["dashboard"], "#")
	tab := cdpBrowser(t, chromium, t.TempDir(), 1200, 800)
	tab.navigate(page)
	var visible bool
	itWaitFor(t, 10*time.Second, "the token form", func() bool {
		return tab.evalInto(`!document.getElementById("login").hidden && document.getElementById("main").hidden`, &visible) == nil && visible
	})
	tokJSON, _ := json.Marshal(token)
	fill := fmt.Sprintf(`document.getElementById("login-token").value = %s;
		document.getElementById("login-symbols").value = "ETH-USD, SOL-USD";
		document.getElementById("login-codec").value = "msgpack";
		document.querySelector("#login button[type=submit]").click(); true`, tokJSON)
	if _, err := tab.eval(fill, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	var s dashboardStats
	itWaitFor(t, 20*time.Second, "the two symbols and the ETH-USD ladder", func() bool {
		s = tab.dashboardStats(t)
		return len(s.Prices) == 2 && s.Ladder.Channel == "book.ETH-USD" && s.Ladder.Verified
	})
	var codec string
	if err := tab.evalInto(`window.tickgateDashboard.client.welcome.codec`, &codec); err != nil || codec != "msgpack" {
		t.Fatalf("codec %q (%v)", codec, err)
	}
	t.Logf("token form: connected with msgpack, showing %v; ladder %s", s.Prices, s.Ladder.Check)
}
