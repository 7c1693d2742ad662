// Unit tests of the module's pure parts (CRC-32, msgpack, JSON, decimals,
// the book, the channel rules, the backoff) and of the client on a
// FakeSocket. They run in a browser (unit.html) and in Node (node.mjs).

import {reconnectDelay, CLOSE_FLOOR_MS} from "../backoff.js";
import {Book, BookError} from "../book.js";
import {Channel, parseChannel} from "../channel.js";
import {crc32, bookChecksum} from "../crc32.js";
import {compareKeys, decimalKey, isZeroDecimal, validDecimal} from "../decimal.js";
import {TickgateError} from "../errors.js";
import {exactInt, toMillis} from "../ints.js";
import * as json from "../json.js";
import * as msgpack from "../msgpack.js";
import {ack, connected, FakeSocket, tick, welcome} from "./fakesocket.js";
import {deepEq, eq, ok, rejects, test, throws} from "./harness.js";

const hex = s => new Uint8Array(s.replace(/\s+/g, "").match(/../g)?.map(b => parseInt(b, 16)) ?? []);
const toHex = u8 => [...u8].map(b => b.toString(16).padStart(2, "0")).join(" ");
const S = 2n ** 53n;

// ---- CRC-32 and the book checksum ----

test("crc32: reference values", () => {
  eq(crc32(""), 0);
  eq(crc32("123456789"), 3421780262);
  eq(crc32("The quick brown fox jumps over the lazy dog"), 1095738169);
  eq(crc32("é"), 235179326, "non-ASCII is hashed as UTF-8");
  eq(crc32(new Uint8Array([0xc3, 0xa9])), 235179326);
});

test("bookChecksum: the worked example of docs/protocol.md §5.5", () => {
  eq(crc32("64000.10:1.5|64000.00:2|63999.50:0.25|64000.20:0.7|64000.50:3|64001.00:1.25|"), 4280704336);
  eq(bookChecksum([["64000.10", "1.5"], ["64000.00", "2"], ["63999.50", "0.25"]], [["64000.20", "0.7"], ["64000.50", "3"], ["64001.00", "1.25"]]), 4280704336);
  eq(bookChecksum([["64000.10", "1.25"], ["63999.50", "0.25"]], [["64000.20", "0.7"], ["64000.30", "0.4"], ["64000.50", "3"], ["64001.00", "1.25"]]), 341905690);
  eq(bookChecksum([], []), 0);
});

test("bookChecksum: only 10 levels per side", () => {
  const side = n => Array.from({length: n}, (_, i) => [String(100 - i), "1"]);
  eq(bookChecksum(side(12), []), bookChecksum(side(10), []));
  ok(bookChecksum(side(10), []) !== bookChecksum(side(9), []), "the 10th level counts");
});

// ---- integers ----

test("ints: exactInt and toMillis", () => {
  eq(exactInt(9007199254740991n), 9007199254740991);
  eq(exactInt(-9007199254740991n), -9007199254740991);
  eq(exactInt(S), S);
  eq(exactInt(-S), -S);
  eq(toMillis(1767222000123456789n), 1767222000123.456);
  eq(toMillis(2500000), 2.5);
});

// ---- msgpack ----

test("msgpack: decodes every family of the spec", () => {
  const cases = [
    ["00", 0], ["7f", 127], ["ff", -1], ["e0", -32], ["c0", null], ["c2", false], ["c3", true],
    ["cc ff", 255], ["cd 04 b7", 1207], ["ce ff ff ff ff", 4294967295],
    ["cf 00 1f ff ff ff ff ff ff", 9007199254740991], ["cf 00 20 00 00 00 00 00 01", S + 1n],
    ["cf ff ff ff ff ff ff ff ff", 2n ** 64n - 1n],
    ["d0 80", -128], ["d1 80 00", -32768], ["d2 80 00 00 00", -2147483648],
    ["d3 80 00 00 00 00 00 00 00", -(2n ** 63n)], ["d3 ff ff ff ff ff ff ff ff", -1],
    ["ca 3f c0 00 00", 1.5], ["cb 3f b9 99 99 99 99 99 9a", 0.1],
    ["a0", ""], ["a3 61 62 63", "abc"], ["d9 03 61 62 63", "abc"], ["da 00 03 61 62 63", "abc"], ["db 00 00 00 03 61 62 63", "abc"],
    ["a2 c3 a9", "é"],
    ["c4 02 01 02", new Uint8Array([1, 2])], ["c5 00 01 09", new Uint8Array([9])],
    ["90", []], ["92 01 a1 78", [1, "x"]], ["dc 00 01 c0", [null]], ["dd 00 00 00 01 01", [1]],
    ["80", {}], ["81 a1 61 01", {a: 1}], ["de 00 01 a1 61 02", {a: 2}], ["df 00 00 00 01 a1 61 03", {a: 3}],
  ];
  for (const [h, want] of cases) deepEq(msgpack.decode(hex(h)), want, h);
});

test("msgpack: a server update with a uint64 seq beyond 2^53", () => {
  const m = {type: "update", channel: "book.BTC-USD", seq: S + 5n, prev: S + 4n, n: 1,
    data: {bids: [["64000.00", "0"]], asks: [], checksum: 341905690, ts: 1767222000200000000n}};
  const back = msgpack.decode(msgpack.encode(m));
  deepEq(back, m);
  eq(typeof back.seq, "bigint");
  ok(back.prev !== back.seq, "2^53+4 and 2^53+5 stay two seqs");
});

test("msgpack: encodes integers in their smallest form", () => {
  const cases = [
    [0, "00"], [127, "7f"], [128, "cc 80"], [255, "cc ff"], [256, "cd 01 00"], [1207, "cd 04 b7"],
    [65536, "ce 00 01 00 00"], [2 ** 32, "cf 00 00 00 01 00 00 00 00"], [S + 1n, "cf 00 20 00 00 00 00 00 01"],
    [2n ** 64n - 1n, "cf ff ff ff ff ff ff ff ff"], [-1, "ff"], [-32, "e0"], [-33, "d0 df"], [-128, "d0 80"],
    [-129, "d1 ff 7f"], [-32769, "d2 ff ff 7f ff"], [-(2 ** 31) - 1, "d3 ff ff ff ff 7f ff ff ff"], [-(2n ** 63n), "d3 80 00 00 00 00 00 00 00"],
    [1.5, "cb 3f f8 00 00 00 00 00 00"], [true, "c3"], [null, "c0"],
    ["abc", "a3 61 62 63"], ["x".repeat(32), "d9 20 " + "78 ".repeat(32)],
  ];
  for (const [v, want] of cases) eq(toHex(msgpack.encode(v)), toHex(hex(want)), String(v));
  throws(() => msgpack.encode(2n ** 64n), /out of the 64-bit range/);
  throws(() => msgpack.encode(-(2n ** 63n) - 1n), /out of the 64-bit range/);
});

test("msgpack: commands round-trip, undefined fields left out", () => {
  const cmd = {op: "subscribe", id: 7, channels: Array.from({length: 20}, (_, i) => "book.S" + i), since: {"book.S1": S + 3n, "book.S2": 88}, snapshot: undefined};
  const back = msgpack.decode(msgpack.encode(cmd));
  deepEq(back, {op: "subscribe", id: 7, channels: cmd.channels, since: cmd.since});
  const big = {token: "t".repeat(70000)};
  deepEq(msgpack.decode(msgpack.encode(big)), big);
});

test("msgpack: refuses what is not one well-formed value", () => {
  throws(() => msgpack.decode(hex("")), /truncated/);
  throws(() => msgpack.decode(hex("cd 01")), /truncated/);
  throws(() => msgpack.decode(hex("a5 61 62")), /truncated/);
  throws(() => msgpack.decode(hex("dd ff ff ff ff")), /truncated/);
  throws(() => msgpack.decode(hex("df ff ff ff ff")), /truncated/);
  throws(() => msgpack.decode(hex("01 02")), /1 bytes after/);
  throws(() => msgpack.decode(hex("d4 01 00")), /extension/);
  throws(() => msgpack.decode(hex("c1")), /never used/);
  throws(() => msgpack.decode(hex("81 01 01")), /not a string/);
  throws(() => msgpack.decode(hex("a2 c3 28")), /not UTF-8/);
  throws(() => msgpack.decode(new Uint8Array(200).fill(0x91)), /too deep/);
});

test("msgpack: a __proto__ key is an own property", () => {
  const v = /** @type {any} */ (msgpack.decode(hex("81 a9 5f 5f 70 72 6f 74 6f 5f 5f 81 a1 78 01")));
  ok(Object.prototype.hasOwnProperty.call(v, "__proto__"));
  eq(Object.getPrototypeOf(v), Object.prototype);
  eq(/** @type {any} */ ({}).x, undefined);
});

test("msgpack: decodes a view into a larger buffer", () => {
  const buf = new Uint8Array([0xff, 0x81, 0xa1, 0x61, 0x05, 0xff]);
  deepEq(msgpack.decode(buf.subarray(1, 5)), {a: 5});
});

// ---- JSON ----

test("json: parses as JSON.parse does", () => {
  const docs = [
    `{"a":1,"b":[true,false,null],"c":"x\\"y\\\\z\\/\\b\\f\\n\\r\\t","d":{"e":[]}}`,
    `  [ 1 , -2.5e3 , 0.1 , -0 , 1E-7, 12345678901234.5 ]  `, `"\\u00e9\\ud83d\\ude00 é"`, `{}`, `[]`, `0`, `-1`,
    `{"a":1,"a":2}`, `123456789012345`, `{"type":"update","channel":"book.X","seq":12,"prev":11,"n":1,"data":{"bids":[["1.5","2"]],"asks":[],"checksum":4280704336}}`,
  ];
  for (const d of docs) deepEq(json.parse(d), JSON.parse(d), d);
  ok(Object.is(json.parse("-0"), -0));
});

test("json: integers beyond 2^53 stay exact as BigInt", () => {
  eq(json.parse("9007199254740991"), 9007199254740991);
  eq(json.parse("9007199254740992"), S);
  eq(json.parse("9007199254740993"), S + 1n);
  eq(json.parse("-9223372036854775808"), -(2n ** 63n));
  eq(json.parse("18446744073709551615"), 2n ** 64n - 1n);
  eq(json.parse("1767222000000000000"), 1767222000000000000n);
  eq(json.parse("0000000000000001".replace(/^0+/, "")), 1);
  eq(json.parse("1.0e20"), 1e20, "a float stays a float");
  const m = /** @type {any} */ (json.parse(`{"seq":9007199254740997,"prev":9007199254740996}`));
  ok(m.seq !== m.prev && m.seq - m.prev === 1n);
});

test("json: refuses what JSON.parse refuses", () => {
  const bad = [``, ` `, `{`, `[1,]`, `{"a":1,}`, `{a:1}`, `01`, `1.`, `.5`, `-`, `1e`, `+1`, `"abc`, `"a\tb"`, `"\\x"`, `"\\u12G4"`,
    `tru`, `nul`, `[1 2]`, `{"a" 1}`, `{} x`, `NaN`, `'a'`];
  for (const b of bad) {
    throws(() => json.parse(b), /json:/, JSON.stringify(b));
    throws(() => JSON.parse(b), null, "JSON.parse " + JSON.stringify(b));
  }
  throws(() => json.parse("[".repeat(100) + "]".repeat(100)), /too deep/);
});

test("json: a __proto__ key is an own property", () => {
  const v = /** @type {any} */ (json.parse(`{"__proto__":{"x":1}}`));
  ok(Object.prototype.hasOwnProperty.call(v, "__proto__"));
  eq(Object.getPrototypeOf(v), Object.prototype);
});

test("json: stringify writes BigInts as plain numbers", () => {
  eq(json.stringify({op: "subscribe", id: 1, since: {"book.X": S + 1n}, snapshot: undefined, a: [1, undefined, "é"]}),
    `{"op":"subscribe","id":1,"since":{"book.X":9007199254740993},"a":[1,null,"é"]}`);
  const v = {a: [S + 9n, -5, "x\"y", true, null, {b: {}}]};
  deepEq(json.parse(json.stringify(v)), v);
});

// ---- decimals ----

test("decimal: canonical keys and numeric order", () => {
  const keys = {"1.50": "1.5", "1.5": "1.5", "01.500": "1.5", "0": "0", "0.0": "0", "000": "0", "0.010": "0.01", "64000.10": "64000.1", "10": "10", "100.00": "100"};
  for (const [s, k] of Object.entries(keys)) eq(decimalKey(s), k, s);
  const sorted = ["0", "0.000001", "0.01", "0.1", "0.5", "0.51", "0.6", "1", "1.5", "9.99", "10", "10.01", "99", "100", "1000000000000000000000000000000000000001"];
  for (let i = 0; i < sorted.length; i++) {
    for (let j = 0; j < sorted.length; j++) {
      const c = Math.sign(compareKeys(decimalKey(sorted[i]), decimalKey(sorted[j])));
      eq(c, Math.sign(i - j), `${sorted[i]} vs ${sorted[j]}`);
    }
  }
  ok(validDecimal("64000.10") && validDecimal("0") && !validDecimal("") && !validDecimal(".5") && !validDecimal("1.") && !validDecimal("-1") && !validDecimal("1e3") && !validDecimal("1".repeat(41)));
  ok(isZeroDecimal("0") && isZeroDecimal("0.000") && !isZeroDecimal("0.001") && !isZeroDecimal(""));
});

// ---- book ----

test("book: the worked example, text of the latest update kept", () => {
  const b = new Book();
  ok(b.applySnapshot({bids: [["64000.10", "1.5"], ["64000.00", "2"], ["63999.50", "0.25"]], asks: [["64000.20", "0.7"], ["64000.50", "3"], ["64001.00", "1.25"]], checksum: 4280704336}, 1200));
  ok(b.applyUpdate({bids: [["64000.00", "0"], ["64000.10", "1.25"]], asks: [["64000.30", "0.4"]], checksum: 341905690}, 1201));
  deepEq(b.bids, [["64000.10", "1.25"], ["63999.50", "0.25"]]);
  deepEq(b.bestAsk(), ["64000.20", "0.7"]);
  deepEq(b.top(2).asks, [["64000.20", "0.7"], ["64000.30", "0.4"]]);
  deepEq(b.level("bids", "64000.1"), ["64000.10", "1.25"]);
  eq(b.seq, 1201);
  b.applyUpdate({bids: [["64000.1", "2"]], asks: [], checksum: 0});
  deepEq(b.bestBid(), ["64000.1", "2"], "the level takes the update's price text");
  eq(b.verified, false);
  deepEq(b.depth, {bids: 2, asks: 4});
});

test("book: prices a double cannot tell apart stay two levels", () => {
  const b = new Book();
  const p1 = "1.00000000000000000001", p2 = "1.00000000000000000002";
  eq(Number(p1), Number(p2));
  b.applySnapshot({bids: [[p1, "1"], [p2, "2"]], asks: [], checksum: 0});
  deepEq(b.bids, [[p2, "2"], [p1, "1"]]);
  b.applyUpdate({bids: [[p1, "0"]], asks: []});
  deepEq(b.bids, [[p2, "2"]]);
});

test("book: keeps order through many random updates", () => {
  const b = new Book();
  const ref = {bids: new Map(), asks: new Map()};
  let seed = 42;
  const rnd = n => (seed = (seed * 1103515245 + 12345) % 2147483648) % n;
  for (let i = 0; i < 3000; i++) {
    const side = rnd(2) ? "bids" : "asks";
    const price = (100 + rnd(200) / 10).toFixed(rnd(3) + 1);
    const size = rnd(4) === 0 ? "0" : String(rnd(9) + 1);
    b.applyUpdate(side === "bids" ? {bids: [[price, size]], asks: []} : {bids: [], asks: [[price, size]]});
    const k = Number(price).toFixed(6);
    if (size === "0") ref[side].delete(k);
    else ref[side].set(k, [price, size]);
  }
  const want = side => [...ref[side].entries()].sort((x, y) => side === "bids" ? y[0] - x[0] : x[0] - y[0]).map(e => e[1]);
  deepEq(b.bids, want("bids"));
  deepEq(b.asks, want("asks"));
  eq(b.checksum(), bookChecksum(want("bids"), want("asks")));
});

test("book: a malformed level throws BookError and clears the book", () => {
  const b = new Book();
  b.applySnapshot({bids: [["1", "1"]], asks: [], checksum: 0});
  for (const bad of [["1"], ["1", 2], ["-1", "1"], ["1", "1e3"], "1:1", null]) {
    b.applySnapshot({bids: [["1", "1"]], asks: []});
    const err = throws(() => b.applyUpdate({bids: [bad], asks: []}), /book:/, JSON.stringify(bad));
    ok(err instanceof BookError);
    eq(b.depth.bids, 0);
    eq(b.verified, false);
  }
});

// ---- channel rules ----

test("channel: names", () => {
  deepEq(parseChannel("book.BTC-USD"), {kind: "book", symbol: "BTC-USD"});
  for (const bad of ["book", "book.", "Book.X", "book.X.Y", "candle.2m.X", "book." + "x".repeat(33), "book.a b", 5]) eq(parseChannel(bad), null, String(bad));
  throws(() => new Channel("nope"), /not a channel/);
});

test("channel: node status, disconnect and resume", () => {
  const ch = new Channel("book.X");
  ch.acked(false);
  eq(ch.state, "subscribing");
  const snap = {type: "snapshot", channel: "book.X", seq: 5, data: {bids: [["1", "1"]], asks: [], checksum: bookChecksum([["1", "1"]], [])}};
  ok(ch.handle(snap).applied);
  eq(ch.state, "live");
  let s = ch.handle({type: "status", channel: "book.X", state: "stale", reason: "feed_silent"});
  ok(s.stateChanged);
  eq(ch.state, "stale");
  eq(ch.reason, "feed_silent");
  ch.handle({type: "status", channel: "book.X", state: "live"});
  eq(ch.state, "live");
  ch.handle({type: "status", channel: "book.X", state: "resyncing", reason: "feed_gap"});
  eq(ch.state, "resyncing");
  ch.handle({...snap, seq: 9});
  eq(ch.state, "live", "a snapshot ends the node's resync");
  ok(ch.disconnected());
  eq(ch.state, "stale");
  eq(ch.reason, "disconnected");
  eq(ch.resumeSeq(), 9);
  ch.acked(true);
  eq(ch.state, "live");
  s = ch.handle({type: "update", channel: "book.X", seq: 10, prev: 9, n: 1, data: {bids: [["2", "1"]], asks: [], checksum: bookChecksum([["2", "1"], ["1", "1"]], [])}});
  ok(s.applied && s.checksumOk);
  ch.disconnected();
  ch.acked(false);
  eq(ch.state, "stale", "not resumed: right but old until the snapshot");
  eq(ch.reason, "resubscribed");
  eq(ch.resumeSeq(), 10, "still resumable should the connection drop again");
  ok(!ch.handle({type: "update", channel: "book.X", seq: 11, prev: 10, n: 1, data: {bids: [], asks: [], checksum: 0}}).applied);
  ch.handle({...snap, seq: 12});
  eq(ch.state, "live");
});

test("channel: a gap resumed by a replay", () => {
  const ch = new Channel("ticker.X");
  ch.acked(false);
  ch.handle({type: "snapshot", channel: "ticker.X", seq: 3, data: {last: "1"}});
  const s = ch.handle({type: "update", channel: "ticker.X", seq: 6, prev: 5, n: 1, data: {last: "2"}});
  ok(s.gap && s.resync);
  eq(s.since, 3);
  eq(ch.resumeSeq(), 3);
  ch.acked(true);
  eq(ch.state, "live");
  ok(ch.handle({type: "update", channel: "ticker.X", seq: 4, prev: 3, n: 1, data: {last: "3"}}).applied);
  deepEq(ch.ticker, {last: "3"});
});

test("channel: trades after a reconnect that was not resumed start at prev 0", () => {
  const ch = new Channel("trade.X");
  ch.acked(false);
  ch.handle({type: "update", channel: "trade.X", seq: 8, prev: 0, n: 1, data: {id: 1}});
  ch.disconnected();
  eq(ch.resumeSeq(), 8);
  ch.acked(false);
  eq(ch.last, 0);
  eq(ch.handle({type: "update", channel: "trade.X", seq: 20, prev: 0, n: 1, data: {id: 2}}).gap, false);
});

test("parseChannel: candle channels carry their interval", () => {
  deepEq(parseChannel("candle.1m.BTC-USD"), {kind: "candle", symbol: "BTC-USD", interval: "1m"});
  deepEq(parseChannel("candle.4h.X"), {kind: "candle", symbol: "X", interval: "4h"});
  eq(parseChannel("candle.2m.X"), null);
  eq(parseChannel("candle.X"), null);
  eq(parseChannel("ticker.1m.X"), null);
});

const bar = (min, close, closed = false) => ({symbol: "X", interval: "1m", start: 60e9 * (1000 + min), open: "100", high: "200", low: "50", close, volume: "1", trades: 3, closed, ts: 60e9 * (1000 + min) + 1});

test("channel: candles from the snapshot's bars, revised, closed, bounded, resynced", () => {
  const ch = new Channel("candle.1m.X");
  ch.barLimit = 3;
  ch.acked(false);
  eq(ch.state, "subscribing");
  let s = ch.handle({type: "snapshot", channel: "candle.1m.X", seq: 5, data: {symbol: "X", interval: "1m", bars: [bar(0, "101", true), bar(1, "102")]}});
  ok(s.applied);
  eq(ch.state, "live");
  eq(ch.bars.length, 2);
  for (const [i, b] of [bar(1, "103"), bar(1, "104", true), bar(2, "105"), bar(3, "106")].entries()) {
    s = ch.handle({type: "update", channel: "candle.1m.X", seq: 6 + i, prev: 5 + i, n: 1, data: b});
    ok(s.applied && s.bar === b, "update " + i);
  }
  deepEq(ch.bars.map(b => b.close), ["104", "105", "106"]);
  ok(ch.bars[0].closed);
  eq(ch.resumeSeq(), 9);
  s = ch.handle({type: "update", channel: "candle.1m.X", seq: 12, prev: 11, n: 1, data: bar(3, "107")});
  ok(s.gap && s.resync && !s.applied);
  eq(s.since, 9);
  eq(ch.state, "resyncing");
  // A bar the client cannot use: a fresh snapshot.
  const c2 = new Channel("candle.1m.X");
  c2.acked(false);
  c2.handle({type: "snapshot", channel: "candle.1m.X", seq: 1, data: {bars: [bar(0, "1")]}});
  s = c2.handle({type: "update", channel: "candle.1m.X", seq: 2, prev: 1, n: 1, data: {...bar(0, "2"), high: "x"}});
  ok(s.resync && !s.applied);
  eq(s.since, undefined);
  eq(c2.state, "resyncing");
  s = new Channel("candle.1m.X").handle({type: "snapshot", channel: "candle.1m.X", seq: 1, data: {bars: [bar(2, "1"), bar(1, "1")]}});
  ok(s.resync, "bars out of order");
});

test("client: subscribe options of contract 1.1 go on the wire, checked first", async () => {
  const {client, sock} = await connected();
  const events = [];
  client.on("candle", (bars, m) => events.push(`${m.type} ${bars.length} ${m.bar ? m.bar.close : "-"}`));
  const p = client.subscribe(["candle.1m.A"], {bars: 2});
  const cmd = sock.lastCommand("subscribe");
  eq(cmd.bars, 2);
  ack(sock);
  await p;
  sock.deliver({type: "snapshot", channel: "candle.1m.A", seq: 3, data: {symbol: "A", interval: "1m", bars: [bar(0, "1", true), bar(1, "2", true), bar(2, "3")]}});
  sock.deliver({type: "update", channel: "candle.1m.A", seq: 4, prev: 3, n: 1, data: bar(2, "4")});
  deepEq(events, ["snapshot 2 -", "update 2 4"]);
  deepEq(client.candles("candle.1m.A").map(b => b.close), ["2", "4"]);
  const q = client.subscribe(["book.A"], {depth: 10});
  eq(sock.lastCommand("subscribe").depth, 10);
  ack(sock);
  await q;
  const r = client.subscribe(["trade.A"], {recent: 50});
  eq(sock.lastCommand("subscribe").recent, 50);
  ack(sock);
  await r;
  for (const [opts, code] of [[{depth: 7}, "bad_request"], [{recent: 1001}, "bad_request"], [{bars: 0}, "bad_request"], [{bars: 1.5}, "bad_request"]]) {
    eq((await rejects(client.subscribe(["book.B"], opts))).code, code, JSON.stringify(opts));
  }
  await client.close();
});

// ---- backoff ----

test("backoff: close codes and full jitter", () => {
  const at = r => () => r;
  ok(reconnectDelay({code: 1001, fails: 1, random: at(0.999)}) < 250, "1001: promptly");
  ok(reconnectDelay({code: 1001, fails: 1, withinMs: 100, random: at(0.999)}) < 100);
  ok(reconnectDelay({code: 4001, fails: 1, random: at(0.999)}) < 250, "4001: promptly, after a fresh token");
  eq(reconnectDelay({code: 4008, fails: 1, random: at(0)}), CLOSE_FLOOR_MS[4008]);
  eq(reconnectDelay({code: 1008, fails: 1, random: at(0)}), 15000);
  eq(reconnectDelay({code: 1006, fails: 1, random: at(0)}), 0);
  const b = {baseMs: 500, capMs: 30000};
  eq(reconnectDelay({code: 1006, fails: 1, backoff: b, random: at(0.5)}), 250);
  eq(reconnectDelay({code: 1006, fails: 4, backoff: b, random: at(0.5)}), 2000);
  eq(reconnectDelay({code: 1006, fails: 40, backoff: b, random: at(0.5)}), 15000, "capped");
  ok(reconnectDelay({code: 1001, fails: 5, backoff: b, random: at(0.5)}) >= 2000, "a 1001 loop backs off too");
});

// ---- the client on a FakeSocket ----

test("client: handshake offers the codec and the bearer entry; the token source runs per connect", async () => {
  let calls = 0;
  const {client, sock} = await connected({token: async () => "jwt-" + ++calls, codec: "msgpack"});
  deepEq(sock.protocols, ["tickgate.v1.msgpack", "bearer.jwt-1"]);
  eq(sock.binaryType, "arraybuffer");
  eq(client.state, "open");
  sock.drop(1006);
  eq(client.state, "reconnecting");
  await tick(5);
  deepEq(FakeSocket.last.protocols, ["tickgate.v1.msgpack", "bearer.jwt-2"]);
  await client.close();
  eq(client.state, "closed");
});

test("client: subscribe resolves with the ack; refusals reject typed", async () => {
  const {client, sock} = await connected();
  const p = client.subscribe(["book.A", "trade.A"], {throttleMs: 100});
  const cmd = ack(sock);
  deepEq(cmd.channels, ["book.A", "trade.A"]);
  eq(cmd.throttle_ms, 100);
  deepEq(await p, {channels: ["book.A", "trade.A"], resumed: []});

  const q = client.subscribe(["book.B", "book.C", "book.D"]);
  const c2 = sock.lastCommand("subscribe");
  sock.deliver({type: "error", id: c2.id, code: "forbidden", message: "no", channel: "book.B"});
  sock.deliver({type: "error", id: c2.id, code: "unavailable", message: "later", channel: "book.D", retry_ms: 2500});
  sock.deliver({type: "subscribed", id: c2.id, channels: ["book.C"]});
  const err = await rejects(q);
  ok(err instanceof TickgateError);
  eq(err.code, "forbidden");
  eq(err.channel, "book.B");
  eq(err.errors.length, 2);
  eq(err.errors[1].retryMs, 2500);
  deepEq(err.accepted, ["book.C"]);
  deepEq(client.channels().map(c => c.name), ["book.A", "trade.A", "book.C"]);

  eq((await rejects(client.subscribe("nope"))).code, "bad_channel");
  eq((await rejects(client.subscribe("book.A", {throttleMs: 1.5}))).code, "bad_request");
  const u = client.unsubscribe("trade.A");
  const uc = sock.lastCommand("unsubscribe");
  sock.deliver({type: "unsubscribed", id: uc.id, channels: ["trade.A"]});
  deepEq(await u, {channels: ["trade.A"]});
  const whole = client.subscribe("book.E");
  sock.deliver({type: "error", id: sock.lastCommand("subscribe").id, code: "rate_limited", message: "slow down"});
  eq((await rejects(whole)).code, "rate_limited");
  await client.close();
});

test("client: subscribe before the connection is up goes out after the welcome", async () => {
  const client = new (await import("../client.js")).Client({url: "wss://x/v1/ws", token: "t", WebSocket: /** @type {any} */ (FakeSocket), random: () => 0});
  client.open();
  const p = client.subscribe("ticker.A");
  await tick();
  const sock = FakeSocket.last;
  eq(sock.sent.length, 0);
  sock.accept();
  sock.deliver(welcome());
  ack(sock);
  deepEq(await p, {channels: ["ticker.A"], resumed: []});
  await client.close();
});

test("client: gap and checksum mismatch re-subscribe; no wrong book is handed out", async () => {
  const {client, sock} = await connected();
  const events = [];
  client.on("gap", g => events.push("gap " + g.kind));
  client.on("checksum", () => events.push("checksum"));
  client.on("channel", c => events.push(`${c.channel} ${c.state}`));
  client.on("book", (_, m) => events.push("book " + m.seq));
  const p = client.subscribe("book.A");
  ack(sock);
  await p;
  const lv = [["10", "1"]];
  sock.deliver({type: "snapshot", channel: "book.A", seq: 5, data: {symbol: "A", bids: lv, asks: [], checksum: bookChecksum(lv, [])}});
  ok(client.book("book.A"));
  sock.deliver({type: "update", channel: "book.A", seq: 7, prev: 6, n: 1, data: {bids: [], asks: [], checksum: 0}});
  eq(client.book("book.A"), null);
  await tick();
  const re = sock.lastCommand("subscribe");
  deepEq(re.channels, ["book.A"]);
  deepEq(re.since, {"book.A": 5});
  sock.deliver({type: "subscribed", id: re.id, channels: ["book.A"], resumed: ["book.A"]});
  const lv2 = [["11", "1"], ["10", "1"]];
  sock.deliver({type: "update", channel: "book.A", seq: 6, prev: 5, n: 1, data: {bids: [["11", "1"]], asks: [], checksum: bookChecksum(lv2, [])}});
  deepEq(client.book("book.A")?.bids, lv2);
  sock.deliver({type: "update", channel: "book.A", seq: 7, prev: 6, n: 1, data: {bids: [["12", "1"]], asks: [], checksum: 12345}});
  eq(client.book("book.A"), null);
  eq(client.channel("book.A").state, "resyncing");
  await tick(10);
  eq(sock.lastCommand("subscribe").id, re.id, "a second resync in quick succession waits");
  // It goes 500 ms later; a loaded browser may fire the timer late, so
  // wait for it (at most 5 s) rather than for a fixed time.
  for (let i = 0; i < 100 && sock.lastCommand("subscribe").id === re.id; i++) await tick(50);
  const re2 = sock.lastCommand("subscribe");
  eq(re2.since, undefined, "after a mismatch: a fresh snapshot");
  deepEq(events, ["book.A live", "book 5", "gap prev", "book.A resyncing", "book.A live", "book 6", "checksum", "book.A resyncing"]);
  const st = client.channel("book.A").stats;
  eq(st.gaps, 1);
  eq(st.checksumOk, 2);
  eq(st.checksumBad, 1);
  await client.close();
});

test("client: reconnect resumes with since; the round is reported", async () => {
  const {client, sock} = await connected();
  const p = client.subscribe(["ticker.A", "trade.A", "book.B"]);
  ack(sock);
  await p;
  sock.deliver({type: "snapshot", channel: "ticker.A", seq: S + 1n, data: {last: "1"}});
  sock.deliver({type: "update", channel: "trade.A", seq: 40, prev: 0, n: 1, data: {id: 1}});
  const states = [];
  client.on("state", s => states.push(s.state));
  const rounds = [];
  client.on("resubscribed", r => rounds.push(r));
  const chans = [];
  client.on("channel", c => chans.push(`${c.channel} ${c.state}`));
  sock.drop(1006);
  deepEq(chans, ["ticker.A stale", "trade.A stale"]);
  await tick(5);
  const s2 = FakeSocket.last;
  ok(s2 !== sock);
  s2.accept();
  s2.deliver(welcome());
  const cmd = s2.lastCommand("subscribe");
  deepEq(cmd.channels, ["ticker.A", "trade.A", "book.B"]);
  deepEq(cmd.since, {"ticker.A": S + 1n, "trade.A": 40});
  s2.deliver({type: "subscribed", id: cmd.id, channels: cmd.channels, resumed: ["ticker.A"]});
  s2.deliver({type: "error", id: cmd.id, code: "history_unavailable", message: "gone", channel: "trade.A"});
  deepEq(states, ["reconnecting", "connecting", "open"]);
  deepEq(rounds, [{resumed: ["ticker.A"], fresh: ["trade.A", "book.B"], reconnected: true}]);
  eq(client.channel("ticker.A").state, "live");
  eq(client.stats.reconnects, 1);
  await client.close();
});

test("client: close codes pick the wait", async () => {
  const {client, sock} = await connected({random: () => 0.5});
  const waits = [];
  client.on("state", s => { if (s.state === "reconnecting") waits.push([s.code, s.delayMs]); });
  sock.drop(4008, "slow consumer: lag_timeout");
  client.reconnect(); // the user may skip the wait
  await tick(5);
  FakeSocket.last.accept();
  FakeSocket.last.deliver(welcome());
  FakeSocket.last.drop(1008, "policy");
  client.reconnect();
  await tick(5);
  FakeSocket.last.accept();
  FakeSocket.last.deliver(welcome());
  FakeSocket.last.deliver({type: "reconnect", reason: "draining", within_ms: 40});
  FakeSocket.last.drop(1001, "node draining");
  eq(waits.length, 3);
  ok(waits[0][0] === 4008 && waits[0][1] >= 5000, "4008 waits 5 s or more: " + waits[0]);
  ok(waits[1][0] === 1008 && waits[1][1] >= 15000, "1008 waits 15 s or more: " + waits[1]);
  ok(waits[2][0] === 1001 && waits[2][1] < 40, "1001 after a notice: within within_ms: " + waits[2]);
  await client.close();
});

test("client: 4001 asks the token source before coming back", async () => {
  let n = 0;
  const {client, sock} = await connected({token: () => "tok" + ++n});
  sock.drop(4001, "token expired");
  await tick(5);
  deepEq(FakeSocket.last.protocols, ["tickgate.v1.json", "bearer.tok2"]);
  await client.close();
});

test("client: refreshes the token in-band before exp", async () => {
  let n = 0;
  const auths = [];
  const client = new (await import("../client.js")).Client({url: "wss://x/v1/ws", token: () => "tok" + ++n, WebSocket: /** @type {any} */ (FakeSocket), refreshAt: 0.05, random: () => 0});
  client.on("authenticated", a => auths.push(a.exp));
  client.open();
  await tick();
  const sock = FakeSocket.last;
  sock.accept();
  const exp = Math.floor(Date.now() / 1000) + 2;
  sock.deliver(welcome({exp}));
  for (let i = 0; i < 100 && !sock.lastCommand("auth"); i++) await tick(5);
  const a = sock.lastCommand("auth");
  ok(a, "an auth command within 0.05 of the time to exp");
  eq(a.token, "tok2");
  sock.deliver({type: "authenticated", id: a.id, exp: exp + 60});
  deepEq(auths, [exp + 60]);
  eq(client.welcome.exp, exp + 60);
  await client.close();
});

test("client: a wrong subprotocol or an undecodable frame is reported", async () => {
  const errors = [];
  const client = new (await import("../client.js")).Client({url: "wss://x/v1/ws", token: "t", WebSocket: /** @type {any} */ (FakeSocket), random: () => 0});
  client.on("error", e => errors.push(e.code));
  client.open();
  await tick();
  const waits = [];
  client.on("state", st => { if (st.state === "reconnecting") waits.push(st.delayMs); });
  FakeSocket.last.accept("");
  eq(client.state, "reconnecting");
  ok(waits[0] >= 15000, "a node that answers another subprotocol is not asked again at once");
  client.reconnect();
  await tick(5);
  const s = FakeSocket.last;
  s.accept();
  s.deliver(welcome());
  s.onmessage({data: "{not json"});
  s.onmessage({data: new ArrayBuffer(2)});
  deepEq(errors, ["protocol", "protocol", "protocol"]);
  await client.close();
});

test("client: a throwing listener does not break the client", async () => {
  const {client, sock} = await connected();
  const errors = [];
  client.on("error", e => errors.push(e.code));
  client.on("ticker", () => { throw new Error("boom"); });
  const seen = [];
  client.on("ticker", t => seen.push(t.last));
  const p = client.subscribe("ticker.A");
  ack(sock);
  await p;
  sock.deliver({type: "snapshot", channel: "ticker.A", seq: 1, data: {last: "5"}});
  deepEq(seen, ["5"]);
  deepEq(errors, ["listener"]);
  await client.close();
});

test("client: ping, unsubscribe while down, close rejects what waits", async () => {
  const {client, sock} = await connected();
  const p = client.ping();
  sock.deliver({type: "pong", id: sock.lastCommand("ping").id, ts: 1767222000000000000n});
  ok(typeof (await p) === "number");
  const waiting = client.subscribe("book.Z");
  sock.drop(1006);
  deepEq(await client.unsubscribe("book.Q"), {channels: ["book.Q"]});
  await client.close();
  eq((await rejects(waiting)).code, "closed");
  eq((await rejects(client.subscribe("book.A"))).code, "closed");
});

test("client: commands are rate limited below the node's limit", async () => {
  const {client, sock} = await connected();
  for (let i = 0; i < 30; i++) client.subscribe("ticker.S" + i).catch(() => {});
  eq(sock.commands().length, 20, "the burst goes out at once");
  await tick(250);
  ok(sock.commands().length >= 21 && sock.commands().length < 30, "the rest follows at the rate: " + sock.commands().length);
  await client.close();
});

test("client: msgpack commands carry since exactly", async () => {
  const {client, sock} = await connected({codec: "msgpack"});
  const p = client.subscribe("ticker.A");
  ack(sock);
  await p;
  sock.deliver({type: "snapshot", channel: "ticker.A", seq: S + 3n, data: {last: "1"}});
  ok(sock.sent.every(d => d instanceof Uint8Array), "binary frames");
  sock.drop(1006);
  await tick(5);
  const s2 = FakeSocket.last;
  s2.accept();
  s2.deliver(welcome({codec: "msgpack"}));
  deepEq(s2.lastCommand("subscribe").since, {"ticker.A": S + 3n});
  await client.close();
});

test("client: listeners added right after connect() see the first connecting", async () => {
  const {connect} = await import("../client.js");
  const states = [];
  const client = connect({url: "wss://x/v1/ws", token: "t", WebSocket: /** @type {any} */ (FakeSocket)});
  client.on("state", s => states.push(s.state));
  await tick();
  deepEq(states, ["connecting"]);
  FakeSocket.last.accept();
  FakeSocket.last.deliver(welcome());
  deepEq(states, ["connecting", "open"]);
  await client.close();
  deepEq(states, ["connecting", "open", "closed"]);
});

test("client: a node that keeps closing soon after the welcome is not rejoined at once forever", async () => {
  const {client, sock} = await connected({random: () => 0.5, backoff: {baseMs: 20, capMs: 1000}});
  const waits = [];
  client.on("state", s => { if (s.state === "reconnecting") waits.push(s.delayMs); });
  sock.drop(4001, "token expired");
  for (let i = 0; i < 4; i++) {
    const before = FakeSocket.all.length;
    for (let k = 0; k < 200 && FakeSocket.all.length === before; k++) await tick(5);
    FakeSocket.last.accept();
    FakeSocket.last.deliver(welcome());
    FakeSocket.last.drop(4001, "token expired");
  }
  // The first 4001 comes back at once (125 ms: half of 250 ms); the next
  // ones, each seconds after a welcome, back off: 20, 40, 80, 160 ms.
  deepEq(waits, [125, 20, 40, 80, 160]);
  await client.close();
});

test("client: a refused re-subscribe of a held channel keeps the subscription", async () => {
  const {client, sock} = await connected();
  const p = client.subscribe("ticker.A"); ack(sock); await p;
  sock.deliver({type: "snapshot", channel: "ticker.A", seq: 10, data: {last: "1"}});
  const p2 = client.subscribe("ticker.A", {throttleMs: 250});
  const cmd = sock.lastCommand("subscribe");
  sock.deliver({type: "error", id: cmd.id, code: "rate_limited", message: "later", channel: "ticker.A"});
  let refused = null;
  try { await p2; } catch (e) { refused = e.code; }
  eq(refused, "rate_limited");
  // The node still holds the old subscription and sends on it.
  sock.deliver({type: "update", channel: "ticker.A", seq: 11, prev: 10, n: 1, data: {last: "2"}});
  eq(client.channel("ticker.A")?.state, "live", "the held channel");
  eq(client.channel("ticker.A")?.last, 11, "its last seq");
  await client.close();
});

test("client: a malformed book level resyncs the channel, and nothing escapes the handler", async () => {
  const {client, sock} = await connected();
  const p = client.subscribe("book.A"); ack(sock); await p;
  sock.deliver({type: "snapshot", channel: "book.A", seq: 5, data: {bids: [["1e3", "1"]], asks: [], checksum: 0}}); // throws if it escapes
  await tick(10);
  eq(sock.commands().filter(c => c.op === "subscribe").length, 2, "subscribes: the first and the resync's");
  eq(client.channel("book.A").state, "resyncing");
  await client.close();
});

test("client: snapshot:false on a book channel is refused up front", async () => {
  const {client} = await connected();
  let code = null;
  try { await client.subscribe(["ticker.A", "book.A"], {snapshot: false}); } catch (e) { code = e.code + " " + e.channel; }
  eq(code, "bad_request book.A");
  await client.close();
});

test("client: a user's re-subscribe refused after a reconnect keeps the channel and re-subscribes it", async () => {
  const {client, sock} = await connected();
  const p = client.subscribe("ticker.A"); ack(sock); await p;
  sock.deliver({type: "snapshot", channel: "ticker.A", seq: 10, data: {last: "1"}});
  sock.drop(1006);
  const p2 = client.subscribe("ticker.A", {throttleMs: 250});
  p2.catch(() => {});
  await tick(5);
  const s2 = FakeSocket.last;
  s2.accept();
  s2.deliver(welcome());
  const cmd = s2.lastCommand("subscribe");
  s2.deliver({type: "error", id: cmd.id, code: "unavailable", message: "no feed", channel: "ticker.A", retry_ms: 50});
  let refused = null;
  try { await p2; } catch (e) { refused = e.code; }
  eq(refused, "unavailable");
  await tick(300);
  eq(client.channel("ticker.A")?.state, "stale", "kept, stale until re-subscribed");
  const subs = s2.commands().filter(c => c.op === "subscribe");
  eq(subs.length, 2, "subscribes on the new connection: the refused one, then the channel's own");
  eq(subs[1].throttle_ms, undefined, "the channel's own, with the options it had");
  await client.close();
});
