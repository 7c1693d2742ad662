package codec

import (
	"strconv"
	"unicode/utf8"

	"github.com/tickgate/tickgate/proto"
)

// The JSON encoding of an update of a market kind, written by hand.
//
// An update frame is encoded once per feed message and codec and shared
// by every subscriber, but encoding/json's reflection made it about 3% of
// the node's CPU in a bursty feed to 100 connections (docs/benchmarks.md,
// *The JSON update frame, written by hand*). appendUpdateJSON writes the
// same bytes for an update whose data is a ticker, trade, book or candle,
// and declines anything else, which Append encodes with encoding/json as
// before. TestUpdateJSONMatchesEncodingJSON holds the two to the same
// output, field for field and escape for escape: a field added to one of
// these types and not here fails it.

// appendUpdateJSON appends u as encoding/json (with HTML escaping off)
// writes it, and reports false, having appended nothing, when u's data is
// not one of the types it knows.
func appendUpdateJSON(dst []byte, u *proto.Update) ([]byte, bool) {
	start := len(dst)
	dst = stringField(dst, `{"type":`, u.Type)
	dst = stringField(dst, `,"channel":`, u.Channel)
	dst = strconv.AppendUint(append(dst, `,"seq":`...), u.Seq, 10)
	dst = strconv.AppendUint(append(dst, `,"prev":`...), u.Prev, 10)
	dst = intField(dst, `,"n":`, int64(u.N))
	dst = append(dst, `,"data":`...)
	switch d := u.Data.(type) {
	case *proto.Ticker:
		if d == nil {
			return dst[:start], false
		}
		dst = appendTickerJSON(dst, d)
	case *proto.Trade:
		if d == nil {
			return dst[:start], false
		}
		dst = appendTradeJSON(dst, d)
	case *proto.Book:
		if d == nil {
			return dst[:start], false
		}
		dst = appendBookJSON(dst, d)
	case *proto.Candle:
		if d == nil {
			return dst[:start], false
		}
		dst = appendCandleJSON(dst, d)
	default:
		return dst[:start], false
	}
	return append(dst, '}'), true
}

func appendTickerJSON(dst []byte, t *proto.Ticker) []byte {
	dst = stringField(dst, `{"symbol":`, t.Symbol)
	dst = stringField(dst, `,"bid":`, t.Bid)
	dst = stringField(dst, `,"bid_size":`, t.BidSize)
	dst = stringField(dst, `,"ask":`, t.Ask)
	dst = stringField(dst, `,"ask_size":`, t.AskSize)
	dst = stringField(dst, `,"last":`, t.Last)
	dst = stringField(dst, `,"volume":`, t.Volume)
	dst = intField(dst, `,"ts":`, t.TS)
	return append(dst, '}')
}

func appendTradeJSON(dst []byte, t *proto.Trade) []byte {
	dst = stringField(dst, `{"symbol":`, t.Symbol)
	dst = intField(dst, `,"id":`, t.ID)
	dst = stringField(dst, `,"price":`, t.Price)
	dst = stringField(dst, `,"size":`, t.Size)
	dst = stringField(dst, `,"side":`, t.Side)
	dst = intField(dst, `,"ts":`, t.TS)
	return append(dst, '}')
}

func appendBookJSON(dst []byte, b *proto.Book) []byte {
	dst = append(dst, '{')
	if b.Symbol != "" { // omitempty
		dst = append(stringField(dst, `"symbol":`, b.Symbol), ',')
	}
	dst = appendLevelsJSON(append(dst, `"bids":`...), b.Bids)
	dst = appendLevelsJSON(append(dst, `,"asks":`...), b.Asks)
	dst = intField(dst, `,"checksum":`, int64(b.Checksum))
	dst = intField(dst, `,"ts":`, b.TS)
	return append(dst, '}')
}

func appendLevelsJSON(dst []byte, levels []proto.Level) []byte {
	if levels == nil {
		return append(dst, "null"...)
	}
	dst = append(dst, '[')
	for i, l := range levels {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = stringField(dst, "[", l[0])
		dst = stringField(dst, ",", l[1])
		dst = append(dst, ']')
	}
	return append(dst, ']')
}

func appendCandleJSON(dst []byte, c *proto.Candle) []byte {
	dst = stringField(dst, `{"symbol":`, c.Symbol)
	dst = stringField(dst, `,"interval":`, c.Interval)
	dst = intField(dst, `,"start":`, c.Start)
	dst = stringField(dst, `,"open":`, c.Open)
	dst = stringField(dst, `,"high":`, c.High)
	dst = stringField(dst, `,"low":`, c.Low)
	dst = stringField(dst, `,"close":`, c.Close)
	dst = stringField(dst, `,"volume":`, c.Volume)
	dst = intField(dst, `,"trades":`, c.Trades)
	dst = strconv.AppendBool(append(dst, `,"closed":`...), c.Closed)
	dst = intField(dst, `,"ts":`, c.TS)
	return append(dst, '}')
}

// stringField appends key (the separator, the name and its colon) and v
// as a JSON string.
func stringField(dst []byte, key, v string) []byte {
	return appendJSONString(append(dst, key...), v)
}

// intField appends key and v.
func intField(dst []byte, key string, v int64) []byte {
	return strconv.AppendInt(append(dst, key...), v, 10)
}

const lowerHex = "0123456789abcdef"

// appendJSONString appends s as a JSON string the way encoding/json does
// with HTML escaping off: quote and backslash escaped, control characters
// as \b, \f, \n, \r, \t or \u00xx, invalid UTF-8 as \ufffd, and U+2028
// and U+2029 (which JavaScript source cannot hold) escaped.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', lowerHex[b>>4], lowerHex[b&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', lowerHex[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
