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
