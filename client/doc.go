// Package client is the Go client of tickgate: it keeps a correct view of
// the market a gateway serves (docs/protocol.md).
//
// Book is the order book kept by the contract's rules (docs/protocol.md
// §5.4 and §5.5): levels keyed by numeric price, each keeping the text of
// its most recent update, sorted best first, with the contract's checksum.
//
// Per channel, the client checks every update's prev against the last seq
// it holds and every book checksum (docs/protocol.md §5.2, §5.8). On a gap
// or a mismatch it reports the gap, re-subscribes that channel itself
// (with since when the state it holds is still right), ignores the rest of
// the old chain, and never hands over state it knows to be wrong. The
// rules are pinned by proto/testdata/conformance, which the browser module
// and the node's own book code pass too.
//
// Events reach the handler on a goroutine of their own, never on the
// socket's read loop; see queue for what happens while a handler is slow.
package client
