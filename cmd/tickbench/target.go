package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/tickgate/tickgate/auth"
	"github.com/tickgate/tickgate/internal/selfsigned"
)

// target is the gateway under test and how to reach it.
type target struct {
	url     string        // wss:// URL of the WebSocket endpoint
	tls     *tls.Config   // client TLS config (ServerName set), nil for ws://
	natsURL string        // where the feed is published; "" drives no feed
	signer  *auth.Signer  // mints tokens; nil when token is set
	token   string        // one token for every connection
	pid     int           // gateway process for /proc sampling; 0: none
	build   *buildInfo    // the binary that was built, when one was
	logPath string        // the spawned gateway's stderr
	gone    chan struct{} // closed when a spawned gateway exits; nil: not spawned
	exitErr error         // why it exited; written before gone closes

	cleanup []func() // run in reverse order by close
}

// buildInfo says which source a spawned gateway was built from.
type buildInfo struct {
	Commit string `json:"commit"`          // `git log -1 --oneline`
	Dirty  bool   `json:"dirty"`           // the work tree had uncommitted changes
	Binary string `json:"binary,omitzero"` // path of the binary
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
	t := &target{url: c.url, natsURL: c.natsURL, token: c.token, pid: c.gatewayPID}
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
		if _, err := newProcReader(c.gatewayPID).sample(); err != nil {
			return nil, fmt.Errorf("--gateway-pid %d: %w", c.gatewayPID, err)
		}
	}
	return t, nil
}

// spawn starts an embedded NATS server and the gateway binary (built first
// when --gateway-bin is empty) with a fresh self-signed certificate and HMAC
// secret in a temp dir. The gateway is killed if tickbench dies.
func spawn(ctx context.Context, c *config, logf func(string, ...any)) (_ *target, err error) {
	t := &target{}
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

	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: natsserver.RANDOM_PORT, NoSigs: true, NoLog: true, ServerName: "tickbench"})
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	ns.Start()
	t.cleanup = append(t.cleanup, ns.Shutdown)
	if !ns.ReadyForConnections(10 * time.Second) {
		return nil, errors.New("embedded NATS: not ready after 10s")
	}
	t.natsURL = ns.ClientURL()

	cert, err := selfsigned.New(24 * time.Hour)
	if err != nil {
		return nil, err
	}
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	secretHex := []byte(hex.EncodeToString(secret))
	files := map[string][]byte{"cert.pem": cert.CertPEM, "key.pem": cert.KeyPEM, "hmac.secret": secretHex}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			return nil, err
		}
	}
	if t.signer, err = auth.NewHMACSigner(secretHex, ""); err != nil {
		return nil, err
	}
	t.tls = cert.ClientConfig()
	t.tls.ServerName = "127.0.0.1"

	bin := c.gatewayBin
	if bin == "" {
		bin = filepath.Join(dir, "tickgate")
		logf("building the gateway: go build -o %s ./cmd/tickgate (in %s)", bin, c.moduleDir)
		bctx, cancel := context.WithTimeout(ctx, c.startTimeout)
		defer cancel()
		cmd := exec.CommandContext(bctx, "go", "build", "-o", bin, "github.com/tickgate/tickgate/cmd/tickgate")
		cmd.Dir = c.moduleDir
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("building the gateway: %v\n%s", err, out)
		}
		t.build = gitInfo(ctx, c.moduleDir)
		t.build.Binary = bin
	}

	logPath := c.gatewayLog
	if logPath == "" {
		logPath = filepath.Join(dir, "gateway.log")
	}
	t.logPath = logPath
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("--gateway-log: %w", err)
	}
	t.cleanup = append(t.cleanup, func() { _ = logFile.Close() })

	args := []string{"serve",
		"--listen=127.0.0.1:0", "--admin=", "--nats=" + t.natsURL,
		"--tls-cert=" + filepath.Join(dir, "cert.pem"), "--tls-key=" + filepath.Join(dir, "key.pem"),
		"--hmac-secret-file=" + filepath.Join(dir, "hmac.secret"),
		"--audience=" + c.audience, "--node-id=tickbench", "--subject-prefix=" + c.subjectPrefix,
		"--log-level=warn", "--drain-within=200ms", "--shutdown-timeout=5s",
		// every connection comes from a few loopback addresses
		"--max-conns-per-ip=-1",
	}
	if c.issuer != "" {
		args = append(args, "--issuer="+c.issuer)
	}
	for _, f := range c.gatewayFlags {
		args = append(args, strings.Fields(f)...) // later flags win
	}
	cmd := exec.Command(bin, args...)
	cmd.Stderr = logFile
	cmd.Env = gatewayEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	logf("starting the gateway: %s %s", bin, strings.Join(args, " "))
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the gateway: %w", err)
	}
	t.gone = make(chan struct{})
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "tickgate serving "); ok {
				urlc <- strings.TrimSpace(u)
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		t.exitErr = cmd.Wait()
		close(t.gone)
	}()
	t.cleanup = append(t.cleanup, func() { stopProcess(cmd, t.gone) })
	t.pid = cmd.Process.Pid

	timer := time.NewTimer(c.startTimeout)
	defer timer.Stop()
	select {
	case t.url = <-urlc:
	case <-t.gone:
		return nil, fmt.Errorf("the gateway exited at start (%v); its log:\n%s", t.exitErr, tail(logPath, 20))
	case <-timer.C:
		return nil, fmt.Errorf("the gateway did not start within %v; its log:\n%s", c.startTimeout, tail(logPath, 20))
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if !strings.HasPrefix(t.url, "wss://") {
		return nil, fmt.Errorf("the gateway serves %q, want wss://", t.url)
	}
	return t, nil
}

// stopProcess sends SIGTERM, waits up to 10s for the drain, then kills.
func stopProcess(cmd *exec.Cmd, gone chan struct{}) {
	select {
	case <-gone:
		return
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-gone:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-gone
	}
}

// exited reports whether a spawned gateway has exited, and how.
func (t *target) exited() (bool, error) {
	if t.gone == nil {
		return false, nil
	}
	select {
	case <-t.gone:
		return true, t.exitErr
	default:
		return false, nil
	}
}

// gatewayEnv is tickbench's environment without TICKGATE_* variables, so
// that only the flags configure the spawned gateway.
func gatewayEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TICKGATE_") {
			env = append(env, kv)
		}
	}
	return env
}

// gitInfo returns the commit of dir's repository and whether its work tree
// has uncommitted changes; unknown when git is not there.
func gitInfo(ctx context.Context, dir string) *buildInfo {
	b := &buildInfo{Commit: "unknown"}
	if out, err := exec.CommandContext(ctx, "git", "-C", dir, "log", "-1", "--oneline").Output(); err == nil {
		b.Commit = strings.TrimSpace(string(out))
	}
	if out, err := exec.CommandContext(ctx, "git", "-C", dir, "status", "--porcelain", "--untracked-files=no").Output(); err == nil {
		b.Dirty = len(strings.TrimSpace(string(out))) > 0
	}
	return b
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
