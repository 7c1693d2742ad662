// A local L2 order book kept by the rules of docs/protocol.md §5.4: levels
// identified by numeric price ("1.50" and "1.5" are one level, which keeps
// the text of its most recent update), sorted best first, and the checksum
// of §5.5.

import {bookChecksum} from "./crc32.js";
import {compareKeys, decimalKey, isZeroDecimal, validDecimal} from "./decimal.js";

/** @typedef {readonly [price: string, size: string]} Level */

/**
 * BookError is thrown for book data that breaks the protocol's shape
 * (a level that is not a pair of decimal strings).
 */
export class BookError extends Error {
  /** @param {string} message */
  constructor(message) {
    super("book: " + message);
    this.name = "BookError";
  }
}

/** One side: levels best first, and the index of each canonical price. */
class Side {
  /** @param {boolean} descending bids: highest first */
  constructor(descending) {
    this.desc = descending;
    /** @type {{key: string, level: Level}[]} best first */
    this.rows = [];
  }

  clear() { this.rows = []; }

  /** find returns the row index of key, or -(insertion point) - 1. */
  find(key) {
    let lo = 0, hi = this.rows.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      let c = compareKeys(this.rows[mid].key, key);
      if (this.desc) c = -c;
      if (c === 0) return mid;
      if (c < 0) lo = mid + 1;
      else hi = mid - 1;
    }
    return -lo - 1;
  }

  /** set applies one [price, size]: size zero removes, others replace or insert. */
  set(level) {
    if (!Array.isArray(level) || level.length !== 2 || !validDecimal(level[0]) || !validDecimal(level[1])) {
      throw new BookError("a level that is not [price, size] decimal strings: " + safeText(level));
    }
    const key = decimalKey(level[0]);
    const at = this.find(key);
    if (isZeroDecimal(level[1])) {
      if (at >= 0) this.rows.splice(at, 1);
      return;
    }
    const row = {key, level: /** @type {Level} */ (Object.freeze([level[0], level[1]]))};
    if (at >= 0) this.rows[at] = row;
    else this.rows.splice(-at - 1, 0, row);
  }

  /** @param {number} n */
  top(n) {
    const k = Math.min(n, this.rows.length);
    const out = new Array(k);
    for (let i = 0; i < k; i++) out[i] = this.rows[i].level;
    return out;
  }
}

function safeText(v) {
  try {
    return JSON.stringify(v, (_, x) => typeof x === "bigint" ? x.toString() : x).slice(0, 80);
  } catch {
    return String(v);
  }
}

/**
 * Book is an L2 order book. A client hands out a Book only while its
 * channel is `live`, that is, after its last checksum matched.
 */
export class Book {
  constructor() {
    /** @private */ this._bids = new Side(true);
    /** @private */ this._asks = new Side(false);
    /** The seq of the last message applied (0: none). @type {number | bigint} */
    this.seq = 0;
    /** The checksum the last applied message carried (0: none). */
    this.wantChecksum = 0;
    /** Whether the book's own checksum equalled the last message's. */
    this.verified = false;
    /** `ts` of the last message applied (Unix ns; 0: none). @type {number | bigint} */
    this.ts = 0;
  }

  /** clear empties the book and marks it unverified. */
  clear() {
    this._bids.clear();
    this._asks.clear();
    this.seq = 0;
    this.wantChecksum = 0;
    this.verified = false;
    this.ts = 0;
  }

  /**
   * applySnapshot replaces the book with a snapshot's data and reports
   * whether its checksum matched.
   * @param {{bids?: Level[], asks?: Level[], checksum?: number, ts?: number | bigint}} data
   * @param {number | bigint} [seq]
   * @returns {boolean}
   */
  applySnapshot(data, seq = 0) {
    this._bids.clear();
    this._asks.clear();
    return this.applyUpdate(data, seq);
  }

  /**
   * applyUpdate applies an update's levels in order (size zero removes
   * the price, a price not held is inserted, a held price is replaced with
   * the update's price and size text) and reports whether the data's
   * checksum equals the book's after it. A shape error throws BookError
   * and leaves the book cleared.
   * @param {{bids?: Level[], asks?: Level[], checksum?: number, ts?: number | bigint}} data
   * @param {number | bigint} [seq]
   * @returns {boolean}
   */
  applyUpdate(data, seq = 0) {
    try {
      for (const l of data.bids ?? []) this._bids.set(l);
      for (const l of data.asks ?? []) this._asks.set(l);
    } catch (e) {
      this.clear();
      throw e;
    }
    this.seq = seq;
    this.ts = data.ts ?? 0;
    this.wantChecksum = typeof data.checksum === "number" ? data.checksum : -1;
    this.verified = this.checksum() === this.wantChecksum;
    return this.verified;
  }

  /** Bids, best (highest) first. @returns {Level[]} */
  get bids() { return this._bids.top(Infinity); }

  /** Asks, best (lowest) first. @returns {Level[]} */
  get asks() { return this._asks.top(Infinity); }

  /**
   * top returns up to n levels per side, best first.
   * @param {number} n
   * @returns {{bids: Level[], asks: Level[]}}
   */
  top(n) { return {bids: this._bids.top(n), asks: this._asks.top(n)}; }

  /** The best bid, or null. @returns {Level | null} */
  bestBid() { return this._bids.rows.length ? this._bids.rows[0].level : null; }

  /** The best ask, or null. @returns {Level | null} */
  bestAsk() { return this._asks.rows.length ? this._asks.rows[0].level : null; }

  /** How many levels each side holds. */
  get depth() { return {bids: this._bids.rows.length, asks: this._asks.rows.length}; }

  /**
   * level returns the level at a price (compared numerically), or null.
   * @param {"bids" | "asks"} side
   * @param {string} price
   * @returns {Level | null}
   */
  level(side, price) {
    const s = side === "bids" ? this._bids : this._asks;
    if (!validDecimal(price)) return null;
    const at = s.find(decimalKey(price));
    return at >= 0 ? s.rows[at].level : null;
  }

  /** The checksum of the book as held (docs/protocol.md §5.5). */
  checksum() {
    return bookChecksum(this._bids.top(10), this._asks.top(10));
  }
}
