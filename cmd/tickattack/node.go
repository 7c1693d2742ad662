package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/tickgate/tickgate/internal/proc"
	"github.com/tickgate/tickgate/internal/spawn"
)

// errNATSKill is returned when the NATS server cannot be killed: it is
// embedded, or already gone.
var errNATSKill = errors.New("tickattack: the NATS server is not an external process")

// nodeNeeds is what a scenario asks of its node.
type nodeNeeds struct {
	// externalNATS: nats-server must run as its own process (it will be
	// killed), from --nats-server-bin or PATH.
	externalNATS bool
}

// node is the gateway under attack with its NATS server. Static after
// startNode, except natsGone.
type node struct {
	dir     string
	creds   *spawn.Credentials
	natsURL string
	natsBin string             // external nats-server binary; "" embedded
	natsVer string             // its --version, or the embedded module's
	natsCmd *exec.Cmd          // external nats-server
	natsEmb *natsserver.Server // embedded
	gwBin   string
	gwArgs  []string
	build   *spawn.BuildInfo // when the binary was built here
	gw      *spawn.Process
	proc    *proc.Reader
	admin   string // http://127.0.0.1:<port>
	cleanup []func()
}

// startNode starts NATS and `tickgate serve` with the node's defaults
// except what the spawn needs: loopback listeners (the admin one on a
// known port, for /metrics), this run's TLS files and HMAC secret, info
// logging (WARN lines are counted), a short drain, and --gateway-flag.
func startNode(ctx context.Context, c *config, needs nodeNeeds, logf logFunc) (_ *node, err error) {
	n := &node{}
	defer func() {
		if err != nil {
			n.close()
		}
	}()
	if n.dir, err = os.MkdirTemp("", "tickattack-"); err != nil {
		return nil, err
	}
	n.cleanup = append(n.cleanup, func() { _ = os.RemoveAll(n.dir) })
	if n.creds, err = spawn.WriteCredentials(n.dir); err != nil {
		return nil, err
	}
	bin := c.natsServerBin
	if bin == "" && needs.externalNATS {
		bin = "nats-server"
	}
	if bin != "" {
		if err := n.startExternalNATS(ctx, bin); err != nil {
			return nil, err
		}
	} else {
		if n.natsEmb, err = spawn.EmbeddedNATS("tickattack"); err != nil {
			return nil, err
		}
		n.cleanup = append(n.cleanup, n.natsEmb.Shutdown)
		n.natsURL, n.natsVer = n.natsEmb.ClientURL(), "embedded nats-server "+natsserver.VERSION
	}

	n.gwBin = c.gatewayBin
	if n.gwBin == "" {
		n.gwBin = filepath.Join(n.dir, "tickgate")
		logf("building the gateway: go build -o %s ./cmd/tickgate (in %s)", n.gwBin, c.moduleDir)
		bctx, cancel := context.WithTimeout(ctx, c.startTimeout)
		defer cancel()
		if n.build, err = spawn.Build(bctx, c.moduleDir, n.gwBin); err != nil {
			return nil, err
		}
	}
	adminPort, err := spawn.FreePort()
	if err != nil {
		return nil, err
	}
	n.admin = fmt.Sprintf("http://127.0.0.1:%d", adminPort)
	n.gwArgs = append([]string{"serve", "--listen=127.0.0.1:0", fmt.Sprintf("--admin=127.0.0.1:%d", adminPort), "--nats=" + n.natsURL},
		n.creds.Args()...)
	n.gwArgs = append(n.gwArgs, "--node-id=tickattack", "--log-level=info", "--drain-within=200ms", "--shutdown-timeout=5s")
	for _, f := range c.gatewayFlags {
		n.gwArgs = append(n.gwArgs, strings.Fields(f)...) // later flags win
	}
	logPath := c.gatewayLog
	if logPath == "" {
		logPath = filepath.Join(n.dir, "gateway.log")
	}
	logf("starting the gateway: %s %s", n.gwBin, strings.Join(n.gwArgs, " "))
	if n.gw, err = spawn.Start(ctx, spawn.Options{Bin: n.gwBin, Args: n.gwArgs, LogPath: logPath, StartTimeout: c.startTimeout}); err != nil {
		return nil, err
	}
	n.cleanup = append(n.cleanup, n.gw.Stop)
	n.proc = proc.NewReader(n.gw.PID)
	if !strings.HasPrefix(n.gw.URL, "wss://") {
		return nil, fmt.Errorf("the gateway serves %q, want wss://", n.gw.URL)
	}
	if err := waitFor(ctx, 10*time.Second, func() bool { _, err := n.metrics(); return err == nil }); err != nil {
		return nil, fmt.Errorf("the gateway's admin listener: %w", err)
	}
	return n, nil
}

// startExternalNATS runs bin on a free loopback port and waits until it
// accepts TCP connections.
func (n *node) startExternalNATS(ctx context.Context, bin string) error {
	path, err := exec.LookPath(bin)
	if err != nil && !strings.ContainsRune(bin, '/') {
		// Debian installs it in /usr/sbin, which a non-login shell's PATH
		// may lack.
		path, err = exec.LookPath(filepath.Join("/usr/sbin", bin))
	}
	if err != nil {
		return fmt.Errorf("--nats-server-bin %q: %w (Debian: apt-get install nats-server)", bin, err)
	}
	n.natsBin = path
	if out, err := exec.CommandContext(ctx, path, "--version").Output(); err == nil {
		n.natsVer = strings.TrimSpace(string(out))
	}
	port, err := spawn.FreePort()
	if err != nil {
		return err
	}
	logFile, err := os.Create(filepath.Join(n.dir, "nats-server.log"))
	if err != nil {
		return err
	}
	n.cleanup = append(n.cleanup, func() { _ = logFile.Close() })
	n.natsCmd = exec.Command(path, "-a", "127.0.0.1", "-p", strconv.Itoa(port), "-n", "tickattack")
	n.natsCmd.Stdout, n.natsCmd.Stderr = logFile, logFile
	n.natsCmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := n.natsCmd.Start(); err != nil {
		return fmt.Errorf("nats-server: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = n.natsCmd.Wait(); close(done) }()
	n.cleanup = append(n.cleanup, func() {
		_ = n.natsCmd.Process.Kill()
		<-done
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	n.natsURL = "nats://" + addr
	return waitFor(ctx, 10*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.Close()
		}
		return err == nil
	})
}

// killNATS kills the external nats-server with SIGKILL: no goodbye to its
// clients, as when its host dies.
func (n *node) killNATS() error {
	if n.natsCmd == nil || n.natsCmd.Process == nil {
		return errNATSKill
	}
	return n.natsCmd.Process.Signal(syscall.SIGKILL)
}

// close stops what startNode started, in reverse order.
func (n *node) close() {
	for i := len(n.cleanup) - 1; i >= 0; i-- {
		n.cleanup[i]()
	}
	n.cleanup = nil
}

// metrics are one scrape of /metrics: value by series ("name" or
// "name{labels}" as printed).
type metrics map[string]float64

// metrics scrapes the node's admin /metrics.
func (n *node) metrics() (metrics, error) {
	cl := http.Client{Timeout: 5 * time.Second}
	resp, err := cl.Get(n.admin + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("/metrics: HTTP %d", resp.StatusCode)
	}
	return parseMetrics(resp.Body)
}

// parseMetrics reads the Prometheus text format: comment lines are
// skipped, and a sample line is `series value [timestamp]`.
func parseMetrics(r io.Reader) (metrics, error) {
	m := metrics{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		// Label values may hold spaces: the value follows the last '}'.
		var series, rest string
		if i := strings.LastIndexByte(line, '}'); i >= 0 {
			series, rest = line[:i+1], line[i+1:]
		} else if sp := strings.IndexByte(line, ' '); sp >= 0 {
			series, rest = line[:sp], line[sp:]
		} else {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		if v, err := strconv.ParseFloat(f[0], 64); err == nil {
			m[series] = v
		}
	}
	return m, sc.Err()
}

// sum adds every series of metric name (all label values).
func (m metrics) sum(name string) float64 {
	var s float64
	for k, v := range m {
		if k == name || strings.HasPrefix(k, name+"{") {
			s += v
		}
	}
	return s
}

// has reports whether the node exports metric name at all.
func (m metrics) has(name string) bool {
	for k := range m {
		if k == name || strings.HasPrefix(k, name+"{") {
			return true
		}
	}
	return false
}

// series returns every series of metric name with its value, keyed by
// its labels ("" for an unlabelled one).
func (m metrics) series(name string) map[string]float64 {
	out := map[string]float64{}
	for k, v := range m {
		if k == name {
			out[""] = v
		} else if labels, ok := strings.CutPrefix(k, name+"{"); ok {
			out[strings.TrimSuffix(labels, "}")] = v
		}
	}
	return out
}

// waitFor polls cond every 50 ms until it holds, timeout passes or ctx ends.
func waitFor(ctx context.Context, timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %v", timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}
