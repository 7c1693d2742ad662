package auth

import (
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

// Claim limits.
const (
	MaxSubjectBytes = 256
	MaxChannels     = 1024
)

// The range of exp, nbf and iat: from the Unix epoch to the end of year
// 9999. golang-jwt would convert a JSON number to int64 seconds through a
// float64, and Go leaves the result of an out-of-range float conversion to
// the platform (amd64 gives the most negative int64, arm64 saturates), so
// an absurd nbf such as 1e300 read as long past on one machine and as far
// future on another. numericDate (claims.go) now refuses a date outside
// the range as it parses it; Validate checks again, in depth. A date
// outside the range makes the token invalid.
const maxClaimUnix = 253402300800 // 10000-01-01T00:00:00Z, the first second out of range

var (
	minClaimTime = time.Unix(0, 0)
	maxClaimTime = time.Unix(maxClaimUnix, 0)
)

// Claims are the verified permissions of one token.
type Claims struct {
	// Subject is the "sub" claim: the subscriber id.
	Subject string
	// ExpiresAt is the "exp" claim; the connection ends then unless the
	// client refreshes its token.
	ExpiresAt time.Time
	// IssuedAt is the "iat" claim, read as strictly as exp (a plain JSON
	// NumericDate, exact to the nanosecond); zero when the token has none.
	// A revocation (docs/operations.md, "Revocation") refuses the sub's tokens issued
	// before a cut-off, and one without iat counts as issued before.
	IssuedAt time.Time
	// Patterns are the compiled "channels" claim, in token order.
	Patterns []Pattern
}

// Allows reports whether any pattern matches the channel name (for example
// "ticker.BTC-USD"). It does not allocate.
func (c *Claims) Allows(channel string) bool {
	for _, p := range c.Patterns {
		if p.Match(channel) {
			return true
		}
	}
	return false
}

// Verifier verifies tokens against a KeySet. It is safe for concurrent use.
type Verifier struct {
	cfg    Config      // static after construction, defaults applied
	keys   *KeySet     // shared; swapped by its owner through Replace
	parser *jwt.Parser // static after construction; read-only while parsing
}

// NewVerifier returns a Verifier for cfg that takes its keys from keys.
func NewVerifier(cfg Config, keys *KeySet) (*Verifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if keys == nil {
		return nil, errors.New("auth: NewVerifier needs a key set")
	}
	cfg = cfg.withDefaults()
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(cfg.Algorithms),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithTimeFunc(cfg.Now),
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	return &Verifier{cfg: cfg, keys: keys, parser: jwt.NewParser(opts...)}, nil
}

// tokenClaims is the claims shape tickgate tokens carry. Its UnmarshalJSON
// (claims.go) fills it; the embedded RegisteredClaims serve golang-jwt's
// own exp, nbf, iat, aud and iss checks.
type tokenClaims struct {
	Channels []string
	jwt.RegisteredClaims

	patterns []Pattern // compiled by Validate
}

// claimError is a tickgate-specific claim failure with a fixed reason.
type claimError struct{ reason string }

func (e *claimError) Error() string { return e.reason }

// Validate implements jwt.ClaimsValidator: golang-jwt calls it after the
// signature checked out, alongside its own exp/nbf/iat/aud/iss checks.
func (c *tokenClaims) Validate() error {
	for _, d := range [...]struct {
		name string
		v    *jwt.NumericDate
	}{{"exp", c.ExpiresAt}, {"nbf", c.NotBefore}, {"iat", c.IssuedAt}} {
		if d.v != nil && (d.v.Before(minClaimTime) || !d.v.Before(maxClaimTime)) {
			return &claimError{d.name + " out of range"}
		}
	}
	switch {
	case c.Subject == "":
		return &claimError{"missing sub"}
	case len(c.Subject) > MaxSubjectBytes:
		return &claimError{"sub longer than " + strconv.Itoa(MaxSubjectBytes) + " bytes"}
	case !printable(c.Subject):
		return &claimError{"sub is not printable UTF-8"}
	case c.Channels == nil:
		return &claimError{"missing channels"}
	case len(c.Channels) == 0:
		return &claimError{"channels is empty"}
	case len(c.Channels) > MaxChannels:
		return &claimError{"more than " + strconv.Itoa(MaxChannels) + " channels"}
	}
	c.patterns = make([]Pattern, len(c.Channels))
	for i, s := range c.Channels {
		p, err := ParsePattern(s)
		if err != nil {
			return &claimError{"bad channel pattern at index " + strconv.Itoa(i)}
		}
		c.patterns[i] = p
	}
	return nil
}

// printable reports whether s is valid UTF-8 without control characters, so
// that it is safe to key logs and metrics by.
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

// keyLookup is the state of one Verify call's key function.
type keyLookup struct {
	keys   *KeySet
	called bool // the alg passed the allow-list and keys were looked up
}

// keyError is a key-selection failure with a fixed reason.
type keyError struct{ reason string }

func (e *keyError) Error() string { return e.reason }

// keyFunc picks the verification key(s) by the kid rule and the alg/key-type
// binding; see the package doc.
func (l *keyLookup) keyFunc(t *jwt.Token) (any, error) {
	l.called = true
	if typ, ok := t.Header["typ"]; ok {
		if s, ok := typ.(string); !ok || !strings.EqualFold(s, "JWT") {
			return nil, &keyError{"typ header is not JWT"}
		}
	}
	if _, ok := t.Header["crit"]; ok {
		return nil, &keyError{"crit header is not supported"}
	}
	if _, ok := t.Header["cty"]; ok {
		return nil, &keyError{"cty header is not supported"}
	}
	alg := t.Method.Alg()
	spec, ok := lookupAlg(alg)
	if !ok { // unreachable: the allow-list holds only supported algorithms
		return nil, &keyError{"algorithm not supported"}
	}
	id := ""
	if kid, ok := t.Header["kid"]; ok {
		s, ok := kid.(string)
		if !ok {
			return nil, &keyError{"kid header is not a string"}
		}
		id = s
	}
	entries := l.keys.lookup(id)
	if len(entries) == 0 {
		if _, ok := t.Header["kid"]; ok {
			return nil, &keyError{"unknown key id"}
		}
		return nil, &keyError{"no key for tokens without kid"}
	}
	var first any
	var set []jwt.VerificationKey
	for i := range entries {
		e := &entries[i]
		if !e.fits(alg, spec) {
			continue
		}
		switch {
		case first == nil:
			first = e.key.Material
		case set == nil:
			set = []jwt.VerificationKey{first, e.key.Material}
		default:
			set = append(set, e.key.Material)
		}
	}
	switch {
	case first == nil:
		return nil, &keyError{"algorithm does not fit the key"}
	case set != nil:
		return jwt.VerificationKeySet{Keys: set}, nil
	}
	return first, nil
}

// Verify checks the token's signature, algorithm, exp (required, and in
// the future: no leeway), nbf and iat (when present, with leeway; an iat in
// the future beyond leeway is refused), aud and iss (when configured), typ
// (absent or "JWT"), sub (required, non-empty, at most 256 bytes) and
// channels (required array of 1 to 1024 valid patterns). Header
// parameters and claims are read by their exact names: a name given twice,
// or a claim name that differs from one of those in case only, is invalid,
// and each claim must have its JSON type (tokenClaims.UnmarshalJSON). An
// expired but otherwise valid token is ErrTokenExpired; anything else is
// ErrInvalidToken with a short reason that never contains any part of the
// token. An empty token is ErrMissingToken.
func (v *Verifier) Verify(token string) (*Claims, error) {
	switch {
	case token == "":
		return nil, ErrMissingToken
	case len(token) > MaxTokenBytes:
		return nil, invalid("token exceeds 8 KiB")
	}
	if err := checkHeader(token); err != nil {
		return nil, err
	}
	var tc tokenClaims
	l := keyLookup{keys: v.keys}
	if _, err := v.parser.ParseWithClaims(token, &tc, l.keyFunc); err != nil {
		return nil, v.classify(err, &tc, l.called)
	}
	if tc.patterns == nil || tc.ExpiresAt == nil { // defence in depth: Validate ran
		return nil, invalid("claims not validated")
	}
	if !tc.ExpiresAt.After(v.cfg.Now()) {
		// Leeway stretches nbf and iat, not exp: a connection is closed
		// at exp, so a token already past it could serve no one.
		return nil, ErrTokenExpired
	}
	c := &Claims{Subject: tc.Subject, ExpiresAt: tc.ExpiresAt.Time, Patterns: tc.patterns}
	if tc.IssuedAt != nil {
		c.IssuedAt = tc.IssuedAt.Time
	}
	return c, nil
}

// classify maps a golang-jwt error to our sentinels with a fixed reason.
// golang-jwt's own messages are never passed on: some quote header values.
func (v *Verifier) classify(err error, tc *tokenClaims, keyLookedUp bool) error {
	var ke *keyError
	var ce *claimError
	switch {
	case errors.As(err, &ke):
		return invalid(ke.reason)
	case errors.Is(err, jwt.ErrTokenMalformed) && errors.As(err, &ce):
		// tokenClaims.UnmarshalJSON refused the claims; golang-jwt
		// wraps its error as malformed.
		return invalid(ce.reason)
	case errors.Is(err, jwt.ErrTokenMalformed):
		return invalid("malformed token")
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return invalid("unsupported or missing algorithm")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		if !keyLookedUp {
			return invalid("algorithm not allowed")
		}
		return invalid("bad signature")
	case errors.Is(err, jwt.ErrTokenInvalidClaims):
		reason, expired := "", false
		eachLeaf(err, func(leaf error) {
			switch {
			case leaf == jwt.ErrTokenInvalidClaims:
			case errors.Is(leaf, jwt.ErrTokenExpired):
				expired = true
			case reason == "":
				reason = v.claimReason(leaf, tc)
			}
		})
		switch {
		case reason != "":
			return invalid(reason)
		case expired:
			return ErrTokenExpired
		}
		return invalid("invalid claims")
	}
	return invalid("unverifiable token")
}

// claimReason names one failed claim check.
func (v *Verifier) claimReason(leaf error, tc *tokenClaims) string {
	var ce *claimError
	switch {
	case errors.As(leaf, &ce):
		return ce.reason
	case errors.Is(leaf, jwt.ErrTokenNotValidYet):
		return "not valid yet (nbf)"
	case errors.Is(leaf, jwt.ErrTokenUsedBeforeIssued):
		return "issued in the future (iat)"
	case errors.Is(leaf, jwt.ErrTokenInvalidAudience):
		return "audience mismatch"
	case errors.Is(leaf, jwt.ErrTokenInvalidIssuer):
		return "issuer mismatch"
	case errors.Is(leaf, jwt.ErrTokenRequiredClaimMissing):
		switch {
		case tc.ExpiresAt == nil:
			return "missing exp"
		case v.cfg.Audience != "" && (len(tc.Audience) == 0 || len(tc.Audience) == 1 && tc.Audience[0] == ""):
			return "missing aud"
		case v.cfg.Issuer != "" && tc.Issuer == "":
			return "missing iss"
		}
		return "missing required claim"
	}
	return "invalid claims"
}

// eachLeaf calls f for every error in err's tree of multi-errors (the
// errors golang-jwt joins), descending only through Unwrap() []error.
func eachLeaf(err error, f func(error)) {
	if m, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range m.Unwrap() {
			eachLeaf(e, f)
		}
		return
	}
	f(err)
}
