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
	dst = append(dst, `{"type":`...)
	dst = appendJSONString(dst, u.Type)
	dst = append(dst, `,"channel":`...)
	dst = appendJSONString(dst, u.Channel)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendUint(dst, u.Seq, 10)
	dst = append(dst, `,"prev":`...)
	dst = strconv.AppendUint(dst, u.Prev, 10)
	dst = append(dst, `,"n":`...)
	dst = strconv.AppendUint(dst, uint64(u.N), 10)
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
	dst = append(dst, `{"symbol":`...)
	dst = appendJSONString(dst, t.Symbol)
	dst = append(dst, `,"bid":`...)
	dst = appendJSONString(dst, t.Bid)
	dst = append(dst, `,"bid_size":`...)
	dst = appendJSONString(dst, t.BidSize)
	dst = append(dst, `,"ask":`...)
	dst = appendJSONString(dst, t.Ask)
	dst = append(dst, `,"ask_size":`...)
	dst = appendJSONString(dst, t.AskSize)
	dst = append(dst, `,"last":`...)
	dst = appendJSONString(dst, t.Last)
	dst = append(dst, `,"volume":`...)
	dst = appendJSONString(dst, t.Volume)
	dst = append(dst, `,"ts":`...)
	dst = strconv.AppendInt(dst, t.TS, 10)
	return append(dst, '}')
}

func appendTradeJSON(dst []byte, t *proto.Trade) []byte {
	dst = append(dst, `{"symbol":`...)
	dst = appendJSONString(dst, t.Symbol)
	dst = append(dst, `,"id":`...)
	dst = strconv.AppendInt(dst, t.ID, 10)
	dst = append(dst, `,"price":`...)
	dst = appendJSONString(dst, t.Price)
	dst = append(dst, `,"size":`...)
	dst = appendJSONString(dst, t.Size)
	dst = append(dst, `,"side":`...)
	dst = appendJSONString(dst, t.Side)
	dst = append(dst, `,"ts":`...)
	dst = strconv.AppendInt(dst, t.TS, 10)
	return append(dst, '}')
}

func appendBookJSON(dst []byte, b *proto.Book) []byte {
	dst = append(dst, '{')
	if b.Symbol != "" { // omitempty
		dst = append(dst, `"symbol":`...)
		dst = appendJSONString(dst, b.Symbol)
		dst = append(dst, ',')
	}
	dst = append(dst, `"bids":`...)
	dst = appendLevelsJSON(dst, b.Bids)
	dst = append(dst, `,"asks":`...)
	dst = appendLevelsJSON(dst, b.Asks)
	dst = append(dst, `,"checksum":`...)
	dst = strconv.AppendUint(dst, uint64(b.Checksum), 10)
	dst = append(dst, `,"ts":`...)
	dst = strconv.AppendInt(dst, b.TS, 10)
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
		dst = append(dst, '[')
		dst = appendJSONString(dst, l[0])
		dst = append(dst, ',')
		dst = appendJSONString(dst, l[1])
		dst = append(dst, ']')
	}
	return append(dst, ']')
}

func appendCandleJSON(dst []byte, c *proto.Candle) []byte {
	dst = append(dst, `{"symbol":`...)
	dst = appendJSONString(dst, c.Symbol)
	dst = append(dst, `,"interval":`...)
	dst = appendJSONString(dst, c.Interval)
	dst = append(dst, `,"start":`...)
	dst = strconv.AppendInt(dst, c.Start, 10)
	dst = append(dst, `,"open":`...)
	dst = appendJSONString(dst, c.Open)
	dst = append(dst, `,"high":`...)
	dst = appendJSONString(dst, c.High)
	dst = append(dst, `,"low":`...)
	dst = appendJSONString(dst, c.Low)
	dst = append(dst, `,"close":`...)
	dst = appendJSONString(dst, c.Close)
	dst = append(dst, `,"volume":`...)
	dst = appendJSONString(dst, c.Volume)
	dst = append(dst, `,"trades":`...)
	dst = strconv.AppendInt(dst, c.Trades, 10)
	dst = append(dst, `,"closed":`...)
	dst = strconv.AppendBool(dst, c.Closed)
	dst = append(dst, `,"ts":`...)
	dst = strconv.AppendInt(dst, c.TS, 10)
	return append(dst, '}')
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
