// A small event emitter: listeners are called in order, synchronously;
// one that throws does not stop the others, and its error goes to the
// `onThrow` hook (the client reports it as an "error" event).

export class Emitter {
  /** @param {(err: unknown, event: string) => void} onThrow */
  constructor(onThrow) {
    /** @type {Map<string, Function[]>} */
    this.listeners = new Map();
    this.onThrow = onThrow;
  }

  /**
   * on adds a listener and returns the function that removes it.
   * @param {string} event
   * @param {Function} fn
   * @returns {() => void}
   */
  on(event, fn) {
    if (typeof fn !== "function") throw new TypeError("listener is not a function");
    const list = this.listeners.get(event) ?? [];
    this.listeners.set(event, [...list, fn]);
    return () => this.off(event, fn);
  }

  /**
   * off removes a listener added with on.
   * @param {string} event
   * @param {Function} fn
   */
  off(event, fn) {
    const list = this.listeners.get(event);
    if (!list) return;
    const i = list.indexOf(fn);
    if (i >= 0) this.listeners.set(event, list.filter((_, k) => k !== i));
  }

  /** has reports whether event has a listener. @param {string} event */
  has(event) {
    return (this.listeners.get(event)?.length ?? 0) > 0;
  }

  /**
   * emit calls event's listeners with args.
   * @param {string} event
   * @param {...unknown} args
   */
  emit(event, ...args) {
    const list = this.listeners.get(event);
    if (!list) return;
    for (const fn of list) {
      try {
        fn(...args);
      } catch (err) {
        this.onThrow(err, event);
      }
    }
  }
}
