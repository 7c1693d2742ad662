//go:build integration

package main

// Helpers of the integration tests (build tag integration): building the
// binary, child processes with their output kept, free loopback ports,
// polling, and a WebSocket client that records what each of its sessions
// received and checks the protocol's sequence rules.

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lxzan/gws"

	"github.com/tickgate/tickgate/auth"
	"github.com/tickgate/tickgate/internal/selfsigned"
	"github.com/tickgate/tickgate/proto"
)

// itBuild builds this package's binary into dir.
func itBuild(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "tickgate")
	began := time.Now()
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Logf("built tickgate in %v", time.Since(began).Round(time.Millisecond))
	return bin
}

// itLookPath finds a Debian-installed program also when /usr/sbin is not on
// PATH (a non-login shell, a minimal container).
func itLookPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return exec.LookPath(filepath.Join("/usr/sbin", name))
}

// itNeed finds the program a test drives. Without it the test is skipped
// on a developer's machine, but fails under CI (CI=true), where .ci/run
// installs the Debian package: a test that silently skips proves nothing.
func itNeed(t *testing.T, program, debianPackage, why string) string {
	t.Helper()
	p, err := itLookPath(program)
	if err == nil {
		return p
	}
	msg := fmt.Sprintf("%s is not installed (apt-get install -y %s): %s", program, debianPackage, why)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// itFreePorts returns n distinct free loopback TCP ports, none of them
// handed out before in this test binary: the kernel may give a port
// closed a moment ago to the next bind, and a test that asked twice (its
// gateways' ports, then its NATS cluster's) once had a gateway's admin
// port taken by a NATS monitor.
func itFreePorts(t *testing.T, n int) []int {
	t.Helper()
	itPorts.mu.Lock()
	defer itPorts.mu.Unlock()
	if itPorts.given == nil {
		itPorts.given = make(map[int]bool)
	}
	var ports []int
	var lns []net.Listener
	for len(ports) < n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln) // held until all n are chosen: no port twice in one call
		if p := ln.Addr().(*net.TCPAddr).Port; !itPorts.given[p] {
			itPorts.given[p] = true
			ports = append(ports, p)
		}
	}
	for _, ln := range lns {
		_ = ln.Close()
	}
	return ports
}

// itPorts are the ports itFreePorts handed out in this test binary.
var itPorts struct {
	mu    sync.Mutex
	given map[int]bool // Guarded by mu.
}

func itWriteFile(t *testing.T, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(name, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// itWaitFor polls cond every 20ms until it holds, or fails the test.
func itWaitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for: %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var itHTTP = &http.Client{Timeout: 2 * time.Second}

// itStatus is the status of GET url, or 0 when it fails.
func itStatus(url string) int {
	resp, err := itHTTP.Get(url)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func itBody(url string) string {
	resp, err := itHTTP.Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

var itMetricLine = regexp.MustCompile(`^(tickgate_[a-z_]+(?:\{[^}]*\})?) (\S+)$`)

// itMetrics reads the tickgate_* series of admin's /metrics, keyed by name
// and labels as exposed: tickgate_nats_connected,
// tickgate_handshake_failures_total{reason="draining"}.
func itMetrics(admin string) map[string]float64 {
	out := map[string]float64{}
	for line := range strings.SplitSeq(itBody(admin+"/metrics"), "\n") {
		if m := itMetricLine.FindStringSubmatch(line); m != nil {
			if v, err := strconv.ParseFloat(m[2], 64); err == nil {
				out[m[1]] = v
			}
		}
	}
	return out
}

// itProc is a child process whose output goes to a file in the test's
// temporary directory; it is killed at the end of the test and its output
// logged when the test failed.
type itProc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

func itStart(t *testing.T, dir, name, bin string, args, env []string) *itProc {
	t.Helper()
	p := &itProc{name: name, log: filepath.Join(dir, name+".log"), done: make(chan struct{})}
	f, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	// The children see no TICKGATE_* variables of the caller: only the
	// flags above configure them.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, envPrefix+"_") {
			p.cmd.Env = append(p.cmd.Env, kv)
		}
	}
	p.cmd.Env = append(p.cmd.Env, env...)
	if err := p.cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		_ = p.cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			out := p.output()
			if len(out) > 6000 {
				out = "…" + out[len(out)-6000:]
			}
			t.Logf("--- %s output ---\n%s", name, out)
		}
	})
	return p
}

func (p *itProc) output() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// itClient is a WebSocket client that behaves as the protocol asks: on a
// reconnect notice followed by close 1001 it connects again (through the
// load balancer) and re-subscribes.
type itClient struct {
	id       int
	url      string
	token    string
	tls      *tls.Config // nil for ws://
	channels []string    // subscribed to on every (re)connect
	stopped  chan struct{}

	mu       sync.Mutex
	sess     []*itSession // Guarded by mu.
	refused  int          // Guarded by mu: handshakes that failed and were retried.
	shutdown bool         // Guarded by mu.
}

// itSession is what one WebSocket connection received. Guarded by the
// client's mu.
type itSession struct {
	conn         *gws.Conn
	node         string
	acked        bool
	snap         map[string]uint64 // channel → seq of the first snapshot
	last         map[string]uint64 // channel → last seq received
	updates      map[string]int
	snaps        map[string]int    // channel → snapshots received
	sum          map[string]uint32 // book channel → checksum of the last snapshot or update
	pongs        []int64           // ids of the pongs received
	gaps         int
	violations   []string
	errors       []string
	reconnect    *proto.Reconnect
	reconnectAt  time.Time
	closed       bool
	closeCode    uint16
	closeReason  string
	closedAt     time.Time
	badChecksums int
}

func (s itSession) total() int {
	n := 0
	for _, u := range s.updates {
		n += u
	}
	return n
}

// itMsg is any server message, the fields this test reads.
type itMsg struct {
	Type     string          `json:"type"`
	Node     string          `json:"node"`
	Channel  string          `json:"channel"`
	Seq      uint64          `json:"seq"`
	Prev     uint64          `json:"prev"`
	ID       *int64          `json:"id"`
	Reason   string          `json:"reason"`
	WithinMS int64           `json:"within_ms"`
	Code     string          `json:"code"`
	Message  string          `json:"message"`
	Data     json.RawMessage `json:"data"`
}

func (c *itClient) run(ctx context.Context) {
	defer close(c.stopped)
	for ctx.Err() == nil {
		s, err := c.connect(ctx)
		if err != nil {
			return
		}
		s.conn.ReadLoop()
		c.mu.Lock()
		again := s.closeCode == 1001 && s.reconnect != nil && !c.shutdown
		c.mu.Unlock()
		if !again {
			return
		}
	}
}

// connect dials until a handshake succeeds (a real client backs off; the
// load balancer should make retries unnecessary, and the test counts them).
func (c *itClient) connect(ctx context.Context) (*itSession, error) {
	for {
		s := &itSession{snap: map[string]uint64{}, last: map[string]uint64{}, updates: map[string]int{},
			snaps: map[string]int{}, sum: map[string]uint32{}}
		conn, resp, err := gws.NewClient(&itHandler{c: c, s: s}, &gws.ClientOption{
			Addr:             c.url,
			TlsConfig:        c.tls,
			HandshakeTimeout: 5 * time.Second,
			RequestHeader: http.Header{
				"Authorization":          {"Bearer " + c.token},
				"Sec-Websocket-Protocol": {"tickgate.v1.json"},
			},
		})
		if err == nil {
			c.mu.Lock()
			s.conn = conn
			c.sess = append(c.sess, s)
			shut := c.shutdown
			c.mu.Unlock()
			if shut {
				_ = conn.NetConn().Close()
			}
			return s, nil
		}
		if resp != nil && resp.Body != nil {
			resp.Body.Close()
		}
		c.mu.Lock()
		c.refused++
		c.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (c *itClient) sessions() []itSession {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]itSession, len(c.sess))
	for i, s := range c.sess {
		out[i] = *s
		out[i].snap = maps.Clone(s.snap)
		out[i].last = maps.Clone(s.last)
		out[i].updates = maps.Clone(s.updates)
		out[i].snaps = maps.Clone(s.snaps)
		out[i].sum = maps.Clone(s.sum)
		out[i].pongs = slices.Clone(s.pongs)
		out[i].violations = slices.Clone(s.violations)
		out[i].errors = slices.Clone(s.errors)
	}
	return out
}

// current is a copy of the latest session (zero before the first).
func (c *itClient) current() itSession {
	ss := c.sessions()
	if len(ss) == 0 {
		return itSession{}
	}
	return ss[len(ss)-1]
}

func (c *itClient) refusals() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.refused
}

func (c *itClient) close() {
	c.mu.Lock()
	c.shutdown = true
	for _, s := range c.sess {
		if !s.closed {
			_ = s.conn.NetConn().Close()
		}
	}
	c.mu.Unlock()
	select {
	case <-c.stopped:
	case <-time.After(5 * time.Second):
	}
}

// send writes cmd as JSON on the client's latest session.
func (c *itClient) send(cmd map[string]any) error {
	c.mu.Lock()
	if len(c.sess) == 0 {
		c.mu.Unlock()
		return errors.New("no session")
	}
	conn := c.sess[len(c.sess)-1].conn
	c.mu.Unlock()
	b, err := json.Marshal(cmd)
	if err != nil {
		return err
	}
	return conn.WriteString(string(b))
}

func itAll(clients []*itClient, ok func(*itSession) bool) bool {
	for _, c := range clients {
		s := c.current()
		if !ok(&s) {
			return false
		}
	}
	return true
}

// itHandler records one session's messages and checks the protocol's
// sequence rules as it goes.
type itHandler struct {
	gws.BuiltinEventHandler
	c *itClient
	s *itSession
}

func (h *itHandler) OnOpen(conn *gws.Conn) {
	b, _ := json.Marshal(map[string]any{"op": "subscribe", "id": 1, "channels": h.c.channels})
	_ = conn.WriteString(string(b))
}

func (h *itHandler) OnClose(_ *gws.Conn, err error) {
	h.c.mu.Lock()
	defer h.c.mu.Unlock()
	h.s.closed, h.s.closedAt = true, time.Now()
	var ce *gws.CloseError
	if errors.As(err, &ce) {
		h.s.closeCode, h.s.closeReason = ce.Code, string(ce.Reason)
	}
}

func (h *itHandler) OnMessage(_ *gws.Conn, m *gws.Message) {
	defer m.Close()
	var msg itMsg
	if err := json.Unmarshal(m.Bytes(), &msg); err != nil {
		h.violation("undecodable message: %v", err)
		return
	}
	h.c.mu.Lock()
	defer h.c.mu.Unlock()
	s := h.s
	if s.node == "" && msg.Type != proto.TypeWelcome {
		h.violationLocked("first message %q, want welcome", msg.Type)
	}
	switch msg.Type {
	case proto.TypeWelcome:
		s.node = msg.Node
	case proto.TypeSubscribed:
		s.acked = true
	case proto.TypeSnapshot:
		if _, ok := s.snap[msg.Channel]; !ok {
			s.snap[msg.Channel] = msg.Seq
		}
		s.last[msg.Channel] = msg.Seq
		s.snaps[msg.Channel]++
		if strings.HasPrefix(msg.Channel, "book.") {
			var b proto.Book
			if json.Unmarshal(msg.Data, &b) != nil || proto.BookChecksum(b.Bids, b.Asks) != b.Checksum {
				s.badChecksums++
			}
			s.sum[msg.Channel] = b.Checksum
		}
	case proto.TypeUpdate:
		// trade has no snapshot: its first update has prev 0.
		last, ok := s.last[msg.Channel]
		switch {
		case !ok && !strings.HasPrefix(msg.Channel, "trade."):
			h.violationLocked("update on %s before its snapshot", msg.Channel)
		case msg.Prev != last:
			s.gaps++
		}
		s.last[msg.Channel] = msg.Seq
		s.updates[msg.Channel]++
		if strings.HasPrefix(msg.Channel, "book.") {
			var b proto.Book
			if json.Unmarshal(msg.Data, &b) == nil {
				s.sum[msg.Channel] = b.Checksum
			}
		}
	case proto.TypePong:
		if msg.ID != nil {
			s.pongs = append(s.pongs, *msg.ID)
		}
	case proto.TypeReconnect:
		s.reconnect = &proto.Reconnect{Type: msg.Type, Reason: msg.Reason, WithinMS: msg.WithinMS}
		s.reconnectAt = time.Now()
	case proto.TypeError:
		s.errors = append(s.errors, msg.Code+": "+msg.Message)
	}
}

func (h *itHandler) violation(format string, args ...any) {
	h.c.mu.Lock()
	defer h.c.mu.Unlock()
	h.violationLocked(format, args...)
}

func (h *itHandler) violationLocked(format string, args ...any) {
	if len(h.s.violations) < 5 {
		h.s.violations = append(h.s.violations, fmt.Sprintf(format, args...))
	}
}

// itSecret writes an HMAC secret file for `tickgate serve` and returns it
// with a signer for client tokens.
func itSecret(t *testing.T, dir string) (string, *auth.Signer) {
	t.Helper()
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	file := filepath.Join(dir, "hmac.secret")
	itWriteFile(t, file, []byte(hex.EncodeToString(secret)+"\n"))
	signer, err := auth.NewHMACSigner([]byte(hex.EncodeToString(secret)), "")
	if err != nil {
		t.Fatal(err)
	}
	return file, signer
}

// itLBCert makes a self-signed certificate and writes it and its key in
// one PEM file, as HAProxy's crt wants it; it returns both.
func itLBCert(t *testing.T, dir string) (*selfsigned.Cert, string) {
	t.Helper()
	cert, err := selfsigned.New(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "lb.pem")
	itWriteFile(t, file, append(append([]byte{}, cert.CertPEM...), cert.KeyPEM...))
	return cert, file
}

// itNodeArgs are the `tickgate serve` arguments of gateway node gw-n behind
// a load balancer: plain listener and admin on loopback, its NATS member,
// the shared HMAC secret.
func itNodeArgs(n, port, adminPort int, natsURL, secretFile string) []string {
	return []string{"serve",
		"--listen", fmt.Sprintf("127.0.0.1:%d", port),
		"--admin", fmt.Sprintf("127.0.0.1:%d", adminPort),
		"--nats", natsURL,
		"--insecure-plaintext",
		"--hmac-secret-file", secretFile,
		"--node-id", fmt.Sprintf("gw-%d", n),
	}
}
