// Package client is the Go client of tickgate: it keeps a correct view of
// the market a gateway serves (docs/protocol.md).
//
// Book is the order book kept by the contract's rules (docs/protocol.md
// §5.4 and §5.5): levels keyed by numeric price, each keeping the text of
// its most recent update, sorted best first, with the contract's checksum.
package client
