package spawn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestCredentialsAndNATS(t *testing.T) {
	dir := t.TempDir()
	c, err := WriteCredentials(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{c.CertFile, c.KeyFile, c.SecretFile} {
		if st, err := os.Stat(f); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, mode %v; want a 0600 file", f, err, st.Mode())
		}
	}
	if len(c.Secret) != 64 || c.ClientTLS.RootCAs == nil || c.Signer == nil || len(c.Args()) != 3 {
		t.Errorf("credentials incomplete: %+v", c)
	}
	ns, err := EmbeddedNATS("spawn-test")
	if err != nil {
		t.Fatal(err)
	}
	ns.Shutdown()
	if p, err := FreePort(); err != nil || p == 0 {
		t.Errorf("FreePort = %d, %v", p, err)
	}
}

// FreePort's ports lie below the kernel's ephemeral range, where no
// outgoing connection takes them, and can be listened on.
func TestFreePortBelowEphemeral(t *testing.T) {
	lo, ok := ephemeralLow()
	if !ok {
		t.Skip("no /proc/sys/net/ipv4/ip_local_port_range here")
	}
	for range 20 {
		p, err := FreePort()
		if err != nil {
			t.Fatal(err)
		}
		if lo > minFixedPort+100 && (p < minFixedPort || p >= lo) {
			t.Fatalf("FreePort = %d, want within %d..%d", p, minFixedPort, lo-1)
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			t.Fatalf("listen on FreePort's %d: %v", p, err)
		}
		_ = l.Close()
	}
}

// A stand-in for the gateway: a shell script that prints the line Start
// waits for, or exits at once.
func TestStart(t *testing.T) {
	dir := t.TempDir()
	script := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ctx := context.Background()
	p, err := Start(ctx, Options{Bin: script("ok", `echo log >&2; echo "tickgate serving wss://127.0.0.1:1/v1/ws"; exec sleep 30`), LogPath: filepath.Join(dir, "ok.log")})
	if err != nil {
		t.Fatal(err)
	}
	if p.URL != "wss://127.0.0.1:1/v1/ws" || p.PID == 0 {
		t.Errorf("URL %q, PID %d", p.URL, p.PID)
	}
	p.Stop()
	if gone, _ := p.Exited(); !gone {
		t.Error("still running after Stop")
	}
	if got := Tail(p.LogPath, 1); got != "log" {
		t.Errorf("log tail %q, want %q", got, "log")
	}
	_, err = Start(ctx, Options{Bin: script("fails", "echo broken >&2; exit 3"), LogPath: filepath.Join(dir, "f.log"), StartTimeout: 10 * time.Second})
	if !errors.Is(err, ErrStart) {
		t.Errorf("a gateway that exits at start: %v, want ErrStart", err)
	}
}

// Another server: its own ready line with Env passed through, or none at
// all and a port that accepts once it serves.
func TestStartOtherServers(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "srv")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho \"other serving ws://x/$PORTS\"\nexec sleep 30\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	p, err := Start(ctx, Options{Bin: script, Env: []string{"PORTS=1 2"}, Ready: "other serving ", LogPath: filepath.Join(dir, "a.log")})
	if err != nil {
		t.Fatal(err)
	}
	p.Stop()
	if p.URL != "ws://x/1 2" {
		t.Errorf("URL %q, want the rest of the ready line with $PORTS from Env", p.URL)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	p, err = Start(ctx, Options{Bin: "sleep", Args: []string{"30"}, ReadyAddr: l.Addr().String(), ReadyURL: "ws://ready/", LogPath: filepath.Join(dir, "b.log")})
	if err != nil {
		t.Fatal(err)
	}
	p.Stop()
	if p.URL != "ws://ready/" {
		t.Errorf("URL %q, want ReadyURL once ReadyAddr accepts", p.URL)
	}
	_, err = Start(ctx, Options{Bin: "sleep", Args: []string{"30"}, ReadyAddr: "127.0.0.1:1", LogPath: filepath.Join(dir, "c.log"), StartTimeout: 300 * time.Millisecond})
	if !errors.Is(err, ErrStart) {
		t.Errorf("nothing listening at ReadyAddr: %v, want ErrStart", err)
	}
}
