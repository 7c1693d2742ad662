package gateway

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/lxzan/gws"

	"github.com/tickgate/tickgate/codec"
	"github.com/tickgate/tickgate/proto"
)

// WebSocketPath is where clients connect.
const WebSocketPath = "/v1/ws"

type connKey struct{}

// serveWS runs the handshake: every check happens before the upgrade and a
// refusal answers with the JSON body of docs/protocol.md §2.5.
func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if r.Method != http.MethodGet || !headerHasToken(r.Header, "Connection", "upgrade") ||
		!strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		w.Header().Set("Upgrade", "websocket")
		s.metrics.handshakeFails.WithLabelValues(failNotWebSocket).Inc()
		writeJSONError(w, http.StatusUpgradeRequired, "websocket_required", "this endpoint speaks WebSocket only: GET with Upgrade: websocket")
		return
	}
	if s.draining.Load() {
		s.refuse(w, proto.HandshakeDraining, "this node is draining; connect again (to any node)")
		return
	}
	if origins := r.Header.Values("Origin"); len(origins) > 0 && len(s.origins) > 0 {
		// A browser sends one Origin; two are no browser's request, and
		// judging only the first would let the second pass unseen.
		if _, ok := s.origins[normalizeOrigin(origins[0], false)]; !ok || len(origins) > 1 {
			s.refuse(w, proto.HandshakeOriginNotAllowed, "origin not allowed")
			return
		}
	}
	claims, aerr := s.authenticate(r)
	if aerr != nil {
		s.refuse(w, aerr.Code, aerr.Text)
		return
	}
	cd, echo, err := codec.Negotiate(codec.Offered(r.Header))
	if err != nil {
		s.refuse(w, proto.HandshakeBadSubprotocol, badSubprotocolText)
		return
	}

	addr := s.admit.clientAddr(r)
	if why := s.admit.admit(addr, claims.Subject); why != "" {
		s.refuse(w, proto.HandshakeTooManyConnections, "too many "+why)
		return
	}
	if ok, wait := s.admit.pace(); !ok {
		// A reconnect storm. Paced after every check that can refuse it,
		// so that requests refused anyway (a bad token, a client at its
		// cap) do not use up the budget of real clients.
		s.admit.leave(addr, claims.Subject)
		w.Header().Set("Retry-After", strconv.Itoa(int(wait/time.Second)+1))
		s.refuse(w, proto.HandshakeTooManyConnections, "the node is taking connections slowly; retry after the given seconds, or on another node")
		return
	}
	c := s.newConn(cd, claims, r.RemoteAddr)
	c.addr = addr
	c.client = clientAddr(r.RemoteAddr, addr)
	upgraders := s.upgradersFor(c, r.Header)
	c.welcome()
	up := upgraders[len(upgraders)-1]
	if echo {
		// Only the chosen codec goes on: the bearer entry is never echoed
		// and the token does not stay in the request.
		r.Header.Set("Sec-WebSocket-Protocol", cd.Subprotocol())
		up = upgraders[c.codecIdx]
	}
	r = r.WithContext(context.WithValue(r.Context(), connKey{}, c))
	socket, err := upgrade(up, w, r)
	if err != nil {
		s.admit.leave(addr, claims.Subject)
		s.metrics.handshakeFails.WithLabelValues(failUpgrade).Inc()
		s.log.Debug("upgrade failed", "remote", r.RemoteAddr, "err", err.Error())
		return
	}
	c.ws = socket
	if ec, ok := socket.NetConn().(echoReasonConn); ok {
		c.sock = sockOf(ec.Conn)
		c.tlsConn, _ = ec.Conn.(*tls.Conn)
		s.hub.wakes.touch.learn(c.tlsConn) // its handshake is over, and nothing else writes it yet
	}
	if r := c.parking(); r != nil {
		r.socket = socket
	}
	s.track(c)
	if s.revoked.refuses(claims.Subject, claims.IssuedAt, s.cfg.Now()) {
		c.revoke() // revoked since the check above, before the node's scan could see it
	}
	s.metrics.handshakeSeconds.Observe(time.Since(start).Seconds())
	go s.readLoop(socket)
}

// badSubprotocolText is the message of a bad_subprotocol refusal: the
// registry's subprotocols.
var badSubprotocolText = "offer " + strings.Join(codec.Subprotocols(), " or ") + " (a bearer. entry is not a codec)"

// upgrade hijacks the connection and hands it to gws wrapped in
// echoReasonConn, with a small reader of its own (readerAfterHijack) that
// first reads what net/http's buffered reader holds: a client may send its
// first frame right behind the handshake request, and those bytes can
// already sit in that buffer (gws's own Upgrade starts a fresh reader and
// would lose them).
func upgrade(up *gws.Upgrader, w http.ResponseWriter, r *http.Request) (*gws.Conn, error) {
	nc, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, err
	}
	return up.UpgradeFromConn(echoReasonConn{nc}, readerAfterHijack(nc, brw.Reader), r)
}

// readLoop runs gws's read loop and survives a panic in it: a hostile
// frame must cost its own connection at most, never the process. (gws
// v1.9.1 panics on a 64-bit frame length with the top bit set, which RFC
// 6455 forbids; such a frame is answered like any protocol error, 1002.)
// gws skips OnClose when its loop panics, so the cleanup runs here.
func (s *Server) readLoop(socket *gws.Conn) {
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		c := connOf(socket)
		s.log.Warn("frame reader failed on hostile input", c.logAttrs("panic", fmt.Sprint(v))...)
		_ = socket.SetWriteDeadline(time.Now().Add(closeWriteTimeout))
		_ = socket.WriteClose(1002, []byte("protocol error"))
		_ = socket.NetConn().Close()
		c.ended(fmt.Errorf("gateway: read loop: %v", v))
	}()
	socket.ReadLoop()
}

// authorizeUpgrade hands the conn built by serveWS to gws's session.
func authorizeUpgrade(r *http.Request, session sessionStorage) bool {
	c, ok := r.Context().Value(connKey{}).(*conn)
	if !ok {
		return false
	}
	session.(*sessionSlot).c = c
	return true
}

// refuse answers a failed handshake with the code's status and counts it.
func (s *Server) refuse(w http.ResponseWriter, code proto.HandshakeCode, msg string) {
	if code == proto.HandshakeDraining {
		w.Header().Set("Retry-After", "1")
	}
	s.metrics.handshakeFails.WithLabelValues(string(code)).Inc()
	s.log.Debug("handshake refused", "reason", string(code)) // counted; Info would flood during a storm
	writeJSONError(w, code.HTTPStatus(), string(code), msg)
}

func writeJSONError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}{code, msg})
}

// headerHasToken reports whether a comma-separated header holds token.
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for part := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(part), token) {
				return true
			}
		}
	}
	return false
}

// normalizeOrigin lower-cases scheme and host and drops a default port, so
// that "https://A.example:443" and "https://a.example" compare equal. What
// does not parse as scheme://host[:port] is returned unchanged (and so
// matches nothing that was validated). slash allows a trailing "/": an
// operator may write one in --allowed-origins, a browser never sends one.
func normalizeOrigin(o string, slash bool) string {
	u, err := url.Parse(o)
	if err != nil || u.Scheme == "" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Path != "" && !(slash && u.Path == "/") {
		return o
	}
	scheme := strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	if (scheme == "https" || scheme == "wss") && port == "443" || (scheme == "http" || scheme == "ws") && port == "80" {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		return scheme + "://" + host + ":" + port
	}
	return scheme + "://" + host
}

func newSessionID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
