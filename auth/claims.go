package auth

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

// The strict reading of a token's JSON. encoding/json, which golang-jwt
// uses, matches a struct field by any case of its name (with Unicode
// folding: "ſub" is "sub") and keeps the last of two keys, so a signed
// token carrying {"channels":["ticker.X"],"Channels":[">"]} was read as
// granting ">". golang-jwt's NumericDate also took a JSON string holding a
// number ("1796166062") and exponent notation through a float64. Here each
// claim the node reads is taken by its exact name, once, with its JSON type.

// readClaims are the claim names the node reads. A key that differs from
// one of them only in case (strings.EqualFold) is refused, whether or not
// the exact name is present too: another JWT library may read it as the
// claim. Other claims are ignored.
var readClaims = [...]string{"sub", "exp", "nbf", "iat", "aud", "iss", "channels"}

// Failures of objectMembers. Their callers turn them into fixed reasons.
var (
	errNotObject    = errors.New("auth: not one JSON object")
	errDuplicateKey = errors.New("auth: duplicate key")
)

// objectMembers calls f, when not nil, for each member of data, which must
// be exactly one JSON object, in order, with the key as encoding/json
// decodes it (escapes resolved: "\u0073ub" is "sub"; invalid UTF-8 read as
// U+FFFD) and the raw value. A key that appears twice is errDuplicateKey;
// anything but one valid JSON object is errNotObject; an error from f is
// returned as it is. Only the top level is looked at.
//
// json.Valid checks the whole text first, so the scan below walks a
// well-formed value and only has to find where each part ends; it is a
// fraction of the cost of json.Decoder.Token, which boxes every token.
func objectMembers(data []byte, f func(key string, value []byte) error) error {
	if !json.Valid(data) {
		return errNotObject
	}
	i := skipSpace(data, 0)
	if data[i] != '{' {
		return errNotObject
	}
	if i = skipSpace(data, i+1); data[i] == '}' {
		return nil
	}
	var seen map[string]struct{}
	for {
		end := stringEnd(data, i) // data[i] is the key's opening quote
		key := jsonString(data[i:end])
		if _, dup := seen[key]; dup {
			return errDuplicateKey
		}
		if seen == nil {
			seen = make(map[string]struct{}, 8)
		}
		seen[key] = struct{}{}
		i = skipSpace(data, skipSpace(data, end)+1) // past the ':'
		start := i
		i = valueEnd(data, i)
		if f != nil {
			if err := f(key, data[start:i]); err != nil {
				return err
			}
		}
		if i = skipSpace(data, i); data[i] == '}' {
			return nil
		}
		i = skipSpace(data, i+1) // past the ','
	}
}

// The scanning helpers below take valid JSON (objectMembers checked it)
// and an index at the start of the part they skip.

// skipSpace returns the index of the first non-whitespace byte at or
// after i, or len(data).
func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index just after the string that opens at i.
func stringEnd(data []byte, i int) int {
	for i++; data[i] != '"'; i++ {
		if data[i] == '\\' {
			i++
		}
	}
	return i + 1
}

// valueEnd returns the index just after the value that starts at i.
func valueEnd(data []byte, i int) int {
	switch data[i] {
	case '"':
		return stringEnd(data, i)
	case '{', '[':
		for depth := 0; ; {
			switch data[i] {
			case '"':
				i = stringEnd(data, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
			i++
		}
	}
	for ; i < len(data); i++ { // a number, true, false or null
		switch data[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i
		}
	}
	return i
}

// jsonString returns the string that s, a valid JSON string with its
// quotes, holds: as is when it is plain ASCII without escapes, else as
// encoding/json decodes it.
func jsonString(s []byte) string {
	plain := true
	for _, c := range s {
		if c == '\\' || c >= utf8.RuneSelf {
			plain = false
			break
		}
	}
	if plain {
		return string(s[1 : len(s)-1])
	}
	var out string
	_ = json.Unmarshal(s, &out) // s is valid: it cannot fail
	return out
}

// checkHeader refuses a JOSE header that is not one JSON object or that
// names a parameter twice: golang-jwt decodes the header into a map where
// the last "alg" or "kid" wins, and another library may take the first.
// The header is at most MaxTokenBytes (Verify caps the token before), so
// this second reading of it is cheap.
func checkHeader(token string) error {
	seg, _, ok := strings.Cut(token, ".")
	if !ok {
		return invalid("malformed token")
	}
	// The same decoding golang-jwt applies to the segment.
	header, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return invalid("malformed token")
	}
	switch err := objectMembers(header, nil); {
	case errors.Is(err, errDuplicateKey):
		return invalid("duplicate header parameter")
	case err != nil:
		return invalid("malformed token")
	}
	return nil
}

// UnmarshalJSON reads the claims strictly: exact, case-sensitive names,
// each at most once; a case-variant of a claim in readClaims is refused;
// sub and iss are JSON strings, aud a string or an array of strings,
// channels an array of strings, exp, nbf and iat NumericDates (see
// numericDate). A claim that is present must have its type: null has
// none. golang-jwt calls this before it checks the signature and wraps the
// error in jwt.ErrTokenMalformed; classify takes the reason back out.
func (c *tokenClaims) UnmarshalJSON(data []byte) error {
	*c = tokenClaims{}
	err := objectMembers(data, func(key string, v []byte) error {
		var err error
		switch key {
		case "sub":
			c.Subject, err = claimString("sub", v)
		case "iss":
			c.Issuer, err = claimString("iss", v)
		case "aud":
			c.Audience, err = audience(v)
		case "exp":
			c.ExpiresAt, err = numericDate("exp", v)
		case "nbf":
			c.NotBefore, err = numericDate("nbf", v)
		case "iat":
			c.IssuedAt, err = numericDate("iat", v)
		case "channels":
			var ok bool
			if c.Channels, ok = stringArray(v); !ok {
				err = &claimError{"channels is not an array of strings"}
			}
		default:
			for _, name := range readClaims {
				if strings.EqualFold(key, name) {
					return &claimError{"claim name differs in case from " + name}
				}
			}
		}
		return err
	})
	switch {
	case errors.Is(err, errDuplicateKey):
		return &claimError{"duplicate claim"}
	case errors.Is(err, errNotObject):
		return &claimError{"claims are not a JSON object"}
	}
	return err
}

// claimString decodes v, which must be a JSON string.
func claimString(name string, v []byte) (string, error) {
	if v[0] != '"' {
		return "", &claimError{name + " is not a string"}
	}
	return jsonString(v), nil
}

// audience decodes v, which must be a JSON string or an array of strings.
func audience(v []byte) (jwt.ClaimStrings, error) {
	if v[0] == '"' {
		return jwt.ClaimStrings{jsonString(v)}, nil
	}
	if list, ok := stringArray(v); ok {
		return list, nil
	}
	return nil, &claimError{"aud is not a string or an array of strings"}
}

// stringArray decodes v, which must be a JSON array of strings; an empty
// array gives an empty, non-nil slice.
func stringArray(v []byte) ([]string, bool) {
	if v[0] != '[' {
		return nil, false
	}
	out := []string{}
	i := skipSpace(v, 1)
	if v[i] == ']' {
		return out, true
	}
	for {
		if v[i] != '"' {
			return nil, false
		}
		end := stringEnd(v, i)
		out = append(out, jsonString(v[i:end]))
		if i = skipSpace(v, end); v[i] == ']' {
			return out, true
		}
		i = skipSpace(v, i+1) // past the ','
	}
}

// numericDate parses v as RFC 7519 NumericDate, read strictly: a JSON
// number (not a string holding one), an integer or a plain decimal
// fraction, without sign or exponent, from 0 up to the end of year 9999
// (see maxClaimTime). The fraction is kept exactly to the nanosecond,
// further digits cut off: no float64 rounds it. v is a value of a text
// objectMembers checked with json.Valid, so a leading digit means a valid
// JSON number: digits, maybe a fraction, maybe an exponent.
func numericDate(name string, v []byte) (*jwt.NumericDate, error) {
	switch {
	case len(v) > 0 && v[0] == '-':
		return nil, &claimError{name + " out of range"}
	case len(v) == 0 || v[0] < '0' || v[0] > '9':
		return nil, &claimError{name + " is not a number"}
	case bytes.ContainsAny(v, "eE"):
		return nil, &claimError{name + " is in exponent notation"}
	}
	intPart, frac, _ := bytes.Cut(v, []byte{'.'})
	var sec, nsec int64
	for _, d := range intPart {
		if d < '0' || d > '9' {
			return nil, &claimError{name + " is not a number"}
		}
		if sec = sec*10 + int64(d-'0'); sec >= maxClaimUnix {
			return nil, &claimError{name + " out of range"}
		}
	}
	scale := int64(time.Second)
	for _, d := range frac {
		if d < '0' || d > '9' {
			return nil, &claimError{name + " is not a number"}
		}
		scale /= 10 // 0 after nine digits: the rest is cut off
		nsec += int64(d-'0') * scale
	}
	return &jwt.NumericDate{Time: time.Unix(sec, nsec)}, nil
}
