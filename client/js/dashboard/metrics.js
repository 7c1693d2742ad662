// The dashboard's measurements: rates from cumulative counters, and the
// feed-to-screen latency (a message's data `ts` to the end of the frame
// that showed it) as percentiles over the newest samples.

/** Rates turns cumulative counters into per-second rates, once a second. */
export class Rates {
  constructor() {
    /** @type {Map<string, {count: number, at: number, rate: number}>} */
    this.seen = new Map();
  }

  /**
   * sample records key's cumulative count at now (ms) and returns its rate,
   * recomputed when at least half a second passed since the last
   * computation (timers fire late, never early by much).
   * @param {string} key
   * @param {number} count
   * @param {number} now
   */
  sample(key, count, now) {
    const s = this.seen.get(key);
    if (!s) {
      this.seen.set(key, {count, at: now, rate: 0});
      return 0;
    }
    if (now - s.at >= 500) {
      s.rate = Math.max(0, (count - s.count) * 1000 / (now - s.at));
      s.count = count;
      s.at = now;
    }
    return s.rate;
  }

  /** @param {string} key */
  rate(key) {
    return this.seen.get(key)?.rate ?? 0;
  }
}

/** Latency keeps the newest samples (ms) in a ring and gives percentiles. */
export class Latency {
  /** @param {number} size */
  constructor(size = 2000) {
    this.ring = new Float64Array(size);
    this.n = 0;
    this.next = 0;
    /** data ts (Unix ms) of what arrived since the last frame */
    this.pending = [];
  }

  /** arrived notes a message's data ts (Unix ms) to be measured at the next frame. */
  arrived(tsMillis) {
    if (Number.isFinite(tsMillis) && tsMillis > 0 && this.pending.length < 5000) this.pending.push(tsMillis);
  }

  /** shown measures everything pending against now (Unix ms, end of a frame). */
  shown(now) {
    for (const t of this.pending) {
      this.ring[this.next] = now - t;
      this.next = (this.next + 1) % this.ring.length;
      if (this.n < this.ring.length) this.n++;
    }
    this.pending.length = 0;
  }

  /** @returns {{p50: number, p99: number, n: number}} */
  percentiles() {
    if (this.n === 0) return {p50: NaN, p99: NaN, n: 0};
    const a = Array.from(this.ring.subarray(0, this.n)).sort((x, y) => x - y);
    const at = q => a[Math.min(a.length - 1, Math.floor(q * a.length))];
    return {p50: at(0.5), p99: at(0.99), n: this.n};
  }
}
