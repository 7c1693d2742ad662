// The conformance runner of the browser module: each case of
// proto/testdata/conformance (format in its README.md) runs through a
// whole Client, on a FakeSocket, in the json and in the msgpack codec: the
// case's messages go over the wire encoded, the client decodes, checks and
// keeps them, and what it then holds and reports is compared with the
// case's expectations.

import {bookChecksum} from "../crc32.js";
import {connected, FakeSocket, tick} from "./fakesocket.js";
import {equal, show} from "./harness.js";

/**
 * runCase runs one case in one codec and returns its failures (empty when
 * it passed).
 * @param {any} c the parsed case (json.parse, so integers are exact)
 * @param {"json" | "msgpack"} codec
 * @returns {Promise<string[]>}
 */
export async function runCase(c, codec) {
  const failures = [];
  const {client, sock} = await connected({codec});
  try {
    const subscribed = client.subscribe(c.channel);
    const cmd = sock.lastCommand("subscribe");
    sock.deliver({type: "subscribed", id: cmd.id, channels: [c.channel]});
    await subscribed;

    let seen;
    const on = (event, fn) => client.on(event, fn);
    on("gap", g => { if (g.channel === c.channel) (g.kind === "prev" ? seen.gap = true : g.kind === "feed" && (seen.gapSeqs = [g.from, g.to])); });
    on("resync", r => { if (r.channel === c.channel && (r.reason === "resume" || r.reason === "snapshot")) seen.resync = true; });
    on("book", (_, meta) => { if (meta.channel === c.channel) seen.checksumOk = true; });
    on("checksum", x => { if (x.channel === c.channel) seen.checksumOk = false; });
    on("trade", (t, meta) => { if (meta.channel === c.channel) seen.trades.push(t.id); });
    on("error", err => { seen.errors.push(String(err?.message ?? err)); });

    c.steps.forEach((st, i) => {
      seen = {gap: false, resync: false, checksumOk: undefined, trades: [], gapSeqs: undefined, errors: []};
      sock.deliver(st.recv);
      const e = st.expect ?? {};
      const at = `step ${i} (${st.recv.type}${st.recv.seq !== undefined ? " seq " + st.recv.seq : ""})`;
      const check = (field, got, want) => {
        if (want !== undefined && !equal(got, want)) failures.push(`${at}: ${field}: got ${show(got)}, want ${show(want)}`);
      };
      const ch = client.channel(c.channel);
      if (!ch) {
        failures.push(`${at}: the client no longer holds the channel`);
        return;
      }
      if (seen.errors.length) failures.push(`${at}: errors: ${seen.errors.join("; ")}`);
      check("state", ch.state, e.state);
      check("gap", seen.gap, e.gap ?? false);
      check("resync", seen.resync, e.resync ?? false);
      check("checksum_ok", seen.checksumOk, e.checksum_ok);
      check("seq", ch.last, e.seq);
      check("trades", seen.trades, e.trades);
      check("gap_seqs", seen.gapSeqs, e.gap_seqs);
      if (e.ticker !== undefined) check("ticker", client.ticker(c.channel), e.ticker);
      if (e.book !== undefined || e.checksum !== undefined) {
        const book = client.book(c.channel);
        if (!book) failures.push(`${at}: the client hands out no book (state ${ch.state}), want one`);
        else {
          check("book", {bids: book.bids.map(l => [...l]), asks: book.asks.map(l => [...l])}, e.book);
          check("checksum", book.checksum(), e.checksum);
          check("checksum of the levels handed out", bookChecksum(book.bids, book.asks), e.checksum);
        }
      }
      if (e.state !== undefined && e.state !== "live" && client.book(c.channel)) {
        failures.push(`${at}: the client hands out a book while ${ch.state}`);
      }
    });
    await tick(); // let a re-subscribe go out: no step may throw on it
  } finally {
    await client.close();
  }
  if (FakeSocket.all.length > 1000) FakeSocket.all.length = 0;
  return failures;
}

/**
 * runCases runs every case in both codecs.
 * @param {{file: string, case: any}[]} cases
 * @returns {Promise<{file: string, codec: string, failures: string[]}[]>}
 */
export async function runCases(cases) {
  const out = [];
  for (const {file, case: c} of cases) {
    for (const codec of /** @type {const} */ (["json", "msgpack"])) {
      let failures;
      try {
        failures = await runCase(c, codec);
      } catch (err) {
        failures = [`threw: ${err?.stack ?? err}`];
      }
      out.push({file, codec, failures});
    }
  }
  return out;
}
