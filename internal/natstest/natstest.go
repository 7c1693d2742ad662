// Package natstest starts embedded NATS servers for tests.
package natstest

import (
	"crypto/tls"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// RandomPort asks Run for a free port.
const RandomPort = server.RANDOM_PORT

// Run starts an embedded NATS server on 127.0.0.1:port (RandomPort for a
// free one), waits until it accepts clients, and shuts it down when the test
// ends. A test may shut it down earlier to simulate an outage; a second
// Shutdown is harmless.
func Run(t testing.TB, port int) *server.Server {
	t.Helper()
	return run(t, &server.Options{Host: "127.0.0.1", Port: port, NoSigs: true, NoLog: true})
}

func run(t testing.TB, opts *server.Options) *server.Server {
	t.Helper()
	port := opts.Port
	ns, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("natstest: %v", err)
	}
	ns.Start()
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatalf("natstest: server on port %d not ready after 10s", port)
	}
	return ns
}

// RunJetStream is Run with JetStream enabled, its files in a temporary
// directory of the test.
func RunJetStream(t testing.TB, port int) *server.Server {
	t.Helper()
	return run(t, &server.Options{Host: "127.0.0.1", Port: port, NoSigs: true, NoLog: true, JetStream: true, StoreDir: t.TempDir()})
}

// RunTLS is Run on a random port with TLS required of every client, under
// cfg (the server's certificate).
func RunTLS(t testing.TB, cfg *tls.Config) *server.Server {
	t.Helper()
	return run(t, &server.Options{Host: "127.0.0.1", Port: RandomPort, NoSigs: true, NoLog: true,
		TLS: true, TLSConfig: cfg, TLSTimeout: 5})
}
