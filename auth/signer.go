package auth

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Signer mints tokens, for `tickgate token` and the dev mode. It is safe for
// concurrent use.
type Signer struct {
	method jwt.SigningMethod // static after construction
	key    any               // static after construction
	kid    string            // static after construction; "" omits the header
}

// NewHMACSigner returns an HS256 signer. secret must be at least 32 bytes
// (it is copied); kid, when not "", goes into the token header.
func NewHMACSigner(secret []byte, kid string) (*Signer, error) {
	if len(secret) < MinHMACSecretBytes {
		return nil, fmt.Errorf("%w: HMAC secret is %d bytes, need at least %d", ErrBadKey, len(secret), MinHMACSecretBytes)
	}
	return &Signer{method: jwt.SigningMethodHS256, key: bytes.Clone(secret), kid: kid}, nil
}

// NewHMACSignerFile returns the HS256 signer of the secret in path, read
// as LoadHMACSecretFile reads it for verifying (trailing newlines trimmed,
// at least 32 bytes, the secret never in an error), so that a node and
// the tools that mint its tokens read one secret file alike.
func NewHMACSignerFile(path, kid string) (*Signer, error) {
	keys, err := LoadHMACSecretFile(path)
	if err != nil {
		return nil, err
	}
	return NewHMACSigner(keys[0].Material.([]byte), kid)
}

// TokenSpec describes a token to mint.
type TokenSpec struct {
	// Subject is the "sub" claim; required, at most 256 bytes.
	Subject string
	// Channels are the channel patterns of the "channels" claim; 1 to 1024
	// valid patterns.
	Channels []string
	// TTL sets "exp" to Now+TTL; required, positive.
	TTL time.Duration
	// Audience, when set, is the "aud" claim.
	Audience string
	// Issuer, when set, is the "iss" claim.
	Issuer string
	// Now is the issue time ("iat"). Zero: time.Now().
	Now time.Time
}

// outClaims is the claim set a Signer writes, in a stable field order.
type outClaims struct {
	Subject   string           `json:"sub"`
	Channels  []string         `json:"channels"`
	Audience  string           `json:"aud,omitempty"`
	Issuer    string           `json:"iss,omitempty"`
	IssuedAt  *jwt.NumericDate `json:"iat"`
	ExpiresAt *jwt.NumericDate `json:"exp"`
}

// GetExpirationTime and the rest implement jwt.Claims.
func (c outClaims) GetExpirationTime() (*jwt.NumericDate, error) { return c.ExpiresAt, nil }
func (c outClaims) GetIssuedAt() (*jwt.NumericDate, error)       { return c.IssuedAt, nil }
func (c outClaims) GetNotBefore() (*jwt.NumericDate, error)      { return nil, nil }
func (c outClaims) GetIssuer() (string, error)                   { return c.Issuer, nil }
func (c outClaims) GetSubject() (string, error)                  { return c.Subject, nil }
func (c outClaims) GetAudience() (jwt.ClaimStrings, error) {
	if c.Audience == "" {
		return nil, nil
	}
	return jwt.ClaimStrings{c.Audience}, nil
}

// Sign validates spec and returns a signed token with sub, channels, iat,
// exp, and aud/iss when given.
func (s *Signer) Sign(spec TokenSpec) (string, error) {
	switch {
	case spec.Subject == "":
		return "", errors.New("auth: sign: subject is required")
	case len(spec.Subject) > MaxSubjectBytes || !printable(spec.Subject):
		return "", fmt.Errorf("auth: sign: subject must be printable UTF-8 of at most %d bytes", MaxSubjectBytes)
	case len(spec.Channels) == 0:
		return "", errors.New("auth: sign: at least one channel pattern is required")
	case len(spec.Channels) > MaxChannels:
		return "", fmt.Errorf("auth: sign: %d channel patterns, at most %d", len(spec.Channels), MaxChannels)
	case spec.TTL <= 0:
		return "", errors.New("auth: sign: TTL must be positive")
	}
	for _, c := range spec.Channels {
		if _, err := ParsePattern(c); err != nil {
			return "", fmt.Errorf("auth: sign: %w", err)
		}
	}
	now := spec.Now
	if now.IsZero() {
		now = time.Now()
	}
	claims := outClaims{
		Subject:   spec.Subject,
		Channels:  spec.Channels,
		Audience:  spec.Audience,
		Issuer:    spec.Issuer,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(spec.TTL)),
	}
	t := jwt.NewWithClaims(s.method, claims)
	if s.kid != "" {
		t.Header["kid"] = s.kid
	}
	tok, err := t.SignedString(s.key)
	if err != nil {
		return "", fmt.Errorf("auth: sign: %w", err)
	}
	return tok, nil
}
