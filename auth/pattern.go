package auth

import (
	"fmt"
	"strings"
)

// MaxPatternBytes is the longest channel pattern accepted.
const MaxPatternBytes = 128

// Pattern is a compiled channel pattern with NATS wildcards over
// '.'-separated tokens: "*" matches exactly one token, ">" (only as the last
// token) matches one or more remaining tokens. Literal tokens are made of
// [A-Za-z0-9_-], the characters channel kinds and symbols use. Examples:
// "ticker.*", "book.BTC-USD", ">", "*.BTC-USD", "ticker.>".
//
// The zero Pattern matches nothing. A Pattern is immutable and safe to share.
type Pattern struct {
	s string // validated source text; "" only for the zero Pattern
}

// ParsePattern compiles s. It returns ErrBadPattern for an empty pattern or
// empty token, ">" anywhere but last, partial wildcards like "tick*",
// characters outside [A-Za-z0-9_-] in a literal token, or more than
// MaxPatternBytes bytes.
func ParsePattern(s string) (Pattern, error) {
	if s == "" {
		return Pattern{}, fmt.Errorf("%w: empty", ErrBadPattern)
	}
	if len(s) > MaxPatternBytes {
		return Pattern{}, fmt.Errorf("%w: longer than %d bytes", ErrBadPattern, MaxPatternBytes)
	}
	for i, rest := 0, s; ; i++ {
		tok, after, more := strings.Cut(rest, ".")
		switch {
		case tok == "":
			return Pattern{}, fmt.Errorf("%w: %q has an empty token", ErrBadPattern, s)
		case tok == ">":
			if more {
				return Pattern{}, fmt.Errorf("%w: %q: '>' must be the last token", ErrBadPattern, s)
			}
		case tok == "*":
		default:
			if !literalToken(tok) {
				return Pattern{}, fmt.Errorf("%w: %q: token %d must be '*', '>' or [A-Za-z0-9_-]+", ErrBadPattern, s, i+1)
			}
		}
		if !more {
			break
		}
		rest = after
	}
	return Pattern{s: s}, nil
}

// MustParsePattern is ParsePattern for constants; it panics on error.
func MustParsePattern(s string) Pattern {
	p, err := ParsePattern(s)
	if err != nil {
		panic(err)
	}
	return p
}

// literalToken reports whether tok is a non-empty run of [A-Za-z0-9_-].
func literalToken(tok string) bool {
	if tok == "" {
		return false
	}
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// Match reports whether channel (for example "ticker.BTC-USD") matches the
// pattern. A channel with an empty token never matches. It does not allocate.
func (p Pattern) Match(channel string) bool {
	if p.s == "" {
		return false
	}
	pat, ch := p.s, channel
	for {
		ptok, prest, pmore := strings.Cut(pat, ".")
		if ptok == ">" {
			return nonEmptyTokens(ch)
		}
		ctok, crest, cmore := strings.Cut(ch, ".")
		if ctok == "" || (ptok != "*" && ptok != ctok) {
			return false
		}
		if !pmore || !cmore {
			return !pmore && !cmore
		}
		pat, ch = prest, crest
	}
}

// nonEmptyTokens reports whether s is one or more non-empty '.'-separated
// tokens.
func nonEmptyTokens(s string) bool {
	return s != "" && s[0] != '.' && s[len(s)-1] != '.' && !strings.Contains(s, "..")
}

// String returns the pattern's source text.
func (p Pattern) String() string { return p.s }
