// When to connect again after a connection ended: exponential backoff with
// full jitter, and what each close code asks for (docs/protocol.md §7.2,
// §7.3).

/**
 * @typedef {object} Backoff
 * @property {number} baseMs the first backoff step (default 500)
 * @property {number} capMs the largest backoff step (default 30000)
 */

/** @type {Backoff} */
export const DEFAULT_BACKOFF = Object.freeze({baseMs: 500, capMs: 30000});

/**
 * The least wait, in ms, that a close code asks for before the jittered
 * backoff is added: the node told the client it cannot keep up (4008), or
 * that it misbehaved (1008, 1009, 1002, 1007), so coming straight back
 * would only repeat it.
 * @type {Readonly<Record<number, number>>}
 */
export const CLOSE_FLOOR_MS = Object.freeze({
  4008: 5000, // slow consumer: read faster or subscribe to less first
  1008: 15000, // policy: too many bad commands; never loop hot
  1009: 15000, // a message too large: a client bug
  1002: 15000, // protocol error: a client bug
  1007: 15000, // not UTF-8: a client bug
  4003: 30000, // revoked (contract 1.1): a new token is needed
});

/**
 * Close codes after which the client comes back at once (with a little
 * jitter), without counting a failure: the node is draining (1001), or the
 * token expired (4001: the token source is asked for a fresh one first).
 */
export const PROMPT_CODES = Object.freeze([1001, 4001]);

/**
 * reconnectDelay returns how long to wait before the next connect.
 * @param {object} p
 * @param {number} p.code the close code (1006 when the connection failed or dropped without one)
 * @param {number} p.fails consecutive failed connections, this one included (0: this one ended after a healthy session)
 * @param {number} [p.withinMs] a `reconnect` notice's within_ms, when one came
 * @param {Backoff} [p.backoff]
 * @param {() => number} [p.random] uniform in [0, 1)
 * @returns {number} milliseconds
 */
export function reconnectDelay({code, fails, withinMs, backoff = DEFAULT_BACKOFF, random = Math.random}) {
  if (PROMPT_CODES.includes(code) && fails <= 1) {
    // Spread a node's clients a little; the node already spread its
    // closes over within_ms.
    return Math.floor(random() * Math.min(250, withinMs || 250));
  }
  const floor = CLOSE_FLOOR_MS[code] ?? 0;
  return floor + jitter(fails, backoff, random);
}

/**
 * jitter is "full jitter": uniform in [0, min(cap, base * 2^(fails-1))).
 * @param {number} fails
 * @param {Backoff} backoff
 * @param {() => number} random
 * @returns {number}
 */
export function jitter(fails, backoff, random) {
  const n = Math.max(0, Math.min(fails - 1, 30));
  const ceiling = Math.min(backoff.capMs, backoff.baseMs * 2 ** n);
  return Math.floor(random() * ceiling);
}
