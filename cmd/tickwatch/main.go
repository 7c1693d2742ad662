// Command tickwatch watches channels of a tickgate node with the Go client
// (package client) and tells whether what it saw was consistent: the
// quickest way for an operator to check a deployment.
//
//	tickwatch --url URL --token-file F [--ca-file F] [--msgpack] --channels book.BTC-USD,trade.ETH-USD,... [--json] [--duration D]
//
// It prints one line per event (human readable; with --json one JSON
// object per line, with at least channel, type, seq and prev, and
// checksum_ok for books), then a summary line: messages, gaps seen,
// resyncs, reconnects, resumed channels, checksum failures, unrecovered
// inconsistencies.
//
// The client verifies every prev chain and book checksum, re-subscribes
// a channel after a gap or mismatch, and reconnects and resumes after a
// loss. An inconsistency is recovered when its channel is live again;
// trades the node or the client reports missing (gap messages,
// history_unavailable, a broken trade chain) cannot be recovered, nor can
// a subscription the node ended. The exit status is 0 only when every
// inconsistency seen was recovered and every channel is live at the end
// (after up to --grace for a resync under way), 1 otherwise or on an
// error (the node refused the token or a channel), 2 for usage mistakes.
//
// The token file is read again at every connection and refresh, so a
// rotated token is picked up without a restart.
package main

import (
	"github.com/tickgate/tickgate/internal/cli"
)

func main() { cli.Main(run) }
