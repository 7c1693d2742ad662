package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"testing"
)

// TestMain lets the test binary stand in for tickbench when a test starts
// the nats-server subcommand (os.Executable is the test binary then).
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == natsServerCommand {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}
