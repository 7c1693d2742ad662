//go:build integration

package main

// The operator contract (docs/operations.md) and issue 5 with real processes
// on loopback:
//
//   - TestNATSOutageWithDebianServer stops Debian's nats-server under a
//     `tickgate serve` node for longer than nats.go's default give-up (60
//     reconnect attempts) and starts it again on the same port: the node
//     keeps its clients, reports not ready meanwhile, resubscribes, and sends
//     book subscribers a fresh snapshot after the feed's gap.
//   - TestSecondSignalExitsAtOnce: the first SIGTERM drains, a second one
//     ends the process at once; a lone SIGTERM exits 0 within the drain.
//
//	apt-get install -y nats-server
//	go test -tags integration -count=1 -run 'NATSOutage|SecondSignal' -v ./cmd/tickgate/

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tickgate/tickgate/auth"
	"github.com/tickgate/tickgate/feed"
	"github.com/tickgate/tickgate/internal/booktest"
	"github.com/tickgate/tickgate/internal/natstest"
	"github.com/tickgate/tickgate/proto"
)

const (
	otClients = 5
	// otOutage is how long nats-server stays down: longer than nats.go's
	// default give-up of 60 attempts at --nats-reconnect-wait 100ms plus
	// up to 50ms jitter (6–9 s).
	otOutage = 10 * time.Second
)

func TestNATSOutageWithDebianServer(t *testing.T) {
	natsBin := itNeed(t, "nats-server", "nats-server", "this test stops and restarts the real binary")
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 55*time.Second)
	defer cancel()
	dir := t.TempDir()
	bin := itBuild(t, dir)
	ports := itFreePorts(t, 4)
	natsPort, monPort, gwPort, adminPort := ports[0], ports[1], ports[2], ports[3]
	natsURL := fmt.Sprintf("nats://127.0.0.1:%d", natsPort)
	monitor := fmt.Sprintf("http://127.0.0.1:%d", monPort)
	admin := fmt.Sprintf("http://127.0.0.1:%d", adminPort)
	startNATS := func(name string) *itProc {
		t.Helper()
		p := itStart(t, dir, name, natsBin, []string{"-a", "127.0.0.1", "-p", strconv.Itoa(natsPort),
			"-m", strconv.Itoa(monPort), "-n", "nats-outage"}, nil)
		itWaitFor(t, 10*time.Second, name+" monitoring up", func() bool { return itStatus(monitor+"/varz") == http.StatusOK })
		return p
	}
	ns := startNATS("nats-server-1")

	secretFile, signer := itSecret(t, dir)
	gw := itStart(t, dir, "gw", bin, []string{"serve",
		"--listen", fmt.Sprintf("127.0.0.1:%d", gwPort),
		"--admin", fmt.Sprintf("127.0.0.1:%d", adminPort),
		"--nats", natsURL,
		"--nats-reconnect-wait", "100ms",
		"--insecure-plaintext",
		"--hmac-secret-file", secretFile,
		"--node-id", "gw-outage",
		"--drain-within", "1s",
		"--shutdown-timeout", "5s",
	}, nil)
	itWaitFor(t, 10*time.Second, "gw /readyz 200", func() bool { return itStatus(admin+"/readyz") == http.StatusOK })

	const bookCh, tradeCh = "book.BTC-USD", "trade.BTC-USD"
	clients := otConnect(ctx, t, fmt.Sprintf("ws://127.0.0.1:%d/v1/ws", gwPort), signer, otClients, []string{bookCh, tradeCh})
	subjects := []string{"md.book.BTC-USD", "md.trade.BTC-USD"}
	itWaitFor(t, 5*time.Second, "the node's NATS subscriptions on nats-server-1", func() bool { return otHasSubs(monitor, subjects) })
	t.Logf("up after %v: nats-server %s, gw-outage, %d clients subscribed to %s and %s",
		time.Since(start).Round(time.Millisecond), natsBin, otClients, bookCh, tradeCh)

	// Before the outage: a book snapshot, deltas and trades.
	book := booktest.NewFeed("BTC-USD", 7)
	bookChan := proto.Channel{Kind: proto.KindBook, Symbol: "BTC-USD"}
	tradeChan := proto.Channel{Kind: proto.KindTrade, Symbol: "BTC-USD"}
	pub1 := otPublisher(t, natsURL, "outage-feed-1")
	otPublish(t, pub1, bookChan, book.Snapshot(time.Now().UnixNano()), book.Update(time.Now().UnixNano()), book.Update(time.Now().UnixNano()), book.Update(time.Now().UnixNano()))
	otPublish(t, pub1, tradeChan, otTrade(1), otTrade(2), otTrade(3))
	otFlush(t, pub1)
	itWaitFor(t, 10*time.Second, "every client holds the book (seq 4, true checksum) and trades 1..3", func() bool {
		return itAll(clients, func(s *itSession) bool {
			return s.snaps[bookCh] == 1 && s.last[bookCh] == book.Seq() && s.sum[bookCh] == book.Book().Checksum() && s.last[tradeCh] == 3
		})
	})
	pub1.Close()
	if m := itMetrics(admin); m["tickgate_nats_connected"] != 1 || m["tickgate_nats_reconnects_total"] != 0 {
		t.Fatalf("before the outage: tickgate_nats_connected %v, tickgate_nats_reconnects_total %v, want 1 and 0",
			m["tickgate_nats_connected"], m["tickgate_nats_reconnects_total"])
	}
	before := map[*itClient]itSession{}
	for _, c := range clients {
		before[c] = c.current()
	}

	// The outage: SIGTERM to nats-server, kept down for otOutage.
	stopAt := time.Now()
	if err := ns.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ns.done:
	case <-time.After(10 * time.Second):
		t.Fatal("nats-server did not exit within 10s of SIGTERM")
	}
	exitedAt := time.Since(stopAt)
	var notReady time.Duration
	itWaitFor(t, 15*time.Second, "gw /readyz 503 while NATS is down", func() bool {
		if itStatus(admin+"/readyz") == http.StatusServiceUnavailable {
			notReady = time.Since(stopAt)
			return true
		}
		return false
	})
	if notReady > 5*time.Second {
		t.Errorf("/readyz took %v to turn 503 after nats-server stopped, want a few seconds", notReady)
	}
	if m := itMetrics(admin); m["tickgate_nats_connected"] != 0 {
		t.Errorf("during the outage: tickgate_nats_connected %v, want 0", m["tickgate_nats_connected"])
	}
	book.Update(time.Now().UnixNano()) // published while NATS was down: lost, a gap for the node

	// Through the outage: /healthz 200, /readyz 503, and every client
	// stays connected and answers pings, probed every 250ms, pinged about
	// every 2.5s.
	var probes, healthBad, readyBad, pings int
	pingID := int64(100)
	for next := time.Now(); time.Since(stopAt) < exitedAt+otOutage; next = next.Add(250 * time.Millisecond) {
		time.Sleep(time.Until(next))
		probes++
		if code := itStatus(admin + "/healthz"); code != http.StatusOK {
			healthBad++
			t.Errorf("+%v: /healthz %d during the outage, want 200", time.Since(stopAt).Round(time.Millisecond), code)
		}
		if code := itStatus(admin + "/readyz"); code != http.StatusServiceUnavailable {
			readyBad++
			t.Errorf("+%v: /readyz %d during the outage, want 503", time.Since(stopAt).Round(time.Millisecond), code)
		}
		if probes%10 != 1 {
			continue
		}
		pingID++
		pings++
		id := pingID
		for _, c := range clients {
			if err := c.send(map[string]any{"op": "ping", "id": id}); err != nil {
				t.Fatalf("client %d: ping %d at +%v: %v", c.id, id, time.Since(stopAt).Round(time.Millisecond), err)
			}
		}
		itWaitFor(t, 2*time.Second, fmt.Sprintf("pong %d from every client", id), func() bool {
			return itAll(clients, func(s *itSession) bool { return slices.Contains(s.pongs, id) })
		})
	}
	for _, c := range clients {
		if ss := c.sessions(); len(ss) != 1 || ss[0].closed || ss[0].reconnect != nil {
			t.Fatalf("client %d lost its connection during the outage: %d sessions, closed %v (code %d), reconnect %v",
				c.id, len(ss), ss[0].closed, ss[0].closeCode, ss[0].reconnect)
		}
	}
	downFor := time.Since(stopAt) - exitedAt
	t.Logf("nats-server down %v: /healthz 200 and /readyz 503 on all %d probes, %d pings answered by all %d clients",
		downFor.Round(time.Millisecond), probes, pings, otClients)

	// NATS back on the same port.
	restartAt := time.Now()
	startNATS("nats-server-2")
	var ready, resubscribed time.Duration
	itWaitFor(t, 10*time.Second, "gw /readyz 200 after the restart", func() bool {
		if itStatus(admin+"/readyz") == http.StatusOK {
			ready = time.Since(restartAt)
			return true
		}
		return false
	})
	itWaitFor(t, 10*time.Second, "the node's NATS subscriptions back on nats-server-2", func() bool {
		if otHasSubs(monitor, subjects) {
			resubscribed = time.Since(restartAt)
			return true
		}
		return false
	})

	// The feed comes back: a delta after the lost one (a gap), then the
	// feed's snapshot, and trades from seq 10 (the trade chain to clients
	// stays intact across the feed's jump).
	pub2 := otPublisher(t, natsURL, "outage-feed-2")
	gapSeq := book.Seq() + 1
	gapped := book.Update(time.Now().UnixNano())
	if gapped.Seq != gapSeq {
		t.Fatalf("book update seq %d, want %d", gapped.Seq, gapSeq)
	}
	feedAt := time.Now()
	otPublish(t, pub2, bookChan, gapped, book.Snapshot(time.Now().UnixNano()))
	otPublish(t, pub2, tradeChan, otTrade(10), otTrade(11))
	otFlush(t, pub2)
	snapSeq, snapSum := book.Seq(), book.Book().Checksum()
	var snapped time.Duration
	itWaitFor(t, 10*time.Second, fmt.Sprintf("every client's fresh book snapshot (seq %d) and trades 10, 11", snapSeq), func() bool {
		if itAll(clients, func(s *itSession) bool {
			return s.snaps[bookCh] == 2 && s.last[bookCh] == snapSeq && s.last[tradeCh] == 11
		}) {
			snapped = time.Since(feedAt)
			return true
		}
		return false
	})
	for _, c := range clients {
		s := c.current()
		if s.sum[bookCh] != snapSum {
			t.Errorf("client %d: fresh snapshot checksum %d, want the feed's book %d", c.id, s.sum[bookCh], snapSum)
		}
		if n := s.updates[bookCh] - before[c].updates[bookCh]; n != 0 {
			t.Errorf("client %d: %d book update(s) forwarded between the outage and the fresh snapshot, want none (the feed had a gap)", c.id, n)
		}
	}
	// Live again: a delta on the fresh book and another trade.
	otPublish(t, pub2, bookChan, book.Update(time.Now().UnixNano()))
	otPublish(t, pub2, tradeChan, otTrade(12))
	otFlush(t, pub2)
	itWaitFor(t, 10*time.Second, "every client: the next book delta and trade 12", func() bool {
		return itAll(clients, func(s *itSession) bool {
			return s.last[bookCh] == book.Seq() && s.sum[bookCh] == book.Book().Checksum() && s.last[tradeCh] == 12
		})
	})
	if n := strings.Count(gw.output(), "nats reconnected"); n != 1 {
		t.Errorf("gw log: %d \"nats reconnected\" lines, want 1", n)
	}
	for _, c := range clients {
		ss := c.sessions()
		s := ss[0]
		if len(ss) != 1 || s.closed || s.reconnect != nil {
			t.Errorf("client %d: %d sessions, closed %v, reconnect %v: want the one connection throughout", c.id, len(ss), s.closed, s.reconnect)
		}
		if s.gaps != 0 || s.badChecksums != 0 || len(s.violations) != 0 || len(s.errors) != 0 {
			t.Errorf("client %d: gaps %d, bad checksums %d, violations %v, errors %v", c.id, s.gaps, s.badChecksums, s.violations, s.errors)
		}
		if s.snaps[bookCh] != 2 {
			t.Errorf("client %d: %d book snapshots, want 2 (the first and the fresh one)", c.id, s.snaps[bookCh])
		}
		if s.updates[tradeCh] != 6 {
			t.Errorf("client %d: %d trades, want 6 (1..3, 10..12)", c.id, s.updates[tradeCh])
		}
	}
	m := itMetrics(admin)
	if m["tickgate_nats_reconnects_total"] < 1 || m["tickgate_nats_connected"] != 1 {
		t.Errorf("after the restart: tickgate_nats_reconnects_total %v, tickgate_nats_connected %v, want >= 1 and 1",
			m["tickgate_nats_reconnects_total"], m["tickgate_nats_connected"])
	}
	if m["tickgate_connections_active"] != otClients {
		t.Errorf("tickgate_connections_active %v, want %d", m["tickgate_connections_active"], otClients)
	}

	t.Logf("SIGTERM nats-server at +0: exited +%v; gw /readyz 503 at +%v (%v after the exit)",
		exitedAt.Round(time.Millisecond), notReady.Round(time.Millisecond), (notReady - exitedAt).Round(time.Millisecond))
	t.Logf("nats-server restarted after %v down: /readyz 200 at +%v, subscriptions back at +%v",
		downFor.Round(time.Millisecond), ready.Round(time.Millisecond), resubscribed.Round(time.Millisecond))
	t.Logf("feed after the restart: delta seq %d (gap), snapshot seq %d: all %d clients had the fresh snapshot (checksum %d) and trades 10, 11 (prev chain intact) %v later",
		gapSeq, snapSeq, otClients, snapSum, snapped.Round(time.Millisecond))
	t.Logf("/metrics: tickgate_nats_reconnects_total %v, tickgate_nats_connected %v, tickgate_connections_active %v; total %v",
		m["tickgate_nats_reconnects_total"], m["tickgate_nats_connected"], m["tickgate_connections_active"], time.Since(start).Round(time.Millisecond))
}

func TestSecondSignalExitsAtOnce(t *testing.T) {
	const drainWithin = 10 * time.Second
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 55*time.Second)
	defer cancel()
	dir := t.TempDir()
	bin := itBuild(t, dir)
	natsURL, kind := otSingleNATS(t, dir)
	secretFile, signer := itSecret(t, dir)
	ports := itFreePorts(t, 4)
	serve := func(name string, gwPort, adminPort int) (*itProc, string) {
		t.Helper()
		p := itStart(t, dir, name, bin, []string{"serve",
			"--listen", fmt.Sprintf("127.0.0.1:%d", gwPort),
			"--admin", fmt.Sprintf("127.0.0.1:%d", adminPort),
			"--nats", natsURL,
			"--insecure-plaintext",
			"--hmac-secret-file", secretFile,
			"--node-id", name,
			"--drain-within", drainWithin.String(),
			"--shutdown-timeout", "30s",
		}, nil)
		admin := fmt.Sprintf("http://127.0.0.1:%d", adminPort)
		itWaitFor(t, 10*time.Second, name+" /readyz 200", func() bool { return itStatus(admin+"/readyz") == http.StatusOK })
		return p, admin
	}

	// Two signals with clients connected: the drain would take up to
	// drainWithin, the second signal ends it.
	gw, admin := serve("gw-1", ports[0], ports[1])
	clients := otConnect(ctx, t, fmt.Sprintf("ws://127.0.0.1:%d/v1/ws", ports[0]), signer, 3, []string{"book.BTC-USD"})
	t.Logf("up after %v: NATS %s, gw-1 with %d clients", time.Since(start).Round(time.Millisecond), kind, len(clients))
	term1 := time.Now()
	if err := gw.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	itWaitFor(t, 5*time.Second, "gw-1 /readyz 503 after SIGTERM", func() bool {
		return itStatus(admin+"/readyz") == http.StatusServiceUnavailable
	})
	notReady := time.Since(term1)
	itWaitFor(t, 5*time.Second, "every client's reconnect notice", func() bool {
		for _, c := range clients {
			if ss := c.sessions(); ss[0].reconnect == nil {
				return false
			}
		}
		return true
	})
	for _, c := range clients {
		if r := c.sessions()[0].reconnect; r.Reason != "draining" || r.WithinMS != drainWithin.Milliseconds() {
			t.Errorf("client %d: reconnect notice %+v, want reason draining within_ms %d", c.id, *r, drainWithin.Milliseconds())
		}
	}
	noticed := time.Since(term1)
	select {
	case <-gw.done:
		t.Fatalf("gw-1 exited %v after the first SIGTERM, before the second (status %v): its drain was expected to last up to %v",
			time.Since(term1).Round(time.Millisecond), gw.cmd.ProcessState, drainWithin)
	default:
	}
	open := 0
	for _, c := range clients {
		if !c.sessions()[0].closed {
			open++
		}
	}
	term2 := time.Now()
	if err := gw.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-gw.done:
	case <-time.After(5 * time.Second):
		t.Fatal("gw-1 still running 5s after the second SIGTERM")
	}
	exitIn := time.Since(term2)
	if exitIn > time.Second {
		t.Errorf("gw-1 exited %v after the second SIGTERM, want at once (< 1s)", exitIn.Round(time.Millisecond))
	}
	status := gw.cmd.ProcessState
	if status.Success() {
		t.Errorf("gw-1 exited 0 after the second SIGTERM: the drain completed instead of being cut short")
	}
	t.Logf("first SIGTERM at +0: /readyz 503 at +%v, reconnect notices on all %d clients at +%v; second SIGTERM at +%v with %d connection(s) still open: exited %v later (%v)",
		notReady.Round(time.Millisecond), len(clients), noticed.Round(time.Millisecond), term2.Sub(term1).Round(time.Millisecond),
		open, exitIn.Round(time.Millisecond), status)

	// One signal, no clients: a drain with nothing to wait for, exit 0.
	gw2, _ := serve("gw-2", ports[2], ports[3])
	term := time.Now()
	if err := gw2.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-gw2.done:
	case <-time.After(drainWithin + 5*time.Second):
		t.Fatalf("gw-2 still running %v after SIGTERM with no clients", drainWithin+5*time.Second)
	}
	took := time.Since(term)
	if code := gw2.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("gw-2 exited %d (%v) after one SIGTERM, want 0", code, gw2.cmd.ProcessState)
	}
	if took > drainWithin {
		t.Errorf("gw-2 took %v to exit after SIGTERM with no clients, want within --drain-within %v", took, drainWithin)
	}
	t.Logf("one SIGTERM, no clients: gw-2 exited %d after %v (--drain-within %v); total %v",
		gw2.cmd.ProcessState.ExitCode(), took.Round(time.Millisecond), drainWithin, time.Since(start).Round(time.Millisecond))
}

// otConnect connects n clients to url, each subscribed to channels, and
// waits until every one is acknowledged; they are closed at cleanup.
func otConnect(ctx context.Context, t *testing.T, url string, signer *auth.Signer, n int, channels []string) []*itClient {
	t.Helper()
	clients := make([]*itClient, n)
	t.Cleanup(func() {
		for _, c := range clients {
			if c != nil {
				c.close()
			}
		}
	})
	for i := range clients {
		token, err := signer.Sign(auth.TokenSpec{Subject: fmt.Sprintf("client-%d", i), Channels: []string{"book.*", "trade.*"}, TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		c := &itClient{id: i, url: url, token: token, channels: channels, stopped: make(chan struct{})}
		clients[i] = c
		go c.run(ctx)
	}
	itWaitFor(t, 10*time.Second, "every client welcomed and subscribed", func() bool {
		return itAll(clients, func(s *itSession) bool { return s.acked })
	})
	return clients
}

// otSingleNATS starts one NATS server on a free loopback port: Debian's
// nats-server when installed, else an embedded one.
func otSingleNATS(t *testing.T, dir string) (url, kind string) {
	t.Helper()
	port := itFreePorts(t, 1)[0]
	url = fmt.Sprintf("nats://127.0.0.1:%d", port)
	if bin, err := itLookPath("nats-server"); err == nil && os.Getenv("TICKGATE_TEST_NATS") != "embedded" {
		itStart(t, dir, "nats-server", bin, []string{"-a", "127.0.0.1", "-p", strconv.Itoa(port)}, nil)
		itWaitFor(t, 10*time.Second, "nats-server listening", func() bool {
			c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
			if err == nil {
				_ = c.Close()
			}
			return err == nil
		})
		return url, "nats-server binary " + bin
	}
	natstest.Run(t, port)
	return url, "embedded nats-server/v2"
}

// otHasSubs reports whether the NATS server behind monitor holds a
// subscription to every one of subjects.
func otHasSubs(monitor string, subjects []string) bool {
	var cz struct {
		Conns []struct {
			Subs []string `json:"subscriptions_list"`
		} `json:"connections"`
	}
	if json.Unmarshal([]byte(itBody(monitor+"/connz?subs=1")), &cz) != nil {
		return false
	}
	var all []string
	for _, c := range cz.Conns {
		all = append(all, c.Subs...)
	}
	for _, s := range subjects {
		if !slices.Contains(all, s) {
			return false
		}
	}
	return true
}

func otPublisher(t *testing.T, url, name string) *feed.Publisher {
	t.Helper()
	pub, err := feed.DialPublisher(url, name, "md")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pub.Close)
	return pub
}

func otPublish(t *testing.T, pub *feed.Publisher, ch proto.Channel, msgs ...proto.FeedMessage) {
	t.Helper()
	for _, m := range msgs {
		if err := pub.PublishMessage(ch, m); err != nil {
			t.Fatal(err)
		}
	}
}

func otFlush(t *testing.T, pub *feed.Publisher) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := pub.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

func otTrade(seq uint64) proto.FeedMessage {
	return proto.FeedMessage{Seq: seq, Type: proto.FeedUpdate, Data: &proto.Trade{
		Symbol: "BTC-USD", ID: int64(seq), Price: "100.5", Size: "0.1", Side: proto.SideBuy, TS: time.Now().UnixNano(),
	}}
}
