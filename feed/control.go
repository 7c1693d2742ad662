package feed

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Revocations between the nodes of a deployment (docs/operations.md, "Revocation"), on
// NATS's own machinery: each travels once on a core NATS subject, which
// reaches every node that is up within milliseconds, and is kept in a
// JetStream key-value bucket (one key per sub, the newest revocation of
// it), whose entries expire with the longest token lifetime, so that a
// node that starts later, or was cut off from NATS meanwhile, reads them.
// Without JetStream only the subject carries them.

// Revocation is one revocation as it travels and is kept: the sub's
// tokens issued before IssuedBefore (or without iat) are refused.
type Revocation struct {
	// Sub is the token sub whose tokens are revoked.
	Sub string `json:"sub"`
	// IssuedBefore is the cut-off, Unix seconds: tokens with an iat
	// before it, or none, are refused.
	IssuedBefore int64 `json:"issued_before"`
	// At is when it was made, Unix seconds; it lapses TTL after the later
	// of At and IssuedBefore.
	At int64 `json:"at"`
	// Node is the node that took it from the operator (for logs).
	Node string `json:"node,omitempty"`
}

// Limits of a Revocation's fields.
const (
	maxRevokedSub = 256 // as auth.MaxSubjectBytes: a longer sub has no token
	maxNodeID     = 256
)

// Validate reports a revocation no node would apply, wrapping
// ErrBadRevocation.
func (r Revocation) Validate() error {
	switch {
	case r.Sub == "" || len(r.Sub) > maxRevokedSub || !printable(r.Sub):
		return fmt.Errorf("%w: sub must be 1 to %d bytes of printable UTF-8", ErrBadRevocation, maxRevokedSub)
	case r.IssuedBefore <= 0:
		return fmt.Errorf("%w: issued_before must be a positive Unix time in seconds", ErrBadRevocation)
	case r.At <= 0:
		return fmt.Errorf("%w: at must be a positive Unix time in seconds", ErrBadRevocation)
	case len(r.Node) > maxNodeID || !printable(r.Node):
		return fmt.Errorf("%w: node must be at most %d bytes of printable UTF-8", ErrBadRevocation, maxNodeID)
	}
	return nil
}

// printable reports whether s is valid UTF-8 without control characters.
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// parseRevocation decodes and validates a revocation from the subject or
// the bucket. Unknown fields are ignored: a newer node may add some.
func parseRevocation(data []byte) (Revocation, error) {
	var r Revocation
	if err := json.Unmarshal(data, &r); err != nil {
		return Revocation{}, fmt.Errorf("%w: %w", ErrBadRevocation, err)
	}
	return r, r.Validate()
}

// Errors of Control.
var (
	// ErrBadRevocation: a revocation that fails Validate, or does not
	// decode.
	ErrBadRevocation = errors.New("feed: bad revocation")
	// ErrNoStore: the revocation bucket cannot be used (no JetStream, or
	// it did not answer); revocations reach only the nodes that are up.
	ErrNoStore = errors.New("feed: no revocation store")
	// ErrStoreDisabled: nothing answers JetStream's API (a server without
	// JetStream, as a deployment may choose; or one whose JetStream is away
	// for a while, as a leaf cut off from its hub), so there is no bucket
	// to read or write now; errors that wrap it wrap ErrNoStore too. Other
	// ErrNoStore errors are worth trying again soon.
	ErrStoreDisabled = errors.New("nothing answers JetStream's API")
)

// Defaults of ControlConfig.
const (
	DefaultRevocationSubject = "tickgate.revocations"
	DefaultRevocationBucket  = "tickgate_revocations"
	DefaultRevocationTTL     = 24 * time.Hour
)

// ControlConfig says where revocations travel and are kept. Zero fields
// take the defaults named on each.
type ControlConfig struct {
	// Subject carries revocations on core NATS. It must be a literal
	// subject outside the feed subjects (<prefix>.>) and outside the
	// server's own ($...). Zero: DefaultRevocationSubject.
	Subject string
	// Bucket is the JetStream key-value bucket that keeps them; created
	// on first use when missing. Zero: DefaultRevocationBucket.
	Bucket string
	// TTL is how long the bucket keeps a revocation after it was written:
	// the longest lifetime of a token, after which every token it refuses
	// has expired anyway. Zero: DefaultRevocationTTL.
	TTL time.Duration
	// Replicas of the bucket in a NATS cluster. Zero: 1.
	Replicas int
	// Memory keeps the bucket in memory instead of files (tests, dev).
	Memory bool
}

func (c ControlConfig) withDefaults() ControlConfig {
	if c.Subject == "" {
		c.Subject = DefaultRevocationSubject
	}
	if c.Bucket == "" {
		c.Bucket = DefaultRevocationBucket
	}
	if c.TTL == 0 {
		c.TTL = DefaultRevocationTTL
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	return c
}

// Validate checks c (defaults applied) against the feed subject prefix.
// Errors wrap ErrBadConfig.
func (c ControlConfig) Validate(prefix string) error {
	c = c.withDefaults()
	if err := ValidControlSubject(c.Subject, prefix); err != nil {
		return err
	}
	if !validBucket(c.Bucket) {
		return fmt.Errorf("%w: revocation bucket %q: letters, digits, '-' and '_' only", ErrBadConfig, c.Bucket)
	}
	if c.TTL < time.Minute {
		return fmt.Errorf("%w: revocation TTL %v below a minute", ErrBadConfig, c.TTL)
	}
	if c.Replicas < 1 || c.Replicas > 5 {
		return fmt.Errorf("%w: revocation bucket replicas %d not within 1..5", ErrBadConfig, c.Replicas)
	}
	return nil
}

// ValidControlSubject reports whether subject can carry revocations next
// to feeds under prefix: a literal subject (tokens without wildcards or
// whitespace) that no feed subject <prefix>.<kind>.<symbol> can equal and
// that the history stream over <prefix>.> does not take, and not one of
// the server's own ($JS, $KV, $SYS, ...). Errors wrap ErrBadConfig.
func ValidControlSubject(subject, prefix string) error {
	if err := ValidSubjectPrefix(subject); err != nil {
		return fmt.Errorf("%w: revocation subject: %w", ErrBadConfig, err)
	}
	if strings.HasPrefix(subject, "$") {
		return fmt.Errorf("%w: revocation subject %q: subjects starting with $ are the server's", ErrBadConfig, subject)
	}
	if subject == prefix || strings.HasPrefix(subject, prefix+".") {
		return fmt.Errorf("%w: revocation subject %q is under the feed prefix %q (feed subjects and the history stream take %s.>)",
			ErrBadConfig, subject, prefix, prefix)
	}
	return nil
}

func validBucket(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}

// Control carries revocations for one node over its Source's connection.
// It is safe for concurrent use.
type Control struct {
	src *Source             // Static after construction.
	cfg ControlConfig       // Static after construction; defaults applied.
	js  jetstream.JetStream // Static after construction.

	mu sync.Mutex
	kv jetstream.KeyValue // Guarded by mu: the bucket once found or created.
}

// NewControl returns the revocation carrier of src's node.
func NewControl(src *Source, cfg ControlConfig) (*Control, error) {
	if err := cfg.Validate(src.SubjectPrefix()); err != nil {
		return nil, err
	}
	js, err := jetstream.New(src.nc)
	if err != nil {
		return nil, fmt.Errorf("feed: jetstream: %w", err)
	}
	return &Control{src: src, cfg: cfg.withDefaults(), js: js}, nil
}

// Subject returns the subject revocations travel on.
func (c *Control) Subject() string { return c.cfg.Subject }

// Bucket returns the name of the bucket that keeps them.
func (c *Control) Bucket() string { return c.cfg.Bucket }

// TTL returns how long the bucket keeps a revocation.
func (c *Control) TTL() time.Duration { return c.cfg.TTL }

// Publish sends r on the subject and waits, at most until ctx ends (or
// Config.FlushTimeout without a deadline), until the NATS server has it:
// every node subscribed then gets it. It fails with ErrUnavailable while
// the node has no NATS connection.
func (c *Control) Publish(ctx context.Context, r Revocation) error {
	if err := r.Validate(); err != nil {
		return err
	}
	if !c.src.Connected() {
		return fmt.Errorf("%w: revocation not sent", ErrUnavailable)
	}
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("feed: encode revocation: %w", err)
	}
	if err := c.src.nc.Publish(c.cfg.Subject, data); err != nil {
		return fmt.Errorf("%w: publish revocation: %w", ErrUnavailable, err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.src.cfg.FlushTimeout)
		defer cancel()
	}
	if err := c.src.nc.FlushWithContext(ctx); err != nil {
		return fmt.Errorf("%w: revocation not confirmed by the server: %w", ErrUnavailable, err)
	}
	return nil
}

// Subscribe calls fn with every valid revocation that arrives on the
// subject, on one goroutine, in order, until the returned function is
// called. Invalid payloads are logged (without the payload) and dropped.
// It may be called while NATS is down: the subscription is made when the
// connection is (re)established.
func (c *Control) Subscribe(fn func(Revocation)) (unsubscribe func(), err error) {
	sub, err := c.src.nc.Subscribe(c.cfg.Subject, func(m *nats.Msg) {
		r, err := parseRevocation(m.Data)
		if err != nil {
			c.src.log.Warn("dropped a revocation that does not validate", "subject", m.Subject, "err", err.Error())
			return
		}
		fn(r)
	})
	if err != nil {
		return nil, fmt.Errorf("feed: subscribe to revocations: %w", err)
	}
	return func() { _ = sub.Unsubscribe() }, nil
}

// Store keeps r in the bucket (creating it when missing), replacing the
// sub's entry, for nodes that start later. It fails with ErrNoStore when
// the bucket cannot be used (no JetStream).
func (c *Control) Store(ctx context.Context, r Revocation) error {
	if err := r.Validate(); err != nil {
		return err
	}
	kv, err := c.bucket(ctx)
	if err != nil {
		return err
	}
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("feed: encode revocation: %w", err)
	}
	if _, err := kv.Put(ctx, revocationKey(r.Sub), data); err != nil {
		return fmt.Errorf("%w: put: %w", ErrNoStore, err)
	}
	return nil
}

// Stored returns every revocation the bucket keeps (creating it when
// missing), or ErrNoStore when it cannot be used. Entries that do not
// validate are logged and left out.
func (c *Control) Stored(ctx context.Context) ([]Revocation, error) {
	kv, err := c.bucket(ctx)
	if err != nil {
		return nil, err
	}
	w, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("%w: watch: %w", ErrNoStore, err)
	}
	defer func() { _ = w.Stop() }()
	var out []Revocation
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return nil, fmt.Errorf("%w: watch ended", ErrNoStore)
			}
			if e == nil { // every stored value was delivered
				return out, nil
			}
			r, err := parseRevocation(e.Value())
			if err != nil {
				c.src.log.Warn("left out a stored revocation that does not validate", "bucket", c.cfg.Bucket, "key", e.Key(), "err", err.Error())
				continue
			}
			out = append(out, r)
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %w", ErrNoStore, ctx.Err())
		}
	}
}

// bucket returns the bucket, binding to it or creating it on first use.
func (c *Control) bucket(ctx context.Context) (jetstream.KeyValue, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.kv != nil {
		return c.kv, nil
	}
	if !c.src.Connected() {
		return nil, fmt.Errorf("%w: no NATS connection", ErrNoStore)
	}
	kv, err := c.js.KeyValue(ctx, c.cfg.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		storage := jetstream.FileStorage
		if c.cfg.Memory {
			storage = jetstream.MemoryStorage
		}
		kv, err = c.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      c.cfg.Bucket,
			Description: "tickgate revocations (docs/operations.md)",
			TTL:         c.cfg.TTL,
			History:     1,
			Storage:     storage,
			Replicas:    c.cfg.Replicas,
		})
		if errors.Is(err, jetstream.ErrBucketExists) { // another node was first
			kv, err = c.js.KeyValue(ctx, c.cfg.Bucket)
		}
	}
	switch {
	case errors.Is(err, jetstream.ErrJetStreamNotEnabled), errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount),
		errors.Is(err, nats.ErrNoResponders): // nothing answers JetStream's API: a server without it
		return nil, fmt.Errorf("%w: %w", ErrNoStore, ErrStoreDisabled)
	case err != nil:
		return nil, fmt.Errorf("%w: bucket %s: %w", ErrNoStore, c.cfg.Bucket, err)
	}
	if st, err := kv.Status(ctx); err == nil && st.TTL() != c.cfg.TTL {
		c.src.log.Warn("the revocation bucket keeps entries for another time than this node's revocation TTL; the bucket's applies to what it keeps",
			"bucket", c.cfg.Bucket, "bucket_ttl", st.TTL().String(), "ttl", c.cfg.TTL.String())
	}
	c.kv = kv
	return kv, nil
}

// revocationKey is a sub as a bucket key: keys allow [-/_=.a-zA-Z0-9]
// only, so the sub is base64url-encoded (without padding).
func revocationKey(sub string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(sub))
}
