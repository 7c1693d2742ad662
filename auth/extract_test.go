package auth

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestExtract(t *testing.T) {
	long := strings.Repeat("x", MaxTokenBytes+1)
	tests := []struct {
		name       string
		target     string
		header     [][2]string // added in order, so lines may repeat
		allowQuery bool
		want       string
		wantErr    error
	}{
		{name: "authorization header", header: [][2]string{{"Authorization", "Bearer h.h.h"}}, want: "h.h.h"},
		{name: "scheme lower case", header: [][2]string{{"Authorization", "bearer h.h.h"}}, want: "h.h.h"},
		{name: "scheme upper case, extra spaces", header: [][2]string{{"Authorization", "  BEARER   h.h.h  "}}, want: "h.h.h"},
		{name: "tab after scheme", header: [][2]string{{"Authorization", "Bearer\th.h.h"}}, want: "h.h.h"},
		{name: "scheme prefix only", header: [][2]string{{"Authorization", "Bearerish h.h.h"}}, wantErr: ErrMissingToken},
		{name: "basic scheme is skipped", header: [][2]string{{"Authorization", "Basic dXNlcjpwYXNz"}}, wantErr: ErrMissingToken},
		{name: "basic scheme falls through to subprotocol", header: [][2]string{
			{"Authorization", "Basic dXNlcjpwYXNz"}, {"Sec-WebSocket-Protocol", "tickgate.v1.json, bearer.s.s.s"},
		}, want: "s.s.s"},
		{name: "bearer without token", header: [][2]string{{"Authorization", "Bearer"}}, wantErr: ErrInvalidToken},
		{name: "bearer with blank token", header: [][2]string{{"Authorization", "Bearer    "}}, wantErr: ErrInvalidToken},
		{name: "subprotocol entry among others", header: [][2]string{
			{"Sec-WebSocket-Protocol", "tickgate.v1.json, bearer.s.s.s, tickgate.v1.msgpack"},
		}, want: "s.s.s"},
		{name: "subprotocol without spaces", header: [][2]string{{"Sec-WebSocket-Protocol", "tickgate.v1.json,bearer.s.s.s"}}, want: "s.s.s"},
		{name: "subprotocol on a second header line", header: [][2]string{
			{"Sec-WebSocket-Protocol", "tickgate.v1.json"}, {"Sec-WebSocket-Protocol", "x, bearer.s.s.s"},
		}, want: "s.s.s"},
		{name: "first bearer entry wins", header: [][2]string{{"Sec-WebSocket-Protocol", "bearer.one.one.one, bearer.two.two.two"}}, want: "one.one.one"},
		{name: "empty bearer entry", header: [][2]string{{"Sec-WebSocket-Protocol", "tickgate.v1.json, bearer."}}, wantErr: ErrInvalidToken},
		{name: "prefix is case-sensitive", header: [][2]string{{"Sec-WebSocket-Protocol", "Bearer.s.s.s"}}, wantErr: ErrMissingToken},
		{name: "codec only", header: [][2]string{{"Sec-WebSocket-Protocol", "tickgate.v1.json"}}, wantErr: ErrMissingToken},
		{name: "header wins over subprotocol", header: [][2]string{
			{"Sec-WebSocket-Protocol", "tickgate.v1.json, bearer.s.s.s"}, {"Authorization", "Bearer h.h.h"},
		}, want: "h.h.h"},
		{name: "header wins over query", target: "/v1/ws?access_token=q.q.q", allowQuery: true,
			header: [][2]string{{"Authorization", "Bearer h.h.h"}}, want: "h.h.h"},
		{name: "subprotocol wins over query", target: "/v1/ws?access_token=q.q.q", allowQuery: true,
			header: [][2]string{{"Sec-WebSocket-Protocol", "bearer.s.s.s"}}, want: "s.s.s"},
		{name: "query ignored unless enabled", target: "/v1/ws?access_token=q.q.q", wantErr: ErrMissingToken},
		{name: "query when enabled", target: "/v1/ws?access_token=q.q.q", allowQuery: true, want: "q.q.q"},
		{name: "empty query parameter", target: "/v1/ws?access_token=", allowQuery: true, wantErr: ErrInvalidToken},
		{name: "missing", wantErr: ErrMissingToken},
		{name: "missing with query enabled", allowQuery: true, wantErr: ErrMissingToken},
		{name: "oversized header token", header: [][2]string{{"Authorization", "Bearer " + long}}, wantErr: ErrInvalidToken},
		{name: "oversized subprotocol token", header: [][2]string{{"Sec-WebSocket-Protocol", "bearer." + long}}, wantErr: ErrInvalidToken},
		{name: "oversized query token", target: "/v1/ws?access_token=" + long, allowQuery: true, wantErr: ErrInvalidToken},
		{name: "token of exactly the limit", header: [][2]string{{"Authorization", "Bearer " + long[1:]}}, want: long[1:]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := tt.target
			if target == "" {
				target = "/v1/ws"
			}
			r := httptest.NewRequest(http.MethodGet, target, nil)
			for _, h := range tt.header {
				r.Header.Add(h[0], h[1])
			}
			got, err := Extract(r, tt.allowQuery)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Extract error = %v, want %v", err, tt.wantErr)
				}
				if got != "" {
					t.Fatalf("Extract returned %q with an error", got)
				}
				if strings.Contains(err.Error(), "xxxxxxxx") {
					t.Fatalf("error quotes the token: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Extract: %v", err)
			}
			if got != tt.want {
				t.Fatalf("Extract = %q, want %q", got, tt.want)
			}
		})
	}
}
