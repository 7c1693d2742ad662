//go:build integration

package main

// The deployment of deploy/compose.yaml, on loopback: a 3-node NATS
// cluster, two `tickgate serve` processes, HAProxy running the very
// deploy/haproxy/haproxy.cfg, and `tickgate feedsim`. It proves the drain
// path of PROTOCOL.md §5 through the load balancer: SIGTERM to one node, its
// clients get a reconnect notice and close 1001, HAProxy takes the node out
// of rotation through /readyz, the clients come back through HAProxy on the
// other node with a fresh book snapshot, and the other node's clients see
// nothing at all.
//
//	apt-get install -y haproxy nats-server   # nats-server optional: embedded fallback
//	go test -tags integration -count=1 -run HAProxy -v ./cmd/tickgate/
//
// TICKGATE_TEST_NATS=embedded forces the embedded NATS servers.

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/csv"
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
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lxzan/gws"
	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/tickgate/tickgate/auth"
	"github.com/tickgate/tickgate/internal/selfsigned"
	"github.com/tickgate/tickgate/proto"
)

const (
	itClients     = 20
	itDrainWithin = time.Second
	itConfig      = "../../deploy/haproxy/haproxy.cfg"
)

// itChannels are what every client subscribes to.
var itChannels = []string{"book.BTC-USD", "book.ETH-USD", "ticker.BTC-USD", "ticker.SOL-USD"}

func TestHAProxyDrainReconnect(t *testing.T) {
	haproxy, err := itLookPath("haproxy")
	if err != nil {
		t.Skip("haproxy is not installed (apt-get install -y haproxy): this test runs deploy/haproxy/haproxy.cfg with the real HAProxy")
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 55*time.Second)
	defer cancel()
	dir := t.TempDir()

	bin := itBuild(t, dir)
	ports := itFreePorts(t, 6)
	lbPort, statsPort := ports[0], ports[1]
	gwPort := [2]int{ports[2], ports[3]}
	adminPort := [2]int{ports[4], ports[5]}

	nats := itStartNATS(t, dir)

	// Key material: an HMAC secret file for the nodes, a certificate for
	// HAProxy (certificate and key in one PEM, as its crt wants).
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	secretFile := filepath.Join(dir, "hmac.secret")
	itWriteFile(t, secretFile, []byte(hex.EncodeToString(secret)+"\n"))
	cert, err := selfsigned.New(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	certFile := filepath.Join(dir, "lb.pem")
	itWriteFile(t, certFile, append(append([]byte{}, cert.CertPEM...), cert.KeyPEM...))

	// Two gateway nodes, each on its own NATS cluster member.
	var gw [2]*itProc
	for i := range gw {
		gw[i] = itStart(t, dir, fmt.Sprintf("gw-%d", i+1), bin, []string{"serve",
			"--listen", fmt.Sprintf("127.0.0.1:%d", gwPort[i]),
			"--admin", fmt.Sprintf("127.0.0.1:%d", adminPort[i]),
			"--nats", nats.urls[i],
			"--insecure-plaintext",
			"--hmac-secret-file", secretFile,
			"--node-id", fmt.Sprintf("gw-%d", i+1),
			"--drain-within", itDrainWithin.String(),
			"--shutdown-timeout", "10s",
		}, nil)
	}
	for i := range gw {
		readyz := fmt.Sprintf("http://127.0.0.1:%d/readyz", adminPort[i])
		itWaitFor(t, 10*time.Second, gw[i].name+" /readyz 200", func() bool { return itStatus(readyz) == http.StatusOK })
	}

	// HAProxy with deploy/haproxy/haproxy.cfg, its addresses from the
	// environment.
	cfg, err := filepath.Abs(itConfig)
	if err != nil {
		t.Fatal(err)
	}
	lb := itStart(t, dir, "haproxy", haproxy, []string{"-db", "-f", cfg}, []string{
		fmt.Sprintf("LB_BIND=127.0.0.1:%d", lbPort),
		"LB_CERT=" + certFile,
		fmt.Sprintf("LB_STATS_BIND=127.0.0.1:%d", statsPort),
		"LB_DNS=127.0.0.1:53",
		fmt.Sprintf("GW1_ADDR=127.0.0.1:%d", gwPort[0]),
		fmt.Sprintf("GW1_ADMIN_PORT=%d", adminPort[0]),
		fmt.Sprintf("GW2_ADDR=127.0.0.1:%d", gwPort[1]),
		fmt.Sprintf("GW2_ADMIN_PORT=%d", adminPort[1]),
	})
	stats := fmt.Sprintf("http://127.0.0.1:%d/stats;csv", statsPort)
	itWaitFor(t, 10*time.Second, "HAProxy sees gw1 and gw2 UP", func() bool {
		s := itHAProxyStats(stats)
		return strings.HasPrefix(s["gw1"].status, "UP") && strings.HasPrefix(s["gw2"].status, "UP") &&
			s["gw1"].check == "L7OK" && s["gw2"].check == "L7OK"
	})
	t.Logf("up after %v: NATS cluster (%s), gw-1, gw-2, HAProxy %s", time.Since(start).Round(time.Millisecond), nats.kind, lb.name)

	// Clients through HAProxy, one after the other: leastconn spreads them.
	signer, err := auth.NewHMACSigner([]byte(hex.EncodeToString(secret)), "")
	if err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("wss://127.0.0.1:%d%s", lbPort, "/v1/ws")
	clients := make([]*itClient, itClients)
	for i := range clients {
		token, err := signer.Sign(auth.TokenSpec{Subject: fmt.Sprintf("client-%d", i), Channels: []string{"book.*", "ticker.*"}, TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		c := &itClient{id: i, url: url, token: token, tls: &tls.Config{RootCAs: cert.Pool}, stopped: make(chan struct{})}
		clients[i] = c
		go c.run(ctx)
		itWaitFor(t, 10*time.Second, fmt.Sprintf("client %d welcome", i), func() bool { return c.current().node != "" })
	}
	t.Cleanup(func() {
		cancel()
		for _, c := range clients {
			c.close()
		}
	})
	byNode := map[string][]*itClient{}
	for _, c := range clients {
		n := c.current().node
		byNode[n] = append(byNode[n], c)
	}
	t.Logf("welcome.node through HAProxy (leastconn): gw-1 %d clients, gw-2 %d clients", len(byNode["gw-1"]), len(byNode["gw-2"]))
	if len(byNode["gw-1"]) == 0 || len(byNode["gw-2"]) == 0 || len(byNode) != 2 {
		t.Fatalf("clients did not spread over both nodes: %v", itNodeCounts(byNode))
	}
	itWaitFor(t, 10*time.Second, "every client subscribed", func() bool {
		return itAll(clients, func(s *itSession) bool { return s.acked })
	})

	// Both nodes' interest must have reached the feed's NATS member before
	// the feed's first book snapshots go out.
	itWaitFor(t, 5*time.Second, "interest propagated to nats-3", func() bool {
		return nats.interest(2, "md.book.BTC-USD") >= 2 && nats.interest(2, "md.book.ETH-USD") >= 2
	})
	itStart(t, dir, "feedsim", bin, []string{"feedsim", "--nats", nats.urls[2], "--symbols", "3", "--rate", "300"}, nil)
	itWaitFor(t, 15*time.Second, "every client holds snapshots and live updates", func() bool {
		return itAll(clients, func(s *itSession) bool { return s.live(3) })
	})
	t.Logf("feed live on every client at +%v", time.Since(start).Round(time.Millisecond))
	undisturbedBefore := map[*itClient]int{}
	for _, c := range byNode["gw-2"] {
		undisturbedBefore[c] = c.current().total()
	}

	// SIGTERM to gw-1.
	drainStart := time.Now()
	if err := gw[0].cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	readyz := fmt.Sprintf("http://127.0.0.1:%d/readyz", adminPort[0])
	var readySeen []int
	itWaitFor(t, 5*time.Second, "gw-1 /readyz 503", func() bool {
		code := itStatus(readyz)
		if len(readySeen) == 0 || readySeen[len(readySeen)-1] != code {
			readySeen = append(readySeen, code)
		}
		return code == http.StatusServiceUnavailable
	})
	var down itServer
	itWaitFor(t, 5*time.Second, "HAProxy marks gw1 DOWN", func() bool {
		down = itHAProxyStats(stats)["gw1"]
		return strings.HasPrefix(down.status, "DOWN")
	})
	downAfter := time.Since(drainStart)
	select {
	case <-gw[0].done:
		if code := gw[0].cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("gw-1 exited %d after SIGTERM, want 0", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("gw-1 did not exit within 10s of SIGTERM")
	}
	exitAfter := time.Since(drainStart)

	moved := byNode["gw-1"]
	itWaitFor(t, 15*time.Second, "gw-1's clients back on gw-2 with fresh snapshots", func() bool {
		for _, c := range moved {
			ss := c.sessions()
			if len(ss) < 2 || !ss[1].live(1) {
				return false
			}
		}
		return true
	})
	settled := time.Since(drainStart)

	// What gw-1's clients saw.
	var closeMin, closeMax time.Duration = time.Hour, 0
	refusals := 0
	for _, c := range moved {
		ss := c.sessions()
		first, second := ss[0], ss[1]
		name := fmt.Sprintf("client %d", c.id)
		switch {
		case first.reconnect == nil:
			t.Errorf("%s: no reconnect notice from gw-1", name)
		case first.reconnect.Reason != "draining" || first.reconnect.WithinMS != itDrainWithin.Milliseconds():
			t.Errorf("%s: reconnect notice %+v, want reason draining within_ms %d", name, *first.reconnect, itDrainWithin.Milliseconds())
		case !first.closed || first.closeCode != 1001 || first.closeReason == "":
			t.Errorf("%s: gw-1 session closed=%v code %d reason %q, want 1001 with a reason", name, first.closed, first.closeCode, first.closeReason)
		case first.closedAt.Before(first.reconnectAt):
			t.Errorf("%s: close before the reconnect notice", name)
		}
		d := first.closedAt.Sub(drainStart)
		closeMin, closeMax = min(closeMin, d), max(closeMax, d)
		if second.node != "gw-2" {
			t.Errorf("%s: reconnected to %q, want gw-2", name, second.node)
		}
		if len(ss) != 2 {
			t.Errorf("%s: %d sessions, want 2", name, len(ss))
		}
		for _, ch := range itChannels {
			if strings.HasPrefix(ch, "book.") && second.snap[ch] < first.last[ch] {
				t.Errorf("%s: %s snapshot seq %d on gw-2 is older than seq %d seen on gw-1", name, ch, second.snap[ch], first.last[ch])
			}
		}
		refusals += c.refusals()
	}
	if closeMax > itDrainWithin+time.Second {
		t.Errorf("last 1001 close %v after SIGTERM, want within --drain-within %v", closeMax, itDrainWithin)
	}
	// What gw-2's clients saw: nothing but market data.
	for _, c := range byNode["gw-2"] {
		ss := c.sessions()
		s := ss[0]
		if len(ss) != 1 || s.closed || s.reconnect != nil {
			t.Errorf("client %d on gw-2 was disturbed: %d sessions, closed %v, reconnect %v", c.id, len(ss), s.closed, s.reconnect)
		}
		if s.total() <= undisturbedBefore[c] {
			t.Errorf("client %d on gw-2 received nothing during the drain", c.id)
		}
	}
	// Every session of every client: the seq/prev chain never broke and
	// every book snapshot's checksum held.
	for _, c := range clients {
		for i, s := range c.sessions() {
			if s.gaps != 0 || s.badChecksums != 0 || len(s.violations) != 0 || len(s.errors) != 0 {
				t.Errorf("client %d session %d (%s): gaps %d, bad checksums %d, violations %v, errors %v",
					c.id, i, s.node, s.gaps, s.badChecksums, s.violations, s.errors)
			}
		}
	}

	// HAProxy's own account: the health check saw /readyz answer 503.
	lbLog := lb.output()
	var checkLines []string
	for line := range strings.SplitSeq(lbLog, "\n") {
		// HAProxy prints each of these twice: on stderr with a "[WARNING]"
		// prefix, and on its log target; keep the log's.
		if !strings.HasPrefix(line, "[") && strings.Contains(line, "tickgate/gw1") &&
			(strings.Contains(line, "Health check") || strings.Contains(line, "is DOWN")) {
			checkLines = append(checkLines, strings.TrimSpace(line))
		}
	}
	if !strings.Contains(strings.Join(checkLines, "\n"), "code: 503") {
		t.Errorf("HAProxy's log shows no /readyz 503 for gw1:\n%s", strings.Join(checkLines, "\n"))
	}
	after := itHAProxyStats(stats)
	// retry-on 503 with redispatch: a handshake that reached gw-1 after it
	// began draining (before the check noticed) was replayed on gw-2, so no
	// client saw the 503.
	if refusals != 0 {
		t.Errorf("clients saw %d failed handshakes through HAProxy, want 0 (retry-on 503 / conn-failure with redispatch)", refusals)
	}
	if after["gw2"].scur != itClients {
		t.Errorf("HAProxy: gw2 holds %d sessions, want %d", after["gw2"].scur, itClients)
	}
	metrics := itBody(fmt.Sprintf("http://127.0.0.1:%d/metrics", adminPort[1]))
	if want := fmt.Sprintf("tickgate_connections_active %d", itClients); !strings.Contains(metrics, want) {
		t.Errorf("gw-2 /metrics lacks %q", want)
	}

	t.Logf("SIGTERM gw-1 at +0: /readyz %v; HAProxy gw1 %s (%s) at +%v; 1001 closes spread +%v..+%v; gw-1 exited 0 at +%v",
		readySeen, down.status, down.check, downAfter.Round(time.Millisecond), closeMin.Round(time.Millisecond),
		closeMax.Round(time.Millisecond), exitAfter.Round(time.Millisecond))
	t.Logf("%d clients of gw-1 reconnected through HAProxy to gw-2 (%d handshakes refused on the way; HAProxy retried %d and redispatched %d away from gw1), re-subscribed, fresh book snapshots; all settled at +%v",
		len(moved), refusals, after["gw1"].retries, after["gw1"].redisp, settled.Round(time.Millisecond))
	t.Logf("%d clients of gw-2 undisturbed: one session each, no notice, no gap; HAProxy gw2 sessions %d", len(byNode["gw-2"]), after["gw2"].scur)
	for _, l := range checkLines {
		t.Logf("haproxy: %s", l)
	}
	t.Logf("total %v", time.Since(start).Round(time.Millisecond))
}

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

// itFreePorts returns n distinct free loopback TCP ports.
func itFreePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		_ = ln.Close()
	}
	return ports
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

// itNATS is a 3-node NATS cluster on loopback: Debian's nats-server binary
// when it is on PATH, else embedded servers.
type itNATS struct {
	kind    string
	urls    []string
	monitor []string // http://host:port of each member's monitoring
}

func itStartNATS(t *testing.T, dir string) *itNATS {
	t.Helper()
	ports := itFreePorts(t, 9)
	client, cluster, monitor := ports[0:3], ports[3:6], ports[6:9]
	routes := make([]string, 3)
	for i := range routes {
		routes[i] = fmt.Sprintf("nats://127.0.0.1:%d", cluster[i])
	}
	n := &itNATS{}
	for i := range 3 {
		n.urls = append(n.urls, fmt.Sprintf("nats://127.0.0.1:%d", client[i]))
		n.monitor = append(n.monitor, fmt.Sprintf("http://127.0.0.1:%d", monitor[i]))
	}
	others := func(i int) []string {
		return slices.DeleteFunc(slices.Clone(routes), func(r string) bool { return r == routes[i] })
	}
	bin, err := itLookPath("nats-server")
	switch {
	case os.Getenv("TICKGATE_TEST_NATS") == "embedded":
		bin, err = "", errors.New("TICKGATE_TEST_NATS=embedded")
	case err != nil:
		err = errors.New("no nats-server on PATH")
	}
	if err == nil {
		n.kind = "nats-server binary " + bin
		for i := range 3 {
			itStart(t, dir, fmt.Sprintf("nats-%d", i+1), bin, []string{
				"-a", "127.0.0.1", "-p", strconv.Itoa(client[i]), "-m", strconv.Itoa(monitor[i]),
				"-n", fmt.Sprintf("nats-%d", i+1), "--cluster_name", "tickgate",
				"--cluster", routes[i], "--routes", strings.Join(others(i), ","),
			}, nil)
		}
	} else {
		n.kind = "embedded nats-server/v2 servers (" + err.Error() + ")"
		for i := range 3 {
			ns, err := natsserver.NewServer(&natsserver.Options{
				ServerName: fmt.Sprintf("nats-%d", i+1),
				Host:       "127.0.0.1", Port: client[i],
				HTTPHost: "127.0.0.1", HTTPPort: monitor[i],
				Cluster: natsserver.ClusterOpts{Name: "tickgate", Host: "127.0.0.1", Port: cluster[i]},
				Routes:  natsserver.RoutesFromStr(strings.Join(others(i), ",")),
				NoSigs:  true, NoLog: true,
			})
			if err != nil {
				t.Fatal(err)
			}
			ns.Start()
			t.Cleanup(ns.Shutdown)
			if !ns.ReadyForConnections(10 * time.Second) {
				t.Fatalf("embedded nats-%d not ready", i+1)
			}
		}
	}
	t.Logf("NATS cluster: %s", n.kind)
	itWaitFor(t, 10*time.Second, "NATS cluster routes (2 per member)", func() bool {
		for _, m := range n.monitor {
			var rz struct {
				NumRoutes int `json:"num_routes"`
			}
			if json.Unmarshal([]byte(itBody(m+"/routez")), &rz) != nil || rz.NumRoutes < 2 {
				return false
			}
		}
		return true
	})
	return n
}

// interest counts the routes of member i whose remote member has a
// subscriber to subject: the interest that reached i from the others.
func (n *itNATS) interest(i int, subject string) int {
	var rz struct {
		Routes []struct {
			Subs []string `json:"subscriptions_list"`
		} `json:"routes"`
	}
	if json.Unmarshal([]byte(itBody(n.monitor[i]+"/routez?subs=1")), &rz) != nil {
		return 0
	}
	count := 0
	for _, r := range rz.Routes {
		if slices.Contains(r.Subs, subject) {
			count++
		}
	}
	return count
}

// itServer is one server line of HAProxy's CSV statistics.
type itServer struct {
	status, check         string
	scur, retries, redisp int
}

func itHAProxyStats(url string) map[string]itServer {
	out := map[string]itServer{}
	r := csv.NewReader(strings.NewReader(strings.TrimPrefix(itBody(url), "# ")))
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil || len(rows) < 2 {
		return out
	}
	col := map[string]int{}
	for i, name := range rows[0] {
		col[name] = i
	}
	for _, row := range rows[1:] {
		if len(row) < len(rows[0]) || row[col["pxname"]] != "tickgate" {
			continue
		}
		num := func(name string) int { v, _ := strconv.Atoi(row[col[name]]); return v }
		out[row[col["svname"]]] = itServer{status: row[col["status"]], check: row[col["check_status"]],
			scur: num("scur"), retries: num("wretr"), redisp: num("wredis")}
	}
	return out
}

// itClient is a WebSocket client that behaves as the protocol asks: on a
// reconnect notice followed by close 1001 it connects again (through the
// load balancer) and re-subscribes.
type itClient struct {
	id      int
	url     string
	token   string
	tls     *tls.Config
	stopped chan struct{}

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

// live reports whether the session holds a snapshot of every channel and
// at least n updates on each book channel.
func (s *itSession) live(n int) bool {
	if !s.acked {
		return false
	}
	for _, ch := range itChannels {
		if _, ok := s.snap[ch]; !ok {
			return false
		}
		if strings.HasPrefix(ch, "book.") && s.updates[ch] < n {
			return false
		}
	}
	return true
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
		s := &itSession{snap: map[string]uint64{}, last: map[string]uint64{}, updates: map[string]int{}}
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

func itAll(clients []*itClient, ok func(*itSession) bool) bool {
	for _, c := range clients {
		s := c.current()
		if !ok(&s) {
			return false
		}
	}
	return true
}

func itNodeCounts(by map[string][]*itClient) map[string]int {
	out := map[string]int{}
	for n, cs := range by {
		out[n] = len(cs)
	}
	return out
}

// itHandler records one session's messages and checks the protocol's
// sequence rules as it goes.
type itHandler struct {
	gws.BuiltinEventHandler
	c *itClient
	s *itSession
}

func (h *itHandler) OnOpen(conn *gws.Conn) {
	b, _ := json.Marshal(map[string]any{"op": "subscribe", "id": 1, "channels": itChannels})
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
		if strings.HasPrefix(msg.Channel, "book.") {
			var b proto.Book
			if json.Unmarshal(msg.Data, &b) != nil || proto.BookChecksum(b.Bids, b.Asks) != b.Checksum {
				s.badChecksums++
			}
		}
	case proto.TypeUpdate:
		last, ok := s.last[msg.Channel]
		switch {
		case !ok:
			h.violationLocked("update on %s before its snapshot", msg.Channel)
		case msg.Prev != last:
			s.gaps++
		}
		s.last[msg.Channel] = msg.Seq
		s.updates[msg.Channel]++
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
