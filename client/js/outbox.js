// The client's commands on their way out: a queue behind a token bucket
// that keeps the client below the node's command rate (20 per second,
// burst 50, docs/protocol.md §7.1), so that many resyncs at once, or a
// page that subscribes in a loop, never earn rate_limited or a 1008.

export class Outbox {
  /**
   * @param {object} o
   * @param {number} o.rate commands per second
   * @param {number} o.burst commands at once
   * @param {() => boolean} o.ready whether the connection can take commands now
   * @param {(entry: any) => void} o.send writes one entry to the connection
   */
  constructor({rate, burst, ready, send}) {
    this.rate = rate;
    this.burst = burst;
    this.ready = ready;
    this.send = send;
    /** @type {any[]} entries not sent yet, oldest first */
    this.queue = [];
    this.tokens = burst;
    this.at = Date.now();
    this.timer = 0;
  }

  /** push queues an entry and sends what the rate allows. */
  push(entry) {
    this.queue.push(entry);
    this.flush();
  }

  /** flush sends what the rate allows now, and schedules the rest. */
  flush() {
    if (!this.ready()) return;
    const now = Date.now();
    this.tokens = Math.min(this.burst, this.tokens + (now - this.at) * this.rate / 1000);
    this.at = now;
    while (this.queue.length && this.tokens >= 1) {
      this.tokens -= 1;
      this.send(this.queue.shift());
    }
    this.stop();
    if (this.queue.length) {
      this.timer = setTimeout(() => this.flush(), Math.ceil((1 - this.tokens) * 1000 / this.rate));
    }
  }

  /** take empties the queue and returns what it held (the connection ended). */
  take() {
    this.stop();
    const q = this.queue;
    this.queue = [];
    return q;
  }

  /** stop cancels a scheduled flush. */
  stop() {
    clearTimeout(this.timer);
    this.timer = 0;
  }
}
