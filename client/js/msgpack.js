// A MessagePack decoder and encoder for the tickgate.v1.msgpack codec,
// written from the specification (github.com/msgpack/msgpack/blob/master/spec.md).
// Integers follow ints.js: a Number when exact, else a BigInt, so uint64
// seqs and int64 ids keep every bit. Maps must have string keys and become
// plain objects; binary becomes a Uint8Array; extension types (which the
// node never sends) are refused.

import {exactInt} from "./ints.js";

/** Deepest nesting the decoder accepts (the node sends 4 levels at most). */
export const MAX_DEPTH = 64;

const text = new TextDecoder("utf-8", {fatal: true});
const utf8 = new TextEncoder();

/**
 * MsgpackError is thrown for bytes that are not one well-formed value.
 */
export class MsgpackError extends Error {
  /** @param {string} message */
  constructor(message) {
    super("msgpack: " + message);
    this.name = "MsgpackError";
  }
}

/**
 * decode reads exactly one msgpack value from bytes; trailing bytes, a
 * truncated value, a non-string map key and extension types throw
 * MsgpackError.
 * @param {ArrayBuffer | ArrayBufferView} bytes
 * @returns {unknown}
 */
export function decode(bytes) {
  const u8 = bytes instanceof Uint8Array ? bytes
    : ArrayBuffer.isView(bytes) ? new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    : new Uint8Array(bytes);
  const r = new Reader(u8);
  const v = r.value(0);
  if (r.i !== u8.length) throw new MsgpackError(`${u8.length - r.i} bytes after the value`);
  return v;
}

class Reader {
  /** @param {Uint8Array} u8 */
  constructor(u8) {
    this.u8 = u8;
    this.dv = new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
    this.i = 0;
  }

  /** need throws unless n more bytes are there; returns the offset. */
  need(n) {
    const at = this.i;
    if (n > this.u8.length - at) throw new MsgpackError("truncated");
    this.i = at + n;
    return at;
  }

  u8at() { return this.dv.getUint8(this.need(1)); }
  u16() { return this.dv.getUint16(this.need(2)); }
  u32() { return this.dv.getUint32(this.need(4)); }

  str(n) {
    const at = this.need(n);
    const b = this.u8.subarray(at, at + n);
    // Short ASCII strings (keys, prices) are most of what arrives.
    if (n < 32) {
      let s = "";
      for (let k = 0; k < n; k++) {
        if (b[k] > 0x7f) return decodeUTF8(b);
        s += String.fromCharCode(b[k]);
      }
      return s;
    }
    return decodeUTF8(b);
  }

  bin(n) {
    const at = this.need(n);
    return this.u8.slice(at, at + n);
  }

  array(n, depth) {
    if (depth >= MAX_DEPTH) throw new MsgpackError("nested too deep");
    if (n > this.u8.length - this.i) throw new MsgpackError("truncated"); // each element takes a byte
    const a = new Array(n);
    for (let k = 0; k < n; k++) a[k] = this.value(depth + 1);
    return a;
  }

  map(n, depth) {
    if (depth >= MAX_DEPTH) throw new MsgpackError("nested too deep");
    if (n > (this.u8.length - this.i) / 2) throw new MsgpackError("truncated");
    /** @type {Record<string, unknown>} */
    const o = {};
    for (let k = 0; k < n; k++) {
      const key = this.value(depth + 1);
      if (typeof key !== "string") throw new MsgpackError("a map key that is not a string");
      const v = this.value(depth + 1);
      if (key === "__proto__") Object.defineProperty(o, key, {value: v, enumerable: true, writable: true, configurable: true});
      else o[key] = v;
    }
    return o;
  }

  value(depth) {
    const b = this.u8at();
    if (b <= 0x7f) return b;
    if (b >= 0xe0) return b - 0x100;
    if (b <= 0x8f) return this.map(b & 0x0f, depth);
    if (b <= 0x9f) return this.array(b & 0x0f, depth);
    if (b <= 0xbf) return this.str(b & 0x1f);
    const dv = this.dv;
    switch (b) {
      case 0xc0: return null;
      case 0xc2: return false;
      case 0xc3: return true;
      case 0xc4: return this.bin(this.u8at());
      case 0xc5: return this.bin(this.u16());
      case 0xc6: return this.bin(this.u32());
      case 0xca: return dv.getFloat32(this.need(4));
      case 0xcb: return dv.getFloat64(this.need(8));
      case 0xcc: return this.u8at();
      case 0xcd: return this.u16();
      case 0xce: return this.u32();
      case 0xcf: return exactInt(dv.getBigUint64(this.need(8)));
      case 0xd0: return dv.getInt8(this.need(1));
      case 0xd1: return dv.getInt16(this.need(2));
      case 0xd2: return dv.getInt32(this.need(4));
      case 0xd3: return exactInt(dv.getBigInt64(this.need(8)));
      case 0xd9: return this.str(this.u8at());
      case 0xda: return this.str(this.u16());
      case 0xdb: return this.str(this.u32());
      case 0xdc: return this.array(this.u16(), depth);
      case 0xdd: return this.array(this.u32(), depth);
      case 0xde: return this.map(this.u16(), depth);
      case 0xdf: return this.map(this.u32(), depth);
    }
    // 0xc1 is never used; 0xc7-0xc9 and 0xd4-0xd8 are extension types.
    throw new MsgpackError("type byte 0x" + b.toString(16) + (b === 0xc1 ? " (never used)" : " (an extension type)"));
  }
}

function decodeUTF8(b) {
  try {
    return text.decode(b);
  } catch {
    throw new MsgpackError("a string that is not UTF-8");
  }
}

const MAX_U64 = (1n << 64n) - 1n;
const MIN_I64 = -(1n << 63n);

/**
 * encode writes value as msgpack, integers in their smallest encoding.
 * It takes what commands hold: plain objects (string keys; undefined
 * values are left out), arrays, strings, booleans, null, numbers (safe
 * integers as integers, others as float64), BigInts in the int64/uint64
 * range, and Uint8Array as binary.
 * @param {unknown} value
 * @returns {Uint8Array}
 */
export function encode(value) {
  const w = new Writer();
  w.value(value, 0);
  return w.bytes();
}

class Writer {
  constructor() {
    this.buf = new Uint8Array(256);
    this.dv = new DataView(this.buf.buffer);
    this.n = 0;
  }

  room(k) {
    if (this.n + k <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.n + k) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.n));
    this.buf = next;
    this.dv = new DataView(next.buffer);
  }

  byte(b) { this.room(1); this.buf[this.n++] = b; }
  u16(b, x) { this.room(3); this.buf[this.n] = b; this.dv.setUint16(this.n + 1, x); this.n += 3; }
  u32(b, x) { this.room(5); this.buf[this.n] = b; this.dv.setUint32(this.n + 1, x); this.n += 5; }

  bytes() { return this.buf.slice(0, this.n); }

  value(v, depth) {
    if (depth > MAX_DEPTH) throw new MsgpackError("nested too deep to encode");
    switch (typeof v) {
      case "string": return this.string(v);
      case "boolean": return this.byte(v ? 0xc3 : 0xc2);
      case "number": return Number.isSafeInteger(v) ? this.int(BigInt(v)) : this.float(v);
      case "bigint": return this.int(v);
      case "undefined": return this.byte(0xc0);
      case "object":
        if (v === null) return this.byte(0xc0);
        if (v instanceof Uint8Array) return this.binary(v);
        if (Array.isArray(v)) {
          this.head(v.length, 0x90, 0xdc, 0xdd);
          for (const x of v) this.value(x, depth + 1);
          return;
        }
        return this.object(/** @type {Record<string, unknown>} */ (v), depth);
    }
    throw new MsgpackError("cannot encode a " + typeof v);
  }

  object(o, depth) {
    const keys = Object.keys(o).filter(k => o[k] !== undefined);
    this.head(keys.length, 0x80, 0xde, 0xdf);
    for (const k of keys) {
      this.string(k);
      this.value(o[k], depth + 1);
    }
  }

  head(len, fix, b16, b32) {
    if (len < 16) this.byte(fix | len);
    else if (len < 0x10000) this.u16(b16, len);
    else this.u32(b32, len);
  }

  string(s) {
    const b = utf8.encode(s);
    const len = b.length;
    if (len < 32) this.byte(0xa0 | len);
    else if (len < 0x100) { this.byte(0xd9); this.byte(len); }
    else if (len < 0x10000) this.u16(0xda, len);
    else this.u32(0xdb, len);
    this.raw(b);
  }

  binary(b) {
    const len = b.length;
    if (len < 0x100) { this.byte(0xc4); this.byte(len); }
    else if (len < 0x10000) this.u16(0xc5, len);
    else this.u32(0xc6, len);
    this.raw(b);
  }

  raw(b) {
    this.room(b.length);
    this.buf.set(b, this.n);
    this.n += b.length;
  }

  float(x) {
    this.room(9);
    this.buf[this.n] = 0xcb;
    this.dv.setFloat64(this.n + 1, x);
    this.n += 9;
  }

  /** @param {bigint} x */
  int(x) {
    if (x > MAX_U64 || x < MIN_I64) throw new MsgpackError("integer out of the 64-bit range: " + x);
    if (x >= 0n) {
      if (x < 0x80n) return this.byte(Number(x));
      if (x < 0x100n) { this.byte(0xcc); return this.byte(Number(x)); }
      if (x < 0x10000n) return this.u16(0xcd, Number(x));
      if (x < 0x100000000n) return this.u32(0xce, Number(x));
      this.room(9);
      this.buf[this.n] = 0xcf;
      this.dv.setBigUint64(this.n + 1, x);
      this.n += 9;
      return;
    }
    if (x >= -32n) return this.byte(0x100 + Number(x));
    if (x >= -0x80n) { this.byte(0xd0); return this.byte(Number(x) & 0xff); }
    if (x >= -0x8000n) { this.room(3); this.buf[this.n] = 0xd1; this.dv.setInt16(this.n + 1, Number(x)); this.n += 3; return; }
    if (x >= -0x80000000n) { this.room(5); this.buf[this.n] = 0xd2; this.dv.setInt32(this.n + 1, Number(x)); this.n += 5; return; }
    this.room(9);
    this.buf[this.n] = 0xd3;
    this.dv.setBigInt64(this.n + 1, x);
    this.n += 9;
  }
}
