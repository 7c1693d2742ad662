package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lxzan/gws"

	"github.com/tickgate/tickgate/auth"
	"github.com/tickgate/tickgate/codec"
	"github.com/tickgate/tickgate/proto"
)

type sessionStorage = gws.SessionStorage

// Server is a gateway node's public side: the WebSocket endpoint, the hub
// and every connection.
type Server struct {
	cfg     Config              // Static after construction.
	authn   Authenticator       // Static after construction: cfg.Authenticator, or bearer tokens checked by the verifier.
	hub     *hub                // Static after construction.
	codecs  *codecSet           // Static after construction.
	log     *slog.Logger        // Static after construction.
	metrics *Metrics            // Static after construction.
	admit   *admission          // Safe for concurrent use.
	revoked *revocations        // Safe for concurrent use.
	origins map[string]struct{} // Static after construction: normalized AllowedOrigins.
	// upgraders: one per codec (echoing it), then one for clients that
	// offered no subprotocol. Static after construction.
	upgraders [numCodecs + 1]*gws.Upgrader
	// deflaters: the same, negotiating permessage-deflate (deflate.go);
	// nil without Config.Compression. Static after construction.
	deflaters [numCodecs + 1]*gws.Upgrader
	// grace ends writers parked with nothing to write, on each sweep tick
	// (writerrun.go). Static after construction.
	grace *graceTicks
	// counts, set by tests, counts writer goroutines started and writer
	// rounds run inline (inline.go); nil in production, so that no core
	// writes a counter shared with the others per write.
	counts atomic.Pointer[writerCounts]
	// scratch holds writer runs' batches and buffers between runs
	// (writerrun.go). Safe for concurrent use.
	scratch scratchPool

	draining atomic.Bool
	// revocationsUnread: the revocation store has not been read since the
	// node started or last got NATS back (followRevocations).
	revocationsUnread atomic.Bool
	// historyReadable: the history stream could be read at the last look
	// (watchHistory, from Serve; true until then when there is a History);
	// welcome names durable_resume only then.
	historyReadable atomic.Bool

	mu          sync.Mutex
	conns       map[*conn]struct{} // Guarded by mu.
	sweepStop   chan struct{}      // Guarded by mu: closed to stop the connection sweep (sweep.go); nil while none runs.
	drainWithin time.Duration      // Guarded by mu: the window of the drain under way.
	http        *http.Server       // Guarded by mu: set by Serve.
	shutDown    bool               // Guarded by mu: Shutdown was called; a Serve after it returns at once.
	park        *parker            // Guarded by mu: set by Serve; nil where read loops never park (park.go).
}

// New builds a Server. Clients authenticate with cfg.Authenticator, or,
// when it is nil, with JWT bearer tokens that verifier checks
// (BearerAuth, cfg.AllowQueryToken); src provides the channels.
func New(cfg Config, verifier *auth.Verifier, src Source) (*Server, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	authn := cfg.Authenticator
	if authn == nil && verifier != nil {
		authn = BearerAuth(verifier, cfg.AllowQueryToken)
	}
	if authn == nil || src == nil {
		return nil, fmt.Errorf("%w: an authenticator (or a verifier) and a source are required", ErrConfig)
	}
	s := &Server{
		cfg:     cfg,
		authn:   authn,
		log:     cfg.Logger,
		metrics: cfg.Metrics,
		admit:   newAdmission(&cfg),
		revoked: newRevocations(cfg.RevocationTTL),
		origins: make(map[string]struct{}, len(cfg.AllowedOrigins)),
		conns:   make(map[*conn]struct{}),
		grace:   newGraceTicks(),
	}
	for _, o := range cfg.AllowedOrigins {
		s.origins[normalizeOrigin(o, true)] = struct{}{}
	}
	// Until Serve has looked (watchHistory), a History is taken as
	// readable: a node served through Handler alone names durable_resume
	// as it did before the looks.
	s.historyReadable.Store(cfg.History != nil)
	s.revocationsUnread.Store(cfg.Revocations != nil) // until Serve reads the store

	s.codecs = newCodecSet(cfg.Logger)
	s.hub = newHub(src, s.codecs, &s.cfg, s.admit)
	for i := range s.upgraders {
		opt := &gws.ServerOption{
			ParallelEnabled:    false,
			CheckUtf8Enabled:   true,
			ReadMaxPayloadSize: cfg.MaxMessageBytes,
			ReadBufferSize:     readBufferBytes, // unused: upgrade hands gws its reader (readbuf.go)
			WriteBufferSize:    4 << 10,
			HandshakeTimeout:   cfg.HandshakeTimeout,
			Recovery:           gws.Recovery,
			Logger:             gwsLogger{cfg.Logger},
			NewSession:         func() gws.SessionStorage { return &sessionSlot{} },
			Authorize:          authorizeUpgrade,
		}
		if i < numCodecs {
			opt.SubProtocols = []string{s.codecs.c[i].Subprotocol()}
		}
		if cfg.Compression {
			s.deflaters[i] = gws.NewUpgrader(events{}, withDeflate(*opt)) // a copy: NewUpgrader fills in opt
		}
		s.upgraders[i] = gws.NewUpgrader(events{}, opt)
	}
	return s, nil
}

// features are the contract 1.1 additions this node serves, for welcome.
func (s *Server) features() []string {
	f := []string{proto.FeatureCandle, proto.FeatureDepth, proto.FeatureRecent, proto.FeatureStatus, proto.FeatureRESTSnapshot}
	if s.historyReadable.Load() { // never true without a History
		f = append(f, proto.FeatureDurableResume)
	}
	return f
}

// historyChecker is a History that can tell whether its stream can be
// read now (feed.History).
type historyChecker interface {
	Check(ctx context.Context) error
}

// historyLook is how often a node looks whether its history stream can
// be read, and how long one look may take.
const (
	historyLook        = 5 * time.Second
	historyLookTimeout = 2 * time.Second
)

// lookAtHistory records whether the history stream can be read now. A
// History that cannot tell is taken as readable.
func (s *Server) lookAtHistory() {
	hc, ok := s.cfg.History.(historyChecker)
	if !ok {
		s.historyReadable.Store(true)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), historyLookTimeout)
	defer cancel()
	err := hc.Check(ctx)
	if was := s.historyReadable.Swap(err == nil); was != (err == nil) {
		if err != nil {
			s.log.Warn("history stream not readable: welcome does not name durable_resume until it is", "err", err.Error())
		} else {
			s.log.Info("history stream readable: welcome names durable_resume")
		}
	}
}

// watchHistory looks at the history stream before the first handshake is
// answered, and then every historyLook until stop is closed, so that
// welcome names durable_resume only while the node can serve it (a stream
// not created yet, or deleted, does not). Without a History it does
// nothing.
func (s *Server) watchHistory(stop <-chan struct{}) {
	if s.cfg.History == nil {
		return
	}
	s.lookAtHistory()
	go every(stop, historyLook, s.lookAtHistory)
}

// every calls f every d until stop is closed.
func every(stop <-chan struct{}, d time.Duration, f func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			f()
		}
	}
}

// Handler returns the HTTP handler of the public listener: the WebSocket
// endpoint, the REST snapshots (rest.go), and Config.Fallback for every
// other path.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(WebSocketPath, s.serveWS)
	mux.HandleFunc(SnapshotPath, s.serveSnapshot)
	if s.cfg.Fallback != nil {
		mux.Handle("/", s.cfg.Fallback)
	}
	return mux
}

// Serve accepts connections on ln (wrapped in TLS when configured) until
// Shutdown. It returns http.ErrServerClosed after Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: s.cfg.HandshakeTimeout,
		ReadTimeout:       s.cfg.HandshakeTimeout,
		WriteTimeout:      s.cfg.HandshakeTimeout,
		IdleTimeout:       s.cfg.HandshakeTimeout,
		MaxHeaderBytes:    s.cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		// WebSocket needs HTTP/1.1: no h2, whose streams cannot be hijacked.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
	}
	if s.cfg.SocketSendBuffer > 0 {
		ln = sendBufferListener{ln, s.cfg.SocketSendBuffer}
	}
	// Writes the fan-out can make without waiting (inline.go), and read
	// loops that end while their connection is idle (park.go).
	var park *parker
	if !s.cfg.noParking {
		park = newParker(s.readLoop)
	}
	if park != nil {
		defer park.stop()
		s.mu.Lock()
		s.park = park
		s.mu.Unlock()
	}
	ln = sockListener{ln, park}
	if s.cfg.TLS != nil {
		tc := s.cfg.TLS.Clone()
		tc.NextProtos = []string{"http/1.1"}
		if tc.MinVersion < tls.VersionTLS12 {
			tc.MinVersion = tls.VersionTLS12
		}
		ln = newTLSGate(ln, tc, s.cfg.TLSHandshakes, s.cfg.HandshakeTimeout,
			func() { s.metrics.handshakeFails.WithLabelValues(failGone).Inc() })
	}
	s.mu.Lock()
	if s.shutDown {
		s.mu.Unlock()
		_ = ln.Close()              // as http.Server.Serve does when it returns
		return http.ErrServerClosed // Shutdown came first: it found no listener to stop
	}
	s.http = hs
	s.mu.Unlock()
	stop := make(chan struct{})
	defer close(stop)
	go s.hub.watch(stop) // channel status: NATS loss, silence
	// The stored revocations are read, and the history stream looked at,
	// before the first handshake is answered (clients wait in the listen
	// backlog meanwhile).
	s.followRevocations(stop)
	s.watchHistory(stop)
	return hs.Serve(ln)
}

// sendBufferListener sets SO_SNDBUF on every accepted TCP connection.
type sendBufferListener struct {
	net.Listener
	bytes int
}

func (l sendBufferListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(l.bytes)
	}
	return c, err
}

// Shutdown drains the node over Config.DrainWithin, then stops the
// listener. It returns when every connection is gone, or at ctx's end after
// cutting the rest.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.Drain(ctx, s.cfg.DrainWithin)
	s.mu.Lock()
	hs := s.http
	s.shutDown = true
	s.mu.Unlock()
	if hs != nil {
		err = errors.Join(err, hs.Shutdown(ctx))
	}
	return err
}

// Drain stops taking connections (new handshakes get 503 draining while
// the listener stays up, so a load balancer moves them elsewhere), sends
// every connection a reconnect notice, and closes each with 1001 at a
// random moment within within, so that clients do not come back in one
// herd. It returns when every connection is gone; at ctx's end it cuts
// the rest and returns ctx's error.
func (s *Server) Drain(ctx context.Context, within time.Duration) error {
	s.mu.Lock()
	s.drainWithin = within // before draining: a conn that sees draining reads it
	s.draining.Store(true)
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	s.log.Info("draining", "connections", len(conns), "within", within.String())
	for _, c := range conns {
		c.drain(within)
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for s.Connections() > 0 {
		select {
		case <-ctx.Done():
			s.mu.Lock()
			for c := range s.conns {
				_ = c.ws.NetConn().Close()
			}
			s.mu.Unlock()
			return ctx.Err()
		case <-tick.C:
		}
	}
	return nil
}

// Draining reports whether the node has stopped taking connections.
func (s *Server) Draining() bool { return s.draining.Load() }

// Connections returns how many WebSocket connections are open.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

func (s *Server) track(c *conn) {
	s.mu.Lock()
	s.conns[c] = struct{}{}
	if s.sweepStop == nil {
		s.sweepStop = make(chan struct{})
		go s.sweepConns(s.sweepStop)
	}
	s.mu.Unlock()
	s.metrics.connections.Inc()
}

func (s *Server) untrack(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	if len(s.conns) == 0 && s.sweepStop != nil {
		close(s.sweepStop)
		s.sweepStop = nil
	}
	s.mu.Unlock()
	s.metrics.connections.Dec()
}

// recoverPanic keeps one connection's bug from taking the node down: it
// logs the panic and closes that connection.
func (s *Server) recoverPanic(where string, c *conn) {
	if v := recover(); v != nil {
		s.panicked(where, c, v)
	}
}

// writerCounts are the writer runs a node made (Server.counts).
type writerCounts struct {
	starts, inline atomic.Uint64
}

// panicked logs a panic v recovered in where and closes c's socket.
func (s *Server) panicked(where string, c *conn, v any) {
	s.log.Error("panic recovered", c.logAttrs("where", where, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))...)
	_ = c.ws.NetConn().Close()
}

// gwsLogger routes gws's own error logs to slog.
type gwsLogger struct{ l *slog.Logger }

func (g gwsLogger) Error(v ...any) { g.l.Error("gws", "detail", fmt.Sprint(v...)) }

// numCodecs is how many codecs the gateway speaks: every codec of the
// registry (codec.All).
const numCodecs = codec.Count

// codecSet holds the codecs by their registry index (codec.Index), so
// per-codec encodings of one event can sit in a small array.
type codecSet struct {
	c   [numCodecs]codec.Codec // Static after construction.
	op  [numCodecs]gws.Opcode  // Static after construction: the frame type of each.
	log *slog.Logger           // Static after construction.
	// encodes counts the frames encoded, for tests that check what is
	// shared.
	encodes atomic.Uint64
	// z compresses the frames of deflated variants (deflate.go), and
	// compressions counts the frames it compressed, for tests that
	// check what is shared.
	z            deflater
	compressions atomic.Uint64
}

func newCodecSet(log *slog.Logger) *codecSet {
	cs := &codecSet{log: log}
	for i, c := range codec.All() {
		cs.c[i] = c
		cs.op[i] = gws.OpcodeText
		if c.Binary() {
			cs.op[i] = gws.OpcodeBinary
		}
	}
	return cs
}

func (cs *codecSet) index(cd codec.Codec) int {
	if i := codec.Index(cd); i >= 0 {
		return i
	}
	panic("gateway: unknown codec " + cd.Name())
}

// encode returns v encoded with codec i as one complete plain WebSocket
// frame, or nil (logged) on failure. The payload is encoded after room for
// the longest header, which is then filled from the back: one allocation.
// Callers ask frame (deflate.go) for a frame variant.
func (cs *codecSet) encode(i int, v any) []byte {
	cs.encodes.Add(1)
	b, err := cs.c[i].Append(make([]byte, maxFrameHeader, 256), v)
	if err != nil {
		cs.log.Error("encode failed", "codec", cs.c[i].Name(), "err", err.Error())
		return nil
	}
	n := len(b) - maxFrameHeader
	var hdr [maxFrameHeader]byte
	h := appendFrameHeader(hdr[:0], cs.op[i], n)
	start := maxFrameHeader - len(h)
	copy(b[start:], h)
	return b[start:]
}
