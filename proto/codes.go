package proto

import (
	"net/http"
	"strconv"
	"strings"
)

// ErrorCode is the code of an error message answering a command.
type ErrorCode string

// Error codes of docs/protocol.md §7.1.
const (
	CodeBadRequest           ErrorCode = "bad_request"
	CodeUnknownOp            ErrorCode = "unknown_op"
	CodeForbidden            ErrorCode = "forbidden"
	CodeBadChannel           ErrorCode = "bad_channel"
	CodeTooManySubscriptions ErrorCode = "too_many_subscriptions"
	CodeRateLimited          ErrorCode = "rate_limited"
	CodeInvalidToken         ErrorCode = "invalid_token"
	CodeHistoryUnavailable   ErrorCode = "history_unavailable"
	// CodeUnavailable (contract 1.1): the command needs the feed (NATS)
	// and the node cannot reach it now; the error carries retry_ms.
	CodeUnavailable ErrorCode = "unavailable"
)

// ErrorCodes lists every error code, for metrics that start each labelled
// series at zero.
func ErrorCodes() []ErrorCode {
	return []ErrorCode{
		CodeBadRequest, CodeUnknownOp, CodeForbidden, CodeBadChannel, CodeTooManySubscriptions,
		CodeRateLimited, CodeInvalidToken, CodeHistoryUnavailable, CodeUnavailable,
	}
}

// HandshakeCode is the error code of a refused WebSocket handshake, sent in
// the JSON body {"error": code, "message": text} before any upgrade.
type HandshakeCode string

// Handshake refusal codes of docs/protocol.md §2.5.
const (
	HandshakeMissingToken       HandshakeCode = "missing_token"
	HandshakeInvalidToken       HandshakeCode = "invalid_token"
	HandshakeTokenExpired       HandshakeCode = "token_expired"
	HandshakeOriginNotAllowed   HandshakeCode = "origin_not_allowed"
	HandshakeBadSubprotocol     HandshakeCode = "bad_subprotocol"
	HandshakeTooManyConnections HandshakeCode = "too_many_connections"
	HandshakeDraining           HandshakeCode = "draining"
	// HandshakeTokenRevoked (docs/operations.md, "Revocation"): the token's sub was revoked
	// for tokens issued before a cut-off, and this one was (or has no iat).
	HandshakeTokenRevoked HandshakeCode = "token_revoked"
)

// HandshakeCodes lists every handshake refusal code, for metrics that start
// each labelled series at zero.
func HandshakeCodes() []HandshakeCode {
	return []HandshakeCode{
		HandshakeMissingToken, HandshakeInvalidToken, HandshakeTokenExpired,
		HandshakeOriginNotAllowed, HandshakeBadSubprotocol,
		HandshakeTooManyConnections, HandshakeDraining, HandshakeTokenRevoked,
	}
}

// HTTPStatus returns the HTTP status that carries the code.
func (c HandshakeCode) HTTPStatus() int {
	switch c {
	case HandshakeMissingToken, HandshakeInvalidToken, HandshakeTokenExpired, HandshakeTokenRevoked:
		return http.StatusUnauthorized
	case HandshakeOriginNotAllowed:
		return http.StatusForbidden
	case HandshakeBadSubprotocol:
		return http.StatusBadRequest
	case HandshakeTooManyConnections:
		return http.StatusTooManyRequests
	case HandshakeDraining:
		return http.StatusServiceUnavailable
	}
	return http.StatusBadRequest
}

// HandshakeError is the JSON body of a refused handshake.
type HandshakeError struct {
	Error   HandshakeCode `json:"error"`
	Message string        `json:"message"`
}

// CloseCode is a WebSocket close code that tickgate sends.
type CloseCode uint16

// Close codes of docs/protocol.md §7.2.
const (
	CloseNormal        CloseCode = 1000 // the client asked
	CloseGoingAway     CloseCode = 1001 // node shutting down, after reconnect
	ClosePolicy        CloseCode = 1008 // too many bad commands, rate abuse
	CloseTooBig        CloseCode = 1009 // client message over the limit
	CloseTokenExpired  CloseCode = 4001 // token expired and not refreshed
	CloseRevoked       CloseCode = 4003 // the subscriber's access was revoked (§12)
	CloseSlowConsumer  CloseCode = 4008 // evicted: fell too far behind
	closeReasonMaxSize           = 123  // a close frame's reason text limit
)

// Disconnect is a typed close: the code and the short reason text the close
// frame carries. It is an error so it can travel through error returns.
type Disconnect struct {
	Code   CloseCode
	Reason string
}

// Error implements error.
func (d Disconnect) Error() string {
	return "close " + strconv.Itoa(int(d.Code)) + ": " + d.Reason
}

// ReasonBytes returns the reason text cut to what a close frame can carry.
func (d Disconnect) ReasonBytes() []byte {
	r := d.Reason
	if len(r) > closeReasonMaxSize {
		r = strings.ToValidUTF8(r[:closeReasonMaxSize], "")
	}
	return []byte(r)
}

// Subprotocols and token transport.
const (
	SubprotocolJSON    = "tickgate.v1.json"
	SubprotocolMsgpack = "tickgate.v1.msgpack"
	// BearerPrefix marks a subprotocol entry that carries the JWT.
	BearerPrefix = "bearer."
)
