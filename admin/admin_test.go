package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/tickgate/tickgate/gateway"
	"github.com/tickgate/tickgate/proto"
)

// recorder is a Node that records what the API asked of it.
type recorder struct {
	mu       sync.Mutex
	conns    []gateway.ConnectionFilter
	chans    []gateway.ChannelFilter
	revoked  []string
	revokeAt []int64
}

func (r *recorder) ListConnections(f gateway.ConnectionFilter) gateway.ConnectionList {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.conns = append(r.conns, f)
	return gateway.ConnectionList{Node: "gw-t", Connections: []gateway.ConnectionInfo{}}
}

func (r *recorder) ListChannels(f gateway.ChannelFilter) gateway.ChannelList {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.chans = append(r.chans, f)
	return gateway.ChannelList{Node: "gw-t", Channels: []gateway.ChannelInfo{}}
}

func (r *recorder) RevokeEverywhere(_ context.Context, sub string, before int64) (gateway.RevokeResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if before > 4_000_000_000 {
		return gateway.RevokeResult{}, fmt.Errorf("%w: issued_before must be Unix seconds, at most a minute ahead", gateway.ErrRevocation)
	}
	r.revoked = append(r.revoked, sub)
	r.revokeAt = append(r.revokeAt, before)
	return gateway.RevokeResult{Sub: sub, IssuedBefore: before, Warnings: []string{}}, nil
}

const testToken = "0123456789abcdef-admin"

func serveAPI(t *testing.T, token string) (*recorder, *httptest.Server) {
	t.Helper()
	rec := &recorder{}
	mux := http.NewServeMux()
	mux.Handle("/v1/", Handler(Config{Node: rec, Token: token}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return rec, srv
}

type answer struct {
	status int
	body   Error
	raw    string
}

func call(t *testing.T, method, target, auth, body string) answer {
	t.Helper()
	req, err := http.NewRequest(method, target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, raw: string(raw)}
	if resp.StatusCode != http.StatusOK && resp.Header.Get("Content-Type") == "application/json" {
		if err := json.Unmarshal(raw, &a.body); err != nil {
			t.Fatalf("refusal %d is not the JSON error body: %q", resp.StatusCode, raw)
		}
	}
	return a
}

// TestAPIBadInput: every malformed request is refused with a clear JSON
// error and reaches the node not at all.
func TestAPIBadInput(t *testing.T) {
	rec, srv := serveAPI(t, "")
	tests := []struct {
		name, method, path, body string
		status                   int
		code, says               string
	}{
		{"unknown filter", "GET", "/v1/connections?user=alice", "", 400, CodeBadRequest, `unknown filter "user"`},
		{"filter twice", "GET", "/v1/connections?sub=a&sub=b", "", 400, CodeBadRequest, "more than once"},
		{"empty filter", "GET", "/v1/connections?sub=", "", 400, CodeBadRequest, "sub is empty"},
		{"limit zero", "GET", "/v1/connections?limit=0", "", 400, CodeBadRequest, "limit must be"},
		{"limit over", "GET", "/v1/connections?limit=100001", "", 400, CodeBadRequest, "limit must be"},
		{"limit not a number", "GET", "/v1/connections?limit=ten", "", 400, CodeBadRequest, "limit must be"},
		{"bad ip", "GET", "/v1/connections?ip=300.1.1.1", "", 400, CodeBadRequest, "ip must be"},
		{"bad channel", "GET", "/v1/connections?channel=ticker", "", 400, CodeBadRequest, "channel must be"},
		{"wildcard channel", "GET", "/v1/connections?channel=ticker.*", "", 400, CodeBadRequest, "channel must be"},
		{"bad sort", "GET", "/v1/connections?sort=fastest", "", 400, CodeBadRequest, "sort must be"},
		{"malformed query", "GET", "/v1/connections?sub=%zz", "", 400, CodeBadRequest, "malformed"},
		{"bad kind", "GET", "/v1/channels?kind=candles", "", 400, CodeBadRequest, "kind must be"},
		{"bad symbol", "GET", "/v1/channels?symbol=BTC/USD", "", 400, CodeBadRequest, "symbol must"},
		{"channels limit", "GET", "/v1/channels?limit=5", "", 400, CodeBadRequest, "unknown filter"},
		{"revoke by GET", "GET", "/v1/revoke", "", 405, CodeMethodNotAllowed, "POST"},
		{"list by POST", "POST", "/v1/connections", "", 405, CodeMethodNotAllowed, "GET"},
		{"unknown path", "GET", "/v1/nodes", "", 404, CodeNotFound, "no such endpoint"},
		{"revoke: no body", "POST", "/v1/revoke", "", 400, CodeBadRequest, "one JSON object"},
		{"revoke: not JSON", "POST", "/v1/revoke", "sub=alice", 400, CodeBadRequest, "one JSON object"},
		{"revoke: no sub", "POST", "/v1/revoke", `{}`, 400, CodeBadRequest, "sub is required"},
		{"revoke: sub not a string", "POST", "/v1/revoke", `{"sub":7}`, 400, CodeBadRequest, "one JSON object"},
		{"revoke: unknown field", "POST", "/v1/revoke", `{"sub":"alice","reason":"leak"}`, 400, CodeBadRequest, "one JSON object"},
		{"revoke: two objects", "POST", "/v1/revoke", `{"sub":"alice"}{"sub":"bob"}`, 400, CodeBadRequest, "nothing else"},
		{"revoke: cut-off a string", "POST", "/v1/revoke", `{"sub":"alice","issued_before":"1800000000"}`, 400, CodeBadRequest, "one JSON object"},
		{"revoke: cut-off fraction", "POST", "/v1/revoke", `{"sub":"alice","issued_before":1.5}`, 400, CodeBadRequest, "one JSON object"},
		{"revoke: cut-off zero", "POST", "/v1/revoke", `{"sub":"alice","issued_before":0}`, 400, CodeBadRequest, "positive"},
		{"revoke: cut-off in ms", "POST", "/v1/revoke", `{"sub":"alice","issued_before":1800000000000}`, 400, CodeBadRequest, "Unix seconds"},
		{"revoke: query", "POST", "/v1/revoke?sub=alice", `{"sub":"alice"}`, 400, CodeBadRequest, "unknown filter"},
		{"revoke: too large", "POST", "/v1/revoke", `{"sub":"` + strings.Repeat("a", 5000) + `"}`, 413, CodeTooLarge, "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := call(t, tt.method, srv.URL+tt.path, "", tt.body)
			if a.status != tt.status || a.body.Code != tt.code || !strings.Contains(a.body.Message, tt.says) {
				t.Fatalf("%d %s: %q, want %d %s saying %q", a.status, a.body.Code, a.body.Message, tt.status, tt.code, tt.says)
			}
		})
	}
	if len(rec.conns)+len(rec.chans) != 0 || len(rec.revoked) != 0 {
		t.Fatalf("bad requests reached the node: %+v", rec)
	}
}

// TestAPIFilters: what each query string asks of the node.
func TestAPIFilters(t *testing.T) {
	rec, srv := serveAPI(t, "")
	tests := []struct {
		query string
		want  gateway.ConnectionFilter
	}{
		{"", gateway.ConnectionFilter{}},
		{"sub=alice", gateway.ConnectionFilter{Sub: "alice"}},
		{"sub=" + url.QueryEscape("carol ünï"), gateway.ConnectionFilter{Sub: "carol ünï"}},
		{"ip=10.1.2.3", gateway.ConnectionFilter{IP: netip.MustParsePrefix("10.1.2.3/32")}},
		{"ip=10.1.2.3/8", gateway.ConnectionFilter{IP: netip.MustParsePrefix("10.0.0.0/8")}},
		{"ip=::ffff:10.1.2.3", gateway.ConnectionFilter{IP: netip.MustParsePrefix("10.1.2.3/32")}},
		{"ip=2001:db8::1", gateway.ConnectionFilter{IP: netip.MustParsePrefix("2001:db8::1/128")}},
		{"channel=book.ETH-USD&limit=5&sort=lag", gateway.ConnectionFilter{Channel: "book.ETH-USD", Limit: 5, Order: gateway.ByLag}},
		{"sort=pending&limit=100000", gateway.ConnectionFilter{Order: gateway.ByPending, Limit: 100000}},
	}
	for _, tt := range tests {
		a := call(t, "GET", srv.URL+"/v1/connections?"+tt.query, "", "")
		if a.status != 200 {
			t.Fatalf("%s: %d %s", tt.query, a.status, a.raw)
		}
		var l gateway.ConnectionList
		if err := json.Unmarshal([]byte(a.raw), &l); err != nil || l.Node != "gw-t" || l.Connections == nil {
			t.Fatalf("%s: body %s", tt.query, a.raw)
		}
		if got := rec.conns[len(rec.conns)-1]; got != tt.want {
			t.Errorf("%s: filter %+v, want %+v", tt.query, got, tt.want)
		}
	}
	for q, want := range map[string]gateway.ChannelFilter{
		"":                        {},
		"kind=book":               {Kind: proto.KindBook},
		"symbol=BTC-USD":          {Symbol: "BTC-USD"},
		"kind=trade&symbol=SOL_X": {Kind: proto.KindTrade, Symbol: "SOL_X"},
	} {
		if a := call(t, "GET", srv.URL+"/v1/channels?"+q, "", ""); a.status != 200 || !strings.Contains(a.raw, `"channels":[]`) {
			t.Fatalf("%s: %d %s", q, a.status, a.raw)
		}
		if got := rec.chans[len(rec.chans)-1]; got != want {
			t.Errorf("%s: filter %+v, want %+v", q, got, want)
		}
	}
}

// TestAPIToken: with a token, every endpoint needs it (compared in
// constant time); /healthz beside it stays open; the client sends it.
func TestAPIToken(t *testing.T) {
	rec, srv := serveAPI(t, testToken)
	for name, auth := range map[string]string{
		"none":           "",
		"wrong":          "Bearer 0123456789abcdef-admiN",
		"prefix":         "Bearer 0123456789abcdef",
		"longer":         "Bearer " + testToken + "x",
		"other scheme":   "Basic " + testToken,
		"no scheme":      testToken,
		"empty bearer":   "Bearer ",
		"token as query": "",
	} {
		t.Run(name, func(t *testing.T) {
			target := srv.URL + "/v1/connections"
			if name == "token as query" {
				target += "?access_token=" + testToken
			}
			a := call(t, "GET", target, auth, "")
			if a.status != 401 || a.body.Code != CodeUnauthorized {
				t.Fatalf("%d %s", a.status, a.raw)
			}
			if a := call(t, "POST", srv.URL+"/v1/revoke", auth, `{"sub":"alice"}`); a.status != 401 {
				t.Fatalf("revoke: %d %s", a.status, a.raw)
			}
		})
	}
	if len(rec.revoked) != 0 || len(rec.conns) != 0 {
		t.Fatal("an unauthorized request reached the node")
	}
	if a := call(t, "GET", srv.URL+"/healthz", "", ""); a.status != 200 {
		t.Fatalf("/healthz %d", a.status)
	}
	for _, auth := range []string{"Bearer " + testToken, "bearer  " + testToken + " "} {
		if a := call(t, "GET", srv.URL+"/v1/channels", auth, ""); a.status != 200 {
			t.Fatalf("%q: %d %s", auth, a.status, a.raw)
		}
	}

	c, err := NewClient(srv.URL, testToken)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.Connections(ctx, url.Values{"sub": {"alice"}}); err != nil {
		t.Fatal(err)
	}
	res, err := c.Revoke(ctx, "alice", 1_800_000_000)
	if err != nil || res.Sub != "alice" || rec.revokeAt[0] != 1_800_000_000 {
		t.Fatalf("Revoke = %+v, %v", res, err)
	}
	if _, err := c.Revoke(ctx, "bob", 0); err != nil || rec.revokeAt[1] != 0 {
		t.Fatalf("Revoke without a cut-off: %v, %v", rec.revokeAt, err)
	}
	var apiErr *APIError
	if _, err := c.Connections(ctx, url.Values{"limit": {"0"}}); !errors.As(err, &apiErr) || apiErr.Code != CodeBadRequest || apiErr.Status != 400 {
		t.Fatalf("bad limit through the client: %v", err)
	}
	nobody, _ := NewClient(strings.TrimPrefix(srv.URL, "http://"), "")
	if _, err := nobody.Channels(ctx, nil); !errors.As(err, &apiErr) || apiErr.Code != CodeUnauthorized {
		t.Fatalf("client without the token: %v", err)
	}
}

func TestNewClientURL(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:9090":         "http://127.0.0.1:9090",
		"http://127.0.0.1:9090/": "http://127.0.0.1:9090",
		"https://admin.example":  "https://admin.example",
	} {
		c, err := NewClient(in, "")
		if err != nil || c.Base() != want {
			t.Errorf("NewClient(%q) = %v, %v; want %s", in, c, err, want)
		}
	}
	for _, bad := range []string{"ftp://x:1", "http://", "http://x:1/v1/connections", "http://x:1?a=b"} {
		if _, err := NewClient(bad, ""); err == nil {
			t.Errorf("NewClient(%q) accepted", bad)
		}
	}
}

func TestReadTokenFile(t *testing.T) {
	dir := t.TempDir()
	for name, tt := range map[string]struct {
		content string
		want    string
	}{
		"with newline": {content: testToken + "\n", want: testToken},
		"short":        {content: "short\n"},
		"inner space":  {content: "0123456789 abcdef"},
		"non-ASCII":    {content: "0123456789abcdéf"},
	} {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "_"))
		if err := os.WriteFile(p, []byte(tt.content), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := ReadTokenFile(p)
		if (err == nil) != (tt.want != "") || got != tt.want {
			t.Errorf("%s: %q, %v", name, got, err)
		}
	}
	if _, err := ReadTokenFile(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing file was read")
	}
}
