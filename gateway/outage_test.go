package gateway

import (
	"net"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/tickgate/tickgate/feed"
	"github.com/tickgate/tickgate/internal/booktest"
	"github.com/tickgate/tickgate/internal/natstest"
	"github.com/tickgate/tickgate/proto"
)

// Through a NATS restart the node keeps its clients, reports not
// connected meanwhile, resubscribes on return, sends book subscribers a
// fresh snapshot once the feed's arrives, and trades continue their chain.
func TestNATSRestartKeepsClientsAndResyncsBooks(t *testing.T) {
	e := newTestEnv(t)
	c := e.connect(t, "json", e.token(t, "outage", time.Hour, ">"))
	c.send(t, proto.Command{Op: proto.OpSubscribe, ID: ptr[int64](1), Channels: []string{"book.BTC-USD", "trade.BTC-USD"}})
	c.expect(t, proto.TypeSubscribed)
	bch := proto.Channel{Kind: proto.KindBook, Symbol: "BTC-USD"}
	bf := booktest.NewFeed("BTC-USD", 21)
	kb := &chainChecker{kind: proto.KindBook, book: booktest.New()}
	kt := &chainChecker{kind: proto.KindTrade}
	trade := func(pub *feed.Publisher, seq uint64) {
		t.Helper()
		ch := proto.Channel{Kind: proto.KindTrade, Symbol: "BTC-USD"}
		if err := pub.PublishMessage(ch, proto.FeedMessage{Seq: seq, Type: proto.FeedUpdate, Data: &proto.Trade{Symbol: "BTC-USD", ID: int64(seq), Price: "1", Size: "1", Side: "buy", TS: 1}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range []proto.FeedMessage{bf.Snapshot(1), bf.Update(2)} {
		e.publishMessage(t, bch, m)
	}
	trade(e.pub, 1)
	e.flush(t)
	for kb.last < 2 || kt.last < 1 {
		w := c.next(t)
		if w.Channel == "book.BTC-USD" {
			kb.take(t, w)
		} else {
			kt.take(t, w)
		}
	}

	_, portStr, _ := net.SplitHostPort(e.ns.Addr().String())
	port, _ := strconv.Atoi(portStr)
	e.ns.Shutdown()
	waitFor(t, "source disconnected", func() bool { return !e.src.Connected() })
	// Contract 1.1: every subscriber learns that its channels are stale.
	statuses := map[string][]string{}
	status := func(w wire) {
		statuses[w.Channel] = append(statuses[w.Channel], w.State+" "+w.Reason)
	}
	for range 2 {
		w := c.expect(t, proto.TypeStatus)
		if w.State != proto.StateStale || w.Reason != proto.ReasonFeedDisconnected {
			t.Fatalf("got %s, want stale feed_disconnected", w.raw)
		}
		status(w)
	}
	c.send(t, proto.Command{Op: proto.OpPing, ID: ptr[int64](7)})
	if w := c.expect(t, proto.TypePong); *w.ID != 7 {
		t.Fatalf("pong %s", w.raw)
	}
	bf.Update(3) // published while NATS was down: lost
	bf.Update(4)

	ns := natstest.Run(t, port)
	waitFor(t, "source reconnected", e.src.Connected)
	pub, err := feed.DialPublisher(ns.ClientURL(), "after", "md")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pub.Close)
	// The node's subscriptions come back with the connection; publish until
	// a trade gets through, then the book's update (a gap) and snapshot.
	for seq := uint64(2); kt.last < 2; seq++ {
		if seq > 200 {
			t.Fatal("no trade reached the client after the restart")
		}
		trade(pub, seq)
		select {
		case w := <-c.msgs:
			if w.Type == proto.TypeStatus {
				status(w)
				continue
			}
			kt.take(t, w)
		case <-time.After(50 * time.Millisecond):
		}
	}
	for _, m := range []proto.FeedMessage{bf.Update(5), bf.Snapshot(6)} {
		if err := pub.PublishMessage(bch, m); err != nil {
			t.Fatal(err)
		}
	}
	// Trades published while waiting may still be on their way (a gap
	// message first, for trades NATS lost while the node resubscribed).
	w := c.next(t)
	for w.Channel == "trade.BTC-USD" || w.Type == proto.TypeStatus {
		if w.Type == proto.TypeStatus {
			status(w)
		} else {
			kt.take(t, w)
		}
		w = c.next(t)
	}
	if w.Type != proto.TypeSnapshot || w.Seq != 6 {
		t.Fatalf("fresh snapshot %s", w.raw)
	}
	kb.book.Reset(w.Data.Bids, w.Data.Asks)
	if kb.book.Checksum() != bf.Book().Checksum() {
		t.Fatal("client book did not converge after the outage")
	}
	// Both channels end live: the trades once one arrived, the book once
	// its snapshot did. The book's delta after the outage had a gap, so it
	// was resyncing in between, which the client sees unless live
	// replaced it before its writer ran (the last state wins).
	last := func(ch string) string {
		if l := statuses[ch]; len(l) > 0 {
			return l[len(l)-1]
		}
		return ""
	}
	for last("book.BTC-USD") != "live " || last("trade.BTC-USD") != "live " {
		status(c.expect(t, proto.TypeStatus))
	}
	book := slices.DeleteFunc(slices.Clone(statuses["book.BTC-USD"]), func(s string) bool { return s == "resyncing feed_gap" })
	want := []string{"stale feed_disconnected", "live "}
	if !slices.Equal(book, want) || !slices.Equal(statuses["trade.BTC-USD"], want) {
		t.Errorf("statuses %q, want stale, (resyncing,) live on each", statuses)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
