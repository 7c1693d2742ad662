// A minimal test harness that runs the same in a browser and in Node:
// test(name, fn) registers, run() runs them in order (awaiting async ones,
// each with a time limit) and returns what failed.

/** @type {{name: string, fn: () => unknown}[]} */
const tests = [];

/**
 * test registers a test.
 * @param {string} name
 * @param {() => unknown} fn
 */
export function test(name, fn) {
  tests.push({name, fn});
}

/**
 * run runs every registered test whose name matches filter.
 * @param {RegExp} [filter]
 * @returns {Promise<{passed: string[], failed: {name: string, error: string}[], ms: number}>}
 */
export async function run(filter) {
  const began = Date.now();
  const passed = [], failed = [];
  for (const t of tests) {
    if (filter && !filter.test(t.name)) continue;
    let timer;
    try {
      await Promise.race([
        Promise.resolve().then(t.fn),
        new Promise((_, reject) => { timer = setTimeout(() => reject(new Error("timed out after 10s")), 10000); }),
      ]);
      passed.push(t.name);
    } catch (err) {
      // Firefox's stack leaves the message out; Chromium's starts with it.
      const msg = String(err?.message ?? err), stack = String(err?.stack ?? "");
      failed.push({name: t.name, error: stack.includes(msg) ? stack : `${msg}\n${stack}`});
    } finally {
      clearTimeout(timer);
    }
  }
  return {passed, failed, ms: Date.now() - began};
}

/** show renders a value for a message, BigInts included. */
export function show(v) {
  try {
    return JSON.stringify(v, (_, x) => typeof x === "bigint" ? x.toString() + "n" : x instanceof Uint8Array ? [...x] : x);
  } catch {
    return String(v);
  }
}

/** eq fails unless a === b (Object.is for NaN and -0). */
export function eq(a, b, what = "") {
  if (!(a === b || Object.is(a, b))) throw new Error(`${what ? what + ": " : ""}got ${show(a)} (${typeof a}), want ${show(b)} (${typeof b})`);
}

/** ok fails unless v is truthy. */
export function ok(v, what = "expected true") {
  if (!v) throw new Error(what);
}

/** deepEq fails unless a and b are equal in structure and in every leaf (===). */
export function deepEq(a, b, what = "") {
  if (!equal(a, b)) throw new Error(`${what ? what + ": " : ""}got ${show(a)}, want ${show(b)}`);
}

/** equal is deep equality of plain data: objects, arrays, typed arrays, primitives. */
export function equal(a, b) {
  if (a === b || Object.is(a, b)) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    return a instanceof Uint8Array && b instanceof Uint8Array && a.length === b.length && a.every((x, i) => x === b[i]);
  }
  const ka = Object.keys(a), kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every(k => Object.prototype.hasOwnProperty.call(b, k) && equal(a[k], b[k]));
}

/** throws fails unless fn throws an error whose message matches re. */
export function throws(fn, re, what = "") {
  try {
    fn();
  } catch (err) {
    if (re && !re.test(String(err?.message ?? err))) throw new Error(`${what}: threw ${err}, want ${re}`);
    return err;
  }
  throw new Error(`${what || "throws"}: did not throw`);
}

/** rejects fails unless p rejects; returns the reason. */
export async function rejects(p, what = "") {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error(`${what || "rejects"}: resolved`);
}
