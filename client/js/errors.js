// The module's typed error: the node's error codes (docs/protocol.md §7.1)
// and the few the client adds itself.

/**
 * TickgateError is an error the node answered a command with, or one the
 * client raised for the same command.
 *
 * `code` is one of the node's codes (bad_request, unknown_op, forbidden,
 * bad_channel, too_many_subscriptions, rate_limited, unavailable,
 * invalid_token, history_unavailable) or one of the client's own:
 * `closed` (the client was closed before an answer came), `token`
 * (the token source failed), `protocol` (the node sent something the
 * client cannot use: an undecodable frame, a wrong subprotocol).
 */
export class TickgateError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   * @param {{channel?: string, retryMs?: number, id?: number, cause?: unknown}} [more]
   */
  constructor(code, message, more = {}) {
    super(message, more.cause === undefined ? undefined : {cause: more.cause});
    this.name = "TickgateError";
    /** The error code. */
    this.code = code;
    /** The channel the error is about, when there is one. @type {string | undefined} */
    this.channel = more.channel;
    /** With `unavailable`: milliseconds after which trying again makes sense. @type {number | undefined} */
    this.retryMs = more.retryMs;
    /** The id of the command it answers. @type {number | undefined} */
    this.id = more.id;
    /** With a subscribe that named several channels: every channel's error. @type {TickgateError[]} */
    this.errors = [this];
    /** With a subscribe that named several channels: those that were accepted all the same. @type {string[]} */
    this.accepted = [];
  }

  /**
   * fromMessage builds the error of an `error` message.
   * @param {any} m
   * @returns {TickgateError}
   */
  static fromMessage(m) {
    const code = typeof m.code === "string" ? m.code : "unknown";
    const text = typeof m.message === "string" && m.message ? m.message : code;
    return new TickgateError(code, text, {
      channel: typeof m.channel === "string" ? m.channel : undefined,
      retryMs: typeof m.retry_ms === "number" ? m.retry_ms : undefined,
      id: typeof m.id === "number" ? m.id : undefined,
    });
  }
}
