package proto

// Protocol version carried in welcome.
const Version = 1

// Client operations (the "op" field).
const (
	OpSubscribe   = "subscribe"
	OpUnsubscribe = "unsubscribe"
	OpAuth        = "auth"
	OpPing        = "ping"
)

// Server message types (the "type" field).
const (
	TypeWelcome       = "welcome"
	TypeSubscribed    = "subscribed"
	TypeUnsubscribed  = "unsubscribed"
	TypeError         = "error"
	TypeSnapshot      = "snapshot"
	TypeUpdate        = "update"
	TypeAuthenticated = "authenticated"
	TypePong          = "pong"
	TypeHeartbeat     = "heartbeat"
	TypeReconnect     = "reconnect"
	TypeGap           = "gap"    // contract 1.1
	TypeStatus        = "status" // contract 1.1
)

// Features (contract 1.1) a node lists in welcome when it serves them.
const (
	FeatureCandle        = "candle"         // candle channels (KindCandle)
	FeatureDepth         = "depth"          // the subscribe option depth
	FeatureRecent        = "recent"         // the subscribe option recent
	FeatureStatus        = "status"         // status messages (Status)
	FeatureRESTSnapshot  = "rest_snapshot"  // GET /v1/snapshot/<channel>
	FeatureDurableResume = "durable_resume" // resume from a history stream, on any node
)

// Bounds of the subscribe options of contract 1.1 (Command.Depth, Recent,
// Bars).
const (
	DefaultBars = 100  // candle bars in a snapshot when bars is absent
	MaxBars     = 1000 // at most this many bars
	MaxRecent   = 1000 // at most this many recent trades
)

// Depths returns the values the subscribe option depth may take, the best
// levels per side a book subscriber holds.
func Depths() []int { return []int{10, 25, 100, 500, 1000} }

// ValidDepth reports whether n is one of Depths.
func ValidDepth(n int64) bool {
	for _, d := range Depths() {
		if int64(d) == n {
			return true
		}
	}
	return false
}

// Command is every client-to-server message. Fields unused by an op are
// ignored; unknown fields are ignored too, so clients may add their own.
type Command struct {
	Op string `json:"op" msgpack:"op"`
	// ID is echoed on the reply; nil when the client sent none.
	ID *int64 `json:"id,omitempty" msgpack:"id,omitempty"`
	// Channels names the channels of subscribe and unsubscribe.
	Channels []string `json:"channels,omitempty" msgpack:"channels,omitempty"`
	// ThrottleMS caps updates per channel for a subscribe; nil means 0.
	ThrottleMS *int64 `json:"throttle_ms,omitempty" msgpack:"throttle_ms,omitempty"`
	// Snapshot asks for the current state first; nil means true.
	Snapshot *bool `json:"snapshot,omitempty" msgpack:"snapshot,omitempty"`
	// Since maps channel to the last seq the client holds, for resume.
	Since map[string]uint64 `json:"since,omitempty" msgpack:"since,omitempty"`
	// Token is the fresh JWT of an auth op.
	Token string `json:"token,omitempty" msgpack:"token,omitempty"`
	// Depth (contract 1.1) asks book channels for their best Depth levels
	// per side only (one of Depths); nil: the whole book.
	Depth *int64 `json:"depth,omitempty" msgpack:"depth,omitempty"`
	// Recent (contract 1.1) asks trade channels for up to Recent (0 to
	// MaxRecent) newest trades first, as a snapshot; nil: 0, none.
	Recent *int64 `json:"recent,omitempty" msgpack:"recent,omitempty"`
	// Bars (contract 1.1) is how many newest bars (1 to MaxBars) a candle
	// channel's snapshot holds; nil: DefaultBars.
	Bars *int64 `json:"bars,omitempty" msgpack:"bars,omitempty"`
}

// Welcome is the first message on every connection.
type Welcome struct {
	Type        string `json:"type" msgpack:"type"`
	V           int    `json:"v" msgpack:"v"`
	Session     string `json:"session" msgpack:"session"`
	Node        string `json:"node" msgpack:"node"`
	Codec       string `json:"codec" msgpack:"codec"`
	HeartbeatMS int64  `json:"heartbeat_ms" msgpack:"heartbeat_ms"`
	Exp         int64  `json:"exp" msgpack:"exp"`
	// Features (contract 1.1) names the additions this node serves.
	Features []string `json:"features" msgpack:"features"`
}

// Subscribed acknowledges the channels of a subscribe that were accepted.
type Subscribed struct {
	Type     string   `json:"type" msgpack:"type"`
	ID       *int64   `json:"id,omitempty" msgpack:"id,omitempty"`
	Channels []string `json:"channels" msgpack:"channels"`
	// Resumed lists the channels whose history is replayed from since.
	Resumed []string `json:"resumed,omitempty" msgpack:"resumed,omitempty"`
}

// Unsubscribed acknowledges an unsubscribe.
type Unsubscribed struct {
	Type     string   `json:"type" msgpack:"type"`
	ID       *int64   `json:"id,omitempty" msgpack:"id,omitempty"`
	Channels []string `json:"channels" msgpack:"channels"`
}

// Error answers a command that failed, in whole or for one channel. It does
// not close the connection.
type Error struct {
	Type    string    `json:"type" msgpack:"type"`
	ID      *int64    `json:"id,omitempty" msgpack:"id,omitempty"`
	Code    ErrorCode `json:"code" msgpack:"code"`
	Message string    `json:"message" msgpack:"message"`
	Channel string    `json:"channel,omitempty" msgpack:"channel,omitempty"`
	// RetryMS, with CodeUnavailable, says when trying again makes sense.
	RetryMS int64 `json:"retry_ms,omitempty" msgpack:"retry_ms,omitempty"`
}

// Status (contract 1.1) tells a subscriber whether a channel's data can be
// trusted to be current (State live) or not (stale, resyncing), and why.
// It is sent only when the state changes.
type Status struct {
	Type    string `json:"type" msgpack:"type"`
	Channel string `json:"channel" msgpack:"channel"`
	State   string `json:"state" msgpack:"state"`
	Reason  string `json:"reason,omitempty" msgpack:"reason,omitempty"`
	TS      int64  `json:"ts" msgpack:"ts"`
}

// Channel states and their reasons (Status).
const (
	StateLive      = "live"
	StateStale     = "stale"
	StateResyncing = "resyncing"

	ReasonFeedDisconnected = "feed_disconnected" // stale: the node lost NATS
	ReasonFeedSilent       = "feed_silent"       // stale: nothing arrived on the channel for a while
	ReasonFeedGap          = "feed_gap"          // resyncing: a book waits for a snapshot after a gap
)

// Gap (contract 1.1) tells the subscribers of an event channel (trade)
// that the node never had the feed messages From to To (inclusive): they
// are missing from the updates, though each connection's prev chain is
// intact. It comes before the next update of the channel.
type Gap struct {
	Type    string `json:"type" msgpack:"type"`
	Channel string `json:"channel" msgpack:"channel"`
	From    uint64 `json:"from" msgpack:"from"`
	To      uint64 `json:"to" msgpack:"to"`
}

// Snapshot is the full state of a ticker or book channel.
type Snapshot struct {
	Type    string `json:"type" msgpack:"type"`
	Channel string `json:"channel" msgpack:"channel"`
	Seq     uint64 `json:"seq" msgpack:"seq"`
	Data    any    `json:"data" msgpack:"data"`
}

// Update is one change on a channel. Prev is the seq of the last snapshot
// or update this connection received on the channel (0 for the first trade
// after a subscribe); N counts the feed messages folded into it.
type Update struct {
	Type    string `json:"type" msgpack:"type"`
	Channel string `json:"channel" msgpack:"channel"`
	Seq     uint64 `json:"seq" msgpack:"seq"`
	Prev    uint64 `json:"prev" msgpack:"prev"`
	N       uint32 `json:"n" msgpack:"n"`
	Data    any    `json:"data" msgpack:"data"`
}

// RESTSnapshot (contract 1.1) is the body of a REST snapshot, GET
// /v1/snapshot/<channel>: the same seq and data as the channel's snapshot
// message; seq serves as since on a later subscribe.
type RESTSnapshot struct {
	Channel string `json:"channel" msgpack:"channel"`
	Seq     uint64 `json:"seq" msgpack:"seq"`
	Data    any    `json:"data" msgpack:"data"`
}

// Authenticated confirms a token refresh.
type Authenticated struct {
	Type string `json:"type" msgpack:"type"`
	ID   *int64 `json:"id,omitempty" msgpack:"id,omitempty"`
	Exp  int64  `json:"exp" msgpack:"exp"`
}

// Pong answers a ping; TS is the server time in Unix nanoseconds.
type Pong struct {
	Type string `json:"type" msgpack:"type"`
	ID   *int64 `json:"id,omitempty" msgpack:"id,omitempty"`
	TS   int64  `json:"ts" msgpack:"ts"`
}

// Heartbeat is sent when nothing else was sent for heartbeat_ms.
type Heartbeat struct {
	Type string `json:"type" msgpack:"type"`
	TS   int64  `json:"ts" msgpack:"ts"`
}

// Reconnect asks the client to reconnect (to any node) within WithinMS.
type Reconnect struct {
	Type     string `json:"type" msgpack:"type"`
	Reason   string `json:"reason" msgpack:"reason"`
	WithinMS int64  `json:"within_ms" msgpack:"within_ms"`
}

// Data is implemented by every data shape a channel kind carries
// (proto.KindSpec.Data).
type Data interface {
	// EventTS returns the data's ts, the source event time in Unix
	// nanoseconds.
	EventTS() int64
}

// EventTS implements Data.
func (t *Ticker) EventTS() int64 { return t.TS }

// EventTS implements Data.
func (t *Trade) EventTS() int64 { return t.TS }

// EventTS implements Data.
func (b *Book) EventTS() int64 { return b.TS }

// Ticker is the data of a ticker channel: top of book and last trade.
type Ticker struct {
	Symbol  string `json:"symbol" msgpack:"symbol"`
	Bid     string `json:"bid" msgpack:"bid"`
	BidSize string `json:"bid_size" msgpack:"bid_size"`
	Ask     string `json:"ask" msgpack:"ask"`
	AskSize string `json:"ask_size" msgpack:"ask_size"`
	Last    string `json:"last" msgpack:"last"`
	Volume  string `json:"volume" msgpack:"volume"`
	TS      int64  `json:"ts" msgpack:"ts"`
}

// Trade is one executed trade.
type Trade struct {
	Symbol string `json:"symbol" msgpack:"symbol"`
	ID     int64  `json:"id" msgpack:"id"`
	Price  string `json:"price" msgpack:"price"`
	Size   string `json:"size" msgpack:"size"`
	Side   string `json:"side" msgpack:"side"`
	TS     int64  `json:"ts" msgpack:"ts"`
}

// Trade sides.
const (
	SideBuy  = "buy"
	SideSell = "sell"
)

// Level is one price level, [price, size], both decimal strings. A size of
// "0" in an update removes the level.
type Level [2]string

// Price returns the level's price.
func (l Level) Price() string { return l[0] }

// Size returns the level's size.
func (l Level) Size() string { return l[1] }

// Book is the data of a book snapshot (Symbol set) or update (Symbol empty).
// Bids are best (highest) first, asks best (lowest) first. Checksum is
// BookChecksum of the book after applying the message.
type Book struct {
	Symbol   string  `json:"symbol,omitempty" msgpack:"symbol,omitempty"`
	Bids     []Level `json:"bids" msgpack:"bids"`
	Asks     []Level `json:"asks" msgpack:"asks"`
	Checksum uint32  `json:"checksum" msgpack:"checksum"`
	TS       int64   `json:"ts" msgpack:"ts"`
}

// Feed message types.
const (
	FeedSnapshot = "snapshot"
	FeedUpdate   = "update"
	// FeedHeartbeat (contract 1.1): a publisher's sign of life on a quiet
	// channel, {"type":"heartbeat","seq":<newest seq>}; no data.
	FeedHeartbeat = "heartbeat"
)

// Feed is a feed message, the one envelope publishers put on NATS
// (docs/protocol.md §9.2): {"seq", "type", "data"}, with data of type D.
// Publishers encode a FeedMessage; the node decodes the data only once it
// knows the channel's kind (feed.Decode).
type Feed[D any] struct {
	Seq  uint64 `json:"seq" msgpack:"seq"`
	Type string `json:"type" msgpack:"type"`
	Data D      `json:"data" msgpack:"data"`
}

// FeedMessage is a feed message to encode; Data is one of the kinds' data
// shapes (*Ticker, *Book, *Trade; or the same by value), nil for a
// heartbeat.
type FeedMessage = Feed[any]
