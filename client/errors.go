package client

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/tickgate/tickgate/proto"
)

// Sentinel errors. A *ServerError, *HandshakeError or *CloseError matches
// the sentinel of its code with errors.Is.
var (
	// ErrClosed: the client was closed.
	ErrClosed = errors.New("client: closed")
	// ErrConfig: Options or a subscribe option is invalid.
	ErrConfig = errors.New("client: invalid options")

	// Command errors (docs/protocol.md §7.1).
	ErrBadRequest           = errors.New("client: bad request")
	ErrUnknownOp            = errors.New("client: unknown op")
	ErrForbidden            = errors.New("client: forbidden")
	ErrBadChannel           = errors.New("client: bad channel")
	ErrTooManySubscriptions = errors.New("client: too many subscriptions")
	ErrRateLimited          = errors.New("client: rate limited")
	ErrInvalidToken         = errors.New("client: invalid token")
	ErrHistoryUnavailable   = errors.New("client: history unavailable")
	ErrUnavailable          = errors.New("client: channel unavailable")

	// Handshake refusals (docs/protocol.md §2.5), besides ErrInvalidToken
	// (401 missing_token and invalid_token).
	ErrTokenExpired       = errors.New("client: token expired")
	ErrOriginNotAllowed   = errors.New("client: origin not allowed")
	ErrBadSubprotocol     = errors.New("client: bad subprotocol")
	ErrTooManyConnections = errors.New("client: too many connections")
	ErrDraining           = errors.New("client: node draining")

	// Close codes (docs/protocol.md §7.2), besides ErrDraining (1001) and
	// ErrTokenExpired (4001).
	ErrSlowConsumer = errors.New("client: evicted as a slow consumer")
	ErrPolicy       = errors.New("client: closed by policy")
	ErrProtocol     = errors.New("client: protocol error")
)

var codeErrors = map[proto.ErrorCode]error{
	proto.CodeBadRequest:           ErrBadRequest,
	proto.CodeUnknownOp:            ErrUnknownOp,
	proto.CodeForbidden:            ErrForbidden,
	proto.CodeBadChannel:           ErrBadChannel,
	proto.CodeTooManySubscriptions: ErrTooManySubscriptions,
	proto.CodeRateLimited:          ErrRateLimited,
	proto.CodeInvalidToken:         ErrInvalidToken,
	proto.CodeHistoryUnavailable:   ErrHistoryUnavailable,
	proto.CodeUnavailable:          ErrUnavailable,
}

// ServerError is an error message of the node answering a command. It
// never closes the connection.
type ServerError struct {
	Code    proto.ErrorCode
	Message string
	// Channel is the channel the error is about, "" for the whole command.
	Channel string
	// RetryAfter, with ErrUnavailable, is the node's retry_ms: when trying
	// again makes sense.
	RetryAfter time.Duration
}

func (e *ServerError) Error() string {
	s := "client: node says " + string(e.Code)
	if e.Channel != "" {
		s += " for " + e.Channel
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.RetryAfter > 0 {
		s += " (retry after " + e.RetryAfter.String() + ")"
	}
	return s
}

// Unwrap returns the sentinel of the code (nil for a code the client does
// not know).
func (e *ServerError) Unwrap() error { return codeErrors[e.Code] }

var handshakeErrors = map[proto.HandshakeCode]error{
	proto.HandshakeMissingToken:       ErrInvalidToken,
	proto.HandshakeInvalidToken:       ErrInvalidToken,
	proto.HandshakeTokenExpired:       ErrTokenExpired,
	proto.HandshakeOriginNotAllowed:   ErrOriginNotAllowed,
	proto.HandshakeBadSubprotocol:     ErrBadSubprotocol,
	proto.HandshakeTooManyConnections: ErrTooManyConnections,
	proto.HandshakeDraining:           ErrDraining,
}

// HandshakeError is a refused WebSocket handshake: an HTTP answer other
// than 101, with the node's JSON body when it sent one.
type HandshakeError struct {
	StatusCode int
	Code       proto.HandshakeCode // "" when the body named none
	Message    string
	// RetryAfter is the Retry-After header (429, 503), 0 when absent.
	RetryAfter time.Duration
}

func (e *HandshakeError) Error() string {
	s := "client: handshake refused: HTTP " + strconv.Itoa(e.StatusCode)
	if e.Code != "" {
		s += " " + string(e.Code)
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Unwrap returns the sentinel of the code, or of the status when the body
// named no code.
func (e *HandshakeError) Unwrap() error {
	if err, ok := handshakeErrors[e.Code]; ok {
		return err
	}
	switch e.StatusCode {
	case http.StatusUnauthorized:
		return ErrInvalidToken
	case http.StatusTooManyRequests:
		return ErrTooManyConnections
	case http.StatusServiceUnavailable:
		return ErrDraining
	}
	return nil
}

// CloseError is the end of a connection by a close frame from the node.
type CloseError struct {
	Code   proto.CloseCode
	Reason string
}

func (e *CloseError) Error() string {
	return fmt.Sprintf("client: connection closed by the node: %d %s", e.Code, e.Reason)
}

// Unwrap returns the sentinel of the close code.
func (e *CloseError) Unwrap() error {
	switch e.Code {
	case proto.CloseGoingAway:
		return ErrDraining
	case proto.CloseTokenExpired:
		return ErrTokenExpired
	case proto.CloseSlowConsumer:
		return ErrSlowConsumer
	case proto.ClosePolicy, closeRevoked:
		return ErrPolicy
	case closeProtocolError, closeBadData, proto.CloseTooBig:
		return ErrProtocol
	}
	return nil
}

// Close codes the client reads beyond proto's.
const (
	closeProtocolError proto.CloseCode = 1002
	closeBadData       proto.CloseCode = 1007
	closeRevoked       proto.CloseCode = 4003 // contract 1.1 §12
)
