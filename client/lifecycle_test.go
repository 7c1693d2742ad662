package client_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tickgate/tickgate/client"
	"github.com/tickgate/tickgate/codec"
	"github.com/tickgate/tickgate/internal/nodetest"
	"github.com/tickgate/tickgate/proto"
)

// Tokens that live 3 s are refreshed in-band (auth) before they expire:
// the connection outlives several of them, and data keeps flowing.
func TestTokenRefreshAcrossExpiry(t *testing.T) {
	t.Parallel()
	env := nodetest.NewEnv(t)
	node := env.Start(t, "127.0.0.1:0")
	m := env.NewMarket("BTC-USD", 5)
	var calls atomic.Int32
	rec := newRecorder(t)
	c := dial(t, env, node.URL(), client.Options{OnEvent: rec.handle,
		TokenSource: func(context.Context) (string, error) {
			calls.Add(1)
			return env.Token(t, "refresher", 3*time.Second, ">"), nil
		}})
	info, _ := c.Conn()
	firstExp := info.TokenExpiry
	subscribe(t, c, "trade.BTC-USD")
	m.Run(t, 10*time.Millisecond)
	waitFor(t, 10*time.Second, "a trade after the first token expired", func() bool {
		return time.Now().After(firstExp.Add(500*time.Millisecond)) &&
			rec.count(func(e client.Event) bool { return e.Trade != nil && time.Unix(0, e.TS).After(firstExp) }) > 0
	})
	info, _ = c.Conn()
	if st := c.Stats(); st.Reconnects != 0 || calls.Load() < 2 || !info.TokenExpiry.After(firstExp) {
		t.Fatalf("reconnects %d, token source calls %d, expiry %v then %v", st.Reconnects, calls.Load(), firstExp, info.TokenExpiry)
	}
	if n := rec.count(func(e client.Event) bool { return e.Type == client.EventDisconnected }); n != 0 {
		t.Fatal("the connection dropped")
	}
}

// A token source with nothing fresher: the node closes at expiry with
// 4001, and the client reconnects at once, asking the source again.
func TestTokenExpiredReconnects(t *testing.T) {
	t.Parallel()
	env := nodetest.NewEnv(t)
	node := env.Start(t, "127.0.0.1:0")
	short := env.Token(t, "stale", 2*time.Second, ">")
	var calls atomic.Int32
	rec := newRecorder(t)
	c := dial(t, env, node.URL(), client.Options{OnEvent: rec.handle,
		TokenSource: func(context.Context) (string, error) {
			if calls.Add(1) <= 2 { // the connect, then the refresh: no fresher token
				return short, nil
			}
			return env.Token(t, "stale", time.Hour, ">"), nil
		}})
	subscribe(t, c, "ticker.BTC-USD")
	waitFor(t, 10*time.Second, "a reconnect after 4001", func() bool {
		return c.Stats().Reconnects == 1 && rec.count(func(e client.Event) bool {
			return e.Type == client.EventDisconnected && errors.Is(e.Err, client.ErrTokenExpired) && e.Delay < time.Second
		}) == 1
	})
	if st, ok := c.State("ticker.BTC-USD"); !ok || st == client.StateStale {
		t.Fatalf("ticker.BTC-USD is %v after the reconnect", st)
	}
}

// A node that answers 429 with Retry-After: 1 is tried again only after
// that second each time, never in a hot loop; Dial gives up at its
// context's end and names the last refusal.
func TestTooManyRequestsHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	var (
		hits  atomic.Int32
		times = make(chan time.Time, 100)
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		times <- time.Now()
		w.Header().Set("Retry-After", "1")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = w.Write([]byte(`{"error":"too_many_connections","message":"pacing new connections"}`))
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2600*time.Millisecond)
	defer cancel()
	_, err := client.Dial(ctx, "ws"+srv.URL[len("http"):]+"/v1/ws", client.Options{
		TokenSource: func(context.Context) (string, error) { return "t", nil },
		BackoffMin:  10 * time.Millisecond, BackoffMax: 50 * time.Millisecond,
	})
	var he *client.HandshakeError
	if !errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &he) || he.StatusCode != 429 ||
		he.RetryAfter != time.Second || he.Code != proto.HandshakeTooManyConnections || !errors.Is(err, client.ErrTooManyConnections) {
		t.Fatalf("dial: %v", err)
	}
	n := int(hits.Load())
	if n < 2 || n > 3 {
		t.Fatalf("%d attempts in 2.6 s with Retry-After: 1", n)
	}
	var prev time.Time
	for range n {
		at := <-times
		if !prev.IsZero() && at.Sub(prev) < time.Second {
			t.Fatalf("attempts %v apart", at.Sub(prev))
		}
		prev = at
	}
}

// An address that refuses connections for a while: the client backs off
// (full jitter, doubling), and connects once a node listens there.
func TestRefusedAddressBacksOff(t *testing.T) {
	t.Parallel()
	env := nodetest.NewEnv(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	var dials atomic.Int32
	start := time.Now()
	up := make(chan *nodetest.Node, 1)
	go func() {
		time.Sleep(2500 * time.Millisecond)
		up <- env.Start(t, addr)
	}()
	defer func() { <-up }()
	c := dial(t, env, "wss://"+addr+"/v1/ws", client.Options{
		BackoffMin: 50 * time.Millisecond, BackoffMax: time.Second,
		Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}})
	if took := time.Since(start); took < 2500*time.Millisecond {
		t.Fatalf("connected after %v, before the node was up", took)
	}
	// Ceilings 50, 100, 200, 400, 800 ms, then 1 s: about ten attempts in
	// 2.5 s, where a hot loop makes thousands.
	if n := dials.Load(); n < 3 || n > 25 {
		t.Fatalf("%d dial attempts in %v", n, time.Since(start))
	}
	if _, ok := c.Conn(); !ok {
		t.Fatal("not connected")
	}
}

// An error that retrying cannot fix is Dial's answer at once.
func TestDialRefusedToken(t *testing.T) {
	env := nodetest.NewEnv(t)
	node := env.Start(t, "127.0.0.1:0")
	start := time.Now()
	_, err := client.Dial(t.Context(), node.URL(), client.Options{TLS: env.ClientTLS(),
		TokenSource: func(context.Context) (string, error) { return "not.a.jwt", nil }})
	var he *client.HandshakeError
	if !errors.As(err, &he) || he.StatusCode != 401 || !errors.Is(err, client.ErrInvalidToken) || time.Since(start) > 2*time.Second {
		t.Fatalf("dial with a bad token: %v after %v", err, time.Since(start))
	}
	if _, err := client.Dial(t.Context(), node.URL(), client.Options{}); !errors.Is(err, client.ErrConfig) {
		t.Fatalf("dial without a token source: %v", err)
	}
	if _, err := client.Dial(t.Context(), "https://x/v1/ws", client.Options{TokenSource: func(context.Context) (string, error) { return "", nil }}); !errors.Is(err, client.ErrConfig) {
		t.Fatalf("dial https: %v", err)
	}
}

// Subscribe and Unsubscribe answer with the node's ack or its errors, as
// typed errors.
func TestSubscribeErrors(t *testing.T) {
	for _, cd := range []codec.Codec{codec.JSON(), codec.Msgpack()} {
		t.Run(cd.Name(), func(t *testing.T) { subscribeErrors(t, cd) })
	}
}

func subscribeErrors(t *testing.T, cd codec.Codec) {
	env := nodetest.NewEnv(t)
	node := env.Start(t, "127.0.0.1:0")
	c := dial(t, env, node.URL(), client.Options{Codec: cd,
		TokenSource: func(context.Context) (string, error) {
			return env.Token(t, "limited", time.Hour, "book.*", "ticker.*"), nil
		}})
	ctx := t.Context()
	got, err := c.Subscribe(ctx, []string{"book.BTC-USD", "trade.BTC-USD", "book.BTC-USD"})
	var se *client.ServerError
	if !slices.Equal(got, []string{"book.BTC-USD"}) || !errors.Is(err, client.ErrForbidden) || !errors.As(err, &se) || se.Channel != "trade.BTC-USD" {
		t.Fatalf("subscribe: %v, %v", got, err)
	}
	if _, ok := c.State("trade.BTC-USD"); ok {
		t.Fatal("a refused channel is held")
	}
	if st, ok := c.State("book.BTC-USD"); !ok || st != client.StateResyncing {
		t.Fatalf("book.BTC-USD before its snapshot: %v %v", st, ok)
	}
	if _, err := c.Subscribe(ctx, []string{"book.BTC/USD"}); !errors.Is(err, client.ErrBadChannel) {
		t.Fatalf("bad name: %v", err)
	}
	if _, err := c.Subscribe(ctx, []string{"book.BTC-USD"}, client.Throttle(2*time.Minute)); !errors.Is(err, client.ErrConfig) {
		t.Fatalf("bad throttle: %v", err)
	}
	if err := c.Unsubscribe(ctx, []string{"book.BTC-USD", "trade.BTC-USD"}); err != nil {
		t.Fatalf("unsubscribe: %v", err)
	}
	if len(c.Channels()) != 0 {
		t.Fatalf("channels after unsubscribe: %v", c.Channels())
	}
	if rtt, err := c.Ping(ctx); err != nil || rtt <= 0 {
		t.Fatalf("ping: %v %v", rtt, err)
	}
	// Without NATS the node answers at once with unavailable and retry_ms.
	env.NATS.Shutdown()
	waitFor(t, 5*time.Second, "the node to lose NATS", func() bool { return !node.Src.Connected() })
	got, err = c.Subscribe(ctx, []string{"ticker.ETH-USD"})
	if len(got) != 0 || !errors.Is(err, client.ErrUnavailable) || !errors.As(err, &se) || se.RetryAfter <= 0 {
		t.Fatalf("subscribe without NATS: %v, %v", got, err)
	}
}

// A handler that blocks for a second stalls nothing: pings are answered
// meanwhile, the node never evicts the client, trades it had no room for
// are reported as one gap, and the book it gets afterwards is the
// publisher's.
func TestSlowHandlerAgainstNode(t *testing.T) {
	env := nodetest.NewEnv(t)
	node := env.Start(t, "127.0.0.1:0")
	m := env.NewMarket("BTC-USD", 6)
	rec := newRecorder(t)
	c := dial(t, env, node.URL(), client.Options{OnEvent: rec.handle, MaxPending: 50})
	subscribe(t, c, m.Channels()...)
	m.Run(t, 2*time.Millisecond)
	waitFor(t, 5*time.Second, "channels live", func() bool { return allLive(c, m.Channels()) })
	block := make(chan struct{})
	rec.mu.Lock()
	rec.block = block
	rec.mu.Unlock()
	for range 5 {
		time.Sleep(200 * time.Millisecond)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := c.Ping(ctx)
		cancel()
		if err != nil {
			t.Fatalf("ping while the handler is stuck: %v", err)
		}
	}
	rec.mu.Lock()
	rec.block = nil
	rec.mu.Unlock()
	close(block)
	// Delivery resumes: trades after the dropped ones reach the handler.
	waitFor(t, 5*time.Second, "a trade after the overflow", func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		gaps, tr := rec.gaps["trade.BTC-USD"], rec.trades["trade.BTC-USD"]
		return len(gaps) > 0 && len(tr) > 0 && tr[len(tr)-1] > gaps[len(gaps)-1].To
	})
	converge(t, env, node.URL(), c, m, "book.BTC-USD")
	waitLastTrade(t, rec, m, "trade.BTC-USD")
	st := c.Stats()
	if st.Dropped == 0 || st.Coalesced == 0 || st.Reconnects != 0 {
		t.Fatalf("stats %+v", st)
	}
	if n := rec.count(func(e client.Event) bool { return e.Type == client.EventGap && e.Gap.Reason == client.GapOverflow }); n == 0 {
		t.Fatal("no overflow gap reported")
	}
}

// Trades the node never had (a seq jump on the feed) reach the handler as
// the node's gap message: a node_gap event naming exactly those seqs,
// before the next trade; the chain stays intact.
func TestNodeGapMessage(t *testing.T) {
	env := nodetest.NewEnv(t)
	node := env.Start(t, "127.0.0.1:0")
	rec := newRecorder(t)
	c := dial(t, env, node.URL(), client.Options{OnEvent: rec.handle, Codec: codec.Msgpack()})
	subscribe(t, c, "trade.ETH-USD")
	ch := proto.Channel{Kind: proto.KindTrade, Symbol: "ETH-USD"}
	for _, seq := range []uint64{1, 2, 6, 7} {
		env.Publish(t, ch, proto.FeedMessage{Seq: seq, Type: proto.FeedUpdate,
			Data: &proto.Trade{Symbol: "ETH-USD", ID: int64(seq), Price: "3000", Size: "1", Side: proto.SideSell, TS: 1}})
	}
	env.Flush(t)
	waitFor(t, 5*time.Second, "trade 7", func() bool { return rec.tradeSeen("trade.ETH-USD", 7) })
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if got := rec.trades["trade.ETH-USD"]; !slices.Equal(got, []uint64{1, 2, 6, 7}) {
		t.Fatalf("trades %v", got)
	}
	if g := rec.gaps["trade.ETH-USD"]; len(g) != 1 || g[0] != (client.Gap{Reason: client.GapNode, From: 3, To: 5}) {
		t.Fatalf("gaps %+v", g)
	}
}
