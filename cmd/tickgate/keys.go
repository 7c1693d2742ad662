package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickgate/tickgate/auth"
)

// keyPollInterval is how often the key files' modification time and size
// are compared with what was loaded. Polling rather than inotify: it needs
// no dependency, sees a Kubernetes ConfigMap or Secret update (an atomic
// swap of a symlinked directory, which a watch on the file itself misses)
// and works on network file systems. A few seconds of delay is nothing
// next to a rotation that spans a token lifetime; SIGHUP reloads at once.
const keyPollInterval = 5 * time.Second

// keyFile is one file of verification keys and the loader that reads it.
type keyFile struct {
	flag string // the flag that named it, for errors
	path string
	load func(path string) ([]auth.Key, error)
}

// keySources are the key files of a node, in flag order. Their keys
// together are the node's key set.
type keySources []keyFile

// keySources turns the key flags into the node's key files:
// --hmac-secret-file, --jwks-file and every --public-key-file KID=FILE
// (FILE alone is the key for tokens without kid).
func (f *serveFlags) keySources() (keySources, error) {
	var src keySources
	if f.hmacSecretFile != "" {
		src = append(src, keyFile{flag: "--hmac-secret-file", path: f.hmacSecretFile, load: auth.LoadHMACSecretFile})
	}
	if f.jwksFile != "" {
		src = append(src, keyFile{flag: "--jwks-file", path: f.jwksFile, load: auth.LoadJWKSFile})
	}
	seen := make(map[string]bool)
	for _, v := range f.publicKeyFiles.vals {
		kid, path, ok := strings.Cut(v, "=")
		if !ok {
			kid, path = "", v
		}
		if path == "" {
			return nil, usagef("--public-key-file %q: want KID=FILE or FILE", v)
		}
		if seen[kid] {
			return nil, usagef("--public-key-file: kid %q given twice (one PEM key per kid; use a JWKS for more)", kid)
		}
		seen[kid] = true
		src = append(src, keyFile{flag: "--public-key-file", path: path, load: func(p string) ([]auth.Key, error) {
			return auth.LoadPublicKeyFile(p, kid)
		}})
	}
	if len(src) == 0 {
		return nil, usagef("key material required: --hmac-secret-file, --jwks-file or --public-key-file")
	}
	return src, nil
}

// load reads every file and returns all their keys. The first failure is
// returned, naming its flag; key loaders never put key material in errors.
func (s keySources) load() ([]auth.Key, error) {
	var keys []auth.Key
	for _, f := range s {
		k, err := f.load(f.path)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.flag, err)
		}
		keys = append(keys, k...)
	}
	return keys, nil
}

// fileStamp is what polling compares: a change of either means the file
// was rewritten (or replaced: os.Stat follows symlinks).
type fileStamp struct {
	modTime time.Time
	size    int64
	missing bool
}

// stamps stats every file.
func (s keySources) stamps() []fileStamp {
	paths := make([]string, len(s))
	for i, f := range s {
		paths[i] = f.path
	}
	return stampFiles(paths...)
}

// stampFiles stats each path.
func stampFiles(paths ...string) []fileStamp {
	out := make([]fileStamp, len(paths))
	for i, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			out[i] = fileStamp{missing: true}
			continue
		}
		out[i] = fileStamp{modTime: fi.ModTime(), size: fi.Size()}
	}
	return out
}

// keyReloader keeps a KeySet equal to what the key files hold: on SIGHUP,
// and when polling sees a file's modification time or size change, it
// reads all the files and replaces the whole set with their keys (so a key
// stays exactly as long as some file holds it). A reload that fails (a file
// missing, unreadable or not parsing, a key too weak) keeps the previous
// set and logs the reason, which names the file but never key material.
//
// Connections already open keep the claims they were verified with until
// their exp, whatever the keys become: removing a key refuses new
// handshakes and token refreshes signed with it, nothing more.
type keyReloader struct {
	src  keySources   // Static after construction.
	keys *auth.KeySet // Static after construction; swapped whole by Replace.
	log  *slog.Logger // Static after construction.

	// tick and hup drive Run; nil means a ticker of keyPollInterval and
	// SIGHUP. Static after construction (tests set them).
	tick <-chan time.Time
	hup  <-chan os.Signal
	// onReload, when set, is told the outcome of every reload attempt.
	// Static after construction (tests set it).
	onReload func(error)

	stamps []fileStamp // Owned by Run: the stamps of the last attempt.

	reloads *prometheus.CounterVec // Safe for concurrent use.
	loaded  prometheus.Gauge       // Safe for concurrent use.
}

// newKeyReloader loads the key files once; an error here stops the node
// from starting.
func newKeyReloader(src keySources, log *slog.Logger) (*keyReloader, error) {
	r := &keyReloader{
		src:  src,
		keys: auth.NewKeySet(),
		log:  log,
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tickgate_key_reloads_total",
			Help: "Key set reload attempts (SIGHUP or a changed key file), by result.",
		}, []string{"result"}),
		loaded: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tickgate_keys_loaded",
			Help: "Verification keys in the node's key set.",
		}),
	}
	r.reloads.WithLabelValues("ok")
	r.reloads.WithLabelValues("error")
	r.stamps = src.stamps()
	keys, err := src.load()
	if err != nil {
		return nil, err
	}
	if err := r.keys.Set(keys); err != nil {
		return nil, err
	}
	r.loaded.Set(float64(r.keys.Len()))
	return r, nil
}

// collectors are the reloader's metrics, for the node's registry.
func (r *keyReloader) collectors() []prometheus.Collector {
	return []prometheus.Collector{r.reloads, r.loaded}
}

// Run reloads on SIGHUP and when a key file changes, until ctx ends.
func (r *keyReloader) Run(ctx context.Context) {
	watchFiles(ctx, r.tick, r.hup, r.src.stamps, &r.stamps, r.reload)
}

// watchFiles calls reload on SIGHUP and whenever polling (tick; nil: every
// keyPollInterval) sees stamps change from *last, until ctx ends. hup nil
// means the process's SIGHUP. It serves the key files and the TLS
// certificate alike.
func watchFiles(ctx context.Context, tick <-chan time.Time, hup <-chan os.Signal, stamps func() []fileStamp, last *[]fileStamp, reload func(why string) error) {
	if hup == nil {
		// Not stopped on return: Run ends when the node shuts down, and
		// a SIGHUP during the drain must not reach its default action,
		// which ends the process.
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGHUP)
		hup = ch
	}
	if tick == nil {
		t := time.NewTicker(keyPollInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			*last = stamps()
			_ = reload("SIGHUP")
		case <-tick:
			now := stamps()
			if slices.Equal(now, *last) {
				continue
			}
			// Stamps are taken before reading: a file still being
			// written stamps again differently and is read again.
			*last = now
			_ = reload("file changed")
		}
	}
}

// reload reads all key files and, if they all load, replaces the set.
func (r *keyReloader) reload(why string) error {
	keys, err := r.src.load()
	if err == nil && len(keys) == 0 {
		err = errors.New("the key files hold no key")
	}
	if err != nil {
		r.reloads.WithLabelValues("error").Inc()
		r.log.Error("key reload failed; keeping the previous keys", "trigger", why, "err", err.Error(), "keys", r.keys.Len())
	} else {
		r.keys.Replace(keys)
		r.reloads.WithLabelValues("ok").Inc()
		r.loaded.Set(float64(r.keys.Len()))
		r.log.Info("keys reloaded", "trigger", why, "keys", r.keys.Len(), "kids", kidList(keys))
	}
	if r.onReload != nil {
		r.onReload(err)
	}
	return err
}

// kidList names the key IDs of keys for the log, "-" for the kid-less
// key. Key IDs are public (every token carries its own).
func kidList(keys []auth.Key) string {
	ids := make([]string, 0, len(keys))
	for _, k := range keys {
		id := k.ID
		if id == "" {
			id = "-"
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return strings.Join(slices.Compact(ids), ",")
}
