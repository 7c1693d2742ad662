package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tickgate/tickgate/auth"
)

// rotKey is one signing key of the rotation tests, with its public JWK.
type rotKey struct {
	kid  string
	priv any
	alg  string
	jwk  map[string]any
	pem  []byte
}

func newEdKey(t *testing.T, kid string) rotKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return rotKey{kid: kid, priv: priv, alg: "EdDSA",
		jwk: map[string]any{"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": base64.RawURLEncoding.EncodeToString(pub)},
		pem: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})}
}

func newECKey(t *testing.T, kid string) rotKey {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, err := priv.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	return rotKey{kid: kid, priv: priv, alg: "ES256",
		jwk: map[string]any{"kty": "EC", "crv": "P-256", "kid": kid, "x": enc(b[1:33]), "y": enc(b[33:])},
		pem: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})}
}

// token signs a valid token with k (its kid in the header).
func (k rotKey) token(t *testing.T) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.GetSigningMethod(k.alg), jwt.MapClaims{
		"sub": "rot", "channels": []string{">"}, "aud": "tickgate",
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(),
	})
	if k.kid != "" {
		tok.Header["kid"] = k.kid
	}
	s, err := tok.SignedString(k.priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// writeAtomically replaces path with data the way a careful operator (or a
// ConfigMap update) does, through a rename, and moves its mtime forward so
// that polling sees a change even on a file system with coarse times.
func writeAtomically(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	bump(t, path)
}

var bumpMu sync.Mutex
var bumpAt = time.Now()

// bump sets path's mtime to a fresh, strictly increasing time.
func bump(t *testing.T, path string) {
	t.Helper()
	bumpMu.Lock()
	bumpAt = bumpAt.Add(2 * time.Second)
	at := bumpAt
	bumpMu.Unlock()
	if err := os.Chtimes(path, at, at); err != nil {
		t.Fatal(err)
	}
}

func jwksOf(t *testing.T, keys ...rotKey) []byte {
	t.Helper()
	set := make([]any, 0, len(keys))
	for _, k := range keys {
		set = append(set, k.jwk)
	}
	b, err := json.Marshal(map[string]any{"keys": set})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// reloaderHarness runs a keyReloader with an injected tick and SIGHUP and
// a verifier over its key set.
type reloaderHarness struct {
	r       *keyReloader
	v       *auth.Verifier
	tick    chan time.Time
	hup     chan os.Signal
	results chan error
	logs    *lockedBuffer
}

// lockedBuffer is a log sink safe for the reloader goroutine and the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func startReloader(t *testing.T, src keySources) *reloaderHarness {
	t.Helper()
	h := &reloaderHarness{tick: make(chan time.Time), hup: make(chan os.Signal), results: make(chan error, 16), logs: &lockedBuffer{}}
	r, err := newKeyReloader(src, slog.New(slog.NewTextHandler(h.logs, nil)))
	if err != nil {
		t.Fatalf("initial load: %v", err)
	}
	r.tick, r.hup = h.tick, h.hup
	r.onReload = func(err error) { h.results <- err }
	h.r = r
	if h.v, err = auth.NewVerifier(auth.Config{Audience: "tickgate"}, r.keys); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return h
}

// poll sends one tick and returns the reload's outcome; reloaded is false
// when the tick found nothing changed.
func (h *reloaderHarness) poll(t *testing.T) (err error, reloaded bool) {
	t.Helper()
	h.tick <- time.Now()
	return h.outcome(t)
}

// sighup sends the injected SIGHUP and returns the reload's outcome.
func (h *reloaderHarness) sighup(t *testing.T) error {
	t.Helper()
	h.hup <- syscall.SIGHUP
	err, ok := h.outcome(t)
	if !ok {
		t.Fatal("SIGHUP did not reload")
	}
	return err
}

func (h *reloaderHarness) outcome(t *testing.T) (error, bool) {
	t.Helper()
	// The tick was received; a reload, if any, reports before Run
	// takes the next one. A second (no-op) tick is the barrier.
	h.tick <- time.Now()
	var last error
	reloaded := false
	for {
		select {
		case err := <-h.results: // the newest outcome is the one asked for
			last, reloaded = err, true
			continue
		default:
		}
		return last, reloaded
	}
}

// accepts reports whether the verifier takes tok; a refusal must be for
// the right reason.
func (h *reloaderHarness) accepts(t *testing.T, tok string) bool {
	t.Helper()
	_, err := h.v.Verify(tok)
	if err != nil && !strings.Contains(err.Error(), "unknown key id") {
		t.Fatalf("refused for another reason than the kid: %v", err)
	}
	return err == nil
}

// The rotation of docs/security.md, through a JWKS file: the new key's
// token is refused before the file holds it and accepted after; the old
// key's token keeps working during the overlap and is refused once the
// file drops it; a broken file keeps the last good set and logs why
// without key material; SIGHUP reloads at once.
func TestKeyRotationThroughJWKSFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "jwks.json")
	oldK, newK, nextK := newEdKey(t, "2026-01"), newECKey(t, "2026-02"), newEdKey(t, "2026-03")
	writeAtomically(t, path, jwksOf(t, oldK))
	h := startReloader(t, keySources{{flag: "--jwks-file", path: path, load: auth.LoadJWKSFile}})
	oldTok, newTok, nextTok := oldK.token(t), newK.token(t), nextK.token(t)

	if !h.accepts(t, oldTok) || h.accepts(t, newTok) {
		t.Fatal("start: want old accepted, new refused")
	}
	if _, reloaded := h.poll(t); reloaded {
		t.Fatal("an unchanged file was reloaded")
	}

	// 1. Publish the new key beside the old one.
	writeAtomically(t, path, jwksOf(t, oldK, newK))
	if err, reloaded := h.poll(t); !reloaded || err != nil {
		t.Fatalf("after adding the new key: reloaded=%v err=%v", reloaded, err)
	}
	if !h.accepts(t, oldTok) || !h.accepts(t, newTok) {
		t.Fatal("overlap: want both accepted")
	}

	// 2. The issuer switched and the longest token lifetime passed:
	// remove the old key.
	writeAtomically(t, path, jwksOf(t, newK))
	if err, reloaded := h.poll(t); !reloaded || err != nil {
		t.Fatalf("after removing the old key: reloaded=%v err=%v", reloaded, err)
	}
	if h.accepts(t, oldTok) || !h.accepts(t, newTok) {
		t.Fatal("after: want old refused, new accepted")
	}

	// 3. A broken file (here cut in the middle of a key) keeps the set.
	secretish := `"x":"` + base64.RawURLEncoding.EncodeToString([]byte("THIS-IS-KEY-MATERIAL-0123456789"))
	writeAtomically(t, path, []byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"2026-03",`+secretish))
	if err, reloaded := h.poll(t); !reloaded || err == nil {
		t.Fatalf("broken file: reloaded=%v err=%v, want a failed reload", reloaded, err)
	}
	if h.accepts(t, oldTok) || !h.accepts(t, newTok) {
		t.Fatal("broken file changed the set")
	}
	if _, reloaded := h.poll(t); reloaded {
		t.Fatal("a broken file that did not change was read again")
	}
	if err := h.sighup(t); err == nil {
		t.Fatal("SIGHUP with a broken file succeeded")
	}
	if h.r.keys.Len() != 1 {
		t.Fatalf("key set holds %d keys, want the last good 1", h.r.keys.Len())
	}

	// 4. A file that parses but holds a key too weak is refused whole.
	writeAtomically(t, path, []byte(`{"keys":[{"kty":"oct","kid":"weak","k":"c2hvcnQ"}]}`))
	if err, _ := h.poll(t); err == nil {
		t.Fatal("a weak key was loaded")
	}

	// 5. Fixed, with a same-size, same-mtime rewrite only SIGHUP sees.
	good := jwksOf(t, newK, nextK)
	writeAtomically(t, path, good)
	if err, reloaded := h.poll(t); !reloaded || err != nil {
		t.Fatalf("fixed file: reloaded=%v err=%v", reloaded, err)
	}
	if !h.accepts(t, nextTok) {
		t.Fatal("fixed file: next key refused")
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, jwksOf(t, newK, oldK), 0o600); err != nil { // same length: both Ed25519
		t.Fatal(err)
	}
	if err := os.Chtimes(path, st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
	if _, reloaded := h.poll(t); reloaded {
		t.Skip("file system reports a change the test meant to hide")
	}
	if h.accepts(t, oldTok) {
		t.Fatal("invisible rewrite applied without SIGHUP")
	}
	if err := h.sighup(t); err != nil {
		t.Fatalf("SIGHUP: %v", err)
	}
	if !h.accepts(t, oldTok) || h.accepts(t, nextTok) {
		t.Fatal("SIGHUP did not apply the rewritten file")
	}

	// 6. The file removed: keep the set.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err, reloaded := h.poll(t); !reloaded || err == nil {
		t.Fatalf("removed file: reloaded=%v err=%v", reloaded, err)
	}
	if !h.accepts(t, newTok) {
		t.Fatal("removing the file dropped the keys")
	}

	logs := h.logs.String()
	if !strings.Contains(logs, "key reload failed; keeping the previous keys") || !strings.Contains(logs, "keys reloaded") {
		t.Fatalf("logs lack the reload lines:\n%s", logs)
	}
	for _, leak := range []string{"THIS-IS", "VEhJUy1JUy1L", oldTok, newTok} {
		if strings.Contains(logs, leak) {
			t.Fatalf("logs contain key material or a token (%q):\n%s", leak, logs)
		}
	}
}

// PEM files rotate the same way: the new public key under the same kid.
func TestKeyRotationThroughPEMFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "issuer.pem")
	a, b := newEdKey(t, "issuer"), newEdKey(t, "issuer")
	writeAtomically(t, path, a.pem)
	var f serveFlags
	if err := f.publicKeyFiles.Set("issuer=" + path); err != nil {
		t.Fatal(err)
	}
	src, err := f.keySources()
	if err != nil {
		t.Fatal(err)
	}
	h := startReloader(t, src)
	if _, err := h.v.Verify(a.token(t)); err != nil {
		t.Fatalf("key a: %v", err)
	}
	if _, err := h.v.Verify(b.token(t)); err == nil {
		t.Fatal("key b accepted before the rotation")
	}
	writeAtomically(t, path, b.pem)
	if err, reloaded := h.poll(t); !reloaded || err != nil {
		t.Fatalf("rotation: reloaded=%v err=%v", reloaded, err)
	}
	if _, err := h.v.Verify(b.token(t)); err != nil {
		t.Fatalf("key b after the rotation: %v", err)
	}
	if _, err := h.v.Verify(a.token(t)); err == nil {
		t.Fatal("key a accepted after the rotation")
	}
	writeAtomically(t, path, []byte("-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n"))
	if err, _ := h.poll(t); err == nil || !strings.Contains(err.Error(), "private key") {
		t.Fatalf("a private key file: %v", err)
	}
	if _, err := h.v.Verify(b.token(t)); err != nil {
		t.Fatalf("the private-key file changed the set: %v", err)
	}
}

func TestKeySourcesFromFlags(t *testing.T) {
	dir := t.TempDir()
	ed := newEdKey(t, "")
	pemPath := filepath.Join(dir, "k=1.pem")
	if err := os.WriteFile(pemPath, ed.pem, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		kids []string // the key IDs loaded, or nil for a usage error
		want string   // substring of the usage error
	}{
		{name: "none", want: "--public-key-file"},
		{name: "kid and file", args: []string{"--public-key-file", "a=" + pemPath}, kids: []string{"a"}},
		{name: "file alone is kid-less", args: []string{"--public-key-file", "=" + pemPath}, kids: []string{""}},
		{name: "repeated", args: []string{"--public-key-file", "a=" + pemPath, "--public-key-file", "b=" + pemPath}, kids: []string{"a", "b"}},
		{name: "kid twice", args: []string{"--public-key-file", "a=" + pemPath + ",a=" + pemPath}, want: "twice"},
		{name: "no file", args: []string{"--public-key-file", "a="}, want: "KID=FILE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f serveFlags
			fs := newFlagSet("serve", io.Discard)
			f.register(fs)
			if err := parseFlags(fs, tt.args); err != nil {
				t.Fatal(err)
			}
			src, err := f.keySources()
			if tt.kids == nil {
				if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("keySources = %v, want a usage error naming %q", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			keys, err := src.load()
			if err != nil {
				t.Fatal(err)
			}
			var kids []string
			for _, k := range keys {
				kids = append(kids, k.ID)
			}
			if strings.Join(kids, ",") != strings.Join(tt.kids, ",") {
				t.Fatalf("kids %q, want %q", kids, tt.kids)
			}
		})
	}
}

// TestServeReloadsKeysOnSIGHUP runs `tickgate serve` with a JWKS file and
// a real SIGHUP: a handshake with the new key's token is refused before
// the file is rotated and succeeds after, and the removed key's token is
// refused. The test holds its own SIGHUP subscription throughout, so a
// signal can never reach the default action (which ends the process).
func TestServeReloadsKeysOnSIGHUP(t *testing.T) {
	guard := make(chan os.Signal, 16)
	signal.Notify(guard, syscall.SIGHUP)
	t.Cleanup(func() { signal.Stop(guard) })

	ns, err := startEmbeddedNATS("127.0.0.1:0", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	dir := t.TempDir()
	path := filepath.Join(dir, "jwks.json")
	oldK, newK := newEdKey(t, "old"), newECKey(t, "new")
	writeAtomically(t, path, jwksOf(t, oldK))

	logs := &lockedBuffer{}
	out := runInProcess(t, logs, "tickgate serving ", "serve", "--listen", "127.0.0.1:0", "--admin", "", "--nats", ns.ClientURL(),
		"--insecure-plaintext", "--jwks-file", path, "--audience", "tickgate", "--log-level", "debug")
	var url string
	for k := range out {
		url, _ = strings.CutPrefix(k, "tickgate serving ")
	}
	if !strings.HasPrefix(url, "ws://") {
		t.Fatalf("serve printed %q", url)
	}
	httpURL := "http://" + strings.TrimPrefix(url, "ws://")
	handshake := func(tok string) int {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, httpURL, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", "websocket")
		req.Header.Set("Sec-WebSocket-Version", "13")
		req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	oldTok, newTok := oldK.token(t), newK.token(t)
	if got := handshake(newTok); got != http.StatusUnauthorized {
		t.Fatalf("new key before rotation: %d", got)
	}
	if got := handshake(oldTok); got != http.StatusSwitchingProtocols {
		t.Fatalf("old key before rotation: %d", got)
	}

	// Rotate in one step for brevity; keep the mtime so that only the
	// signal can be what reloads (polling would, within 5 s, too).
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, jwksOf(t, newK), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for handshake(newTok) != http.StatusSwitchingProtocols {
		if time.Now().After(deadline) {
			t.Fatalf("new key still refused 10 s after SIGHUP; logs:\n%s", logs)
		}
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := handshake(oldTok); got != http.StatusUnauthorized {
		t.Fatalf("removed key after rotation: %d", got)
	}
	if !strings.Contains(logs.String(), "trigger=SIGHUP") {
		t.Fatalf("no SIGHUP reload in the logs:\n%s", logs)
	}
}
