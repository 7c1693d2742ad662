package gateway

import (
	"errors"
	"net/http"
	"time"

	"github.com/tickgate/tickgate/auth"
	"github.com/tickgate/tickgate/proto"
)

// Authenticator is how the node learns who a client is and what it may
// read. The WebSocket handshake (and the REST snapshot endpoint) ask it
// about an HTTP request, before anything else happens; the auth command
// asks it about the credential a client sends on an open connection to
// extend its session. Both answer with auth.Claims: the subscriber (Sub,
// by which limits, logs and revocations go), the expiry, the issue time
// and the channel patterns. JWT bearer tokens (BearerAuth) are the method
// tickgate ships; another method (API keys, mTLS client certificates) is
// one more implementation, set in Config.Authenticator. How to add one:
// docs/architecture.md, "Adding an auth method".
//
// Implementations are safe for concurrent use. Their errors should be (or
// wrap) an *AuthError, which says what the client is told; any other
// error is answered as an invalid credential. Revocations (Server.Revoke)
// are checked by the server on top, for every method.
type Authenticator interface {
	// Request authenticates the client of an HTTP request. It may remove
	// the credential from r where it would otherwise travel on (a query
	// parameter in the URL).
	Request(r *http.Request) (*auth.Claims, error)
	// Refresh authenticates the credential of an auth command (its
	// "token" field), which replaces the connection's claims when it names
	// the same subscriber.
	Refresh(credential string) (*auth.Claims, error)
}

// AuthError is an authentication failure as the client is told it: the
// handshake refusal code (401 missing_token, invalid_token, token_expired,
// token_revoked, ...), which the auth command answers as invalid_token,
// and a short text that never quotes the credential.
type AuthError struct {
	Code proto.HandshakeCode
	Text string
}

func (e *AuthError) Error() string { return "gateway: " + string(e.Code) + ": " + e.Text }

// authError returns err as an *AuthError: itself, or invalid_token for an
// error of another type.
func authError(err error) *AuthError {
	if ae, ok := errors.AsType[*AuthError](err); ok {
		return ae
	}
	return &AuthError{Code: proto.HandshakeInvalidToken, Text: "invalid token"}
}

// BearerAuth is the JWT bearer method (docs/protocol.md §2.3, §3): the
// token from the Authorization header, a bearer. subprotocol entry, or
// (with allowQuery) the access_token query parameter, verified by v.
func BearerAuth(v *auth.Verifier, allowQuery bool) Authenticator {
	return bearerAuth{v: v, allowQuery: allowQuery}
}

type bearerAuth struct {
	v          *auth.Verifier // Static after construction.
	allowQuery bool           // Static after construction.
}

func (b bearerAuth) Request(r *http.Request) (*auth.Claims, error) {
	token, err := auth.Extract(r, b.allowQuery)
	if err == nil && r.URL != nil && r.URL.Query().Has(auth.QueryParam) {
		// The token leaves the request: nothing after this (gws, logs)
		// sees it in the URL.
		r.URL.RawQuery = ""
	}
	if err != nil {
		return nil, tokenError(err)
	}
	claims, err := b.v.Verify(token)
	if err != nil {
		return nil, tokenError(err)
	}
	return claims, nil
}

func (b bearerAuth) Refresh(token string) (*auth.Claims, error) {
	if token == "" {
		return nil, &AuthError{Code: proto.HandshakeMissingToken, Text: "auth needs a token"}
	}
	claims, err := b.v.Verify(token)
	if err != nil {
		return nil, tokenError(err)
	}
	return claims, nil
}

// tokenError is an auth package error as the client is told it.
func tokenError(err error) *AuthError {
	return &AuthError{Code: auth.HandshakeCode(err), Text: tokenErrorText(err)}
}

// tokenErrorText says why a token failed, without any of the token.
func tokenErrorText(err error) string {
	switch {
	case errors.Is(err, auth.ErrTokenExpired):
		return "token expired"
	case errors.Is(err, auth.ErrMissingToken):
		return "missing token"
	}
	return "invalid token"
}

// authenticate authenticates an HTTP request (the handshake, a REST
// snapshot) with the configured method, then refuses a revoked
// subscriber's credential.
func (s *Server) authenticate(r *http.Request) (*auth.Claims, *AuthError) {
	claims, err := s.authn.Request(r)
	if err != nil {
		return nil, authError(err)
	}
	if s.revoked.refuses(claims.Subject, claims.IssuedAt, s.cfg.Now()) {
		return nil, &AuthError{Code: proto.HandshakeTokenRevoked, Text: "this token was revoked; get a new one"}
	}
	return claims, nil
}

// refresh authenticates the credential of an auth command for a
// connection of subject, with the configured method.
func (s *Server) refresh(credential, subject string, now time.Time) (*auth.Claims, *AuthError) {
	claims, err := s.authn.Refresh(credential)
	if err != nil {
		return nil, authError(err)
	}
	if claims.Subject != subject {
		return nil, &AuthError{Code: proto.HandshakeInvalidToken, Text: "the new token's sub differs from the connection's"}
	}
	if s.revoked.refuses(claims.Subject, claims.IssuedAt, now) {
		return nil, &AuthError{Code: proto.HandshakeTokenRevoked, Text: "the new token was revoked"}
	}
	return claims, nil
}
