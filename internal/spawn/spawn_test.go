package spawn

import (
	"context"
	"errors"
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
