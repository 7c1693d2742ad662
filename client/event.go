package client

import (
	"sync/atomic"
	"time"

	"github.com/tickgate/tickgate/proto"
)

// EventType says what an Event reports.
type EventType uint8

// Event types.
const (
	// EventSnapshot: a ticker or book channel's state was replaced (Book
	// or Ticker), a trade channel's recent trades arrived (Trades,
	// contract 1.1), or a candle channel's bars (Bars, contract 1.1).
	EventSnapshot EventType = iota + 1
	// EventUpdate: a ticker or book channel changed (Book, Delta, Ticker),
	// one trade happened (Trade), or a candle bar changed or closed
	// (Candle).
	EventUpdate
	// EventGap: something is missing on the channel (Gap says what and
	// why, and whether the client re-subscribes to recover).
	EventGap
	// EventState: the channel's State changed.
	EventState
	// EventError: a subscription ended without the user asking (the node
	// refused it when the client re-subscribed, or a refreshed token no
	// longer allows it), or the client failed at something in the
	// background (Err).
	EventError
	// EventConnected: a connection is up (Conn); the client re-subscribes
	// every channel on it.
	EventConnected
	// EventDisconnected: a connection ended, or an attempt failed (Err);
	// the next attempt follows after Delay.
	EventDisconnected
)

func (t EventType) String() string {
	switch t {
	case EventSnapshot:
		return "snapshot"
	case EventUpdate:
		return "update"
	case EventGap:
		return "gap"
	case EventState:
		return "state"
	case EventError:
		return "error"
	case EventConnected:
		return "connected"
	case EventDisconnected:
		return "disconnected"
	}
	return "unknown"
}

// ChannelState is what the client knows about the data it holds for a
// channel.
type ChannelState uint8

// Channel states.
const (
	// StateResyncing: the client holds no state it knows to be right for
	// the channel: it waits for a snapshot (the first one, or one after a
	// gap or checksum mismatch it detected, or the node said it resyncs),
	// or for the node to resume it.
	StateResyncing ChannelState = iota
	// StateLive: the state the client holds is right and current.
	StateLive
	// StateStale: the state the client holds was right, but may be
	// outdated: the connection is down, the node is not receiving the
	// channel now (unavailable), or the node said its feed is stale.
	StateStale
)

func (s ChannelState) String() string {
	switch s {
	case StateLive:
		return "live"
	case StateResyncing:
		return "resyncing"
	case StateStale:
		return "stale"
	}
	return "unknown"
}

// MarshalText writes the state's name.
func (s ChannelState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// GapReason says why data is missing.
type GapReason string

// Gap reasons.
const (
	// GapPrev: an update's prev was not the last seq the client held: it
	// missed messages. Books and tickers resync; trades go on.
	GapPrev GapReason = "prev_mismatch"
	// GapChecksum: the client's book after a message did not have the
	// message's checksum. The book resyncs.
	GapChecksum GapReason = "checksum_mismatch"
	// GapNode: the node never had these feed seqs (its gap message, on
	// trade and candle channels); the chain is intact.
	GapNode GapReason = "node_gap"
	// GapHistory: after a reconnect, the node could not replay the trades
	// after the last one the client held (history_unavailable); To is 0
	// (unknown): the trades up to the next one delivered are missing.
	GapHistory GapReason = "history_unavailable"
	// GapOverflow: the handler fell so far behind that trades were dropped
	// (see the package doc).
	GapOverflow GapReason = "handler_overflow"
	// GapMalformed: a message for the channel could not be used (bad
	// levels, no data). Books and tickers resync.
	GapMalformed GapReason = "malformed"
)

// Gap describes missing data.
type Gap struct {
	Reason GapReason
	// From and To are the missing seqs, inclusive, where known; 0 when
	// not known.
	From, To uint64
	// Resync is true when the client re-subscribes the channel to
	// recover; the channel is StateResyncing until it has.
	Resync bool
}

// ConnInfo describes a connection, from its welcome message.
type ConnInfo struct {
	Node        string
	Session     string
	Codec       string
	Heartbeat   time.Duration
	TokenExpiry time.Time
	// Features are the contract 1.1 additions the node serves.
	Features []string
}

// Event is what the client reports to the handler (Options.OnEvent).
// Fields that do not apply to its Type are zero.
type Event struct {
	Type EventType
	// Channel is the channel; "" for EventConnected and EventDisconnected.
	Channel string
	// State is the channel's state after the event.
	State ChannelState
	// Seq is the seq of the newest message the event includes; Prev the
	// prev of the oldest.
	Seq, Prev uint64
	// N is how many messages the event covers: more than 1 when book or
	// ticker messages were folded while the handler was busy.
	N int
	// Book is the client's book after the event, verified by its checksum
	// (book channels subscribed with a snapshot). It belongs to the
	// client and is valid only until the handler returns: Clone it or copy
	// TopN to keep it.
	Book *Book
	// Delta is a book update's levels, in the order they apply (of every
	// folded update); nil for a snapshot.
	Delta *proto.Book
	// Ticker is a ticker channel's state.
	Ticker *proto.Ticker
	// Trade is one trade (EventUpdate on a trade channel).
	Trade *proto.Trade
	// Trades are a trade snapshot's recent trades, oldest first.
	Trades []proto.Trade
	// Candle is a candle channel's bar (EventUpdate): the open bar as it
	// changes, then once with Closed set.
	Candle *proto.Candle
	// Bars are a candle channel's bars (EventSnapshot), oldest first, the
	// last one possibly open.
	Bars []proto.Candle
	// Gap describes an EventGap.
	Gap *Gap
	// Resumed is true for the EventState to live of a channel the node
	// resumed after a reconnect or a resync: nothing was missed.
	Resumed bool
	// Err is the error of an EventError or EventDisconnected.
	Err error
	// Conn describes the connection of an EventConnected.
	Conn *ConnInfo
	// Delay is, for EventDisconnected, the wait before the next attempt.
	Delay time.Duration
	// TS is the source time of the newest data, Unix nanoseconds.
	TS int64
}

// Stats are the client's counters since Dial.
type Stats struct {
	// Messages counts data messages received: snapshot, update, gap and
	// status.
	Messages uint64
	// Gaps counts missing data seen: prev mismatches, checksum
	// mismatches, the node's gap messages, history_unavailable after a
	// reconnect, malformed data, and trades dropped for a slow handler
	// (each run of them once).
	Gaps uint64
	// ChecksumFailures counts book messages whose checksum did not match.
	ChecksumFailures uint64
	// Resyncs counts channels that restarted from a fresh snapshot or
	// chain: after a gap or mismatch, and after a reconnect the node
	// could not resume.
	Resyncs uint64
	// Resumed counts channels the node resumed (since) after a reconnect
	// or a gap: nothing was missed.
	Resumed uint64
	// Reconnects counts connections after the first.
	Reconnects uint64
	// Coalesced counts book and ticker messages folded into a later event
	// while the handler was busy.
	Coalesced uint64
	// Dropped counts trades dropped because the handler was behind.
	Dropped uint64
}

// counters is Stats kept with atomics; safe for concurrent use.
type counters struct {
	messages, gaps, checksumFailures, resyncs, resumed, reconnects, coalesced, dropped atomic.Uint64
}

func (c *counters) snapshot() Stats {
	return Stats{
		Messages: c.messages.Load(), Gaps: c.gaps.Load(), ChecksumFailures: c.checksumFailures.Load(),
		Resyncs: c.resyncs.Load(), Resumed: c.resumed.Load(), Reconnects: c.reconnects.Load(),
		Coalesced: c.coalesced.Load(), Dropped: c.dropped.Load(),
	}
}
