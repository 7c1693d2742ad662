package wsconn

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/lxzan/gws"
)

func TestMaskedFrameLengths(t *testing.T) {
	for name, n := range map[string]int{"small": 5, "16-bit": 300, "64-bit": 70_000} {
		t.Run(name, func(t *testing.T) {
			payload := bytes.Repeat([]byte{'x'}, n)
			f := MaskedFrame(OpText, payload)
			if f[0] != 0x81 || f[1]&0x80 == 0 {
				t.Fatalf("header % x: want FIN+text, masked", f[:2])
			}
			hdr := map[int]int{5: 2, 300: 4, 70_000: 10}[n]
			mask, body := f[hdr:hdr+4], f[hdr+4:]
			if len(body) != n {
				t.Fatalf("payload length %d, want %d", len(body), n)
			}
			for i := range body {
				if body[i]^mask[i%4] != 'x' {
					t.Fatalf("byte %d does not unmask", i)
				}
			}
		})
	}
}

func TestCloseCode(t *testing.T) {
	for want, err := range map[string]error{
		"4008":                                &gws.CloseError{Code: 4008},
		"no close frame: EOF":                 io.EOF,
		"no close frame: reset":               fmt.Errorf("read: %w", syscall.ECONNRESET),
		"no close frame: closed locally":      net.ErrClosed,
		"no error":                            nil,
		"no close frame: *errors.errorString": errors.New("x"),
	} {
		if got := CloseCode(err); got != want {
			t.Errorf("CloseCode(%v) = %q, want %q", err, got, want)
		}
	}
}
