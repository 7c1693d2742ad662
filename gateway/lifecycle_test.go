package gateway

import (
	"context"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/lxzan/gws"

	"github.com/tickgate/tickgate/codec"
	"github.com/tickgate/tickgate/feed"
	"github.com/tickgate/tickgate/proto"
)

// A client that only listens stays connected on a busy channel: the server
// pings every heartbeat interval and the client's pongs renew its deadline.
func TestListenOnlyClientStaysOnBusyChannel(t *testing.T) {
	e := newTestEnv(t, func(c *Config) {
		c.HeartbeatInterval = 100 * time.Millisecond
		c.IdleTimeout = 400 * time.Millisecond
	})
	c := e.connect(t, "json", e.token(t, "quiet", time.Hour, ">"))
	c.send(t, proto.Command{Op: proto.OpSubscribe, Channels: []string{"trade.BTC-USD"}})
	c.expect(t, proto.TypeSubscribed)
	stop := time.After(1500 * time.Millisecond)
	for seq := uint64(1); ; seq++ {
		select {
		case <-stop:
			c.send(t, proto.Command{Op: proto.OpPing, ID: ptr[int64](1)})
			for w := c.next(t); w.Type != proto.TypePong; w = c.next(t) {
			}
			return
		case err := <-c.closed:
			t.Fatalf("listen-only client closed: %v", err)
		case <-time.After(20 * time.Millisecond):
			e.publish(t, "trade.BTC-USD", seq, proto.FeedUpdate, &proto.Trade{Symbol: "BTC-USD", ID: int64(seq), Price: "1", Size: "1", Side: "buy", TS: 1})
		}
	}
}

// deafClient never answers pings.
type deafClient struct{ testClient }

func (*deafClient) OnPing(*gws.Conn, []byte) {}

// A client that stops answering is closed after the idle timeout, and an
// idle connection gets heartbeat messages.
func TestHeartbeatAndIdleTimeout(t *testing.T) {
	e := newTestEnv(t, func(c *Config) {
		c.HeartbeatInterval = 100 * time.Millisecond
		c.IdleTimeout = 500 * time.Millisecond
	})
	tok := e.token(t, "deaf", time.Hour, ">")
	d := &deafClient{testClient{t: t, msgs: make(chan wire, 64), closed: make(chan error, 1), codec: codec.JSON()}}
	ws, _, err := gws.NewClient(d, &gws.ClientOption{
		Addr: e.url(), TlsConfig: e.cert.ClientConfig(),
		RequestHeader: http.Header{"Authorization": {"Bearer " + tok}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ws.NetConn().Close() })
	go ws.ReadLoop()
	start := time.Now()
	sawHeartbeat := false
	for {
		select {
		case w := <-d.msgs:
			if w.Type == proto.TypeHeartbeat {
				sawHeartbeat = w.TS > 0
			}
			continue
		case <-d.closed:
		case <-time.After(5 * time.Second):
			t.Fatal("a client that never answers pings was not closed")
		}
		break
	}
	if took := time.Since(start); took < 400*time.Millisecond {
		t.Fatalf("closed after %v, before the idle timeout", took)
	}
	if !sawHeartbeat {
		t.Fatal("no heartbeat message on an idle connection")
	}
}

// Drain: handshakes get 503 draining, every client gets a reconnect notice
// and then 1001, spread over the window.
func TestDrain(t *testing.T) {
	e := newTestEnv(t)
	tok := e.token(t, "drain", time.Hour, ">")
	clients := []*testClient{e.connect(t, "json", tok), e.connect(t, "msgpack", tok), e.connect(t, "json", tok)}
	done := make(chan error, 1)
	go func() { done <- e.srv.Drain(context.Background(), 300*time.Millisecond) }()
	for _, c := range clients {
		w := c.expect(t, proto.TypeReconnect)
		if w.Reason != "draining" || w.WithinMS != 300 {
			t.Fatalf("notice %s", w.raw)
		}
	}
	if _, resp, err := e.dial(t, dialOptions{header: http.Header{"Authorization": {"Bearer " + tok}}}); err == nil || resp == nil || resp.StatusCode != 503 {
		t.Fatalf("handshake while draining: %v %s", err, readBody(resp))
	}
	for _, c := range clients {
		if code, _ := c.waitClose(t, 2*time.Second); code != 1001 {
			t.Fatalf("close code %d, want 1001", code)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !e.srv.Draining() || e.srv.Connections() != 0 {
		t.Fatal("drain left connections")
	}
}

// Resume from the seq of a periodic book snapshot the node absorbed: the
// replay's prev chain starts at the client's seq.
func TestResumeFromAbsorbedSnapshot(t *testing.T) {
	s := hubFixture(t)
	ch := proto.Channel{Kind: proto.KindBook, Symbol: "BTC-USD"}
	holder := s.bareConn(codec.JSON())
	s.joinFor(t, holder, ch, joinOptions{snapshot: true})
	book := func(seq uint64, snapshot bool, bids ...proto.Level) *feed.Message {
		b := &proto.Book{Bids: bids, Asks: []proto.Level{{"101", "1"}}}
		if snapshot {
			b.Symbol = "BTC-USD"
		}
		return &feed.Message{Seq: seq, Snapshot: snapshot, Data: b}
	}
	s.hub.onFeed(ch, book(1, true, proto.Level{"100", "1"}))
	s.hub.onFeed(ch, book(2, false, proto.Level{"99", "2"}))
	s.hub.onFeed(ch, book(3, true, proto.Level{"100", "1"}, proto.Level{"99", "2"})) // unchanged: absorbed
	s.hub.onFeed(ch, book(4, false, proto.Level{"98", "3"}))
	for _, since := range []uint64{2, 3} {
		c := s.bareConn(codec.JSON())
		sub := s.joinFor(t, c, ch, joinOptions{since: &since})
		if sub.last != 4 {
			t.Fatalf("since %d: did not resume (last %d)", since, sub.last)
		}
		q := queued(c)
		var w wire
		if len(q) != 1 || codec.DecodeMessage(codec.JSON(), q[0], &w) != nil || w.Seq != 4 || *w.Prev != since {
			t.Fatalf("since %d: replay %q", since, q)
		}
	}
}

// A client that stops reading is evicted with 4008 within about the
// slow-consumer timeout, long before kernel buffers would fill, while a
// healthy client beside it keeps every trade.
func TestStalledReaderEvicted(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.LagTimeout = 400 * time.Millisecond })
	tok := e.token(t, "stall", time.Hour, ">")
	healthy := e.connect(t, "json", tok)
	healthy.send(t, proto.Command{Op: proto.OpSubscribe, Channels: []string{"trade.BTC-USD"}})
	healthy.expect(t, proto.TypeSubscribed)

	// The stalled client: a real handshake, one subscribe, then no reads.
	st := &testClient{t: t, msgs: make(chan wire, 4096), closed: make(chan error, 1), codec: codec.JSON()}
	ws, _, err := gws.NewClient(st, &gws.ClientOption{Addr: e.url(), TlsConfig: e.cert.ClientConfig(),
		RequestHeader: http.Header{"Authorization": {"Bearer " + tok}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ws.NetConn().Close() })
	if err := ws.WriteString(`{"op":"subscribe","channels":["trade.BTC-USD"]}`); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	var seq uint64
	for e.srv.metrics.evictionCount(evictLagTimeout) == 0 {
		if time.Since(start) > 5*time.Second {
			t.Fatal("stalled reader not evicted within 5s")
		}
		seq++
		e.publish(t, "trade.BTC-USD", seq, proto.FeedUpdate, &proto.Trade{Symbol: "BTC-USD", ID: int64(seq), Price: "1", Size: "1", Side: "buy", TS: 1})
		time.Sleep(10 * time.Millisecond)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("evicted after %v, timeout 400ms", took)
	}
	go ws.ReadLoop() // now read: what was sent, then the close frame
	if code, reason := st.waitClose(t, 5*time.Second); code != 4008 {
		t.Fatalf("close %d %q, want 4008", code, reason)
	}
	e.flush(t)
	last := uint64(0)
	for last < seq {
		w := healthy.expect(t, proto.TypeUpdate)
		if w.Seq != last+1 {
			t.Fatalf("healthy client: seq %d after %d", w.Seq, last)
		}
		last = w.Seq
	}
}

// A Shutdown that comes before Serve (a signal at start-up, a test that
// fails before its node listens) makes Serve return at once: it used to
// find no listener to stop, and Serve then served on for ever.
func TestServeAfterShutdownReturns(t *testing.T) {
	s := hubFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	select {
	case err := <-served:
		if !errors.Is(err, http.ErrServerClosed) {
			t.Fatalf("Serve after Shutdown: %v, want http.ErrServerClosed", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Serve after Shutdown did not return")
	}
	if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		c.Close()
		t.Fatal("the listener is still open after Serve returned")
	}
}
