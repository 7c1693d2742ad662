package codec

import (
	"errors"
	"net/http"
	"testing"

	"github.com/tickgate/tickgate/proto"
)

func TestOffered(t *testing.T) {
	tests := map[string]struct {
		lines []string // Sec-WebSocket-Protocol header lines; nil: no header
		want  []string
	}{
		"no header":      {nil, nil},
		"empty line":     {[]string{""}, nil},
		"only commas":    {[]string{" , ,,"}, nil},
		"one":            {[]string{"tickgate.v1.json"}, []string{"tickgate.v1.json"}},
		"spaces":         {[]string{"  tickgate.v1.msgpack ,\tbearer.x  "}, []string{"tickgate.v1.msgpack", "bearer.x"}},
		"empty entries":  {[]string{"a,,b,"}, []string{"a", "b"}},
		"multiple lines": {[]string{"bearer.x", "tickgate.v1.json, tickgate.v1.msgpack"}, []string{"bearer.x", "tickgate.v1.json", "tickgate.v1.msgpack"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := http.Header{}
			for _, l := range tc.lines {
				h.Add("Sec-WebSocket-Protocol", l)
			}
			mustEqual(t, Offered(h), tc.want)
		})
	}
}

func TestNegotiate(t *testing.T) {
	tests := map[string]struct {
		lines    []string
		wantName string // "" with wantErr
		wantEcho bool
		wantErr  error
	}{
		"no header":              {nil, "json", false, nil},
		"empty header":           {[]string{" "}, "json", false, nil},
		"json":                   {[]string{proto.SubprotocolJSON}, "json", true, nil},
		"msgpack":                {[]string{proto.SubprotocolMsgpack}, "msgpack", true, nil},
		"json then msgpack":      {[]string{"tickgate.v1.json, tickgate.v1.msgpack"}, "json", true, nil},
		"msgpack then json":      {[]string{"tickgate.v1.msgpack, tickgate.v1.json"}, "msgpack", true, nil},
		"only bearer":            {[]string{"bearer.x"}, "", false, ErrBadSubprotocol},
		"unknown only":           {[]string{"chat, tickgate.v2.json"}, "", false, ErrBadSubprotocol},
		"bearer then msgpack":    {[]string{"bearer.x, tickgate.v1.msgpack"}, "msgpack", true, nil},
		"msgpack then bearer":    {[]string{"tickgate.v1.msgpack,bearer.eyJ.a.b"}, "msgpack", true, nil},
		"unknown then json":      {[]string{"chat,tickgate.v1.json"}, "json", true, nil},
		"bearer named like json": {[]string{"bearer.tickgate.v1.json"}, "", false, ErrBadSubprotocol},
		"multiple lines":         {[]string{"bearer.x", "chat", "tickgate.v1.msgpack", "tickgate.v1.json"}, "msgpack", true, nil},
		"spaces":                 {[]string{"   tickgate.v1.json   ,  bearer.x "}, "json", true, nil},
		"case matters":           {[]string{"TICKGATE.V1.JSON"}, "", false, ErrBadSubprotocol},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := http.Header{}
			for _, l := range tc.lines {
				h.Add("Sec-WebSocket-Protocol", l)
			}
			c, echo, err := Negotiate(Offered(h))
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || c != nil || echo {
					t.Fatalf("Negotiate = %v, %v, %v; want nil, false, %v", c, echo, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Negotiate: %v", err)
			}
			if c.Name() != tc.wantName || echo != tc.wantEcho {
				t.Errorf("Negotiate = %s, echo %v; want %s, echo %v", c.Name(), echo, tc.wantName, tc.wantEcho)
			}
			if echo && c.Subprotocol() != map[string]string{"json": proto.SubprotocolJSON, "msgpack": proto.SubprotocolMsgpack}[c.Name()] {
				t.Errorf("echoed subprotocol %q does not match codec %s", c.Subprotocol(), c.Name())
			}
		})
	}
}
