package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/tickgate/tickgate/auth"
	"github.com/tickgate/tickgate/internal/proc"
	"github.com/tickgate/tickgate/internal/spawn"
)

// target is the gateway under test and how to reach it.
type target struct {
	dialect dialect     // the server's client protocol
	url     string      // wss:// URL of the WebSocket endpoint
	tls     *tls.Config // client TLS config (ServerName set), nil for ws://
	natsURL string      // where the feed is published; "" drives no feed
	// feedDirect: natsURL is the feed's own NATS server (feednats.go),
	// written to directly; otherwise the NATS client library publishes.
	feedDirect bool
	feedPID    int              // the feed's NATS server process (feednats.go); 0: none
	feedNote   string           // why that process could not be raised above the load client; "": it was, or there is none
	mint       minter           // mints a token per connection; nil: token (or none) for all
	token      string           // one token for every connection
	pid        int              // gateway process for /proc sampling; 0: none
	build      *spawn.BuildInfo // the binary that was built, when one was
	logPath    string           // the spawned gateway's stderr
	proc       *spawn.Process   // the spawned gateway; nil: attached

	cleanup []func() // run in reverse order by close
}

// close stops what the target started (gateway process, NATS, temp dir).
func (t *target) close() {
	for i := len(t.cleanup) - 1; i >= 0; i-- {
		t.cleanup[i]()
	}
	t.cleanup = nil
}

// attach describes an already running gateway from the flags.
func attach(c *config) (*target, error) {
	t := &target{dialect: tickgateDialect{}, url: c.url, natsURL: c.natsURL, token: c.token, pid: c.gatewayPID}
	u, _ := url.Parse(c.url) // validated
	if u.Scheme == "wss" {
		t.tls = &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.insecureSkipVerify}
		if c.caFile != "" {
			pem, err := os.ReadFile(c.caFile)
			if err != nil {
				return nil, fmt.Errorf("--ca-file: %w", err)
			}
			t.tls.RootCAs = x509.NewCertPool()
			if !t.tls.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("--ca-file %s: no PEM certificate", c.caFile)
			}
		}
	}
	if c.hmacSecretFile != "" {
		signer, err := auth.NewHMACSignerFile(c.hmacSecretFile, "")
		if err != nil {
			return nil, fmt.Errorf("--hmac-secret-file: %w", err)
		}
		t.mint = tickgateMinter(signer, c)
	}
	if c.gatewayPID != 0 {
		if _, err := proc.NewReader(c.gatewayPID).Sample(); err != nil {
			return nil, fmt.Errorf("--gateway-pid %d: %w", c.gatewayPID, err)
		}
	}
	return t, nil
}

// minter mints the token of one connection (sub) valid for ttl.
type minter func(sub string, ttl time.Duration) (string, error)

// tickgateMinter mints tickgate tokens for every channel.
func tickgateMinter(s *auth.Signer, c *config) minter {
	return func(sub string, ttl time.Duration) (string, error) {
		return s.Sign(auth.TokenSpec{Subject: sub, Channels: []string{">"}, TTL: ttl, Audience: c.audience, Issuer: c.issuer})
	}
}

// start starts the server named name (servers.go) on loopback with a
// fresh self-signed certificate and HMAC secret in a temp dir; its
// process is killed if tickbench dies.
func start(ctx context.Context, c *config, name string, logf func(string, ...any)) (_ *target, err error) {
	s, err := lookupServer(name)
	if err != nil {
		return nil, err
	}
	t := &target{dialect: s.dialect(c)}
	defer func() {
		if err != nil {
			t.close()
		}
	}()
	dir, err := os.MkdirTemp("", "tickbench-")
	if err != nil {
		return nil, err
	}
	t.cleanup = append(t.cleanup, func() { _ = os.RemoveAll(dir) })
	creds, err := spawn.WriteCredentials(dir)
	if err != nil {
		return nil, err
	}
	t.tls = creds.ClientTLS
	if c.plain {
		t.tls = nil
	}
	t.logPath = filepath.Join(dir, s.name+".log")
	if s.name == "tickgate" && c.gatewayLog != "" {
		t.logPath = c.gatewayLog
	}
	opts, err := s.launch(ctx, c, t, launchEnv{dir: dir, creds: creds, logf: logf})
	if err != nil {
		return nil, err
	}
	opts = c.pinned(opts)
	opts.LogPath, opts.StartTimeout = t.logPath, c.startTimeout
	logf("starting %s: %s %s", s.name, opts.Bin, strings.Join(opts.Args, " "))
	p, err := spawn.Start(ctx, opts)
	if err != nil {
		return nil, err
	}
	t.proc, t.pid = p, p.PID
	t.cleanup = append(t.cleanup, p.Stop)
	if t.url == "" {
		t.url = p.URL
	}
	if s.ready != nil {
		if err := s.ready(t, p.URL); err != nil {
			return nil, err
		}
	}
	want := "wss://"
	if c.plain {
		want = "ws://"
	}
	if !strings.HasPrefix(t.url, want) {
		return nil, fmt.Errorf("%s serves %q, want %s", s.name, t.url, want)
	}
	return t, nil
}

// pinned runs the server on CPUs 0..N-1 with taskset (where the machine
// has it) and GOMAXPROCS=N, for --cpus N.
func (c *config) pinned(o spawn.Options) spawn.Options {
	if c.cpus <= 0 {
		return o
	}
	o.Env = append(o.Env, "GOMAXPROCS="+strconv.Itoa(c.cpus))
	if ts, err := exec.LookPath("taskset"); err == nil {
		o.Args = append([]string{"-c", fmt.Sprintf("0-%d", c.cpus-1), o.Bin}, o.Args...)
		o.Bin = ts
	}
	return o
}

// exited reports whether a spawned gateway has exited, and how.
func (t *target) exited() (bool, error) {
	if t.proc == nil {
		return false, nil
	}
	return t.proc.Exited()
}
