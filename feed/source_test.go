package feed

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/tickgate/tickgate/internal/natstest"
	"github.com/tickgate/tickgate/proto"
)

func connectSource(t *testing.T, url string, cfg Config) *Source {
	t.Helper()
	cfg.URL = url
	if cfg.ReconnectWait == 0 {
		cfg.ReconnectWait = 50 * time.Millisecond
	}
	src, err := Connect(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(src.Close)
	return src
}

func publisher(t *testing.T, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func tradePayload(t *testing.T, seq uint64) []byte {
	t.Helper()
	return symbolTrade(t, "BTC-USD", seq)
}

// collector is a Handler that records seqs.
type collector struct {
	ch chan uint64
}

func newCollector() *collector { return &collector{ch: make(chan uint64, 1024)} }

func (c *collector) handle(_ proto.Channel, m *Message) { c.ch <- m.Seq }

func (c *collector) want(t *testing.T, seqs ...uint64) {
	t.Helper()
	for _, want := range seqs {
		select {
		case got := <-c.ch:
			if got != want {
				t.Fatalf("handler got seq %d, want %d", got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("handler did not get seq %d", want)
		}
	}
}

func (c *collector) none(t *testing.T) {
	t.Helper()
	select {
	case got := <-c.ch:
		t.Fatalf("handler got unexpected seq %d", got)
	case <-time.After(50 * time.Millisecond):
	}
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// numSubs returns how many subscriptions the server holds for subject,
// after a round trip on the source's connection.
func numSubs(t *testing.T, srv *server.Server, src *Source, subject string) int {
	t.Helper()
	if err := src.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	sz, err := srv.Subsz(&server.SubszOptions{Subscriptions: true, Test: subject})
	if err != nil {
		t.Fatal(err)
	}
	return int(sz.Total)
}

func TestSourceAcquireDelivers(t *testing.T) {
	srv := natstest.Run(t, natstest.RandomPort)
	src := connectSource(t, srv.ClientURL(), Config{SubjectPrefix: "md.test"})
	pub := publisher(t, srv.ClientURL())
	c := newCollector()
	if err := src.Acquire(ctxTimeout(t, 5*time.Second), tradeBTC, c.handle); err != nil {
		t.Fatal(err)
	}
	for seq := uint64(1); seq <= 50; seq++ {
		if err := pub.Publish("md.test.trade.BTC-USD", tradePayload(t, seq)); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.Publish("md.test.trade.ETH-USD", tradePayload(t, 99)); err != nil {
		t.Fatal(err)
	}
	for seq := uint64(1); seq <= 50; seq++ {
		c.want(t, seq)
	}
	c.none(t)
	if !src.Connected() {
		t.Fatal("not Connected")
	}
}

func TestSourceInterestCounting(t *testing.T) {
	srv := natstest.Run(t, natstest.RandomPort)
	src := connectSource(t, srv.ClientURL(), Config{})
	pub := publisher(t, srv.ClientURL())
	const subject = "md.trade.BTC-USD"
	c := newCollector()
	ctx := ctxTimeout(t, 5*time.Second)
	for range 2 {
		if err := src.Acquire(ctx, tradeBTC, c.handle); err != nil {
			t.Fatal(err)
		}
	}
	if got := numSubs(t, srv, src, subject); got != 1 {
		t.Fatalf("server subscriptions after 2 Acquires = %d, want 1", got)
	}
	src.Release(tradeBTC)
	if got := numSubs(t, srv, src, subject); got != 1 {
		t.Fatalf("server subscriptions after 1 Release = %d, want 1", got)
	}
	if err := pub.Publish(subject, tradePayload(t, 1)); err != nil {
		t.Fatal(err)
	}
	c.want(t, 1)
	rememberedOnly(t, src, tradeBTC)
	src.Release(tradeBTC)
	if got := numSubs(t, srv, src, subject); got != 0 {
		t.Fatalf("server subscriptions after 2 Releases = %d, want 0", got)
	}
	rememberedOnly(t, src)
	if n := src.nc.NumSubscriptions(); n != 0 {
		t.Fatalf("client subscriptions = %d, want 0", n)
	}
	src.Release(tradeBTC) // unmatched: no-op
	if err := pub.Publish(subject, tradePayload(t, 2)); err != nil {
		t.Fatal(err)
	}
	c.none(t)

	// Interest again after the last release subscribes again.
	if err := src.Acquire(ctx, tradeBTC, c.handle); err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(subject, tradePayload(t, 3)); err != nil {
		t.Fatal(err)
	}
	c.want(t, 3)
	rememberedOnly(t, src, tradeBTC)
}

// rememberedOnly fails t unless the dispatchers' look-ups by subscription
// (dispatcher.bySub) hold exactly the current subscriptions of chs, each
// mapped to its own route.
func rememberedOnly(t *testing.T, src *Source, chs ...proto.Channel) {
	t.Helper()
	src.mu.Lock()
	want := map[*nats.Subscription]*route{}
	for _, ch := range chs {
		in := src.subs[ch]
		if in == nil || in.sub == nil {
			src.mu.Unlock()
			t.Fatalf("%s is not subscribed", ch)
		}
		want[in.sub] = in.route
	}
	src.mu.Unlock()
	got := map[*nats.Subscription]*route{}
	for _, d := range src.disp {
		d.mu.Lock()
		maps.Copy(got, d.bySub)
		d.mu.Unlock()
	}
	if !maps.Equal(got, want) {
		t.Fatalf("the dispatchers remember %d subscriptions, want %d (%v)", len(got), len(want), chs)
	}
}

func TestSourceConcurrentAcquire(t *testing.T) {
	srv := natstest.Run(t, natstest.RandomPort)
	src := connectSource(t, srv.ClientURL(), Config{})
	ctx := ctxTimeout(t, 5*time.Second)
	c := newCollector()
	const n = 16
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() { errs <- src.Acquire(ctx, bookBTC, c.handle) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := numSubs(t, srv, src, "md.book.BTC-USD"); got != 1 {
		t.Fatalf("server subscriptions = %d, want 1", got)
	}
	for range n - 1 {
		src.Release(bookBTC)
	}
	if got := numSubs(t, srv, src, "md.book.BTC-USD"); got != 1 {
		t.Fatalf("server subscriptions with one interest left = %d, want 1", got)
	}
	src.Release(bookBTC)
	if got := numSubs(t, srv, src, "md.book.BTC-USD"); got != 0 {
		t.Fatalf("server subscriptions = %d, want 0", got)
	}
}

func TestSourceAcquireCanceled(t *testing.T) {
	srv := natstest.Run(t, natstest.RandomPort)
	src := connectSource(t, srv.ClientURL(), Config{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := src.Acquire(ctx, tickerBTC, newCollector().handle)
	if !errors.Is(err, ErrSubscribe) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Acquire with a canceled ctx = %v, want ErrSubscribe and context.Canceled", err)
	}
	if got := numSubs(t, srv, src, "md.ticker.BTC-USD"); got != 0 {
		t.Fatalf("server subscriptions = %d, want 0", got)
	}
	if err := src.Acquire(ctxTimeout(t, 5*time.Second), tickerBTC, newCollector().handle); err != nil {
		t.Fatalf("Acquire after a canceled one: %v", err)
	}
}

// TestSourceCanceledHoldLeavesTheNewRoute cancels a channel's first hold
// before its subscribe goroutine has run and takes a new hold at once. The
// new interest's goroutine may run first (the newest goroutine runs
// next): the old one must neither replace its route nor, failing, take the
// subject's only route with it, or every message of the new subscription
// finds no route and its holder gets nothing, for as long as it holds.
func TestSourceCanceledHoldLeavesTheNewRoute(t *testing.T) {
	for _, procs := range []int{1, 2} {
		t.Run(fmt.Sprintf("GOMAXPROCS=%d", procs), func(t *testing.T) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
			srv := natstest.Run(t, natstest.RandomPort)
			src := connectSource(t, srv.ClientURL(), Config{})
			waitFor(t, src.Connected)
			pub := publisher(t, srv.ClientURL())
			for i := range 10 {
				first, err := src.AcquireAsync(tradeBTC, newCollector().handle)
				if err != nil {
					t.Fatal(err)
				}
				first.Cancel()
				c := newCollector()
				p, err := src.AcquireAsync(tradeBTC, c.handle)
				if err != nil {
					t.Fatal(err)
				}
				<-p.Done()
				if err := p.Err(); err != nil {
					t.Fatalf("round %d: the new hold: %v", i, err)
				}
				<-first.Done() // the canceled hold's goroutine is through
				// It failed (canceled before the server confirmed it), or,
				// with two Ps, it was confirmed before the cancel and was
				// given back as a release.
				if err := first.Err(); err != nil && !errors.Is(err, ErrSubscribe) {
					t.Fatalf("round %d: the canceled hold ended with %v, want ErrSubscribe or nil", i, err)
				}
				if err := pub.Publish("md.trade.BTC-USD", tradePayload(t, uint64(i+1))); err != nil {
					t.Fatal(err)
				}
				if err := pub.Flush(); err != nil {
					t.Fatal(err)
				}
				select {
				case <-c.ch:
				case <-time.After(2 * time.Second):
					t.Fatalf("round %d: the confirmed hold got nothing (a route for its subject: %v)", i, src.routes.get("md.trade.BTC-USD") != nil)
				}
				p.Cancel()
				waitFor(t, func() bool { return numSubs(t, srv, src, "md.trade.BTC-USD") == 0 })
			}
		})
	}
}

// TestSourceAcquireUnconfirmed runs the source through a proxy that stops
// forwarding, so that the connection stays up and no subscription is ever
// confirmed: a half-open path to NATS.
func TestSourceAcquireUnconfirmed(t *testing.T) {
	srv := natstest.Run(t, natstest.RandomPort)
	proxy := natstest.NewProxy(t, srv.Addr().String())
	t.Run("flush timeout", func(t *testing.T) {
		src := connectSource(t, proxy.URL(), Config{FlushTimeout: 50 * time.Millisecond})
		waitFor(t, src.Connected)
		proxy.Freeze()
		defer proxy.Thaw()
		err := src.Acquire(context.Background(), tradeBTC, newCollector().handle)
		if !errors.Is(err, ErrSubscribe) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Acquire = %v, want ErrSubscribe and DeadlineExceeded", err)
		}
		src.mu.Lock()
		defer src.mu.Unlock()
		if len(src.subs) != 0 || src.nc.NumSubscriptions() != 0 {
			t.Fatalf("rolled back Acquire left %d interests, %d subscriptions", len(src.subs), src.nc.NumSubscriptions())
		}
	})
	t.Run("holds share one confirmation", func(t *testing.T) {
		src := connectSource(t, proxy.URL(), Config{FlushTimeout: time.Minute})
		waitFor(t, src.Connected)
		proxy.Freeze()
		first, err := src.AcquireAsync(tradeBTC, newCollector().handle)
		if err != nil {
			t.Fatal(err)
		}
		// A waiter whose ctx ends gives up alone.
		err = src.Acquire(ctxTimeout(t, 30*time.Millisecond), tradeBTC, newCollector().handle)
		if !errors.Is(err, ErrSubscribe) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("waiter Acquire = %v, want ErrSubscribe and DeadlineExceeded", err)
		}
		second, err := src.AcquireAsync(tradeBTC, newCollector().handle)
		if err != nil {
			t.Fatal(err)
		}
		if !errors.Is(first.Err(), ErrPending) {
			t.Fatalf("Err before the confirmation = %v, want ErrPending", first.Err())
		}
		first.Cancel()
		src.mu.Lock()
		refs := src.subs[tradeBTC].refs
		src.mu.Unlock()
		if refs != 1 {
			t.Fatalf("refs after one of two holds canceled = %d, want 1", refs)
		}
		proxy.Thaw()
		select {
		case <-second.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("the remaining hold was not confirmed after the thaw")
		}
		if err := second.Err(); err != nil {
			t.Fatalf("remaining hold: %v", err)
		}
		if got := numSubs(t, srv, src, "md.trade.BTC-USD"); got != 1 {
			t.Fatalf("server subscriptions = %d, want 1", got)
		}
		second.Cancel() // after a success: a Release
		if got := numSubs(t, srv, src, "md.trade.BTC-USD"); got != 0 {
			t.Fatalf("server subscriptions after the last hold let go = %d, want 0", got)
		}
	})
	t.Run("a hold after every hold was canceled", func(t *testing.T) {
		// The first interest's wait is aborted and it will fail; a new
		// hold must not share that fate while NATS is fine.
		src := connectSource(t, proxy.URL(), Config{FlushTimeout: time.Minute})
		waitFor(t, src.Connected)
		for i := range 5 {
			proxy.Freeze()
			p, err := src.AcquireAsync(bookBTC, newCollector().handle)
			if err != nil {
				t.Fatal(err)
			}
			p.Cancel()
			if n := src.Channels(); n != 0 {
				t.Fatalf("Channels with every hold canceled = %d, want 0", n)
			}
			q, err := src.AcquireAsync(bookBTC, newCollector().handle)
			if err != nil {
				t.Fatal(err)
			}
			proxy.Thaw()
			select {
			case <-q.Done():
			case <-time.After(5 * time.Second):
				t.Fatal("the new hold never resolved")
			}
			if err := q.Err(); err != nil {
				t.Fatalf("round %d: the new hold failed with NATS up: %v", i, err)
			}
			// The canceled interest's subscription goes once its aborted
			// wait returns, which it does on its own goroutine after the
			// thaw: there may be two for a moment, then one.
			waitFor(t, func() bool { return numSubs(t, srv, src, "md.book.BTC-USD") == 1 })
			q.Cancel()
			waitFor(t, func() bool { return numSubs(t, srv, src, "md.book.BTC-USD") == 0 })
		}
	})
	t.Run("every hold canceled before the confirmation", func(t *testing.T) {
		src := connectSource(t, proxy.URL(), Config{FlushTimeout: time.Minute})
		waitFor(t, src.Connected)
		proxy.Freeze()
		p, err := src.AcquireAsync(bookBTC, newCollector().handle)
		if err != nil {
			t.Fatal(err)
		}
		p.Cancel()
		proxy.Thaw()
		select {
		case <-p.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("the abandoned subscription never resolved")
		}
		if err := p.Err(); !errors.Is(err, ErrSubscribe) {
			t.Fatalf("abandoned hold's Err = %v, want ErrSubscribe", err)
		}
		if got := numSubs(t, srv, src, "md.book.BTC-USD"); got != 0 {
			t.Fatalf("server subscriptions after every hold was canceled = %d, want 0", got)
		}
		src.mu.Lock()
		defer src.mu.Unlock()
		if len(src.subs) != 0 {
			t.Fatalf("%d interests left", len(src.subs))
		}
	})
}

// TestSourceUnavailable: while the NATS connection is down, a channel the
// node does not hold yet is refused at once, and one it holds is not.
func TestSourceUnavailable(t *testing.T) {
	srv := natstest.Run(t, natstest.RandomPort)
	src := connectSource(t, srv.ClientURL(), Config{ReconnectWait: time.Minute})
	if err := src.Acquire(ctxTimeout(t, 5*time.Second), tradeBTC, newCollector().handle); err != nil {
		t.Fatal(err)
	}
	srv.Shutdown()
	waitFor(t, func() bool { return !src.Connected() })
	start := time.Now()
	_, err := src.AcquireAsync(bookBTC, newCollector().handle)
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("AcquireAsync while disconnected = %v, want ErrUnavailable", err)
	}
	if err := src.Acquire(context.Background(), tickerBTC, newCollector().handle); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Acquire while disconnected = %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("refusals took %v; they must not wait for NATS", d)
	}
	p, err := src.AcquireAsync(tradeBTC, newCollector().handle)
	if err != nil {
		t.Fatalf("a held channel while disconnected: %v", err)
	}
	select {
	case <-p.Done():
	default:
		t.Fatal("a held channel's hold is not done at once")
	}
	p.Cancel()
}

// TestSourcePendingLimits: a channel whose handler cannot keep up loses
// messages beyond its pending limits, and Dropped counts them, also after
// the channel was released. What arrives while the handler runs waits in
// the dispatcher's transit queue; the limits apply as the dispatcher takes
// it, so at most the limit, the message in hand and the one decoded ahead
// of it are delivered.
func TestSourcePendingLimits(t *testing.T) {
	srv := natstest.Run(t, natstest.RandomPort)
	src := connectSource(t, srv.ClientURL(), Config{PendingMessages: 10, PendingBytes: 1 << 20})
	pub := publisher(t, srv.ClientURL())
	block := make(chan struct{})
	var got []uint64
	var mu sync.Mutex
	h := func(_ proto.Channel, m *Message) {
		<-block
		mu.Lock()
		got = append(got, m.Seq)
		mu.Unlock()
	}
	if err := src.Acquire(ctxTimeout(t, 5*time.Second), tradeBTC, h); err != nil {
		t.Fatal(err)
	}
	const sent = 100
	for seq := uint64(1); seq <= sent; seq++ {
		if err := pub.Publish("md.trade.BTC-USD", tradePayload(t, seq)); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.Flush(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return src.received() >= sent })
	close(block)
	waitFor(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return uint64(len(got))+src.Dropped() == sent
	})
	dropped := src.Dropped()
	src.Release(tradeBTC)
	if after := src.Dropped(); after != dropped {
		t.Fatalf("Dropped after the release = %d, want %d (kept)", after, dropped)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) > 10+2 {
		t.Fatalf("%d delivered, want at most the limit (10) and the two in hand", len(got))
	}
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			t.Fatalf("delivered seqs out of order: %v", got)
		}
	}
	t.Logf("%d delivered, %d dropped by the pending limits", len(got), dropped)
}

func TestSourceDecodeErrors(t *testing.T) {
	srv := natstest.Run(t, natstest.RandomPort)
	src := connectSource(t, srv.ClientURL(), Config{})
	pub := publisher(t, srv.ClientURL())
	c := newCollector()
	if err := src.Acquire(ctxTimeout(t, 5*time.Second), tradeBTC, c.handle); err != nil {
		t.Fatal(err)
	}
	for _, p := range [][]byte{[]byte("{not json"), {0xc1}, []byte(`{"seq":0,"type":"update","data":{}}`), tradePayload(t, 4)} {
		if err := pub.Publish("md.trade.BTC-USD", p); err != nil {
			t.Fatal(err)
		}
	}
	c.want(t, 4)
	c.none(t)
	if got := src.DecodeErrors(); got != 3 {
		t.Fatalf("DecodeErrors = %d, want 3", got)
	}
}

func TestSourceRetryOnFailedConnect(t *testing.T) {
	addr := freeAddr(t)
	src := connectSource(t, "nats://"+addr, Config{})
	if src.Connected() {
		t.Fatal("Connected before the server runs")
	}
	_, portStr, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portStr)
	srv := natstest.Run(t, port)
	waitFor(t, src.Connected) // until then a new channel is refused (ErrUnavailable)
	c := newCollector()
	if err := src.Acquire(ctxTimeout(t, 10*time.Second), tradeBTC, c.handle); err != nil {
		t.Fatal(err)
	}
	if !src.Connected() {
		t.Fatal("not Connected after Acquire")
	}
	pub := publisher(t, srv.ClientURL())
	if err := pub.Publish("md.trade.BTC-USD", tradePayload(t, 1)); err != nil {
		t.Fatal(err)
	}
	c.want(t, 1)
}

func TestSourceClosed(t *testing.T) {
	srv := natstest.Run(t, natstest.RandomPort)
	src := connectSource(t, srv.ClientURL(), Config{})
	ctx := ctxTimeout(t, 5*time.Second)
	if err := src.Acquire(ctx, tradeBTC, newCollector().handle); err != nil {
		t.Fatal(err)
	}
	src.Close()
	src.Close()
	src.Release(tradeBTC)
	if err := src.Acquire(ctx, tradeBTC, newCollector().handle); !errors.Is(err, ErrClosed) {
		t.Fatalf("Acquire after Close = %v, want ErrClosed", err)
	}
	if src.Connected() {
		t.Fatal("Connected after Close")
	}
}

func TestConfigValidate(t *testing.T) {
	tests := map[string]struct {
		cfg     Config
		wantErr bool
	}{
		"zero":                {Config{}, false},
		"dotted prefix":       {Config{SubjectPrefix: "prod.md"}, false},
		"wildcard prefix":     {Config{SubjectPrefix: "md.*"}, true},
		"full wildcard":       {Config{SubjectPrefix: ">"}, true},
		"empty token":         {Config{SubjectPrefix: "md..x"}, true},
		"trailing dot":        {Config{SubjectPrefix: "md."}, true},
		"space":               {Config{SubjectPrefix: "m d"}, true},
		"negative flush":      {Config{FlushTimeout: -1}, true},
		"negative reconnect":  {Config{ReconnectWait: -1}, true},
		"no pending messages": {Config{PendingMessages: -1}, true},
		"tiny pending bytes":  {Config{PendingBytes: 100}, true},
		"explicit everything": {Config{URL: "nats://h:1", SubjectPrefix: "x", Name: "n", FlushTimeout: time.Second}, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if (err != nil) != tc.wantErr || (err != nil && !errors.Is(err, ErrBadConfig)) {
				t.Fatalf("Validate = %v, wantErr %v", err, tc.wantErr)
			}
			if tc.wantErr {
				if _, err := Connect(tc.cfg); !errors.Is(err, ErrBadConfig) {
					t.Fatalf("Connect = %v, want ErrBadConfig", err)
				}
			}
		})
	}
}

// freeAddr returns a local address nothing listens on (for now).
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(time.Millisecond)
	}
}

// A message handed over while more of its channel wait to be handed over
// is marked Behind and More; the last of them is neither. Backlogged reads the node's
// socket: nothing waits unread once the client has read everything.
func TestSourceMarksBehind(t *testing.T) {
	srv := natstest.Run(t, natstest.RandomPort)
	src := connectSource(t, srv.ClientURL(), Config{SubjectPrefix: "md.test"})
	pub := publisher(t, srv.ClientURL())
	release := make(chan struct{})
	got := make(chan *Message, 10)
	handle := func(_ proto.Channel, m *Message) {
		if m.Seq == 1 {
			<-release // the others queue behind it meanwhile
		}
		got <- m
	}
	if err := src.Acquire(ctxTimeout(t, 5*time.Second), tradeBTC, handle); err != nil {
		t.Fatal(err)
	}
	for seq := uint64(1); seq <= 5; seq++ {
		if err := pub.Publish("md.test.trade.BTC-USD", tradePayload(t, seq)); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.Flush(); err != nil {
		t.Fatal(err)
	}
	// All five reach the client's queue before the first is let go.
	deadline := time.Now().Add(5 * time.Second)
	for src.received() < 5 {
		if time.Now().After(deadline) {
			t.Fatalf("%d messages received, want 5", src.received())
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	for seq := uint64(1); seq <= 5; seq++ {
		m := <-got
		if m.Seq != seq {
			t.Fatalf("message %d arrived as number %d", m.Seq, seq)
		}
		// The first was looked at when it arrived, maybe before the
		// others did; each later one when it was taken from the queue.
		if want := seq < 5; seq > 1 && (m.Behind != want || m.More != want) {
			t.Fatalf("message %d: Behind %v and More %v, want %v", m.Seq, m.Behind, m.More, want)
		}
	}
	if src.Backlogged() {
		t.Fatal("Backlogged with nothing on its way")
	}
}

// TestSourceFloodSparesOtherChannels: a flood on one channel, arriving
// while that channel's handler runs long (a fan-out to many connections),
// costs the other channels of its dispatcher none of their messages: the
// flood is cut to its channel's pending limit, counted in Dropped, and the
// others' messages are all handed over, in order. The flood is four times
// what the dispatcher's transit queue holds. On one core the NATS read
// loop, the handler's dispatcher and the NATS server of the test take
// turns on it; on two they run at once. The long call either waits
// (parked) or keeps its core busy (a fan-out's writes), which on one core
// leaves the read loop only what the scheduler's preemption gives it.
func TestSourceFloodSparesOtherChannels(t *testing.T) {
	for _, procs := range []int{1, 2} {
		for _, spin := range []bool{false, true} {
			t.Run(fmt.Sprintf("GOMAXPROCS=%d/busy=%v", procs, spin), func(t *testing.T) {
				defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
				testFloodSparesOthers(t, spin)
			})
		}
	}
}

func testFloodSparesOthers(t *testing.T, spin bool) {
	srv := natstest.Run(t, natstest.RandomPort)
	const limit = 100
	src := connectSource(t, srv.ClientURL(), Config{PendingMessages: limit})
	pub := publisher(t, srv.ClientURL())
	busy, release := make(chan struct{}), make(chan struct{})
	var flooded atomic.Int64
	flood := func(_ proto.Channel, m *Message) {
		if m.Seq == 1 {
			close(busy)
			// The handler runs long while the flood arrives.
			for spinning := spin; spinning; {
				select {
				case <-release:
					spinning = false
				default:
				}
			}
			<-release
		}
		flooded.Add(1)
	}
	if err := src.Acquire(ctxTimeout(t, 5*time.Second), tradeBTC, flood); err != nil {
		t.Fatal(err)
	}
	// The other channel on the flooded one's dispatcher: channels go to
	// the dispatchers in turn.
	for i := 1; i < len(src.disp); i++ {
		filler := proto.Channel{Kind: proto.KindTrade, Symbol: "F" + strconv.Itoa(i) + "-USD"}
		if err := src.Acquire(ctxTimeout(t, 5*time.Second), filler, func(proto.Channel, *Message) {}); err != nil {
			t.Fatal(err)
		}
	}
	eth := proto.Channel{Kind: proto.KindTrade, Symbol: "ETH-USD"}
	other := newCollector()
	if err := src.Acquire(ctxTimeout(t, 5*time.Second), eth, other.handle); err != nil {
		t.Fatal(err)
	}
	btcSubject, ethSubject := tradeBTC.Subject(src.cfg.SubjectPrefix), eth.Subject(src.cfg.SubjectPrefix)
	if src.routes.get(btcSubject).d != src.routes.get(ethSubject).d {
		t.Fatal("the two channels are on different dispatchers")
	}
	if err := pub.Publish(btcSubject, tradePayload(t, 1)); err != nil {
		t.Fatal(err)
	}
	<-busy
	const floodSize, every = 4 * transitSlots, 1000
	var sent uint64 = 1
	var others []uint64
	for seq := uint64(2); seq <= floodSize; seq++ {
		if err := pub.Publish(btcSubject, tradePayload(t, seq)); err != nil {
			t.Fatal(err)
		}
		sent++
		if seq%every == 0 {
			k := uint64(len(others) + 1)
			if err := pub.Publish(ethSubject, symbolTrade(t, "ETH-USD", k)); err != nil {
				t.Fatal(err)
			}
			others, sent = append(others, k), sent+1
		}
	}
	if err := pub.Flush(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return src.received() >= sent })
	close(release)
	other.want(t, others...)
	waitFor(t, func() bool { return uint64(flooded.Load())+src.Dropped() == floodSize })
	if got := flooded.Load(); got > limit+2 {
		t.Fatalf("%d of the flood handed over, want at most its limit (%d) and the two in hand", got, limit)
	}
}
