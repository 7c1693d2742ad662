package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/tickgate/tickgate/auth"
	"github.com/tickgate/tickgate/feed"
	"github.com/tickgate/tickgate/feed/feedsim"
	"github.com/tickgate/tickgate/internal/selfsigned"
)

// devAudience is the aud of dev-mode tokens.
const devAudience = "tickgate"

// runDev runs serve with everything embedded: NATS, the synthetic feed, a
// self-signed certificate and a fresh HMAC secret; it prints the URL and a
// token for all channels valid 24 h.
func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f serveFlags
	fs := newFlagSet("dev", stderr)
	f.register(fs)
	natsListen := fs.String("nats-listen", "127.0.0.1:4222", "embedded NATS server address")
	symbols := fs.Int("symbols", 12, "how many symbols the synthetic feed publishes (BTC-USD, ETH-USD, SOL-USD first)")
	rate := fs.Float64("rate", 200, "synthetic feed messages per second, all channels together")
	dir := fs.String("dir", filepath.Join(os.TempDir(), "tickgate-dev"), "where the certificate and HMAC secret are written")
	// dev's own defaults. They are assigned, not Set, so that the
	// environment and the config file still apply to these flags.
	f.audience, f.nodeID, f.history, f.dashboard = devAudience, "dev-1", "jetstream", true
	fs.Lookup("audience").DefValue, fs.Lookup("node-id").DefValue = devAudience, "dev-1"
	fs.Lookup("history").DefValue, fs.Lookup("dashboard").DefValue = "jetstream", "true"
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	// dev brings its own NATS, certificate and keys, so serve's flags for
	// them would be ignored: given as flags or in the config file they are
	// refused. The environment is shared with serve and feedsim (a
	// TICKGATE_NATS exported for feedsim), so from there they are ignored
	// with a warning.
	var ignored []string
	for _, name := range []string{"nats", "tls-cert", "tls-key", "hmac-secret-file", "jwks-file", "public-key-file", "print-config"} {
		switch {
		case !set[name]:
		case !givenAsFlag(args, name) && os.Getenv(envVar(name)) == fs.Lookup(name).Value.String():
			ignored = append(ignored, envVar(name))
		default:
			return usagef("--%s is a serve flag; dev embeds NATS (--nats-listen), a self-signed certificate and a fresh HMAC secret", name)
		}
	}
	if len(f.algorithms.vals) > 0 && !slices.Contains(f.algorithms.vals, "HS256") {
		return usagef("--algorithms must include HS256: dev signs its token with a fresh HMAC secret")
	}
	if err := f.defaults(); err != nil {
		return err
	}
	if err := f.check(); err != nil {
		return err
	}
	if err := checkSimFlags(*symbols, *rate); err != nil {
		return err
	}
	logger, err := f.log.logger(stderr)
	if err != nil {
		return err
	}
	for _, env := range ignored {
		logger.Warn("dev ignores a serve setting from the environment", "variable", env)
	}

	if err := os.MkdirAll(*dir, 0o700); err != nil {
		return fmt.Errorf("--dir: %w", err)
	}
	ns, err := startEmbeddedNATS(*natsListen, filepath.Join(*dir, "jetstream"))
	if err != nil {
		return err
	}
	defer ns.Shutdown()
	f.natsURL = ns.ClientURL()
	if f.history == "jetstream" {
		// The history stream, so that resume on any node works in the
		// first minute; an hour of the synthetic feed.
		if err := devStream(ctx, f.natsURL, f.subjectPrefix, f.historyStream); err != nil {
			return err
		}
	}
	cert, err := selfsigned.New(7 * 24 * time.Hour)
	if err != nil {
		return err
	}
	certFile := filepath.Join(*dir, "cert.pem")
	if err := os.WriteFile(certFile, cert.CertPEM, 0o600); err != nil {
		return fmt.Errorf("--dir: %w", err)
	}
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	secretHex := []byte(hex.EncodeToString(secret))
	secretFile := filepath.Join(*dir, "hmac.secret")
	if err := os.WriteFile(secretFile, secretHex, 0o600); err != nil {
		return fmt.Errorf("--dir: %w", err)
	}
	keys, err := auth.LoadHMACSecretFile(secretFile)
	if err != nil {
		return err
	}
	signer, err := auth.NewHMACSigner(secretHex, "")
	if err != nil {
		return err
	}
	token, err := signer.Sign(auth.TokenSpec{Subject: "dev", Channels: []string{">"}, TTL: 24 * time.Hour, Audience: f.audience, Issuer: f.issuer})
	if err != nil {
		return err
	}

	sim, err := feedsim.New(feedsim.Config{
		Count: *symbols, Rate: *rate, SubjectPrefix: f.subjectPrefix, Logger: logger,
		// Books reach a node only with a feed snapshot: a short period gets
		// a newcomer's first book on screen within seconds.
		SnapshotEvery: 3 * time.Second,
	})
	if err != nil {
		return err
	}

	tc := cert.ServerConfig()
	if f.insecurePlaintext {
		tc = nil
	}
	var dash http.Handler
	if f.dashboard {
		dash = dashboardHandler(dashboardConfig{Mode: "dev", Symbols: sim.Symbols()})
	}
	n, err := startNode(nodeOptions{flags: &f, tls: tc, keys: keys, logger: logger, dashboard: dash})
	if err != nil {
		return err
	}
	pub, err := feed.DialPublisher(ns.ClientURL(), "tickgate dev feedsim", f.subjectPrefix)
	if err != nil {
		return fmt.Errorf("feedsim: %w", err)
	}
	defer pub.Close()
	simCtx, stopSim := context.WithCancel(ctx)
	defer stopSim()
	go func() {
		if err := sim.Run(simCtx, pub.Publish); err != nil && !errors.Is(err, context.Canceled) {
			logger.Error("feedsim stopped", "err", err.Error())
		}
	}()

	fmt.Fprintf(stdout, "tickgate dev: embedded NATS at %s, synthetic feed of %d symbols at %g msg/s\n", ns.ClientURL(), *symbols, *rate)
	fmt.Fprintf(stdout, "url: %s\n", n.url())
	if tc != nil {
		fmt.Fprintf(stdout, "certificate (self-signed, trust it in your client): %s\n", certFile)
	}
	fmt.Fprintf(stdout, "hmac secret (for `tickgate token --hmac-secret-file`): %s\n", secretFile)
	if n.adminL != nil {
		fmt.Fprintf(stdout, "admin: http://%s (/metrics, /healthz, /readyz, /v1/connections, /v1/channels, /v1/revoke; tickgate top --admin http://%s)\n", n.adminL.Addr(), n.adminL.Addr())
	}
	if dash != nil {
		// The token travels in the fragment, which browsers never send to
		// a server, so it stays out of access logs; the page removes it
		// from the address bar.
		fmt.Fprintf(stdout, "dashboard: %s#token=%s\n", n.pageURL(), token)
	}
	fmt.Fprintf(stdout, "token: %s\n", token)
	return n.wait(ctx)
}

// devStream creates (or updates) dev's history stream: file storage in
// dev's directory, an hour of the feed.
func devStream(ctx context.Context, url, prefix, name string) error {
	src, err := feed.Connect(feed.Config{URL: url, SubjectPrefix: prefix, Name: "tickgate dev stream"})
	if err != nil {
		return err
	}
	defer src.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := src.EnsureStream(ctx, feed.StreamConfig{Name: name, SubjectPrefix: prefix, MaxAge: time.Hour, MaxMsgsPerSubject: 100_000}); err != nil {
		return fmt.Errorf("dev history stream: %w", err)
	}
	return nil
}

// startEmbeddedNATS runs a NATS server in the process on addr, with
// JetStream keeping its files in storeDir.
func startEmbeddedNATS(addr, storeDir string) (*natsserver.Server, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, usagef("--nats-listen %q: %v", addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, usagef("--nats-listen %q: bad port", addr)
	}
	if port == 0 {
		port = natsserver.RANDOM_PORT
	}
	ns, err := natsserver.NewServer(&natsserver.Options{Host: host, Port: port, NoSigs: true, NoLog: true, ServerName: "tickgate-dev",
		JetStream: true, StoreDir: storeDir})
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("embedded NATS: not ready after 10s (is the port taken?)")
	}
	return ns, nil
}
