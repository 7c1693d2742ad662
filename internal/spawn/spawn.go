// Package spawn starts what a load or attack run of a real gateway needs,
// on loopback: an embedded NATS server, fresh credentials (a self-signed
// certificate and an HMAC secret in files), and a `tickgate serve`
// process, built from source when no binary is given. cmd/tickbench and
// cmd/tickattack share it, so that both drive the gateway exactly as an
// operator runs it.
package spawn

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	mathrand "math/rand/v2"
	"net"
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

// Errors of this package; the returned errors wrap them.
var (
	ErrStart = errors.New("spawn: the gateway did not start")
	ErrBuild = errors.New("spawn: building the gateway failed")
	ErrNATS  = errors.New("spawn: NATS server")
)

// BuildInfo says which source a gateway binary was built from.
type BuildInfo struct {
	Commit string `json:"commit"`          // `git log -1 --oneline`
	Dirty  bool   `json:"dirty"`           // the work tree had uncommitted changes
	Binary string `json:"binary,omitzero"` // path of the binary
}

// Build runs `go build -o bin ./cmd/tickgate` in moduleDir (any directory
// inside the tickgate module) and says what it built.
func Build(ctx context.Context, moduleDir, bin string) (*BuildInfo, error) {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/tickgate/tickgate/cmd/tickgate")
	cmd.Dir = moduleDir
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%w: %v\n%s", ErrBuild, err, out)
	}
	b := GitInfo(ctx, moduleDir)
	b.Binary = bin
	return b, nil
}

// GitInfo returns the commit of dir's repository and whether its work tree
// has uncommitted changes; "unknown" when git is not there.
func GitInfo(ctx context.Context, dir string) *BuildInfo {
	b := &BuildInfo{Commit: "unknown"}
	if out, err := exec.CommandContext(ctx, "git", "-C", dir, "log", "-1", "--oneline").Output(); err == nil {
		b.Commit = strings.TrimSpace(string(out))
	}
	if out, err := exec.CommandContext(ctx, "git", "-C", dir, "status", "--porcelain", "--untracked-files=no").Output(); err == nil {
		b.Dirty = len(strings.TrimSpace(string(out))) > 0
	}
	return b
}

// Credentials are the files a spawned gateway is given and what a client
// needs to match them.
type Credentials struct {
	CertFile, KeyFile string       // the gateway's --tls-cert and --tls-key
	SecretFile        string       // the gateway's --hmac-secret-file
	Secret            []byte       // the HS256 key: the file's content
	ClientTLS         *tls.Config  // trusts the certificate; ServerName 127.0.0.1
	Signer            *auth.Signer // mints tokens the gateway accepts
}

// WriteCredentials writes a fresh self-signed certificate (valid 24 h) and
// a random 32-byte HMAC secret (hex) into dir.
func WriteCredentials(dir string) (*Credentials, error) {
	cert, err := selfsigned.New(24 * time.Hour)
	if err != nil {
		return nil, err
	}
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	c := &Credentials{
		CertFile:   filepath.Join(dir, "cert.pem"),
		KeyFile:    filepath.Join(dir, "key.pem"),
		SecretFile: filepath.Join(dir, "hmac.secret"),
		Secret:     []byte(hex.EncodeToString(raw)),
	}
	for name, b := range map[string][]byte{c.CertFile: cert.CertPEM, c.KeyFile: cert.KeyPEM, c.SecretFile: c.Secret} {
		if err := os.WriteFile(name, b, 0o600); err != nil {
			return nil, err
		}
	}
	if c.Signer, err = auth.NewHMACSigner(c.Secret, ""); err != nil {
		return nil, err
	}
	c.ClientTLS = cert.ClientConfig()
	c.ClientTLS.ServerName = "127.0.0.1"
	return c, nil
}

// Args are the `tickgate serve` flags that point it at c.
func (c *Credentials) Args() []string {
	return []string{"--tls-cert=" + c.CertFile, "--tls-key=" + c.KeyFile, "--hmac-secret-file=" + c.SecretFile}
}

// EmbeddedNATS starts a NATS server in this process on a random loopback
// port and waits until it accepts clients. The caller shuts it down.
func EmbeddedNATS(name string) (*natsserver.Server, error) {
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: natsserver.RANDOM_PORT, NoSigs: true, NoLog: true, ServerName: name})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNATS, err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("%w: not ready after 10s", ErrNATS)
	}
	return ns, nil
}

// FreePort returns a loopback TCP port that was free a moment ago, for a
// listener whose address must be known before the process that opens it
// starts (the gateway's admin listener, an external nats-server).
//
// It picks the port below the kernel's ephemeral range when it can: a
// port from that range (what listening on port 0 gives) can be taken by
// any outgoing connection's local end before the process binds it, which
// a load generator opening thousands of connections did (Centrifugo then
// failed with "address already in use"). Below the range only an explicit
// bind competes.
func FreePort() (int, error) {
	if lo, ok := ephemeralLow(); ok && lo > minFixedPort+100 {
		for range 64 {
			port := minFixedPort + mathrand.IntN(lo-minFixedPort)
			if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
				_ = l.Close()
				return port, nil
			}
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// minFixedPort is the lowest port FreePort picks itself.
const minFixedPort = 20000

// ephemeralLow is the first port of the kernel's ephemeral range, where
// the kernel says it (Linux).
func ephemeralLow() (int, bool) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, false
	}
	var lo, hi int
	if _, err := fmt.Sscan(string(b), &lo, &hi); err != nil || lo <= 0 {
		return 0, false
	}
	return lo, true
}

// Options describe a gateway process to start.
type Options struct {
	Bin          string        // the tickgate binary
	Args         []string      // its arguments, starting with "serve"
	LogPath      string        // file for its stderr (created)
	StartTimeout time.Duration // bound on its start; zero: 60s
	// Env is added to the process's environment (after the TICKGATE_*
	// variables are taken out), e.g. GOMAXPROCS=1. Zero: nothing added.
	Env []string
	// Ready is the prefix of the stdout line that says the process serves;
	// the rest of the line is its URL. Zero: "tickgate serving ".
	Ready string
	// ReadyAddr, when set, is a host:port that Start dials until it
	// accepts a TCP connection, for a process that prints no ready line
	// (another server under comparison); URL is then ReadyURL.
	ReadyAddr string
	// ReadyURL is the URL of a process started with ReadyAddr.
	ReadyURL string
}

// readyPoll is how often Start dials Options.ReadyAddr.
const readyPoll = 50 * time.Millisecond

// Process is a running gateway. URL and PID are static after Start.
type Process struct {
	URL     string // the wss:// (or ws://) URL it printed
	PID     int
	LogPath string

	cmd     *exec.Cmd
	logFile *os.File
	gone    chan struct{} // closed when the process has exited
	exitErr error         // why it exited; written before gone closes
}

// Start runs the gateway with a clean environment (no TICKGATE_*
// variables, so that only the flags configure it) and waits until it
// prints `tickgate serving <url>`. The process is killed if this one dies.
func Start(ctx context.Context, o Options) (_ *Process, err error) {
	if o.StartTimeout == 0 {
		o.StartTimeout = 60 * time.Second
	}
	if o.Ready == "" {
		o.Ready = "tickgate serving "
	}
	logFile, err := os.Create(o.LogPath)
	if err != nil {
		return nil, fmt.Errorf("gateway log: %w", err)
	}
	p := &Process{LogPath: o.LogPath, logFile: logFile, gone: make(chan struct{})}
	p.cmd = exec.Command(o.Bin, o.Args...)
	p.cmd.Stderr = logFile
	p.cmd.Env = append(gatewayEnv(), o.Env...)
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		_ = logFile.Close()
		return nil, err
	}
	if err := p.cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("%w: %v", ErrStart, err)
	}
	p.PID = p.cmd.Process.Pid
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), o.Ready); ok && o.ReadyAddr == "" {
				urlc <- strings.TrimSpace(u)
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		p.exitErr = p.cmd.Wait()
		close(p.gone)
	}()
	defer func() {
		if err != nil {
			p.Stop()
		}
	}()
	timer := time.NewTimer(o.StartTimeout)
	defer timer.Stop()
	if o.ReadyAddr != "" {
		go dialUntil(o.ReadyAddr, o.ReadyURL, urlc, p.gone)
	}
	select {
	case p.URL = <-urlc:
		return p, nil
	case <-p.gone:
		return nil, fmt.Errorf("%w: it exited (%v); its log:\n%s", ErrStart, p.exitErr, Tail(o.LogPath, 20))
	case <-timer.C:
		return nil, fmt.Errorf("%w within %v; its log:\n%s", ErrStart, o.StartTimeout, Tail(o.LogPath, 20))
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// dialUntil dials addr every readyPoll until it accepts a connection, then
// sends url on urlc; it gives up when gone closes.
func dialUntil(addr, url string, urlc chan<- string, gone <-chan struct{}) {
	t := time.NewTicker(readyPoll)
	defer t.Stop()
	for {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			_ = c.Close()
			urlc <- url
			return
		}
		select {
		case <-gone:
			return
		case <-t.C:
		}
	}
}

// Stop sends SIGTERM, waits up to 10 s for the drain, then kills. It is
// idempotent.
func (p *Process) Stop() {
	select {
	case <-p.gone:
	default:
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.gone:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.gone
		}
	}
	_ = p.logFile.Close()
}

// Kill sends SIGKILL, as when the node's host dies: no drain, no close
// frames, and waits until the process is gone.
func (p *Process) Kill() error {
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	<-p.gone
	return nil
}

// Exited reports whether the process has exited, and how.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.gone:
		return true, p.exitErr
	default:
		return false, nil
	}
}

// gatewayEnv is this process's environment without TICKGATE_* variables.
func gatewayEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TICKGATE_") {
			env = append(env, kv)
		}
	}
	return env
}

// Tail returns the last n lines of a file.
func Tail(path string, n int) string {
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
