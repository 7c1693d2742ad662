// tickgate's live dashboard, built only on the browser module: a market
// overview of every symbol's ticker, the order book ladder, the trade
// tape and the candle chart (an interval to choose) of the chosen symbol, the connection's and every channel's state,
// update rates, the feed-to-screen latency, and the counters of gaps and
// checksum checks. Messages only update the model; the screen is drawn on
// animation frames, at most once per frame, so 50 symbols stay smooth.
//
// The token comes from the URL fragment (#token=…, which `tickgate dev`
// prints and browsers never send to a server) or from the form; it is
// kept in memory only. window.tickgateDashboard exposes the client and a
// stats() summary, for debugging and for the tests.

import {connect, toMillis} from "/client/tickgate.js";
import {Latency, Rates} from "./metrics.js";
import {CandleChart, Channels, Ladder, Overview, Tape} from "./view.js";

const $ = id => /** @type {HTMLElement} */ (document.getElementById(id));
const DEFAULT_SYMBOLS = ["BTC-USD", "ETH-USD", "SOL-USD"];
const SYMBOL = /^[A-Za-z0-9_-]{1,32}$/;
/** How long a changed price flashes, ms (view.js draws it). */
const FLASH_MS = 700;
/** How many bars the candle chart asks for and shows. */
const CHART_BARS = 60;

/** The model: what the messages changed since the last frame. */
const model = {
  symbols: /** @type {string[]} */ ([]),
  selected: "",
  /** @type {Map<string, {ticker: any, first: number, dir: number, changedAt: number}>} */
  markets: new Map(),
  /** @type {Set<string>} symbols whose ticker changed */
  dirtyTickers: new Set(),
  /** @type {Set<string>} symbols whose last price is flashing its change */
  flashing: new Set(),
  ladderDirty: true,
  /** trades of the selected symbol not drawn yet, oldest first */
  freshTrades: /** @type {any[]} */ ([]),
  tapeDirty: true,
  /** the candle chart's interval; its channel is candle.<interval>.<selected> */
  interval: "1m",
  candlesDirty: true,
  headerDirty: true,
  conn: {state: "connecting", text: "connecting", detail: ""},
  lastRound: /** @type {any} */ (null),
  feedGaps: 0,
  clientGaps: 0,
  log: /** @type {string[]} */ ([]),
  /** channel → data ts (Unix ms) of its newest message */
  newestTs: new Map(),
  frames: 0,
  renderMs: {total: 0, max: 0},
  trades: 0,
};

const rates = new Rates();
const latency = new Latency();
let client = null;
let raf = 0;
let views = null;

/** schedule asks for one frame; messages call it, frames draw. */
function schedule() {
  if (!raf) raf = requestAnimationFrame(frame);
}

function frame() {
  raf = 0;
  const began = performance.now();
  const now = began;
  if (model.headerDirty) drawHeader();
  // A flash ends with one more draw of its row.
  for (const sym of model.flashing) {
    if (now - model.markets.get(sym).changedAt >= FLASH_MS) {
      model.flashing.delete(sym);
      model.dirtyTickers.add(sym);
    }
  }
  for (const sym of model.dirtyTickers) drawTicker(sym, now);
  model.dirtyTickers.clear();
  if (model.ladderDirty) {
    model.ladderDirty = false;
    const ch = "book." + model.selected;
    const info = client.channel(ch);
    views.ladder.draw(ch, client.book(ch), info?.state ?? "closed", {ok: info?.stats.checksumOk ?? 0, bad: info?.stats.checksumBad ?? 0, seq: String(info?.last ?? "")});
  }
  if (model.tapeDirty) {
    model.tapeDirty = false;
    const ch = "trade." + model.selected;
    views.tape.draw(ch, client.channel(ch)?.state ?? "closed", model.freshTrades);
    model.freshTrades = [];
  }
  if (model.candlesDirty) {
    model.candlesDirty = false;
    const ch = candleChannel(model.selected);
    views.candles.draw(ch, client.channel(ch)?.state ?? "closed", client.candles(ch));
  }
  latency.shown(performance.timeOrigin + performance.now());
  const took = performance.now() - began;
  model.frames++;
  model.renderMs.total += took;
  model.renderMs.max = Math.max(model.renderMs.max, took);
}

function drawTicker(sym, now) {
  const m = model.markets.get(sym);
  if (!m) return;
  const ch = client.channel("ticker." + sym);
  views.overview.draw(sym, m, rates.rate("ticker." + sym), ch?.state ?? "closed", sym === model.selected, now);
}

function drawHeader() {
  model.headerDirty = false;
  const c = $("conn");
  c.className = "badge " + model.conn.state;
  c.textContent = model.conn.text;
  c.title = model.conn.detail;
  const w = client.welcome;
  $("node").textContent = w ? `node ${w.node} · ${w.codec} · session ${w.session}` : "";
}

/** tick runs once a second: rates, latency percentiles, the channels table. */
function tickSecond() {
  const now = performance.now();
  let total = 0, ok = 0, bad = 0, resyncs = 0;
  const list = [];
  for (const info of client.channels()) {
    const r = rates.sample(info.name, info.stats.messages, now);
    total += r;
    ok += info.stats.checksumOk;
    bad += info.stats.checksumBad;
    resyncs += info.stats.resyncs;
    const ts = model.newestTs.get(info.name);
    list.push({
      name: info.name, state: info.state, reason: info.reason, rate: r, last: String(info.last),
      latency: ts ? Date.now() - ts : NaN, gaps: `${info.stats.gaps} / ${info.stats.feedGaps}`,
      checks: info.kind === "book" ? `${info.stats.checksumOk} ✓ ${info.stats.checksumBad} ✗` : "–", resyncs: info.stats.resyncs,
    });
  }
  // Book and trade channels first, then the tickers.
  list.sort((a, b) => (a.name.startsWith("ticker.") ? 1 : 0) - (b.name.startsWith("ticker.") ? 1 : 0) || (a.name < b.name ? -1 : 1));
  views.channels.draw(list);
  const p = latency.percentiles();
  $("c-rate").textContent = total.toFixed(0);
  $("c-latency").textContent = p.n ? `${p.p50.toFixed(0)} / ${p.p99.toFixed(0)} ms` : "–";
  $("c-checksums").textContent = `${ok} / ${bad}`;
  $("c-checksums").className = bad ? "down" : ok ? "up" : "";
  $("c-gaps").textContent = `${model.clientGaps} / ${model.feedGaps}`;
  $("c-resyncs").textContent = String(resyncs);
  $("c-reconnects").textContent = String(client.stats.reconnects);
  for (const sym of model.symbols) model.dirtyTickers.add(sym);
  schedule();
}

function log(line) {
  model.log.push(`${new Date().toLocaleTimeString(undefined, {hour12: false})} ${line}`);
  if (model.log.length > 20) model.log.shift();
  const ol = $("log");
  const li = document.createElement("li");
  li.textContent = model.log[model.log.length - 1];
  ol.prepend(li);
  while (ol.childElementCount > 20) ol.lastElementChild.remove();
}

/** candleChannel is the chart's channel for symbol. */
function candleChannel(symbol) {
  return `candle.${model.interval}.${symbol}`;
}

/** select shows symbol's book, trades and candles: the old ones are unsubscribed. */
async function select(symbol) {
  if (symbol === model.selected || !model.symbols.includes(symbol)) return;
  const old = model.selected;
  model.selected = symbol;
  model.freshTrades = [];
  views.tape.clear();
  model.ladderDirty = model.tapeDirty = model.candlesDirty = true;
  for (const s of [old, symbol]) if (s) model.dirtyTickers.add(s);
  schedule();
  if (old) client.unsubscribe(["book." + old, "trade." + old, candleChannel(old)]).catch(err => log(`unsubscribe: ${err.message}`));
  try {
    await client.subscribe(["book." + symbol, "trade." + symbol]);
  } catch (err) {
    log(`subscribe ${symbol}: ${err.code}: ${err.message}`);
  }
  await subscribeCandles(symbol);
}

/** subscribeCandles subscribes the chart's channel of symbol. */
async function subscribeCandles(symbol) {
  try {
    await client.subscribe([candleChannel(symbol)], {bars: CHART_BARS});
  } catch (err) {
    log(`subscribe ${candleChannel(symbol)}: ${err.code}: ${err.message}`);
  }
}

/** chooseInterval switches the chart to another interval. */
async function chooseInterval(interval) {
  if (interval === model.interval) return;
  const old = candleChannel(model.selected);
  model.interval = interval;
  /** @type {HTMLSelectElement} */ ($("candles-interval")).value = interval;
  model.candlesDirty = true;
  schedule();
  client.unsubscribe([old]).catch(err => log(`unsubscribe: ${err.message}`));
  await subscribeCandles(model.selected);
}

/** start connects with token and shows symbols. */
function start(token, symbols, codec) {
  model.symbols = symbols;
  $("login").hidden = true;
  $("main").hidden = false;
  $("overview-count").textContent = `(${symbols.length} symbols)`;
  views = {
    overview: new Overview(/** @type {any} */ ($("overview").querySelector("tbody")), s => select(s)),
    ladder: new Ladder(document),
    tape: new Tape(document),
    candles: new CandleChart(document),
    channels: new Channels(/** @type {any} */ ($("channels").querySelector("tbody"))),
  };
  for (const s of symbols) {
    model.markets.set(s, {ticker: null, first: 0, dir: 0, changedAt: -1e9});
    views.overview.row(s);
  }
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  client = connect({url: `${proto}//${location.host}${config.ws}`, token, codec});
  window.tickgateDashboard = {client, stats, select, chooseInterval};

  client.on("ticker", (t, meta) => {
    const sym = meta.channel.slice(7);
    const m = model.markets.get(sym);
    if (!m) return;
    const prev = m.ticker ? Number(m.ticker.last) : 0, last = Number(t.last);
    if (!m.first) m.first = last;
    if (prev && last !== prev) {
      m.dir = last > prev ? 1 : -1;
      m.changedAt = performance.now();
      model.flashing.add(sym);
    }
    m.ticker = t;
    arrived(meta);
    model.dirtyTickers.add(sym);
    schedule();
  });
  client.on("book", (_, meta) => {
    if (meta.channel !== "book." + model.selected) return;
    arrived(meta);
    model.ladderDirty = true;
    schedule();
  });
  client.on("trade", (t, meta) => {
    model.trades++;
    if (meta.channel !== "trade." + model.selected) return;
    arrived(meta);
    model.freshTrades.push({side: t.side, price: t.price, size: t.size, ms: toMillis(t.ts)});
    if (model.freshTrades.length > 200) model.freshTrades.splice(0, model.freshTrades.length - 200);
    model.tapeDirty = true;
    schedule();
  });
  client.on("candle", (_, meta) => {
    if (meta.channel !== candleChannel(model.selected)) return;
    arrived(meta);
    model.candlesDirty = true;
    schedule();
  });
  client.on("channel", c => {
    if (c.channel.endsWith("." + model.selected)) model.ladderDirty = model.tapeDirty = model.candlesDirty = true;
    if (c.channel.startsWith("ticker.")) model.dirtyTickers.add(c.channel.slice(7));
    if (c.state === "resyncing" || c.state === "closed") log(`${c.channel}: ${c.state}${c.reason ? " (" + c.reason + ")" : ""}`);
    schedule();
  });
  client.on("gap", g => {
    if (g.kind === "prev") model.clientGaps++;
    else model.feedGaps++;
    log(`${g.channel}: gap (${g.kind}${g.from !== undefined ? ` ${g.from}–${g.to}` : ""})`);
  });
  client.on("checksum", c => log(`${c.channel}: checksum mismatch at seq ${c.seq}: resyncing`));
  client.on("error", err => log(`${err.code ?? err.name}: ${err.message}`));
  client.on("state", s => {
    switch (s.state) {
      case "open":
        model.conn = {state: "open", text: s.reconnected ? "live · resubscribing" : "live", detail: ""};
        break;
      case "reconnecting":
        model.conn = {state: "reconnecting", text: `reconnecting in ${(s.delayMs / 1000).toFixed(1)} s`, detail: `closed ${s.code}${s.reason ? ": " + s.reason : ""}; attempt ${s.attempt}`};
        log(`connection closed ${s.code}${s.reason ? " (" + s.reason + ")" : ""}; reconnecting in ${s.delayMs} ms`);
        break;
      default:
        model.conn = {state: s.state, text: s.state, detail: ""};
    }
    model.headerDirty = true;
    schedule();
  });
  client.on("resubscribed", r => {
    model.lastRound = r;
    if (r.reconnected) {
      const n = r.resumed.length + r.fresh.length;
      model.conn = {state: "open", text: `live · resumed ${r.resumed.length}/${n}`, detail: `resumed: ${r.resumed.join(", ") || "none"}; fresh snapshots: ${r.fresh.join(", ") || "none"}`};
      log(`reconnected: resumed ${r.resumed.length} of ${n} channels`);
      model.headerDirty = true;
      schedule();
    }
  });
  client.on("reconnect", n => log(`node ${n.reason}: reconnecting within ${n.withinMs} ms`));

  $("reconnect").addEventListener("click", () => client.reconnect());
  const iv = /** @type {HTMLSelectElement} */ ($("candles-interval"));
  iv.value = model.interval;
  iv.addEventListener("change", () => chooseInterval(iv.value));
  // The chart follows its canvas's size.
  new ResizeObserver(entries => {
    const r = entries[entries.length - 1].contentRect;
    views.candles.resize(r.width, r.height);
    model.candlesDirty = true;
    schedule();
  }).observe($("candles"));
  client.subscribe(symbols.map(s => "ticker." + s)).catch(err => log(`subscribe tickers: ${err.code}: ${err.message}`));
  select(symbols[0]);
  setInterval(tickSecond, 1000);
  setInterval(() => { if (model.flashing.size) schedule(); }, 100);
  schedule();
}

function arrived(meta) {
  if (meta.ts === undefined) return;
  const ms = toMillis(meta.ts);
  model.newestTs.set(meta.channel, ms);
  latency.arrived(ms);
}

/** stats summarises what the dashboard shows, for tests and debugging. */
function stats() {
  const prices = {};
  for (const [sym, m] of model.markets) if (m.ticker) prices[sym] = m.ticker.last;
  const bookCh = "book." + model.selected;
  const info = client.channel(bookCh);
  const book = client.book(bookCh);
  let ok = 0, bad = 0, gaps = 0, resyncs = 0;
  for (const c of client.channels()) {
    ok += c.stats.checksumOk;
    bad += c.stats.checksumBad;
    gaps += c.stats.gaps;
    resyncs += c.stats.resyncs;
  }
  const p = latency.percentiles();
  return {
    connection: client.state, badge: $("conn").textContent, reconnects: client.stats.reconnects, lastRound: model.lastRound,
    frames: model.frames, renderMs: {avg: model.frames ? model.renderMs.total / model.frames : 0, max: model.renderMs.max},
    latencyMs: {p50: p.p50, p99: p.p99, n: p.n}, messages: client.stats.messages, trades: model.trades,
    checksumOk: ok, checksumBad: bad, clientGaps: gaps, feedGaps: model.feedGaps, resyncs,
    prices, shownPrices: Object.fromEntries([...document.querySelectorAll("#overview tbody tr")].map(tr => [tr.dataset.symbol, tr.querySelector(".last")?.textContent ?? ""])),
    ladder: {channel: bookCh, state: info?.state, verified: !!book?.verified, seq: String(info?.last ?? ""), checksum: book?.checksum() ?? null,
      check: $("ladder-check").textContent, rows: document.querySelectorAll("#bids .price span:not(:empty), #asks .price span:not(:empty)").length},
    tapeRows: document.querySelectorAll("#tape tbody tr").length,
    candles: {channel: candleChannel(model.selected), state: client.channel(candleChannel(model.selected))?.state,
      bars: (client.candles(candleChannel(model.selected)) ?? []).map(b => ({start: String(b.start), close: b.close, closed: b.closed})),
      shown: views.candles.shown, info: $("candles-info").textContent},
    channels: client.channels().map(c => ({name: c.name, state: c.state})),
    log: [...model.log],
  };
}

/** fromFragment reads #token=…&symbols=…&codec=… and removes it from the address bar. */
function fromFragment() {
  const f = new URLSearchParams(location.hash.slice(1));
  if (location.hash) history.replaceState(null, "", location.pathname + location.search);
  return {token: f.get("token") ?? "", symbols: f.get("symbols") ?? "", codec: f.get("codec") ?? ""};
}

function parseSymbols(s) {
  return s.split(/[\s,]+/).filter(x => SYMBOL.test(x));
}

let config = {mode: "serve", symbols: [], ws: "/v1/ws"};

async function main() {
  // First of all, before anything waits: the token leaves the address bar.
  const f = fromFragment();
  try {
    config = {...config, ...(await (await fetch("/dashboard/config.json", {cache: "no-store"})).json())};
  } catch {
    // Served from elsewhere: the defaults above.
  }
  const symbols = parseSymbols(f.symbols).length ? parseSymbols(f.symbols) : config.symbols?.length ? config.symbols : DEFAULT_SYMBOLS;
  const codec = f.codec === "msgpack" ? "msgpack" : "json";
  if (f.token) {
    start(f.token, symbols, codec);
    return;
  }
  const form = /** @type {HTMLFormElement} */ ($("login"));
  /** @type {HTMLInputElement} */ ($("login-symbols")).value = symbols.join(",");
  form.hidden = false;
  form.addEventListener("submit", ev => {
    ev.preventDefault();
    const token = /** @type {HTMLTextAreaElement} */ ($("login-token")).value.trim();
    const syms = parseSymbols(/** @type {HTMLInputElement} */ ($("login-symbols")).value);
    if (!token || !syms.length) return;
    start(token, syms, /** @type {HTMLSelectElement} */ ($("login-codec")).value === "msgpack" ? "msgpack" : "json");
  });
}

main();
