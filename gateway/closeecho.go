package gateway

import (
	"encoding/binary"
	"net"

	"github.com/lxzan/gws"

	"github.com/tickgate/tickgate/proto"
)

// echoReasonConn is the socket as gws sees it. When a client closes, gws
// answers on its own, echoing the status code without any reason text (an
// application code 3000-4999 as sent, an empty close frame when the client
// sent no code), and no hook of gws v1.9.1 comes between. The contract
// wants 1000 for a close the client asked for, and a reason on every close,
// so Write rewrites that answer: a server close frame whose body is at most
// the two-byte code can only be it, because every close tickgate sends
// itself carries a reason, and gws's own protocol-error closes do too.
// Everything else passes through untouched; the check costs one length
// comparison per write.
type echoReasonConn struct {
	net.Conn
}

// maxBareClose is the longest bare close frame: header and a two-byte code.
const maxBareClose = 4

func (c echoReasonConn) Write(b []byte) (int, error) {
	if len(b) > maxBareClose || !isBareClose(b) {
		if len(b) <= maxInflateClose && isInflateClose(b) {
			return c.rewriteInflateClose(b)
		}
		return c.Conn.Write(b)
	}
	code := uint16(proto.CloseNormal) // an empty close is answered with 1000
	if len(b) == maxBareClose {
		code = binary.BigEndian.Uint16(b[2:])
	}
	if code >= 3000 && code <= 4999 {
		// An application code the client chose: echoing 4001 or 4008
		// would say what the contract gives them for, not what happened.
		code = uint16(proto.CloseNormal)
	}
	if _, err := c.Conn.Write(closeFrame(code, echoReason(code))); err != nil {
		return 0, err
	}
	return len(b), nil
}

// isBareClose reports whether b is one whole server close frame with no
// reason text: the header 0x88 and a length of 0 or 2 that matches b.
func isBareClose(b []byte) bool {
	return len(b) >= 2 && b[0] == 0x80|byte(gws.OpcodeCloseConnection) &&
		(b[1] == 0 || b[1] == 2) && int(b[1]) == len(b)-2
}

// echoReason is the reason text for the answer to a client's close.
func echoReason(code uint16) string {
	switch code {
	case 1002:
		return "protocol error: bad close frame"
	case 1007:
		return "close reason is not UTF-8"
	default:
		return "closed by the client"
	}
}

// closeFrame is a server close frame with code and reason.
func closeFrame(code uint16, reason string) []byte {
	body := make([]byte, 0, 2+len(reason))
	body = binary.BigEndian.AppendUint16(body, code)
	return frameOf(gws.OpcodeCloseConnection, append(body, reason...))
}

// gws closes a connection whose compressed message it cannot inflate
// (deflate.go) with 1011, which the contract keeps for nothing, and as
// an internal error: the message inflating past MaxMessageBytes (the
// reason tooLargeReason) or corrupt compressed data. The node itself
// never sends 1011, and gws sends it on an upgraded connection for
// nothing else, so Write makes such a close what the same fault gets
// uncompressed: 1009 for a message over the limit, 1007 otherwise.

// tooLargeReason is gws's reason text for a message over the limit, the
// same for a frame too long as for a message inflating too far.
const tooLargeReason = "gws: message too large"

// maxInflateClose is the longest close frame gws sends (a 7-bit length).
const maxInflateClose = 2 + 125

// isInflateClose reports whether b is one whole server close frame with
// code 1011.
func isInflateClose(b []byte) bool {
	return len(b) >= 4 && b[0] == 0x80|byte(gws.OpcodeCloseConnection) &&
		int(b[1]) == len(b)-2 && binary.BigEndian.Uint16(b[2:]) == 1011
}

func (c echoReasonConn) rewriteInflateClose(b []byte) (int, error) {
	f := closeFrame(1007, "invalid compressed data") // as for a text frame that is not UTF-8
	if string(b[4:]) == tooLargeReason {
		f = closeFrame(uint16(proto.CloseTooBig), tooLargeReason)
	}
	if _, err := c.Conn.Write(f); err != nil {
		return 0, err
	}
	return len(b), nil
}
