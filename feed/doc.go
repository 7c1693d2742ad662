// Package feed is the gateway node's side of NATS: one connection per node,
// interest-counted subscriptions on feed subjects, decoding and validation of
// feed messages, and the per-channel state that turns feed messages into
// events for subscribers.
//
// The data path:
//
//	NATS md.<kind>.<symbol> ──▶ Source (one nats.Conn; a subscription per channel
//	                             while some local subscriber wants it)
//	                         ──▶ Decode (seq, type, data validated) ──▶ Handler
//	                         ──▶ State.Apply (ticker: last value; book: levels,
//	                             checksum, sync; trade: history) ──▶ Event
//
// Source owns the network: Acquire subscribes on the first interest in a
// channel and returns only once the NATS server confirmed the subscription,
// so everything published afterwards reaches the channel's Handler; Release
// unsubscribes with the last interest.
//
// State is pure: no locks, no NATS, no clock. The gateway keeps one State per
// channel, guards it with its own per-channel mutex and calls Apply from the
// channel's Handler. Apply reports what a feed message means for subscribers
// (an Event, or nothing) and an Outcome to count. Events form a chain through
// Event.Prev, which State.Since replays for a resuming client from a bounded
// history. Every Data value in an emitted Event is immutable from then on, so
// the gateway may encode it once and share the bytes.
//
// Sequence semantics follow PROTOCOL.md §3: a seq at or below the last one
// seen is a duplicate and dropped; a seq jump is a gap, after which ticker and
// trade channels simply continue and a book waits, unsynced, for the next
// feed snapshot, which it then emits as a snapshot event. A periodic feed
// snapshot equal to the held book refreshes the state without an event.
package feed
