// Package nodetest runs real tickgate nodes in tests of the programs that
// talk to one from outside (the Go client, tickwatch): an embedded NATS
// server, the feed source, the gateway over TLS with a self-signed
// certificate, HS256 tokens, a feed publisher, and a synthetic market
// whose true state the test can compare with what a client holds. Nodes
// can be killed (every socket cut, no close frame) or drained, and
// started again on the same address.
package nodetest

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/tickgate/tickgate/auth"
	"github.com/tickgate/tickgate/feed"
	"github.com/tickgate/tickgate/gateway"
	"github.com/tickgate/tickgate/internal/natstest"
	"github.com/tickgate/tickgate/internal/selfsigned"
	"github.com/tickgate/tickgate/proto"
)

// Env is what the nodes of a test share: NATS, the certificate, the token
// keys and a feed publisher.
type Env struct {
	NATS     *natsserver.Server
	Cert     *selfsigned.Cert
	Signer   *auth.Signer
	Verifier *auth.Verifier
	Pub      *feed.Publisher
}

// NewEnv starts NATS and a publisher; everything stops when the test ends.
func NewEnv(t testing.TB) *Env {
	t.Helper()
	e := &Env{NATS: natstest.Run(t, natstest.RandomPort)}
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	keys := auth.NewKeySet()
	if err := keys.Set([]auth.Key{{Material: secret}}); err != nil {
		t.Fatal(err)
	}
	var err error
	if e.Verifier, err = auth.NewVerifier(auth.Config{Audience: "tickgate"}, keys); err != nil {
		t.Fatal(err)
	}
	if e.Signer, err = auth.NewHMACSigner(secret, ""); err != nil {
		t.Fatal(err)
	}
	if e.Cert, err = selfsigned.New(time.Hour); err != nil {
		t.Fatal(err)
	}
	if e.Pub, err = feed.DialPublisher(e.NATS.ClientURL(), "nodetest publisher", "md"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Pub.Close)
	return e
}

// Token mints a token for sub allowing channels, valid for ttl.
func (e *Env) Token(t testing.TB, sub string, ttl time.Duration, channels ...string) string {
	t.Helper()
	tok, err := e.Signer.Sign(auth.TokenSpec{Subject: sub, Channels: channels, TTL: ttl, Audience: "tickgate"})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// ClientTLS trusts the nodes' certificate.
func (e *Env) ClientTLS() *tls.Config { return e.Cert.ClientConfig() }

// Publish sends one feed message.
func (e *Env) Publish(t testing.TB, ch proto.Channel, m proto.FeedMessage) {
	t.Helper()
	if err := e.Pub.PublishMessage(ch, m); err != nil {
		t.Error(err)
	}
}

// Flush waits until NATS has everything published so far.
func (e *Env) Flush(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.Pub.Flush(ctx); err != nil {
		t.Error(err)
	}
}

// Node is one gateway node.
type Node struct {
	Addr string
	Srv  *gateway.Server
	Src  *feed.Source

	ln     *listener
	served chan struct{}
	once   sync.Once
}

// Start runs a node on addr ("127.0.0.1:0" for a free port), with the
// gateway's defaults changed by tweak; it stops when the test ends.
func (e *Env) Start(t testing.TB, addr string, tweak ...func(*gateway.Config)) *Node {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	src, err := feed.Connect(feed.Config{URL: e.NATS.ClientURL(), Logger: logger, ReconnectWait: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	cfg := gateway.Config{NodeID: "nodetest", TLS: e.Cert.ServerConfig(), Logger: logger, DrainWithin: 100 * time.Millisecond}
	for _, f := range tweak {
		f(&cfg)
	}
	srv, err := gateway.New(cfg, e.Verifier, src)
	if err != nil {
		src.Close()
		t.Fatal(err)
	}
	var l net.Listener
	for i := 0; ; i++ { // the address of a node just stopped may take a moment
		if l, err = net.Listen("tcp", addr); err == nil || i == 50 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		src.Close()
		t.Fatal(err)
	}
	n := &Node{Addr: l.Addr().String(), Srv: srv, Src: src, ln: &listener{Listener: l, conns: map[net.Conn]struct{}{}}, served: make(chan struct{})}
	go func() {
		defer close(n.served)
		if err := srv.Serve(n.ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			t.Errorf("nodetest: serve: %v", err)
		}
	}()
	t.Cleanup(func() { n.stop(t) })
	return n
}

// URL is the node's wss:// URL.
func (n *Node) URL() string { return "wss://" + n.Addr + gateway.WebSocketPath }

// Kill ends the node as a crash would: the listener and every socket are
// closed at once, without a close frame or a reconnect notice.
func (n *Node) Kill(t testing.TB) {
	t.Helper()
	n.ln.kill()
	n.stop(t)
}

// Drain drains the node as SIGTERM does: a reconnect notice, then 1001
// within within. It returns when every connection is gone; the node goes
// on answering new handshakes with 503 draining until Stop.
func (n *Node) Drain(t testing.TB, within time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Srv.Drain(ctx, within); err != nil {
		t.Errorf("nodetest: drain: %v", err)
	}
}

// Stop stops the node and frees its address (it also stops when the test
// ends).
func (n *Node) Stop(t testing.TB) {
	t.Helper()
	n.stop(t)
}

func (n *Node) stop(t testing.TB) {
	n.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		// After Kill the listener is closed already: Shutdown closing it
		// again fails with net.ErrClosed when Serve has not returned yet.
		if err := n.Srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, net.ErrClosed) {
			t.Errorf("nodetest: shutdown: %v", err)
		}
		n.ln.kill()
		<-n.served
		n.Src.Close()
	})
}

// listener remembers the connections it accepted, so that kill can cut
// them.
type listener struct {
	net.Listener
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	killed bool
}

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.killed {
		_ = c.Close()
		return nil, net.ErrClosed
	}
	l.conns[c] = struct{}{}
	return c, nil
}

func (l *listener) kill() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.killed = true
	_ = l.Listener.Close()
	for c := range l.conns {
		_ = c.Close()
	}
	clear(l.conns)
}
