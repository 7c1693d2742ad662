//go:build integration

package main

// The deployment of deploy/compose.yaml, on loopback: a 3-node NATS
// cluster, two `tickgate serve` processes, HAProxy running the very
// deploy/haproxy/haproxy.cfg, and `tickgate feedsim`. It proves the drain
// path (docs/operations.md, "Drain and rolling updates") through the load balancer: SIGTERM to one node, its
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
	"crypto/tls"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/tickgate/tickgate/auth"
	"github.com/tickgate/tickgate/feed"
)

const (
	itClients     = 20
	itDrainWithin = time.Second
	itConfig      = "../../deploy/haproxy/haproxy.cfg"
)

// itChannels are what every client subscribes to.
var itChannels = []string{"book.BTC-USD", "book.ETH-USD", "ticker.BTC-USD", "ticker.SOL-USD"}

func TestHAProxyDrainReconnect(t *testing.T) {
	haproxy := itNeed(t, "haproxy", "haproxy", "this test runs deploy/haproxy/haproxy.cfg with the real HAProxy")
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
	secretFile, signer := itSecret(t, dir)
	cert, certFile := itLBCert(t, dir)

	// Two gateway nodes, each on its own NATS cluster member.
	var gw [2]*itProc
	for i := range gw {
		gw[i] = itStart(t, dir, fmt.Sprintf("gw-%d", i+1), bin, append(itNodeArgs(i+1, gwPort[i], adminPort[i], nats.urls[i], secretFile),
			"--drain-within", itDrainWithin.String(),
			"--shutdown-timeout", "10s",
		), nil)
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
	url := fmt.Sprintf("wss://127.0.0.1:%d%s", lbPort, "/v1/ws")
	clients := make([]*itClient, itClients)
	for i := range clients {
		token, err := signer.Sign(auth.TokenSpec{Subject: fmt.Sprintf("client-%d", i), Channels: []string{"book.*", "ticker.*"}, TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		c := &itClient{id: i, url: url, token: token, tls: &tls.Config{RootCAs: cert.Pool}, channels: itChannels, stopped: make(chan struct{})}
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
		// gw-2's book is as current as NATS made it: each node gets the
		// feed at its own pace, so on a loaded machine it may trail gw-1 by
		// a few messages (a client that resumes with since is then resumed,
		// feed.AheadMax); never by more.
		for _, ch := range itChannels {
			if strings.HasPrefix(ch, "book.") && second.snap[ch]+feed.AheadMax < first.last[ch] {
				t.Errorf("%s: %s snapshot seq %d on gw-2 is far older than seq %d seen on gw-1", name, ch, second.snap[ch], first.last[ch])
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

// itNATS is a 3-node NATS cluster on loopback: Debian's nats-server binary
// when it is on PATH, else embedded servers.
type itNATS struct {
	kind    string
	urls    []string
	monitor []string // http://host:port of each member's monitoring
	// kill ends member i at once: SIGKILL to the nats-server process, or
	// the embedded server's shutdown.
	kill []func()
}

func itStartNATS(t *testing.T, dir string) *itNATS {
	t.Helper()
	return itStartNATSCluster(t, dir, false)
}

// itStartNATSCluster starts the 3-node cluster, with JetStream (files in
// dir) when jetstream is set.
func itStartNATSCluster(t *testing.T, dir string, jetstream bool) *itNATS {
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
			args := []string{
				"-a", "127.0.0.1", "-p", strconv.Itoa(client[i]), "-m", strconv.Itoa(monitor[i]),
				"-n", fmt.Sprintf("nats-%d", i+1), "--cluster_name", "tickgate",
				"--cluster", routes[i], "--routes", strings.Join(others(i), ","),
			}
			if jetstream {
				args = append(args, "-js", "-sd", filepath.Join(dir, fmt.Sprintf("js-%d", i+1)))
			}
			p := itStart(t, dir, fmt.Sprintf("nats-%d", i+1), bin, args, nil)
			n.kill = append(n.kill, func() { _ = p.cmd.Process.Kill(); <-p.done })
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
				JetStream: jetstream, StoreDir: filepath.Join(dir, fmt.Sprintf("js-%d", i+1)),
			})
			if err != nil {
				t.Fatal(err)
			}
			ns.Start()
			t.Cleanup(ns.Shutdown)
			n.kill = append(n.kill, ns.Shutdown)
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

func itNodeCounts(by map[string][]*itClient) map[string]int {
	out := map[string]int{}
	for n, cs := range by {
		out[n] = len(cs)
	}
	return out
}
