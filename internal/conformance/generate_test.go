package conformance

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/tickgate/tickgate/internal/booktest"
	"github.com/tickgate/tickgate/proto"
)

var update = flag.Bool("update", false, "rewrite the case files of "+Dir+" from the cases described here")

// dir is the case folder seen from this package.
var dir = filepath.Join("..", "..", filepath.FromSlash(Dir))

// TestGenerate writes the case files with -update. Without it, it only
// checks that the description here still produces what is committed, so
// that the two cannot drift apart unnoticed; the files stay the source of
// truth (TestCasesHoldTogether checks them on their own).
func TestGenerate(t *testing.T) {
	for _, c := range describe() {
		b := c.encode()
		path := filepath.Join(dir, c.file)
		if *update {
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test ./internal/conformance -run TestGenerate -update)", err)
		}
		if !bytes.Equal(got, b) {
			t.Errorf("%s differs from its description in generate_test.go: edit both, or run with -update", c.file)
		}
	}
}

// builder describes one case. It keeps the publisher's true book (pub,
// which also takes the messages the client misses) and a model of a
// correct client (ref, last, broken), written from the README's rules
// independently of any implementation, to compute each step's
// expectations.
type builder struct {
	file, name, desc, channel string
	clientOnly                bool
	steps                     []Step

	pub    *booktest.Book // the publisher's (and a synced node's) book
	ref    *booktest.Book // the client's book
	last   uint64         // the last seq the client holds
	held   bool           // the client holds state it knows to be right
	broken bool           // a gap or mismatch seen, waiting for a snapshot
	ticker *proto.Ticker
}

func newCase(file, channel, name, desc string) *builder {
	return &builder{file: file, channel: channel, name: name, desc: desc, pub: booktest.New(), ref: booktest.New()}
}

const baseTS = 1767222000000000000

func ptr[T any](v T) *T { return &v }

func (b *builder) symbol() string {
	ch, err := proto.ParseChannel(b.channel)
	if err != nil {
		panic(err)
	}
	return ch.Symbol
}

func (b *builder) add(recv any, e Expect) {
	raw, err := json.Marshal(recv)
	if err != nil {
		panic(err)
	}
	b.steps = append(b.steps, Step{Recv: raw, Expect: e})
}

// state returns the client's state in the README's terms.
func (b *builder) state() *string {
	if b.held && !b.broken {
		return ptr("live")
	}
	return ptr("resyncing")
}

func (b *builder) bookExpect(e *Expect) {
	bids, asks := b.ref.Levels()
	e.Book = &Levels{Bids: bids, Asks: asks}
	e.Checksum = ptr(b.ref.Checksum())
}

// L builds levels from price, size pairs.
func L(ps ...string) []proto.Level {
	out := []proto.Level{}
	for i := 0; i+1 < len(ps); i += 2 {
		out = append(out, proto.Level{ps[i], ps[i+1]})
	}
	return out
}

// snapshot is a book snapshot of the given levels (as the node sends it:
// sorted, with the true checksum).
func (b *builder) snapshot(seq uint64, bids, asks []proto.Level) {
	b.pub.Reset(bids, asks)
	sb, sa := b.pub.Levels()
	b.add(proto.Snapshot{Type: "snapshot", Channel: b.channel, Seq: seq, Data: &proto.Book{
		Symbol: b.symbol(), Bids: sb, Asks: sa, Checksum: b.pub.Checksum(), TS: baseTS + int64(seq),
	}}, b.applySnapshot(seq, sb, sa))
}

func (b *builder) applySnapshot(seq uint64, bids, asks []proto.Level) Expect {
	b.ref.Reset(bids, asks)
	b.last, b.held, b.broken = seq, true, false
	e := Expect{State: b.state(), Gap: ptr(false), ChecksumOK: ptr(true), Resync: ptr(false), Seq: ptr(seq)}
	b.bookExpect(&e)
	return e
}

// missed is a book update the publisher sends that never reaches the
// client (nor the node: a seq jump).
func (b *builder) missed(bids, asks []proto.Level) { b.pub.Update(bids, asks) }

// update is a book delta carrying the publisher's true checksum.
func (b *builder) update(seq, prev uint64, bids, asks []proto.Level) {
	b.pub.Update(bids, asks)
	b.updateWith(seq, prev, bids, asks, b.pub.Checksum())
}

// staleUpdate is a book delta whose checksum is the one of the book before
// it: what a node with a wrong book sends.
func (b *builder) staleUpdate(seq, prev uint64, bids, asks []proto.Level) {
	stale := b.pub.Checksum()
	b.pub.Update(bids, asks)
	if stale == b.pub.Checksum() {
		panic("staleUpdate: the delta does not change the checksum")
	}
	b.updateWith(seq, prev, bids, asks, stale)
}

func (b *builder) updateWith(seq, prev uint64, bids, asks []proto.Level, checksum uint32) {
	recv := proto.Update{Type: "update", Channel: b.channel, Seq: seq, Prev: prev, N: 1, Data: &proto.Book{
		Bids: bids, Asks: asks, Checksum: checksum, TS: baseTS + int64(seq),
	}}
	e := Expect{Gap: ptr(false), Resync: ptr(false)}
	switch {
	case b.broken || !b.held:
		// Ignored until the snapshot.
	case prev != b.last:
		b.broken = true
		e.Gap, e.Resync = ptr(true), ptr(true)
	default:
		b.ref.Update(bids, asks)
		ok := b.ref.Checksum() == checksum
		e.ChecksumOK = ptr(ok)
		if !ok {
			b.broken, b.held = true, false
			e.Resync = ptr(true)
		} else {
			b.last = seq
			b.bookExpect(&e)
		}
	}
	e.State = b.state()
	if b.held {
		e.Seq = ptr(b.last)
	}
	b.add(recv, e)
}

// status is a contract-1.1 status message from the node.
func (b *builder) status(state, reason string, seq uint64) {
	type status struct {
		Type    string `json:"type"`
		Channel string `json:"channel"`
		State   string `json:"state"`
		Reason  string `json:"reason"`
		TS      int64  `json:"ts"`
	}
	e := Expect{Gap: ptr(false), Resync: ptr(false)}
	switch state {
	case "resyncing":
		e.State = ptr("resyncing")
	case "live":
		e.State = b.state()
	default:
		panic("status: the case format knows live and resyncing only")
	}
	if b.held {
		e.Seq = ptr(b.last)
	}
	b.add(status{Type: "status", Channel: b.channel, State: state, Reason: reason, TS: baseTS + int64(seq)}, e)
}

func ticker(bid, ask, last string, seq uint64) *proto.Ticker {
	return &proto.Ticker{Symbol: "ETH-USD", Bid: bid, BidSize: "2.5", Ask: ask, AskSize: "1.25", Last: last, Volume: "98765.4", TS: baseTS + int64(seq)}
}

func (b *builder) tickerSnapshot(seq uint64, t *proto.Ticker) {
	b.ticker, b.last, b.held, b.broken = t, seq, true, false
	b.add(proto.Snapshot{Type: "snapshot", Channel: b.channel, Seq: seq, Data: t},
		Expect{State: b.state(), Gap: ptr(false), Resync: ptr(false), Seq: ptr(seq), Ticker: t})
}

func (b *builder) tickerUpdate(seq, prev uint64, t *proto.Ticker) {
	e := Expect{Gap: ptr(false), Resync: ptr(false)}
	switch {
	case b.broken || !b.held:
	case prev != b.last:
		b.broken = true
		e.Gap, e.Resync = ptr(true), ptr(true)
	default:
		b.ticker, b.last = t, seq
		e.Ticker = t
	}
	e.State = b.state()
	e.Seq = ptr(b.last)
	b.add(proto.Update{Type: "update", Channel: b.channel, Seq: seq, Prev: prev, N: 1, Data: t}, e)
}

func (b *builder) trade(seq, prev uint64, id int64, side string) {
	t := &proto.Trade{Symbol: "SOL-USD", ID: id, Price: fmt.Sprintf("142.%02d", id%100), Size: "3.5", Side: side, TS: baseTS + int64(seq)}
	// A trade cannot be resynced from a snapshot: a broken chain is
	// reported and the trade handed over all the same.
	gap := prev != b.last
	b.last = seq
	b.add(proto.Update{Type: "update", Channel: b.channel, Seq: seq, Prev: prev, N: 1, Data: t},
		Expect{State: ptr("live"), Gap: ptr(gap), Resync: ptr(false), Seq: ptr(seq), Trades: &[]int64{id}})
}

func (b *builder) gapMessage(from, to uint64) {
	b.add(proto.Gap{Type: "gap", Channel: b.channel, From: from, To: to},
		Expect{State: ptr("live"), Gap: ptr(false), Resync: ptr(false), Seq: ptr(b.last), Trades: &[]int64{}, GapSeqs: &[2]uint64{from, to}})
}

// encode writes the case as the README shows it: one line per step, the
// message as on the wire.
func (b *builder) encode() []byte {
	var buf bytes.Buffer
	str := func(s string) string {
		j, err := json.Marshal(s)
		if err != nil {
			panic(err)
		}
		return string(j)
	}
	fmt.Fprintf(&buf, "{\n  \"name\": %s,\n  \"description\": %s,\n  \"channel\": %s,\n", str(b.name), str(b.desc), str(b.channel))
	if b.clientOnly {
		buf.WriteString("  \"client_only\": true,\n")
	}
	buf.WriteString("  \"steps\": [\n")
	for i, s := range b.steps {
		exp, err := json.Marshal(s.Expect)
		if err != nil {
			panic(err)
		}
		sep := ","
		if i == len(b.steps)-1 {
			sep = ""
		}
		fmt.Fprintf(&buf, "    {\"recv\": %s,\n     \"expect\": %s}%s\n", s.Recv, exp, sep)
	}
	buf.WriteString("  ]\n}\n")
	return buf.Bytes()
}

// ladder returns n levels from price start (in cents) stepping by step
// cents, each of size size.
func ladder(start, step, n int, size string) []proto.Level {
	out := make([]proto.Level, 0, n)
	for i := range n {
		p := start + i*step
		out = append(out, proto.Level{fmt.Sprintf("%d.%02d", p/100, p%100), size})
	}
	return out
}

// describe is every case.
func describe() []*builder {
	var cs []*builder

	c := newCase("book-01-plain.json", "book.BTC-USD", "snapshot then updates",
		"The worked example of docs/protocol.md §5.5 (checksums 4280704336 and 341905690), then a new best bid and a change on both sides: the plain path every client must get right first.")
	c.snapshot(1200, L("64000.10", "1.5", "64000.00", "2", "63999.50", "0.25"), L("64000.20", "0.7", "64000.50", "3", "64001.00", "1.25"))
	c.update(1201, 1200, L("64000.00", "0", "64000.10", "1.25"), L("64000.30", "0.4"))
	c.update(1202, 1201, L("64000.15", "0.5"), L())
	c.update(1203, 1202, L("63999.50", "0"), L("64000.20", "0.9"))
	cs = append(cs, c)

	c = newCase("book-02-tenth-level.json", "book.BTC-USD", "levels at the edge of the checksum window",
		"12 levels per side. Removing the 10th level pulls the 11th into the checksum (top 10 per side); a change at the 12th changes the book but not the checksum; a level inserted at the 10th place pushes one out; removing the best level shifts the whole window. Clients that keep only 10 levels, or checksum the wrong ones, fail here.")
	bids := ladder(10000, -10, 12, "1") // 100.00, 99.90, … 98.90
	asks := ladder(10010, 10, 12, "2")  // 100.10, 100.20, … 101.20
	c.snapshot(10, bids, asks)
	c.update(11, 10, L(bids[9][0], "0"), L())
	c.update(12, 11, L(), L(asks[9][0], "0"))
	c.update(13, 12, L(bids[11][0], "7"), L())
	c.update(14, 13, L("99.05", "3"), L())
	c.update(15, 14, L(bids[0][0], "0"), L(asks[0][0], "0"))
	cs = append(cs, c)

	c = newCase("book-03-readded-level.json", "book.BTC-USD", "a level removed and added again",
		"A level that leaves and comes back must be inserted at its place again, with the text it comes back with, also when the removal and the return are in one message (levels apply in order).")
	c.snapshot(20, L("99.50", "1", "99.40", "2", "99.30", "3"), L("99.60", "1", "99.70", "2"))
	c.update(21, 20, L("99.40", "0"), L())
	c.update(22, 21, L("99.4", "5"), L())
	c.update(23, 22, L("99.50", "0", "99.50", "4"), L("99.70", "0"))
	c.update(24, 23, L(), L("99.70", "2.5"))
	cs = append(cs, c)

	c = newCase("book-04-price-text.json", "book.BTC-USD", "one level, several spellings of its price",
		"\"1.50\", \"1.5\" and \"1.500\" are one level (numeric identity), which keeps the text of its most recent update; the checksum is over that text, so a client that keys levels by string, or keeps the first spelling, gets another checksum.")
	c.snapshot(30, L("1.50", "1", "1.40", "2"), L("1.60", "1", "1.70", "1"))
	c.update(31, 30, L("1.5", "2"), L())
	c.update(32, 31, L(), L("1.600", "4"))
	c.update(33, 32, L("1.500", "2", "1.4", "2"), L())
	cs = append(cs, c)

	c = newCase("book-05-zero-sizes.json", "book.BTC-USD", "zero sizes in several spellings",
		"Any zero size removes the level: \"0\", \"0.000\", \"0.0\".")
	c.snapshot(40, L("10.5", "1", "10.4", "1", "10.3", "1"), L("10.6", "1", "10.7", "1"))
	c.update(41, 40, L("10.5", "0.000"), L())
	c.update(42, 41, L("10.30", "0.0"), L("10.7", "0"))
	cs = append(cs, c)

	c = newCase("book-06-remove-missing.json", "book.BTC-USD", "removing a level the book does not hold",
		"Removing a price the book does not hold changes nothing and is no error, also a price that exists on the other side only.")
	c.snapshot(50, L("20.1", "1", "20.0", "1"), L("20.2", "1", "20.3", "1"))
	c.update(51, 50, L("19.9", "0"), L())
	c.update(52, 51, L("20.2", "0"), L("20.0", "0", "20.25", "2"))
	cs = append(cs, c)

	c = newCase("book-07-empty-book.json", "book.BTC-USD", "an empty side and an empty book",
		"Sides may be empty; an empty book checksums the empty string, 0.")
	c.snapshot(60, L("5", "1"), L())
	c.update(61, 60, L("5", "0"), L())
	c.update(62, 61, L(), L("6", "2"))
	cs = append(cs, c)

	c = newCase("book-08-gap.json", "book.BTC-USD", "an update after a gap",
		"Updates 12 and 13 never arrive. The client sees prev 13 where it holds 11: it reports the gap, re-subscribes, ignores what still comes on the old chain, and is live again with the next snapshot.")
	c.snapshot(10, L("100", "1", "99", "1"), L("101", "1", "102", "1"))
	c.update(11, 10, L("100", "2"), L())
	c.missed(L("98", "1"), L())
	c.missed(L(), L("101", "0"))
	c.update(14, 13, L("99", "3"), L())
	c.update(15, 14, L(), L("103", "1"))
	c.snapshot(16, L("100", "2", "99", "3", "98", "1"), L("102", "1", "103", "1"))
	c.update(17, 16, L("98", "0"), L())
	cs = append(cs, c)

	c = newCase("book-09-stale-checksum.json", "book.BTC-USD", "an update whose checksum does not match",
		"Update 22 carries the checksum of the book before it (a stale checksum). The client finds another checksum for its book, never hands that book over, re-subscribes, ignores the rest of the old chain, and is live again with the next snapshot.")
	c.snapshot(20, L("50.5", "1", "50.4", "1"), L("50.6", "1"))
	c.update(21, 20, L("50.5", "2"), L())
	c.staleUpdate(22, 21, L(), L("50.7", "1"))
	c.update(23, 22, L("50.3", "1"), L())
	c.snapshot(24, L("50.5", "2", "50.4", "1", "50.3", "1"), L("50.6", "1", "50.7", "1"))
	c.update(25, 24, L("50.4", "0"), L())
	cs = append(cs, c)

	c = newCase("book-10-periodic-snapshot.json", "book.BTC-USD", "a snapshot in the middle of the stream",
		"A snapshot may come at any time (a periodic feed snapshot that differs from the node's book, or the node's resync): it replaces the whole book, and updates chain from it.")
	c.snapshot(30, L("7.1", "1", "7.0", "1"), L("7.2", "1"))
	c.update(31, 30, L("7.1", "3"), L())
	c.snapshot(32, L("7.1", "3", "6.9", "4"), L("7.3", "2"))
	c.update(33, 32, L("7.0", "1"), L("7.2", "1"))
	cs = append(cs, c)

	c = newCase("book-11-seq-jump-intact-chain.json", "book.BTC-USD", "a seq jump with an intact prev chain",
		"Seq 42 was a periodic snapshot equal to the node's book, which the node does not forward: update 43 names prev 41, the last seq the client holds. That is no gap: a client must check prev, not seq + 1. (Client only: the node saw seq 42.)")
	c.clientOnly = true
	c.snapshot(40, L("3.3", "1"), L("3.4", "1"))
	c.update(41, 40, L("3.2", "1"), L())
	c.update(43, 41, L(), L("3.5", "1"))
	cs = append(cs, c)

	c = newCase("book-12-status.json", "book.BTC-USD", "the node says it resyncs (contract 1.1)",
		"A status message with state resyncing (the node saw a feed gap and waits for a snapshot) makes the channel resyncing without a re-subscribe of the client's own; the node's snapshot makes it live.")
	c.snapshot(50, L("8", "1"), L("9", "1"))
	c.update(51, 50, L("8", "2"), L())
	c.status("resyncing", "feed_gap", 52)
	c.snapshot(55, L("8", "2", "7.5", "1"), L("9", "1"))
	c.update(56, 55, L(), L("9.5", "1"))
	cs = append(cs, c)

	c = newCase("ticker-01-chain-and-gap.json", "ticker.ETH-USD", "ticker chain and a gap",
		"A ticker is the whole state in each message, but a broken prev chain still means something was missed: the client marks the channel resyncing, re-subscribes, ignores the old chain and is live with the next snapshot.")
	c.tickerSnapshot(500, ticker("3000.10", "3000.20", "3000.15", 500))
	c.tickerUpdate(501, 500, ticker("3000.11", "3000.20", "3000.15", 501))
	c.tickerUpdate(502, 501, ticker("3000.12", "3000.21", "3000.20", 502))
	c.tickerUpdate(505, 504, ticker("3000.30", "3000.40", "3000.35", 505))
	c.tickerUpdate(506, 505, ticker("3000.31", "3000.40", "3000.35", 506))
	c.tickerSnapshot(507, ticker("3000.32", "3000.41", "3000.35", 507))
	c.tickerUpdate(508, 507, ticker("3000.33", "3000.41", "3000.36", 508))
	cs = append(cs, c)

	c = newCase("trade-01-gap-message.json", "trade.SOL-USD", "trade chain with a gap message (contract 1.1)",
		"The first trade after a subscribe has prev 0. The node never had feed seqs 3 to 5 and says so with a gap message before the next trade; each connection's prev chain stays intact across it (the next trade names prev 2), and the client reports the missing seqs.")
	c.trade(1, 0, 991, "buy")
	c.trade(2, 1, 992, "sell")
	c.gapMessage(3, 5)
	c.trade(6, 2, 996, "buy")
	c.trade(7, 6, 997, "buy")
	cs = append(cs, c)

	c = newCase("trade-02-prev-gap.json", "trade.SOL-USD", "a broken trade chain",
		"A trade update whose prev is not the last seq held: trades were lost on the way to this client. A trade channel cannot be resynced from a snapshot, so the client reports the gap, hands the trade over and goes on from its seq.")
	c.trade(10, 0, 1010, "buy")
	c.trade(11, 10, 1011, "sell")
	c.trade(14, 13, 1014, "sell")
	c.trade(15, 14, 1015, "buy")
	cs = append(cs, c)

	return cs
}
