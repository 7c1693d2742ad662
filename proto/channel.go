package proto

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ErrBadChannel reports a channel name that is not <kind>.<symbol> (or
// <kind>.<param>.<symbol> for a kind with params) with a known kind, an
// allowed param and a symbol matching [A-Za-z0-9_-]{1,32}.
var ErrBadChannel = errors.New("proto: bad channel")

// MaxSymbolLen is the longest symbol a channel may name.
const MaxSymbolLen = 32

// Channel is a parsed channel name: <kind>.<symbol>, or
// <kind>.<param>.<symbol> for a kind whose KindSpec has Params. It is
// comparable and serves as a map key.
type Channel struct {
	Kind Kind
	// Param is the token between kind and symbol, one of the kind's
	// KindSpec.Params; empty for a kind without params.
	Param  string
	Symbol string
}

// String returns the channel's wire name, for example "ticker.BTC-USD".
func (c Channel) String() string {
	if c.Param != "" {
		return c.Kind.String() + "." + c.Param + "." + c.Symbol
	}
	return c.Kind.String() + "." + c.Symbol
}

// ParseChannel parses and validates a channel name.
func ParseChannel(s string) (Channel, error) {
	kind, rest, ok := strings.Cut(s, ".")
	if !ok {
		return Channel{}, fmt.Errorf("%w: %q is not <kind>.<symbol>", ErrBadChannel, truncate(s, 48))
	}
	k, err := ParseKind(kind)
	if err != nil {
		return Channel{}, err
	}
	ch := Channel{Kind: k, Symbol: rest}
	if params := kinds[k].Params; len(params) > 0 {
		param, sym, ok := strings.Cut(rest, ".")
		if !ok || !slices.Contains(params, param) {
			return Channel{}, fmt.Errorf("%w: %q is not %s.<%s>.<symbol>", ErrBadChannel, truncate(s, 48), kind, strings.Join(params, "|"))
		}
		ch.Param, ch.Symbol = params[slices.Index(params, param)], sym
	}
	if !ValidSymbol(ch.Symbol) {
		return Channel{}, fmt.Errorf("%w: symbol %q must match [A-Za-z0-9_-]{1,32}", ErrBadChannel, truncate(ch.Symbol, 48))
	}
	return ch, nil
}

// ValidSymbol reports whether s matches [A-Za-z0-9_-]{1,32}.
func ValidSymbol(s string) bool {
	if len(s) == 0 || len(s) > MaxSymbolLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// Subject returns the NATS subject a channel travels on under prefix:
// <prefix>.<channel>.
func (c Channel) Subject(prefix string) string {
	return prefix + "." + c.String()
}

// ChannelFromSubject is the inverse of Channel.Subject.
func ChannelFromSubject(prefix, subject string) (Channel, error) {
	rest, ok := strings.CutPrefix(subject, prefix+".")
	if !ok {
		return Channel{}, fmt.Errorf("%w: subject %q is not under %q", ErrBadChannel, truncate(subject, 64), prefix)
	}
	return ParseChannel(rest)
}

// truncate keeps error messages bounded when they quote client input.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
