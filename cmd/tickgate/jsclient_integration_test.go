//go:build integration

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tickgate/tickgate/auth"
)

// jsModuleServer serves, over TLS, the browser module's source folder
// (client/js, its tests included) at /client/, the conformance cases at
// /conformance/ with an index.json listing them, and extra handlers.
func jsModuleServer(t *testing.T, extra map[string]http.HandlerFunc) *httptest.Server {
	t.Helper()
	s := httptest.NewUnstartedServer(jsModuleMux(t, extra))
	s.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

// jsModuleMux is the handler of jsModuleServer.
func jsModuleMux(t *testing.T, extra map[string]http.HandlerFunc) http.Handler {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", "..", "client", "js"))
	if err != nil {
		t.Fatal(err)
	}
	cases := filepath.Join("..", "..", "proto", "testdata", "conformance")
	mux := http.NewServeMux()
	mux.Handle("GET /client/", http.StripPrefix("/client/", http.FileServer(http.Dir(root))))
	mux.HandleFunc("GET /conformance/index.json", func(w http.ResponseWriter, r *http.Request) {
		names, err := fs.Glob(os.DirFS(cases), "*.json")
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		slices.Sort(names)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(names)
	})
	mux.Handle("GET /conformance/", http.StripPrefix("/conformance/", http.FileServer(http.Dir(cases))))
	mux.HandleFunc("GET /favicon.ico", http.NotFound)
	for pattern, h := range extra {
		mux.HandleFunc(pattern, h)
	}
	return mux
}

// moduleReport is what client/js/test/unit.html reports.
type moduleReport struct {
	UserAgent string `json:"userAgent"`
	Unit      struct {
		Passed []string `json:"passed"`
		Failed []struct {
			Name  string `json:"name"`
			Error string `json:"error"`
		} `json:"failed"`
		MS int `json:"ms"`
	} `json:"unit"`
	Conformance []struct {
		File     string   `json:"file"`
		Codec    string   `json:"codec"`
		Failures []string `json:"failures"`
	} `json:"conformance"`
}

// TestJSModuleInChromium runs the browser module's unit tests (msgpack,
// JSON with exact integers, CRC-32, decimals, book, channel rules, backoff,
// the client on a fake socket) and every case of proto/testdata/conformance
// in both codecs, in Debian's headless Chromium.
func TestJSModuleInChromium(t *testing.T) {
	chromium := itNeed(t, "chromium", "chromium", "this test runs the browser module in a real browser")
	began := time.Now()
	srv := jsModuleServer(t, nil)
	page := cdpBrowser(t, chromium, t.TempDir(), 1000, 700)
	page.navigate(srv.URL + "/client/test/unit.html?cases=/conformance/")
	var rep moduleReport
	page.awaitReport(&rep, 60*time.Second)
	rep.check(t, "Chrom", began)
}

// check fails t for every unit test and conformance run the page reports
// failed, and when fewer ran than there are (30 unit tests at least, each
// conformance case in both codecs); browser is what the user agent must
// name.
func (rep *moduleReport) check(t *testing.T, browser string, began time.Time) {
	t.Helper()
	t.Logf("browser: %s", rep.UserAgent)
	if !strings.Contains(rep.UserAgent, browser) {
		t.Errorf("user agent %q does not name %s", rep.UserAgent, browser)
	}
	for _, f := range rep.Unit.Failed {
		t.Errorf("unit test %q: %s", f.Name, f.Error)
	}
	if len(rep.Unit.Passed) < 30 {
		t.Errorf("only %d unit tests passed", len(rep.Unit.Passed))
	}
	files, _ := filepath.Glob(filepath.Join("..", "..", "proto", "testdata", "conformance", "*.json"))
	if len(rep.Conformance) != 2*len(files) || len(files) == 0 {
		t.Errorf("%d conformance runs for %d case files, want 2 each", len(rep.Conformance), len(files))
	}
	passed := 0
	for _, c := range rep.Conformance {
		if len(c.Failures) > 0 {
			t.Errorf("conformance %s (%s):\n  %s", c.File, c.Codec, strings.Join(c.Failures, "\n  "))
		} else {
			passed++
		}
	}
	t.Logf("unit: %d passed in %d ms; conformance: %d of %d runs passed (%d cases x json, msgpack); total %v",
		len(rep.Unit.Passed), rep.Unit.MS, passed, len(rep.Conformance), len(files), time.Since(began).Round(time.Millisecond))
}

// liveSide is what one client of client/js/test/live.html saw.
type liveSide struct {
	Books               int         `json:"books"`
	Tickers             int         `json:"tickers"`
	Trades              int         `json:"trades"`
	Gaps                []string    `json:"gaps"`
	ChecksumFailures    []string    `json:"checksumFailures"`
	Resyncs             []string    `json:"resyncs"`
	Errors              []string    `json:"errors"`
	States              []string    `json:"states"`
	Rounds              []liveRound `json:"rounds"`
	Authenticated       int         `json:"authenticated"`
	MaxLatencyMS        float64     `json:"maxLatencyMs"`
	BooksAfterReconnect int         `json:"booksAfterReconnect"`
	TradesAfterReconn   int         `json:"tradesAfterReconnect"`
	WrongBooks          int         `json:"wrongBooks"`
}

type liveRound struct {
	Resumed     []string `json:"resumed"`
	Fresh       []string `json:"fresh"`
	Reconnected bool     `json:"reconnected"`
}

type liveChannel struct {
	Name   string `json:"name"`
	State  string `json:"state"`
	Reason string `json:"reason"`
	Stats  struct {
		ChecksumOk  int `json:"checksumOk"`
		ChecksumBad int `json:"checksumBad"`
		Gaps        int `json:"gaps"`
		Resyncs     int `json:"resyncs"`
	} `json:"stats"`
}

type liveReport struct {
	UserAgent      string        `json:"userAgent"`
	Exception      string        `json:"exception"`
	MS             int           `json:"ms"`
	RTTMS          float64       `json:"rttMs"`
	Keeper         *liveSide     `json:"keeper"`
	Mover          *liveSide     `json:"mover"`
	Refresher      *liveSide     `json:"refresher"`
	MoverChannels  []liveChannel `json:"moverChannels"`
	KeeperChannels []liveChannel `json:"keeperChannels"`
	MoverStats     struct {
		Connects   int `json:"connects"`
		Reconnects int `json:"reconnects"`
		Resumed    int `json:"resumed"`
	} `json:"moverStats"`
	MoverState string `json:"moverState"`
	Forbidden  struct {
		Code     string   `json:"code"`
		Channel  string   `json:"channel"`
		Accepted []string `json:"accepted"`
		N        int      `json:"n"`
	} `json:"forbidden"`
	FirstExp       int64 `json:"firstExp"`
	RefresherStats struct {
		Connects   int `json:"connects"`
		Reconnects int `json:"reconnects"`
	} `json:"refresherStats"`
	RefresherTickerState string `json:"refresherTickerState"`
}

// devForBrowser starts `tickgate dev` in the process and returns its
// WebSocket URL, its token, a signer for more tokens with its secret, and
// its admin URL.
func devForBrowser(t *testing.T, extra ...string) (wsURL, token string, signer *auth.Signer, admin string, out map[string]string) {
	t.Helper()
	dir := t.TempDir()
	args := append([]string{"dev", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0",
		"--nats-listen", "127.0.0.1:0", "--dir", filepath.Join(dir, "dev"), "--log-level", "warn"}, extra...)
	out = runInProcess(t, io.Discard, "token: ", args...)
	wsURL, token = out["url"], out["token"]
	admin, _, _ = strings.Cut(out["admin"], " ")
	if !strings.HasPrefix(wsURL, "wss://") || token == "" || admin == "" {
		t.Fatalf("dev printed %v", out)
	}
	secret, err := os.ReadFile(filepath.Join(dir, "dev", "hmac.secret"))
	if err != nil {
		t.Fatal(err)
	}
	if signer, err = auth.NewHMACSigner(secret, ""); err != nil {
		t.Fatal(err)
	}
	itWaitFor(t, 10*time.Second, "/readyz 200", func() bool { return itStatus(admin+"/readyz") == http.StatusOK })
	return wsURL, token, signer, admin, out
}

// TestJSModuleLive runs the browser module in headless Chromium against
// `tickgate dev`: one client (json) keeps the channels held on the node;
// another (msgpack) is forced to reconnect mid-stream and must resume them
// with since, with every prev chain and book checksum intact before and
// after; a third lives on 5-second tokens that it refreshes in-band past
// the first one's exp without reconnecting, and gets a typed forbidden
// error for a channel its token does not allow.
func TestJSModuleLive(t *testing.T) {
	chromium := itNeed(t, "chromium", "chromium", "this test runs the browser module in a real browser")
	began := time.Now()
	wsURL, token, signer, admin, _ := devForBrowser(t, "--symbols", "3", "--rate", "300")
	minted := 0
	srv := jsModuleServer(t, map[string]http.HandlerFunc{
		"GET /token": func(w http.ResponseWriter, r *http.Request) {
			tok, err := signer.Sign(auth.TokenSpec{Subject: "dev", Channels: []string{"ticker.*"}, TTL: 5 * time.Second, Audience: devAudience})
			if err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			minted++
			w.Header().Set("Cache-Control", "no-store")
			_, _ = io.WriteString(w, tok)
		},
	})
	page := cdpBrowser(t, chromium, t.TempDir(), 1000, 700)
	page.navigate(srv.URL + "/client/test/live.html?" + url.Values{"url": {wsURL}, "token": {token}, "tokenURL": {srv.URL + "/token"}}.Encode())
	var rep liveReport
	page.awaitReport(&rep, 90*time.Second)
	if rep.Exception != "" {
		t.Fatalf("the page failed: %s", rep.Exception)
	}
	for name, s := range map[string]*liveSide{"keeper": rep.Keeper, "mover": rep.Mover, "refresher": rep.Refresher} {
		if s == nil {
			t.Fatalf("%s: no report", name)
		}
		if len(s.Gaps) > 0 || len(s.ChecksumFailures) > 0 || len(s.Errors) > 0 || s.WrongBooks > 0 {
			t.Errorf("%s: gaps %q, checksum failures %q, errors %q, %d wrong books handed out", name, s.Gaps, s.ChecksumFailures, s.Errors, s.WrongBooks)
		}
		if len(s.Resyncs) > 0 {
			t.Errorf("%s resynced: %q", name, s.Resyncs)
		}
	}

	// The forced reconnect: the mover came back once, at once, resumed what
	// the node still held, and kept checking.
	m := rep.Mover
	if rep.MoverStats.Connects != 2 || rep.MoverStats.Reconnects != 1 {
		t.Errorf("mover: %+v, want 2 connects, 1 reconnect", rep.MoverStats)
	}
	if len(m.Rounds) != 2 || !m.Rounds[1].Reconnected {
		t.Fatalf("mover's resubscribe rounds: %+v", m.Rounds)
	}
	round := m.Rounds[1]
	for _, ch := range []string{"ticker.BTC-USD", "trade.BTC-USD", "ticker.ETH-USD", "trade.ETH-USD"} {
		if !slices.Contains(round.Resumed, ch) {
			t.Errorf("after the reconnect %s was not resumed: %+v", ch, round)
		}
	}
	if m.BooksAfterReconnect < 6 || m.TradesAfterReconn < 2 {
		t.Errorf("mover after the reconnect: %d books, %d trades", m.BooksAfterReconnect, m.TradesAfterReconn)
	}
	for _, ch := range append(rep.MoverChannels, rep.KeeperChannels...) {
		if ch.State != "live" || ch.Stats.ChecksumBad != 0 || ch.Stats.Gaps != 0 {
			t.Errorf("channel %+v: want live, no gaps, no bad checksums", ch)
		}
		if strings.HasPrefix(ch.Name, "book.") && ch.Stats.ChecksumOk < 6 {
			t.Errorf("channel %s: only %d checksums checked", ch.Name, ch.Stats.ChecksumOk)
		}
	}
	if rep.MoverState != "closed" {
		t.Errorf("mover state after close: %q", rep.MoverState)
	}

	// The refresher: never reconnected, refreshed in-band past the first
	// token's exp, and got forbidden typed for the channel it may not have.
	r := rep.Refresher
	if rep.RefresherStats.Connects != 1 || r.Authenticated < 2 || rep.RefresherTickerState != "live" {
		t.Errorf("refresher: %+v, %d refreshes, ticker %s; states %q", rep.RefresherStats, r.Authenticated, rep.RefresherTickerState, r.States)
	}
	if f := rep.Forbidden; f.Code != "forbidden" || f.Channel != "book.BTC-USD" || !slices.Equal(f.Accepted, []string{"ticker.ETH-USD"}) || f.N != 1 {
		t.Errorf("subscribe beyond the token: %+v, want forbidden for book.BTC-USD with ticker.ETH-USD accepted", f)
	}
	metrics := itMetrics(admin)
	t.Logf("browser: %s", rep.UserAgent)
	t.Logf("keeper: %d books, %d tickers, %d trades; mover: %d books (%d after the reconnect), %d trades, resumed %v, fresh %v, ping %.1f ms, max feed-to-client latency %.0f ms",
		rep.Keeper.Books, rep.Keeper.Tickers, rep.Keeper.Trades, m.Books, m.BooksAfterReconnect, m.Trades, round.Resumed, round.Fresh, rep.RTTMS, m.MaxLatencyMS)
	t.Logf("refresher: %d in-band refreshes on %d tokens of 5 s, one connection; first exp %s; node saw %v handshake failures; page %d ms, total %v",
		r.Authenticated, minted, time.Unix(rep.FirstExp, 0).Format(time.TimeOnly), sumPrefix(metrics, "tickgate_handshake_failures_total"), rep.MS, time.Since(began).Round(time.Millisecond))
}

// sumPrefix adds up the series whose name starts with prefix.
func sumPrefix(m map[string]float64, prefix string) float64 {
	var n float64
	for k, v := range m {
		if strings.HasPrefix(k, prefix) {
			n += v
		}
	}
	return n
}

// TestBrowserDocExample runs the 20-line page of docs/clients.md,
// exactly as written but for the node's address, in headless Chromium
// against `tickgate dev`: the page imports the module from the node (a
// cross-origin module import, which needs the node's CORS header), shows
// checked books and logs trades. Chromium offers permessage-deflate on
// every connection, which the node does not take up.
func TestBrowserDocExample(t *testing.T) {
	if ext := browserDocExample(t); ext != "" {
		t.Errorf("the page's connection negotiated %q from a node without --compression", ext)
	}
}

// TestBrowserDocExampleCompressed is TestBrowserDocExample against a node
// with --compression: Chromium's offer is taken up, and the page works the
// same on compressed frames.
func TestBrowserDocExampleCompressed(t *testing.T) {
	if ext := browserDocExample(t, "--compression"); ext != "permessage-deflate; server_no_context_takeover; client_no_context_takeover" {
		t.Errorf("the page's connection negotiated %q", ext)
	}
}

// browserDocExample runs the documented page against `tickgate dev` with
// the extra flags, and returns the extensions its connection negotiated
// (WebSocket.extensions).
func browserDocExample(t *testing.T, flags ...string) (extensions string) {
	t.Helper()
	chromium := itNeed(t, "chromium", "chromium", "this test runs the documented page in a real browser")
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "clients.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "## Browser module")
	_, block, ok2 := strings.Cut(section, "```html\n")
	page, _, ok3 := strings.Cut(block, "```")
	if !ok || !ok2 || !ok3 {
		t.Fatal("docs/clients.md: no html block in its Browser module section")
	}
	_, script, _ := strings.Cut(page, `<script type="module">`)
	script, _, _ = strings.Cut(script, "</script>")
	if n := len(strings.Split(strings.TrimSpace(script), "\n")); n > 20 {
		t.Errorf("the documented example has %d lines of JavaScript; the doc promises 20", n)
	}

	wsURL, token, _, _, _ := devForBrowser(t, append([]string{"--symbols", "3", "--rate", "300"}, flags...)...)
	wssBase := strings.TrimSuffix(wsURL, "/v1/ws")
	page = strings.NewReplacer("wss://127.0.0.1:8443", wssBase, "https://127.0.0.1:8443", strings.Replace(wssBase, "wss://", "https://", 1)).Replace(page)
	// Before the page's module runs: note what each connection negotiated.
	page = strings.Replace(page, `<script type="module">`, `<script>
window.wsExtensions = [];
window.WebSocket = class extends WebSocket {
  constructor(...args) { super(...args); this.addEventListener("open", () => window.wsExtensions.push(this.extensions)); }
};
</script>
<script type="module">`, 1)
	srv := jsModuleServer(t, map[string]http.HandlerFunc{
		"GET /example.html": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = io.WriteString(w, page)
		},
	})
	tab := cdpBrowser(t, chromium, t.TempDir(), 1000, 700)
	tab.navigate(srv.URL + "/example.html#token=" + token)
	var shown string
	itWaitFor(t, 30*time.Second, "books on the page and trades in its console", func() bool {
		if tab.evalInto(`document.getElementById("out").textContent`, &shown) != nil {
			return false
		}
		console := strings.Join(tab.consoleLines(), "\n")
		return strings.Count(shown, "book.BTC-USD #") >= 5 && strings.Contains(console, "trade.BTC-USD")
	})
	console := tab.consoleLines()
	joined := strings.Join(console, "\n")
	for _, want := range []string{"log: connection open", "log: subscribed book.BTC-USD trade.BTC-USD"} {
		if !strings.Contains(joined, want) {
			t.Errorf("the page's console lacks %q:\n%s", want, joined)
		}
	}
	for _, bad := range []string{"exception", "error:", "warning: gap"} {
		if strings.Contains(joined, bad) {
			t.Errorf("the page's console has %q:\n%s", bad, joined)
		}
	}
	first, _, _ := strings.Cut(shown, "\n")
	t.Logf("the documented page shows %q and %d console lines, the first %q", first, len(console), console[0])
	var opened []string
	if err := tab.evalInto(`window.wsExtensions`, &opened); err != nil || len(opened) == 0 {
		t.Fatalf("no connection's extensions noted (%v)", err)
	}
	return opened[0]
}

// restartSummary is window.restart.summary() of client/js/test/restart.html.
type restartSummary struct {
	States []struct {
		State   string  `json:"state"`
		Code    int     `json:"code"`
		DelayMS float64 `json:"delayMs"`
		At      int64   `json:"at"`
	} `json:"states"`
	Notices []struct {
		Reason   string `json:"reason"`
		WithinMS int    `json:"withinMs"`
		At       int64  `json:"at"`
	} `json:"notices"`
	Rounds           []liveRound       `json:"rounds"`
	Gaps             []json.RawMessage `json:"gaps"`
	ChecksumFailures []string          `json:"checksumFailures"`
	Errors           []string          `json:"errors"`
	Books            int               `json:"books"`
	Tickers          int               `json:"tickers"`
	Trades           int               `json:"trades"`
	TokenCalls       int               `json:"tokenCalls"`
	WrongBooks       int               `json:"wrongBooks"`
	State            string            `json:"state"`
	Channels         []liveChannel     `json:"channels"`
	Stats            struct {
		Connects   int `json:"connects"`
		Reconnects int `json:"reconnects"`
	} `json:"stats"`
}

// TestJSModuleDrainRestart drains a `tickgate dev` node under the browser
// module (SIGTERM: a reconnect notice, then close 1001 within
// --drain-within), keeps the address down for two seconds, then starts a
// new node there with a new secret and a feed that counts from 1 again.
// The module must come back promptly after the notice, back off while
// nothing answers (no hot loop), take a fresh token from its token source,
// start every channel afresh from the new node (its since means nothing
// there), report the trades it cannot resume as a gap, and hand out only
// verified books throughout.
func TestJSModuleDrainRestart(t *testing.T) {
	chromium := itNeed(t, "chromium", "chromium", "this test runs the browser module in a real browser")
	began := time.Now()
	dir := t.TempDir()
	bin := itBuild(t, dir)
	ports := itFreePorts(t, 3)
	listen, admin, natsAddr := fmt.Sprintf("127.0.0.1:%d", ports[0]), fmt.Sprintf("127.0.0.1:%d", ports[1]), fmt.Sprintf("127.0.0.1:%d", ports[2])

	var mu sync.Mutex
	current := "" // the running node's --dir, whose secret signs tokens
	// Each node is a new world: its own embedded NATS, its own store and a
	// feed that counts from 1. A history stream there would hold only the
	// new run, whose seqs a since from the old one cannot be told apart
	// from, so both nodes keep history in memory: what is tested is a node
	// that never held the channel, not durable resume.
	startDev := func(name string) *itProc {
		nodeDir := filepath.Join(dir, name)
		p := itStart(t, dir, name, bin, []string{"dev", "--listen", listen, "--admin", admin, "--nats-listen", natsAddr,
			"--dir", nodeDir, "--symbols", "3", "--rate", "300", "--drain-within", "1s", "--log-level", "warn", "--history", "memory"}, nil)
		itWaitFor(t, 20*time.Second, name+" printing its token", func() bool { return strings.Contains(p.output(), "\ntoken: ") })
		itWaitFor(t, 10*time.Second, name+" ready", func() bool { return itStatus("http://"+admin+"/readyz") == http.StatusOK })
		mu.Lock()
		current = nodeDir
		mu.Unlock()
		return p
	}
	srv := jsModuleServer(t, map[string]http.HandlerFunc{
		"GET /token": func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			nodeDir := current
			mu.Unlock()
			secret, err := os.ReadFile(filepath.Join(nodeDir, "hmac.secret"))
			if err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			signer, err := auth.NewHMACSigner(secret, "")
			if err == nil {
				var tok string
				if tok, err = signer.Sign(auth.TokenSpec{Subject: "dev", Channels: []string{">"}, TTL: time.Hour, Audience: devAudience}); err == nil {
					w.Header().Set("Cache-Control", "no-store")
					_, _ = io.WriteString(w, tok)
					return
				}
			}
			http.Error(w, err.Error(), 500)
		},
	})

	first := startDev("dev-1")
	tab := cdpBrowser(t, chromium, t.TempDir(), 1000, 700)
	tab.navigate(srv.URL + "/client/test/restart.html?" + url.Values{"url": {"wss://" + listen + "/v1/ws"}, "tokenURL": {srv.URL + "/token"}, "codec": {"msgpack"}}.Encode())
	var s restartSummary
	summary := func() restartSummary {
		var out restartSummary
		if err := tab.evalInto(`window.restart ? window.restart.summary() : null`, &out); err != nil {
			t.Fatalf("summary: %v", err)
		}
		return out
	}
	itWaitFor(t, 30*time.Second, "books, tickers and trades from the first node", func() bool {
		s = summary()
		return s.Books >= 5 && s.Tickers >= 2 && s.Trades >= 2
	})
	booksBefore := s.Books

	// Drain the first node and keep the address down for two seconds.
	if err := first.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-first.done:
	case <-time.After(20 * time.Second):
		t.Fatal("the drained node did not exit")
	}
	downAt := time.Now()
	time.Sleep(2 * time.Second)
	startDev("dev-2")
	upAt := time.Now()

	itWaitFor(t, 40*time.Second, "the module back on the second node with verified books", func() bool {
		s = summary()
		live := 0
		for _, ch := range s.Channels {
			if ch.State == "live" {
				live++
			}
		}
		return len(s.Rounds) >= 2 && s.Books >= booksBefore+5 && live == 3
	})

	if len(s.Notices) != 1 || s.Notices[0].Reason != "draining" || s.Notices[0].WithinMS != 1000 {
		t.Errorf("reconnect notices %+v, want one, draining within 1000 ms", s.Notices)
	}
	var closes []int
	attempts := 0
	var promptAfter1001 float64 = -1
	for _, st := range s.States {
		if st.State == "reconnecting" {
			closes = append(closes, st.Code)
			if st.Code == 1001 && promptAfter1001 < 0 {
				promptAfter1001 = st.DelayMS
			}
		}
		if st.State == "connecting" && st.At >= downAt.UnixMilli() && st.At <= upAt.UnixMilli() {
			attempts++
		}
	}
	if len(closes) == 0 || closes[0] != 1001 || promptAfter1001 < 0 || promptAfter1001 >= 250 {
		t.Errorf("closes %v, first wait %.0f ms: want 1001 first, and back within 250 ms", closes, promptAfter1001)
	}
	// Down for at least 2 s plus the second node's start: full-jitter
	// backoff from 500 ms makes a handful of attempts, not a hot loop.
	if downFor := upAt.Sub(downAt); attempts > 8 {
		t.Errorf("%d connect attempts in the %v the address was down: a hot loop", attempts, downFor.Round(time.Millisecond))
	}
	last := s.Rounds[len(s.Rounds)-1]
	if !last.Reconnected || len(last.Resumed) != 0 || len(last.Fresh) != 3 {
		t.Errorf("the round on the new node %+v: want every channel afresh (its since means nothing there)", last)
	}
	historyGap := false
	for _, g := range s.Gaps {
		var gap struct{ Channel, Kind string }
		_ = json.Unmarshal(g, &gap)
		switch {
		case gap.Channel == "trade.BTC-USD" && gap.Kind == "history":
			historyGap = true
		case gap.Kind == "prev":
			t.Errorf("a broken chain: %s", g)
		}
	}
	if !historyGap {
		t.Errorf("gaps %s: want the trades lost across the restart reported (kind history)", s.Gaps)
	}
	if len(s.ChecksumFailures) > 0 || s.WrongBooks > 0 {
		t.Errorf("checksum failures %q, %d wrong books handed out", s.ChecksumFailures, s.WrongBooks)
	}
	if s.TokenCalls < s.Stats.Connects {
		t.Errorf("%d token calls for %d connects: the source is asked at every connect", s.TokenCalls, s.Stats.Connects)
	}
	for _, e := range s.Errors {
		t.Logf("error event: %s", e)
	}
	t.Logf("drain: notice %+v; closes %v; %d connect attempts while the address was down for %v; %d token calls for %d connects",
		s.Notices, closes, attempts, upAt.Sub(downAt).Round(time.Millisecond), s.TokenCalls, s.Stats.Connects)
	t.Logf("restart: the round on the new node started %v afresh; %d books before, %d in all, none failed; total %v",
		last.Fresh, booksBefore, s.Books, time.Since(began).Round(time.Millisecond))
}
