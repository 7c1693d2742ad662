package selfsigned

import (
	"crypto/tls"
	"net"
	"testing"
	"time"
)

// A client that trusts the certificate completes a real TLS handshake with
// a server using it, by address and by name; one that does not, fails.
func TestCertificateServesTLS(t *testing.T) {
	c, err := New(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", c.ServerConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			_ = conn.(*tls.Conn).Handshake()
			conn.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	tests := []struct {
		name       string
		serverName string
		trusted    bool
		ok         bool
	}{
		{"by address", "127.0.0.1", true, true},
		{"by name", "localhost", true, true},
		{"another name", "example.com", true, false},
		{"untrusted", "localhost", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := c.ClientConfig()
			cfg.ServerName = tt.serverName
			if !tt.trusted {
				cfg.RootCAs = nil
			}
			conn, err := tls.Dial("tcp", net.JoinHostPort("127.0.0.1", port), cfg)
			if (err == nil) != tt.ok {
				t.Fatalf("handshake err = %v, want ok=%v", err, tt.ok)
			}
			if conn != nil {
				conn.Close()
			}
		})
	}
}
