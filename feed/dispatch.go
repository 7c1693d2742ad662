package feed

import (
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go"

	"github.com/tickgate/tickgate/proto"
)

// Handing feed messages to the channels' handlers.
//
// nats.go runs a goroutine per asynchronous subscription and wakes it for
// each message that finds it idle: on a node with a hundred channels a
// feed burst of twenty messages is twenty goroutine switches, each on
// lines (the subscription's lock, condition variable and stack) last
// touched tens of milliseconds before. Instead the Source runs one
// dispatcher per core (GOMAXPROCS when it connects). Each channel is
// assigned to one of them when it is subscribed; NATS puts the channel's
// messages on that dispatcher's transit queue (a Go channel, which
// nats.go fills from its read loop), and the dispatcher moves them to the
// channel's own queue and hands them to the handler, taking the channels
// with queued messages in turn. A burst is then handed over by one
// goroutine that wakes once, and the gateway knows when the burst ends
// (Message.More), where it had to guess by yielding.
//
// What a channel holds while the node is busy stays bounded per channel,
// as with nats.go's own pending limits (Config.PendingMessages and
// PendingBytes): a message beyond them is dropped when the dispatcher
// moves it, counted (Dropped), and the State sees the seq gap. A flood on
// one channel thus costs the others nothing but the dispatcher's time to
// drop it. The transit queue is drained before each message is handed
// over, and holds transitSlots messages. It is shared by the dispatcher's
// channels: were it to fill, NATS would drop the newest message of
// whichever channel, so a flood on one channel during a handler call that
// runs long (a fan-out to many connections) would cost the others theirs.
// The NATS read loop, which fills it, relieves it before each read
// (Source.relieve): beyond half full, it moves what waits to the channels'
// queues itself while the handler runs, applying the same limits, so that
// a flood is cut on its own channel. What can still fill it is a
// dispatcher that is between handler calls and yet does not run for as
// long as the read loop takes to read half a queue (its thread descheduled
// by the OS); NATS's drops are counted as well.
//
// A handler must not wait: the other channels of its dispatcher would
// wait with it. One that must (the gateway's gap fill from the history
// stream) pauses its channel (Message.Pause), finishes on a goroutine of
// its own, and resumes it: the channel's messages meanwhile are queued,
// within its limits, and it is put back in turn with its order kept.

// transitSlots is the capacity of a dispatcher's transit queue: feed
// messages that may arrive while one is handed over (a fan-out to ten
// thousand connections takes a few milliseconds).
const transitSlots = 8192

// dispatcher hands one share of the Source's channels their messages, on
// its own goroutine (run).
type dispatcher struct {
	src     *Source
	transit chan *nats.Msg // What NATS delivers for the dispatcher's channels (ChanSubscribe).
	resumed chan *route    // Channels whose handler ended a pause (Message.Pause).
	stop    chan struct{}  // Closed by Source.Close.

	// mu is held by the dispatcher's goroutine except while it waits for
	// a message and while it calls a handler; the NATS read loop takes it
	// to drain the transit queue during a handler call (relieve). So
	// the transit queue is received from by one goroutine at a time, and
	// a message is queued on its channel in the order NATS delivered it.
	mu sync.Mutex
	// ready lists the routes with queued messages, in the order they
	// became ready (route.listed). Guarded by mu.
	ready fifo[*route]
	// inCall is set while the dispatcher calls a handler. Guarded by mu.
	inCall bool
	// local is the handlers' own state (Message.Local). Owned by the
	// dispatcher's goroutine, which only touches it in handler calls.
	local any
	// bySub is take's look-up of a message's route by the NATS
	// subscription it came on (nats.Msg.Sub): a pointer's hash, where the
	// subject's look-up (routes) takes a shared lock and hashes and
	// compares the subject's bytes, lines that are cold at each feed
	// burst. An entry maps a subscription only to its own route (one that
	// knows it, route.sub), and goes once the route is removed
	// (routes.remove, then route.forget): the map holds the dispatcher's
	// live channels, and those just released. Guarded by mu.
	bySub map[*nats.Subscription]*route
}

// route is one subscribed channel at its dispatcher.
type route struct {
	subject string        // Static after construction: the channel's NATS subject.
	ch      proto.Channel // Static after construction.
	h       Handler       // Static after construction.
	d       *dispatcher   // Static after construction.
	// sub is the channel's NATS subscription, set once ChanSubscribe
	// returns it (messages may come before): what dispatcher.bySub keys
	// the route by.
	sub atomic.Pointer[nats.Subscription]
	// queue holds the channel's messages not handed over yet, and bytes
	// their payloads' size; listed is set while the route is in d.ready.
	// Guarded by d.mu.
	queue  fifo[*nats.Msg]
	bytes  int
	listed bool
	// paused is set while the channel's handler finishes a message off
	// the dispatcher (Message.Pause); guarded by d.mu. ahead is the
	// channel's message decoded ahead meanwhile, handed over first once
	// it resumes; owned by the dispatcher's goroutine.
	paused bool
	ahead  *Message
	// dropped counts the messages dropped for the pending limits.
	dropped atomic.Uint64
	// gone is set once the channel is released: what is queued is dropped.
	gone atomic.Bool
}

// keptQueue is the capacity of a channel's queue kept once it is empty:
// a channel that was far behind once gives its array back.
const keptQueue = 64

// queued is how many of the route's messages wait. Called with d.mu held.
func (r *route) queued() int { return r.queue.len() }

// pop takes the route's oldest queued message. Called with d.mu held,
// with one queued at least.
func (r *route) pop() *nats.Msg {
	m := r.queue.pop()
	r.bytes -= len(m.Data)
	if r.queue.len() == 0 && cap(r.queue.items) > keptQueue {
		r.queue = fifo[*nats.Msg]{}
	}
	return m
}

// push queues m on r. Called with d.mu held.
func (r *route) push(m *nats.Msg) {
	r.queue.push(m)
	r.bytes += len(m.Data)
}

// fifo is a queue on a slice: items[head:] wait, oldest first. A pop that
// empties it starts the array over; a push onto a full array first moves
// what waits to its front, so that the array grows only with what waits.
// Not safe for concurrent use.
type fifo[T any] struct {
	items []T
	head  int
}

func (q *fifo[T]) len() int { return len(q.items) - q.head }

// push puts v last.
func (q *fifo[T]) push(v T) {
	if q.head > 0 && len(q.items) == cap(q.items) {
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items, q.head = q.items[:n], 0
	}
	q.items = append(q.items, v)
}

// pop takes the oldest; q must not be empty.
func (q *fifo[T]) pop() T {
	v := q.items[q.head]
	var zero T
	q.items[q.head] = zero
	q.head++
	if q.head == len(q.items) {
		q.items, q.head = q.items[:0], 0
	}
	return v
}

// routes maps a NATS subject to its route: the dispatchers look a
// message's subject up when they do not know its subscription yet (a
// message may arrive before ChanSubscribe returns it; dispatcher.bySub).
// Safe for concurrent use.
type routes struct {
	mu sync.RWMutex
	m  map[string]*route // Guarded by mu.
}

func (rs *routes) get(subject string) *route {
	rs.mu.RLock()
	r := rs.m[subject]
	rs.mu.RUnlock()
	return r
}

func (rs *routes) put(r *route) {
	rs.mu.Lock()
	if rs.m == nil {
		rs.m = make(map[string]*route)
	}
	rs.m[r.subject] = r
	rs.mu.Unlock()
}

// remove drops r's subject's route if it is still r, and marks r gone.
// Its dispatcher's bySub keeps it until route.forget, which the caller
// calls once it lets Source.mu go.
func (rs *routes) remove(r *route) {
	rs.mu.Lock()
	if rs.m[r.subject] == r {
		delete(rs.m, r.subject)
	}
	rs.mu.Unlock()
	r.gone.Store(true)
}

func newDispatcher(src *Source) *dispatcher {
	return &dispatcher{src: src, transit: make(chan *nats.Msg, transitSlots), resumed: make(chan *route, resumeSlots), stop: make(chan struct{})}
}

// run hands messages over until stop is closed: the oldest of the first
// ready channel, which then goes behind the other ready ones, so that
// channels take turns. It decodes one message ahead of the one it hands
// over, so that a message handed over with More set is always followed
// by another (an undecodable one is dropped before it is counted on).
func (d *dispatcher) run() {
	var cur handed
	d.mu.Lock()
	for {
		if cur.r == nil && d.ready.len() == 0 {
			d.mu.Unlock()
			var m *nats.Msg
			var r *route
			select {
			case m = <-d.transit:
			case r = <-d.resumed:
			case <-d.stop:
				return
			}
			d.mu.Lock()
			if m != nil {
				d.take(m)
			} else {
				d.resume(r)
			}
		}
		d.drain()
		next := d.next()
		if cur.r != nil {
			cur.m.Behind = cur.r.queued() > 0 || next.r == cur.r
			cur.m.More = next.r != nil
			cur.m.disp, cur.m.route = d, cur.r
			d.inCall = true
			d.mu.Unlock()
			cur.r.h(cur.r.ch, cur.m)
			d.mu.Lock()
			d.inCall = false
			if cur.r.paused && next.r == cur.r {
				cur.r.ahead, next = next.m, handed{} // kept for the resume
			}
		}
		cur = next
	}
}

// resumeSlots is the capacity of a dispatcher's queue of resumed
// channels; a resume beyond it waits for the dispatcher.
const resumeSlots = 64

// pause takes r off the dispatcher until the returned func is called:
// r's messages are queued, within its pending limits, and not handed
// over. Called on the dispatcher's goroutine, from r's handler.
func (d *dispatcher) pause(r *route) (resume func()) {
	d.mu.Lock()
	r.paused = true
	d.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			select {
			case d.resumed <- r:
			case <-d.stop:
			}
		})
	}
}

// resume puts r back in turn after a pause. Called on the dispatcher's
// goroutine, with d.mu held.
func (d *dispatcher) resume(r *route) {
	r.paused = false
	if !r.listed && (r.ahead != nil || r.queued() > 0) {
		r.listed = true
		d.ready.push(r)
	}
}

// handed is a decoded message and its channel's route, to hand over.
type handed struct {
	r *route
	m *Message
}

// next pops and decodes the next message to hand over: the oldest of the
// first ready channel, which goes behind the others if it has more. The
// zero handed when none is queued. Messages of released channels are
// dropped, and undecodable ones counted and dropped. Called on the
// dispatcher's goroutine, with d.mu held.
func (d *dispatcher) next() handed {
	for d.ready.len() > 0 {
		r := d.ready.pop()
		if r.paused { // listed before its handler paused it: back at resume
			r.listed = false
			continue
		}
		ahead := r.ahead
		var raw *nats.Msg
		if ahead != nil {
			r.ahead = nil
		} else {
			raw = r.pop()
		}
		if r.queued() > 0 {
			d.ready.push(r) // behind the others ready
		} else {
			r.listed = false
		}
		if r.gone.Load() {
			continue
		}
		if ahead != nil {
			return handed{r, ahead}
		}
		m, err := Decode(r.ch, raw.Data)
		if err != nil {
			d.src.decodeFailed(r.ch, err)
			continue
		}
		return handed{r, m}
	}
	return handed{}
}

// drain takes every resume and everything in the transit queue, without
// waiting. Only the dispatcher receives from the resume queue, and from
// the transit queue only the dispatcher or the read loop relieving it
// while it holds d.mu, so a length above zero is a receive that does not
// wait; and a receive from one channel that finds it empty returns
// without taking its lock, where a select over both would take both
// locks. Called on the dispatcher's goroutine, with d.mu held.
func (d *dispatcher) drain() {
	for len(d.resumed) > 0 {
		d.resume(<-d.resumed)
	}
	d.takeTransit()
}

// takeTransit takes everything in the transit queue, without waiting.
// Called with d.mu held, by the dispatcher or, during a handler call, by
// the read loop relieving it (relieve).
func (d *dispatcher) takeTransit() {
	for {
		select {
		case m := <-d.transit:
			d.take(m)
		default:
			return
		}
	}
}

// take queues m on its channel's route, or drops it: no route (released
// meanwhile), a route of another dispatcher (m came from the channel's
// previous subscription), or the route's pending limits reached. Called
// with d.mu held.
func (d *dispatcher) take(m *nats.Msg) {
	r := d.routeOf(m)
	if r == nil {
		return
	}
	cfg := &d.src.cfg
	if r.queued() >= cfg.PendingMessages || r.bytes+len(m.Data) > cfg.PendingBytes {
		r.dropped.Add(1)
		d.src.slowChannel(r.ch)
		return
	}
	r.push(m)
	if !r.listed && !r.paused {
		r.listed = true
		d.ready.push(r)
	}
}

// routeOf is m's live route at d, or nil: by m's subscription where
// bySub has it, else by its subject, which bySub then remembers when the
// route is that subscription's. A message of a channel's earlier
// subscription (released, and subscribed again since) goes to the
// channel's route by its subject, as every message did before bySub, and
// is not remembered. Called with d.mu held.
func (d *dispatcher) routeOf(m *nats.Msg) *route {
	if r := d.bySub[m.Sub]; r != nil && !r.gone.Load() {
		return r
	}
	r := d.src.routes.get(m.Subject)
	if r == nil || r.d != d || r.gone.Load() {
		return nil
	}
	if m.Sub != nil && r.sub.Load() == m.Sub {
		d.remember(m.Sub, r)
	}
	return r
}

// remember puts r in bySub as sub's route. Called with d.mu held.
func (d *dispatcher) remember(sub *nats.Subscription, r *route) {
	if d.bySub == nil {
		d.bySub = make(map[*nats.Subscription]*route)
	}
	d.bySub[sub] = r
}

// forget drops r, removed (routes.remove), from its dispatcher's bySub; a
// nil r does nothing. A take that looked r up before it was marked gone
// remembered it before forget takes d.mu; one after finds it gone and
// does not remember it; meanwhile a message of r's subscription that
// finds it in bySub finds it gone, and goes by its subject. Called
// without Source.mu or d.mu: Source.mu is let go first, so that nothing
// under it waits for a dispatcher. (A caller may hold a connection's
// command lock; no holder of d.mu takes one.)
func (r *route) forget() {
	if r == nil {
		return
	}
	sub := r.sub.Load()
	if sub == nil {
		return
	}
	d := r.d
	d.mu.Lock()
	if d.bySub[sub] == r {
		delete(d.bySub, sub)
	}
	d.mu.Unlock()
}

// relieveAt is the length of a transit queue beyond which the node's NATS
// read loop relieves its dispatcher (Source.relieve) before it reads more.
// One read is at most nats.go's read buffer (32 KiB), a couple of thousand
// of the smallest messages, so the queue stays below transitSlots.
const relieveAt = transitSlots / 2

// relieve is called by the node's NATS read loop before each read of its
// socket (feedDialer): that loop is what fills the transit queues, one
// read's messages at a time. A queue filled beyond relieveAt is drained
// onto its channels' queues, within their limits, when its dispatcher is
// in a handler call; otherwise the dispatcher is draining it, and the
// read loop lets it run first. So a flood on one channel is cut on that
// channel while a handler runs long, rather than filling the queue the
// channels share.
func (s *Source) relieve() {
	for _, d := range s.disp {
		if len(d.transit) > relieveAt {
			d.relieve()
		}
	}
}

// relieve drains d's transit queue while d calls a handler, or yields to
// d when it does not (on a single core it may be runnable, not running).
func (d *dispatcher) relieve() {
	d.mu.Lock()
	inCall := d.inCall
	if inCall {
		// The dispatcher takes d.mu before it receives again: the
		// messages are queued in the order NATS delivered them.
		d.takeTransit()
	}
	d.mu.Unlock()
	if !inCall {
		runtime.Gosched()
	}
}
