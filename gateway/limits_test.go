package gateway

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tickgate/tickgate/proto"
)

func refusedWith(t *testing.T, e *testEnv, opts dialOptions, status int, code string) *http.Response {
	t.Helper()
	c, resp, err := e.dial(t, opts)
	if err == nil {
		_ = c.ws.NetConn().Close()
		t.Fatalf("handshake succeeded, want %d %s", status, code)
	}
	if resp == nil || resp.StatusCode != status {
		t.Fatalf("got %v %s, want %d %s", err, readBody(resp), status, code)
	}
	return resp
}

func bearer(tok string) dialOptions {
	return dialOptions{header: http.Header{"Authorization": {"Bearer " + tok}}}
}

func TestConnectionLimits(t *testing.T) {
	t.Run("per address", func(t *testing.T) {
		e := newTestEnv(t, func(c *Config) { c.MaxConnsPerIP = 2 })
		a := e.connect(t, "json", e.token(t, "a", time.Hour, ">"))
		e.connect(t, "json", e.token(t, "b", time.Hour, ">"))
		refusedWith(t, e, bearer(e.token(t, "c", time.Hour, ">")), 429, "too_many_connections")
		_ = a.ws.WriteClose(1000, nil)
		waitFor(t, "slot freed", func() bool { return e.srv.Connections() == 1 })
		e.connect(t, "json", e.token(t, "c", time.Hour, ">"))
	})
	t.Run("per subject", func(t *testing.T) {
		e := newTestEnv(t, func(c *Config) { c.MaxConnsPerSubject = 1 })
		tok := e.token(t, "same", time.Hour, ">")
		e.connect(t, "json", tok)
		refusedWith(t, e, bearer(tok), 429, "too_many_connections")
		e.connect(t, "json", e.token(t, "other", time.Hour, ">"))
	})
	t.Run("handshake rate", func(t *testing.T) {
		e := newTestEnv(t, func(c *Config) { c.HandshakeRate, c.HandshakeBurst = 0.5, 1 })
		tok := e.token(t, "storm", time.Hour, ">")
		e.connect(t, "json", tok)
		resp := refusedWith(t, e, bearer(tok), 429, "too_many_connections")
		if resp.Header.Get("Retry-After") == "" {
			t.Fatal("no Retry-After")
		}
	})
}

// The node-wide handshake budget is spent only by handshakes that would
// otherwise be admitted: a client at its cap, or REST snapshots (refused
// or not), must not keep others from connecting.
func TestHandshakeBudgetSpentOnlyByAdmitted(t *testing.T) {
	slow := func(c *Config) { c.HandshakeRate, c.HandshakeBurst = 0.01, 2 }
	t.Run("a subscriber at its cap", func(t *testing.T) {
		e := newTestEnv(t, slow, func(c *Config) { c.MaxConnsPerSubject = 1 })
		capped := e.token(t, "capped", time.Hour, ">")
		e.connect(t, "json", capped) // the first of the burst of two
		for range 5 {
			resp := refusedWith(t, e, bearer(capped), 429, "too_many_connections")
			if body := readBody(resp); !strings.Contains(body, "subscriber") {
				t.Fatalf("refused for %s, want its cap", body)
			}
		}
		e.connect(t, "json", e.token(t, "other", time.Hour, ">")) // the second
		refusedWith(t, e, bearer(e.token(t, "third", time.Hour, ">")), 429, "too_many_connections")
		// The paced-out handshake counted nothing against its caps.
		a := e.srv.admit
		a.mu.Lock()
		third, addrs := a.bySub["third"], a.byIP[netip.MustParseAddr("127.0.0.1")]
		a.mu.Unlock()
		if third != 0 || addrs != 2 {
			t.Fatalf("after a paced-out handshake: %d for its subscriber, %d for the address; want 0 and 2", third, addrs)
		}
	})
	t.Run("REST snapshots", func(t *testing.T) {
		e := newTestEnv(t, slow)
		tok := e.token(t, "poller", time.Hour, ">")
		for _, path := range []string{"/v1/snapshot/not-a-channel", "/v1/snapshot/book.X?depth=7"} {
			for range 5 {
				if status, _, body := get(t, e.srv, "GET", path, tok); status != 400 {
					t.Fatalf("%s: %d %s", path, status, body)
				}
			}
		}
		if ok, _ := e.srv.admit.paceREST(); !ok {
			t.Fatal("refused REST requests spent the REST budget")
		}
		for { // what admitted REST requests would spend, all of it
			if ok, _ := e.srv.admit.paceREST(); !ok {
				break
			}
		}
		e.connect(t, "json", tok)
		e.connect(t, "json", tok)
	})
}

func TestCommandRateLimit(t *testing.T) {
	e := newTestEnv(t, func(c *Config) {
		c.CommandRate, c.CommandBurst = 1, 3
		c.MaxStrikes = 4
	})
	c := e.connect(t, "json", e.token(t, "chatty", time.Hour, ">"))
	for i := range 3 {
		c.send(t, proto.Command{Op: proto.OpPing, ID: ptr(int64(i))})
	}
	for range 3 {
		c.expect(t, proto.TypePong)
	}
	c.send(t, proto.Command{Op: proto.OpPing, ID: ptr[int64](9)})
	if w := c.expect(t, proto.TypeError); w.Code != "rate_limited" || *w.ID != 9 {
		t.Fatalf("got %s", w.raw)
	}
	// Keeps at it: strikes 2 to 4 are tolerated, the fifth closes. Exactly
	// that many, so the server has read everything when it closes and no
	// reset races its close frame.
	for range 4 {
		c.sendRaw(t, []byte(`{"op":"ping"}`))
	}
	if code, reason := c.waitClose(t, 5*time.Second); code != 1008 || reason == "" {
		t.Fatalf("close %d %q, want 1008", code, reason)
	}
}

func TestBadCommandsClose1008(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.MaxStrikes = 3 })
	c := e.connect(t, "json", e.token(t, "fuzzer", time.Hour, ">"))
	for range 4 { // three strikes tolerated, the fourth closes
		c.sendRaw(t, []byte(`{"op":`))
	}
	if code, _ := c.waitClose(t, 5*time.Second); code != 1008 {
		t.Fatalf("close %d, want 1008", code)
	}
}

func TestPingFloodClose1008(t *testing.T) {
	e := newTestEnv(t, func(c *Config) {
		c.CommandRate, c.CommandBurst = 1, 2
		c.MaxStrikes = 3
	})
	c := e.connect(t, "json", e.token(t, "pinger", time.Hour, ">"))
	for range 6 { // two pings in the burst, three strikes tolerated, the sixth closes
		if err := c.ws.WritePing([]byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if code, _ := c.waitClose(t, 5*time.Second); code != 1008 {
		t.Fatalf("close %d, want 1008", code)
	}
}

func TestClientAddrBehindTrustedProxy(t *testing.T) {
	a := newAdmission(&Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	tests := []struct {
		name, remote, xff, want string
	}{
		{"direct", "203.0.113.5:1234", "198.51.100.1", "203.0.113.5"},
		{"via proxy", "10.1.2.3:1234", "198.51.100.1", "198.51.100.1"},
		{"via two proxies", "10.1.2.3:1234", "198.51.100.1, 10.9.9.9", "198.51.100.1"},
		{"spoofed left part ignored", "10.1.2.3:1234", "1.1.1.1, 198.51.100.1", "198.51.100.1"},
		{"proxy without header", "10.1.2.3:1234", "", "10.1.2.3"},
		{"garbage header", "10.1.2.3:1234", "nonsense", "10.1.2.3"},
		{"v4-mapped v6", "[::ffff:203.0.113.5]:1", "", "203.0.113.5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/v1/ws", nil)
			r.RemoteAddr = tt.remote
			if tt.xff != "" {
				r.Header.Set("X-Forwarded-For", tt.xff)
			}
			if got := a.clientAddr(r); got.String() != tt.want {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
		})
	}
}

// Accepted connections get the configured kernel send buffer, not the
// kernel's autotuned megabytes.
func TestSendBufferListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	l := sendBufferListener{ln, 64 << 10}
	go func() {
		if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
			defer c.Close()
			time.Sleep(time.Second)
		}
	}()
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var got int
	var serr error
	if err := raw.Control(func(fd uintptr) { got, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF) }); err != nil || serr != nil {
		t.Fatal(err, serr)
	}
	// Linux doubles the value it is given, for its own bookkeeping.
	if got < 64<<10 || got > 2*64<<10 {
		t.Fatalf("SO_SNDBUF %d, want about 64 KiB", got)
	}
}
