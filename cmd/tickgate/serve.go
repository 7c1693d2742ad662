package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tickgate/tickgate/auth"
	"github.com/tickgate/tickgate/feed"
	"github.com/tickgate/tickgate/gateway"
)

// serveFlags are the flags of `tickgate serve` (and, with other defaults,
// of `tickgate dev`).
type serveFlags struct {
	listen            string
	admin             string
	natsURL           string
	natsReconnectWait time.Duration
	tlsCert, tlsKey   string
	insecurePlaintext bool
	hmacSecretFile    string
	jwksFile          string
	publicKeyFiles    listFlag
	audience, issuer  string
	allowedOrigins    listFlag
	algorithms        listFlag
	leeway            time.Duration
	subjectPrefix     string
	nodeID            string
	allowQueryToken   bool
	heartbeat         time.Duration
	maxMessageBytes   int
	compression       bool
	maxSubscriptions  int
	maxSubsPerSub     int
	snapshotRate      int
	snapshotBurst     int
	feedPendingMsgs   int
	feedPendingBytes  int
	staleAfter        time.Duration
	candleBars        int
	history           string
	historyStream     string
	writeTimeout      time.Duration
	lagTimeout        time.Duration
	sendQueue         int
	tradeBuffer       int
	tradeBufferBytes  int
	drainWithin       time.Duration
	maxConnsPerIP     int
	socketSendBuffer  int
	maxConnsPerSub    int
	handshakeRate     float64
	commandRate       float64
	trustedProxies    listFlag
	shutdownTimeout   time.Duration
	dashboard         bool
	printConfig       bool
	log               logFlags
	fleet             fleetFlags
}

func (f *serveFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.listen, "listen", "127.0.0.1:8443", "public WebSocket listener address")
	fs.StringVar(&f.admin, "admin", "127.0.0.1:9090", "admin listener address (/metrics, /healthz, /readyz, /v1/connections, /v1/channels, /v1/revoke); empty disables it")
	fs.StringVar(&f.natsURL, "nats", "nats://127.0.0.1:4222", "NATS server URL(s), comma separated")
	fs.DurationVar(&f.natsReconnectWait, "nats-reconnect-wait", feed.DefaultReconnectWait, "pause between NATS reconnect attempts (plus jitter); the node retries forever")
	fs.StringVar(&f.tlsCert, "tls-cert", "", "TLS certificate file (PEM)")
	fs.StringVar(&f.tlsKey, "tls-key", "", "TLS private key file (PEM)")
	fs.BoolVar(&f.insecurePlaintext, "insecure-plaintext", false, "serve plain ws:// (only behind a TLS-terminating load balancer)")
	fs.StringVar(&f.hmacSecretFile, "hmac-secret-file", "", "file holding the HS256 secret (at least 32 bytes)")
	fs.StringVar(&f.jwksFile, "jwks-file", "", "JSON Web Key Set file with the verification keys")
	fs.Var(&f.publicKeyFiles, "public-key-file", "KID=FILE: a PEM public key (RSA, ECDSA, Ed25519) for tokens with that kid; FILE alone for tokens without kid; repeatable. Key files reload on SIGHUP and when they change")
	fs.StringVar(&f.audience, "audience", "", "required token audience (aud); empty: not checked")
	fs.StringVar(&f.issuer, "issuer", "", "required token issuer (iss); empty: not checked")
	fs.Var(&f.allowedOrigins, "allowed-origins", "comma-separated exact origins allowed for browsers; empty: any")
	fs.Var(&f.algorithms, "algorithms", "comma-separated JWT algorithm allow-list (default HS256,RS256,ES256,EdDSA)")
	fs.DurationVar(&f.leeway, "leeway", auth.DefaultLeeway, "clock leeway for nbf and iat; exp gets none (0: none)")
	fs.StringVar(&f.subjectPrefix, "subject-prefix", feed.DefaultSubjectPrefix, "NATS subject prefix of the feeds")
	fs.StringVar(&f.nodeID, "node-id", "", "node id in welcome messages and logs (default: hostname)")
	fs.BoolVar(&f.allowQueryToken, "allow-query-token", false, "accept the token in the access_token query parameter")
	fs.DurationVar(&f.heartbeat, "heartbeat", gateway.DefaultHeartbeatInterval, "heartbeat interval (heartbeat_ms)")
	fs.IntVar(&f.maxMessageBytes, "max-message-bytes", gateway.DefaultMaxMessageBytes, "largest client message; larger closes with 1009")
	fs.BoolVar(&f.compression, "compression", false, "negotiate permessage-deflate with clients that offer it (no context takeover): their frames go compressed, for dashboards on slow links; costs CPU")
	fs.IntVar(&f.maxSubscriptions, "max-subscriptions", gateway.DefaultMaxSubscriptions, "channels per connection")
	fs.IntVar(&f.maxSubsPerSub, "max-subscriptions-per-sub", gateway.DefaultMaxSubscriptionsPerSubject, "subscriptions of one token sub over all its connections on this node (too_many_subscriptions beyond; -1: no limit)")
	fs.IntVar(&f.snapshotRate, "snapshot-rate", gateway.DefaultSnapshotRate, "snapshot and resume bytes per second one connection may ask for (rate_limited beyond, 1008 on abuse)")
	fs.IntVar(&f.snapshotBurst, "snapshot-burst", gateway.DefaultSnapshotBurst, "snapshot and resume bytes one connection may ask for at once, above --snapshot-rate")
	fs.StringVar(&f.history, "history", "memory", "where a resume the node's memory cannot serve is read: memory (none), or jetstream (the --history-stream stream, on any node)")
	fs.StringVar(&f.historyStream, "history-stream", feed.DefaultStream, "the JetStream stream over the feed subjects that --history jetstream reads (tickgate stream creates it)")
	fs.DurationVar(&f.staleAfter, "stale-after", gateway.DefaultStaleAfter, "tell subscribers a channel is stale (feed_silent) when nothing, not even a publisher heartbeat, arrived on it for this long (0: never)")
	fs.IntVar(&f.candleBars, "candle-bars", gateway.DefaultCandleBars, "bars each candle channel keeps for snapshots (a subscriber's bars option is served up to it)")
	fs.IntVar(&f.feedPendingMsgs, "feed-pending-messages", feed.DefaultPendingMsgs, "feed messages the node queues per channel while it is busy; beyond, they are dropped (counted, reported as gaps)")
	fs.IntVar(&f.feedPendingBytes, "feed-pending-bytes", feed.DefaultPendingBytes, "feed bytes the node queues per channel while it is busy; beyond, they are dropped (counted, reported as gaps)")
	fs.DurationVar(&f.writeTimeout, "write-timeout", gateway.DefaultWriteTimeout, "a write stalled this long evicts the connection")
	fs.DurationVar(&f.lagTimeout, "lag-timeout", 0, "a client that has not confirmed (by its pong) data sent this long ago is evicted (4008); 0: 2 x --write-timeout")
	fs.IntVar(&f.sendQueue, "send-queue", gateway.DefaultSendQueueLimit, "replies and control frames pending per connection before it is evicted (market data is bounded per channel)")
	fs.IntVar(&f.tradeBuffer, "trade-buffer", gateway.DefaultTradeBufferMessages, "trades pending per subscription while its connection is behind; more evicts it (4008)")
	fs.IntVar(&f.tradeBufferBytes, "trade-buffer-bytes", gateway.DefaultTradeBufferBytes, "bytes of trades pending per subscription; more evicts the connection (4008)")
	fs.IntVar(&f.socketSendBuffer, "socket-send-buffer", gateway.DefaultSocketSendBuffer, "kernel send buffer per connection, bytes (-1: the kernel's autotuning)")
	fs.IntVar(&f.maxConnsPerIP, "max-conns-per-ip", gateway.DefaultMaxConnsPerIP, "open connections per client address (429 beyond; -1: no limit)")
	fs.IntVar(&f.maxConnsPerSub, "max-conns-per-sub", gateway.DefaultMaxConnsPerSubject, "open connections per token sub (429 beyond; -1: no limit)")
	fs.Float64Var(&f.handshakeRate, "handshake-rate", gateway.DefaultHandshakeRate, "new connections per second, node-wide (429 with Retry-After beyond)")
	fs.Float64Var(&f.commandRate, "command-rate", gateway.DefaultCommandRate, "commands (and pings) per second per connection (rate_limited beyond, 1008 on abuse)")
	fs.Var(&f.trustedProxies, "trusted-proxies", "comma-separated CIDRs of load balancers whose X-Forwarded-For gives the client address")
	fs.DurationVar(&f.drainWithin, "drain-within", gateway.DefaultDrainWithin, "on SIGTERM/SIGINT, connections are closed (after a reconnect notice) at random moments within this")
	fs.BoolVar(&f.dashboard, "dashboard", false, "serve the live dashboard at / on the public listener (it asks for a token); the WebSocket endpoint is unchanged")
	fs.BoolVar(&f.printConfig, "print-config", false, "print the effective configuration (flags, environment and file merged) and exit")
	fs.DurationVar(&f.shutdownTimeout, "shutdown-timeout", 15*time.Second, "how long shutdown waits for connections to close before cutting them")
	f.log.register(fs)
	f.fleet.register(fs)
}

// defaults fills in the defaults that depend on the machine.
func (f *serveFlags) defaults() error {
	if f.nodeID == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			return usagef("--node-id is empty and the host name is unknown (%v)", err)
		}
		f.nodeID = host
	}
	return nil
}

// check checks every value, naming the flag, before anything starts. (The
// packages below would turn a zero into their own default; a zero given
// here is refused unless the flag's help says what it means.)
func (f *serveFlags) check() error {
	checks := []struct {
		flag string
		got  any
		ok   bool
		rule string
	}{
		{"nats-reconnect-wait", f.natsReconnectWait, f.natsReconnectWait > 0, "above 0"},
		{"leeway", f.leeway, f.leeway >= 0 && f.leeway <= auth.MaxLeeway, fmt.Sprintf("between 0 and %v", auth.MaxLeeway)},
		{"heartbeat", f.heartbeat, f.heartbeat >= 100*time.Millisecond, "at least 100ms"},
		{"max-message-bytes", f.maxMessageBytes, f.maxMessageBytes >= gateway.MinMessageBytes, fmt.Sprintf("at least %d", gateway.MinMessageBytes)},
		{"max-subscriptions", f.maxSubscriptions, f.maxSubscriptions > 0, "above 0"},
		{"max-subscriptions-per-sub", f.maxSubsPerSub, f.maxSubsPerSub == -1 || f.maxSubsPerSub > 0, "-1 (no limit) or above 0"},
		{"snapshot-rate", f.snapshotRate, f.snapshotRate > 0, "above 0"},
		{"snapshot-burst", f.snapshotBurst, f.snapshotBurst > 0, "above 0"},
		{"feed-pending-messages", f.feedPendingMsgs, f.feedPendingMsgs > 0, "above 0"},
		{"stale-after", f.staleAfter, f.staleAfter >= 0, "0 (never) or above"},
		{"candle-bars", f.candleBars, f.candleBars > 0, "above 0"},
		{"history", f.history, f.history == "memory" || f.history == "jetstream", "memory or jetstream"},
		{"history-stream", f.historyStream, f.historyStream != "" && !strings.ContainsAny(f.historyStream, ".*> \t"), "a stream name (no dots, wildcards or spaces)"},
		{"feed-pending-bytes", f.feedPendingBytes, f.feedPendingBytes >= 1<<10, "at least 1024"},
		{"write-timeout", f.writeTimeout, f.writeTimeout > 0, "above 0"},
		{"lag-timeout", f.lagTimeout, f.lagTimeout >= 0, "0 (twice --write-timeout) or above"},
		{"send-queue", f.sendQueue, f.sendQueue > 0, "above 0"},
		{"trade-buffer", f.tradeBuffer, f.tradeBuffer > 0, "above 0"},
		{"trade-buffer-bytes", f.tradeBufferBytes, f.tradeBufferBytes >= gateway.MinTradeBufferBytes && f.tradeBufferBytes <= gateway.MaxTradeBufferBytes,
			fmt.Sprintf("from %d to %d", gateway.MinTradeBufferBytes, gateway.MaxTradeBufferBytes)},
		{"socket-send-buffer", f.socketSendBuffer, f.socketSendBuffer == -1 || f.socketSendBuffer > 0, "-1 (the kernel's autotuning) or above 0"},
		{"max-conns-per-ip", f.maxConnsPerIP, f.maxConnsPerIP == -1 || f.maxConnsPerIP > 0, "-1 (no limit) or above 0"},
		{"max-conns-per-sub", f.maxConnsPerSub, f.maxConnsPerSub == -1 || f.maxConnsPerSub > 0, "-1 (no limit) or above 0"},
		{"handshake-rate", f.handshakeRate, f.handshakeRate >= 0.5, "at least 0.5 (its burst is twice the rate, at least one handshake)"},
		{"command-rate", f.commandRate, f.commandRate > 0, "above 0"},
		{"drain-within", f.drainWithin, f.drainWithin > 0, "above 0"},
		{"shutdown-timeout", f.shutdownTimeout, f.shutdownTimeout > f.drainWithin, "longer than --drain-within, or the last connections of a drain are cut without a close"},
	}
	for _, c := range checks {
		if !c.ok {
			return usagef("--%s must be %s (got %v)", c.flag, c.rule, c.got)
		}
	}
	for _, o := range f.allowedOrigins.vals {
		if err := gateway.ValidOrigin(o); err != nil {
			return usagef("--allowed-origins: %v", err)
		}
	}
	if err := feed.ValidSubjectPrefix(f.subjectPrefix); err != nil { // an empty one would be taken for the default, md
		return usagef("--subject-prefix: %v", err)
	}
	return f.fleet.check(f.subjectPrefix)
}

// staleAfter is --stale-after as gateway.Config wants it: there zero means
// the default and a negative value means never.
func staleAfter(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// authLeeway is --leeway as auth.Config wants it: there zero means the
// default and a negative value means none.
func authLeeway(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// tlsConfig loads the certificate, or returns nil for --insecure-plaintext.
// The certificate is served by a certReloader, which Run keeps current.
func (f *serveFlags) tlsConfig(log *slog.Logger) (*tls.Config, *certReloader, error) {
	if f.insecurePlaintext {
		if f.tlsCert != "" || f.tlsKey != "" {
			return nil, nil, usagef("--insecure-plaintext excludes --tls-cert/--tls-key")
		}
		return nil, nil, nil
	}
	if f.tlsCert == "" || f.tlsKey == "" {
		return nil, nil, usagef("--tls-cert and --tls-key are required (or --insecure-plaintext behind a TLS-terminating load balancer)")
	}
	certs, err := newCertReloader(f.tlsCert, f.tlsKey, log)
	if err != nil {
		return nil, nil, err
	}
	return &tls.Config{GetCertificate: certs.getCertificate, MinVersion: tls.VersionTLS12}, certs, nil
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f serveFlags
	fs := newFlagSet("serve", stderr)
	f.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := f.defaults(); err != nil {
		return err
	}
	if f.printConfig {
		// Before the checks: a config that fails them is when it is
		// most worth seeing.
		printConfig(stdout, fs)
		return nil
	}
	if err := f.check(); err != nil {
		return err
	}
	logger, err := f.log.logger(stderr)
	if err != nil {
		return err
	}
	tc, certs, err := f.tlsConfig(logger)
	if err != nil {
		return err
	}
	if certs != nil {
		go certs.Run(ctx) // SIGHUP and renewed files reload the certificate
	}
	keySrc, err := f.keySources()
	if err != nil {
		return err
	}
	reloader, err := newKeyReloader(keySrc, logger)
	if err != nil {
		return err
	}
	go reloader.Run(ctx) // SIGHUP reloads from here on
	var dash http.Handler
	if f.dashboard {
		dash = dashboardHandler(dashboardConfig{Mode: "serve"})
	}
	n, err := startNode(nodeOptions{flags: &f, tls: tc, reloader: reloader, logger: logger, dashboard: dash})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "tickgate serving %s\n", n.url())
	if dash != nil {
		fmt.Fprintf(stdout, "dashboard: %s\n", n.pageURL())
	}
	return n.wait(ctx)
}

// nodeOptions is what startNode needs beyond the flags.
type nodeOptions struct {
	flags    *serveFlags
	tls      *tls.Config
	keys     []auth.Key
	reloader *keyReloader // when set, its key set (reloaded) replaces keys
	logger   *slog.Logger
	// dashboard, when set, serves every path of the public listener but
	// the WebSocket endpoint.
	dashboard http.Handler
}

// node is one running gateway: NATS source, server, listeners.
type node struct {
	flags  *serveFlags
	logger *slog.Logger
	src    *feed.Source
	srv    *gateway.Server
	ln     net.Listener
	admin  *http.Server
	adminL net.Listener
	tls    bool
	errc   chan error
	reg    *prometheus.Registry
	hist   *feed.History // with --history jetstream; else nil
	// adminToken guards /v1/ on the admin listener ("" : open).
	adminToken string
}

func startNode(o nodeOptions) (*node, error) {
	f := o.flags
	keys := auth.NewKeySet()
	if o.reloader != nil {
		keys = o.reloader.keys
	} else if err := keys.Set(o.keys); err != nil {
		return nil, err
	}
	verifier, err := auth.NewVerifier(auth.Config{
		Algorithms: f.algorithms.vals,
		Audience:   f.audience,
		Issuer:     f.issuer,
		Leeway:     authLeeway(f.leeway),
	}, keys)
	if err != nil {
		return nil, err
	}
	proxies, err := parsePrefixes(f.trustedProxies.vals)
	if err != nil {
		return nil, err
	}
	adminToken, err := f.fleet.adminToken()
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if o.reloader != nil {
		reg.MustRegister(o.reloader.collectors()...)
	}
	src, err := feed.Connect(feed.Config{
		URL:             f.natsURL,
		ReconnectWait:   f.natsReconnectWait,
		SubjectPrefix:   f.subjectPrefix,
		PendingMessages: f.feedPendingMsgs,
		PendingBytes:    f.feedPendingBytes,
		Name:            "tickgate " + f.nodeID,
		Logger:          o.logger,
	})
	if err != nil {
		return nil, err
	}
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tickgate_nats_connected", Help: "1 while the node's NATS connection is up."},
			func() float64 { return boolFloat(src.Connected()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "tickgate_nats_reconnects_total", Help: "Reconnects of the node's NATS connection."},
			func() float64 { return float64(src.Reconnects()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tickgate_nats_subscriptions", Help: "Channels the node holds NATS subscriptions for (interest-based)."},
			func() float64 { return float64(src.Channels()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "tickgate_feed_decode_errors_total", Help: "Feed payloads dropped because they did not decode or validate."},
			func() float64 { return float64(src.DecodeErrors()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "tickgate_feed_dropped_total", Help: "Feed messages the node dropped because a channel's pending limits (--feed-pending-messages, --feed-pending-bytes) were reached or its feed queue was full; each shows as a feed gap."},
			func() float64 { return float64(src.Dropped()) }),
	)
	ctl, err := feed.NewControl(src, f.fleet.controlConfig())
	if err != nil {
		src.Close()
		return nil, err
	}
	var (
		hist    *feed.History
		history gateway.History // nil unless --history jetstream: an interface holding a nil pointer is not nil
	)
	if f.history == "jetstream" {
		if hist, err = feed.NewHistory(src, f.historyStream, 0); err != nil {
			src.Close()
			return nil, err
		}
		history = hist
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		if err := hist.Check(ctx); err != nil {
			// The node serves anyway, from memory, and reads the stream as
			// soon as it is there (every resume looks again).
			o.logger.Warn("history stream not readable: resumes beyond memory fall back (snapshot, history_unavailable) until it is; /readyz says so",
				"stream", f.historyStream, "err", err.Error())
		} else {
			o.logger.Info("history stream readable: resumes beyond memory come from it", "stream", f.historyStream)
		}
		cancel()
	}
	srv, err := gateway.New(gateway.Config{
		NodeID:                     f.nodeID,
		TLS:                        o.tls,
		AllowedOrigins:             f.allowedOrigins.vals,
		AllowQueryToken:            f.allowQueryToken,
		HeartbeatInterval:          f.heartbeat,
		MaxMessageBytes:            f.maxMessageBytes,
		Compression:                f.compression,
		MaxSubscriptions:           f.maxSubscriptions,
		History:                    history,
		MaxSubscriptionsPerSubject: f.maxSubsPerSub,
		SnapshotRate:               f.snapshotRate,
		SnapshotBurst:              f.snapshotBurst,
		StaleAfter:                 staleAfter(f.staleAfter),
		CandleBars:                 f.candleBars,
		WriteTimeout:               f.writeTimeout,
		LagTimeout:                 f.lagTimeout,
		SendQueueLimit:             f.sendQueue,
		TradeBufferMessages:        f.tradeBuffer,
		TradeBufferBytes:           f.tradeBufferBytes,
		DrainWithin:                f.drainWithin,
		MaxConnsPerIP:              f.maxConnsPerIP,
		SocketSendBuffer:           f.socketSendBuffer,
		MaxConnsPerSubject:         f.maxConnsPerSub,
		HandshakeRate:              f.handshakeRate,
		Fallback:                   o.dashboard,
		CommandRate:                f.commandRate,
		TrustedProxies:             proxies,
		Revocations:                ctl,
		RevocationTTL:              f.fleet.revocationTTL,
		Metrics:                    gateway.NewMetrics(reg),
		Logger:                     o.logger,
	}, verifier, src)
	if err != nil {
		src.Close()
		return nil, err
	}
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		src.Close()
		return nil, fmt.Errorf("--listen: %w", err)
	}
	n := &node{flags: f, logger: o.logger, src: src, srv: srv, ln: ln, tls: o.tls != nil, errc: make(chan error, 2), reg: reg, hist: hist, adminToken: adminToken}
	if f.admin != "" {
		if n.adminL, err = net.Listen("tcp", f.admin); err != nil {
			_ = ln.Close()
			src.Close()
			return nil, fmt.Errorf("--admin: %w", err)
		}
		n.admin = &http.Server{Handler: n.adminHandler(), ReadHeaderTimeout: 5 * time.Second}
		go func() { n.errc <- n.admin.Serve(n.adminL) }()
		warnOpenAdmin(o.logger, n.adminL.Addr(), adminToken != "")
	}
	go func() { n.errc <- srv.Serve(ln) }()
	o.logger.Info("node started", "listen", ln.Addr().String(), "tls", n.tls, "nats", redactURLs(f.natsURL), "node", f.nodeID, "dashboard", o.dashboard != nil)
	return n, nil
}

// parsePrefixes reads --trusted-proxies: CIDRs, or bare addresses.
func parsePrefixes(vals []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(vals))
	for _, v := range vals {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			a, aerr := netip.ParseAddr(v)
			if aerr != nil {
				return nil, usagef("--trusted-proxies: %q is not a CIDR or an address", v)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// url is the WebSocket URL clients connect to.
func (n *node) url() string {
	scheme := "ws"
	if n.tls {
		scheme = "wss"
	}
	return scheme + "://" + n.ln.Addr().String() + gateway.WebSocketPath
}

// revocationsDetail is /readyz's line about the revocation store, when the
// node has not read it since it started or last got NATS back (a read
// failed: it tries again, backing off from 2 s to 30 s). The node stays ready meanwhile: a
// JetStream outage must not take every node out of the load balancer,
// and revocations published on NATS still reach it.
func (n *node) revocationsDetail() string {
	if !n.srv.RevocationsUnread() {
		return ""
	}
	return "revocations: stored ones not read yet (trying again): revocations made while this node was not listening are unknown to it\n"
}

// historyDetail is /readyz's line about the history stream: a node that
// cannot read it is still ready (it serves from memory), and says so.
func (n *node) historyDetail() string {
	if n.hist == nil {
		return "history: memory\n"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := n.hist.Check(ctx); err != nil {
		return fmt.Sprintf("history: jetstream stream %s not readable (%v): resumes from memory only\n", n.hist.Stream(), err)
	}
	return fmt.Sprintf("history: jetstream stream %s\n", n.hist.Stream())
}

// pageURL is the dashboard's URL.
func (n *node) pageURL() string {
	scheme := "http"
	if n.tls {
		scheme = "https"
	}
	return scheme + "://" + n.ln.Addr().String() + "/"
}

func (n *node) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(n.reg, promhttp.HandlerOpts{}))
	mux.Handle("/v1/", n.adminAPI()) // inspection and revocation (fleet.go)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !n.src.Connected() || n.srv.Draining() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, "not ready\n")
			return
		}
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "ready\n"+n.historyDetail()+n.revocationsDetail())
	})
	return mux
}

// wait runs until ctx ends (a signal) or a listener fails, then shuts the
// node down.
func (n *node) wait(ctx context.Context) error {
	var err error
	select {
	case <-ctx.Done():
	case err = <-n.errc:
	}
	n.logger.Info("node stopping")
	sctx, cancel := context.WithTimeout(context.Background(), n.flags.shutdownTimeout)
	defer cancel()
	if serr := n.srv.Shutdown(sctx); serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		n.logger.Warn("shutdown incomplete", "err", serr.Error())
	}
	if n.admin != nil {
		_ = n.admin.Shutdown(sctx)
	}
	n.src.Close()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}
