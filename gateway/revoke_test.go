package gateway

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/tickgate/tickgate/auth"
	"github.com/tickgate/tickgate/feed"
	"github.com/tickgate/tickgate/internal/natstest"
	"github.com/tickgate/tickgate/internal/selfsigned"
	"github.com/tickgate/tickgate/proto"
)

func TestRevocationsSet(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	rev := func(sub string, before, at int64) feed.Revocation {
		return feed.Revocation{Sub: sub, IssuedBefore: before, At: at}
	}
	type check struct {
		sub     string
		iat     time.Time
		now     time.Time
		refused bool
	}
	tests := []struct {
		name        string
		add         []feed.Revocation
		wantChanged []bool
		checks      []check
	}{
		{
			name: "cut-off", add: []feed.Revocation{rev("alice", t0.Unix(), t0.Unix())}, wantChanged: []bool{true},
			checks: []check{
				{"alice", t0.Add(-time.Second), t0, true},
				{"alice", t0, t0, false}, // issued at the cut-off: not before it
				{"alice", time.Time{}, t0, true},
				{"bob", t0.Add(-time.Hour), t0, false},
				{"alice", t0.Add(-time.Second), t0.Add(time.Hour - time.Second), true},
				{"alice", t0.Add(-time.Second), t0.Add(time.Hour), false}, // lapsed after the TTL
			},
		},
		{
			name: "later cut-off wins, earlier one changes nothing",
			add: []feed.Revocation{rev("alice", t0.Unix(), t0.Unix()), rev("alice", t0.Unix()+60, t0.Unix()+60),
				rev("alice", t0.Unix()-60, t0.Unix()+61)},
			wantChanged: []bool{true, true, false},
			checks: []check{
				{"alice", t0.Add(30 * time.Second), t0.Add(time.Minute), true},
				{"alice", t0.Add(time.Minute), t0.Add(time.Minute), false},
			},
		},
		{
			name: "the same again changes nothing", add: []feed.Revocation{rev("alice", t0.Unix(), t0.Unix()), rev("alice", t0.Unix(), t0.Unix())},
			wantChanged: []bool{true, false},
		},
		{
			name: "one lapsed before it arrived", add: []feed.Revocation{rev("alice", t0.Unix()-7200, t0.Unix()-7200)}, wantChanged: []bool{false},
			checks: []check{{"alice", time.Time{}, t0, false}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := newRevocations(time.Hour)
			for i, r := range tt.add {
				if _, changed := rs.add(r, t0); changed != tt.wantChanged[i] {
					t.Fatalf("add #%d changed = %v, want %v", i, changed, tt.wantChanged[i])
				}
			}
			for _, c := range tt.checks {
				if got := rs.refuses(c.sub, c.iat, c.now); got != c.refused {
					t.Errorf("refuses(%s, iat %v, at %v) = %v, want %v", c.sub, c.iat.Sub(t0), c.now.Sub(t0), got, c.refused)
				}
			}
		})
	}
	rs := newRevocations(time.Hour)
	rs.add(rev("alice", t0.Unix(), t0.Unix()), t0)
	rs.add(rev("bob", t0.Unix()+1800, t0.Unix()+1800), t0)
	if n := rs.prune(t0.Add(time.Hour)); n != 1 {
		t.Fatalf("after an hour %d remain, want bob's", n)
	}
}

func TestRevokeEverywhereBadInput(t *testing.T) {
	s := hubFixture(t)
	now := time.Now().Unix()
	for name, tt := range map[string]struct {
		sub    string
		before int64
	}{
		"empty sub":           {"", 0},
		"control in sub":      {"al\x00ice", 0},
		"sub too long":        {strings.Repeat("a", 257), 0},
		"negative cut-off":    {"alice", -1},
		"cut-off in ms":       {"alice", now * 1000},
		"cut-off an hour out": {"alice", now + 3600},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := s.RevokeEverywhere(context.Background(), tt.sub, tt.before); !errors.Is(err, ErrRevocation) {
				t.Fatalf("RevokeEverywhere = %v, want ErrRevocation", err)
			}
		})
	}
	if s.revoked.prune(time.Now()) != 0 {
		t.Fatal("a refused revocation was applied")
	}
	res, err := s.RevokeEverywhere(context.Background(), "alice", 0)
	if err != nil || res.IssuedBefore != now+1 && res.IssuedBefore != now+2 || res.Published || res.Stored || len(res.Warnings) != 1 {
		t.Fatalf("without a bus: %+v, %v", res, err)
	}
}

// A revocation from the subject or the bucket is held to the admin API's
// bound, and still applied: a cut-off or a time in milliseconds would
// refuse every token of the sub for millennia, and no later revocation
// could lower the cut-off; one from a node whose clock runs ahead must not
// be dropped (its subscriber's connections would stay open). It applies
// with its time at most a minute ahead (else now) and its cut-off at most
// a minute past that time, so that reading it again from the bucket an
// hour later (at a start, a reconnect) does not move the cut-off on.
func TestRevokeFromTheBusBadTimes(t *testing.T) {
	now := time.Now()
	sec, ms := now.Unix(), now.UnixMilli()
	ahead := sec + int64(maxCutoffAhead/time.Second)
	for name, tt := range map[string]struct {
		r          feed.Revocation
		cutoff, at int64 // in force
		reread     int64 // the cut-off in force once read again an hour later
	}{
		"cut-off in ms": {feed.Revocation{Sub: "alice", IssuedBefore: ms, At: sec}, ahead, sec, ahead},
		"time in ms":    {feed.Revocation{Sub: "alice", IssuedBefore: sec, At: ms}, sec, sec, sec},
		// Read again once the node's clock has passed the revocation's
		// time, the cut-off the revoking node asked for applies (here a
		// minute later than at first), and stays.
		"a clock two minutes ahead":    {feed.Revocation{Sub: "alice", IssuedBefore: sec + 121, At: sec + 120}, ahead, sec, sec + 121},
		"a clock 30 s ahead, as it is": {feed.Revocation{Sub: "alice", IssuedBefore: sec + 30, At: sec + 30}, sec + 30, sec + 30, sec + 30},
		"now":                          {feed.Revocation{Sub: "alice", IssuedBefore: sec, At: sec}, sec, sec, sec},
	} {
		t.Run(name, func(t *testing.T) {
			for _, source := range []string{revokedByNATS, revokedByStore} {
				clock := now
				s := hubFixture(t, func(c *Config) { c.Now = func() time.Time { return clock } })
				s.Revoke(tt.r, source)
				got, ok := s.revoked.current("alice", now)
				if !ok || got.IssuedBefore != tt.cutoff || got.At != tt.at {
					t.Fatalf("from %s: in force %v %+v, want cut-off %d at %d", source, ok, got, tt.cutoff, tt.at)
				}
				for range 2 { // read again an hour later, and again
					clock = clock.Add(time.Hour)
					s.Revoke(tt.r, revokedByStore)
					if again, _ := s.revoked.current("alice", clock); again.IssuedBefore != tt.reread {
						t.Fatalf("from %s, read again at %v: cut-off %d, want %d", source, clock.Sub(now), again.IssuedBefore, tt.reread)
					}
				}
				clock = now
				if !s.revoked.refuses("alice", now.Add(-time.Second), now) {
					t.Fatalf("from %s: a token issued before it is not refused", source)
				}
				if later := now.Add(48 * time.Hour); s.revoked.refuses("alice", later, now) {
					t.Fatalf("from %s: a token issued in two days is refused", source)
				}
				// An operator's revocation afterwards merges with it.
				fix, err := s.RevokeEverywhere(context.Background(), "alice", sec)
				if err != nil || fix.IssuedBefore != max(sec, tt.reread) {
					t.Fatalf("from %s: the operator's revocation after it: %+v, %v", source, fix, err)
				}
			}
		})
	}
}

// fleet is a deployment of gateway nodes on one NATS server, sharing a
// token signer, each with its own feed source and revocation bus.
type fleet struct {
	ns       *natsserver.Server
	verifier *auth.Verifier
	signer   *auth.Signer
	cert     *selfsigned.Cert
	wrapBus  func(*feed.Control) RevocationBus // when set, a node's bus is what it makes of the node's feed.Control
}

func newFleet(t *testing.T, jetstream bool) *fleet {
	t.Helper()
	f := &fleet{}
	if jetstream {
		f.ns = natstest.RunJetStream(t, natstest.RandomPort)
	} else {
		f.ns = natstest.Run(t, natstest.RandomPort)
	}
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	keys := auth.NewKeySet()
	var err error
	if err = keys.Set([]auth.Key{{Material: secret}}); err != nil {
		t.Fatal(err)
	}
	if f.verifier, err = auth.NewVerifier(auth.Config{Audience: "tickgate"}, keys); err != nil {
		t.Fatal(err)
	}
	if f.signer, err = auth.NewHMACSigner(secret, ""); err != nil {
		t.Fatal(err)
	}
	if f.cert, err = selfsigned.New(time.Hour); err != nil {
		t.Fatal(err)
	}
	return f
}

// node starts one gateway node of the fleet, serving once its stored
// revocations are read, and returns it with the metrics it exposes.
func (f *fleet) node(t *testing.T, id string) (*testEnv, *prometheus.Registry) {
	t.Helper()
	return f.nodeVia(t, id, nil)
}

// nodeVia is node, reaching NATS through proxy when not nil.
func (f *fleet) nodeVia(t *testing.T, id string, proxy *natstest.Proxy) (*testEnv, *prometheus.Registry) {
	t.Helper()
	e := &testEnv{ns: f.ns, cert: f.cert, signer: f.signer, logs: &syncBuffer{}, proxy: proxy}
	logger := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	url := f.ns.ClientURL()
	if proxy != nil {
		url = proxy.URL()
	}
	var err error
	if e.src, err = feed.Connect(feed.Config{URL: url, Logger: logger, ReconnectWait: 50 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.src.Close)
	ctl, err := feed.NewControl(e.src, feed.ControlConfig{Memory: true, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	var bus RevocationBus = ctl
	if f.wrapBus != nil {
		bus = f.wrapBus(ctl)
	}
	cfg := Config{NodeID: id, TLS: f.cert.ServerConfig(), Logger: logger, DrainWithin: 50 * time.Millisecond, StaleAfter: -1,
		Revocations: bus, RevocationTTL: time.Hour, Metrics: NewMetrics(reg)}
	if e.srv, err = New(cfg, f.verifier, e.src); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = ln.Addr().String()
	served := make(chan struct{})
	go func() {
		defer close(served)
		if err := e.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = e.srv.Shutdown(ctx)
		<-served
	})
	return e, reg
}

// mint signs a token for sub issued at iat, valid for two hours from now.
func (f *fleet) mint(t *testing.T, sub string, iat time.Time) string {
	t.Helper()
	tok, err := f.signer.Sign(auth.TokenSpec{Subject: sub, Channels: []string{">"}, TTL: time.Since(iat) + 2*time.Hour, Now: iat, Audience: "tickgate"})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// handshakeOutcome dials e with token and returns the refusal's status and code.
func handshakeOutcome(t *testing.T, e *testEnv, token string) (int, string) {
	t.Helper()
	c, resp, err := e.dial(t, dialOptions{subprotocols: []string{proto.SubprotocolJSON}, header: http.Header{"Authorization": {"Bearer " + token}}})
	if err == nil {
		_ = c.ws.NetConn().Close()
		return http.StatusSwitchingProtocols, ""
	}
	if resp == nil {
		t.Fatalf("dial: %v", err)
	}
	var body proto.HandshakeError
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, string(body.Error)
}

func counterValue(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if matches(m, labels) {
				if c := m.GetCounter(); c != nil {
					return c.GetValue()
				}
				return m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("no series %s%v", name, labels)
	return 0
}

func matches(m *dto.Metric, labels []string) bool {
	for i := 0; i+1 < len(labels); i += 2 {
		found := false
		for _, l := range m.GetLabel() {
			if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// closedRevoked waits for c's close and checks it is 4003 revoked, within
// a second of since.
func closedRevoked(t *testing.T, c *testClient, since time.Time, what string) time.Duration {
	t.Helper()
	code, reason := c.waitClose(t, 2*time.Second)
	took := time.Since(since)
	if code != uint16(proto.CloseRevoked) || reason != "revoked" {
		t.Fatalf("%s: closed %d %q, want 4003 revoked", what, code, reason)
	}
	if took > time.Second {
		t.Fatalf("%s: closed %v after the revocation, want within a second", what, took)
	}
	return took
}

// TestRevocationAcrossNodes: three nodes on one NATS server with
// JetStream. A revocation made on one closes the sub's connections on
// every node up with 4003 within a second; its old tokens are then
// refused (401 token_revoked) on all three, the third started after the
// revocation; a token issued at the cut-off works everywhere, and a
// refresh with an old token is refused without closing the connection.
func TestRevocationAcrossNodes(t *testing.T) {
	f := newFleet(t, true)
	n1, reg1 := f.node(t, "gw-1")
	n2, reg2 := f.node(t, "gw-2")
	old := f.mint(t, "alice", time.Now().Add(-10*time.Minute))
	a1 := n1.connect(t, "json", old)
	a1.send(t, proto.Command{Op: "subscribe", ID: ptr[int64](1), Channels: []string{"ticker.BTC-USD"}})
	a1.expect(t, proto.TypeSubscribed)
	a2 := n1.connect(t, "msgpack", old)
	a3 := n2.connect(t, "json", old)
	bob := n2.connect(t, "json", f.mint(t, "bob", time.Now().Add(-10*time.Minute)))

	began := time.Now()
	res, err := n1.srv.RevokeEverywhere(context.Background(), "alice", 0)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Published || !res.Stored || res.Closed != 2 || len(res.Warnings) != 0 || res.IssuedBefore < began.Unix() {
		t.Fatalf("result %+v", res)
	}
	for what, c := range map[string]*testClient{"gw-1 json": a1, "gw-1 msgpack": a2, "gw-2": a3} {
		took := closedRevoked(t, c, began, what)
		t.Logf("%s: closed 4003 %v after the revocation", what, took.Round(time.Millisecond))
	}
	bob.send(t, proto.Command{Op: "ping", ID: ptr[int64](1)})
	bob.expect(t, proto.TypePong)

	n3, reg3 := f.node(t, "gw-3") // started after the revocation
	cutoff := time.Unix(res.IssuedBefore, 0)
	justBefore := f.mint(t, "alice", cutoff.Add(-time.Second))
	for _, n := range []*testEnv{n1, n2, n3} {
		for name, tok := range map[string]string{"old": old, "a second before the cut-off": justBefore} {
			if status, code := handshakeOutcome(t, n, tok); status != http.StatusUnauthorized || code != "token_revoked" {
				t.Fatalf("%s: %s token: %d %q, want 401 token_revoked", n.srv.cfg.NodeID, name, status, code)
			}
		}
	}
	fresh := f.mint(t, "alice", cutoff)
	for _, n := range []*testEnv{n1, n2, n3} {
		c := n.connect(t, "json", fresh)
		// A refresh with an old token is refused; the connection stays.
		c.send(t, proto.Command{Op: "auth", ID: ptr[int64](7), Token: old})
		if w := c.expect(t, proto.TypeError); w.Code != string(proto.CodeInvalidToken) || *w.ID != 7 {
			t.Fatalf("%s: refresh with the old token: %s", n.srv.cfg.NodeID, w.raw)
		}
		c.send(t, proto.Command{Op: "auth", ID: ptr[int64](8), Token: f.mint(t, "alice", cutoff.Add(time.Second))})
		c.expect(t, proto.TypeAuthenticated)
	}

	if v := counterValue(t, reg1, "tickgate_revocation_closes_total"); v != 2 {
		t.Errorf("gw-1 closes %v, want 2", v)
	}
	if v := counterValue(t, reg2, "tickgate_revocation_closes_total"); v != 1 {
		t.Errorf("gw-2 closes %v, want 1", v)
	}
	if v := counterValue(t, reg2, "tickgate_revocations_received_total", "source", "nats"); v != 1 {
		t.Errorf("gw-2 received from nats %v, want 1", v)
	}
	if v := counterValue(t, reg3, "tickgate_revocations_received_total", "source", "store"); v != 1 {
		t.Errorf("gw-3 received from the store %v, want 1", v)
	}
	if v := counterValue(t, reg1, "tickgate_handshake_failures_total", "reason", "token_revoked"); v != 2 {
		t.Errorf("gw-1 token_revoked refusals %v, want 2", v)
	}
	for _, reg := range []*prometheus.Registry{reg1, reg2, reg3} {
		if v := counterValue(t, reg, "tickgate_revocations_active"); v != 1 {
			t.Errorf("revocations active %v, want 1", v)
		}
	}
}

// TestRevocationWithoutJetStream: without JetStream a revocation still
// reaches every node that is up, and a cut-off spares the sub's newer
// tokens; a node started afterwards does not know it (the documented
// limit), and the result says it was not stored.
func TestRevocationWithoutJetStream(t *testing.T) {
	f := newFleet(t, false)
	n1, _ := f.node(t, "gw-1")
	n2, _ := f.node(t, "gw-2")
	cutoff := time.Now().Add(-time.Minute).Truncate(time.Second)
	oldTok := f.mint(t, "carol", cutoff.Add(-time.Hour))
	newTok := f.mint(t, "carol", cutoff)
	oldConn := n2.connect(t, "json", oldTok)
	newConn := n1.connect(t, "json", newTok)
	newConn2 := n2.connect(t, "msgpack", newTok)

	began := time.Now()
	res, err := n1.srv.RevokeEverywhere(context.Background(), "carol", cutoff.Unix())
	if err != nil {
		t.Fatal(err)
	}
	if !res.Published || res.Stored || res.Closed != 0 || len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "not stored") {
		t.Fatalf("result %+v", res)
	}
	closedRevoked(t, oldConn, began, "gw-2, old token")
	for _, c := range []*testClient{newConn, newConn2} {
		c.send(t, proto.Command{Op: "ping", ID: ptr[int64](1)})
		c.expect(t, proto.TypePong)
	}
	for _, n := range []*testEnv{n1, n2} {
		if status, code := handshakeOutcome(t, n, oldTok); status != http.StatusUnauthorized || code != "token_revoked" {
			t.Fatalf("%s: old token: %d %q", n.srv.cfg.NodeID, status, code)
		}
	}
	n3, _ := f.node(t, "gw-3")
	if status, _ := handshakeOutcome(t, n3, oldTok); status != http.StatusSwitchingProtocols {
		t.Fatalf("a node started after the revocation, without JetStream: %d, want the old token accepted", status)
	}
	if !strings.Contains(n3.logs.String(), "no store") {
		t.Fatalf("gw-3 did not log that it has no revocation store:\n%s", n3.logs.String())
	}
}

// TestRevocationReachesANodeCutOffFromNATS: a node cut off from NATS when
// a revocation is made keeps the sub's connection (the documented limit),
// and applies the revocation from the bucket as soon as NATS is back.
// flakyStore is a revocation bus whose first reads of the store fail, as
// they do while a JetStream cluster elects a leader or answers late.
type flakyStore struct {
	*feed.Control
	fail  int32 // reads to fail
	reads atomic.Int32
}

func (b *flakyStore) Stored(ctx context.Context) ([]feed.Revocation, error) {
	if b.reads.Add(1) <= b.fail {
		return nil, fmt.Errorf("%w: %w", feed.ErrNoStore, context.DeadlineExceeded)
	}
	return b.Control.Stored(ctx)
}

// A node whose reads of the revocation store fail at its start tries
// again until one succeeds, and then refuses the tokens revoked before it
// started. Before: a failed first read was taken for no store at all, and
// the node accepted them until NATS happened to reconnect.
func TestStoredRevocationsReadAfterFailedReads(t *testing.T) {
	f := newFleet(t, true)
	n1, _ := f.node(t, "gw-1")
	old := f.mint(t, "erin", time.Now().Add(-time.Minute))
	if res, err := n1.srv.RevokeEverywhere(context.Background(), "erin", 0); err != nil || !res.Stored {
		t.Fatalf("revoke: %+v, %v", res, err)
	}
	var bus *flakyStore
	f.wrapBus = func(c *feed.Control) RevocationBus {
		bus = &flakyStore{Control: c, fail: 2}
		return bus
	}
	n2, reg2 := f.node(t, "gw-2")
	if !n2.srv.RevocationsUnread() {
		t.Fatal("after a failed first read the store is not reported unread")
	}
	waitFor(t, "the store read", func() bool { return !n2.srv.RevocationsUnread() })
	if r := bus.reads.Load(); r != 3 {
		t.Fatalf("%d reads of the store, want 3 (two failed)", r)
	}
	if status, code := handshakeOutcome(t, n2, old); status != http.StatusUnauthorized || code != "token_revoked" {
		t.Fatalf("gw-2: a token revoked before it started: %d %q", status, code)
	}
	if v := counterValue(t, reg2, "tickgate_revocations_received_total", "source", "store"); v != 1 {
		t.Errorf("gw-2 read %v revocations from the store, want 1", v)
	}
	if !strings.Contains(n2.logs.String(), "failed_before=2") {
		t.Errorf("no log of the read after two failures:\n%s", n2.logs.String())
	}
}

func TestRevocationReachesANodeCutOffFromNATS(t *testing.T) {
	f := newFleet(t, true)
	n1, _ := f.node(t, "gw-1")
	proxy := natstest.NewProxy(t, f.ns.Addr().String())
	n2, reg2 := f.nodeVia(t, "gw-2", proxy)
	old := f.mint(t, "dora", time.Now().Add(-time.Minute))
	c := n2.connect(t, "json", old)

	proxy.Cut()
	waitFor(t, "gw-2 lost NATS", func() bool { return !n2.src.Connected() })
	res, err := n1.srv.RevokeEverywhere(context.Background(), "dora", 0)
	if err != nil || !res.Published || !res.Stored {
		t.Fatalf("revoke: %+v, %v", res, err)
	}
	time.Sleep(300 * time.Millisecond)
	c.send(t, proto.Command{Op: "ping", ID: ptr[int64](1)})
	c.expect(t, proto.TypePong) // cut off: it knows nothing yet

	mended := time.Now()
	proxy.Mend()
	// The reconnect wait (50 ms here), then the next sweep (250 ms).
	if code, reason := c.waitClose(t, 5*time.Second); code != uint16(proto.CloseRevoked) || reason != "revoked" {
		t.Fatalf("gw-2 after NATS came back: closed %d %q, want 4003 revoked", code, reason)
	}
	t.Logf("closed 4003 %v after NATS was reachable again", time.Since(mended).Round(time.Millisecond))
	if status, code := handshakeOutcome(t, n2, old); status != http.StatusUnauthorized || code != "token_revoked" {
		t.Fatalf("gw-2: old token %d %q", status, code)
	}
	if v := counterValue(t, reg2, "tickgate_revocations_received_total", "source", "store"); v != 1 {
		t.Errorf("gw-2 read %v revocations from the store, want 1", v)
	}
}
