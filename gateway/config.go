package gateway

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"runtime"
	"time"

	"github.com/tickgate/tickgate/feed"
)

// ErrConfig reports an invalid Config field.
var ErrConfig = errors.New("gateway: invalid config")

// Defaults of Config, named once here: withDefaults applies them, and the
// command line shows them as its flags' defaults.
const (
	DefaultHeartbeatInterval          = 15 * time.Second
	DefaultMaxMessageBytes            = 16 << 10
	DefaultMaxSubscriptions           = 1000
	DefaultMaxSubscriptionsPerSubject = 10000
	DefaultSnapshotRate               = 1 << 20
	DefaultSnapshotBurst              = 16 << 20
	DefaultWriteTimeout               = 5 * time.Second
	DefaultSendQueueLimit             = 1024
	DefaultTradeBufferMessages        = 4096
	DefaultTradeBufferBytes           = 4 << 20
	DefaultSocketSendBuffer           = 256 << 10
	DefaultSubscribeTimeout           = 5 * time.Second
	DefaultStaleAfter                 = 10 * time.Second
	DefaultSubscribeRetry             = 2 * time.Second
	DefaultHandshakeTimeout           = 5 * time.Second
	DefaultMaxHeaderBytes             = 16 << 10
	DefaultMaxConnsPerIP              = 256
	DefaultMaxConnsPerSubject         = 64
	DefaultHandshakeRate              = 1000
	DefaultCommandRate                = 20
	DefaultCommandBurst               = 50
	DefaultMaxStrikes                 = 20
	DefaultDrainWithin                = 5 * time.Second
	DefaultHistoryLen                 = feed.DefaultHistoryLen
	DefaultCandleBars                 = feed.DefaultCandleBars
	DefaultRevocationTTL              = 24 * time.Hour
	DefaultRESTLinger                 = 30 * time.Second
)

// Bounds of Config that Validate checks beyond "above zero".
const (
	MinMessageBytes     = 256
	MinTradeBufferBytes = 4096
	MaxTradeBufferBytes = 1 << 30 // a subscription counts its trade bytes in 32 bits
	MinHeaderBytes      = 1024
	MinRevocationTTL    = time.Minute
)

// Config tunes a Server. Every field's zero value is a safe default, named
// in its comment; withDefaults fills them and Validate checks the result.
type Config struct {
	// NodeID names this node in welcome messages and logs. Zero: the
	// hostname, or "tickgate" when it cannot be read.
	NodeID string
	// TLS serves wss:// with this configuration. Nil serves plain ws://,
	// which the command line allows only when switched on explicitly.
	TLS *tls.Config
	// AllowedOrigins, when non-empty, lists the exact origins (scheme,
	// host, port) a request carrying an Origin header must match. Zero:
	// any origin (tokens are bearer credentials, not cookies).
	AllowedOrigins []string
	// AllowQueryToken accepts the token in the access_token query
	// parameter (BearerAuth). Zero: off, since URLs end up in logs.
	AllowQueryToken bool
	// Authenticator authenticates clients: the handshake, the auth
	// command, REST snapshots. Zero: JWT bearer tokens checked by the
	// verifier given to New (BearerAuth).
	Authenticator Authenticator
	// HeartbeatInterval is heartbeat_ms: a heartbeat message (and a
	// WebSocket ping) goes out when nothing else was sent for this long
	// (up to a sixteenth later: the node's sweep looks that often).
	// Zero: 15s.
	HeartbeatInterval time.Duration
	// IdleTimeout evicts (4008) a connection from which no frame (message,
	// ping, pong) arrived for this long; the node pings at least every
	// HeartbeatInterval, so a live client always has something to answer.
	// Zero: 2×HeartbeatInterval + 5s.
	IdleTimeout time.Duration
	// MaxMessageBytes caps a client message; a larger one closes the
	// connection with 1009. Zero: 16 KiB.
	MaxMessageBytes int
	// Compression negotiates permessage-deflate (RFC 7692, no context
	// takeover either way) with clients that offer it: their frames are
	// sent compressed, each shared frame compressed once (deflate.go).
	// A compressed client message is limited to MaxMessageBytes once
	// inflated. Zero: off, the extension is never negotiated.
	Compression bool
	// MaxSubscriptions caps channels per connection. Zero: 1000.
	MaxSubscriptions int
	// MaxSubscriptionsPerSubject caps the subscriptions of one token sub
	// over all its connections on this node; more get
	// too_many_subscriptions. Zero: 10000; negative: no limit.
	MaxSubscriptionsPerSubject int
	// SnapshotRate and SnapshotBurst bound the snapshot and resume-replay
	// bytes one connection may ask for: SnapshotRate bytes per second, up
	// to SnapshotBurst at once. A subscribe that wants one while the
	// connection is over it gets rate_limited (and a strike). Zero: 1 MiB
	// per second, burst 16 MiB.
	SnapshotRate  int
	SnapshotBurst int
	// WriteTimeout is the slow-consumer timeout of a socket: a write that
	// makes no progress for this long (up to a quarter more: the deadline
	// is moved only when less than this is left) evicts the connection.
	// Zero: 5s.
	WriteTimeout time.Duration
	// LagTimeout is the slow-consumer timeout of a client: one that has
	// left a ping sent after data unanswered this long stopped reading or
	// is that far behind, and is evicted with 4008. Pings go four times
	// per LagTimeout while data flows, so a client that stops reading is
	// evicted within about 1.25 times this. Longer than
	// WriteTimeout, so that a client (or this node) busy for a moment is
	// not taken for a stalled one. Zero: 2×WriteTimeout.
	LagTimeout time.Duration
	// SendQueueLimit caps replies and control frames waiting for one
	// connection's writer (market data is bounded per channel instead); a
	// connection that overflows it is evicted with 4008. Zero: 1024.
	SendQueueLimit int
	// TradeBufferMessages caps the trades pending for one subscription
	// while its writer is behind; trades are never dropped or merged, so
	// a connection that overflows it is evicted with 4008. Zero: 4096.
	TradeBufferMessages int
	// TradeBufferBytes caps the encoded size of those trades. Zero: 4 MiB.
	TradeBufferBytes int
	// SocketSendBuffer sets each connection's kernel send buffer
	// (SO_SNDBUF). Left to the kernel, Linux grows it to tcp_wmem's max
	// (4 MiB by default) per connection: memory outside the Go heap, and a
	// stuck write then times out only after that much has piled up. Zero:
	// 256 KiB; negative: leave it to the kernel.
	SocketSendBuffer int
	// SubscribeTimeout bounds how long a subscribe waits for the NATS
	// server to confirm interest in a new channel (the connection's other
	// commands go on meanwhile); beyond it the channel gets unavailable.
	// Zero: 5s.
	SubscribeTimeout time.Duration
	// StaleAfter marks a channel stale (feed_silent) to its subscribers
	// when nothing, not even a publisher heartbeat, arrived on it for this
	// long. Zero: 10s; negative: never.
	StaleAfter time.Duration
	// SubscribeRetry is the retry_ms of an unavailable error, plus a random
	// part of up to as much again, so that a node's clients do not come
	// back in one herd. Zero: 2s.
	SubscribeRetry time.Duration
	// HandshakeTimeout bounds reading the HTTP request headers and
	// writing the upgrade response. Zero: 5s.
	HandshakeTimeout time.Duration
	// MaxHeaderBytes caps the HTTP request headers. Zero: 16 KiB.
	MaxHeaderBytes int
	// TLSHandshakes bounds the TLS handshakes under way at once; further
	// connections wait in the kernel's accept queue (accept.go: a
	// reconnect storm must not drown the node in handshakes nobody waits
	// for). Zero: 64 × GOMAXPROCS.
	TLSHandshakes int
	// MaxConnsPerIP caps open connections per client address (see
	// TrustedProxies); more get 429 too_many_connections. Zero: 256;
	// negative: no limit.
	MaxConnsPerIP int
	// MaxConnsPerSubject caps open connections per token sub. Zero: 64;
	// negative: no limit.
	MaxConnsPerSubject int
	// HandshakeRate paces new connections node-wide (per second), against
	// reconnect storms; beyond it a handshake gets 429 with Retry-After.
	// Zero: 1000.
	HandshakeRate float64
	// HandshakeBurst is how many handshakes may arrive at once above the
	// rate. Zero: 2×HandshakeRate.
	HandshakeBurst int
	// TrustedProxies are the load balancers whose X-Forwarded-For names
	// the client address that MaxConnsPerIP counts. Zero: none, the peer
	// address counts.
	TrustedProxies []netip.Prefix
	// CommandRate and CommandBurst pace each connection's commands and
	// its WebSocket pings (each kind on its own). Excess commands get
	// rate_limited; excess pings get no pong. Zero: 20 per second, burst
	// 50.
	CommandRate  float64
	CommandBurst int
	// MaxStrikes is how many rate-limited or bad commands (and excess
	// pings) in a row a connection may send before it is closed with 1008;
	// one is forgiven every 10 s. Zero: 20.
	MaxStrikes int
	// DrainWithin is the within_ms of the reconnect notice on drain: each
	// connection is closed with 1001 at a random moment within it.
	// Zero: 5s.
	DrainWithin time.Duration
	// HistoryLen is how many events per channel the node keeps for resume.
	// Zero: 1024.
	HistoryLen int
	// RESTLinger is how long the node keeps receiving a channel after the
	// last REST snapshot of it, so that the requests that follow are
	// answered from its state (and its encoded body) rather than from a
	// cold channel. Zero: 30s.
	RESTLinger time.Duration
	// CandleBars is how many bars a candle channel keeps for snapshots
	// (a subscriber's bars option is served up to it). Zero: 1000.
	CandleBars int
	// Fallback serves every path of the public listener but the WebSocket
	// endpoint (the dashboard of `tickgate dev`, `serve --dashboard`), on
	// the gateway's own HTTP server with its limits. Zero: 404.
	Fallback http.Handler
	// History is where the node reads what its memory no longer holds, to
	// resume a client on any node (feed.History over a JetStream stream).
	// Zero: memory only.
	History History
	// Revocations carries revocations between the nodes of the deployment
	// (feed.Control: a NATS subject and a JetStream bucket). Zero: a
	// revocation made on this node holds on this node only, and the node
	// learns of none made elsewhere.
	Revocations RevocationBus
	// RevocationTTL is how long a revocation holds after the later of
	// when it was made and its cut-off: the longest lifetime of a token,
	// after which every token it refuses has expired. Zero: 24h.
	RevocationTTL time.Duration
	// Metrics receives the gateway's series. Zero: NewMetrics(nil), a
	// registry nobody scrapes.
	Metrics *Metrics
	// Logger receives structured logs; tokens never reach it. Zero:
	// discard.
	Logger *slog.Logger
	// Now is the clock. Zero: time.Now.
	Now func() time.Time

	// noParking keeps every read loop waiting in the runtime's poller
	// (park.go): the tests' and benchmarks' way to compare.
	noParking bool
}

func (c Config) withDefaults() Config {
	if c.NodeID == "" {
		if h, err := os.Hostname(); err == nil && h != "" {
			c.NodeID = h
		} else {
			c.NodeID = "tickgate"
		}
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 2*c.HeartbeatInterval + 5*time.Second
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if c.MaxSubscriptions == 0 {
		c.MaxSubscriptions = DefaultMaxSubscriptions
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.LagTimeout == 0 {
		c.LagTimeout = 2 * c.WriteTimeout
	}
	if c.SendQueueLimit == 0 {
		c.SendQueueLimit = DefaultSendQueueLimit
	}
	if c.TradeBufferMessages == 0 {
		c.TradeBufferMessages = DefaultTradeBufferMessages
	}
	if c.TradeBufferBytes == 0 {
		c.TradeBufferBytes = DefaultTradeBufferBytes
	}
	if c.SocketSendBuffer == 0 {
		c.SocketSendBuffer = DefaultSocketSendBuffer
	}
	if c.SubscribeTimeout == 0 {
		c.SubscribeTimeout = DefaultSubscribeTimeout
	}
	if c.StaleAfter == 0 {
		c.StaleAfter = DefaultStaleAfter
	}
	if c.SubscribeRetry == 0 {
		c.SubscribeRetry = DefaultSubscribeRetry
	}
	if c.MaxSubscriptionsPerSubject == 0 {
		c.MaxSubscriptionsPerSubject = DefaultMaxSubscriptionsPerSubject
	}
	if c.SnapshotRate == 0 {
		c.SnapshotRate = DefaultSnapshotRate
	}
	if c.SnapshotBurst == 0 {
		c.SnapshotBurst = DefaultSnapshotBurst
	}
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if c.MaxHeaderBytes == 0 {
		c.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if c.TLSHandshakes == 0 {
		c.TLSHandshakes = 64 * runtime.GOMAXPROCS(0)
	}
	if c.MaxConnsPerIP == 0 {
		c.MaxConnsPerIP = DefaultMaxConnsPerIP
	}
	if c.MaxConnsPerSubject == 0 {
		c.MaxConnsPerSubject = DefaultMaxConnsPerSubject
	}
	if c.HandshakeRate == 0 {
		c.HandshakeRate = DefaultHandshakeRate
	}
	if c.HandshakeBurst == 0 {
		c.HandshakeBurst = int(2 * c.HandshakeRate)
	}
	if c.CommandRate == 0 {
		c.CommandRate = DefaultCommandRate
	}
	if c.CommandBurst == 0 {
		c.CommandBurst = DefaultCommandBurst
	}
	if c.MaxStrikes == 0 {
		c.MaxStrikes = DefaultMaxStrikes
	}
	if c.DrainWithin == 0 {
		c.DrainWithin = DefaultDrainWithin
	}
	if c.HistoryLen == 0 {
		c.HistoryLen = DefaultHistoryLen
	}
	if c.RESTLinger == 0 {
		c.RESTLinger = DefaultRESTLinger
	}
	if c.CandleBars == 0 {
		c.CandleBars = DefaultCandleBars
	}
	if c.RevocationTTL == 0 {
		c.RevocationTTL = DefaultRevocationTTL
	}
	if c.Metrics == nil {
		c.Metrics = NewMetrics(nil)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate reports the first invalid field, by name.
func (c Config) Validate() error {
	positive := []struct {
		name string
		ok   bool
	}{
		{"HeartbeatInterval", c.HeartbeatInterval > 0},
		{"IdleTimeout", c.IdleTimeout > c.HeartbeatInterval},
		{"MaxMessageBytes", c.MaxMessageBytes >= MinMessageBytes},
		{"MaxSubscriptions", c.MaxSubscriptions > 0},
		{"WriteTimeout", c.WriteTimeout > 0},
		{"LagTimeout", c.LagTimeout > 0},
		{"SendQueueLimit", c.SendQueueLimit > 0},
		{"TradeBufferMessages", c.TradeBufferMessages > 0},
		{"TradeBufferBytes", c.TradeBufferBytes >= MinTradeBufferBytes && c.TradeBufferBytes <= MaxTradeBufferBytes},
		{"SubscribeTimeout", c.SubscribeTimeout > 0},
		{"SubscribeRetry", c.SubscribeRetry > 0},
		{"SnapshotRate", c.SnapshotRate > 0},
		{"SnapshotBurst", c.SnapshotBurst > 0},
		{"HandshakeTimeout", c.HandshakeTimeout > 0},
		{"MaxHeaderBytes", c.MaxHeaderBytes >= MinHeaderBytes},
		{"TLSHandshakes", c.TLSHandshakes > 0},
		{"HistoryLen", c.HistoryLen > 0},
		{"CandleBars", c.CandleBars > 0},
		{"RESTLinger", c.RESTLinger > 0},
		{"DrainWithin", c.DrainWithin > 0},
		{"HandshakeRate", c.HandshakeRate > 0},
		{"HandshakeBurst", c.HandshakeBurst >= 1},
		{"CommandRate", c.CommandRate > 0},
		{"CommandBurst", c.CommandBurst >= 1},
		{"MaxStrikes", c.MaxStrikes >= 1},
		{"RevocationTTL", c.RevocationTTL >= MinRevocationTTL},
	}
	for _, p := range positive {
		if !p.ok {
			return fmt.Errorf("%w: %s out of range", ErrConfig, p.name)
		}
	}
	for _, o := range c.AllowedOrigins {
		if err := ValidOrigin(o); err != nil {
			return fmt.Errorf("%w: AllowedOrigins: %v", ErrConfig, err)
		}
	}
	return nil
}

// ValidOrigin accepts an allowed origin: scheme://host[:port] with nothing
// after it.
func ValidOrigin(o string) error {
	u, err := url.Parse(o)
	if err != nil || u.Scheme == "" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return fmt.Errorf("%q is not scheme://host[:port]", o)
	}
	return nil
}
