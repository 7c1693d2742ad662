package client_test

import (
	"context"
	"flag"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tickgate/tickgate/client"
	"github.com/tickgate/tickgate/internal/nodetest"
)

var soak = flag.Bool("soak", false, "run the long client tests (a 30 s outage): go test ./client -run Soak -soak")

// The node is down for 30 s mid-stream (issue 9): the client backs off
// without a hot loop, comes back when a node listens again, and ends with
// the publisher's book and every trade delivered or reported.
func TestSoakLongOutage(t *testing.T) {
	if !*soak {
		t.Skip("long: run with -soak")
	}
	env := nodetest.NewEnv(t)
	node := env.Start(t, "127.0.0.1:0")
	m := env.NewMarket("BTC-USD", 7)
	rec := newRecorder(t)
	var dials atomic.Int32
	c := dial(t, env, node.URL(), client.Options{OnEvent: rec.handle, BackoffMin: 100 * time.Millisecond, BackoffMax: 5 * time.Second,
		Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}})
	subscribe(t, c, m.Channels()...)
	m.Run(t, 5*time.Millisecond)
	waitFor(t, 5*time.Second, "channels live", func() bool { return allLive(c, m.Channels()) })
	node.Kill(t)
	before := dials.Load()
	time.Sleep(30 * time.Second)
	during := dials.Load() - before
	node = env.Start(t, node.Addr)
	waitFor(t, 15*time.Second, "every channel live again", func() bool { return allLive(c, m.Channels()) })
	// Ceilings 0.1 .. 5 s with full jitter: about 15 attempts in 30 s.
	if during < 5 || during > 40 {
		t.Fatalf("%d dial attempts during a 30 s outage", during)
	}
	converge(t, env, node.URL(), c, m, "book.BTC-USD")
	waitLastTrade(t, rec, m, "trade.BTC-USD")
	t.Logf("%d attempts during the outage; stats %+v", during, c.Stats())
}
