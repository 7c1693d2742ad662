// The connection: handshake with the token as a `bearer.` subprotocol,
// commands and their answers, token refresh, reconnect and resume, and the
// routing of market data to each Channel (channel.js), which checks it.

import {reconnectDelay, DEFAULT_BACKOFF} from "./backoff.js";
import {Channel, parseChannel, DEFAULT_BARS} from "./channel.js";
import {Emitter} from "./emitter.js";
import {TickgateError} from "./errors.js";
import * as json from "./json.js";
import * as msgpack from "./msgpack.js";
import {Outbox} from "./outbox.js";

/** The subprotocol of each codec. */
export const SUBPROTOCOLS = Object.freeze({json: "tickgate.v1.json", msgpack: "tickgate.v1.msgpack"});

/** Channels per subscribe command (the node takes messages up to 16 KiB). */
const CHUNK = 100;

/** A session that lasted this long resets the backoff. */
const STABLE_MS = 10000;

/** Commands the client sends per second at most, and at once (the node allows 20/s, burst 50). */
const COMMAND_RATE = 10, COMMAND_BURST = 20;

/**
 * connect creates a client and starts connecting. It returns at once;
 * subscribe at any time, the client sends it once connected and again on
 * every reconnect.
 * @param {import("./tickgate.js").ConnectOptions} options
 * @returns {Client}
 */
export function connect(options) {
  const c = new Client(options);
  c.open();
  return c;
}

/**
 * Client is one logical connection to a tickgate deployment: it survives
 * reconnects, and keeps every subscribed channel checked and current.
 */
export class Client {
  /** @param {import("./tickgate.js").ConnectOptions} options */
  constructor(options) {
    if (!options || typeof options.url !== "string") throw new TypeError("connect: options.url is required");
    if (typeof options.token !== "string" && typeof options.token !== "function") {
      throw new TypeError("connect: options.token must be a string or a function returning one");
    }
    const codec = options.codec ?? "json";
    if (!(codec in SUBPROTOCOLS)) throw new TypeError(`connect: codec must be "json" or "msgpack", not ${codec}`);
    /** @private */ this.opts = {
      url: options.url,
      token: options.token,
      codec,
      refreshAt: options.refreshAt ?? 0.8,
      backoff: {...DEFAULT_BACKOFF, ...options.backoff},
      WebSocket: options.WebSocket ?? globalThis.WebSocket,
      random: options.random ?? Math.random,
    };
    if (typeof this.opts.WebSocket !== "function") throw new TypeError("connect: no WebSocket in this environment; pass options.WebSocket");
    /** @private */ this.events = new Emitter((err, event) => this.reportThrow(err, event));
    /**
     * The connection's state: `connecting`, `open` (welcomed), `reconnecting`
     * (waiting to connect again) or `closed` (by close()).
     * @type {"connecting" | "open" | "reconnecting" | "closed"}
     */
    this.state = "connecting";
    /** The welcome of the current connection, or null. @type {any} */
    this.welcome = null;
    /** Counters over the client's life. */
    this.stats = {connects: 0, reconnects: 0, messages: 0, closeCode: 0, closeReason: "", resumed: 0, snapshots: 0};
    /** @private @type {Map<string, {channel: Channel, opts: {throttle_ms?: number, snapshot?: boolean, depth?: number, recent?: number, bars?: number}}>} */
    this.subs = new Map();
    /** @private @type {Map<number, any>} commands awaiting an answer, by id */
    this.inflight = new Map();
    /** @private @type {Map<string, any[]>} user subscribe requests waiting on each channel */
    this.waiting = new Map();
    /** @private */ this.nextId = 1;
    /** @private @type {WebSocket | null} */ this.ws = null;
    /** @private */ this.fails = 0;
    /** @private */ this.welcomedAt = 0;
    /** @private */ this.notice = null;
    /** @private */ this.timers = {reconnect: 0, refresh: 0, watchdog: 0, notice: 0, resync: 0};
    /** @private @type {Map<string, number | bigint | undefined>} channels to re-subscribe, with their since */
    this.resyncs = new Map();
    /** @private commands waiting for the rate limit */
    this.outbox = new Outbox({rate: COMMAND_RATE, burst: COMMAND_BURST, ready: () => this.state === "open" && !!this.ws, send: e => this.transmit(e)});
    /** @private the re-subscribe round after a connect: channels not yet answered */
    this.round = null;
    /** @private */ this.lastFrameAt = 0;
    /** @private */ this.dialing = false;
    /** @private @type {Set<any>} one-off timers (retries, delayed resyncs) */
    this.later = new Set();
    /** @private */ this.expAt = 0;
    /** @private */ this.roundResult = {resumed: [], fresh: [], reconnected: false};
  }

  /**
   * open starts the first connection; connect() calls it. The work starts
   * in a microtask, so that listeners added right after connect() see the
   * first "connecting" state event too.
   */
  open() {
    if (this.ws || this.dialing || this.timers.reconnect || this.state === "closed") return;
    this.dialing = true;
    queueMicrotask(() => this.dial());
  }

  // ---- public API ----------------------------------------------------

  /**
   * on adds a listener; it returns the function that removes it.
   * @param {string} event
   * @param {Function} fn
   * @returns {() => void}
   */
  on(event, fn) { return this.events.on(event, fn); }

  /**
   * off removes a listener.
   * @param {string} event
   * @param {Function} fn
   */
  off(event, fn) { this.events.off(event, fn); }

  /**
   * subscribe subscribes to channels and resolves with the node's ack once
   * every channel is answered. It rejects with a TickgateError (the first
   * refused channel's; `errors` holds all of them and `accepted` the
   * channels subscribed all the same) when the node refused any. The
   * client keeps accepted channels subscribed across reconnects.
   * @param {string | string[]} channels
   * @param {{throttleMs?: number, snapshot?: boolean, depth?: number, recent?: number, bars?: number}} [options]
   * @returns {Promise<{channels: string[], resumed: string[]}>}
   */
  subscribe(channels, options = {}) {
    const names = [...new Set(typeof channels === "string" ? [channels] : channels)];
    if (this.state === "closed") return Promise.reject(new TickgateError("closed", "the client is closed"));
    if (names.length === 0) return Promise.reject(new TickgateError("bad_request", "subscribe needs at least one channel"));
    for (const n of names) {
      if (!parseChannel(n)) return Promise.reject(new TickgateError("bad_channel", "not a channel name: " + String(n), {channel: String(n)}));
    }
    const t = options.throttleMs;
    if (t !== undefined && !(Number.isInteger(t) && t >= 0 && t <= 60000)) {
      return Promise.reject(new TickgateError("bad_request", "throttleMs must be an integer from 0 to 60000"));
    }
    const opts = {};
    if (t) opts.throttle_ms = t;
    if (options.snapshot === false) {
      // A book has nothing to apply its deltas to without its snapshot:
      // this module keeps verified books only (the Go client hands such a
      // book's deltas over unchecked instead).
      const book = names.find(n => parseChannel(n)?.kind === "book");
      if (book) return Promise.reject(new TickgateError("bad_request", "snapshot:false is for tickers and trades: a book needs its snapshot", {channel: book}));
      opts.snapshot = false;
    }
    // Contract 1.1: a node without the feature ignores the option.
    const {depth, recent, bars} = options;
    if (depth !== undefined && ![10, 25, 100, 500, 1000].includes(depth)) {
      return Promise.reject(new TickgateError("bad_request", "depth must be 10, 25, 100, 500 or 1000"));
    }
    if (recent !== undefined && !(Number.isInteger(recent) && recent >= 0 && recent <= 1000)) {
      return Promise.reject(new TickgateError("bad_request", "recent must be an integer from 0 to 1000"));
    }
    if (bars !== undefined && !(Number.isInteger(bars) && bars >= 1 && bars <= 1000)) {
      return Promise.reject(new TickgateError("bad_request", "bars must be an integer from 1 to 1000"));
    }
    if (depth) opts.depth = depth;
    if (recent) opts.recent = recent;
    if (bars) opts.bars = bars;
    return new Promise((resolve, reject) => {
      const req = {open: new Set(names), accepted: [], resumed: [], errors: [], resolve, reject};
      for (const n of names) {
        let sub = this.subs.get(n);
        if (!sub) {
          sub = {channel: new Channel(n), opts};
          this.subs.set(n, sub);
        } else {
          sub.opts = opts;
        }
        sub.channel.barLimit = opts.bars ?? DEFAULT_BARS;
        const w = this.waiting.get(n) ?? [];
        w.push(req);
        this.waiting.set(n, w);
      }
      if (this.state === "open") this.sendSubscribe(names, false);
      // Otherwise the re-subscribe round after the next welcome sends them.
    });
  }

  /**
   * unsubscribe ends the subscriptions and resolves with the node's ack
   * (at once when not connected: there is nothing to end on the node).
   * @param {string | string[]} channels
   * @returns {Promise<{channels: string[]}>}
   */
  unsubscribe(channels) {
    const names = [...new Set(typeof channels === "string" ? [channels] : channels)];
    if (this.state === "closed") return Promise.reject(new TickgateError("closed", "the client is closed"));
    if (names.length === 0) return Promise.reject(new TickgateError("bad_request", "unsubscribe needs at least one channel"));
    for (const n of names) {
      if (!parseChannel(n)) return Promise.reject(new TickgateError("bad_channel", "not a channel name: " + String(n), {channel: String(n)}));
    }
    for (const n of names) {
      this.subs.delete(n);
      this.resyncs.delete(n);
      this.round?.delete(n);
    }
    this.endRound();
    if (this.state !== "open") return Promise.resolve({channels: names});
    return new Promise((resolve, reject) => {
      this.command({op: "unsubscribe", channels: names}, {resolve, reject});
    });
  }

  /**
   * ping sends the `ping` op and resolves with the round trip in ms.
   * @returns {Promise<number>}
   */
  ping() {
    if (this.state !== "open") return Promise.reject(new TickgateError("closed", "not connected"));
    const began = performance.now();
    return new Promise((resolve, reject) => {
      this.command({op: "ping"}, {resolve: () => resolve(performance.now() - began), reject});
    });
  }

  /**
   * reconnect drops the current connection and connects again at once,
   * resuming every channel from the last seq it holds.
   */
  reconnect() {
    if (this.state === "closed") return;
    if (this.ws) this.drop(4000, "client reconnects", true);
    else if (!this.dialing) {
      this.fails = 0; // the user asked: no backoff earned so far applies
      clearTimeout(this.timers.reconnect);
      this.timers.reconnect = 0;
      this.dial();
    }
  }

  /**
   * close ends the client: the connection closes with 1000 and nothing
   * reconnects. Pending subscribes reject with code `closed`.
   * @returns {Promise<void>}
   */
  close() {
    if (this.state === "closed") return Promise.resolve();
    const ws = this.ws;
    this.setState("closed", {});
    for (const k of Object.keys(this.timers)) clearTimeout(this.timers[k]);
    this.outbox.stop();
    for (const t of this.later) clearTimeout(t);
    this.later.clear();
    this.failAll(new TickgateError("closed", "the client is closed"));
    this.ws = null;
    if (!ws) return Promise.resolve();
    return new Promise(resolve => {
      ws.onclose = () => resolve();
      ws.onmessage = null;
      ws.onerror = null;
      try {
        ws.close(1000, "bye");
      } catch {
        resolve();
      }
      setTimeout(resolve, 2000);
    });
  }

  /**
   * channel describes one subscribed channel, or returns undefined.
   * @param {string} name
   */
  channel(name) {
    const s = this.subs.get(name);
    return s ? describe(s.channel) : undefined;
  }

  /** channels describes every subscribed channel. */
  channels() {
    return [...this.subs.values()].map(s => describe(s.channel));
  }

  /**
   * book returns the book of a subscribed book channel while the client
   * knows it to be right (state live or stale), else null.
   * @param {string} name
   * @returns {import("./book.js").Book | null}
   */
  book(name) {
    const ch = this.subs.get(name)?.channel;
    if (!ch || !ch.book || !ch.book.verified) return null;
    return ch.state === "live" || ch.state === "stale" ? ch.book : null;
  }

  /**
   * ticker returns the latest ticker data of a subscribed ticker channel,
   * or null before its first.
   * @param {string} name
   */
  ticker(name) {
    return this.subs.get(name)?.channel.ticker ?? null;
  }

  /**
   * candles returns a copy of a candle channel's bars, oldest first (the
   * last possibly open), or null while it holds none it knows to be right.
   * @param {string} name
   */
  candles(name) {
    const ch = this.subs.get(name)?.channel;
    if (!ch || !ch.bars || (ch.state !== "live" && ch.state !== "stale")) return null;
    return ch.bars.slice();
  }

  // ---- connecting ----------------------------------------------------

  /** @private */
  async dial() {
    this.timers.reconnect = 0;
    this.setState("connecting", {attempt: this.fails + 1});
    let token;
    this.dialing = true;
    try {
      token = typeof this.opts.token === "function" ? await this.opts.token() : this.opts.token;
      if (typeof token !== "string" || token === "") throw new TypeError("the token source returned no token");
    } catch (err) {
      this.dialing = false;
      if (this.state === "closed") return;
      this.emitError(new TickgateError("token", "token source: " + String(err?.message ?? err), {cause: err}));
      this.fails++;
      this.scheduleReconnect(1006, "no token");
      return;
    }
    this.dialing = false;
    if (this.state === "closed" || this.ws) return;
    const proto = SUBPROTOCOLS[this.opts.codec];
    let ws;
    try {
      ws = new this.opts.WebSocket(this.opts.url, [proto, "bearer." + token]);
    } catch (err) {
      // A malformed URL: no use retrying.
      this.emitError(new TickgateError("protocol", "WebSocket: " + String(err?.message ?? err), {cause: err}));
      this.setState("closed", {});
      this.failAll(new TickgateError("closed", "the client cannot connect: " + String(err?.message ?? err)));
      return;
    }
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    this.stats.connects++;
    ws.onopen = () => {
      if (ws.protocol !== proto) {
        this.emitError(new TickgateError("protocol", `the node chose subprotocol "${ws.protocol}", not ${proto}`));
        this.drop(1002, "wrong subprotocol", false);
        return;
      }
      this.lastFrameAt = Date.now();
      this.armWatchdog(20000); // the welcome comes first, at once
    };
    ws.onmessage = ev => {
      if (this.ws !== ws) return;
      this.lastFrameAt = Date.now();
      this.frame(ev.data);
    };
    ws.onclose = ev => {
      if (this.ws !== ws) return;
      this.closed(ev.code || 1006, ev.reason || "", false);
    };
    ws.onerror = () => {}; // a close event follows and says what it can
  }

  /**
   * drop closes the current socket from this side and goes on as if the
   * node had closed it (with code).
   * @private
   */
  drop(code, reason, prompt) {
    const ws = this.ws;
    if (!ws) return;
    ws.onmessage = null;
    ws.onclose = null;
    try {
      ws.close(code >= 3000 && code <= 4999 ? code : 4000, reason);
    } catch {
      // already closing
    }
    this.closed(code, reason, prompt);
  }

  /**
   * closed goes on after the current socket ended; prompt: come back at
   * once (a drain, or the user asked).
   * @private
   */
  closed(code, reason, prompt) {
    this.ws = null;
    for (const k of ["refresh", "watchdog", "notice", "resync"]) {
      clearTimeout(this.timers[k]);
      this.timers[k] = 0;
    }
    this.stats.closeCode = code;
    this.stats.closeReason = reason;
    const healthy = this.welcomedAt && Date.now() - this.welcomedAt >= STABLE_MS;
    this.welcomedAt = 0;
    this.welcome = null;
    this.round = null;
    // Commands in flight are lost with the socket. Subscribes are sent
    // again by the next round; an unsubscribe is done (a new connection
    // holds nothing); the rest fail.
    for (const cmd of [...this.inflight.values(), ...this.outbox.take()]) {
      if (cmd.op === "unsubscribe") cmd.resolve?.({channels: cmd.wire.channels});
      else if (cmd.op !== "subscribe") cmd.reject?.(new TickgateError("closed", `the connection closed (${code}) before the answer`, {id: cmd.id}));
    }
    this.inflight.clear();
    this.resyncs.clear();
    for (const s of this.subs.values()) {
      s.onConnection = false; // a new connection holds nothing
      if (s.channel.disconnected()) this.channelChanged(s.channel);
    }
    if (this.state === "closed") return;
    // Failures count until a session lasts STABLE_MS: a node that keeps
    // closing soon after the welcome, even with 1001 or 4001 (a token
    // source that hands out tokens about to expire), backs off too.
    if (healthy || prompt) this.fails = 0;
    this.fails++;
    this.scheduleReconnect(code, reason, prompt);
  }

  /** @private */
  scheduleReconnect(code, reason, prompt = false) {
    const delay = reconnectDelay({code: prompt ? 1001 : code, fails: this.fails, withinMs: this.notice?.within_ms, backoff: this.opts.backoff, random: this.opts.random});
    this.notice = null;
    this.setState("reconnecting", {code, reason, delayMs: delay, attempt: this.fails});
    this.timers.reconnect = setTimeout(() => this.dial(), delay);
  }

  /** @private the node has been silent too long: the socket is dead */
  armWatchdog(ms) {
    clearTimeout(this.timers.watchdog);
    this.timers.watchdog = setTimeout(() => {
      if (!this.ws) return;
      const idle = Date.now() - this.lastFrameAt;
      if (idle >= ms) {
        this.emitError(new TickgateError("protocol", `nothing from the node for ${idle} ms`));
        this.drop(4000, "node silent", false);
      } else {
        this.armWatchdog(ms);
      }
    }, Math.max(100, ms - (Date.now() - this.lastFrameAt)));
  }

  // ---- incoming ------------------------------------------------------

  /** @private */
  frame(data) {
    let m;
    try {
      if (this.opts.codec === "json") {
        if (typeof data !== "string") throw new Error("a binary frame on the json codec");
        m = json.parse(data);
      } else {
        if (!(data instanceof ArrayBuffer)) throw new Error("a text frame on the msgpack codec");
        m = msgpack.decode(data);
      }
      if (!m || typeof m !== "object" || typeof m.type !== "string") throw new Error("a message without type");
    } catch (err) {
      this.emitError(new TickgateError("protocol", "undecodable message: " + String(err?.message ?? err), {cause: err}));
      return;
    }
    this.stats.messages++;
    if (this.events.has("message")) this.events.emit("message", m);
    this.dispatch(m);
  }

  /** @private */
  dispatch(m) {
    switch (m.type) {
      case "welcome": return this.welcomed(m);
      case "subscribed": return this.answer(m, "subscribed");
      case "unsubscribed": return this.answer(m, "unsubscribed");
      case "error": return this.errorMessage(m);
      case "authenticated": {
        const cmd = this.inflight.get(m.id);
        if (cmd) this.inflight.delete(m.id);
        if (this.welcome) this.welcome.exp = m.exp;
        this.events.emit("authenticated", {exp: m.exp});
        this.scheduleRefresh(m.exp);
        return;
      }
      case "pong": {
        const cmd = this.inflight.get(m.id);
        if (cmd) {
          this.inflight.delete(m.id);
          cmd.resolve?.(m);
        }
        return;
      }
      case "heartbeat": return;
      case "reconnect": {
        this.notice = m;
        this.events.emit("reconnect", {reason: m.reason, withinMs: m.within_ms});
        // The node closes within within_ms; if it does not, leave anyway.
        const ws = this.ws;
        clearTimeout(this.timers.notice);
        this.timers.notice = setTimeout(() => {
          if (this.ws === ws) this.drop(4000, "reconnect notice", true);
        }, (Number(m.within_ms) || 5000) + 2000);
        return;
      }
      case "snapshot": case "update": case "gap": case "status":
        return this.data(m);
    }
    // Unknown types (a later contract's) are ignored.
  }

  /** @private */
  welcomed(m) {
    this.welcome = m;
    this.welcomedAt = Date.now();
    const reconnected = this.stats.connects > 1;
    if (reconnected) this.stats.reconnects++;
    this.setState("open", {welcome: m, reconnected});
    this.events.emit("welcome", m);
    const hb = Number(m.heartbeat_ms) || 15000;
    this.armWatchdog(2 * hb + 5000);
    this.scheduleRefresh(m.exp);
    // The re-subscribe round: every channel, with since where it holds
    // state, in as few commands as the options allow. It covers any resync
    // that waited for the connection.
    this.resyncs.clear();
    const names = [...this.subs.keys()];
    this.round = names.length ? new Set(names) : null;
    this.roundResult = {resumed: [], fresh: [], reconnected};
    if (names.length) this.sendSubscribe(names, true);
    this.outbox.flush();
  }

  /** @private an `error` message */
  errorMessage(m) {
    const err = TickgateError.fromMessage(m);
    if (err.code === "history_unavailable" && err.channel) {
      // Not a refusal: the channel is subscribed, but the trades between
      // the last one held and the first live one are lost to the client.
      if (this.subs.has(err.channel)) this.events.emit("gap", {channel: err.channel, kind: "history", message: err.message});
      return;
    }
    const cmd = typeof m.id === "number" ? this.inflight.get(m.id) : undefined;
    if (cmd && cmd.op === "subscribe") {
      if (err.channel && cmd.channels.has(err.channel)) {
        cmd.channels.delete(err.channel);
        this.refused(err, cmd);
        if (cmd.channels.size === 0) this.inflight.delete(m.id);
        this.endRound();
        return;
      }
      if (!err.channel) {
        // The whole command failed (bad_request, rate_limited).
        this.inflight.delete(m.id);
        for (const n of cmd.channels) {
          const e = new TickgateError(err.code, err.message, {channel: n, id: err.id});
          this.refused(e, cmd);
        }
        this.endRound();
        return;
      }
    }
    if (cmd && cmd.op === "auth") {
      if (err.code === "forbidden" && err.channel) {
        // The refreshed token no longer allows this channel: it ended.
        this.dropChannel(err.channel, err);
        return;
      }
      this.inflight.delete(m.id);
      this.emitError(err);
      this.retryRefresh();
      return;
    }
    if (cmd) {
      this.inflight.delete(m.id);
      cmd.reject?.(err);
      return;
    }
    if (err.code === "forbidden" && err.channel && this.subs.has(err.channel)) {
      this.dropChannel(err.channel, err);
      return;
    }
    this.emitError(err);
  }

  /**
   * refused handles one channel's refusal of a subscribe: a user waiting
   * on it gets the error and the channel is dropped; a refusal of the
   * client's own re-subscribe is retried when it is worth it.
   * @private
   */
  refused(err, cmd) {
    const n = err.channel;
    const users = this.waiting.get(n);
    this.round?.delete(n);
    if (users?.length) {
      this.waiting.delete(n);
      const held = this.subs.get(n);
      if (held?.heldOpts) {
        // A re-subscribe of a channel the client held, refused: it keeps
        // the subscription it had, with its options, as the Go client
        // does. When the node holds nothing of it on this connection (a
        // reconnect came between), its own re-subscribe is still owed.
        held.opts = held.heldOpts;
        for (const req of users) this.settle(req, n, null, err);
        if (!held.onConnection) this.retryLater(n, held, err, held.channel.resumeSeq(), true);
        return;
      }
      this.subs.delete(n);
      for (const req of users) this.settle(req, n, null, err);
      return;
    }
    const sub = this.subs.get(n);
    if (!sub) return;
    if (err.code === "unavailable" || err.code === "rate_limited") {
      this.retryLater(n, sub, err, cmd.since?.[n], false);
      return;
    }
    this.dropChannel(n, err);
  }

  /**
   * retryLater re-subscribes channel n after err's retry_ms (or 2 to 4 s),
   * while sub is still its subscription and the client is open, and, with
   * unlessHeld, unless the node took it back on this connection meanwhile.
   * @private
   */
  retryLater(n, sub, err, since, unlessHeld) {
    const delay = err.retryMs ?? 2000 + Math.floor(this.opts.random() * 2000);
    this.events.emit("resync", {channel: n, reason: err.code, since, delayMs: delay});
    this.after(delay, () => {
      if (this.subs.get(n) === sub && this.state === "open" && !(unlessHeld && sub.onConnection)) this.queueResync(n, sub.channel.resumeSeq(), 0);
    });
  }

  /** @private the channel ends on the client's side too */
  dropChannel(name, err) {
    const sub = this.subs.get(name);
    if (!sub) return;
    this.subs.delete(name);
    this.resyncs.delete(name);
    this.events.emit("channel", {channel: name, state: "closed", previous: sub.channel.state, reason: err.code});
    this.emitError(err);
  }

  /** @private a `subscribed` or `unsubscribed` ack */
  answer(m, type) {
    const cmd = this.inflight.get(m.id);
    if (!cmd) return;
    this.inflight.delete(m.id);
    if (type === "unsubscribed") {
      cmd.resolve?.({channels: m.channels ?? []});
      return;
    }
    const resumed = new Set(Array.isArray(m.resumed) ? m.resumed : []);
    // The options the node now holds these channels with: the acked
    // command's, whatever the user asked since.
    const {op: _op, id: _id, channels: _channels, since: _since, ...acked} = cmd.wire;
    for (const n of m.channels ?? []) {
      cmd.channels.delete(n);
      const sub = this.subs.get(n);
      if (sub) {
        const r = resumed.has(n);
        // The options the client holds it with, across connections, kept
        // if a later re-subscribe is refused; and that the node holds it
        // on this connection.
        sub.heldOpts = acked;
        sub.onConnection = true;
        if (sub.channel.acked(r)) this.channelChanged(sub.channel);
        if (this.round?.delete(n)) {
          (r ? this.roundResult.resumed : this.roundResult.fresh).push(n);
          if (r) this.stats.resumed++;
        }
      }
      const users = this.waiting.get(n);
      if (users) {
        this.waiting.delete(n);
        for (const req of users) this.settle(req, n, resumed.has(n), null);
      }
    }
    // Channels neither acked nor refused (a node that answers less than
    // asked): the round does not wait for them.
    for (const n of cmd.channels) this.round?.delete(n);
    this.endRound();
  }

  /** @private the re-subscribe round is complete: tell the user */
  endRound() {
    if (!this.round || this.round.size > 0) return;
    this.round = null;
    const r = this.roundResult;
    this.events.emit("resubscribed", {resumed: r.resumed, fresh: r.fresh, reconnected: r.reconnected});
  }

  /** @private */
  settle(req, name, resumed, err) {
    if (!req.open.delete(name)) return;
    if (err) req.errors.push(err);
    else {
      req.accepted.push(name);
      if (resumed) req.resumed.push(name);
    }
    if (req.open.size > 0) return;
    if (req.errors.length === 0) {
      req.resolve({channels: req.accepted, resumed: req.resumed});
      return;
    }
    const first = req.errors[0];
    first.errors = req.errors;
    first.accepted = req.accepted;
    req.reject(first);
  }

  /** @private market data for a channel */
  data(m) {
    const sub = this.subs.get(m.channel);
    if (!sub) return; // not (or no longer) subscribed
    const ch = sub.channel;
    const s = ch.handle(m);
    if (s.checksumOk === false) {
      this.events.emit("checksum", {channel: ch.name, seq: m.seq, want: s.checksum?.want, got: s.checksum?.got});
    }
    if (s.gap) {
      this.events.emit("gap", {channel: ch.name, kind: "prev", seq: m.seq, prev: m.prev, last: s.since ?? ch.last});
    }
    if (s.gapSeqs) {
      this.events.emit("gap", {channel: ch.name, kind: "feed", from: s.gapSeqs[0], to: s.gapSeqs[1]});
    }
    if (s.stateChanged) this.channelChanged(ch);
    if (m.type === "snapshot") this.stats.snapshots++;
    if (s.applied) {
      const meta = {channel: ch.name, seq: m.seq, type: m.type, ts: m.data?.ts, message: m};
      switch (ch.kind) {
        case "book": this.events.emit("book", ch.book, meta); break;
        case "ticker": this.events.emit("ticker", ch.ticker, meta); break;
        case "trade":
          for (const t of s.trades) this.events.emit("trade", t, {...meta, ts: t?.ts});
          break;
        case "candle":
          this.events.emit("candle", ch.bars, {...meta, bar: s.bar ?? null, ts: s.bar?.ts ?? ch.bars?.at(-1)?.ts});
          break;
      }
    }
    if (s.resync) {
      // Resyncs of one channel in quick succession back off; one after a
      // quiet minute goes at once again.
      const now = Date.now();
      if (now - (sub.resyncAt ?? 0) > 60000) sub.resyncs = 0;
      sub.resyncAt = now;
      sub.resyncs = (sub.resyncs ?? 0) + 1;
      this.queueResync(ch.name, s.since, sub.resyncs);
    }
  }

  /** @private */
  channelChanged(ch) {
    this.events.emit("channel", {channel: ch.name, state: ch.state, reason: ch.reason, last: ch.last});
  }

  // ---- outgoing ------------------------------------------------------

  /**
   * queueResync re-subscribes one channel soon: resyncs found together go
   * out in one command, and a channel that keeps failing waits longer
   * (count: its resyncs in quick succession, this one included).
   * @private
   */
  queueResync(name, since, count) {
    const reason = since === undefined ? "snapshot" : "resume";
    // The first resync of a channel goes at once; repeated ones back off,
    // so a node that keeps sending a bad book is not asked in a loop.
    const delay = count > 1 ? Math.min(30000, 500 * 2 ** Math.min(count - 2, 6)) : 0;
    this.events.emit("resync", {channel: name, reason, since, delayMs: delay});
    const go = () => {
      if (!this.subs.has(name)) return;
      this.resyncs.set(name, since);
      if (!this.timers.resync) this.timers.resync = setTimeout(() => this.flushResyncs(), 0);
    };
    if (delay) this.after(delay, go);
    else go();
  }

  /** @private */
  flushResyncs() {
    this.timers.resync = 0;
    if (this.state !== "open" || this.resyncs.size === 0) return;
    const names = [...this.resyncs.keys()].filter(n => this.subs.has(n));
    const since = new Map(this.resyncs);
    this.resyncs.clear();
    this.sendSubscribe(names, false, since);
  }

  /**
   * sendSubscribe sends subscribe commands for names, grouped by their
   * options and in chunks. withSince: each channel's since is the last
   * seq its Channel holds; or from the given map.
   * @private
   */
  sendSubscribe(names, withSince, sinceMap) {
    const groups = new Map();
    for (const n of names) {
      const sub = this.subs.get(n);
      if (!sub) continue;
      const o = sub.opts;
      const key = `${o.throttle_ms ?? 0}/${o.snapshot ?? true}/${o.depth ?? 0}/${o.recent ?? 0}/${o.bars ?? 0}`;
      const g = groups.get(key) ?? {opts: sub.opts, names: []};
      g.names.push(n);
      groups.set(key, g);
    }
    for (const g of groups.values()) {
      for (let i = 0; i < g.names.length; i += CHUNK) {
        const chunk = g.names.slice(i, i + CHUNK);
        const since = {};
        let any = false;
        for (const n of chunk) {
          const s = sinceMap ? sinceMap.get(n) : withSince ? this.subs.get(n).channel.resumeSeq() : undefined;
          if (s !== undefined && s !== 0) {
            since[n] = s;
            any = true;
          }
        }
        const cmd = {op: "subscribe", channels: chunk, ...g.opts};
        if (any) cmd.since = since;
        this.command(cmd, {channels: new Set(chunk), since});
      }
    }
  }

  /**
   * command sends one command with a fresh id (rate limited); meta is
   * kept until its answer.
   * @private
   */
  command(cmd, meta) {
    const id = this.nextId++;
    const entry = {id, op: cmd.op, ...meta, wire: {op: cmd.op, id, ...withoutOp(cmd)}};
    this.outbox.push(entry);
    return id;
  }

  /** @private transmit writes one command; its answer is awaited by id. */
  transmit(e) {
    this.inflight.set(e.id, e);
    try {
      this.ws.send(this.opts.codec === "json" ? json.stringify(e.wire) : msgpack.encode(e.wire));
    } catch (err) {
      this.emitError(new TickgateError("protocol", "send: " + String(err?.message ?? err), {cause: err}));
    }
  }

  // ---- token refresh -------------------------------------------------

  /** @private refresh at refreshAt of the time left until exp */
  scheduleRefresh(exp) {
    clearTimeout(this.timers.refresh);
    this.timers.refresh = 0;
    if (typeof this.opts.token !== "function" || typeof exp !== "number") return;
    const left = exp * 1000 - Date.now();
    const delay = Math.max(0, Math.min(left * this.opts.refreshAt, 2 ** 31 - 1));
    this.expAt = exp * 1000;
    this.timers.refresh = setTimeout(() => this.refresh(), delay);
  }

  /** @private */
  retryRefresh() {
    const left = (this.expAt ?? 0) - Date.now();
    if (left <= 0) return; // the node closes with 4001; the reconnect asks for a token
    clearTimeout(this.timers.refresh);
    this.timers.refresh = setTimeout(() => this.refresh(), Math.max(200, Math.min(10000, left / 3)));
  }

  /** @private */
  async refresh() {
    this.timers.refresh = 0;
    const ws = this.ws;
    let token;
    try {
      token = await /** @type {Function} */ (this.opts.token)();
      if (typeof token !== "string" || token === "") throw new TypeError("the token source returned no token");
    } catch (err) {
      this.emitError(new TickgateError("token", "token source: " + String(err?.message ?? err), {cause: err}));
      if (this.ws === ws) this.retryRefresh();
      return;
    }
    if (this.ws !== ws || this.state !== "open") return;
    this.command({op: "auth", token}, {});
  }

  // ---- helpers -------------------------------------------------------

  /** @private after runs fn once after ms, unless the client is closed first */
  after(ms, fn) {
    const t = setTimeout(() => {
      this.later.delete(t);
      fn();
    }, ms);
    this.later.add(t);
  }

  /** @private */
  setState(state, info) {
    const previous = this.state;
    if (previous === "closed") return;
    this.state = state;
    this.events.emit("state", {state, previous, ...info});
  }

  /** @private */
  failAll(err) {
    for (const [n, reqs] of this.waiting) {
      for (const req of reqs) this.settle(req, n, null, new TickgateError(err.code, err.message, {channel: n}));
    }
    this.waiting.clear();
    for (const cmd of this.inflight.values()) cmd.reject?.(err);
    this.inflight.clear();
    for (const c of this.outbox.take()) c.reject?.(err);
  }

  /** @private */
  emitError(err) {
    if (this.events.has("error")) this.events.emit("error", err);
  }

  /** @private a listener threw */
  reportThrow(err, event) {
    if (event !== "error" && this.events.has("error")) {
      this.events.emit("error", new TickgateError("listener", `a "${event}" listener threw: ${String(err?.message ?? err)}`, {cause: err}));
    } else {
      console.error("tickgate: a listener threw", err);
    }
  }
}

/** @param {Channel} ch */
function describe(ch) {
  return {name: ch.name, kind: ch.kind, symbol: ch.symbol, state: ch.state, reason: ch.reason, last: ch.last, stats: {...ch.stats}};
}

function withoutOp(cmd) {
  const {op: _, ...rest} = cmd;
  return rest;
}
