package auth

import (
	"errors"

	"github.com/tickgate/tickgate/proto"
)

// Sentinel errors. Errors returned by this package wrap one of them with %w
// and a short reason; test with errors.Is.
var (
	// ErrMissingToken: the handshake carried no token at all.
	ErrMissingToken = errors.New("auth: missing token")
	// ErrInvalidToken: a token was found but is not acceptable (malformed,
	// oversized, bad signature, unknown key, wrong claims, ...).
	ErrInvalidToken = errors.New("auth: invalid token")
	// ErrTokenExpired: the token is valid except that exp (plus leeway) has
	// passed; a client may fix it by fetching a fresh token.
	ErrTokenExpired = errors.New("auth: token expired")
	// ErrBadPattern: a channel pattern is not well formed.
	ErrBadPattern = errors.New("auth: bad channel pattern")
	// ErrBadKey: key material (a Key, a secret file, a JWKS entry) cannot
	// be used for verification.
	ErrBadKey = errors.New("auth: bad key")
	// ErrBadConfig: a Config does not validate.
	ErrBadConfig = errors.New("auth: bad config")
)

// HandshakeCode maps an error from Extract or Verify to the handshake refusal
// code the gateway answers with: proto.HandshakeMissingToken,
// proto.HandshakeTokenExpired, or proto.HandshakeInvalidToken for any other
// error. It returns "" for a nil error.
func HandshakeCode(err error) proto.HandshakeCode {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrMissingToken):
		return proto.HandshakeMissingToken
	case errors.Is(err, ErrTokenExpired):
		return proto.HandshakeTokenExpired
	}
	return proto.HandshakeInvalidToken
}

// reasonError is ErrInvalidToken (or another sentinel) with a short, fixed
// reason. The reason never quotes the token.
type reasonError struct {
	sentinel error
	reason   string
}

func (e *reasonError) Error() string { return e.sentinel.Error() + ": " + e.reason }
func (e *reasonError) Unwrap() error { return e.sentinel }

// invalid returns ErrInvalidToken with reason.
func invalid(reason string) error { return &reasonError{sentinel: ErrInvalidToken, reason: reason} }
