// Package feedsim is a synthetic market-data publisher for dev mode, the
// `tickgate feedsim` subcommand and tests. It speaks the feed side of the
// protocol (docs/protocol.md §9) on subjects <prefix>.<kind>.<symbol>
// (<prefix>.candle.<interval>.<symbol> for candles):
//
//   - book: a snapshot first per symbol and then every SnapshotEvery,
//     deltas in between that change, add and remove a few levels, a
//     BookDepth-level book per side that is never crossed, and the book
//     checksum in every message;
//   - ticker: top of book and last trade price, consistent with the book;
//   - trade: increasing ids, buy at the best ask and sell at the best bid;
//   - candle: for every interval, bars built from the symbol's own trades
//     (open, high, low, close, volume, count), the open bar as it changes
//     and each bar once closed, before its interval's next bar.
//
// Prices follow a random walk around realistic levels (BTC-USD ~64000,
// ETH-USD ~3400, SOL-USD ~150; generated symbols get random plausible ones)
// on their tick size; every channel's seq increments by exactly 1. Given
// the same Config (Seed, and a deterministic Now), Next produces the same
// payloads, which is what tests rely on. The generator has no NATS
// dependency: Run takes a publish function such as nats.Conn.Publish.
package feedsim
