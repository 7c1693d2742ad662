//go:build integration

package main

// The proof of issue 10 with real parts: lose a node, lose nothing.
//
// A 3-node NATS cluster with JetStream (Debian's nats-server 2.9, or
// embedded servers), the history stream with 3 replicas (`tickgate stream
// --replicas 3`), three `tickgate serve` nodes with --history jetstream
// (gw-i on NATS member i), Debian's HAProxy with deploy/haproxy/haproxy.cfg
// in front, and a publisher that waits for the stream's acknowledgement.
// TICKGATE_FAILOVER_CLIENTS clients (default 1,000) of the Go client
// library connect through HAProxy, each on one trade, one book and one
// ticker channel. Then:
//
//  1. gw-1 is SIGKILLed: its clients reconnect through HAProxy to gw-2 and
//     gw-3 and resume;
//  2. a NATS member is SIGKILLed (one that holds a gateway's connection but
//     neither the publisher's nor the stream's leader): that gateway's
//     clients see stale, then live, and the trades it missed are filled
//     from the stream.
//
// It asserts that every client of gw-1 came back; that every trade client
// holds every trade the publisher sent from its first one on, in order,
// none twice; that every book equals a fresh subscriber's and every ticker
// the last published one; and that the clients never disconnected saw
// stale or resyncing only on the node whose NATS member died, and only
// after it died. It logs the reconnect and resume times, trades recovered
// and lost, and the latency of the undisturbed clients per phase
// (docs/benchmarks.md, "Lose a node, lose nothing").
//
//	apt-get install -y haproxy nats-server
//	go test -tags integration -count=1 -run Failover -v ./cmd/tickgate/

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tickgate/tickgate/auth"
	"github.com/tickgate/tickgate/client"
	"github.com/tickgate/tickgate/feed/feedsim"
	"github.com/tickgate/tickgate/internal/fleet"
	"github.com/tickgate/tickgate/proto"
)

var failoverPhases = []string{"before", "gateway loss", "between", "NATS loss", "after"}

func TestFailoverLoseNothing(t *testing.T) {
	haproxy := itNeed(t, "haproxy", "haproxy", "this test runs deploy/haproxy/haproxy.cfg with the real HAProxy")
	clients := 1000
	if v := os.Getenv("TICKGATE_FAILOVER_CLIENTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 3 {
			t.Fatalf("TICKGATE_FAILOVER_CLIENTS=%q: want a number of at least 3", v)
		}
		clients = n
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	dir := t.TempDir()
	bin := itBuild(t, dir)

	// NATS with JetStream, and the history stream on 3 replicas.
	nats := itStartNATSCluster(t, dir, true)
	allNATS := strings.Join(nats.urls, ",")
	var streamOut []byte
	itWaitFor(t, 30*time.Second, "tickgate stream --replicas 3 (the JetStream cluster elects its leader first)", func() bool {
		var err error
		streamOut, err = exec.Command(bin, "stream", "--nats", allNATS, "--replicas", "3", "--memory", "--max-age", "1h").CombinedOutput()
		return err == nil
	})
	t.Logf("%s", strings.TrimSpace(string(streamOut)))

	secretFile, signer := itSecret(t, dir)
	cert, certFile := itLBCert(t, dir)

	// Three gateway nodes, gw-i on NATS member i.
	ports := itFreePorts(t, 8)
	lbPort, statsPort := ports[0], ports[1]
	gwPort, adminPort := ports[2:5], ports[5:8]
	var gw [3]*itProc
	for i := range gw {
		gw[i] = itStart(t, dir, fmt.Sprintf("gw-%d", i+1), bin, append(itNodeArgs(i+1, gwPort[i], adminPort[i], nats.urls[i], secretFile),
			"--history", "jetstream",
			"--trusted-proxies", "127.0.0.1/32",
			"--max-conns-per-ip", "-1",
			"--log-level", "warn",
		), nil)
	}
	admin := func(i int) string { return fmt.Sprintf("http://127.0.0.1:%d", adminPort[i]) }
	for i := range gw {
		itWaitFor(t, 15*time.Second, gw[i].name+" /readyz 200", func() bool { return itStatus(admin(i)+"/readyz") == http.StatusOK })
	}
	cfg, err := filepath.Abs(itConfig)
	if err != nil {
		t.Fatal(err)
	}
	env := []string{
		fmt.Sprintf("LB_BIND=127.0.0.1:%d", lbPort), "LB_CERT=" + certFile,
		fmt.Sprintf("LB_STATS_BIND=127.0.0.1:%d", statsPort), "LB_DNS=127.0.0.1:53",
	}
	for i := range gw {
		env = append(env, fmt.Sprintf("GW%d_ADDR=127.0.0.1:%d", i+1, gwPort[i]), fmt.Sprintf("GW%d_ADMIN_PORT=%d", i+1, adminPort[i]))
	}
	itStart(t, dir, "haproxy", haproxy, []string{"-db", "-f", cfg}, env)
	stats := fmt.Sprintf("http://127.0.0.1:%d/stats;csv", statsPort)
	itWaitFor(t, 10*time.Second, "HAProxy sees gw1, gw2 and gw3 UP", func() bool {
		s := itHAProxyStats(stats)
		return strings.HasPrefix(s["gw1"].status, "UP") && strings.HasPrefix(s["gw2"].status, "UP") && strings.HasPrefix(s["gw3"].status, "UP")
	})

	// The publisher, on member 1, waiting for the stream's acknowledgement
	// of every message.
	fd, err := fleet.StartFeed(fleet.FeedConfig{NATS: nats.urls[0], Durable: true,
		Sim: feedsim.Config{Count: 4, Rate: 100, SnapshotEvery: 5 * time.Second, Seed: 10}})
	if err != nil {
		t.Fatal(err)
	}
	feedStopped := false
	t.Cleanup(func() {
		if !feedStopped {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = fd.Stop(sctx)
			cancel()
		}
	})
	t.Logf("up after %v: NATS (%s) with the stream on 3 replicas, gw-1..3, HAProxy, the feed", time.Since(start).Round(time.Millisecond), nats.kind)

	// The clients, through HAProxy.
	url := fmt.Sprintf("wss://127.0.0.1:%d/v1/ws", lbPort)
	symbols := []string{"BTC-USD", "ETH-USD", "SOL-USD", "SIM0004-USD"}
	specs := make([]fleet.Spec, clients)
	for i := range specs {
		token, err := signer.Sign(auth.TokenSpec{Subject: fmt.Sprintf("client-%d", i), Channels: []string{">"}, TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		specs[i] = fleet.Spec{Group: "all", URL: url, Token: token, Msgpack: i%2 == 1, Channels: []string{
			proto.Channel{Kind: proto.KindTrade, Symbol: symbols[i%4]}.String(),
			proto.Channel{Kind: proto.KindBook, Symbol: symbols[(i/4)%4]}.String(),
			proto.Channel{Kind: proto.KindTicker, Symbol: symbols[(i/16)%4]}.String(),
			proto.Channel{Kind: proto.KindCandle, Param: "1m", Symbol: symbols[(i/64)%4]}.String(),
		}}
	}
	tlsCfg := cert.ClientConfig()
	tlsCfg.ServerName = "127.0.0.1"
	fl := fleet.New(fleet.Config{TLS: tlsCfg, Phases: failoverPhases})
	t.Cleanup(fl.Close)
	opened := time.Now()
	if err := fl.Open(ctx, specs, 250, nil); err != nil {
		t.Fatal(err)
	}
	byNode := map[string][]*fleet.Member{}
	for _, m := range fl.Members() {
		byNode[m.Node()] = append(byNode[m.Node()], m)
	}
	t.Logf("%d clients subscribed through HAProxy in %v: gw-1 %d, gw-2 %d, gw-3 %d", clients, time.Since(opened).Round(time.Millisecond),
		len(byNode["gw-1"]), len(byNode["gw-2"]), len(byNode["gw-3"]))
	if len(byNode["gw-1"]) == 0 || len(byNode["gw-2"]) == 0 || len(byNode["gw-3"]) == 0 {
		t.Fatalf("clients did not spread over the three nodes: gw-1 %d, gw-2 %d, gw-3 %d", len(byNode["gw-1"]), len(byNode["gw-2"]), len(byNode["gw-3"]))
	}
	time.Sleep(3 * time.Second)

	// 1. SIGKILL gw-1.
	fl.SetPhase(1)
	kill1 := time.Now()
	_ = gw[0].cmd.Process.Kill()
	<-gw[0].done
	moved := byNode["gw-1"]
	back := func() int {
		n := 0
		for _, m := range moved {
			if m.RecoveryAfter(kill1).Done {
				n++
			}
		}
		return n
	}
	itWaitFor(t, 90*time.Second, "every client of gw-1 back and live on another node", func() bool { return back() == len(moved) })
	stormDone := time.Since(kill1)
	var backD, liveD []time.Duration
	attempts, tradesResumed := 0, 0
	for _, m := range moved {
		r := m.RecoveryAfter(kill1)
		backD, liveD = append(backD, r.Back), append(liveD, r.Live)
		attempts += r.Attempts
		if r.Node == "gw-1" || r.Node == "" {
			t.Errorf("member %d came back on %q", m.Index, r.Node)
		}
		for _, ch := range r.Resumed {
			if strings.HasPrefix(ch, "trade.") {
				tradesResumed++
			}
		}
	}
	fl.SetPhase(2)
	time.Sleep(3 * time.Second)

	// 2. SIGKILL a NATS member: one that a gateway is on, and that is
	// neither the publisher's (member 1) nor the stream's leader.
	leader := streamLeader(nats.monitor[0], "MD")
	victim := 2
	if leader == "nats-3" {
		victim = 1
	}
	victimGW := fmt.Sprintf("gw-%d", victim+1)
	otherGW := fmt.Sprintf("gw-%d", 3-victim+1) // the surviving gateway on a surviving member
	fl.SetPhase(3)
	kill2 := time.Now()
	nats.kill[victim]()
	t.Logf("SIGKILL nats-%d (stream leader %s): %s's member", victim+1, leader, victimGW)
	itWaitFor(t, 30*time.Second, victimGW+" back on NATS (/readyz 200)", func() bool {
		return time.Since(kill2) > time.Second && itStatus(admin(victim)+"/readyz") == http.StatusOK
	})
	natsBack := time.Since(kill2)
	time.Sleep(5 * time.Second)
	fl.SetPhase(4)
	time.Sleep(3 * time.Second)

	// The feed stops; every client must hold exactly what it published.
	sctx, scancel := context.WithTimeout(ctx, 30*time.Second)
	err = fd.Stop(sctx)
	scancel()
	feedStopped = true
	if err != nil {
		t.Fatalf("feed: %v", err)
	}
	published, failed := fd.Published()
	fresh, err := client.Dial(ctx, url, client.Options{TLS: tlsCfg, TokenSource: func(context.Context) (string, error) {
		return signer.Sign(auth.TokenSpec{Subject: "fresh", Channels: []string{">"}, TTL: time.Hour})
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	vctx, vcancel := context.WithTimeout(ctx, 30*time.Second)
	verdict, err := fl.Verify(vctx, fd, fresh)
	vcancel()
	if err != nil {
		t.Fatal(err)
	}

	// Every trade, book, ticker and candle.
	if verdict.Stuck != "" {
		t.Errorf("not converged after the feed stopped: %s", verdict.Stuck)
	}
	tr := verdict.Trades
	if tr.Lost != 0 || tr.Dups != 0 || tr.Received != tr.Expected || tr.Subscriptions != clients || tr.NoneHeld != 0 {
		t.Errorf("trades %+v: want every trade received once, in order, none lost", tr)
	}
	if verdict.Books != clients || verdict.Tickers != clients || verdict.Candles != clients {
		t.Errorf("books equal to a fresh subscriber's %d, tickers equal to the last published %d, candle channels with every bar as published %d; want %d each",
			verdict.Books, verdict.Tickers, verdict.Candles, clients)
	}
	for _, f := range slices.Concat(verdict.TradeFaults, verdict.BookFaults, verdict.TickerFaults, verdict.CandleFaults) {
		t.Error(f)
	}
	// The clients never disconnected: stale only where the NATS loss
	// reached them.
	undisturbed, staleSeen := 0, 0
	for _, m := range fl.Members() {
		if m.Sessions() != 1 {
			continue
		}
		undisturbed++
		at, what := m.Statuses()
		for i := range at {
			switch {
			case at[i].Before(kill2):
				t.Errorf("member %d on %s (never disconnected) saw %s before any NATS loss", m.Index, m.Node(), what[i])
			case m.Node() != victimGW:
				t.Errorf("member %d on %s (never disconnected; its NATS member lived) saw %s", m.Index, m.Node(), what[i])
			}
		}
		if m.Node() == victimGW && len(at) > 0 {
			staleSeen++
		}
	}
	if undisturbed != clients-len(moved) {
		t.Errorf("%d clients kept their first connection, want %d (all but gw-1's)", undisturbed, clients-len(moved))
	}
	if failed != 0 {
		t.Errorf("the publisher failed %d publishes", failed)
	}

	b, l := fleet.Summarize(backD), fleet.Summarize(liveD)
	t.Logf("gateway loss: SIGKILL gw-1 with %d clients; all back and live on gw-2/gw-3 through HAProxy in %v", len(moved), stormDone.Round(time.Millisecond))
	t.Logf("  kill → welcome: p50 %v p99 %v max %v; kill → every channel live: p50 %v p99 %v max %v; %d failed attempts; %d of %d trade channels resumed",
		b.P50.Round(time.Millisecond), b.P99.Round(time.Millisecond), b.Max.Round(time.Millisecond),
		l.P50.Round(time.Millisecond), l.P99.Round(time.Millisecond), l.Max.Round(time.Millisecond), attempts, tradesResumed, len(moved))
	t.Logf("NATS loss: SIGKILL nats-%d; %s back on NATS (/readyz 200) after %v; %d of its %d undisturbed clients saw stale/resyncing, none elsewhere",
		victim+1, victimGW, natsBack.Round(time.Millisecond), staleSeen, len(byNode[victimGW]))
	t.Logf("trades: %d subscriptions, expected %d, received %d, recovered by resume %d, lost %d, duplicates %d; books equal %d, tickers equal %d, candles as published %d; published %d",
		tr.Subscriptions, tr.Expected, tr.Received, tr.Replayed, tr.Lost, tr.Dups, verdict.Books, verdict.Tickers, verdict.Candles, published)
	t.Logf("latency of live data at clients never disconnected (%d on %s and %s; %s's NATS member lived):", undisturbed, victimGW, otherGW, otherGW)
	for _, lat := range fl.Latencies("all") {
		t.Logf("  %-13s %6d messages  p50 %v  p99 %v  p99.9 %v  max %v", lat.Phase, lat.Count,
			lat.P50.Round(10*time.Microsecond), lat.P99.Round(10*time.Microsecond), lat.P999.Round(10*time.Microsecond), lat.Max.Round(10*time.Microsecond))
	}
	t.Logf("gaps the clients saw: %v", gapTotals(fl))
	t.Logf("total %v", time.Since(start).Round(time.Millisecond))
}

// streamLeader reads the name of the stream's leader from a member's
// monitoring endpoint ("" when it cannot tell).
func streamLeader(monitor, stream string) string {
	var jsz struct {
		Accounts []struct {
			Streams []struct {
				Name    string `json:"name"`
				Cluster struct {
					Leader string `json:"leader"`
				} `json:"cluster"`
			} `json:"stream_detail"`
		} `json:"account_details"`
	}
	if json.Unmarshal([]byte(itBody(monitor+"/jsz?accounts=true&streams=true")), &jsz) != nil {
		return ""
	}
	for _, a := range jsz.Accounts {
		for _, s := range a.Streams {
			if s.Name == stream {
				return s.Cluster.Leader
			}
		}
	}
	return ""
}

func gapTotals(fl *fleet.Fleet) map[client.GapReason]int {
	out := map[client.GapReason]int{}
	for _, m := range fl.Members() {
		for r, n := range m.Gaps() {
			out[r] += n
		}
	}
	return out
}
