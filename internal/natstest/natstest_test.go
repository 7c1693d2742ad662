package natstest

import (
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

func TestRunServesAndRestartsOnTheSamePort(t *testing.T) {
	ns := Run(t, RandomPort)
	nc, err := nats.Connect(ns.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	port := ns.Addr().(*net.TCPAddr).Port
	ns.Shutdown()
	ns.Shutdown() // the cleanup shuts it down again: must be harmless
	if nc.FlushTimeout(200*time.Millisecond) == nil {
		t.Fatal("flush succeeded with the server down")
	}
	again := Run(t, port)
	if again.ClientURL() != ns.ClientURL() {
		t.Fatalf("restarted at %s, want %s", again.ClientURL(), ns.ClientURL())
	}
	deadline := time.Now().Add(10 * time.Second)
	for nc.FlushTimeout(200*time.Millisecond) != nil {
		if time.Now().After(deadline) {
			t.Fatal("client did not reconnect to the restarted server")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
