package codec

import (
	"net/http"
	"strings"

	"github.com/tickgate/tickgate/proto"
)

// Offered returns the entries of every Sec-WebSocket-Protocol header line
// of h, in order: each line split at commas, spaces trimmed, empty entries
// dropped. It returns nil when there are none.
func Offered(h http.Header) []string {
	var out []string
	for _, line := range h.Values("Sec-WebSocket-Protocol") {
		for entry := range strings.SplitSeq(line, ",") {
			if entry = strings.TrimSpace(entry); entry != "" {
				out = append(out, entry)
			}
		}
	}
	return out
}

// Negotiate picks the codec of a handshake per docs/protocol.md §2.2 from the
// offered subprotocol entries (see Offered):
//
//   - no entries at all: JSON, and nothing to echo (echo false);
//   - otherwise the first entry, in the client's order, that is a codec's
//     subprotocol (BySubprotocol: tickgate.v1.json, tickgate.v1.msgpack),
//     to be echoed (echo true);
//     entries starting with "bearer." carry a token and are skipped;
//   - entries but none of these (a lone bearer.* included): ErrBadSubprotocol,
//     which the gateway answers with HTTP 400 bad_subprotocol.
//
// Subprotocol names compare case-sensitively, as RFC 6455 tokens do.
func Negotiate(offered []string) (c Codec, echo bool, err error) {
	if len(offered) == 0 {
		return JSON(), false, nil
	}
	for _, p := range offered {
		if strings.HasPrefix(p, proto.BearerPrefix) {
			continue
		}
		if c, ok := BySubprotocol(p); ok {
			return c, true, nil
		}
	}
	return nil, false, ErrBadSubprotocol
}
