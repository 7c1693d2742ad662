package gateway

import (
	"crypto/tls"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tickgate/tickgate/internal/selfsigned"
)

// gateEnv is a tlsGate on a loopback listener whose handshakes each take
// at least hold (a GetConfigForClient that sleeps, inside the handshake),
// and that records how many ran at once.
type gateEnv struct {
	gate          *tlsGate
	addr          string
	client        *tls.Config
	running, peak atomic.Int32
	started       atomic.Int32 // handshakes that reached the ClientHello
	accepted      atomic.Int32
	gone          atomic.Int32
}

func newGateEnv(t *testing.T, handshakes int, hold time.Duration) *gateEnv {
	t.Helper()
	cert, err := selfsigned.New(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	e := &gateEnv{client: cert.ClientConfig()}
	e.client.ServerName = "127.0.0.1"
	cfg := cert.ServerConfig()
	cfg.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		e.started.Add(1)
		n := e.running.Add(1)
		for p := e.peak.Load(); n > p && !e.peak.CompareAndSwap(p, n); p = e.peak.Load() {
		}
		time.Sleep(hold)
		e.running.Add(-1)
		return nil, nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = ln.Addr().String()
	e.gate = newTLSGate(ln, cfg, handshakes, 5*time.Second, func() { e.gone.Add(1) })
	t.Cleanup(func() { _ = e.gate.Close() })
	go func() {
		for {
			c, err := e.gate.Accept()
			if err != nil {
				return
			}
			if c.(*tls.Conn).ConnectionState().HandshakeComplete {
				e.accepted.Add(1)
			}
			_ = c.Close()
		}
	}()
	return e
}

// dial opens n TLS connections at once and returns how many handshakes
// succeeded.
func (e *gateEnv) dial(n int) int {
	var ok atomic.Int32
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			d := &net.Dialer{Timeout: 5 * time.Second}
			c, err := tls.DialWithDialer(d, "tcp", e.addr, e.client)
			if err == nil {
				ok.Add(1)
				_ = c.Close()
			}
		})
	}
	wg.Wait()
	return int(ok.Load())
}

// A reconnect storm of TLS handshakes runs at most TLSHandshakes at a
// time (the rest wait in the kernel's accept queue), and every one
// finishes; Accept hands over only connections whose handshake is done.
// Before the gate, net/http ran them all at once: 10,000 returning
// clients each got a sliver of the CPU, were cut by the node's handshake
// timeout or gave up, and came back, so that a node took two minutes to
// take them (docs/benchmarks.md, "Reconnect storm").
func TestTLSGateBoundsConcurrentHandshakes(t *testing.T) {
	e := newGateEnv(t, 3, 20*time.Millisecond)
	if got := e.dial(40); got != 40 {
		t.Fatalf("%d of 40 handshakes succeeded, want all", got)
	}
	if p := e.peak.Load(); p > 3 || p < 1 {
		t.Fatalf("%d handshakes ran at once, want at most 3", p)
	}
	waitFor(t, "40 handshaken connections through Accept", func() bool { return e.accepted.Load() == 40 })
}

// A client that connects and never speaks holds its slot for the
// handshake timeout at most: the gate does not hang on it.
func TestTLSGateSilentClientHoldsItsSlotBriefly(t *testing.T) {
	cert, err := selfsigned.New(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := newTLSGate(ln, cert.ServerConfig(), 1, 200*time.Millisecond, func() {})
	defer g.Close()
	go func() {
		for {
			c, err := g.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	silent, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	time.Sleep(50 * time.Millisecond) // it takes the one slot
	client := cert.ClientConfig()
	client.ServerName = "127.0.0.1"
	start := time.Now()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", ln.Addr().String(), client)
	if err != nil {
		t.Fatalf("a client behind a silent one: %v", err)
	}
	_ = c.Close()
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("the handshake behind a silent client took %v, want about the 200 ms timeout", d)
	}
}

// A client that gave up while its connection waited in the accept queue
// costs the node no handshake: with a queue longer than the clients'
// patience, a node spent every slot on such connections and took no one
// (the second 10,000-client storm of docs/benchmarks.md stalled so).
func TestTLSGateSkipsClientsThatLeft(t *testing.T) {
	e := newGateEnv(t, 1, 300*time.Millisecond)
	first := make(chan int, 1)
	go func() { first <- e.dial(1) }()
	waitFor(t, "the first handshake holds the one slot", func() bool { return e.running.Load() == 1 })
	// The impatient client: its ClientHello goes out, it waits 50 ms,
	// gives up and closes, all while the one slot is taken.
	raw, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	impatient := tls.Client(raw, e.client)
	_ = impatient.SetDeadline(time.Now().Add(50 * time.Millisecond))
	if err := impatient.Handshake(); err == nil {
		t.Fatal("the impatient client's handshake succeeded while the slot was taken")
	}
	_ = impatient.Close()
	if got := e.dial(1); got != 1 {
		t.Fatal("a patient client behind it failed")
	}
	if got := <-first; got != 1 {
		t.Fatal("the first client failed")
	}
	if s, g := e.started.Load(), e.gone.Load(); s != 2 || g != 1 {
		t.Fatalf("handshakes started %d, clients gone %d; want 2 and 1 (none for the client that left)", s, g)
	}
}

// Closing the gate ends Accept and closes the listener.
func TestTLSGateClose(t *testing.T) {
	e := newGateEnv(t, 1, time.Millisecond)
	if err := e.gate.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.gate.Accept(); err == nil {
		t.Fatal("Accept after Close succeeded")
	}
	if _, err := net.DialTimeout("tcp", e.addr, time.Second); err == nil {
		t.Fatal("the listener still accepts after Close")
	}
}
