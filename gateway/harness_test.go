package gateway

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lxzan/gws"
	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/tickgate/tickgate/auth"
	"github.com/tickgate/tickgate/codec"
	"github.com/tickgate/tickgate/feed"
	"github.com/tickgate/tickgate/internal/natstest"
	"github.com/tickgate/tickgate/internal/selfsigned"
	"github.com/tickgate/tickgate/proto"
)

// testEnv is a real gateway: embedded NATS on a random port, the feed
// source, TLS with a self-signed certificate, and a feed publisher.
type testEnv struct {
	ns     *natsserver.Server
	src    *feed.Source
	srv    *Server
	addr   string
	cert   *selfsigned.Cert
	signer *auth.Signer
	pub    *feed.Publisher
	logs   *syncBuffer
	proxy  *natstest.Proxy // between the node and NATS, with newProxiedTestEnv
}

// syncBuffer collects log output for tests that read it.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newTestEnv is a gateway whose verifier takes HS256 tokens from
// e.signer with audience "tickgate".
func newTestEnv(t testing.TB, tweak ...func(*Config)) *testEnv {
	t.Helper()
	return newSignedTestEnv(t, envOptions{}, tweak...)
}

// envOptions say what a test environment adds to the plain one.
type envOptions struct {
	proxied   bool // the node reaches NATS through e.proxy, which the test can freeze
	jetstream bool // NATS with JetStream, the history stream, and Config.History reading it
}

// newProxiedTestEnv is newTestEnv with the node reaching NATS through
// e.proxy, which the test can freeze: a half-open path to NATS.
func newProxiedTestEnv(t *testing.T, tweak ...func(*Config)) *testEnv {
	t.Helper()
	return newSignedTestEnv(t, envOptions{proxied: true}, tweak...)
}

// newHistoryTestEnv is newTestEnv on NATS with JetStream and the history
// stream (in memory), the node reading it (--history jetstream).
func newHistoryTestEnv(t *testing.T, tweak ...func(*Config)) *testEnv {
	t.Helper()
	return newSignedTestEnv(t, envOptions{jetstream: true}, tweak...)
}

func newSignedTestEnv(t testing.TB, o envOptions, tweak ...func(*Config)) *testEnv {
	t.Helper()
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	keys := auth.NewKeySet()
	if err := keys.Set([]auth.Key{{Material: secret}}); err != nil {
		t.Fatal(err)
	}
	verifier, err := auth.NewVerifier(auth.Config{Audience: "tickgate"}, keys)
	if err != nil {
		t.Fatal(err)
	}
	e := startTestEnv(t, verifier, o, tweak...)
	if e.signer, err = auth.NewHMACSigner(secret, ""); err != nil {
		t.Fatal(err)
	}
	return e
}

// newTestEnvWith is a real gateway around the given verifier: embedded
// NATS, the feed source, TLS, a publisher, logs to e.logs at debug level.
func newTestEnvWith(t *testing.T, verifier *auth.Verifier, tweak ...func(*Config)) *testEnv {
	t.Helper()
	return startTestEnv(t, verifier, envOptions{}, tweak...)
}

// startTestEnv is newTestEnvWith with what o adds.
func startTestEnv(t testing.TB, verifier *auth.Verifier, o envOptions, tweak ...func(*Config)) *testEnv {
	t.Helper()
	e := &testEnv{logs: &syncBuffer{}}
	if o.jetstream {
		e.ns = natstest.RunJetStream(t, natstest.RandomPort)
	} else {
		e.ns = natstest.Run(t, natstest.RandomPort)
	}
	natsURL := e.ns.ClientURL()
	if o.proxied {
		e.proxy = natstest.NewProxy(t, e.ns.Addr().String())
		natsURL = e.proxy.URL()
	}
	var err error
	logger := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if e.src, err = feed.Connect(feed.Config{URL: natsURL, Logger: logger, ReconnectWait: 50 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.src.Close)
	if e.cert, err = selfsigned.New(time.Hour); err != nil {
		t.Fatal(err)
	}
	// No feed_silent statuses unless a test asks for them: test feeds send
	// no publisher heartbeats, and quiet channels are the rule in tests.
	cfg := Config{NodeID: "gw-test", TLS: e.cert.ServerConfig(), Logger: logger, DrainWithin: 50 * time.Millisecond, StaleAfter: -1}
	if o.jetstream {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := e.src.EnsureStream(ctx, feed.StreamConfig{Memory: true}); err != nil {
			t.Fatal(err)
		}
		h, err := feed.NewHistory(e.src, feed.DefaultStream, 0)
		if err != nil {
			t.Fatal(err)
		}
		cfg.History = h
	}
	for _, f := range tweak {
		f(&cfg)
	}
	if e.srv, err = New(cfg, verifier, e.src); err != nil {
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
		if err := e.srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("shutdown: %v", err)
		}
		<-served
	})
	if e.pub, err = feed.DialPublisher(e.ns.ClientURL(), "test publisher", "md"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.pub.Close)
	return e
}

func (e *testEnv) url() string { return "wss://" + e.addr + WebSocketPath }

// token mints a token for sub allowing channels, valid for ttl.
func (e *testEnv) token(t testing.TB, sub string, ttl time.Duration, channels ...string) string {
	t.Helper()
	tok, err := e.signer.Sign(auth.TokenSpec{Subject: sub, Channels: channels, TTL: ttl, Audience: "tickgate"})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// publish sends one feed message and waits until NATS has it.
func (e *testEnv) publish(t *testing.T, channel string, seq uint64, typ string, data any) {
	t.Helper()
	ch, err := proto.ParseChannel(channel)
	if err != nil {
		t.Fatal(err)
	}
	e.publishMessage(t, ch, proto.FeedMessage{Seq: seq, Type: typ, Data: data})
}

// publishMessage publishes m on ch through the test's feed publisher.
func (e *testEnv) publishMessage(t *testing.T, ch proto.Channel, m proto.FeedMessage) {
	t.Helper()
	if err := e.pub.PublishMessage(ch, m); err != nil {
		t.Fatal(err)
	}
}

func (e *testEnv) flush(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.pub.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

// wire is every server message field, for tests to decode into.
type wire struct {
	Type        string   `json:"type" msgpack:"type"`
	ID          *int64   `json:"id" msgpack:"id"`
	Channels    []string `json:"channels" msgpack:"channels"`
	Resumed     []string `json:"resumed" msgpack:"resumed"`
	Code        string   `json:"code" msgpack:"code"`
	Message     string   `json:"message" msgpack:"message"`
	Channel     string   `json:"channel" msgpack:"channel"`
	Seq         uint64   `json:"seq" msgpack:"seq"`
	Prev        *uint64  `json:"prev" msgpack:"prev"`
	N           uint32   `json:"n" msgpack:"n"`
	Data        wireData `json:"data" msgpack:"data"`
	V           int      `json:"v" msgpack:"v"`
	Session     string   `json:"session" msgpack:"session"`
	Node        string   `json:"node" msgpack:"node"`
	Codec       string   `json:"codec" msgpack:"codec"`
	HeartbeatMS int64    `json:"heartbeat_ms" msgpack:"heartbeat_ms"`
	Exp         int64    `json:"exp" msgpack:"exp"`
	TS          int64    `json:"ts" msgpack:"ts"`
	Reason      string   `json:"reason" msgpack:"reason"`
	WithinMS    int64    `json:"within_ms" msgpack:"within_ms"`
	RetryMS     int64    `json:"retry_ms" msgpack:"retry_ms"`
	State       string   `json:"state" msgpack:"state"`
	Features    []string `json:"features" msgpack:"features"`
	From        uint64   `json:"from" msgpack:"from"`
	To          uint64   `json:"to" msgpack:"to"`

	opcode gws.Opcode
	raw    []byte
}

// wireData is the union of the ticker, book and trade data shapes.
type wireData struct {
	Symbol   string        `json:"symbol" msgpack:"symbol"`
	Bid      string        `json:"bid" msgpack:"bid"`
	BidSize  string        `json:"bid_size" msgpack:"bid_size"`
	Ask      string        `json:"ask" msgpack:"ask"`
	AskSize  string        `json:"ask_size" msgpack:"ask_size"`
	Last     string        `json:"last" msgpack:"last"`
	Volume   string        `json:"volume" msgpack:"volume"`
	Bids     []proto.Level `json:"bids" msgpack:"bids"`
	Asks     []proto.Level `json:"asks" msgpack:"asks"`
	Checksum uint32        `json:"checksum" msgpack:"checksum"`
	ID       int64         `json:"id" msgpack:"id"`
	Price    string        `json:"price" msgpack:"price"`
	Size     string        `json:"size" msgpack:"size"`
	Side     string        `json:"side" msgpack:"side"`
	TS       int64         `json:"ts" msgpack:"ts"`
}

// testClient is a real gws client over TLS that queues what it receives.
type testClient struct {
	gws.BuiltinEventHandler
	t      *testing.T
	ws     *gws.Conn
	codec  codec.Codec
	msgs   chan wire
	closed chan error // receives the close error once
	resp   *http.Response
}

func (c *testClient) OnMessage(_ *gws.Conn, m *gws.Message) {
	defer m.Close()
	var w wire
	b := append([]byte(nil), m.Bytes()...)
	if err := codec.DecodeMessage(c.codec, b, &w); err != nil {
		c.t.Errorf("client: undecodable %s message %q: %v", c.codec.Name(), b, err)
		return
	}
	w.opcode, w.raw = m.Opcode, b
	c.msgs <- w
}

func (c *testClient) OnClose(_ *gws.Conn, err error) { c.closed <- err }

// dialOptions tune a test dial.
type dialOptions struct {
	subprotocols []string // Sec-WebSocket-Protocol entries
	header       http.Header
	query        string
	deflate      bool // offer permessage-deflate as browsers do, and compress every message sent
}

// dial connects with opts; it returns the client, or the refused response.
func (e *testEnv) dial(t *testing.T, opts dialOptions) (*testClient, *http.Response, error) {
	t.Helper()
	h := http.Header{}
	for k, v := range opts.header {
		h[k] = v
	}
	if len(opts.subprotocols) > 0 {
		h.Set("Sec-WebSocket-Protocol", strings.Join(opts.subprotocols, ", "))
	}
	c := &testClient{t: t, msgs: make(chan wire, 4096), closed: make(chan error, 1), codec: codec.JSON()}
	addr := e.url()
	if opts.query != "" {
		addr += "?" + opts.query
	}
	ws, resp, err := gws.NewClient(c, &gws.ClientOption{
		Addr:             addr,
		RequestHeader:    h,
		TlsConfig:        e.cert.ClientConfig(),
		HandshakeTimeout: 5 * time.Second,
		CheckUtf8Enabled: true,
		PermessageDeflate: gws.PermessageDeflate{
			Enabled: opts.deflate,
			// Offered with context takeover (as browsers do: the offer
			// is "permessage-deflate; client_max_window_bits"); the
			// node answers without it, and from then on every message,
			// however small, goes compressed.
			ServerContextTakeover: true,
			ClientContextTakeover: true,
			Threshold:             1,
		},
	})
	if err != nil {
		return nil, resp, err
	}
	if ws.SubProtocol() == proto.SubprotocolMsgpack {
		c.codec = codec.Msgpack()
	}
	c.ws, c.resp = ws, resp
	go ws.ReadLoop()
	t.Cleanup(func() { _ = ws.NetConn().Close() })
	return c, resp, nil
}

// connect dials with a bearer token and the named codec ("json",
// "msgpack") and reads the welcome.
func (e *testEnv) connect(t *testing.T, codecName, token string) *testClient {
	t.Helper()
	return e.connectWith(t, codecName, token, dialOptions{})
}

// connectWith is connect with opts, whose subprotocols and header it
// sets.
func (e *testEnv) connectWith(t *testing.T, codecName, token string, opts dialOptions) *testClient {
	t.Helper()
	sp := proto.SubprotocolJSON
	if codecName == "msgpack" {
		sp = proto.SubprotocolMsgpack
	}
	opts.subprotocols = []string{sp}
	opts.header = http.Header{"Authorization": {"Bearer " + token}}
	c, resp, err := e.dial(t, opts)
	if err != nil {
		t.Fatalf("dial: %v (%s)", err, readBody(resp))
	}
	w := c.next(t)
	if w.Type != proto.TypeWelcome {
		t.Fatalf("first message %q, want welcome", w.Type)
	}
	return c
}

func readBody(resp *http.Response) string {
	if resp == nil || resp.Body == nil {
		return ""
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return fmt.Sprintf("%d %s", resp.StatusCode, b)
}

// send encodes cmd with the client's codec and writes it.
func (c *testClient) send(t *testing.T, cmd proto.Command) {
	t.Helper()
	b, err := c.codec.Append(nil, cmd)
	if err != nil {
		t.Fatal(err)
	}
	c.sendRaw(t, b)
}

func (c *testClient) sendRaw(t *testing.T, b []byte) {
	t.Helper()
	op := gws.OpcodeText
	if c.codec.Binary() {
		op = gws.OpcodeBinary
	}
	if err := c.ws.WriteMessage(op, b); err != nil {
		t.Fatal(err)
	}
}

// next returns the next message, skipping heartbeats.
func (c *testClient) next(t *testing.T) wire {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case w := <-c.msgs:
			if w.Type == proto.TypeHeartbeat {
				continue
			}
			return w
		case err := <-c.closed:
			c.closed <- err
			if len(c.msgs) > 0 {
				continue // delivered before the close
			}
			t.Fatalf("connection closed while waiting for a message: %v", err)
		case <-timeout:
			t.Fatal("no message within 10s")
		}
	}
}

// expect returns the next message and checks its type.
func (c *testClient) expect(t *testing.T, typ string) wire {
	t.Helper()
	w := c.next(t)
	if w.Type != typ {
		t.Fatalf("got %s %s, want %s", w.Type, w.raw, typ)
	}
	return w
}

// quiet checks that nothing but heartbeats arrives for d.
func (c *testClient) quiet(t *testing.T, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case w := <-c.msgs:
			if w.Type != proto.TypeHeartbeat {
				t.Fatalf("unexpected %s %s", w.Type, w.raw)
			}
		case <-deadline:
			return
		}
	}
}

// waitClose waits for the connection to close and returns the close code.
func (c *testClient) waitClose(t *testing.T, within time.Duration) (uint16, string) {
	t.Helper()
	select {
	case err := <-c.closed:
		var ce *gws.CloseError
		if errors.As(err, &ce) {
			return ce.Code, string(ce.Reason)
		}
		t.Fatalf("closed without a close frame: %v", err)
	case <-time.After(within):
		t.Fatalf("not closed within %v", within)
	}
	return 0, ""
}

func ptr[T any](v T) *T { return &v }
