// Decimal strings as prices and sizes travel: digits with at most one '.'
// that has digits on both sides (docs/protocol.md §9.4). They are compared
// exactly, by their digits, never through a double: "64000.1" and
// "64000.10" are one price, and two prices 40 digits long that a double
// cannot tell apart stay two.

const DECIMAL = /^[0-9]+(\.[0-9]+)?$/;

/** Longest price or size string the node accepts. */
export const MAX_DECIMAL_LEN = 40;

/**
 * validDecimal reports whether s is a decimal string the node accepts.
 * @param {unknown} s
 * @returns {s is string}
 */
export function validDecimal(s) {
  return typeof s === "string" && s.length <= MAX_DECIMAL_LEN && DECIMAL.test(s);
}

/**
 * decimalKey is the canonical spelling of a valid decimal string: no
 * leading zeros before the point (but one "0"), no trailing zeros after
 * it, no point without a fraction. Numerically equal strings have equal
 * keys: "01.50", "1.5" and "1.500" all give "1.5"; "0.0" gives "0".
 * @param {string} s
 * @returns {string}
 */
export function decimalKey(s) {
  let dot = s.indexOf(".");
  let int = dot < 0 ? s : s.slice(0, dot);
  let frac = dot < 0 ? "" : s.slice(dot + 1);
  let a = 0;
  while (a < int.length - 1 && int.charCodeAt(a) === 0x30) a++;
  int = int.slice(a);
  let b = frac.length;
  while (b > 0 && frac.charCodeAt(b - 1) === 0x30) b--;
  frac = frac.slice(0, b);
  return frac ? int + "." + frac : int;
}

/**
 * compareKeys orders two canonical keys (decimalKey) numerically:
 * negative when a < b, 0 when equal, positive when a > b.
 * @param {string} a
 * @param {string} b
 * @returns {number}
 */
export function compareKeys(a, b) {
  if (a === b) return 0;
  const da = a.indexOf("."), db = b.indexOf(".");
  const la = da < 0 ? a.length : da, lb = db < 0 ? b.length : db;
  if (la !== lb) return la - lb; // no leading zeros: longer is larger
  const ia = a.slice(0, la), ib = b.slice(0, lb);
  if (ia !== ib) return ia < ib ? -1 : 1;
  // Same integer part. Fractions have no trailing zeros, so string order
  // is numeric order ("5" < "51" < "6").
  const fa = da < 0 ? "" : a.slice(da + 1), fb = db < 0 ? "" : b.slice(db + 1);
  return fa < fb ? -1 : fa > fb ? 1 : 0;
}

/**
 * isZeroDecimal reports whether a decimal string is numerically zero
 * ("0", "0.000"), the size that removes a level.
 * @param {string} s
 * @returns {boolean}
 */
export function isZeroDecimal(s) {
  return s.length > 0 && /^[0.]+$/.test(s);
}
