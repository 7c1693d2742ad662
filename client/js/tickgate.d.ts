// Type declarations of tickgate.js, the tickgate browser module.
// Protocol: docs/protocol.md. Guide: docs/clients.md.
//
// Integers from the wire follow one rule: a value within ±(2^53 - 1) is a
// number, any other a bigint holding it exactly. So `seq`, `prev`, trade
// `id`s and `ts` are `Int` (= number | bigint); every `ts` of today (Unix
// nanoseconds, about 1.7e18) is a bigint. Compare them with `===`; convert
// a `ts` with toMillis().

/** An integer from the wire: a number when exact, else a bigint. */
export type Int = number | bigint;

/** A book level: [price, size], both decimal strings as sent. */
export type Level = readonly [price: string, size: string];

export type Codec = "json" | "msgpack";
export type Kind = "ticker" | "book" | "trade" | "candle";
export type Interval = "1m" | "5m" | "15m" | "1h" | "4h" | "1d";

export interface ConnectOptions {
  /** The node's WebSocket URL: wss://host:port/v1/ws. */
  url: string;
  /** A JWT, or a function returning one: called at every connect and, before `exp`, to refresh the token in-band (`auth`). */
  token: string | (() => string | Promise<string>);
  /** The wire codec; default "json". */
  codec?: Codec;
  /** The fraction of the time left until `exp` after which the token is refreshed; default 0.8. */
  refreshAt?: number;
  /** Reconnect backoff: full jitter over baseMs·2^n, at most capMs; default 500 ms and 30 s. */
  backoff?: {baseMs?: number; capMs?: number};
  /** The WebSocket constructor; default globalThis.WebSocket. */
  WebSocket?: typeof WebSocket;
  /** The random source of the jitter, uniform in [0, 1); default Math.random. */
  random?: () => number;
}

export interface SubscribeOptions {
  /** At most one update per interval on each channel (0..60000 ms); updates in between fold by the kind's rule. */
  throttleMs?: number;
  /** false: no snapshot first (tickers and trades; refused, bad_request, on a book channel, which needs its snapshot). Default true. */
  snapshot?: boolean;
  /** Book channels (contract 1.1): only the best 10, 25, 100, 500 or 1000 levels per side. */
  depth?: 10 | 25 | 100 | 500 | 1000;
  /** Trade channels (contract 1.1): start with up to this many (0..1000) recent trades, a `trade` event each. */
  recent?: number;
  /** Candle channels (contract 1.1): up to this many bars (1..1000, default 100) in the snapshot, and kept. */
  bars?: number;
}

export interface Ack {
  /** The channels the node accepted. */
  channels: string[];
  /** Of those, the channels whose history is replayed from `since`. */
  resumed: string[];
}

export interface Welcome {
  type: "welcome";
  v: number;
  session: string;
  node: string;
  codec: Codec;
  heartbeat_ms: number;
  exp: number;
  features?: string[];
}

export interface Ticker {
  symbol: string;
  bid: string;
  bid_size: string;
  ask: string;
  ask_size: string;
  last: string;
  volume: string;
  ts: Int;
}

export interface Trade {
  symbol: string;
  id: Int;
  price: string;
  size: string;
  side: "buy" | "sell";
  ts: Int;
}

/** An OHLCV bar of a candle channel, identified by `start` (Unix ns). */
export interface Candle {
  symbol: string;
  interval: Interval;
  start: Int;
  open: string;
  high: string;
  low: string;
  close: string;
  volume: string;
  trades: Int;
  /** Sent once per bar, as its last message. */
  closed: boolean;
  ts: Int;
}

/** Any server message, as decoded. */
export interface ServerMessage {
  type: string;
  channel?: string;
  seq?: Int;
  prev?: Int;
  n?: number;
  data?: any;
  [key: string]: unknown;
}

/** The connection's state. */
export type ConnectionState = "connecting" | "open" | "reconnecting" | "closed";

/**
 * A channel's state: `subscribing` (nothing held yet), `live` (held state
 * known right and current), `resyncing` (a gap or checksum mismatch, or the
 * node resyncs: nothing handed out until a snapshot or replay), `stale`
 * (held state was right but is not current: disconnected, the node's feed
 * is, or a re-subscribe that did not resume waits for its snapshot;
 * `reason` says which: "disconnected", a status reason, "resubscribed").
 */
export type ChannelState = "subscribing" | "live" | "resyncing" | "stale";

export interface ChannelStats {
  messages: number;
  snapshots: number;
  updates: number;
  /** prev gaps the client found itself */
  gaps: number;
  /** `gap` messages of the node (trades it never had) */
  feedGaps: number;
  resyncs: number;
  checksumOk: number;
  checksumBad: number;
}

export interface ChannelInfo {
  name: string;
  kind: Kind;
  symbol: string;
  state: ChannelState;
  /** Why it is not live: "subscribing", "disconnected", "gap", "checksum", "resubscribed", or the node's status reason ("feed_silent", …). */
  reason: string;
  /** The last seq held (0: none): the `since` of a resume. */
  last: Int;
  stats: ChannelStats;
}

export interface DataMeta {
  channel: string;
  seq: Int;
  type: "snapshot" | "update";
  /** The data's `ts` (Unix ns). */
  ts: Int | undefined;
  message: ServerMessage;
}

export interface ClientEvents {
  /** The connection's state changed. `reconnecting` carries the close code, reason and the wait. */
  state: (e: {state: ConnectionState; previous: ConnectionState; code?: number; reason?: string; delayMs?: number; attempt?: number; welcome?: Welcome; reconnected?: boolean}) => void;
  welcome: (w: Welcome) => void;
  /** After each (re)connect, once every channel was answered: which resumed and which started afresh. */
  resubscribed: (e: {resumed: string[]; fresh: string[]; reconnected: boolean}) => void;
  /** A ticker snapshot or update was applied. */
  ticker: (t: Ticker, meta: DataMeta) => void;
  /** A book message was applied and its checksum matched: `book` is right. */
  book: (book: Book, meta: DataMeta) => void;
  /** A trade was handed over (in order; also after a gap). */
  trade: (t: Trade, meta: DataMeta) => void;
  /** A candle channel's bars changed (oldest first, the last possibly open): a snapshot (`bar` null), or one bar revised, closed or begun. */
  candle: (bars: readonly Candle[], meta: DataMeta & {bar: Candle | null}) => void;
  /**
   * Data went missing: `prev` (the client found a broken chain: seq, prev,
   * last), `feed` (a trade `gap` message: from, to), `history` (a trade
   * channel could not be resumed after a reconnect).
   */
  gap: (e: {channel: string; kind: "prev" | "feed" | "history"; seq?: Int; prev?: Int; last?: Int; from?: Int; to?: Int; message?: string}) => void;
  /** A book's checksum did not match: the book was dropped and is being resynced. */
  checksum: (e: {channel: string; seq: Int; want: number; got: number}) => void;
  /** The client re-subscribes a channel: reason "resume" (with since), "snapshot", "unavailable" or "rate_limited". */
  resync: (e: {channel: string; reason: string; since?: Int; delayMs: number}) => void;
  /** A channel's state changed; "closed" when the node ended it (forbidden after a token refresh, …). */
  channel: (e: {channel: string; state: ChannelState | "closed"; reason?: string; last?: Int; previous?: ChannelState}) => void;
  /** The token was refreshed in-band. */
  authenticated: (e: {exp: number}) => void;
  /** The node drains: it closes the connection within withinMs; the client comes back at once. */
  reconnect: (e: {reason: string; withinMs: number}) => void;
  /** Every decoded server message, before the client acts on it. */
  message: (m: ServerMessage) => void;
  /** Something went wrong that no promise reports: a refused re-subscribe, a failed refresh, an undecodable frame, a listener that threw. */
  error: (err: TickgateError | Error) => void;
}

/** connect creates a client and starts connecting. */
export function connect(options: ConnectOptions): Client;

export class Client {
  constructor(options: ConnectOptions);
  /** The connection's state. */
  readonly state: ConnectionState;
  /** The current connection's welcome, or null. */
  readonly welcome: Welcome | null;
  readonly stats: {connects: number; reconnects: number; messages: number; closeCode: number; closeReason: string; resumed: number; snapshots: number};
  /** Starts the first connection (connect() calls it). */
  open(): void;
  on<E extends keyof ClientEvents>(event: E, fn: ClientEvents[E]): () => void;
  off<E extends keyof ClientEvents>(event: E, fn: ClientEvents[E]): void;
  /**
   * Resolves with the ack once every channel is answered; rejects with a
   * TickgateError (the first refusal; `errors` has all, `accepted` the
   * channels subscribed all the same). Accepted channels stay subscribed
   * across reconnects.
   */
  subscribe(channels: string | string[], options?: SubscribeOptions): Promise<Ack>;
  unsubscribe(channels: string | string[]): Promise<{channels: string[]}>;
  /** The round trip of the `ping` op, in ms. */
  ping(): Promise<number>;
  /** Drops the connection and connects again at once, resuming every channel. */
  reconnect(): void;
  /** Closes for good; pending subscribes reject with code "closed". */
  close(): Promise<void>;
  channel(name: string): ChannelInfo | undefined;
  channels(): ChannelInfo[];
  /** The book while it is known right (live or stale), else null. */
  book(name: string): Book | null;
  /** The latest ticker, or null. */
  ticker(name: string): Ticker | null;
  /** A copy of a candle channel's bars while they are known right (live or stale), else null. */
  candles(name: string): Candle[] | null;
}

/** An L2 book: levels by numeric price, best first, text of the latest update. */
export class Book {
  constructor();
  /** The seq of the last message applied. */
  seq: Int;
  /** The checksum the last message carried. */
  wantChecksum: number;
  /** Whether the book's checksum equalled the last message's. */
  verified: boolean;
  /** `ts` of the last message applied (Unix ns). */
  ts: Int;
  readonly bids: Level[];
  readonly asks: Level[];
  readonly depth: {bids: number; asks: number};
  clear(): void;
  applySnapshot(data: {bids?: Level[]; asks?: Level[]; checksum?: number; ts?: Int}, seq?: Int): boolean;
  applyUpdate(data: {bids?: Level[]; asks?: Level[]; checksum?: number; ts?: Int}, seq?: Int): boolean;
  top(n: number): {bids: Level[]; asks: Level[]};
  bestBid(): Level | null;
  bestAsk(): Level | null;
  /** The level at a price (compared numerically), or null. */
  level(side: "bids" | "asks", price: string): Level | null;
  /** The CRC-32 checksum of the book as held (docs/protocol.md §5.5). */
  checksum(): number;
}

export class BookError extends Error {}

export class TickgateError extends Error {
  constructor(code: string, message: string, more?: {channel?: string; retryMs?: number; id?: number; cause?: unknown});
  /** The node's code (forbidden, bad_channel, unavailable, …) or the client's own (closed, token, protocol, listener). */
  code: string;
  channel: string | undefined;
  /** With `unavailable`: when trying again makes sense. */
  retryMs: number | undefined;
  id: number | undefined;
  errors: TickgateError[];
  accepted: string[];
}

/** One channel's client-side rules; the Client keeps one per subscribed channel. */
export class Channel {
  constructor(name: string);
  readonly name: string;
  readonly kind: Kind;
  readonly symbol: string;
  last: Int;
  book: Book | null;
  ticker: Ticker | null;
  /** Candle channels: the interval. */
  readonly interval: string;
  /** Candle channels: the newest bars, oldest first. */
  bars: Candle[] | null;
  /** Candle channels: how many bars are kept. */
  barLimit: number;
  stats: ChannelStats;
  readonly state: ChannelState;
  readonly reason: string;
  readonly holding: boolean;
  resumeSeq(): Int | undefined;
  disconnected(): boolean;
  acked(resumed: boolean): boolean;
  handle(msg: ServerMessage): {
    applied: boolean;
    gap: boolean;
    resync: boolean;
    since: Int | undefined;
    checksumOk: boolean | undefined;
    checksum: {want: number; got: number} | undefined;
    trades: Trade[];
    bar: Candle | undefined;
    gapSeqs: [Int, Int] | undefined;
    stateChanged: boolean;
  };
}

export function parseChannel(name: unknown): {kind: Kind; symbol: string; interval?: Interval} | null;
export const KINDS: readonly Kind[];
export const INTERVALS: readonly Interval[];
export const DEFAULT_BARS: 100;

export const SUBPROTOCOLS: Readonly<{json: "tickgate.v1.json"; msgpack: "tickgate.v1.msgpack"}>;
export const CHECKSUM_DEPTH: 10;
export function crc32(input: string | Uint8Array): number;
export function bookChecksum(bids: ReadonlyArray<Level>, asks: ReadonlyArray<Level>): number;
export function decimalKey(s: string): string;
export function compareKeys(a: string, b: string): number;
export function validDecimal(s: unknown): s is string;
export function isZeroDecimal(s: string): boolean;
/** Unix-nanosecond `ts` to Unix milliseconds (with a fraction). */
export function toMillis(ts: Int): number;
export function exactInt(x: bigint): Int;
export const DEFAULT_BACKOFF: Readonly<{baseMs: number; capMs: number}>;
export const CLOSE_FLOOR_MS: Readonly<Record<number, number>>;
export function reconnectDelay(p: {code: number; fails: number; withinMs?: number; backoff?: {baseMs: number; capMs: number}; random?: () => number}): number;

export namespace msgpack {
  const MAX_DEPTH: number;
  class MsgpackError extends Error {}
  function decode(bytes: ArrayBuffer | ArrayBufferView): unknown;
  function encode(value: unknown): Uint8Array;
}

export namespace json {
  const MAX_DEPTH: number;
  class JSONError extends SyntaxError {}
  function parse(s: string): unknown;
  function stringify(value: unknown): string;
}
