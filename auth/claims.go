package auth

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"time"

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
// be exactly one JSON object, in order, with the key as decoded (escapes
// resolved: "\u0073ub" is "sub") and the raw value. A key that appears
// twice is errDuplicateKey; anything but one object is errNotObject; an
// error from f is returned as it is. Only the top level is looked at.
func objectMembers(data []byte, f func(key string, value json.RawMessage) error) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return errNotObject
	}
	var seen map[string]struct{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return errNotObject
		}
		key, ok := tok.(string)
		if !ok {
			return errNotObject
		}
		if _, dup := seen[key]; dup {
			return errDuplicateKey
		}
		if seen == nil {
			seen = make(map[string]struct{}, 8)
		}
		seen[key] = struct{}{}
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return errNotObject
		}
		if f != nil {
			if err := f(key, value); err != nil {
				return err
			}
		}
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return errNotObject
	}
	if _, err := dec.Token(); err != io.EOF {
		return errNotObject
	}
	return nil
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
	err := objectMembers(data, func(key string, v json.RawMessage) error {
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
func claimString(name string, v json.RawMessage) (string, error) {
	var s string
	if len(v) == 0 || v[0] != '"' || json.Unmarshal(v, &s) != nil {
		return "", &claimError{name + " is not a string"}
	}
	return s, nil
}

// audience decodes v, which must be a JSON string or an array of strings.
func audience(v json.RawMessage) (jwt.ClaimStrings, error) {
	if s, err := claimString("aud", v); err == nil {
		return jwt.ClaimStrings{s}, nil
	}
	if list, ok := stringArray(v); ok {
		return list, nil
	}
	return nil, &claimError{"aud is not a string or an array of strings"}
}

// stringArray decodes v, which must be a JSON array of strings; an empty
// array gives an empty, non-nil slice.
func stringArray(v json.RawMessage) ([]string, bool) {
	dec := json.NewDecoder(bytes.NewReader(v))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
		return nil, false
	}
	out := []string{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, false
		}
		s, ok := tok.(string)
		if !ok {
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}

// numericDate parses v as RFC 7519 NumericDate, read strictly: a JSON
// number (not a string holding one), an integer or a plain decimal
// fraction, without sign or exponent, from 0 up to the end of year 9999
// (see maxClaimTime). The fraction is kept exactly to the nanosecond,
// further digits cut off: no float64 rounds it. v is a JSON value already
// checked by the decoder, so a leading digit means a valid JSON number.
func numericDate(name string, v json.RawMessage) (*jwt.NumericDate, error) {
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
