package client

import (
	"sync"
	"sync/atomic"

	"github.com/tickgate/tickgate/proto"
)

// queue holds the events waiting for the handler and runs the goroutine
// that delivers them (run). The read loop pushes without ever waiting on
// the handler; what a slow handler costs is bounded by the rules of the
// channel kinds, as the node treats a slow socket (docs/protocol.md §5.1):
//
//   - book and ticker events fold: a data event that finds the channel's
//     previous data event still waiting merges into it (a ticker keeps the
//     newest state; a book keeps its deltas in order, or, once they
//     outgrow the book, a copy of the verified book), so a channel never
//     has more than one data event waiting, N counting what it covers;
//   - a candle bar's revisions fold while the bar is open (the newest
//     revision replaces the waiting one); a closed bar is never folded
//     and queues like a trade;
//   - trades queue one by one up to MaxPending events over all channels;
//     beyond it a trade is dropped, and the run of dropped trades is
//     reported in its place as one EventGap (GapOverflow, From and To the
//     dropped seqs);
//   - gaps, state changes and connection events are never folded or
//     dropped (up to a hard cap far beyond what a resync loop produces).
//
// Events of one channel keep their order; channels take turns.
type queue struct {
	handler func(Event) // Static.
	max     int         // Static.
	stats   *counters   // Static.
	wake    chan struct{}
	done    chan struct{} // closed when run returns
	closing atomic.Bool

	mu      sync.Mutex
	lanes   map[string]*lane // Guarded by mu.
	ready   []*lane          // Guarded by mu: lanes with events, in turn.
	pending int              // Guarded by mu: events over all lanes.
	closed  bool             // Guarded by mu.
}

// lane is one channel's waiting events; the lane "" carries connection
// events and the end of subscriptions.
type lane struct {
	name    string     // Static.
	kind    proto.Kind // Static; 0 for lane "".
	removed atomic.Bool

	items   []item // Guarded by queue.mu.
	spare   []item // Guarded by queue.mu: the last batch's storage, reused.
	inReady bool   // Guarded by queue.mu.

	// book is the user's copy of the channel's book, which Event.Book
	// shows. Owned by the dispatcher goroutine.
	book   *Book
	bookOK bool
}

type item struct {
	ev Event
	bd *bookData
}

// noticeSlack is how far events that are never dropped (gaps, states,
// connection events) may go beyond MaxPending before they are dropped
// after all: a handler stuck for good must not grow the queue for ever.
const noticeSlack = 4096

// foldLevels is the least number of delta levels a folded book event
// holds before it is replaced by a copy of the verified book.
const foldLevels = 256

func newQueue(handler func(Event), max int, stats *counters) *queue {
	return &queue{handler: handler, max: max, stats: stats, wake: make(chan struct{}, 1),
		done: make(chan struct{}), lanes: map[string]*lane{}}
}

func (q *queue) lane(name string, kind proto.Kind) *lane {
	l := q.lanes[name]
	if l == nil {
		l = &lane{name: name, kind: kind}
		if kind == proto.KindBook {
			l.book = NewBook()
		}
		q.lanes[name] = l
	}
	return l
}

// push implements sink. It runs on the read loop (under the Client's mu,
// which it may read s under) and never waits for the handler.
func (q *queue) push(s *chanState, ev Event, bd *bookData) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	var l *lane
	switch {
	case s == nil || ev.Type == EventError:
		l = q.lane("", 0)
	default:
		l = q.lane(s.name, s.ch.Kind)
	}
	data := ev.Type == EventSnapshot || ev.Type == EventUpdate
	switch {
	case data && l.kind == proto.KindCandle:
		if q.foldBar(l, ev) {
			q.stats.coalesced.Add(1)
			return
		}
		if q.pending >= q.max {
			q.overflow(l, ev)
			return
		}
	case data && l.kind != proto.KindTrade:
		if q.fold(l, s, ev, bd) {
			q.stats.coalesced.Add(1)
			return
		}
	case data && q.pending >= q.max:
		q.overflow(l, ev)
		return
	case !data && q.pending >= q.max+noticeSlack:
		return
	}
	q.add(l, item{ev, bd})
}

func (q *queue) add(l *lane, it item) {
	l.items = append(l.items, it)
	q.pending++
	if !l.inReady {
		l.inReady = true
		q.ready = append(q.ready, l)
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
}

// foldBar replaces the lane's last event with ev when both are updates
// of the same open bar: a revision of a bar the handler has not seen yet.
// A closed bar and a snapshot are never folded away.
func (q *queue) foldBar(l *lane, ev Event) bool {
	n := len(l.items)
	if n == 0 || ev.Type != EventUpdate {
		return false
	}
	last := &l.items[n-1].ev
	if last.Type != EventUpdate || last.Candle == nil || last.Candle.Closed || ev.Candle == nil ||
		last.Candle.Start != ev.Candle.Start {
		return false
	}
	prev, n := last.Prev, last.N
	*last = ev
	last.Prev, last.N = prev, n+ev.N
	return true
}

// fold merges a book or ticker data event into the lane's last event when
// that is a data event too, and reports whether it did.
func (q *queue) fold(l *lane, s *chanState, ev Event, bd *bookData) bool {
	n := len(l.items)
	if n == 0 {
		return false
	}
	last := &l.items[n-1]
	if last.ev.Type != EventSnapshot && last.ev.Type != EventUpdate {
		return false
	}
	if ev.Type == EventSnapshot {
		last.ev.Type = EventSnapshot
	}
	last.ev.Seq, last.ev.N, last.ev.State, last.ev.TS = ev.Seq, last.ev.N+ev.N, ev.State, ev.TS
	last.ev.Ticker = ev.Ticker
	if l.kind != proto.KindBook {
		return true
	}
	switch {
	case bd.reset:
		last.bd = bd
		last.ev.Delta = nil
	default:
		lb := last.bd
		lb.dbids = append(lb.dbids, bd.dbids...)
		lb.dasks = append(lb.dasks, bd.dasks...)
		if !lb.reset {
			last.ev.Delta = &proto.Book{Bids: lb.dbids, Asks: lb.dasks, Checksum: ev.Delta.Checksum, TS: ev.TS}
		}
		nb, na := s.book.Depth()
		if d := len(lb.dbids) + len(lb.dasks); d > foldLevels && d > nb+na {
			if s.bookOK {
				// The deltas outgrew the book: a copy of the verified
				// book, which they lead to, replaces them.
				bids, asks := s.book.TopN(-1)
				last.bd = &bookData{reset: true, bids: bids, asks: asks}
				last.ev.Type, last.ev.Delta = EventSnapshot, nil
			} else if d > 64*foldLevels {
				// No book to copy (no snapshot asked): keep the last
				// level per price, which applies the same.
				lb.dbids, lb.dasks = lastPerPrice(lb.dbids, bidOrder), lastPerPrice(lb.dasks, askOrder)
				last.ev.Delta = &proto.Book{Bids: lb.dbids, Asks: lb.dasks, Checksum: ev.Delta.Checksum, TS: ev.TS}
			}
		}
	}
	return true
}

// lastPerPrice keeps the last level of each price, in price order.
func lastPerPrice(ls []proto.Level, cmp func(a, b proto.Level) int) []proto.Level {
	out := []proto.Level{}
	for _, l := range ls {
		if proto.IsZeroDecimal(l[1]) {
			l[1] = "0"
		}
		// A removal must stay in the delta (it is no book), so the
		// level is kept whatever its size.
		i, found := binarySearch(out, l, cmp)
		if found {
			out[i] = l
		} else {
			out = append(out, proto.Level{})
			copy(out[i+1:], out[i:])
			out[i] = l
		}
	}
	return out
}

func binarySearch(ls []proto.Level, l proto.Level, cmp func(a, b proto.Level) int) (int, bool) {
	lo, hi := 0, len(ls)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if cmp(ls[mid], l) < 0 {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo, lo < len(ls) && cmp(ls[lo], l) == 0
}

// overflow drops a trade the handler has no room for, and reports it in
// its place: a run of drops is one gap event.
func (q *queue) overflow(l *lane, ev Event) {
	q.stats.dropped.Add(1)
	if n := len(l.items); n > 0 {
		if g := l.items[n-1].ev.Gap; g != nil && g.Reason == GapOverflow {
			g.To = ev.Seq
			return
		}
	}
	q.stats.gaps.Add(1)
	q.add(l, item{ev: Event{Type: EventGap, Channel: ev.Channel, State: ev.State, Seq: ev.Prev,
		Gap: &Gap{Reason: GapOverflow, From: ev.Seq, To: ev.Seq}}})
}

// drop implements sink: the channel's waiting events are discarded and
// none of its events is delivered any more.
func (q *queue) drop(name string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	l := q.lanes[name]
	if l == nil || name == "" {
		return
	}
	l.removed.Store(true)
	q.pending -= len(l.items)
	l.items = nil
	delete(q.lanes, name)
}

// take waits for a lane with events and takes them all; ok is false once
// the queue is closed.
func (q *queue) take() (l *lane, items []item, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.ready) == 0 && !q.closed {
		q.mu.Unlock()
		<-q.wake
		q.mu.Lock()
	}
	if q.closed {
		return nil, nil, false
	}
	l = q.ready[0]
	q.ready[0] = nil
	q.ready = q.ready[1:]
	l.inReady = false
	items, l.items, l.spare = l.items, l.spare, nil
	q.pending -= len(items)
	return l, items, true
}

// run delivers events until close: the dispatcher goroutine.
func (q *queue) run() {
	defer close(q.done)
	for {
		l, items, ok := q.take()
		if !ok {
			return
		}
		q.deliver(l, items)
		clear(items)
		q.mu.Lock()
		if l.spare == nil {
			l.spare = items[:0]
		}
		q.mu.Unlock()
	}
}

// deliver hands a lane's events to the handler, bringing the user's copy
// of the book along.
func (q *queue) deliver(l *lane, items []item) {
	for i := range items {
		if l.removed.Load() || q.closing.Load() {
			return
		}
		it := &items[i]
		ev := it.ev
		if bd := it.bd; bd != nil {
			if bd.reset {
				l.book.Reset(bd.bids, bd.asks)
				l.bookOK = true
			}
			if l.bookOK {
				l.book.Update(bd.dbids, bd.dasks)
				ev.Book = l.book
			}
		}
		q.handler(ev)
	}
}

// close stops the dispatcher after the handler call under way, discards
// what waits, and waits for run to return.
func (q *queue) close() {
	q.closing.Store(true)
	q.mu.Lock()
	q.closed = true
	q.lanes, q.ready, q.pending = nil, nil, 0
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	<-q.done
}
