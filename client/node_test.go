package client_test

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tickgate/tickgate/client"
	"github.com/tickgate/tickgate/codec"
	"github.com/tickgate/tickgate/internal/nodetest"
	"github.com/tickgate/tickgate/proto"
)

// Against a real node over TLS, in both codecs and both token paths, the
// client keeps the publisher's book, every trade and the ticker.
func TestNodeEndToEnd(t *testing.T) {
	for _, tt := range []struct {
		name        string
		cd          codec.Codec
		subprotocol bool
	}{{"json header", codec.JSON(), false}, {"msgpack bearer subprotocol", codec.Msgpack(), true}} {
		t.Run(tt.name, func(t *testing.T) {
			env := nodetest.NewEnv(t)
			node := env.Start(t, "127.0.0.1:0")
			m := env.NewMarket("BTC-USD", 1)
			rec := newRecorder(t)
			c := dial(t, env, node.URL(), client.Options{Codec: tt.cd, TokenInSubprotocol: tt.subprotocol, OnEvent: rec.handle})
			if info, ok := c.Conn(); !ok || info.Codec != tt.cd.Name() || info.Node != "nodetest" {
				t.Fatalf("conn %+v", info)
			}
			subscribe(t, c, m.Channels()...)
			m.Run(t, 3*time.Millisecond)
			waitFor(t, 5*time.Second, "channels live", func() bool { return allLive(c, m.Channels()) })
			time.Sleep(200 * time.Millisecond)
			converge(t, env, node.URL(), c, m, "book.BTC-USD")
			_, lastTrade, lastTicker := m.Seqs()
			waitFor(t, 5*time.Second, "the last trade", func() bool {
				return rec.count(func(e client.Event) bool { return e.Trade != nil && e.Seq == lastTrade }) == 1
			})
			checkTrades(t, rec, "trade.BTC-USD", lastTrade)
			if g := rec.allGaps(); len(g) != 0 {
				t.Fatalf("gaps on a clean run: %+v", g)
			}
			waitFor(t, 5*time.Second, "the last ticker", func() bool {
				tk, seq, ok := c.Ticker("ticker.BTC-USD")
				return ok && seq == lastTicker && tk.Volume != ""
			})
			st := c.Stats()
			t.Logf("stats %+v, trades %d, events %d", st, lastTrade, rec.count(func(client.Event) bool { return true }))
			if st.Gaps+st.ChecksumFailures+st.Resyncs+st.Reconnects != 0 || st.Messages == 0 {
				t.Fatalf("stats %+v", st)
			}
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Subscribe(t.Context(), []string{"book.ETH-USD"}); !errors.Is(err, client.ErrClosed) {
				t.Fatalf("subscribe after close: %v", err)
			}
		})
	}
}

// The node is killed mid-stream (every socket cut, no close frame) and a
// new one starts on the same address. The client reconnects, restarts
// the channels the new node cannot resume (it holds no history), reports
// the trades it lost, and ends with the same book as a fresh subscriber.
func TestNodeKilledAndRestarted(t *testing.T) {
	env := nodetest.NewEnv(t)
	node := env.Start(t, "127.0.0.1:0")
	m := env.NewMarket("BTC-USD", 2)
	rec := newRecorder(t)
	c := dial(t, env, node.URL(), client.Options{OnEvent: rec.handle})
	subscribe(t, c, m.Channels()...)
	m.Run(t, 3*time.Millisecond)
	waitFor(t, 5*time.Second, "channels live", func() bool { return allLive(c, m.Channels()) })
	time.Sleep(100 * time.Millisecond)

	node.Kill(t)
	waitFor(t, 5*time.Second, "channels stale", func() bool {
		st, _ := c.State("trade.BTC-USD")
		return st == client.StateStale
	})
	time.Sleep(150 * time.Millisecond) // trades published while no node listens
	node = env.Start(t, node.Addr)
	waitFor(t, 10*time.Second, "a reconnect and every channel live again", func() bool {
		return c.Stats().Reconnects == 1 && allLive(c, m.Channels())
	})
	time.Sleep(100 * time.Millisecond)
	converge(t, env, node.URL(), c, m, "book.BTC-USD")
	waitLastTrade(t, rec, m, "trade.BTC-USD")
	st := c.Stats()
	if st.Resyncs < 2 || st.Resumed != 0 || st.Gaps == 0 || st.ChecksumFailures != 0 {
		t.Fatalf("stats %+v", st)
	}
	if n := rec.count(func(e client.Event) bool {
		return e.Type == client.EventGap && e.Gap.Reason == client.GapHistory
	}); n != 1 {
		t.Fatalf("%d history_unavailable gaps, want 1", n)
	}
	if n := rec.count(func(e client.Event) bool { return e.Type == client.EventDisconnected }); n < 1 {
		t.Fatal("no disconnect reported")
	}
}

// The node drains (reconnect notice, 1001) and answers new handshakes
// with 503 draining for a while; then a new one starts on the same
// address. The client waits the 503's Retry-After between attempts.
func TestNodeDrainedAndRestarted(t *testing.T) {
	t.Parallel()
	env := nodetest.NewEnv(t)
	node := env.Start(t, "127.0.0.1:0")
	m := env.NewMarket("ETH-USD", 3)
	rec := newRecorder(t)
	c := dial(t, env, node.URL(), client.Options{OnEvent: rec.handle})
	subscribe(t, c, m.Channels()...)
	m.Run(t, 3*time.Millisecond)
	waitFor(t, 5*time.Second, "channels live", func() bool { return allLive(c, m.Channels()) })
	time.Sleep(100 * time.Millisecond)

	node.Drain(t, 200*time.Millisecond)
	waitFor(t, 5*time.Second, "a 503 draining", func() bool {
		return rec.count(func(e client.Event) bool {
			var he *client.HandshakeError
			return errors.As(e.Err, &he) && he.StatusCode == 503 && e.Delay >= time.Second
		}) == 1
	})
	node.Stop(t)
	node = env.Start(t, node.Addr)
	waitFor(t, 10*time.Second, "a reconnect and every channel live again", func() bool {
		return c.Stats().Reconnects == 1 && allLive(c, m.Channels())
	})
	converge(t, env, node.URL(), c, m, "book.ETH-USD")
	waitLastTrade(t, rec, m, "trade.ETH-USD")
	if n := rec.count(func(e client.Event) bool {
		return e.Type == client.EventDisconnected && errors.Is(e.Err, client.ErrDraining)
	}); n < 1 {
		t.Fatal("the drain (1001) was not reported")
	}
}

// A node drains behind a load balancer and the client lands on another
// node that holds its channels: every channel is resumed, nothing is
// missed, no gap is reported.
func TestDrainResumesOnAnotherNode(t *testing.T) {
	env := nodetest.NewEnv(t)
	a := env.Start(t, "127.0.0.1:0")
	b := env.Start(t, "127.0.0.1:0")
	m := env.NewMarket("SOL-USD", 4)
	m.SnapshotEvery = 1 << 20 // one snapshot first: a book's history goes back to the last snapshot
	keeper := dial(t, env, b.URL(), client.Options{})
	subscribe(t, keeper, m.Channels()...) // b holds the channels and their history
	var backend atomic.Value
	backend.Store(a.Addr)
	rec := newRecorder(t)
	c := dial(t, env, a.URL(), client.Options{OnEvent: rec.handle,
		Dialer: func(ctx context.Context, network, _ string) (net.Conn, error) { // the load balancer
			var d net.Dialer
			return d.DialContext(ctx, network, backend.Load().(string))
		}})
	subscribe(t, c, m.Channels()...)
	m.Run(t, 3*time.Millisecond)
	waitFor(t, 5*time.Second, "channels live", func() bool { return allLive(c, m.Channels()) })
	time.Sleep(100 * time.Millisecond)

	backend.Store(b.Addr)
	a.Drain(t, 100*time.Millisecond)
	a.Stop(t)
	waitFor(t, 10*time.Second, "a reconnect and every channel resumed", func() bool {
		return c.Stats().Reconnects == 1 && allLive(c, m.Channels())
	})
	converge(t, env, b.URL(), c, m, "book.SOL-USD")
	waitLastTrade(t, rec, m, "trade.SOL-USD")
	if st := c.Stats(); st.Resumed != 3 || st.Gaps != 0 || st.Resyncs != 0 {
		t.Fatalf("stats %+v, gaps %+v", st, rec.allGaps())
	}
	if n := rec.count(func(e client.Event) bool { return e.Type == client.EventState && e.Resumed }); n != 3 {
		t.Fatalf("%d resumed state events, want 3", n)
	}
}

// Candles against a real node, in both codecs: a subscriber's bars follow
// every revision and close within its bars option, and one that joins
// later starts from the node's newest bars.
func TestNodeCandles(t *testing.T) {
	for _, cd := range codec.All() {
		t.Run(cd.Name(), func(t *testing.T) {
			env := nodetest.NewEnv(t)
			node := env.Start(t, "127.0.0.1:0")
			const name = "candle.1m.BTC-USD"
			ch, err := proto.ParseChannel(name)
			if err != nil {
				t.Fatal(err)
			}
			c := dial(t, env, node.URL(), client.Options{Codec: cd})
			if _, err := c.Subscribe(t.Context(), []string{name}, client.Bars(4)); err != nil {
				t.Fatal(err)
			}
			var want []proto.Candle // the newest revision of each bar
			seq := uint64(0)
			publish := func(bar proto.Candle) {
				seq++
				env.Publish(t, ch, proto.FeedMessage{Seq: seq, Type: proto.TypeUpdate, Data: &bar})
				if n := len(want); n > 0 && want[n-1].Start == bar.Start {
					want[n-1] = bar
				} else {
					want = append(want, bar)
				}
			}
			for n := range 6 {
				for i, close := range []string{"110", "120", "130"} {
					publish(nodeBar(n, close, i == 2))
				}
			}
			publish(nodeBar(6, "140", false))
			env.Flush(t)
			check := func(c *client.Client, keep int) {
				t.Helper()
				waitFor(t, 5*time.Second, "the newest bars", func() bool {
					bars, s, ok := c.Candles(name)
					return ok && s == seq && len(bars) == keep && bars[keep-1] == want[len(want)-1]
				})
				bars, _, _ := c.Candles(name)
				for i, b := range bars {
					if w := want[len(want)-keep+i]; b != w {
						t.Fatalf("bar %d: %+v, want %+v", i, b, w)
					}
				}
			}
			check(c, 4)

			late := dial(t, env, node.URL(), client.Options{Codec: cd})
			if _, err := late.Subscribe(t.Context(), []string{name}, client.Bars(2)); err != nil {
				t.Fatal(err)
			}
			check(late, 2)
			publish(nodeBar(6, "150", true))
			env.Flush(t)
			check(c, 4)
			check(late, 2)
			if st := c.Stats(); st.Gaps != 0 || st.Resyncs != 0 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

// nodeBar is a valid 1m BTC-USD bar of minute n of a test day.
func nodeBar(n int, close string, closed bool) proto.Candle {
	start := time.Date(2026, 1, 1, 0, n, 0, 0, time.UTC).UnixNano()
	return proto.Candle{Symbol: "BTC-USD", Interval: "1m", Start: start, Open: "100", High: "200", Low: "50",
		Close: close, Volume: "2", Trades: 3, Closed: closed, TS: start + 1}
}
