//go:build integration

package main

// A small Chrome DevTools Protocol client for the browser tests: headless
// Chromium started with the flags CI uses plus --remote-debugging-port,
// one page driven over the page's DevTools WebSocket (with gws, which the
// project already uses): navigate, evaluate JavaScript (awaiting
// promises), and capture screenshots. The page's console output and
// uncaught exceptions are kept and logged when a test fails.

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lxzan/gws"
)

// cdpPage is one browser tab under the test's control.
type cdpPage struct {
	t    *testing.T
	conn *gws.Conn

	mu      sync.Mutex
	nextID  int
	waiting map[int]chan cdpReply // Guarded by mu.
	console []string              // Guarded by mu: console lines and exceptions, oldest first.
	closed  bool                  // Guarded by mu.
}

type cdpReply struct {
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Message string `json:"message"`
		Data    string `json:"data"`
	} `json:"error"`
}

// cdpBrowser starts headless Chromium with a fresh profile under dir and
// returns its first page, sized width x height. The browser and all its
// processes end with the test.
func cdpBrowser(t *testing.T, chromium, dir string, width, height int) *cdpPage {
	t.Helper()
	profile, err := os.MkdirTemp(dir, "chromium-profile-")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(chromium,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--ignore-certificate-errors",
		"--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1",
		fmt.Sprintf("--window-size=%d,%d", width, height), "--hide-scrollbars",
		"--user-data-dir="+profile, "about:blank")
	logPath := profile + ".log"
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	var page *cdpPage
	t.Cleanup(func() {
		if page != nil {
			page.close()
		}
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		_ = logFile.Close()
		if t.Failed() {
			out, _ := os.ReadFile(logPath)
			if len(out) > 4000 {
				out = out[len(out)-4000:]
			}
			t.Logf("--- chromium output (tail) ---\n%s", out)
		}
	})

	// Chromium writes the port it took into the profile.
	var port int
	itWaitFor(t, 20*time.Second, "chromium's DevToolsActivePort", func() bool {
		b, err := os.ReadFile(filepath.Join(profile, "DevToolsActivePort"))
		if err != nil {
			return false
		}
		first, _, _ := strings.Cut(string(b), "\n")
		port, err = strconv.Atoi(strings.TrimSpace(first))
		return err == nil && port > 0
	})
	var wsURL string
	itWaitFor(t, 10*time.Second, "chromium's first page target", func() bool {
		resp, err := itHTTP.Get(fmt.Sprintf("http://127.0.0.1:%d/json/list", port))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var targets []struct {
			Type string `json:"type"`
			URL  string `json:"url"`
			WS   string `json:"webSocketDebuggerUrl"`
		}
		if json.NewDecoder(resp.Body).Decode(&targets) != nil {
			return false
		}
		for _, tg := range targets {
			if tg.Type == "page" && tg.URL == "about:blank" && tg.WS != "" {
				wsURL = tg.WS
				return true
			}
		}
		return false
	})
	page = &cdpPage{t: t, waiting: map[int]chan cdpReply{}}
	conn, _, err := gws.NewClient(page, &gws.ClientOption{Addr: wsURL, HandshakeTimeout: 5 * time.Second,
		ReadMaxPayloadSize: 64 << 20, RequestHeader: http.Header{}})
	if err != nil {
		t.Fatalf("DevTools WebSocket %s: %v", wsURL, err)
	}
	page.conn = conn
	go conn.ReadLoop()
	for _, m := range []string{"Runtime.enable", "Page.enable"} {
		if _, err := page.call(m, nil, 10*time.Second); err != nil {
			t.Fatalf("%s: %v", m, err)
		}
	}
	if _, err := page.call("Emulation.setDeviceMetricsOverride", map[string]any{
		"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}, 10*time.Second); err != nil {
		t.Fatalf("Emulation.setDeviceMetricsOverride: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- page console ---\n%s", strings.Join(page.consoleLines(), "\n"))
		}
	})
	return page
}

func (p *cdpPage) OnOpen(*gws.Conn)               {}
func (p *cdpPage) OnPing(c *gws.Conn, b []byte)   { _ = c.WritePong(b) }
func (p *cdpPage) OnPong(*gws.Conn, []byte)       {}
func (p *cdpPage) OnClose(c *gws.Conn, err error) { p.close() }
func (p *cdpPage) OnMessage(c *gws.Conn, m *gws.Message) {
	defer m.Close()
	var msg struct {
		ID     int             `json:"id"`
		Method string          `json:"method"`
		Params json.RawMessage `json:"params"`
		cdpReply
	}
	if json.Unmarshal(m.Bytes(), &msg) != nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if msg.ID != 0 {
		if ch := p.waiting[msg.ID]; ch != nil {
			delete(p.waiting, msg.ID)
			ch <- msg.cdpReply
		}
		return
	}
	switch msg.Method {
	case "Runtime.consoleAPICalled":
		var ev struct {
			Type string `json:"type"`
			Args []struct {
				Value       any    `json:"value"`
				Description string `json:"description"`
			} `json:"args"`
		}
		if json.Unmarshal(msg.Params, &ev) == nil && len(p.console) < 500 {
			parts := make([]string, 0, len(ev.Args))
			for _, a := range ev.Args {
				if a.Value != nil {
					parts = append(parts, fmt.Sprint(a.Value))
				} else {
					parts = append(parts, a.Description)
				}
			}
			p.console = append(p.console, ev.Type+": "+strings.Join(parts, " "))
		}
	case "Runtime.exceptionThrown":
		var ev struct {
			Details struct {
				Text      string `json:"text"`
				Exception struct {
					Description string `json:"description"`
				} `json:"exception"`
			} `json:"exceptionDetails"`
		}
		if json.Unmarshal(msg.Params, &ev) == nil && len(p.console) < 500 {
			p.console = append(p.console, "exception: "+ev.Details.Text+" "+ev.Details.Exception.Description)
		}
	}
}

func (p *cdpPage) consoleLines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.console...)
}

func (p *cdpPage) close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	for id, ch := range p.waiting {
		delete(p.waiting, id)
		close(ch)
	}
	p.mu.Unlock()
	if p.conn != nil {
		_ = p.conn.NetConn().Close()
	}
}

// call sends one DevTools command and waits for its reply.
func (p *cdpPage) call(method string, params any, timeout time.Duration) (json.RawMessage, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, errors.New("the DevTools connection is closed")
	}
	p.nextID++
	id := p.nextID
	ch := make(chan cdpReply, 1)
	p.waiting[id] = ch
	p.mu.Unlock()
	if params == nil {
		params = map[string]any{}
	}
	b, err := json.Marshal(map[string]any{"id": id, "method": method, "params": params})
	if err != nil {
		return nil, err
	}
	if err := p.conn.WriteMessage(gws.OpcodeText, b); err != nil {
		return nil, err
	}
	select {
	case r, ok := <-ch:
		if !ok {
			return nil, errors.New("the DevTools connection closed")
		}
		if r.Error != nil {
			return nil, fmt.Errorf("%s: %s %s", method, r.Error.Message, r.Error.Data)
		}
		return r.Result, nil
	case <-time.After(timeout):
		p.mu.Lock()
		delete(p.waiting, id)
		p.mu.Unlock()
		return nil, fmt.Errorf("%s: no reply within %v", method, timeout)
	}
}

// navigate opens url in the page and waits for its load event.
func (p *cdpPage) navigate(url string) {
	p.t.Helper()
	if _, err := p.call("Page.navigate", map[string]any{"url": url}, 20*time.Second); err != nil {
		p.t.Fatalf("navigate %s: %v", url, err)
	}
	itWaitFor(p.t, 20*time.Second, "the page to load", func() bool {
		var state string
		return p.evalInto(`document.readyState`, &state) == nil && state == "complete"
	})
}

// eval evaluates expr in the page, awaiting it when it is a promise, and
// returns its value as JSON.
func (p *cdpPage) eval(expr string, timeout time.Duration) (json.RawMessage, error) {
	res, err := p.call("Runtime.evaluate", map[string]any{
		"expression": expr, "awaitPromise": true, "returnByValue": true, "timeout": timeout.Milliseconds()}, timeout+5*time.Second)
	if err != nil {
		return nil, err
	}
	var r struct {
		Result struct {
			Type  string          `json:"type"`
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		Exception *struct {
			Text      string `json:"text"`
			Exception struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	if err := json.Unmarshal(res, &r); err != nil {
		return nil, err
	}
	if r.Exception != nil {
		return nil, fmt.Errorf("%s: %s", r.Exception.Text, r.Exception.Exception.Description)
	}
	return r.Result.Value, nil
}

// evalInto evaluates expr and decodes its value into v.
func (p *cdpPage) evalInto(expr string, v any) error {
	raw, err := p.eval(expr, 10*time.Second)
	if err != nil {
		return err
	}
	if len(raw) == 0 {
		return errors.New("no value")
	}
	return json.Unmarshal(raw, v)
}

// awaitReport waits for the page's window.report promise and decodes it.
func (p *cdpPage) awaitReport(v any, timeout time.Duration) {
	p.t.Helper()
	var raw json.RawMessage
	deadline := time.Now().Add(timeout)
	for {
		var err error
		raw, err = p.eval(`window.report`, time.Until(deadline))
		if err == nil && len(raw) > 0 && string(raw) != "null" {
			break
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("window.report: %v (value %s)", err, raw)
		}
		time.Sleep(100 * time.Millisecond) // the module may still be loading
	}
	if err := json.Unmarshal(raw, v); err != nil {
		p.t.Fatalf("window.report %s: %v", raw, err)
	}
}

// metrics returns the page's Performance.getMetrics counters (TaskDuration,
// ScriptDuration, LayoutDuration, RecalcStyleDuration, in seconds, …).
func (p *cdpPage) metrics() (map[string]float64, error) {
	if _, err := p.call("Performance.enable", nil, 5*time.Second); err != nil {
		return nil, err
	}
	res, err := p.call("Performance.getMetrics", nil, 5*time.Second)
	if err != nil {
		return nil, err
	}
	var r struct {
		Metrics []struct {
			Name  string  `json:"name"`
			Value float64 `json:"value"`
		} `json:"metrics"`
	}
	if err := json.Unmarshal(res, &r); err != nil {
		return nil, err
	}
	out := make(map[string]float64, len(r.Metrics))
	for _, m := range r.Metrics {
		out[m.Name] = m.Value
	}
	return out, nil
}

// screenshot saves the page as a PNG at path.
func (p *cdpPage) screenshot(path string) error {
	res, err := p.call("Page.captureScreenshot", map[string]any{"format": "png"}, 20*time.Second)
	if err != nil {
		return err
	}
	var r struct {
		Data string `json:"data"`
	}
	if err := json.Unmarshal(res, &r); err != nil {
		return err
	}
	png, err := base64.StdEncoding.DecodeString(r.Data)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, png, 0o644)
}

// artifactDir is where the browser tests leave screenshots for CI to keep:
// $CI_ARTIFACTS_DIR, or /tmp/tickgate-ci.
func artifactDir() string {
	if d := os.Getenv("CI_ARTIFACTS_DIR"); d != "" {
		return d
	}
	return filepath.Join(os.TempDir(), "tickgate-ci")
}
