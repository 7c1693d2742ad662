// A stand-in for the browser's WebSocket, driven by the tests: they accept
// or refuse the handshake, deliver server messages in either codec, read
// the commands the client sent, and close from the node's side.

import {Client, SUBPROTOCOLS} from "../client.js";
import * as json from "../json.js";
import * as msgpack from "../msgpack.js";

export class FakeSocket {
  /** @type {FakeSocket[]} every socket made, oldest first */
  static all = [];

  /** @param {string} url @param {string[]} protocols */
  constructor(url, protocols) {
    this.url = url;
    this.protocols = protocols;
    this.binaryType = "blob";
    this.protocol = "";
    this.readyState = 0;
    /** @type {(string | Uint8Array)[]} */
    this.sent = [];
    /** @type {{code: number, reason: string} | null} */
    this.closedWith = null;
    this.onopen = this.onmessage = this.onclose = this.onerror = null;
    FakeSocket.all.push(this);
  }

  static get last() { return FakeSocket.all[FakeSocket.all.length - 1]; }

  send(data) {
    if (this.readyState !== 1) throw new Error("send on a socket that is not open");
    this.sent.push(data);
  }

  close(code = 1000, reason = "") {
    if (this.readyState >= 2) return;
    this.closedWith = {code, reason};
    this.readyState = 3;
    // The node answers a client's close with 1000.
    queueMicrotask(() => this.onclose?.({code: 1000, reason: "closed by the client", wasClean: true}));
  }

  // ---- the node's side ----

  /** accept completes the handshake, echoing protocol (default: the codec offered). */
  accept(protocol = this.protocols[0]) {
    this.protocol = protocol;
    this.readyState = 1;
    this.onopen?.({});
  }

  /** refuse fails the handshake as a browser reports it: 1006, no reason. */
  refuse() {
    this.readyState = 3;
    this.onerror?.({});
    this.onclose?.({code: 1006, reason: "", wasClean: false});
  }

  /** deliver sends one server message in the codec the socket speaks. */
  deliver(m) {
    const codec = this.protocol === SUBPROTOCOLS.msgpack ? "msgpack" : "json";
    const data = codec === "json" ? json.stringify(m) : msgpack.encode(m).buffer;
    this.onmessage?.({data});
  }

  /** drop closes from the node's side with code and reason. */
  drop(code, reason = "") {
    this.readyState = 3;
    this.onclose?.({code, reason, wasClean: code !== 1006});
  }

  /** commands decodes what the client sent. */
  commands() {
    return this.sent.map(d => typeof d === "string" ? json.parse(d) : msgpack.decode(d));
  }

  /** lastCommand is the newest command, optionally the newest with op. */
  lastCommand(op) {
    const all = this.commands().filter(c => !op || c.op === op);
    return all[all.length - 1];
  }
}

/** tick lets promises and zero timers run. */
export function tick(ms = 0) {
  return new Promise(r => setTimeout(r, ms));
}

/**
 * welcome is a welcome message; exp in Unix seconds.
 * @param {object} [more]
 */
export function welcome(more = {}) {
  return {type: "welcome", v: 1, session: "5b0e0c3f9a1d4e7b8c2a6f01", node: "fake-1", codec: "json", heartbeat_ms: 15000, exp: Math.floor(Date.now() / 1000) + 3600, ...more};
}

/**
 * connected makes a client on a FakeSocket and completes its first
 * handshake and welcome.
 * @param {object} [options] connect options beyond url and WebSocket
 * @returns {Promise<{client: Client, sock: FakeSocket}>}
 */
export async function connected(options = {}) {
  const client = new Client({url: "wss://node.test/v1/ws", token: "t0k3n", WebSocket: /** @type {any} */ (FakeSocket), random: () => 0, ...options});
  const before = FakeSocket.all.length;
  client.open();
  for (let i = 0; i < 50 && FakeSocket.all.length === before; i++) await tick();
  const sock = FakeSocket.last;
  sock.accept();
  sock.deliver(welcome(options.codec === "msgpack" ? {codec: "msgpack"} : {}));
  return {client, sock};
}

/**
 * ack answers the newest subscribe the client sent: every channel is
 * accepted, those in resumed resumed.
 * @param {FakeSocket} sock
 * @param {string[]} [resumed]
 */
export function ack(sock, resumed) {
  const cmd = sock.lastCommand("subscribe");
  const m = {type: "subscribed", id: cmd.id, channels: cmd.channels};
  if (resumed?.length) m.resumed = resumed;
  sock.deliver(m);
  return cmd;
}
