package gateway

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"
)

// recordConn is a net.Conn that records what is written to it.
type recordConn struct {
	net.Conn
	buf bytes.Buffer
}

func (c *recordConn) Write(b []byte) (int, error) { return c.buf.Write(b) }

func TestEchoReasonConn(t *testing.T) {
	withReason := closeFrame(4008, "slow consumer: lag_timeout")
	batch := append(frameOf(0x1, []byte(`{"type":"heartbeat"}`)), withReason...)
	for name, tc := range map[string]struct {
		in       []byte
		code     uint16 // the rewritten close's code; 0: passed through
		reasonIs string
	}{
		"echo of 1000":                {in: []byte{0x88, 2, 0x03, 0xe8}, code: 1000, reasonIs: "closed by the client"},
		"echo of 4999":                {in: []byte{0x88, 2, 0x13, 0x87}, code: 1000, reasonIs: "closed by the client"},
		"echo of 4008":                {in: []byte{0x88, 2, 0x0f, 0xa8}, code: 1000, reasonIs: "closed by the client"},
		"echo of 3000":                {in: []byte{0x88, 2, 0x0b, 0xb8}, code: 1000, reasonIs: "closed by the client"},
		"empty close":                 {in: []byte{0x88, 0}, code: 1000, reasonIs: "closed by the client"},
		"bare 1002":                   {in: []byte{0x88, 2, 0x03, 0xea}, code: 1002, reasonIs: "protocol error: bad close frame"},
		"bare 1007":                   {in: []byte{0x88, 2, 0x03, 0xef}, code: 1007, reasonIs: "close reason is not UTF-8"},
		"close with a reason":         {in: withReason},
		"a small text frame":          {in: []byte{0x81, 2, 'h', 'i'}},
		"a small binary frame":        {in: []byte{0x82, 0}},
		"a batch ending in a close":   {in: batch},
		"length not matching":         {in: []byte{0x88, 2, 0x03}},
		"one byte":                    {in: []byte{0x88}},
		"a pong with a two-byte body": {in: []byte{0x8a, 2, 0x03, 0xe8}},
	} {
		t.Run(name, func(t *testing.T) {
			rc := &recordConn{}
			n, err := echoReasonConn{rc}.Write(tc.in)
			if err != nil || n != len(tc.in) {
				t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(tc.in))
			}
			got := rc.buf.Bytes()
			if tc.code == 0 {
				if !bytes.Equal(got, tc.in) {
					t.Fatalf("wrote % x, want it passed through", got)
				}
				return
			}
			if len(got) < 4 || got[0] != 0x88 || int(got[1]) != len(got)-2 {
				t.Fatalf("wrote % x: not one close frame", got)
			}
			if code, reason := binary.BigEndian.Uint16(got[2:]), string(got[4:]); code != tc.code || reason != tc.reasonIs {
				t.Fatalf("close %d %q, want %d %q", code, reason, tc.code, tc.reasonIs)
			}
		})
	}
}
