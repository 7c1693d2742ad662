package proto

import (
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tickgate/tickgate/internal/memtest"
)

// symbolRE is the contract's symbol rule, as a regular expression to check
// ValidSymbol against.
var symbolRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// FuzzParseChannel: ParseChannel never panics, accepts exactly
// <ticker|book|trade>.<[A-Za-z0-9_-]{1,32}> and
// candle.<interval>.<[A-Za-z0-9_-]{1,32}>, and round-trips what it
// accepts (also through a NATS subject), and its errors wrap ErrBadChannel,
// stay short and valid UTF-8 whatever the input, with bounded allocation.
func FuzzParseChannel(f *testing.F) {
	for _, s := range []string{
		"ticker.BTC-USD", "book.ETH-USD", "trade.sol_usd2", "ticker." + strings.Repeat("A", 32),
		"ticker." + strings.Repeat("A", 33), "", ".", "..", "ticker.", ".BTC", "ticker.BTC.USD",
		"ticker.*", "ticker.>", ">", "*.*", "Ticker.BTC", "ticker .BTC", "ticker.BTC\x00", "ticker.BTC-USD\n",
		"ticker.BTС", "ticker.\xff\xfe", "\xff.BTC", "candles.BTC-USD", "candle.1m.BTC-USD", "candle.1M.BTC-USD",
		"candle.BTC-USD", "candle.1d.", "candle.4h.BTC.USD", strings.Repeat("ticker.", 1000),
		strings.Repeat("x", 1<<20), "ticker." + strings.Repeat("€", 40), strings.Repeat("€", 30) + ".A",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		before := memtest.HeapAllocated()
		ch, err := ParseChannel(s)
		if n := memtest.HeapAllocated() - before; n > 1<<20 {
			t.Fatalf("ParseChannel of %d bytes allocated %d bytes", len(s), n)
		}
		kind, sym, _ := strings.Cut(s, ".")
		k, kindErr := ParseKind(kind)
		if params := k.Spec().Params; kindErr == nil && len(params) > 0 {
			var param string
			param, sym, _ = strings.Cut(sym, ".")
			if !slices.Contains(params, param) {
				kindErr = ErrBadChannel
			}
		}
		want := kindErr == nil && symbolRE.MatchString(sym)
		if ValidSymbol(sym) != symbolRE.MatchString(sym) {
			t.Fatalf("ValidSymbol(%q) = %v, the rule says %v", sym, ValidSymbol(sym), !ValidSymbol(sym))
		}
		if err != nil {
			if want {
				t.Fatalf("ParseChannel(%q) refused a valid channel: %v", s, err)
			}
			if !errors.Is(err, ErrBadChannel) {
				t.Fatalf("error %v does not wrap ErrBadChannel", err)
			}
			// At most 48 bytes of input are quoted, each at most 4 bytes
			// once escaped by %q.
			if msg := err.Error(); len(msg) > 4*48+100 || !utf8.ValidString(msg) {
				t.Fatalf("error of %d bytes (valid UTF-8: %v) for a %d-byte input", len(msg), utf8.ValidString(msg), len(s))
			}
			if ch != (Channel{}) {
				t.Fatalf("channel %+v returned with an error", ch)
			}
			return
		}
		if !want {
			t.Fatalf("ParseChannel(%q) accepted %+v", s, ch)
		}
		if ch.String() != s {
			t.Fatalf("ParseChannel(%q).String() = %q", s, ch.String())
		}
		back, err := ChannelFromSubject("md", ch.Subject("md"))
		if err != nil || back != ch {
			t.Fatalf("subject round trip of %q: %+v, %v", s, back, err)
		}
	})
}
