// CRC-32 (IEEE 802.3, as zlib and Go's hash/crc32.ChecksumIEEE) and the
// book checksum of docs/protocol.md §5.5.

/** @type {Uint32Array} the byte table of the reflected polynomial 0xEDB88320 */
const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** How many levels per side the book checksum covers. */
export const CHECKSUM_DEPTH = 10;

const utf8 = new TextEncoder();

/**
 * crc32 returns the CRC-32 (IEEE) of the UTF-8 bytes of s, or of the bytes
 * given, as an unsigned 32-bit number.
 * @param {string | Uint8Array} input
 * @returns {number}
 */
export function crc32(input) {
  let c = 0xffffffff;
  if (typeof input === "string") {
    // Prices and sizes are ASCII: one char is one byte. Anything else is
    // hashed as its UTF-8 bytes, as the node does.
    for (let i = 0; i < input.length; i++) {
      const ch = input.charCodeAt(i);
      if (ch > 0x7f) return crc32(utf8.encode(input));
      c = TABLE[(c ^ ch) & 0xff] ^ (c >>> 8);
    }
  } else {
    for (let i = 0; i < input.length; i++) c = TABLE[(c ^ input[i]) & 0xff] ^ (c >>> 8);
  }
  return (c ^ 0xffffffff) >>> 0;
}

/**
 * bookChecksum is the checksum of docs/protocol.md §5.5: the CRC-32 of
 * "price:size|" for up to 10 best bids, then up to 10 best asks, with the
 * strings exactly as held.
 * @param {ReadonlyArray<readonly [string, string]>} bids best (highest) first
 * @param {ReadonlyArray<readonly [string, string]>} asks best (lowest) first
 * @returns {number}
 */
export function bookChecksum(bids, asks) {
  let s = "";
  const nb = Math.min(bids.length, CHECKSUM_DEPTH), na = Math.min(asks.length, CHECKSUM_DEPTH);
  for (let i = 0; i < nb; i++) s += bids[i][0] + ":" + bids[i][1] + "|";
  for (let i = 0; i < na; i++) s += asks[i][0] + ":" + asks[i][1] + "|";
  return crc32(s);
}
