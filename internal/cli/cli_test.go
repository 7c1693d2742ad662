package cli

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"testing"
)

func TestFlagsFailed(t *testing.T) {
	for _, tt := range []struct {
		name      string
		err       error
		code      int
		ended     bool
		wantWrite string
	}{
		{"parsed", nil, 0, false, ""},
		{"help", flag.ErrHelp, 0, true, ""},
		{"help wrapped", fmt.Errorf("x: %w", flag.ErrHelp), 0, true, ""},
		{"usage mistake", errors.New("bad --rate"), 2, true, "tool: bad --rate\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			code, ended := FlagsFailed("tool", tt.err, &out)
			if code != tt.code || ended != tt.ended || out.String() != tt.wantWrite {
				t.Fatalf("FlagsFailed = %d, %v, %q; want %d, %v, %q", code, ended, out.String(), tt.code, tt.ended, tt.wantWrite)
			}
		})
	}
}
