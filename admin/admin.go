// Package admin is the operator's API of a gateway node (docs/operations.md, "Inspecting and revoking")
// on its admin listener, and the client that `tickgate revoke` and
// `tickgate top` use:
//
//	GET  /v1/connections[?sub=&ip=&channel=&limit=&sort=]
//	GET  /v1/channels[?kind=&symbol=]
//	POST /v1/revoke  {"sub":"alice"} or {"sub":"alice","issued_before":<unix s>}
//
// Answers are JSON; a refusal is {"error": CODE, "message": TEXT} with
// 400 bad_request (a filter key it does not know, a malformed value, a
// limit out of range, a bad revoke body), 401 unauthorized (the admin
// token, when one is configured, missing or wrong), 404 not_found, 405
// method_not_allowed or 413 too_large. Nothing here touches a client
// connection but a revocation.
//
// The node's reading and revoking live in package gateway
// (Server.ListConnections, ListChannels, RevokeEverywhere); this package
// only speaks HTTP.
package admin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/tickgate/tickgate/gateway"
	"github.com/tickgate/tickgate/proto"
)

// Node is what the API reads and does: a *gateway.Server.
type Node interface {
	ListConnections(gateway.ConnectionFilter) gateway.ConnectionList
	ListChannels(gateway.ChannelFilter) gateway.ChannelList
	RevokeEverywhere(ctx context.Context, sub string, issuedBefore int64) (gateway.RevokeResult, error)
}

// Paths of the API.
const (
	PathConnections = "/v1/connections"
	PathChannels    = "/v1/channels"
	PathRevoke      = "/v1/revoke"
)

// Error codes of the API's refusals.
const (
	CodeBadRequest       = "bad_request"
	CodeUnauthorized     = "unauthorized"
	CodeNotFound         = "not_found"
	CodeMethodNotAllowed = "method_not_allowed"
	CodeTooLarge         = "too_large"
)

// maxRevokeBody bounds a revoke request's body.
const maxRevokeBody = 4 << 10

// Config configures the API. The zero Token leaves it open (the admin
// listener is then to be reached by operators only: loopback, or a
// private network).
type Config struct {
	// Node is the gateway node. Required.
	Node Node
	// Token, when not empty, must come as "Authorization: Bearer <Token>"
	// on every request (ReadTokenFile reads one).
	Token string
	// Logger receives one line per revocation and per refused token.
	// Zero: discard.
	Logger *slog.Logger
}

// Handler returns the API's handler; mount it at "/v1/" of the admin
// listener's mux, beside /metrics, /healthz and /readyz, which stay open.
func Handler(cfg Config) http.Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	a := &api{node: cfg.Node, log: cfg.Logger}
	if cfg.Token != "" {
		sum := sha256.Sum256([]byte(cfg.Token))
		a.token = sum[:]
	}
	return a
}

// api serves the endpoints. Static after construction.
type api struct {
	node  Node
	token []byte // SHA-256 of the admin token; nil: no token required
	log   *slog.Logger
}

func (a *api) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !a.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="tickgate admin"`)
		a.log.Warn("admin request refused: bad or missing admin token", "path", r.URL.Path, "remote", r.RemoteAddr)
		writeError(w, http.StatusUnauthorized, CodeUnauthorized, "this endpoint needs Authorization: Bearer <admin token>")
		return
	}
	var handle func(http.ResponseWriter, *http.Request) (any, error)
	method := http.MethodGet
	switch r.URL.Path {
	case PathConnections:
		handle = a.connections
	case PathChannels:
		handle = a.channels
	case PathRevoke:
		handle, method = a.revoke, http.MethodPost
	default:
		writeError(w, http.StatusNotFound, CodeNotFound, "no such endpoint: "+PathConnections+", "+PathChannels+" and "+PathRevoke+" are")
		return
	}
	if r.Method != method && !(method == http.MethodGet && r.Method == http.MethodHead) {
		w.Header().Set("Allow", method)
		writeError(w, http.StatusMethodNotAllowed, CodeMethodNotAllowed, r.URL.Path+" takes "+method)
		return
	}
	v, err := handle(w, r)
	if err != nil {
		var re *requestError
		if errors.As(err, &re) {
			writeError(w, re.status, re.code, re.msg)
			return
		}
		writeError(w, http.StatusBadRequest, CodeBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// authorized checks the bearer token in constant time (over fixed-size
// digests: neither the token's bytes nor its length leak).
func (a *api) authorized(r *http.Request) bool {
	if a.token == nil {
		return true
	}
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	return subtle.ConstantTimeCompare(sum[:], a.token) == 1
}

// requestError is a refusal with its own status and code.
type requestError struct {
	status    int
	code, msg string
}

func (e *requestError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &requestError{http.StatusBadRequest, CodeBadRequest, fmt.Sprintf(format, args...)}
}

// query reads the request's query: only keys of allowed, each at most
// once and not empty.
func query(r *http.Request, allowed ...string) (map[string]string, error) {
	vals, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, badRequest("malformed query string")
	}
	out := make(map[string]string, len(vals))
	for k, v := range vals {
		known := false
		for _, a := range allowed {
			known = known || k == a
		}
		switch {
		case !known:
			return nil, badRequest("unknown filter %q: %s takes %s", clip(k), r.URL.Path, strings.Join(allowed, ", "))
		case len(v) > 1:
			return nil, badRequest("%s given more than once", k)
		case v[0] == "":
			return nil, badRequest("%s is empty", k)
		}
		out[k] = v[0]
	}
	return out, nil
}

// clip bounds request text quoted back in a refusal.
func clip(s string) string {
	if len(s) > 64 {
		s = strings.ToValidUTF8(s[:64], "") + "…"
	}
	return s
}

func (a *api) connections(_ http.ResponseWriter, r *http.Request) (any, error) {
	q, err := query(r, "sub", "ip", "channel", "limit", "sort")
	if err != nil {
		return nil, err
	}
	var f gateway.ConnectionFilter
	f.Sub = q["sub"]
	if s, ok := q["ip"]; ok {
		if f.IP, err = parseIP(s); err != nil {
			return nil, err
		}
	}
	f.Channel = q["channel"]
	if s, ok := q["limit"]; ok {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > gateway.MaxListLimit {
			return nil, badRequest("limit must be an integer within 1..%d", gateway.MaxListLimit)
		}
		f.Limit = n
	}
	if f.Order, err = gateway.ParseConnectionOrder(q["sort"]); err != nil {
		return nil, badRequest("sort must be connected_at, lag or pending")
	}
	if err := f.Validate(); err != nil {
		return nil, badRequest("%s", strings.TrimPrefix(err.Error(), gateway.ErrFilter.Error()+": "))
	}
	return a.node.ListConnections(f), nil
}

// parseIP reads an address or a CIDR prefix.
func parseIP(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	addr, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, badRequest("ip must be an address or a CIDR prefix")
	}
	addr = addr.Unmap()
	return netip.PrefixFrom(addr, addr.BitLen()), nil
}

// kindNames lists the kinds, for an error message: "ticker, book, ...".
func kindNames() string {
	var names []string
	for _, k := range proto.Kinds() {
		names = append(names, k.String())
	}
	return strings.Join(names, ", ")
}

func (a *api) channels(_ http.ResponseWriter, r *http.Request) (any, error) {
	q, err := query(r, "kind", "symbol")
	if err != nil {
		return nil, err
	}
	var f gateway.ChannelFilter
	if s, ok := q["kind"]; ok {
		if f.Kind, err = proto.ParseKind(s); err != nil {
			return nil, badRequest("kind must be one of %s", kindNames())
		}
	}
	if s, ok := q["symbol"]; ok {
		if !proto.ValidSymbol(s) {
			return nil, badRequest("symbol must match [A-Za-z0-9_-]{1,32}")
		}
		f.Symbol = s
	}
	return a.node.ListChannels(f), nil
}

// RevokeRequest is the body of POST /v1/revoke.
type RevokeRequest struct {
	Sub string `json:"sub"`
	// IssuedBefore is the cut-off in Unix seconds; nil: every token
	// issued up to now.
	IssuedBefore *int64 `json:"issued_before,omitempty"`
}

func (a *api) revoke(w http.ResponseWriter, r *http.Request) (any, error) {
	if _, err := query(r); err != nil {
		return nil, err
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRevokeBody))
	if err != nil {
		return nil, &requestError{http.StatusRequestEntityTooLarge, CodeTooLarge, fmt.Sprintf("the body is larger than %d bytes", maxRevokeBody)}
	}
	var req RevokeRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || dec.More() {
		return nil, badRequest(`the body must be one JSON object {"sub": string, "issued_before": Unix seconds (optional)} and nothing else`)
	}
	if req.Sub == "" {
		return nil, badRequest("sub is required")
	}
	var before int64
	if req.IssuedBefore != nil {
		if before = *req.IssuedBefore; before <= 0 {
			return nil, badRequest("issued_before must be a positive Unix time in seconds")
		}
	}
	res, err := a.node.RevokeEverywhere(r.Context(), req.Sub, before)
	if err != nil {
		return nil, badRequest("%s", strings.TrimPrefix(err.Error(), gateway.ErrRevocation.Error()+": "))
	}
	a.log.Info("revocation requested", "sub", res.Sub, "issued_before", res.IssuedBefore, "closed_here", res.Closed,
		"published", res.Published, "stored", res.Stored, "remote", r.RemoteAddr)
	return res, nil
}

// Error is the body of a refusal.
type Error struct {
	Code    string `json:"error"`
	Message string `json:"message"`
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, Error{Code: code, Message: msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// minTokenBytes is the shortest admin token ReadTokenFile takes.
const minTokenBytes = 16

// ReadTokenFile reads an admin token from a file: its content without
// surrounding whitespace, at least 16 bytes, printable ASCII without
// spaces (it travels in a header).
func ReadTokenFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("admin token: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if len(tok) < minTokenBytes {
		return "", fmt.Errorf("admin token in %s: at least %d bytes needed", path, minTokenBytes)
	}
	for i := 0; i < len(tok); i++ {
		if tok[i] <= ' ' || tok[i] >= 0x7f {
			return "", fmt.Errorf("admin token in %s: printable ASCII without spaces only", path)
		}
	}
	return tok, nil
}
