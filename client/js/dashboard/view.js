// The dashboard's DOM: each panel builds its elements once and then only
// changes the text and classes that differ from what it last drew. The
// views are called from one requestAnimationFrame callback, never per
// message.

/** LADDER_ROWS is how many levels per side the ladder shows. */
export const LADDER_ROWS = 14;
const TAPE_ROWS = 40;

/** el creates an element with a class and text. */
function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

/** set changes an element's text only when it differs. */
function set(e, text) {
  if (e.textContent !== text) e.textContent = text;
}

/** cls changes an element's class only when it differs. */
function cls(e, c) {
  if (e.className !== c) e.className = c;
}

/** decimals counts the digits after the point of a decimal string. */
function decimals(s) {
  const i = s.indexOf(".");
  return i < 0 ? 0 : s.length - i - 1;
}

/** The market overview: one row per symbol, its ticker and change colours. */
export class Overview {
  /**
   * @param {HTMLTableSectionElement} tbody
   * @param {(symbol: string) => void} onSelect
   */
  constructor(tbody, onSelect) {
    this.tbody = tbody;
    /** @type {Map<string, any>} */
    this.rows = new Map();
    tbody.addEventListener("click", ev => {
      const tr = /** @type {HTMLElement} */ (ev.target).closest("tr");
      if (tr?.dataset.symbol) onSelect(tr.dataset.symbol);
    });
  }

  /** row returns the row of symbol, creating it. */
  row(symbol) {
    let r = this.rows.get(symbol);
    if (r) return r;
    const tr = el("tr");
    tr.dataset.symbol = symbol;
    const cells = ["symbol", "last num", "chg num", "bid num", "ask num", "spread num", "volume num", "rate num", "st"].map(c => {
      const td = el("td", c);
      tr.append(td);
      return td;
    });
    const dot = el("span", "dot");
    cells[8].append(dot);
    cells[0].textContent = symbol;
    this.tbody.append(tr);
    r = {tr, cells, dot, last: ""};
    this.rows.set(symbol, r);
    return r;
  }

  /**
   * draw updates one symbol's row.
   * @param {string} symbol
   * @param {any} m the symbol's market state (dashboard.js)
   * @param {number} rate updates per second
   * @param {string} state the ticker channel's state
   * @param {boolean} selected
   * @param {number} now performance.now()
   */
  draw(symbol, m, rate, state, selected, now) {
    const r = this.row(symbol);
    cls(r.tr, selected ? "selected" : "");
    cls(r.dot, "dot " + state);
    r.dot.title = state;
    set(r.cells[7], rate.toFixed(1));
    const t = m.ticker;
    if (!t) return;
    set(r.cells[1], t.last);
    const first = m.first, last = Number(t.last);
    const chg = first ? (last - first) / first * 100 : 0;
    const pct = chg.toFixed(3);
    set(r.cells[2], pct === "-0.000" || pct === "0.000" ? "0.000" : (chg > 0 ? "+" : "") + pct);
    cls(r.cells[2], "chg num " + (chg > 0 ? "up" : chg < 0 ? "down" : ""));
    set(r.cells[3], t.bid);
    set(r.cells[4], t.ask);
    set(r.cells[5], (Number(t.ask) - Number(t.bid)).toFixed(Math.max(decimals(t.bid), decimals(t.ask))));
    set(r.cells[6], t.volume);
    const flash = now - m.changedAt < 700 ? (m.dir > 0 ? " flash-up up" : m.dir < 0 ? " flash-down down" : "") : m.dir > 0 ? " up" : m.dir < 0 ? " down" : "";
    cls(r.cells[1], "last num" + flash);
  }
}

/** The order book ladder with depth bars. */
export class Ladder {
  /** @param {Document} doc */
  constructor(doc) {
    this.title = doc.getElementById("ladder-title");
    this.state = doc.getElementById("ladder-state");
    this.check = doc.getElementById("ladder-check");
    this.spread = doc.getElementById("spread");
    const mk = tbody => Array.from({length: LADDER_ROWS}, () => {
      const tr = el("tr");
      const cells = ["price", "size", "total"].map(c => {
        const td = el("td", "num " + c);
        const span = el("span");
        td.append(span);
        tr.append(td);
        return span;
      });
      tbody.append(tr);
      return {tr, cells, width: ""};
    });
    this.asks = mk(doc.getElementById("asks"));
    this.bids = mk(doc.getElementById("bids"));
  }

  /**
   * draw shows a verified book (or clears the ladder when book is null).
   * @param {string} channel
   * @param {import("../tickgate.js").Book | null} book
   * @param {string} state
   * @param {{ok: number, bad: number, seq: string}} check
   */
  draw(channel, book, state, check) {
    set(this.title, channel);
    set(this.state, state);
    cls(this.state, "state " + state);
    const top = book ? book.top(LADDER_ROWS) : {bids: [], asks: []};
    if (book) {
      set(this.check, `✓ checksum ${book.checksum().toString(16).padStart(8, "0")} verified at seq ${check.seq} · ${check.ok} ok / ${check.bad} failed`);
      cls(this.check, "check " + (check.bad ? "bad" : "ok"));
    } else {
      set(this.check, state === "resyncing" ? "✗ resyncing: no book is shown until a fresh snapshot" : "waiting for a snapshot");
      cls(this.check, "check " + (state === "resyncing" ? "bad" : "dim"));
    }
    // Cumulative sizes from the best level outwards; the bars are
    // relative to the deeper of the two sides.
    const cum = side => {
      let sum = 0;
      return side.map(l => (sum += Number(l[1])));
    };
    const ca = cum(top.asks), cb = cum(top.bids);
    const max = Math.max(ca[ca.length - 1] ?? 0, cb[cb.length - 1] ?? 0) || 1;
    // Asks: best at the bottom, next to the spread.
    for (let i = 0; i < LADDER_ROWS; i++) {
      const k = LADDER_ROWS - 1 - i;
      this.drawRow(this.asks[i], top.asks[k], ca[k], max);
      this.drawRow(this.bids[i], top.bids[i], cb[i], max);
    }
    const bb = top.bids[0], ba = top.asks[0];
    set(this.spread, bb && ba ? `spread ${(Number(ba[0]) - Number(bb[0])).toFixed(Math.max(decimals(ba[0]), decimals(bb[0])))} · depth ${book.depth.bids} / ${book.depth.asks} levels` : "–");
  }

  drawRow(row, level, total, max) {
    set(row.cells[0], level ? level[0] : "");
    set(row.cells[1], level ? level[1] : "");
    set(row.cells[2], level ? trim(total) : "");
    // The depth bar: the row's background, filled from the right in
    // proportion to the cumulative size (CSSOM, which the page's CSP
    // allows, unlike style attributes).
    const w = level ? (total / max * 100).toFixed(1) + "%" : "0%";
    if (row.width !== w) {
      row.tr.style.backgroundImage = `linear-gradient(to left, var(--bar) ${w}, transparent ${w})`;
      row.width = w;
    }
  }
}

function trim(x) {
  return Number.isInteger(x) ? String(x) : x.toFixed(4).replace(/0+$/, "").replace(/\.$/, "");
}

/** The trade tape: newest first. */
export class Tape {
  /** @param {Document} doc */
  constructor(doc) {
    this.tbody = doc.getElementById("tape").querySelector("tbody");
    this.title = doc.getElementById("tape-title");
    this.state = doc.getElementById("tape-state");
  }

  /** clear empties the tape (a new symbol). */
  clear() {
    this.tbody.replaceChildren();
  }

  /**
   * draw adds the trades that arrived since the last frame.
   * @param {string} channel
   * @param {string} state
   * @param {any[]} fresh oldest first
   */
  draw(channel, state, fresh) {
    set(this.title, channel);
    set(this.state, state);
    cls(this.state, "state " + state);
    if (!fresh.length) return;
    const frag = document.createDocumentFragment();
    for (let i = fresh.length - 1; i >= Math.max(0, fresh.length - TAPE_ROWS); i--) {
      const t = fresh[i];
      const tr = el("tr", t.side === "buy" ? "up" : "down");
      const when = new Date(t.ms);
      tr.append(el("td", "", when.toLocaleTimeString(undefined, {hour12: false}) + "." + String(when.getMilliseconds()).padStart(3, "0")),
        el("td", "", t.side), el("td", "num", t.price), el("td", "num", t.size));
      frag.append(tr);
    }
    this.tbody.prepend(frag);
    while (this.tbody.childElementCount > TAPE_ROWS) this.tbody.lastElementChild.remove();
  }
}

/**
 * The candle chart of the selected symbol: one candle per bar on a
 * canvas, highs and lows as wicks, the open bar outlined, the price scale
 * on the right. Redrawn whole on a frame when its bars changed (a few
 * dozen rectangles).
 */
export class CandleChart {
  /** @param {Document} doc */
  constructor(doc) {
    this.canvas = /** @type {HTMLCanvasElement} */ (doc.getElementById("candles"));
    this.title = doc.getElementById("candles-title");
    this.state = doc.getElementById("candles-state");
    this.info = doc.getElementById("candles-info");
    /** What the last draw showed, for the tests: bars drawn, and the newest bar's close and start. */
    this.shown = {bars: 0, close: "", start: "", closed: 0};
    /** The canvas's CSS size, from resize: read here, draw never forces a layout. */
    this.size = {w: 0, h: 0};
    // The palette, read once: reading computed style in a frame would
    // force a style recalculation.
    const style = getComputedStyle(doc.documentElement);
    const v = (name, fallback) => style.getPropertyValue(name).trim() || fallback;
    this.colours = {up: v("--up", "#2ebd85"), down: v("--down", "#f6465d"), dim: v("--dim", "#7c8896"), line: v("--line", "#243040")};
  }

  /** resize takes the canvas's new CSS size (a ResizeObserver's). */
  resize(w, h) {
    this.size = {w, h};
  }

  /**
   * draw draws bars (oldest first) of channel.
   * @param {string} channel
   * @param {string} state
   * @param {any[] | null} bars
   */
  draw(channel, state, bars) {
    set(this.title, channel);
    set(this.state, state);
    cls(this.state, "state " + state);
    const c = this.canvas;
    const ratio = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.floor(this.size.w * ratio)), h = Math.max(1, Math.floor(this.size.h * ratio));
    if (c.width !== w || c.height !== h) {
      c.width = w;
      c.height = h;
    }
    const g = c.getContext("2d");
    if (!g) return;
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    const W = w / ratio, H = h / ratio;
    g.clearRect(0, 0, W, H);
    const list = bars ?? [];
    this.shown = {bars: 0, close: "", start: "", closed: 0};
    if (!list.length) {
      set(this.info, bars ? "no bars yet" : "waiting for a snapshot");
      return;
    }
    const axis = 64, pad = 8;
    let lo = Infinity, hi = -Infinity;
    for (const b of list) {
      lo = Math.min(lo, Number(b.low));
      hi = Math.max(hi, Number(b.high));
    }
    if (hi === lo) {
      hi += 1;
      lo -= 1;
    }
    const y = v => pad + (hi - Number(v)) / (hi - lo) * (H - 2 * pad);
    const slot = (W - axis) / Math.max(list.length, 20);
    const body = Math.max(1, slot * 0.7);
    const {up, down, dim, line} = this.colours;
    // The price scale: four levels.
    g.font = "10px ui-monospace, monospace";
    g.fillStyle = dim;
    g.strokeStyle = line;
    g.lineWidth = 1;
    for (let i = 0; i <= 3; i++) {
      const v = lo + (hi - lo) * i / 3, yy = Math.round(y(v)) + 0.5;
      g.beginPath();
      g.moveTo(0, yy);
      g.lineTo(W - axis, yy);
      g.stroke();
      g.fillText(v.toFixed(decimals(list[list.length - 1].close)), W - axis + 4, yy + 3);
    }
    list.forEach((b, i) => {
      const x = (i + 0.5) * slot;
      const rising = Number(b.close) >= Number(b.open);
      const colour = rising ? up : down;
      g.strokeStyle = g.fillStyle = colour;
      g.beginPath();
      g.moveTo(Math.round(x) + 0.5, y(b.high));
      g.lineTo(Math.round(x) + 0.5, y(b.low));
      g.stroke();
      const top = y(rising ? b.close : b.open), bottom = y(rising ? b.open : b.close);
      const bh = Math.max(1, bottom - top);
      if (b.closed) g.fillRect(x - body / 2, top, body, bh);
      else g.strokeRect(x - body / 2 + 0.5, top + 0.5, body - 1, bh - 1);
      if (b.closed) this.shown.closed++;
    });
    const last = list[list.length - 1];
    this.shown.bars = list.length;
    this.shown.close = last.close;
    this.shown.start = String(last.start);
    set(this.info, `${list.length} bars · last ${new Date(toMs(last.start)).toISOString().slice(11, 16)} UTC o ${last.open} h ${last.high} l ${last.low} c ${last.close} v ${last.volume}${last.closed ? "" : " (open)"}`);
  }
}

/** toMs is a Unix-ns integer (number or bigint) as Unix ms. */
function toMs(ns) {
  return typeof ns === "bigint" ? Number(ns / 1000000n) : ns / 1e6;
}

/** The channels table: state, rate and checks of every channel. */
export class Channels {
  /** @param {HTMLTableSectionElement} tbody */
  constructor(tbody) {
    this.tbody = tbody;
    /** @type {Map<string, {tr: HTMLTableRowElement, cells: HTMLElement[]}>} */
    this.rows = new Map();
  }

  /**
   * draw shows the channels given, in order, and drops rows of others.
   * @param {{name: string, state: string, reason: string, rate: number, last: string, latency: number, gaps: string, checks: string, resyncs: number}[]} list
   */
  draw(list) {
    const keep = new Set(list.map(c => c.name));
    for (const [name, r] of this.rows) {
      if (!keep.has(name)) {
        r.tr.remove();
        this.rows.delete(name);
      }
    }
    for (const c of list) {
      let r = this.rows.get(c.name);
      if (!r) {
        const tr = el("tr");
        const cells = ["", "", "num", "num", "num", "num", "num", "num"].map(k => {
          const td = el("td", k);
          tr.append(td);
          return td;
        });
        cells[0].textContent = c.name;
        r = {tr, cells};
        this.rows.set(c.name, r);
      }
      if (r.tr.parentNode !== this.tbody || r.tr !== this.tbody.children[list.indexOf(c)]) this.tbody.append(r.tr);
      set(r.cells[1], c.reason ? `${c.state} (${c.reason})` : c.state);
      cls(r.cells[1], "state-text " + c.state);
      set(r.cells[2], c.rate.toFixed(1));
      set(r.cells[3], c.last);
      set(r.cells[4], Number.isFinite(c.latency) ? c.latency.toFixed(0) : "–");
      set(r.cells[5], c.gaps);
      set(r.cells[6], c.checks);
      set(r.cells[7], String(c.resyncs));
    }
  }
}
