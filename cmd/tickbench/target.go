package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/tickgate/tickgate/auth"
	"github.com/tickgate/tickgate/internal/proc"
	"github.com/tickgate/tickgate/internal/spawn"
)

// target is the gateway under test and how to reach it.
type target struct {
	dialect dialect          // the server's client protocol
	url     string           // wss:// URL of the WebSocket endpoint
	tls     *tls.Config      // client TLS config (ServerName set), nil for ws://
	natsURL string           // where the feed is published; "" drives no feed
	signer  *auth.Signer     // mints tokens; nil when token is set
	token   string           // one token for every connection
	pid     int              // gateway process for /proc sampling; 0: none
	build   *spawn.BuildInfo // the binary that was built, when one was
	logPath string           // the spawned gateway's stderr
	proc    *spawn.Process   // the spawned gateway; nil: attached

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
		raw, err := os.ReadFile(c.hmacSecretFile)
		if err != nil {
			return nil, fmt.Errorf("--hmac-secret-file: %w", err)
		}
		if t.signer, err = auth.NewHMACSigner([]byte(strings.TrimRight(string(raw), "\r\n")), ""); err != nil {
			return nil, fmt.Errorf("--hmac-secret-file: %w", err)
		}
	}
	if c.gatewayPID != 0 {
		if _, err := proc.NewReader(c.gatewayPID).Sample(); err != nil {
			return nil, fmt.Errorf("--gateway-pid %d: %w", c.gatewayPID, err)
		}
	}
	return t, nil
}

// start starts an embedded NATS server and the gateway binary (built first
// when --gateway-bin is empty) with a fresh self-signed certificate and HMAC
// secret in a temp dir. The gateway is killed if tickbench dies.
func start(ctx context.Context, c *config, logf func(string, ...any)) (_ *target, err error) {
	t := &target{dialect: tickgateDialect{}}
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

	ns, err := spawn.EmbeddedNATS("tickbench")
	if err != nil {
		return nil, err
	}
	t.cleanup = append(t.cleanup, ns.Shutdown)
	t.natsURL = ns.ClientURL()

	creds, err := spawn.WriteCredentials(dir)
	if err != nil {
		return nil, err
	}
	t.signer, t.tls = creds.Signer, creds.ClientTLS

	bin := c.gatewayBin
	if bin == "" {
		bin = filepath.Join(dir, "tickgate")
		logf("building the gateway: go build -o %s ./cmd/tickgate (in %s)", bin, c.moduleDir)
		bctx, cancel := context.WithTimeout(ctx, c.startTimeout)
		defer cancel()
		if t.build, err = spawn.Build(bctx, c.moduleDir, bin); err != nil {
			return nil, err
		}
	}

	t.logPath = c.gatewayLog
	if t.logPath == "" {
		t.logPath = filepath.Join(dir, "gateway.log")
	}
	args := append([]string{"serve",
		"--listen=127.0.0.1:0", "--admin=", "--nats=" + t.natsURL},
		creds.Args()...)
	args = append(args,
		"--audience="+c.audience, "--node-id=tickbench", "--subject-prefix="+c.subjectPrefix,
		"--log-level=warn", "--drain-within=200ms", "--shutdown-timeout=5s",
		// every connection comes from a few loopback addresses
		"--max-conns-per-ip=-1",
	)
	if c.issuer != "" {
		args = append(args, "--issuer="+c.issuer)
	}
	for _, f := range c.gatewayFlags {
		args = append(args, strings.Fields(f)...) // later flags win
	}
	logf("starting the gateway: %s %s", bin, strings.Join(args, " "))
	p, err := spawn.Start(ctx, spawn.Options{Bin: bin, Args: args, LogPath: t.logPath, StartTimeout: c.startTimeout})
	if err != nil {
		return nil, err
	}
	t.proc, t.pid, t.url = p, p.PID, p.URL
	t.cleanup = append(t.cleanup, p.Stop)
	if !strings.HasPrefix(t.url, "wss://") {
		return nil, fmt.Errorf("the gateway serves %q, want wss://", t.url)
	}
	return t, nil
}

// exited reports whether a spawned gateway has exited, and how.
func (t *target) exited() (bool, error) {
	if t.proc == nil {
		return false, nil
	}
	return t.proc.Exited()
}
