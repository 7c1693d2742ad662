package client

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/tickgate/tickgate/proto"
)

// backoff is exponential backoff with full jitter: the n-th wait in a row
// is uniform in [0, min(max, min·2ⁿ)).
type backoff struct {
	min, max time.Duration
	attempt  int
	rand     func() float64 // in [0, 1)
}

func (b *backoff) next() time.Duration {
	ceil := b.max
	if b.attempt < 32 {
		if c := b.min << b.attempt; c > 0 && c < b.max {
			ceil = c
		}
	}
	b.attempt++
	return time.Duration(b.rand() * float64(ceil))
}

func (b *backoff) reset() { b.attempt = 0 }

// stableAfter is how long a connection must have lasted for the backoff
// to start over: a node that accepts and at once drops the connection is
// retried ever more slowly, not in a hot loop.
const stableAfter = 5 * time.Second

// drainSpread is the most the client adds to the node's own spread of its
// drain closes (docs/protocol.md §4.3, reconnect): the node already closes
// its connections at random moments within within_ms.
const drainSpread = time.Second

// ended describes how an attempt or a connection ended, for the policy.
type ended struct {
	err      error
	lived    time.Duration // how long the connection was up; 0 for a failed attempt
	withinMS int64         // the reconnect notice's within_ms, 0 without one
}

// reconnectDelay is the wait before the next attempt, by what ended the
// last one (docs/protocol.md §7.3):
//
//   - 1001 (drain, with or without a reconnect notice): promptly, after a
//     random part of up to 1 s (no more than within_ms); the backoff
//     starts over. Then 503 draining from the same node waits its
//     Retry-After like a 429 does. After a connection shorter than
//     stableAfter, the backoff instead (a node that keeps closing soon
//     after the welcome).
//   - 4001 (token expired): promptly; the next attempt calls the
//     TokenSource first, as every attempt does. After a connection
//     shorter than stableAfter, the backoff (tokens that expire a moment
//     after they are issued).
//   - 4008 (slow consumer): SlowConsumerDelay plus the backoff.
//   - 1008, 1002, 1007, 1009, 4003: the client or its token is at fault;
//     never hot: between BackoffMax/2 and BackoffMax.
//   - HTTP 429 or 503 with Retry-After: that long plus up to half as much
//     again; without one, the backoff, at least 1 s.
//   - HTTP 401, 403, 400, 404, 426 and TLS certificate errors: retrying
//     cannot help until something changes outside: BackoffMax/2..BackoffMax.
//   - anything else (refused, reset, timeouts, a close without a frame):
//     the backoff, which starts over after a connection that lasted.
func reconnectDelay(e ended, b *backoff, o *Options) time.Duration {
	if e.lived >= stableAfter {
		b.reset()
	}
	rnd := b.rand
	short := e.lived > 0 && e.lived < stableAfter // a connection, not one that lasted
	slow := func() time.Duration { return o.BackoffMax/2 + time.Duration(rnd()*float64(o.BackoffMax/2)) }
	var ce *CloseError
	if errors.As(e.err, &ce) {
		switch ce.Code {
		case proto.CloseGoingAway:
			spread := drainSpread
			if e.withinMS > 0 {
				spread = min(spread, time.Duration(e.withinMS)*time.Millisecond)
			}
			prompt := time.Duration(rnd() * float64(spread))
			if short {
				// A node (or proxy) that keeps closing soon after the
				// welcome: the backoff goes on rather than starting over.
				return max(prompt, b.next())
			}
			b.reset()
			return prompt
		case proto.CloseTokenExpired:
			if short {
				// Tokens that expire a moment after the welcome: not a
				// constant sub-second rejoin either.
				return b.next()
			}
			return time.Duration(rnd() * float64(o.BackoffMin))
		case proto.CloseSlowConsumer:
			return o.SlowConsumerDelay + b.next()
		case proto.ClosePolicy, proto.CloseTooBig, closeProtocolError, closeBadData, closeRevoked:
			b.next()
			return slow()
		}
		return b.next()
	}
	var he *HandshakeError
	if errors.As(e.err, &he) {
		switch {
		case he.StatusCode == http.StatusTooManyRequests || he.StatusCode == http.StatusServiceUnavailable:
			d := b.next()
			if he.RetryAfter > 0 {
				return he.RetryAfter + time.Duration(rnd()*float64(he.RetryAfter/2))
			}
			return max(d, time.Second)
		case he.permanent():
			b.next()
			return slow()
		}
		return b.next()
	}
	if permanentTLS(e.err) {
		b.next()
		return slow()
	}
	return b.next()
}

// permanentTLS reports a certificate the client refuses: trying again
// cannot help.
func permanentTLS(err error) bool {
	var (
		cv *tls.CertificateVerificationError
		ua x509.UnknownAuthorityError
		hn x509.HostnameError
		ci x509.CertificateInvalidError
	)
	return errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &hn) || errors.As(err, &ci)
}

// permanent reports an error of the first connection that Dial returns
// at once rather than retrying: one that retrying cannot fix.
func permanent(err error) bool {
	var he *HandshakeError
	if errors.As(err, &he) {
		return he.permanent()
	}
	return permanentTLS(err) || errors.Is(err, ErrConfig)
}

// jitter returns a uniform float64 in [0, 1); math/rand/v2's top-level
// functions are safe for concurrent use.
func jitter() float64 { return rand.Float64() }

// permanent reports whether retrying the same handshake cannot help until
// something outside the client changes (a token, a configuration).
func (e *HandshakeError) permanent() bool {
	switch e.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusBadRequest, http.StatusNotFound,
		http.StatusUpgradeRequired, http.StatusRequestHeaderFieldsTooLarge:
		return true
	}
	return false
}
