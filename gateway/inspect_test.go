package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/tickgate/tickgate/codec"
	"github.com/tickgate/tickgate/feed"
	"github.com/tickgate/tickgate/internal/booktest"
	"github.com/tickgate/tickgate/proto"
)

func tickerData(i int) *proto.Ticker {
	return &proto.Ticker{Symbol: "BTC-USD", Bid: "1", BidSize: "1", Ask: "2", AskSize: "1", Last: "1.5", Volume: fmt.Sprint(i), TS: time.Now().UnixNano()}
}

// welcomed is a connected test client with what its welcome said.
type welcomed struct {
	c       *testClient
	session string
	exp     int64
}

// connectWelcome is connect, keeping the welcome.
func (e *testEnv) connectWelcome(t *testing.T, codecName, token string) welcomed {
	t.Helper()
	sp := proto.SubprotocolJSON
	if codecName == "msgpack" {
		sp = proto.SubprotocolMsgpack
	}
	c, resp, err := e.dial(t, dialOptions{subprotocols: []string{sp}, header: http.Header{"Authorization": {"Bearer " + token}}})
	if err != nil {
		t.Fatalf("dial: %v (%s)", err, readBody(resp))
	}
	w := c.expect(t, proto.TypeWelcome)
	return welcomed{c: c, session: w.Session, exp: w.Exp}
}

// listed returns the connection with session id from l.
func listed(t *testing.T, l ConnectionList, id string) ConnectionInfo {
	t.Helper()
	for _, c := range l.Connections {
		if c.ID == id {
			return c
		}
	}
	t.Fatalf("session %s not listed in %+v", id, l)
	return ConnectionInfo{}
}

// TestListConnections: real clients over TLS, listed with every filter;
// each field is what the client saw (session, codec, exp) or did
// (subscriptions, what it was sent, the pong to the progress ping).
func TestListConnections(t *testing.T) {
	e := newTestEnv(t)
	aliceTok := e.token(t, "alice", time.Hour, ">")
	a1 := e.connectWelcome(t, "json", aliceTok)
	a2 := e.connectWelcome(t, "msgpack", aliceTok)
	b := e.connectWelcome(t, "json", e.token(t, "bob", 2*time.Hour, ">"))
	a1.c.send(t, proto.Command{Op: "subscribe", ID: ptr[int64](1), Channels: []string{"ticker.BTC-USD", "trade.BTC-USD"}})
	a1.c.expect(t, proto.TypeSubscribed)
	b.c.send(t, proto.Command{Op: "subscribe", ID: ptr[int64](1), Channels: []string{"ticker.BTC-USD"}})
	b.c.expect(t, proto.TypeSubscribed)
	for i := 1; i <= 5; i++ {
		e.publish(t, "ticker.BTC-USD", uint64(i), proto.FeedUpdate, tickerData(i))
	}
	e.flush(t)
	got := 0
	for got < 5 {
		if w := a1.c.next(t); w.Channel == "ticker.BTC-USD" {
			got = int(w.Seq)
		}
	}

	all := e.srv.ListConnections(ConnectionFilter{})
	if all.Total != 3 || len(all.Connections) != 3 || all.Node != "gw-test" {
		t.Fatalf("all: %+v", all)
	}
	for i := 1; i < len(all.Connections); i++ {
		if all.Connections[i-1].ConnectedAt > all.Connections[i].ConnectedAt {
			t.Fatalf("not oldest first: %+v", all.Connections)
		}
	}
	// Everything the client sent by now was answered: wait for the pong to
	// the progress ping that followed the data.
	var ci ConnectionInfo
	waitFor(t, "a1's progress ping answered", func() bool {
		ci = listed(t, e.srv.ListConnections(ConnectionFilter{}), a1.session)
		return ci.LastPongRTTMS != nil && ci.Pending == 0
	})
	if ci.Sub != "alice" || ci.Codec != "json" || ci.Exp != a1.exp ||
		!slices.Equal(ci.Subscriptions, []string{"ticker.BTC-USD", "trade.BTC-USD"}) {
		t.Fatalf("a1: %+v", ci)
	}
	// welcome, ack, five tickers (or fewer, folded), at least
	if ci.MessagesSent < 3 || ci.BytesSent < 100 || *ci.LastPongRTTMS <= 0 || *ci.LastPongRTTMS > 5000 || ci.LagMS != 0 {
		t.Fatalf("a1 counters: %+v rtt %v", ci, *ci.LastPongRTTMS)
	}
	if host, _, ok := cut(ci.Remote); !ok || host != "127.0.0.1" {
		t.Fatalf("remote %q", ci.Remote)
	}
	if c := listed(t, all, a2.session); c.Codec != "msgpack" || len(c.Subscriptions) != 0 || c.Subscriptions == nil {
		t.Fatalf("a2: %+v", c)
	}

	ids := func(l ConnectionList) []string {
		var out []string
		for _, c := range l.Connections {
			out = append(out, c.ID)
		}
		slices.Sort(out)
		return out
	}
	sorted := func(s ...string) []string { slices.Sort(s); return s }
	tests := []struct {
		name  string
		f     ConnectionFilter
		want  []string
		total int
	}{
		{name: "sub", f: ConnectionFilter{Sub: "alice"}, want: sorted(a1.session, a2.session), total: 2},
		{name: "unknown sub", f: ConnectionFilter{Sub: "carol"}, want: nil, total: 0},
		{name: "channel", f: ConnectionFilter{Channel: "ticker.BTC-USD"}, want: sorted(a1.session, b.session), total: 2},
		{name: "channel and sub", f: ConnectionFilter{Channel: "ticker.BTC-USD", Sub: "bob"}, want: []string{b.session}, total: 1},
		{name: "channel nobody holds", f: ConnectionFilter{Channel: "book.ETH-USD"}, want: nil, total: 0},
		{name: "ip", f: ConnectionFilter{IP: netip.MustParsePrefix("127.0.0.1/32")}, want: sorted(a1.session, a2.session, b.session), total: 3},
		{name: "ip prefix", f: ConnectionFilter{IP: netip.MustParsePrefix("127.0.0.0/8")}, want: sorted(a1.session, a2.session, b.session), total: 3},
		{name: "other ip", f: ConnectionFilter{IP: netip.MustParsePrefix("10.0.0.0/8")}, want: nil, total: 0},
		{name: "limit", f: ConnectionFilter{Limit: 1}, want: []string{all.Connections[0].ID}, total: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.f.Validate(); err != nil {
				t.Fatal(err)
			}
			l := e.srv.ListConnections(tt.f)
			if !slices.Equal(ids(l), tt.want) || l.Total != tt.total || l.Connections == nil {
				t.Fatalf("got %v (total %d), want %v (total %d)", ids(l), l.Total, tt.want, tt.total)
			}
		})
	}

	// Unsubscribing shows at once; closing removes the connection.
	a1.c.send(t, proto.Command{Op: "unsubscribe", ID: ptr[int64](2), Channels: []string{"trade.BTC-USD"}})
	a1.c.expect(t, proto.TypeUnsubscribed)
	if c := listed(t, e.srv.ListConnections(ConnectionFilter{Sub: "alice"}), a1.session); !slices.Equal(c.Subscriptions, []string{"ticker.BTC-USD"}) {
		t.Fatalf("after unsubscribe: %v", c.Subscriptions)
	}
	_ = b.c.ws.WriteClose(1000, nil)
	waitFor(t, "bob's connection gone", func() bool {
		return e.srv.ListConnections(ConnectionFilter{Sub: "bob"}).Total == 0
	})
}

func cut(hostport string) (string, string, bool) {
	ap, err := netip.ParseAddrPort(hostport)
	if err != nil {
		return "", "", false
	}
	return ap.Addr().String(), fmt.Sprint(ap.Port()), true
}

func TestConnectionFilterValidate(t *testing.T) {
	tests := map[string]struct {
		f  ConnectionFilter
		ok bool
	}{
		"zero":              {f: ConnectionFilter{}, ok: true},
		"max limit":         {f: ConnectionFilter{Limit: MaxListLimit}, ok: true},
		"limit over":        {f: ConnectionFilter{Limit: MaxListLimit + 1}},
		"negative limit":    {f: ConnectionFilter{Limit: -1}},
		"channel":           {f: ConnectionFilter{Channel: "book.ETH-USD"}, ok: true},
		"bad channel":       {f: ConnectionFilter{Channel: "book"}},
		"unknown kind":      {f: ConnectionFilter{Channel: "candle.ETH-USD"}},
		"wildcard":          {f: ConnectionFilter{Channel: "ticker.*"}},
		"unknown order":     {f: ConnectionFilter{Order: 9}},
		"order by lag":      {f: ConnectionFilter{Order: ByLag}, ok: true},
		"order by pending":  {f: ConnectionFilter{Order: ByPending}, ok: true},
		"order by connects": {f: ConnectionFilter{Order: ByConnected}, ok: true},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if err := tt.f.Validate(); (err == nil) != tt.ok {
				t.Fatalf("Validate = %v, want ok %v", err, tt.ok)
			}
		})
	}
	for s, want := range map[string]ConnectionOrder{"": ByConnected, "connected_at": ByConnected, "lag": ByLag, "pending": ByPending} {
		if got, err := ParseConnectionOrder(s); err != nil || got != want {
			t.Errorf("ParseConnectionOrder(%q) = %v, %v", s, got, err)
		}
	}
	if _, err := ParseConnectionOrder("LAG"); err == nil {
		t.Error("ParseConnectionOrder(LAG) accepted")
	}
}

// TestConnectionPendingAndLag: pending counts what waits for the socket,
// lag_ms the age of the oldest of it, through the writer's steps, on a
// fake clock.
func TestConnectionPendingAndLag(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	s := hubFixture(t, func(c *Config) { c.Now = clock.now })
	c := s.bareConn(codec.JSON())
	s.track(c)
	info := func() ConnectionInfo { return s.ListConnections(ConnectionFilter{}).Connections[0] }
	check := func(step string, pending int, lag int64) {
		t.Helper()
		if got := info(); got.Pending != pending || got.LagMS != lag {
			t.Fatalf("%s: pending %d lag %d ms, want %d and %d", step, got.Pending, got.LagMS, pending, lag)
		}
	}
	check("idle", 0, 0)
	c.send([]byte("a"))
	clock.add(500 * time.Millisecond)
	c.send([]byte("b"))
	clock.add(time.Second)
	check("two queued", 2, 1500)

	var b batch
	c.out.take(&b, clock.now()) // the writer takes them and is writing
	clock.add(time.Second)
	c.send([]byte("c"))
	clock.add(time.Second)
	check("two being written, one queued", 3, 3500)

	c.out.wrote()
	check("written", 1, 1000)

	// A ticker subscription with updates waiting counts each message.
	ch := proto.Channel{Kind: proto.KindTicker, Symbol: "BTC-USD"}
	sub := s.joinFor(t, c, ch, joinOptions{})
	c.out.take(&b, clock.now())
	c.out.wrote()
	for i := 1; i <= 3; i++ {
		s.hub.onFeed(ch, &feed.Message{Seq: uint64(i), Data: tickerData(i)})
	}
	if n := len(sub.queue) + c.out.directPending(sub); n != 3 {
		t.Fatalf("%d updates queued, want 3 one by one", n)
	}
	clock.add(250 * time.Millisecond)
	check("three ticker updates", 3, 250)
}

// TestListChannels: channels held by a real node, with their subscribers,
// last seq, history depth, state and feed rate, filtered by kind and
// symbol.
func TestListChannels(t *testing.T) {
	e := newTestEnv(t)
	tok := e.token(t, "alice", time.Hour, ">")
	c1 := e.connect(t, "json", tok)
	c2 := e.connect(t, "json", tok)
	c1.send(t, proto.Command{Op: "subscribe", ID: ptr[int64](1), Channels: []string{"ticker.BTC-USD", "book.ETH-USD", "trade.BTC-USD"}})
	c1.expect(t, proto.TypeSubscribed)
	c2.send(t, proto.Command{Op: "subscribe", ID: ptr[int64](1), Channels: []string{"ticker.BTC-USD"}})
	c2.expect(t, proto.TypeSubscribed)
	book := booktest.NewFeed("ETH-USD", 1)
	e.publishMessage(t, proto.Channel{Kind: proto.KindBook, Symbol: "ETH-USD"}, book.Snapshot(1))
	// The ticker flows until the node's once-a-second measurement shows its
	// rate (about 50 a second).
	var l ChannelList
	deadline := time.Now().Add(5 * time.Second)
	for i := 1; ; i++ {
		e.publish(t, "ticker.BTC-USD", uint64(i), proto.FeedUpdate, tickerData(i))
		time.Sleep(20 * time.Millisecond)
		if l = e.srv.ListChannels(ChannelFilter{}); len(l.Channels) == 3 && l.Channels[1].FeedRate > 0 && i > 10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ticker rate measured within 5s: %+v", l)
		}
	}
	names := []string{l.Channels[0].Channel, l.Channels[1].Channel, l.Channels[2].Channel}
	if !slices.Equal(names, []string{"book.ETH-USD", "ticker.BTC-USD", "trade.BTC-USD"}) || l.Total != 3 || l.Node != "gw-test" {
		t.Fatalf("channels %v", l)
	}
	bk, tk, tr := l.Channels[0], l.Channels[1], l.Channels[2]
	if bk.Subscribers != 1 || bk.LastSeq != 1 || bk.State != "live" {
		t.Fatalf("book %+v", bk)
	}
	if tk.Subscribers != 2 || tk.LastSeq < 10 || tk.History != int(tk.LastSeq) || tk.FeedRate < 2 || tk.FeedRate > 100 || tk.State != "live" {
		t.Fatalf("ticker %+v", tk)
	}
	if tr.Subscribers != 1 || tr.LastSeq != 0 || tr.History != 0 {
		t.Fatalf("trade %+v", tr)
	}
	for name, tt := range map[string]struct {
		f    ChannelFilter
		want []string
	}{
		"kind":           {ChannelFilter{Kind: proto.KindTicker}, []string{"ticker.BTC-USD"}},
		"symbol":         {ChannelFilter{Symbol: "BTC-USD"}, []string{"ticker.BTC-USD", "trade.BTC-USD"}},
		"kind & symbol":  {ChannelFilter{Kind: proto.KindBook, Symbol: "BTC-USD"}, nil},
		"unknown symbol": {ChannelFilter{Symbol: "DOGE-USD"}, nil},
	} {
		t.Run(name, func(t *testing.T) {
			l := e.srv.ListChannels(tt.f)
			var got []string
			for _, c := range l.Channels {
				got = append(got, c.Channel)
			}
			if !slices.Equal(got, tt.want) || l.Channels == nil || l.Total != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
	// The last subscriber leaving ends the channel on the node.
	c2.send(t, proto.Command{Op: "unsubscribe", ID: ptr[int64](2), Channels: []string{"ticker.BTC-USD"}})
	for c2.next(t).Type != proto.TypeUnsubscribed {
	}
	if tk := e.srv.ListChannels(ChannelFilter{Kind: proto.KindTicker}).Channels[0]; tk.Subscribers != 1 {
		t.Fatalf("after one left: %+v", tk)
	}
}

// inspectFixture is a node without listeners holding n bare connections,
// each subscribed to three of 100 channels, with a reply pending.
func inspectFixture(b testing.TB, n int) *Server {
	s := hubFixture(b)
	for i := range n {
		c := s.bareConn(codec.JSON())
		c.subject = fmt.Sprintf("sub-%d", i%500)
		c.addr = netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
		c.client = clientAddr(c.addr.String()+":40000", c.addr)
		names := []string{fmt.Sprintf("book.S%d", i%100), fmt.Sprintf("ticker.S%d", i%100), fmt.Sprintf("trade.S%d", i%100)}
		c.subList.Store(&names)
		c.send([]byte("pending reply"))
		s.track(c)
	}
	return s
}

// BenchmarkListConnections10k: listing 10,000 connections, the struct
// list alone and encoded as the admin endpoint sends it.
func BenchmarkListConnections10k(b *testing.B) {
	s := inspectFixture(b, 10_000)
	b.Run("list", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if l := s.ListConnections(ConnectionFilter{Limit: MaxListLimit}); len(l.Connections) != 10_000 {
				b.Fatal(len(l.Connections))
			}
		}
	})
	b.Run("list+json", func(b *testing.B) {
		b.ReportAllocs()
		var size int
		for b.Loop() {
			out, err := json.Marshal(s.ListConnections(ConnectionFilter{Limit: MaxListLimit}))
			if err != nil {
				b.Fatal(err)
			}
			size = len(out)
		}
		b.ReportMetric(float64(size), "bytes/list")
	})
	b.Run("by-lag-top-10", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			s.ListConnections(ConnectionFilter{Order: ByLag, Limit: 10})
		}
	})
	b.Run("one-sub", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			s.ListConnections(ConnectionFilter{Sub: "sub-7"})
		}
	})
}

// TestListConnections10kWhole lists 10,000 connections with the largest
// limit and checks the answer is whole: every connection once, oldest
// first, and encodable as the admin endpoint sends it. How fast that is
// lives in BenchmarkListConnections10k, not here.
func TestListConnections10kWhole(t *testing.T) {
	s := inspectFixture(t, 10_000)
	l := s.ListConnections(ConnectionFilter{Limit: MaxListLimit})
	if len(l.Connections) != 10_000 {
		t.Fatalf("listed %d connections, want 10000", len(l.Connections))
	}
	seen := make(map[string]bool, len(l.Connections))
	for i, c := range l.Connections {
		if seen[c.ID] {
			t.Fatalf("session %s listed twice", c.ID)
		}
		seen[c.ID] = true
		if i > 0 && c.ConnectedAt < l.Connections[i-1].ConnectedAt {
			t.Fatalf("connection %d (at %d) listed after a younger one (at %d)", i, c.ConnectedAt, l.Connections[i-1].ConnectedAt)
		}
	}
	out, err := json.Marshal(l)
	if err != nil {
		t.Fatal(err)
	}
	var back ConnectionList
	if err := json.Unmarshal(out, &back); err != nil || len(back.Connections) != 10_000 || back.Total != 10_000 {
		t.Fatalf("encoded list does not decode whole: %d connections, %v", len(back.Connections), err)
	}
}
