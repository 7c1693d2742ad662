package proto

import "strings"

// MaxDecimalLen bounds a price or size string.
const MaxDecimalLen = 40

// ValidDecimal reports whether s is a non-negative decimal string as prices
// and sizes travel: digits, optionally one '.' followed by digits, at most
// MaxDecimalLen bytes ("64000.10", "0", "1.5"; not "", ".5", "1.", "-1", "1e3").
func ValidDecimal(s string) bool {
	if len(s) == 0 || len(s) > MaxDecimalLen {
		return false
	}
	dot := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
		case c == '.' && !dot && i > 0 && i < len(s)-1:
			dot = true
		default:
			return false
		}
	}
	return true
}

// IsZeroDecimal reports whether a valid decimal string is numerically zero
// ("0", "0.0", "000.000"); "" is not.
func IsZeroDecimal(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] != '0' && s[i] != '.' {
			return false
		}
	}
	return true
}

// CompareDecimal compares two valid decimal strings numerically, returning
// -1, 0 or +1. "64000.1" and "64000.10" compare equal. It does not allocate.
func CompareDecimal(a, b string) int {
	ai, af, _ := strings.Cut(a, ".")
	bi, bf, _ := strings.Cut(b, ".")
	ai = strings.TrimLeft(ai, "0")
	bi = strings.TrimLeft(bi, "0")
	if len(ai) != len(bi) {
		if len(ai) < len(bi) {
			return -1
		}
		return 1
	}
	if c := strings.Compare(ai, bi); c != 0 {
		return c
	}
	af = strings.TrimRight(af, "0")
	bf = strings.TrimRight(bf, "0")
	n := min(len(af), len(bf))
	if c := strings.Compare(af[:n], bf[:n]); c != 0 {
		return c
	}
	switch {
	case len(af) < len(bf):
		return -1
	case len(af) > len(bf):
		return 1
	}
	return 0
}
