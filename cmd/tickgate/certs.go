package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"
)

// certReloader serves the TLS certificate of --tls-cert/--tls-key and
// rereads both on SIGHUP and when either file changes, so a renewed
// certificate (cert-manager, ACME) needs no restart. A pair that fails to
// load keeps the one in use. New TLS handshakes get the new certificate;
// open connections keep theirs.
type certReloader struct {
	certFile, keyFile string       // Static after construction.
	log               *slog.Logger // Static after construction.

	// tick and hup drive Run; nil: polling every keyPollInterval and
	// SIGHUP. Static after construction (tests set them).
	tick <-chan time.Time
	hup  <-chan os.Signal

	cur    atomic.Pointer[tls.Certificate] // Read by every TLS handshake.
	stamps []fileStamp                     // Owned by Run.
}

func newCertReloader(certFile, keyFile string, log *slog.Logger) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile, log: log}
	r.stamps = stampFiles(certFile, keyFile)
	if err := r.load(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *certReloader) load() error {
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("--tls-cert/--tls-key: %w", err)
	}
	r.cur.Store(&cert)
	return nil
}

// getCertificate is tls.Config.GetCertificate.
func (r *certReloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.cur.Load(), nil
}

// Run reloads on SIGHUP and when a file changes, until ctx ends.
func (r *certReloader) Run(ctx context.Context) {
	watchFiles(ctx, r.tick, r.hup, func() []fileStamp { return stampFiles(r.certFile, r.keyFile) }, &r.stamps, func(why string) error {
		if err := r.load(); err != nil {
			r.log.Error("certificate reload failed; keeping the one in use", "trigger", why, "err", err.Error())
			return err
		}
		r.log.Info("certificate reloaded", "trigger", why)
		return nil
	})
}
