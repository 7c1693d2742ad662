// tickgate browser client: an ES module with no dependencies and no build
// step. A page imports it directly:
//
//   import {connect} from "/client/tickgate.js";
//   const client = connect({url: "wss://md.example.com/v1/ws", token: () => fetchToken()});
//   client.on("book", (book, {channel}) => draw(channel, book.top(10)));
//   await client.subscribe(["book.BTC-USD", "trade.BTC-USD"]);
//
// The protocol is docs/protocol.md; this module's guide is
// docs/clients.md; the types are in tickgate.d.ts beside it.

/**
 * @typedef {object} ConnectOptions
 * @property {string} url the node's WebSocket URL, wss://host:port/v1/ws
 * @property {string | (() => string | Promise<string>)} token a JWT, or a function returning one: called at every connect and, before `exp`, to refresh the token in-band
 * @property {"json" | "msgpack"} [codec] the wire codec (default "json")
 * @property {number} [refreshAt] the fraction of the time left until `exp` after which the token is refreshed (default 0.8)
 * @property {{baseMs?: number, capMs?: number}} [backoff] reconnect backoff steps (default 500 ms doubling up to 30 s, full jitter)
 * @property {typeof WebSocket} [WebSocket] the WebSocket constructor (default globalThis.WebSocket)
 * @property {() => number} [random] the random source of the jitter (default Math.random)
 */

export {connect, Client, SUBPROTOCOLS} from "./client.js";
export {Book, BookError} from "./book.js";
export {Channel, parseChannel, KINDS, INTERVALS, DEFAULT_BARS} from "./channel.js";
export {TickgateError} from "./errors.js";
export {crc32, bookChecksum, CHECKSUM_DEPTH} from "./crc32.js";
export {decimalKey, compareKeys, validDecimal, isZeroDecimal} from "./decimal.js";
export {toMillis, exactInt} from "./ints.js";
export {reconnectDelay, DEFAULT_BACKOFF, CLOSE_FLOOR_MS} from "./backoff.js";
export * as msgpack from "./msgpack.js";
export * as json from "./json.js";
