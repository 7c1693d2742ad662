package client

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tickgate/tickgate/internal/booktest"
	"github.com/tickgate/tickgate/proto"
)

// testRouter is a router subscribed to channels, feeding a queue whose
// dispatcher runs handler.
func testRouter(t *testing.T, max int, handler func(Event), channels ...string) (*router, *queue, *counters) {
	t.Helper()
	stats := new(counters)
	q := newQueue(handler, max, stats)
	r := newRouter(q, stats, func() {}, time.Now)
	for _, name := range channels {
		ch, err := proto.ParseChannel(name)
		if err != nil {
			t.Fatal(err)
		}
		r.add(name, ch, subOptions{}, 1)
		r.acked(1, name, subOptions{}, false)
	}
	return r, q, stats
}

func bookMessage(m proto.FeedMessage, prev uint64) *message {
	b := m.Data.(*proto.Book)
	typ := proto.TypeUpdate
	if m.Type == proto.FeedSnapshot {
		typ = proto.TypeSnapshot
	}
	return withData(message{Type: typ, Channel: "book.X", Seq: m.Seq, Prev: prev, N: 1},
		&proto.Book{Symbol: b.Symbol, Bids: slices.Clone(b.Bids), Asks: slices.Clone(b.Asks), Checksum: b.Checksum, TS: b.TS})
}

func tradeMessage(seq, prev uint64) *message {
	return withData(message{Type: proto.TypeUpdate, Channel: "trade.X", Seq: seq, Prev: prev, N: 1},
		&proto.Trade{Symbol: "X", ID: int64(seq), Price: "1", Size: "1", Side: "buy"})
}

// A handler that blocks never stalls the read side: while it is stuck,
// a book channel's messages fold into one waiting event, and when it
// returns it gets the verified book as of the newest message.
func TestSlowHandlerFoldsBooks(t *testing.T) {
	release := make(chan struct{})
	var (
		mu     sync.Mutex
		events []Event
		last   *Book
	)
	r, q, stats := testRouter(t, 100, func(e Event) {
		<-release
		mu.Lock()
		events = append(events, e)
		if e.Book != nil {
			last = e.Book.Clone()
		}
		mu.Unlock()
	}, "book.X")
	go q.run()
	defer q.close()

	f := booktest.NewFeed("X", 9)
	snap := f.Snapshot(1)
	r.handle(bookMessage(snap, 0))
	var prev uint64 = snap.Seq
	const n = 500
	for i := range n {
		m := f.Update(int64(i))
		r.handle(bookMessage(m, prev)) // the handler is stuck all along
		prev = m.Seq
	}
	q.mu.Lock()
	pending := q.pending
	q.mu.Unlock()
	if pending > 3 {
		t.Fatalf("%d events waiting for a stuck handler on one book channel", pending)
	}
	close(release)
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		done := len(events) > 0 && events[len(events)-1].Seq == prev
		mu.Unlock()
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the last message never reached the handler")
		}
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	covered := 0
	for _, e := range events {
		if e.Type == EventSnapshot || e.Type == EventUpdate {
			covered += e.N
		}
	}
	if covered != n+1 {
		t.Fatalf("events cover %d messages, want %d", covered, n+1)
	}
	if stats.coalesced.Load() == 0 {
		t.Fatal("nothing was folded")
	}
	rb, ra := f.Book().Levels()
	bids, asks := last.TopN(-1)
	if !slices.Equal(bids, rb) || !slices.Equal(asks, ra) || last.Checksum() != f.Book().Checksum() {
		t.Fatal("the user's book is not the publisher's")
	}
}

// Trades beyond MaxPending are dropped and reported in their place, in
// order, as one gap naming exactly the dropped seqs.
func TestSlowHandlerTradeOverflow(t *testing.T) {
	var got []Event
	r, q, stats := testRouter(t, 10, func(e Event) { got = append(got, e) }, "trade.X")
	q.flushNow() // the subscribe's state event
	got = got[:0]
	var prev uint64
	for seq := uint64(1); seq <= 30; seq++ {
		r.handle(tradeMessage(seq, prev))
		prev = seq
	}
	q.flushNow()
	r.handle(tradeMessage(31, 30))
	q.flushNow()
	var desc []string
	for _, e := range got {
		switch e.Type {
		case EventUpdate:
			desc = append(desc, fmt.Sprint(e.Trade.ID))
		case EventGap:
			desc = append(desc, fmt.Sprintf("gap %s %d-%d", e.Gap.Reason, e.Gap.From, e.Gap.To))
		default:
			desc = append(desc, e.Type.String())
		}
	}
	want := []string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "gap handler_overflow 11-30", "31"}
	if !slices.Equal(desc, want) {
		t.Fatalf("delivered %v\nwant      %v", desc, want)
	}
	if stats.dropped.Load() != 20 || stats.gaps.Load() != 1 {
		t.Fatalf("dropped %d, gaps %d", stats.dropped.Load(), stats.gaps.Load())
	}
}

// A channel unsubscribed while its events wait gets none of them.
func TestDropDiscardsWaitingEvents(t *testing.T) {
	var got []Event
	r, q, _ := testRouter(t, 100, func(e Event) { got = append(got, e) }, "trade.X")
	r.handle(tradeMessage(1, 0))
	r.remove("trade.X")
	q.flushNow()
	for _, e := range got {
		if e.Channel == "trade.X" {
			t.Fatalf("delivered %v after the channel was dropped", e.Type)
		}
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.pending != 0 {
		t.Fatalf("%d events still counted", q.pending)
	}
}

// A book whose deltas fold while the handler is behind keeps them in order:
// a removal and a re-add of one level in two messages stay right. (The
// state event after the snapshot is never folded, so the updates fold
// after it.)
func TestFoldKeepsOrder(t *testing.T) {
	var got []Event
	r, q, _ := testRouter(t, 100, func(e Event) {
		if e.Book != nil {
			e.Book = e.Book.Clone()
		}
		got = append(got, e)
	}, "book.X")
	bids := []proto.Level{{"10", "1"}, {"9", "1"}}
	asks := []proto.Level{{"11", "1"}}
	bk := NewBook()
	bk.Reset(bids, asks)
	r.handle(withData(message{Type: proto.TypeSnapshot, Channel: "book.X", Seq: 1}, &proto.Book{Bids: bids, Asks: asks, Checksum: bk.Checksum()}))
	steps := [][]proto.Level{{{"9", "0"}}, {{"9.0", "4"}}, {{"10", "2"}}}
	prev := uint64(1)
	for i, d := range steps {
		bk.Update(d, nil)
		r.handle(withData(message{Type: proto.TypeUpdate, Channel: "book.X", Seq: uint64(2 + i), Prev: prev, N: 1},
			&proto.Book{Bids: d, Asks: []proto.Level{}, Checksum: bk.Checksum()}))
		prev = uint64(2 + i)
	}
	q.flushNow()
	var data []Event
	for _, e := range got {
		if e.Type == EventSnapshot || e.Type == EventUpdate {
			data = append(data, e)
		}
	}
	if len(data) != 2 || data[1].N != 3 || data[1].Seq != 4 || data[1].Prev != 1 || data[1].Type != EventUpdate {
		t.Fatalf("folded into %d events: %+v", len(data), data)
	}
	if !data[1].Book.Equal(bk) || len(data[1].Delta.Bids) != 3 {
		t.Fatalf("book %v, want %v; delta %v", data[1].Book, bk, data[1].Delta)
	}
}
