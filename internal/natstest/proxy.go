package natstest

import (
	"net"
	"sync"
	"testing"
)

// Proxy is a TCP proxy in front of a NATS server that can freeze: while
// frozen it forwards nothing in either direction but keeps every connection
// open, as a network path that silently stopped delivering does. A client
// behind it stays "connected" while nothing it sends is answered, which is
// what a half-open NATS connection looks like until its pings time out.
type Proxy struct {
	ln     net.Listener // Static after construction.
	target string       // Static after construction.

	mu     sync.Mutex
	cut    bool          // Guarded by mu: refuse new connections (Cut).
	frozen bool          // Guarded by mu.
	thaw   chan struct{} // Guarded by mu: closed when frozen ends.
	conns  []net.Conn    // Guarded by mu: both ends of every proxied connection.
	closed bool          // Guarded by mu.
}

// NewProxy listens on a free loopback port and forwards to target
// (host:port) until the test ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("natstest: proxy: %v", err)
	}
	p := &Proxy{ln: ln, target: target, thaw: make(chan struct{})}
	close(p.thaw)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// URL is the nats:// URL of the proxy.
func (p *Proxy) URL() string { return "nats://" + p.ln.Addr().String() }

// Freeze stops forwarding in both directions, keeping connections open.
func (p *Proxy) Freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.frozen {
		p.frozen = true
		p.thaw = make(chan struct{})
	}
}

// Thaw resumes forwarding.
func (p *Proxy) Thaw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.frozen {
		p.frozen = false
		close(p.thaw)
	}
}

// Cut closes every proxied connection and refuses new ones until Mend:
// the clients behind the proxy see NATS go away and fail to reconnect,
// while the server stays up for everyone else.
func (p *Proxy) Cut() {
	p.mu.Lock()
	p.cut = true
	conns := p.conns
	p.conns = nil
	p.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

// Mend lets connections through again after Cut.
func (p *Proxy) Mend() {
	p.mu.Lock()
	p.cut = false
	p.mu.Unlock()
}

func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		b, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			_ = c.Close()
			_ = b.Close()
			return
		}
		if p.cut {
			p.mu.Unlock()
			_ = c.Close()
			_ = b.Close()
			continue
		}
		p.conns = append(p.conns, c, b)
		p.mu.Unlock()
		go p.pipe(c, b)
		go p.pipe(b, c)
	}
}

// pipe copies src to dst, holding each chunk while the proxy is frozen.
func (p *Proxy) pipe(dst, src net.Conn) {
	defer func() { _ = dst.Close(); _ = src.Close() }()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			thaw := p.thaw
			p.mu.Unlock()
			<-thaw
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *Proxy) close() {
	p.mu.Lock()
	p.closed = true
	conns := p.conns
	p.conns = nil
	if p.frozen {
		p.frozen = false
		close(p.thaw)
	}
	p.mu.Unlock()
	_ = p.ln.Close()
	for _, c := range conns {
		_ = c.Close()
	}
}
