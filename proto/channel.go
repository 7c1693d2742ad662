package proto

import (
	"errors"
	"fmt"
	"strings"
)

// ErrBadChannel reports a channel name that is not <kind>.<symbol> with a
// known kind and a symbol matching [A-Za-z0-9_-]{1,32}.
var ErrBadChannel = errors.New("proto: bad channel")

// MaxSymbolLen is the longest symbol a channel may name.
const MaxSymbolLen = 32

// Kind is a channel kind; each has its own delivery semantics.
type Kind uint8

// The channel kinds. The zero Kind is invalid.
const (
	KindTicker Kind = iota + 1 // latest state: replaced when pending
	KindBook                   // L2 book: pending deltas merge level by level
	KindTrade                  // events: never dropped or merged
)

// NumKinds is how many kinds there are; a Kind indexes an array of
// NumKinds+1 entries.
const NumKinds = 3

// Kinds lists every valid kind, in wire order.
func Kinds() []Kind { return []Kind{KindTicker, KindBook, KindTrade} }

// String returns the kind's wire name ("ticker", "book", "trade").
func (k Kind) String() string {
	switch k {
	case KindTicker:
		return "ticker"
	case KindBook:
		return "book"
	case KindTrade:
		return "trade"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// HasSnapshot reports whether the kind carries state that a subscriber gets
// as a snapshot first (ticker, book) rather than a stream of events (trade).
func (k Kind) HasSnapshot() bool { return k == KindTicker || k == KindBook }

// ParseKind returns the kind named s.
func ParseKind(s string) (Kind, error) {
	switch s {
	case "ticker":
		return KindTicker, nil
	case "book":
		return KindBook, nil
	case "trade":
		return KindTrade, nil
	}
	return 0, fmt.Errorf("%w: unknown kind %q", ErrBadChannel, truncate(s, 16))
}

// Channel is a parsed channel name, <kind>.<symbol>. It is comparable and
// serves as a map key.
type Channel struct {
	Kind   Kind
	Symbol string
}

// String returns the channel's wire name, for example "ticker.BTC-USD".
func (c Channel) String() string { return c.Kind.String() + "." + c.Symbol }

// ParseChannel parses and validates a channel name.
func ParseChannel(s string) (Channel, error) {
	kind, sym, ok := strings.Cut(s, ".")
	if !ok {
		return Channel{}, fmt.Errorf("%w: %q is not <kind>.<symbol>", ErrBadChannel, truncate(s, 48))
	}
	k, err := ParseKind(kind)
	if err != nil {
		return Channel{}, err
	}
	if !ValidSymbol(sym) {
		return Channel{}, fmt.Errorf("%w: symbol %q must match [A-Za-z0-9_-]{1,32}", ErrBadChannel, truncate(sym, 48))
	}
	return Channel{Kind: k, Symbol: sym}, nil
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

// Subject returns the NATS subject a channel travels on under prefix.
func (c Channel) Subject(prefix string) string {
	return prefix + "." + c.Kind.String() + "." + c.Symbol
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
