package auth

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Defaults and bounds of Config.
const (
	// DefaultLeeway is the clock-skew allowance used when Config.Leeway is 0.
	DefaultLeeway = 5 * time.Second
	// MaxLeeway bounds Config.Leeway: a larger allowance would make nbf
	// meaningless for short-lived tokens.
	MaxLeeway = 5 * time.Minute
)

// DefaultAlgorithms is the allow-list used when Config.Algorithms is empty.
func DefaultAlgorithms() []string { return []string{"HS256", "RS256", "ES256", "EdDSA"} }

// Config configures a Verifier.
type Config struct {
	// Algorithms is the allow-list of JWS "alg" values. Zero: HS256, RS256,
	// ES256, EdDSA. Every entry must be one of SupportedAlgorithms; "none"
	// is always refused. A token whose alg is not listed is invalid.
	Algorithms []string
	// Audience, when set, must be one of the token's "aud" values (a
	// token without aud is then invalid). Zero: aud is not checked.
	Audience string
	// Issuer, when set, must equal the token's "iss". Zero: iss is not
	// checked.
	Issuer string
	// Leeway is the clock-skew allowance for nbf and iat (exp gets none:
	// see Verifier.Verify). Zero: DefaultLeeway (5 s); negative: no
	// leeway at all. At most MaxLeeway.
	Leeway time.Duration
	// Now is the clock. Zero: time.Now.
	Now func() time.Time
}

// withDefaults returns a copy of c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if len(c.Algorithms) == 0 {
		c.Algorithms = DefaultAlgorithms()
	} else {
		c.Algorithms = slices.Clone(c.Algorithms)
	}
	switch {
	case c.Leeway == 0:
		c.Leeway = DefaultLeeway
	case c.Leeway < 0:
		c.Leeway = 0
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate reports whether c, after defaults, can build a Verifier.
func (c Config) Validate() error {
	c = c.withDefaults()
	for _, a := range c.Algorithms {
		if strings.EqualFold(a, "none") {
			return fmt.Errorf("%w: algorithm \"none\" is never allowed", ErrBadConfig)
		}
		if _, ok := lookupAlg(a); !ok {
			return fmt.Errorf("%w: algorithm %q is not supported (choose from %s)",
				ErrBadConfig, a, strings.Join(SupportedAlgorithms(), ", "))
		}
	}
	if c.Leeway > MaxLeeway {
		return fmt.Errorf("%w: leeway %v is more than %v", ErrBadConfig, c.Leeway, MaxLeeway)
	}
	return nil
}
