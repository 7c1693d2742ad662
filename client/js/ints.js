// The module's one rule for integers from the wire (JSON and msgpack
// alike): an integer whose value is a safe JavaScript number
// (|x| <= 2^53 - 1) is a Number; any other is a BigInt holding it exactly.
// A value has one representation, so `===` compares seqs of either kind
// correctly, and a seq beyond 2^53 is never rounded into another seq.
// Today every `ts` (Unix nanoseconds, about 1.7e18) is a BigInt.

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const MIN_SAFE = -MAX_SAFE;

/**
 * exactInt returns x as a Number when that is exact, else x.
 * @param {bigint} x
 * @returns {number | bigint}
 */
export function exactInt(x) {
  return x >= MIN_SAFE && x <= MAX_SAFE ? Number(x) : x;
}

/**
 * isInt reports whether v is an integer in the module's representation
 * (a safe integer Number or a BigInt).
 * @param {unknown} v
 * @returns {v is number | bigint}
 */
export function isInt(v) {
  return typeof v === "bigint" || Number.isSafeInteger(v);
}

/**
 * toMillis converts a Unix-nanosecond `ts` (Number or BigInt) to Unix
 * milliseconds as a Number with a fractional part, for arithmetic with
 * Date.now() or performance.timeOrigin + performance.now().
 * @param {number | bigint} ts
 * @returns {number}
 */
export function toMillis(ts) {
  if (typeof ts === "bigint") return Number(ts / 1000n) / 1000;
  return ts / 1e6;
}
