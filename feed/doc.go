// Package feed is the gateway node's side of NATS: one connection per node,
// interest-counted subscriptions on feed subjects, decoding and validation of
// feed messages, and the per-channel state that turns feed messages into
// events for subscribers.
//
// The data path:
//
//	NATS md.<kind>.<symbol> ──▶ Source (one nats.Conn; a subscription per channel
//	                             while some local subscriber wants it; a
//	                             dispatcher per core hands messages over)
//	                         ──▶ Decode (seq, type, data validated) ──▶ Handler
//	                         ──▶ State.Apply (ticker: last value; book: levels,
//	                             checksum, sync; trade: history) ──▶ Event
//
// Source owns the network: AcquireAsync subscribes on the first interest in
// a channel, without waiting, and its Pending is done once the NATS server
// confirmed the subscription, so that everything published afterwards
// reaches the channel's Handler; while the NATS connection is down a new
// channel is refused at once (ErrUnavailable). Pending.Cancel (or Release)
// gives a hold back, and the last one unsubscribes. A dispatcher per
// core hands the channels' messages to their Handlers, channels in turn
// (dispatch.go); each channel keeps at most Config.PendingMessages and
// PendingBytes queued while the node is busy, the rest is dropped
// (Dropped), and the State sees the drop as a seq gap.
//
// State is pure: no locks, no NATS, no clock. The gateway keeps one State per
// channel, guards it with its own per-channel mutex and calls Apply from the
// channel's Handler. Apply reports what a feed message means for subscribers
// (an Event, or nothing) and an Outcome to count. Events form a chain through
// Event.Prev, which State.Since replays for a resuming client from a bounded
// history. Every Data value in an emitted Event is immutable from then on, so
// the gateway may encode it once and share the bytes.
//
// Sequence semantics follow docs/protocol.md §5.6: a seq at or below the
// last one seen is a duplicate and dropped; a seq jump is a gap, after which
// ticker and trade channels continue (a trade event names the seqs it
// skipped) and a book waits, unsynced, for the next feed snapshot, which it
// then emits as a snapshot event. A periodic feed
// snapshot equal to the held book refreshes the state without an event.
package feed
