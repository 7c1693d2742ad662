package proto

import (
	"errors"
	"hash/crc32"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseChannel(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Channel
		ok   bool
	}{
		{"ticker", "ticker.BTC-USD", Channel{Kind: KindTicker, Symbol: "BTC-USD"}, true},
		{"book", "book.ETH-USD", Channel{Kind: KindBook, Symbol: "ETH-USD"}, true},
		{"trade underscore digits", "trade.sol_usd2", Channel{Kind: KindTrade, Symbol: "sol_usd2"}, true},
		{"32 char symbol", "ticker." + strings.Repeat("A", 32), Channel{Kind: KindTicker, Symbol: strings.Repeat("A", 32)}, true},
		{"33 char symbol", "ticker." + strings.Repeat("A", 33), Channel{}, false},
		{"unknown kind", "candles.BTC-USD", Channel{}, false},
		{"kind case", "Ticker.BTC-USD", Channel{}, false},
		{"no dot", "tickerBTC", Channel{}, false},
		{"empty symbol", "ticker.", Channel{}, false},
		{"empty", "", Channel{}, false},
		{"extra token", "ticker.BTC.USD", Channel{}, false},
		{"wildcard", "ticker.*", Channel{}, false},
		{"slash", "ticker.BTC/USD", Channel{}, false},
		{"space", "ticker.BTC USD", Channel{}, false},
		{"unicode", "ticker.BTC€", Channel{}, false},
		{"candle", "candle.1m.BTC-USD", Channel{Kind: KindCandle, Param: "1m", Symbol: "BTC-USD"}, true},
		{"candle 1d", "candle.1d.ETH-USD", Channel{Kind: KindCandle, Param: "1d", Symbol: "ETH-USD"}, true},
		{"candle unknown interval", "candle.2m.BTC-USD", Channel{}, false},
		{"candle interval case", "candle.1M.BTC-USD", Channel{}, false},
		{"candle without interval", "candle.BTC-USD", Channel{}, false},
		{"candle empty symbol", "candle.1m.", Channel{}, false},
		{"candle extra token", "candle.1m.BTC.USD", Channel{}, false},
		{"ticker with an interval", "ticker.1m.BTC-USD", Channel{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseChannel(tt.in)
			if tt.ok != (err == nil) {
				t.Fatalf("ParseChannel(%q) err = %v, want ok=%v", tt.in, err, tt.ok)
			}
			if err != nil {
				if !errors.Is(err, ErrBadChannel) {
					t.Fatalf("error %v does not wrap ErrBadChannel", err)
				}
				if !utf8.ValidString(err.Error()) {
					t.Fatalf("error text is not UTF-8: %q", err)
				}
				return
			}
			if got != tt.want || got.String() != tt.in {
				t.Fatalf("got %+v (%s), want %+v", got, got, tt.want)
			}
		})
	}
}

func TestSubjectRoundTrip(t *testing.T) {
	ch := Channel{Kind: KindBook, Symbol: "BTC-USD"}
	subj := ch.Subject("md")
	if subj != "md.book.BTC-USD" {
		t.Fatalf("subject %q", subj)
	}
	back, err := ChannelFromSubject("md", subj)
	if err != nil || back != ch {
		t.Fatalf("back %v %v", back, err)
	}
	if _, err := ChannelFromSubject("mdx", subj); err == nil {
		t.Fatal("wrong prefix accepted")
	}
}

func TestBookChecksum(t *testing.T) {
	bids := []Level{{"64000.10", "1.5"}, {"64000.00", "2"}}
	asks := []Level{{"64000.20", "0.7"}}
	want := crc32.ChecksumIEEE([]byte("64000.10:1.5|64000.00:2|64000.20:0.7|"))
	if got := BookChecksum(bids, asks); got != want {
		t.Fatalf("checksum %d, want %d", got, want)
	}
	// only the top 10 levels per side count
	var many []Level
	var sb strings.Builder
	for i := range 15 {
		l := Level{strings.Repeat("9", 30) + "." + string(rune('a'+i)), strings.Repeat("1", 30)}
		many = append(many, l)
		if i < 10 {
			sb.WriteString(l[0] + ":" + l[1] + "|")
		}
	}
	if got, want := BookChecksum(many, nil), crc32.ChecksumIEEE([]byte(sb.String())); got != want {
		t.Fatalf("long levels: %d, want %d", got, want)
	}
	var buf []byte
	var sum uint32
	if allocs := testing.AllocsPerRun(100, func() { sum, buf = BookChecksumBuf(buf, bids, asks) }); allocs != 0 || sum != want {
		t.Fatalf("BookChecksumBuf allocates %v (sum %d, want %d)", allocs, sum, want)
	}
}

func BenchmarkBookChecksumBuf(b *testing.B) {
	var bids, asks []Level
	for range 25 {
		bids = append(bids, Level{"64000.10", "1.523"})
		asks = append(asks, Level{"64001.10", "0.723"})
	}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		_, buf = BookChecksumBuf(buf, bids, asks)
	}
}

func TestDecimal(t *testing.T) {
	valid := map[string]bool{
		"0": true, "64000.10": true, "1.5": true, "000.000": true,
		"": false, ".5": false, "1.": false, "-1": false, "1e3": false, "1.2.3": false, " 1": false,
		strings.Repeat("1", MaxDecimalLen+1): false,
	}
	for s, want := range valid {
		if ValidDecimal(s) != want {
			t.Errorf("ValidDecimal(%q) = %v", s, !want)
		}
	}
	cmp := []struct {
		a, b string
		want int
	}{
		{"64000.1", "64000.10", 0},
		{"64000.10", "64000.2", -1},
		{"100", "99.999", 1},
		{"0099", "99", 0},
		{"0.01", "0.001", 1},
		{"1", "1.0000001", -1},
	}
	for _, c := range cmp {
		if got := CompareDecimal(c.a, c.b); got != c.want {
			t.Errorf("CompareDecimal(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
		if got := CompareDecimal(c.b, c.a); got != -c.want {
			t.Errorf("CompareDecimal(%q, %q) = %d, want %d", c.b, c.a, got, -c.want)
		}
	}
	if !IsZeroDecimal("0.000") || IsZeroDecimal("0.001") {
		t.Fatal("IsZeroDecimal")
	}
}

func TestDisconnectReasonStaysUTF8(t *testing.T) {
	d := Disconnect{Code: CloseSlowConsumer, Reason: strings.Repeat("é", 100)}
	b := d.ReasonBytes()
	if len(b) > 123 || !utf8.Valid(b) {
		t.Fatalf("reason %d bytes, valid %v", len(b), utf8.Valid(b))
	}
}

func TestHandshakeStatus(t *testing.T) {
	want := map[HandshakeCode]int{
		HandshakeMissingToken: 401, HandshakeInvalidToken: 401, HandshakeTokenExpired: 401,
		HandshakeOriginNotAllowed: 403, HandshakeBadSubprotocol: 400,
		HandshakeTooManyConnections: 429, HandshakeDraining: 503, HandshakeTokenRevoked: 401,
	}
	for _, c := range HandshakeCodes() {
		if c.HTTPStatus() != want[c] {
			t.Errorf("%s: %d, want %d", c, c.HTTPStatus(), want[c])
		}
	}
}
