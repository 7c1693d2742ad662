package auth

import (
	"net/http"
	"strings"

	"github.com/tickgate/tickgate/proto"
)

// MaxTokenBytes is the longest token accepted from any source; a longer one
// is refused with ErrInvalidToken before any parsing.
const MaxTokenBytes = 8 << 10

// QueryParam is the query parameter that may carry the token when allowed.
const QueryParam = "access_token"

// Extract finds the token of a WebSocket handshake request; the first found
// wins:
//
//  1. "Authorization: Bearer <jwt>" (scheme case-insensitive);
//  2. a subprotocol entry "bearer.<jwt>" in any Sec-WebSocket-Protocol
//     header line (comma separated, spaces trimmed);
//  3. the query parameter access_token, only if allowQuery.
//
// It returns ErrMissingToken when there is none, and ErrInvalidToken for an
// empty bearer entry or a token longer than MaxTokenBytes.
func Extract(r *http.Request, allowQuery bool) (string, error) {
	for _, v := range r.Header.Values("Authorization") {
		v = strings.TrimSpace(v)
		scheme, rest := v, ""
		if i := strings.IndexAny(v, " \t"); i >= 0 {
			scheme, rest = v[:i], v[i+1:]
		}
		if strings.EqualFold(scheme, "Bearer") {
			return checkToken(strings.TrimSpace(rest), "authorization header")
		}
	}
	for _, line := range r.Header.Values("Sec-WebSocket-Protocol") {
		for rest := line; rest != ""; {
			var entry string
			entry, rest, _ = strings.Cut(rest, ",")
			entry = strings.TrimSpace(entry)
			if tok, ok := strings.CutPrefix(entry, proto.BearerPrefix); ok {
				return checkToken(tok, "subprotocol")
			}
		}
	}
	if allowQuery && r.URL != nil {
		if q := r.URL.Query(); q.Has(QueryParam) {
			return checkToken(q.Get(QueryParam), "query parameter")
		}
	}
	return "", ErrMissingToken
}

// checkToken applies the checks every source shares; where names the source
// for the error reason.
func checkToken(tok, where string) (string, error) {
	switch {
	case tok == "":
		return "", invalid("empty bearer token in " + where)
	case len(tok) > MaxTokenBytes:
		return "", invalid("token in " + where + " exceeds 8 KiB")
	}
	return tok, nil
}
