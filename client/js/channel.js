// One channel's client-side rules (docs/protocol.md §5): the prev chain,
// the book and its checksum, the latest ticker, trades and gap reports,
// and the channel's state. A Channel does no I/O: it takes one server
// message at a time and says what happened and what the client must do
// (re-subscribe, and with which `since`), so the same code runs against a
// socket and against the conformance cases.

import {Book, BookError} from "./book.js";
import {validDecimal} from "./decimal.js";

/** The kinds: those of contract 1.0, and candle of contract 1.1. */
export const KINDS = Object.freeze(["ticker", "book", "trade", "candle"]);

/** The intervals of candle channels, shortest first. */
export const INTERVALS = Object.freeze(["1m", "5m", "15m", "1h", "4h", "1d"]);

const NAME = /^(?:(ticker|book|trade)\.([A-Za-z0-9_-]{1,32})|candle\.(1m|5m|15m|1h|4h|1d)\.([A-Za-z0-9_-]{1,32}))$/;

/** The node's default of the `bars` subscribe option. */
export const DEFAULT_BARS = 100;

/**
 * parseChannel splits a channel name into kind, symbol and (candles)
 * interval, or returns null when it is not `<kind>.<symbol>` or
 * `candle.<interval>.<symbol>`.
 * @param {unknown} name
 * @returns {{kind: "ticker" | "book" | "trade" | "candle", symbol: string, interval?: string} | null}
 */
export function parseChannel(name) {
  const m = typeof name === "string" ? NAME.exec(name) : null;
  if (!m) return null;
  if (m[1]) return {kind: /** @type {any} */ (m[1]), symbol: m[2]};
  return {kind: "candle", symbol: m[4], interval: m[3]};
}

/**
 * validBar reports whether a bar is one the client can keep: a start and
 * decimal strings for its prices and volume.
 * @param {any} b
 */
function validBar(b) {
  const dec = validDecimal;
  return b !== null && typeof b === "object" && (typeof b.start === "number" || typeof b.start === "bigint") && b.start > 0 &&
    dec(b.open) && dec(b.high) && dec(b.low) && dec(b.close) && dec(b.volume);
}

/**
 * @typedef {object} Step
 * What one message did to a channel, and what the client must do next.
 * @property {boolean} applied the message changed the state the client holds (or, for trades, was handed over)
 * @property {boolean} gap an update whose prev was not the last seq held
 * @property {boolean} resync the client must re-subscribe the channel
 * @property {number | bigint | undefined} since the `since` of that re-subscribe (undefined: a fresh snapshot)
 * @property {boolean | undefined} checksumOk book: whether the book's checksum equalled the message's (undefined: not checked)
 * @property {{want: number, got: number} | undefined} checksum book: the message's checksum and the book's
 * @property {object[]} trades trades handed to the user by this message
 * @property {object | undefined} bar candle: the bar this update changed or closed
 * @property {[number | bigint, number | bigint] | undefined} gapSeqs a `gap` message's [from, to]
 * @property {boolean} stateChanged the channel's state changed
 */

/** @returns {Step} */
function step() {
  return {applied: false, gap: false, resync: false, since: undefined, checksumOk: undefined, checksum: undefined, trades: [], bar: undefined, gapSeqs: undefined, stateChanged: false};
}

/**
 * Channel holds one subscribed channel's state.
 *
 * `state` is what the user sees:
 * - `subscribing`: asked for; nothing held yet (no snapshot, or no ack for a trade channel);
 * - `live`: the client holds state it knows to be right and the node says the feed is current;
 * - `resyncing`: a gap or checksum mismatch was found (or the node resyncs a book); nothing is handed out until a snapshot or a resumed replay;
 * - `stale`: what is held was right, but is not current: the connection is down, the node says its feed is, or a re-subscribe that did not resume waits for its snapshot (`reason` tells).
 */
export class Channel {
  /** @param {string} name */
  constructor(name) {
    const p = parseChannel(name);
    if (!p) throw new TypeError("not a channel name: " + String(name));
    this.name = name;
    this.kind = p.kind;
    this.symbol = p.symbol;
    /** The last seq held (0: none); sent as `since` on a re-subscribe. @type {number | bigint} */
    this.last = 0;
    /** The book (book channels). @type {Book | null} */
    this.book = this.kind === "book" ? new Book() : null;
    /** The latest ticker data (ticker channels). @type {object | null} */
    this.ticker = null;
    /** The candle interval (candle channels). */
    this.interval = p.interval ?? "";
    /** The newest bars, oldest first, the last possibly open (candle channels). @type {object[] | null} */
    this.bars = this.kind === "candle" ? [] : null;
    /** How many bars to keep: the subscription's `bars` option. */
    this.barLimit = DEFAULT_BARS;
    /**
     * @private the client's own view: "awaiting" is a re-subscribe that
     * did not resume (after a reconnect): what is held is right but old,
     * and only the coming snapshot continues the chain.
     * @type {"subscribing" | "live" | "resyncing" | "awaiting"}
     */
    this.local = "subscribing";
    /** @private the node's status of the channel (contract 1.1 `status`) */
    this.server = {state: "live", reason: ""};
    /** @private whether the connection that carries the channel is up */
    this.connected = true;
    /** @private the reason of the client's own resync */
    this.why = "";
    this.stats = {messages: 0, snapshots: 0, updates: 0, gaps: 0, feedGaps: 0, resyncs: 0, checksumOk: 0, checksumBad: 0};
  }

  /** The state the user sees: subscribing, live, resyncing or stale. */
  get state() {
    if (this.local === "awaiting") return "stale";
    if (this.local !== "live") return this.local;
    if (!this.connected) return "stale";
    if (this.server.state !== "live") return /** @type {"stale" | "resyncing"} */ (this.server.state);
    return "live";
  }

  /** Why the channel is not live ("" when it is). */
  get reason() {
    if (this.local === "resyncing") return this.why;
    if (this.local === "subscribing") return "subscribing";
    if (this.local === "awaiting") return "resubscribed";
    if (!this.connected) return "disconnected";
    return this.server.state === "live" ? "" : this.server.reason;
  }

  /**
   * holding reports whether the client holds state it knows to be right
   * (a verified book, a ticker, a trade chain) as of `last`.
   */
  get holding() {
    return this.local === "live" && this.last !== 0;
  }

  /**
   * @private resumable reports whether updates after `last` can be applied
   * to what is held: it is live, or it stopped at a gap (an update went
   * missing, nothing wrong was applied).
   */
  get resumable() {
    return this.last !== 0 && (this.local === "live" || this.local === "awaiting" || (this.local === "resyncing" && this.why === "gap"));
  }

  /**
   * The `since` to resume from after a reconnect (undefined: nothing to
   * resume from).
   * @returns {number | bigint | undefined}
   */
  resumeSeq() {
    return this.resumable ? this.last : undefined;
  }

  /**
   * disconnected marks the channel stale: its connection is down.
   * @returns {boolean} whether the state changed
   */
  disconnected() {
    const before = this.state;
    this.connected = false;
    return before !== this.state;
  }

  /**
   * acked takes the node's `subscribed` ack of a (re-)subscribe:
   * `resumed` when the node will replay the updates after `since`.
   * @param {boolean} resumed
   * @returns {boolean} whether the state changed
   */
  acked(resumed) {
    const before = this.state;
    this.connected = true;
    this.server = {state: "live", reason: ""};
    if (this.kind === "trade") {
      // Not resumed: live trades follow from prev 0.
      if (!resumed) this.last = 0;
      this.local = "live";
      this.why = "";
    } else if (resumed && this.resumable) {
      // The replay chains from last, which is still held.
      this.local = "live";
      this.why = "";
    } else if (this.local === "live" || this.local === "awaiting") {
      // A snapshot follows; until then what is held is right but old.
      this.local = "awaiting";
    }
    return before !== this.state;
  }

  /**
   * handle applies one server message of this channel (snapshot, update,
   * gap, status) and returns what happened.
   * @param {any} msg
   * @returns {Step}
   */
  handle(msg) {
    const before = this.state;
    const s = step();
    this.stats.messages++;
    switch (msg.type) {
      case "snapshot": this.snapshot(msg, s); break;
      case "update": this.update(msg, s); break;
      case "gap":
        this.stats.feedGaps++;
        s.gapSeqs = [msg.from, msg.to];
        break;
      case "status":
        if (msg.state === "live" || msg.state === "stale" || msg.state === "resyncing") {
          this.server = {state: msg.state, reason: typeof msg.reason === "string" ? msg.reason : ""};
        }
        break;
    }
    s.stateChanged = before !== this.state;
    return s;
  }

  /** @private */
  snapshot(msg, s) {
    this.stats.snapshots++;
    if (this.server.state === "resyncing") this.server = {state: "live", reason: ""};
    switch (this.kind) {
      case "book": {
        const ok = this.applyBook(() => this.book.applySnapshot(msg.data ?? {}, msg.seq), s);
        if (ok === undefined) return; // malformed: resyncing
        this.checked(ok, s);
        if (!ok) return;
        break;
      }
      case "ticker":
        this.ticker = msg.data;
        break;
      case "trade": // contract 1.1 `recent`: the newest trades, oldest first
        s.trades = Array.isArray(msg.data?.trades) ? msg.data.trades : [];
        break;
      case "candle": { // contract 1.1: the newest bars, oldest first
        const bars = msg.data?.bars;
        if (!Array.isArray(bars) || !bars.every((b, i) => validBar(b) && (i === 0 || b.start > bars[i - 1].start))) {
          this.malformed(s);
          return;
        }
        this.bars = bars.slice(-this.barLimit);
        break;
      }
    }
    this.last = msg.seq;
    this.local = "live";
    this.why = "";
    s.applied = true;
  }

  /** @private */
  update(msg, s) {
    this.stats.updates++;
    if (this.kind === "trade") {
      if (msg.prev !== this.last) {
        // A trade channel has no snapshot to resync from: report the gap
        // and go on from this update.
        s.gap = true;
        this.stats.gaps++;
      }
      this.last = msg.seq;
      this.local = "live";
      s.trades = [msg.data];
      s.applied = true;
      return;
    }
    if (this.local === "resyncing" || this.local === "awaiting") {
      // An update of the chain being replaced: the answer to the
      // re-subscribe (a snapshot, or the ack of a replay from last) is on
      // its way.
      return;
    }
    if (msg.prev !== this.last) {
      s.gap = true;
      this.stats.gaps++;
      this.resync(s, "gap", this.last !== 0 ? this.last : undefined);
      return;
    }
    if (this.kind === "ticker") {
      this.ticker = msg.data;
    } else if (this.kind === "candle") {
      if (!validBar(msg.data)) {
        this.malformed(s);
        return;
      }
      this.applyBar(msg.data);
      s.bar = msg.data;
    } else {
      const ok = this.applyBook(() => this.book.applyUpdate(msg.data ?? {}, msg.seq), s);
      if (ok === undefined) return; // malformed: resyncing
      this.checked(ok, s);
      if (!ok) return;
    }
    this.last = msg.seq;
    this.local = "live";
    this.why = "";
    s.applied = true;
  }

  /**
   * @private applyBar puts a bar into bars: it replaces the bar with its
   * start (the open bar revised, or closed) or follows the newest; the
   * oldest go beyond barLimit.
   */
  applyBar(bar) {
    const bars = /** @type {object[]} */ (this.bars);
    const n = bars.length;
    if (n > 0 && bar.start <= bars[n - 1].start) {
      const i = bars.findLastIndex(b => b.start === bar.start);
      if (i >= 0) bars[i] = bar;
      return;
    }
    bars.push(bar);
    if (bars.length > this.barLimit) bars.splice(0, bars.length - this.barLimit);
  }

  /** @private malformed: a message the client cannot use; the channel resyncs from a fresh snapshot. */
  malformed(s) {
    this.bars = this.kind === "candle" ? [] : this.bars;
    this.resync(s, "malformed", undefined);
  }

  /**
   * applyBook runs apply, a book change that checks its data's shape, and
   * returns its checksum verdict, or undefined when the data was malformed
   * (BookError): the book can no longer be trusted, and the channel
   * resyncs, as the Go client does, rather than the error escaping the
   * socket's message handler and leaving the channel stranded.
   * @private
   */
  applyBook(apply, s) {
    try {
      return apply();
    } catch (e) {
      if (!(e instanceof BookError)) throw e;
      this.malformed(s);
      return undefined;
    }
  }

  /** @private checked records a book checksum check; a mismatch drops the book and resyncs. */
  checked(ok, s) {
    s.checksumOk = ok;
    s.checksum = {want: this.book.wantChecksum, got: this.book.checksum()};
    if (ok) {
      this.stats.checksumOk++;
      return;
    }
    this.stats.checksumBad++;
    // Never hand out a book known to be wrong: drop it. A replay would
    // repeat the same data, so ask for a fresh snapshot.
    this.book.clear();
    this.last = 0;
    this.resync(s, "checksum", undefined);
  }

  /** @private */
  resync(s, why, since) {
    this.local = "resyncing";
    this.why = why;
    this.stats.resyncs++;
    s.resync = true;
    s.since = since;
  }
}
