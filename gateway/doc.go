// Package gateway is tickgate's public side: the WebSocket Secure endpoint,
// the handshake (origin, token and subprotocol checked before the upgrade),
// the hub that maps channels to their feed state and local subscribers, and
// each connection with its bounded outbox and single writer.
//
// Data flows one way. A feed message arrives on its channel's NATS delivery
// goroutine; the hub applies it to the channel's state under the channel's
// mutex and fans the resulting event out: each subscriber in step with the
// node's chain (its last seq equals the event's prev) gets bytes encoded
// once per codec and shared; a subscriber out of step gets its own
// encoding with its own prev. Fan-out only appends to outboxes; each
// connection's writer goroutine owns the socket and writes with a deadline.
//
// A subscribe acquires NATS interest first (so the ack is true), without
// ever waiting for NATS on the connection's read loop: a channel the node
// holds is joined at once, a new one is refused at once while NATS is down,
// and otherwise the subscribe completes on its own goroutine once NATS
// confirmed it. It then joins each channel gated: its snapshot or resume
// replay (decided under the channel's lock, encoded outside it, shared by
// every joiner at the same seq) and any update racing in wait in the
// subscription until the ack is queued, so the client sees the ack, then
// the snapshot, then an unbroken prev chain.
package gateway
