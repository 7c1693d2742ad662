// JSON for the tickgate.v1.json codec with exact integers. JSON.parse
// rounds every number to a double, which turns seq 2^53 + 1 into 2^53 and
// can hide a gap or invent one; this parser follows ints.js instead (a
// Number when exact, else a BigInt). Everything else is as JSON.parse:
// strict RFC 8259 text, the last of duplicate keys wins.

import {exactInt} from "./ints.js";

/** Deepest nesting the parser accepts. */
export const MAX_DEPTH = 64;

/** JSONError is thrown for text that is not one JSON value. */
export class JSONError extends SyntaxError {
  /** @param {string} message @param {number} at */
  constructor(message, at) {
    super(`json: ${message} at offset ${at}`);
    this.name = "JSONError";
  }
}

/**
 * parse reads one JSON value; integers beyond 2^53 - 1 in magnitude become
 * BigInts holding them exactly.
 * @param {string} s
 * @returns {unknown}
 */
export function parse(s) {
  const p = new Parser(s);
  p.ws();
  const v = p.value(0);
  p.ws();
  if (p.i !== s.length) p.fail("text after the value");
  return v;
}

const ESC = {0x22: '"', 0x5c: "\\", 0x2f: "/", 0x62: "\b", 0x66: "\f", 0x6e: "\n", 0x72: "\r", 0x74: "\t"};

class Parser {
  /** @param {string} s */
  constructor(s) {
    this.s = s;
    this.i = 0;
  }

  fail(what) { throw new JSONError(what, this.i); }

  ws() {
    const s = this.s;
    let i = this.i;
    for (;;) {
      const c = s.charCodeAt(i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
      else break;
    }
    this.i = i;
  }

  value(depth) {
    const c = this.s.charCodeAt(this.i);
    if (c === 0x22) return this.string();
    if (c === 0x7b) return this.object(depth);
    if (c === 0x5b) return this.array(depth);
    if (c === 0x2d || (c >= 0x30 && c <= 0x39)) return this.number();
    if (this.s.startsWith("true", this.i)) { this.i += 4; return true; }
    if (this.s.startsWith("false", this.i)) { this.i += 5; return false; }
    if (this.s.startsWith("null", this.i)) { this.i += 4; return null; }
    return this.fail(Number.isNaN(c) ? "unexpected end" : "unexpected character");
  }

  object(depth) {
    if (depth >= MAX_DEPTH) this.fail("nested too deep");
    this.i++;
    /** @type {Record<string, unknown>} */
    const o = {};
    this.ws();
    if (this.s.charCodeAt(this.i) === 0x7d) { this.i++; return o; }
    for (;;) {
      if (this.s.charCodeAt(this.i) !== 0x22) this.fail("expected a key");
      const key = this.string();
      this.ws();
      if (this.s.charCodeAt(this.i) !== 0x3a) this.fail("expected ':'");
      this.i++;
      this.ws();
      const v = this.value(depth + 1);
      if (key === "__proto__") Object.defineProperty(o, key, {value: v, enumerable: true, writable: true, configurable: true});
      else o[key] = v;
      this.ws();
      const c = this.s.charCodeAt(this.i++);
      if (c === 0x7d) return o;
      if (c !== 0x2c) { this.i--; this.fail("expected ',' or '}'"); }
      this.ws();
    }
  }

  array(depth) {
    if (depth >= MAX_DEPTH) this.fail("nested too deep");
    this.i++;
    const a = [];
    this.ws();
    if (this.s.charCodeAt(this.i) === 0x5d) { this.i++; return a; }
    for (;;) {
      a.push(this.value(depth + 1));
      this.ws();
      const c = this.s.charCodeAt(this.i++);
      if (c === 0x5d) return a;
      if (c !== 0x2c) { this.i--; this.fail("expected ',' or ']'"); }
      this.ws();
    }
  }

  string() {
    const s = this.s;
    let i = ++this.i;
    let out = "";
    let from = i;
    for (;;) {
      const c = s.charCodeAt(i);
      if (c === 0x22) {
        this.i = i + 1;
        return out + s.slice(from, i);
      }
      if (c === 0x5c) {
        out += s.slice(from, i);
        const e = s.charCodeAt(i + 1);
        if (e === 0x75) {
          const hex = s.slice(i + 2, i + 6);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) { this.i = i; this.fail("bad \\u escape"); }
          out += String.fromCharCode(parseInt(hex, 16));
          i += 6;
        } else {
          const r = ESC[e];
          if (r === undefined) { this.i = i; this.fail("bad escape"); }
          out += r;
          i += 2;
        }
        from = i;
        continue;
      }
      if (c < 0x20 || Number.isNaN(c)) { this.i = i; this.fail(Number.isNaN(c) ? "unterminated string" : "control character in a string"); }
      i++;
    }
  }

  number() {
    const s = this.s;
    const start = this.i;
    let i = start;
    if (s.charCodeAt(i) === 0x2d) i++;
    const int0 = i;
    if (s.charCodeAt(i) === 0x30) i++;
    else {
      while (isDigit(s.charCodeAt(i))) i++;
    }
    if (i === int0) { this.i = i; this.fail("expected a digit"); }
    let integer = true;
    if (s.charCodeAt(i) === 0x2e) {
      integer = false;
      const f0 = ++i;
      while (isDigit(s.charCodeAt(i))) i++;
      if (i === f0) { this.i = i; this.fail("expected a digit after '.'"); }
    }
    const e = s.charCodeAt(i);
    if (e === 0x65 || e === 0x45) {
      integer = false;
      i++;
      const sign = s.charCodeAt(i);
      if (sign === 0x2b || sign === 0x2d) i++;
      const e0 = i;
      while (isDigit(s.charCodeAt(i))) i++;
      if (i === e0) { this.i = i; this.fail("expected a digit in the exponent"); }
    }
    this.i = i;
    const lit = s.slice(start, i);
    // 15 digits always fit a double exactly; longer integers go through
    // BigInt and stay exact.
    if (!integer || i - int0 <= 15) return Number(lit);
    return exactInt(BigInt(lit));
  }
}

function isDigit(c) { return c >= 0x30 && c <= 0x39; }

/**
 * stringify writes value as JSON, BigInts as plain integer literals (which
 * JSON.stringify refuses). Undefined object values are left out, as
 * JSON.stringify does.
 * @param {unknown} value
 * @returns {string}
 */
export function stringify(value) {
  switch (typeof value) {
    case "bigint": return value.toString();
    case "string": case "number": case "boolean": return JSON.stringify(value);
    case "object": {
      if (value === null) return "null";
      if (Array.isArray(value)) return "[" + value.map(v => v === undefined ? "null" : stringify(v)).join(",") + "]";
      const parts = [];
      for (const [k, v] of Object.entries(value)) {
        if (v !== undefined) parts.push(JSON.stringify(k) + ":" + stringify(v));
      }
      return "{" + parts.join(",") + "}";
    }
  }
  throw new TypeError("json: cannot encode a " + typeof value);
}
