// Package proto holds tickgate's wire vocabulary, version 1: the messages a
// client and the gateway exchange, the messages feed publishers put on NATS,
// channel names, error and close codes, and the order book checksum. It
// imports only the standard library; every other package speaks in its terms.
//
// The flow of one connection:
//
//	client                                   gateway
//	  │  GET /v1/ws  (token, subprotocol)       │  verify JWT before upgrading
//	  │ ◀──────────────────────── 101 / 4xx JSON│
//	  │ ◀───────────────────────────── welcome  │
//	  │  subscribe {id, channels, since?} ────▶ │  NATS interest, then
//	  │ ◀──────────────── subscribed / error    │  ack once the node receives
//	  │ ◀──────────────── snapshot (ticker/book)│  the channel
//	  │ ◀──────── update {seq, prev, n, data}…  │  prev chains to the last seq
//	  │  ping / auth / unsubscribe ──────────▶  │  the connection received
//	  │ ◀──── pong / authenticated / unsub'd    │
//	  │ ◀──── heartbeat (when idle)             │
//	  │ ◀──── reconnect, close 1001 (drain)     │
//
// Feed publishers send, on subject <prefix>.<kind>.<symbol>, a map
// {seq, type: snapshot|update, data} whose data has the client-facing shape
// (Ticker, Trade, Book).
package proto
