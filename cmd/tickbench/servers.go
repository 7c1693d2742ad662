package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/tickgate/tickgate/internal/spawn"
)

// serverKind is one server tickbench can put under load: how to start it
// on loopback and which client protocol it speaks. Adding one is adding a
// row to serverTable.
type serverKind struct {
	name    string
	dialect func(c *config) dialect
	// unavailable says why the server cannot run on this machine ("": it
	// can); such a server is skipped, not an error.
	unavailable func(c *config) string
	// launch prepares what the server needs (a NATS server, files, the
	// token minter, t.url when known beforehand) and returns its process;
	// start adds pinning, the log and the start timeout.
	launch func(ctx context.Context, c *config, t *target, env launchEnv) (spawn.Options, error)
	// ready, when set, reads the URL part of the process's ready line.
	ready func(t *target, url string) error
}

// launchEnv is what every launch gets: the run's temp dir, its fresh
// certificate and HMAC secret, and the progress logger.
type launchEnv struct {
	dir   string
	creds *spawn.Credentials
	logf  func(string, ...any)
}

// serverTable lists the servers, in the order a comparison runs them.
func serverTable() []serverKind {
	always := func(*config) string { return "" }
	return []serverKind{
		{name: "tickgate", dialect: func(*config) dialect { return tickgateDialect{} }, unavailable: always, launch: launchTickgate},
		{name: "nats", dialect: func(c *config) dialect { return natsDialect{prefix: c.subjectPrefix} }, unavailable: always, launch: launchNATS, ready: readyNATS},
		{name: "centrifugo", dialect: func(*config) dialect { return centrifugoDialect{} }, unavailable: centrifugoMissing, launch: launchCentrifugo},
	}
}

// lookupServer finds a server by name.
func lookupServer(name string) (serverKind, error) {
	s, names, ok := byName(serverTable(), func(s serverKind) string { return s.name }, name)
	if !ok {
		return serverKind{}, fmt.Errorf("unknown server %q: want one of %s", name, names)
	}
	return s, nil
}

// serverNames lists the names, comma-separated as --servers takes them.
func serverNames() string {
	_, names, _ := byName(serverTable(), func(s serverKind) string { return s.name }, "")
	return strings.ReplaceAll(names, "|", ",")
}

// launchTickgate runs `tickgate serve` (built first when --gateway-bin is
// empty) against the feed's NATS server (feednats.go).
func launchTickgate(ctx context.Context, c *config, t *target, env launchEnv) (spawn.Options, error) {
	if err := feedNATS(ctx, c, t, env.dir); err != nil {
		return spawn.Options{}, err
	}
	t.mint = tickgateMinter(env.creds.Signer, c)
	bin := c.gatewayBin
	if bin == "" {
		bin = filepath.Join(env.dir, "tickgate")
		env.logf("building the gateway: go build -o %s ./cmd/tickgate (in %s)", bin, c.moduleDir)
		bctx, cancel := context.WithTimeout(ctx, c.startTimeout)
		defer cancel()
		var err error
		if t.build, err = spawn.Build(bctx, c.moduleDir, bin); err != nil {
			return spawn.Options{}, err
		}
	}
	args := []string{"serve", "--listen=127.0.0.1:0", "--admin=", "--nats=" + t.natsURL}
	if c.plain {
		args = append(args, "--insecure-plaintext", "--hmac-secret-file="+env.creds.SecretFile)
	} else {
		args = append(args, env.creds.Args()...)
	}
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
	if c.compression {
		args = append(args, "--compression")
	}
	return spawn.Options{Bin: bin, Args: args}, nil
}

// launchNATS runs this very binary's hidden nats-server subcommand: an
// embedded nats-server with a WebSocket listener, in a process of its own.
// The feed is published to that server's own client port.
func launchNATS(_ context.Context, c *config, _ *target, env launchEnv) (spawn.Options, error) {
	bin, err := os.Executable()
	if err != nil {
		return spawn.Options{}, err
	}
	args := []string{natsServerCommand}
	if !c.plain {
		args = append(args, "--tls-cert="+env.creds.CertFile, "--tls-key="+env.creds.KeyFile)
	}
	return spawn.Options{Bin: bin, Args: args, Ready: natsReady}, nil
}

// readyNATS reads "<ws-url> <nats-url>" from the child's ready line.
func readyNATS(t *target, line string) error {
	f := strings.Fields(line)
	if len(f) != 2 {
		return fmt.Errorf("nats-server ready line %q: want <ws-url> <nats-url>", line)
	}
	// The feed is written straight to the server's client port, as to the
	// feed's own NATS server for the others (feednats.go).
	t.url, t.natsURL, t.feedDirect = strings.TrimSuffix(f[0], "/")+"/", f[1], true
	return nil
}

// centrifugoBinary is --centrifugo-bin, or centrifugo on PATH ("": none).
func centrifugoBinary(c *config) string {
	if c.centrifugoBin != "" {
		return c.centrifugoBin
	}
	p, _ := exec.LookPath("centrifugo")
	return p
}

func centrifugoMissing(c *config) string {
	if centrifugoBinary(c) == "" {
		return "no centrifugo binary on PATH (go install github.com/centrifugal/centrifugo/v6@v6.9.1 builds one; or --centrifugo-bin)"
	}
	return ""
}

// launchCentrifugo runs Centrifugo with the NATS broker in raw mode on
// the feed's NATS server (feednats.go): channel ticker.X is subject <prefix>.ticker.X and
// a publication's data is the NATS payload as it is. Clients authenticate
// with an HS256 JWT and may subscribe to any channel without a namespace.
func launchCentrifugo(ctx context.Context, c *config, t *target, env launchEnv) (spawn.Options, error) {
	if err := feedNATS(ctx, c, t, env.dir); err != nil {
		return spawn.Options{}, err
	}
	port, err := spawn.FreePort()
	if err != nil {
		return spawn.Options{}, err
	}
	scheme := "wss"
	if c.plain {
		scheme = "ws"
	}
	t.url = fmt.Sprintf("%s://127.0.0.1:%d/connection/websocket", scheme, port)
	secret := env.creds.Secret
	t.mint = func(sub string, ttl time.Duration) (string, error) {
		return centrifugoToken(secret, sub, time.Now().Add(ttl)), nil
	}
	cfg := map[string]any{
		"http_server": map[string]any{
			"address": "127.0.0.1", "port": port,
			"tls": map[string]any{"enabled": !c.plain, "cert_pem": env.creds.CertFile, "key_pem": env.creds.KeyFile},
		},
		"log":     map[string]any{"level": "error"},
		"client":  map[string]any{"token": map[string]any{"hmac_secret_key": string(secret)}},
		"channel": map[string]any{"without_namespace": map[string]any{"allow_subscribe_for_client": true}},
		"broker": map[string]any{"enabled": true, "type": "nats", "nats": map[string]any{
			"url":      t.natsURL,
			"raw_mode": map[string]any{"enabled": true, "prefix": c.subjectPrefix + "."},
		}},
		"usage_stats": map[string]any{"disabled": true},
	}
	if c.compression {
		// As tickgate compresses: level 1, and messages below its
		// threshold go plain.
		cfg["websocket"] = map[string]any{"compression": true, "compression_level": 1, "compression_min_size": tickgateDeflateMinBytes}
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return spawn.Options{}, err
	}
	file := filepath.Join(env.dir, "centrifugo.json")
	if err := os.WriteFile(file, b, 0o600); err != nil {
		return spawn.Options{}, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	return spawn.Options{Bin: centrifugoBinary(c), Args: []string{"--config", file}, ReadyAddr: addr, ReadyURL: t.url}, nil
}

// tickgateDeflateMinBytes is the smallest message tickgate compresses
// (gateway's deflateMinBytes), which Centrifugo is given as its
// compression_min_size so that both compress the same messages.
const tickgateDeflateMinBytes = 160
