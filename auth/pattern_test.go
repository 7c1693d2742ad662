package auth

import (
	"errors"
	"strings"
	"testing"
)

func TestPatternMatch(t *testing.T) {
	tests := []struct {
		pattern string
		channel string
		want    bool
	}{
		{"ticker.BTC-USD", "ticker.BTC-USD", true},
		{"ticker.BTC-USD", "ticker.ETH-USD", false},
		{"ticker.BTC-USD", "ticker.BTC-USDT", false},
		{"ticker.BTC-USD", "ticker.BTC", false},
		{"ticker.BTC-USD", "book.BTC-USD", false},
		{"ticker.BTC-USD", "ticker.BTC-USD.x", false},
		{"ticker.*", "ticker.BTC-USD", true},
		{"ticker.*", "ticker.ETH-USD", true},
		{"ticker.*", "book.BTC-USD", false},
		{"ticker.*", "ticker", false},
		{"ticker.*", "ticker.", false},
		{"ticker.*", "ticker.a.b", false},
		{"ticker.*", "tickers.BTC-USD", false},
		{"*.BTC-USD", "ticker.BTC-USD", true},
		{"*.BTC-USD", "trade.BTC-USD", true},
		{"*.BTC-USD", "trade.ETH-USD", false},
		{"*.BTC-USD", ".BTC-USD", false},
		{"*", "ticker", true},
		{"*", "ticker.BTC-USD", false},
		{"*", "", false},
		{"*.*", "ticker.BTC-USD", true},
		{"*.*", "ticker", false},
		{"*.*", "ticker.BTC-USD.x", false},
		{">", "ticker.BTC-USD", true},
		{">", "ticker", true},
		{">", "a.b.c.d", true},
		{">", "", false},
		{">", "ticker..x", false},
		{">", "ticker.", false},
		{">", ".ticker", false},
		{"ticker.>", "ticker.BTC-USD", true},
		{"ticker.>", "ticker.BTC-USD.x", true},
		{"ticker.>", "ticker", false},
		{"ticker.>", "ticker.", false},
		{"ticker.>", "book.BTC-USD", false},
		{"*.>", "ticker.BTC-USD", true},
		{"*.>", "ticker", false},
		{"book.BTC-USD", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.pattern+"~"+tt.channel, func(t *testing.T) {
			p, err := ParsePattern(tt.pattern)
			if err != nil {
				t.Fatalf("ParsePattern(%q): %v", tt.pattern, err)
			}
			if got := p.Match(tt.channel); got != tt.want {
				t.Fatalf("%q.Match(%q) = %v, want %v", tt.pattern, tt.channel, got, tt.want)
			}
			if p.String() != tt.pattern {
				t.Fatalf("String() = %q", p.String())
			}
		})
	}
}

func TestParsePatternErrors(t *testing.T) {
	tests := map[string]string{
		"empty":               "",
		"empty first token":   ".BTC-USD",
		"empty last token":    "ticker.",
		"empty middle token":  "ticker..BTC",
		"only a dot":          ".",
		"gt not last":         ">.BTC-USD",
		"gt in the middle":    "ticker.>.x",
		"partial star":        "tick*",
		"partial star in sym": "ticker.BTC*",
		"partial gt":          "ticker.BTC>",
		"star star":           "ticker.**",
		"space":               "ticker.BTC USD",
		"slash":               "ticker.BTC/USD",
		"non-ASCII":           "ticker.BTC€",
		"too long":            "ticker." + strings.Repeat("A", MaxPatternBytes),
		"NUL":                 "ticker.\x00",
		"leading space":       " ticker.*",
	}
	for name, s := range tests {
		t.Run(name, func(t *testing.T) {
			p, err := ParsePattern(s)
			if !errors.Is(err, ErrBadPattern) {
				t.Fatalf("ParsePattern(%q) = %v, %v; want ErrBadPattern", s, p, err)
			}
		})
	}
	if _, err := ParsePattern(strings.Repeat("A", MaxPatternBytes)); err != nil {
		t.Fatalf("pattern of exactly %d bytes: %v", MaxPatternBytes, err)
	}
}

func TestZeroPatternMatchesNothing(t *testing.T) {
	var p Pattern
	for _, ch := range []string{"", "ticker.BTC-USD", ">"} {
		if p.Match(ch) {
			t.Errorf("zero Pattern matched %q", ch)
		}
	}
}

func TestPatternMatchDoesNotAllocate(t *testing.T) {
	ps := []Pattern{
		MustParsePattern("ticker.BTC-USD"), MustParsePattern("ticker.*"),
		MustParsePattern(">"), MustParsePattern("*.*"), MustParsePattern("book.>"),
	}
	c := &Claims{Patterns: ps}
	allocs := testing.AllocsPerRun(1000, func() {
		for _, p := range ps {
			p.Match("ticker.BTC-USD")
			p.Match("book.ETH-USD.x")
		}
		c.Allows("trade.SOL-USD")
	})
	if allocs != 0 {
		t.Fatalf("Match allocates: %v allocs per run", allocs)
	}
}

func BenchmarkPatternMatch(b *testing.B) {
	cases := []struct{ name, pattern, channel string }{
		{"literal", "ticker.BTC-USD", "ticker.BTC-USD"},
		{"star", "ticker.*", "ticker.BTC-USD"},
		{"gt", ">", "ticker.BTC-USD"},
		{"miss", "book.*", "ticker.BTC-USD"},
	}
	for _, c := range cases {
		p := MustParsePattern(c.pattern)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p.Match(c.channel)
			}
		})
	}
}
