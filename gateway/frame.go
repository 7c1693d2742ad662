package gateway

import (
	"encoding/binary"

	"github.com/lxzan/gws"
)

// A frame here is one complete server-to-client WebSocket frame, header
// and payload in one slice, built once and written as is: the bytes of an
// event are shared by every connection that gets them unchanged, and the
// writer batches frames into one write without touching them. Server
// frames are unmasked and tickgate does not negotiate compression, so the
// header is the 2, 4 or 10 bytes of RFC 6455 §5.2. gws frames messages
// itself only one write at a time; batching pre-framed bytes is the reason
// this file exists.

// maxFrameHeader is the longest server frame header.
const maxFrameHeader = 10

// appendFrameHeader appends the header of a final, unmasked frame.
func appendFrameHeader(dst []byte, op gws.Opcode, n int) []byte {
	dst = append(dst, 0x80|byte(op))
	switch {
	case n < 126:
		return append(dst, byte(n))
	case n <= 0xffff:
		return append(dst, 126, byte(n>>8), byte(n))
	}
	dst = append(dst, 127)
	return binary.BigEndian.AppendUint64(dst, uint64(n))
}

// frameOf returns payload framed as one final frame, in a new slice.
func frameOf(op gws.Opcode, payload []byte) []byte {
	b := make([]byte, 0, maxFrameHeader+len(payload))
	b = appendFrameHeader(b, op, len(payload))
	return append(b, payload...)
}
