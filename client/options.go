package client

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/tickgate/tickgate/codec"
)

// Options configure a Client. Every field but TokenSource has a zero value
// that works, named in its comment.
type Options struct {
	// TokenSource returns the token (a JWT) to connect with. It is called
	// before every connection attempt and before the token's expiry, to
	// refresh it on the open connection (the auth op). Return the same
	// token when you have no fresher one: the client then reconnects at
	// expiry, calling it again. Required.
	TokenSource func(ctx context.Context) (string, error)
	// Codec is the wire codec: codec.JSON() or codec.Msgpack(). Zero: JSON.
	Codec codec.Codec
	// TLS configures wss:// connections (roots, client certificates). It is
	// cloned per connection. Zero: the system's roots.
	TLS *tls.Config
	// TokenInSubprotocol sends the token as a "bearer.<jwt>" subprotocol
	// entry, as browsers must, instead of the Authorization header. Zero:
	// the header.
	TokenInSubprotocol bool
	// Header holds extra handshake request headers (an Origin, say).
	// Zero: none.
	Header http.Header
	// OnEvent receives every event, in order per channel, on one goroutine
	// of the client's; it never runs on the socket's read loop, which a
	// slow handler therefore cannot stall (see the package doc for what
	// happens while it is behind). Zero: events are not delivered; read
	// the state with Client.Book, Client.Ticker and Client.State.
	OnEvent func(Event)
	// MaxPending bounds the events waiting for OnEvent. Book and ticker
	// events fold into one per channel and never count beyond that;
	// trades beyond it are dropped and reported as a gap. Zero: 16384.
	MaxPending int
	// BackoffMin and BackoffMax bound the reconnect backoff: the n-th
	// failed attempt in a row waits a random time (full jitter) up to
	// min(BackoffMax, BackoffMin·2ⁿ). Zero: 250 ms and 30 s.
	BackoffMin, BackoffMax time.Duration
	// SlowConsumerDelay is the least wait after the node evicted the
	// client as a slow consumer (close 4008). Zero: 5 s.
	SlowConsumerDelay time.Duration
	// HandshakeTimeout bounds one connection attempt: the token, TCP, TLS,
	// the upgrade and the welcome message. Zero: 10 s.
	HandshakeTimeout time.Duration
	// ReadTimeout ends a connection from which nothing (not even a ping)
	// came for that long. Zero: twice the node's heartbeat_ms plus 5 s.
	ReadTimeout time.Duration
	// Dialer opens the TCP connection. Zero: a net.Dialer.
	Dialer func(ctx context.Context, network, addr string) (net.Conn, error)
	// Logger receives the client's logs; tokens never reach it. Zero:
	// discard.
	Logger *slog.Logger
	// Now is the clock used to schedule token refreshes. Zero: time.Now.
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.Codec == nil {
		o.Codec = codec.JSON()
	}
	if o.MaxPending == 0 {
		o.MaxPending = 16384
	}
	if o.BackoffMin == 0 {
		o.BackoffMin = 250 * time.Millisecond
	}
	if o.BackoffMax == 0 {
		o.BackoffMax = 30 * time.Second
	}
	if o.SlowConsumerDelay == 0 {
		o.SlowConsumerDelay = 5 * time.Second
	}
	if o.HandshakeTimeout == 0 {
		o.HandshakeTimeout = 10 * time.Second
	}
	if o.Dialer == nil {
		o.Dialer = (&net.Dialer{}).DialContext
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Validate checks options after defaults.
func (o Options) Validate() error {
	switch {
	case o.TokenSource == nil:
		return fmt.Errorf("%w: TokenSource is required", ErrConfig)
	case o.MaxPending < 0:
		return fmt.Errorf("%w: MaxPending %d", ErrConfig, o.MaxPending)
	case o.BackoffMin < 0 || o.BackoffMax < o.BackoffMin:
		return fmt.Errorf("%w: BackoffMin %v, BackoffMax %v", ErrConfig, o.BackoffMin, o.BackoffMax)
	case o.SlowConsumerDelay < 0 || o.HandshakeTimeout < 0 || o.ReadTimeout < 0:
		return fmt.Errorf("%w: negative duration", ErrConfig)
	}
	return nil
}

// subOptions are a subscription's options; comparable, so that channels
// with the same options re-subscribe in one command.
type subOptions struct {
	throttleMS int64
	noSnapshot bool
	depth      int
	recent     int
	bars       int
}

// barLimit is how many bars a candle channel keeps: what the snapshot
// brings (the bars option, 100 by default as on the node).
func (o subOptions) barLimit() int {
	if o.bars > 0 {
		return o.bars
	}
	return defaultBars
}

// defaultBars is the node's default of the bars option (docs/protocol.md,
// candle channels).
const defaultBars = 100

// SubscribeOption is an optional argument of Subscribe.
type SubscribeOption func(*subOptions) error

// CheckOption reports the error that Subscribe would return for o (an
// ErrConfig), for a caller that validates its configuration up front.
func CheckOption(o SubscribeOption) error { return o(new(subOptions)) }

// Throttle caps the updates per channel to one per d (throttle_ms, 0 to
// 60 s); the node folds what comes in between by the channel's rule.
// Trade channels are never throttled.
func Throttle(d time.Duration) SubscribeOption {
	return func(o *subOptions) error {
		if d < 0 || d > time.Minute {
			return fmt.Errorf("%w: throttle %v is outside 0..60s", ErrConfig, d)
		}
		o.throttleMS = d.Milliseconds()
		return nil
	}
}

// Snapshot(false) asks for no snapshot: updates only, the first with prev
// 0. On a book channel the client then checks the chain but has no book to
// check checksums on, and events carry Delta but no Book. The default is
// true.
func Snapshot(want bool) SubscribeOption {
	return func(o *subOptions) error {
		o.noSnapshot = !want
		return nil
	}
}

// Depth (contract 1.1) asks a book channel for its best n levels per side
// only: 10, 25, 100, 500 or 1000. A node without the "depth" feature
// ignores it and sends the whole book; the checksum covers the top 10
// either way.
func Depth(n int) SubscribeOption {
	return func(o *subOptions) error {
		switch n {
		case 10, 25, 100, 500, 1000:
			o.depth = n
			return nil
		}
		return fmt.Errorf("%w: depth %d is not 10, 25, 100, 500 or 1000", ErrConfig, n)
	}
}

// Recent (contract 1.1) asks a trade channel for up to n (at most 1000)
// recent trades first, as a snapshot event. A node without the "recent"
// feature ignores it.
func Recent(n int) SubscribeOption {
	return func(o *subOptions) error {
		if n < 0 || n > 1000 {
			return fmt.Errorf("%w: recent %d is outside 0..1000", ErrConfig, n)
		}
		o.recent = n
		return nil
	}
}

// Bars (contract 1.1) asks a candle channel for up to n (1 to 1000) bars
// in its snapshot; the default is 100. The client keeps as many, and
// Client.Candles returns them.
func Bars(n int) SubscribeOption {
	return func(o *subOptions) error {
		if n < 1 || n > 1000 {
			return fmt.Errorf("%w: bars %d is outside 1..1000", ErrConfig, n)
		}
		o.bars = n
		return nil
	}
}
