package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tickgate/tickgate/internal/selfsigned"
)

// A renewed certificate is served without a restart; a broken pair keeps
// the one in use.
func TestCertReload(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	write := func(c *selfsigned.Cert, at time.Time) {
		t.Helper()
		for path, b := range map[string][]byte{certFile: c.CertPEM, keyFile: c.KeyPEM} {
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(path, at, at); err != nil {
				t.Fatal(err)
			}
		}
	}
	a, err := selfsigned.New(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	b, err := selfsigned.New(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	write(a, now)
	r, err := newCertReloader(certFile, keyFile, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	tick := make(chan time.Time)
	r.tick, r.hup = tick, make(chan os.Signal)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	poll := func() { tick <- time.Now(); tick <- time.Now() } // the second tick waits for the first's reload
	serving := func() []byte {
		c, err := r.getCertificate(nil)
		if err != nil {
			t.Fatal(err)
		}
		return c.Certificate[0]
	}
	if !bytes.Equal(serving(), a.TLS.Certificate[0]) {
		t.Fatal("not serving the first certificate")
	}
	write(b, now.Add(time.Minute))
	poll()
	if !bytes.Equal(serving(), b.TLS.Certificate[0]) {
		t.Fatal("renewed certificate not served")
	}
	if err := os.WriteFile(keyFile, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	poll()
	if !bytes.Equal(serving(), b.TLS.Certificate[0]) {
		t.Fatal("a broken key file replaced the certificate in use")
	}
}
