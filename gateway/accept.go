package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"syscall"
	"time"
)

// tlsGate accepts a TCP connection only when one of a bounded number of
// handshake slots is free, and runs its TLS handshake there; the kernel's
// accept queue holds the rest.
//
// Why: when a node dies, all of its clients come back at once on the
// others (docs/benchmarks.md, "Reconnect storm"). net/http accepts every
// connection at once and runs every TLS handshake on its own goroutine;
// with thousands under way each gets a sliver of the CPU, all finish
// late, the node's own handshake timeout cuts them (the clients see a
// broken pipe) or the clients' timeouts fire first, and both sides spend
// themselves on handshakes nobody waits for any more. With a bounded
// number under way each finishes in milliseconds. Waiting in the kernel's
// accept queue costs nothing, and once it is full the kernel drops new
// connection attempts, which TCP retries by itself a second or more later:
// pacing for free, where an eager accept would make every client compute
// its key shares only to be dropped. A connection whose client gave up
// while it waited there (its peer closed: peerGone) is closed without a
// handshake; without that, a queue that grew longer than the clients'
// patience would hold nothing but connections nobody waits for, and the
// node would spend every slot on them. The node-wide pacing (429 with
// Retry-After) still applies after the handshake.
type tlsGate struct {
	ln      net.Listener  // Static.
	cfg     *tls.Config   // Static.
	timeout time.Duration // Static: bound of one handshake.
	gone    func()        // Static: counts a connection its client left before its handshake.

	slots chan struct{} // a token per handshake under way
	ready chan net.Conn // handshaken connections for Accept
	done  chan struct{} // closed by Close
	close sync.Once

	mu  sync.Mutex
	err error // Guarded by mu: why the accept loop stopped.
}

// newTLSGate starts the accept loop with at most handshakes TLS
// handshakes under way; gone counts connections whose client left before
// their turn.
func newTLSGate(ln net.Listener, cfg *tls.Config, handshakes int, timeout time.Duration, gone func()) *tlsGate {
	g := &tlsGate{ln: ln, cfg: cfg, timeout: timeout, gone: gone,
		slots: make(chan struct{}, handshakes), ready: make(chan net.Conn), done: make(chan struct{})}
	go g.acceptLoop()
	return g
}

func (g *tlsGate) acceptLoop() {
	var delay time.Duration
	for {
		select {
		case g.slots <- struct{}{}:
		case <-g.done:
			return
		}
		c, err := g.ln.Accept()
		if err != nil {
			<-g.slots
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				// As net/http does: back off on a temporary failure.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				select {
				case <-time.After(delay):
					continue
				case <-g.done:
					return
				}
			}
			g.mu.Lock()
			g.err = err
			g.mu.Unlock()
			_ = g.Close()
			return
		}
		delay = 0
		if peerGone(c) {
			// Its client gave up while it waited in the accept queue.
			<-g.slots
			_ = c.Close()
			g.gone()
			continue
		}
		go g.handshake(c)
	}
}

// handshake runs c's TLS handshake in a slot and hands the connection to
// Accept.
func (g *tlsGate) handshake(c net.Conn) {
	deadline := time.Now().Add(g.timeout)
	tc := tls.Server(c, g.cfg)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	_ = c.SetDeadline(deadline)
	err := tc.HandshakeContext(ctx)
	cancel()
	<-g.slots
	if err != nil {
		_ = c.Close()
		return
	}
	_ = c.SetDeadline(time.Time{})
	select {
	case g.ready <- tc:
	case <-g.done:
		_ = tc.Close()
	}
}

// Accept returns the next connection whose TLS handshake is done.
func (g *tlsGate) Accept() (net.Conn, error) {
	select {
	case c := <-g.ready:
		return c, nil
	case <-g.done:
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.err != nil {
			return nil, g.err
		}
		return nil, net.ErrClosed
	}
}

// Close closes the listener.
func (g *tlsGate) Close() error {
	var err error
	g.close.Do(func() {
		close(g.done)
		err = g.ln.Close()
	})
	return err
}

// Addr is the listener's address.
func (g *tlsGate) Addr() net.Addr { return g.ln.Addr() }
