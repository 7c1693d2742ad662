package gateway

import (
	"sync"

	"github.com/lxzan/gws"

	"github.com/tickgate/tickgate/proto"
)

// frame is one WebSocket message waiting for the writer. Its bytes may be
// shared with other connections (encode once) and are never modified.
type frame struct {
	op gws.Opcode
	b  []byte
}

// outbox is the bounded queue between everyone who sends to a connection
// (fan-out, command replies, timers) and the connection's one writer.
// push is O(1), never blocks on the socket, and never takes a lock the writer
// holds while writing: the writer only holds mu to swap the queue out.
type outbox struct {
	limit int // Static after construction.

	mu      sync.Mutex
	queue   []frame           // Guarded by mu.
	closing *proto.Disconnect // Guarded by mu. Set once; nothing is queued after it.

	wake chan struct{} // Capacity 1: a pending wake-up for the writer.
}

func newOutbox(limit int) *outbox {
	return &outbox{limit: limit, wake: make(chan struct{}, 1)}
}

// pushResult says what happened to a pushed frame.
type pushResult uint8

const (
	pushed     pushResult = iota
	pushClosed            // the connection is closing; the frame was dropped
	pushFull              // the queue is full; the caller evicts
)

// push queues f for the writer.
func (o *outbox) push(f frame) pushResult {
	o.mu.Lock()
	if o.closing != nil {
		o.mu.Unlock()
		return pushClosed
	}
	if len(o.queue) >= o.limit {
		o.mu.Unlock()
		return pushFull
	}
	o.queue = append(o.queue, f)
	o.mu.Unlock()
	o.signal()
	return pushed
}

// close marks the outbox closing with d, unless it already is; it reports
// whether d was the first close. Frames already queued are still written,
// then the close frame.
func (o *outbox) close(d proto.Disconnect) bool {
	o.mu.Lock()
	first := o.closing == nil
	if first {
		o.closing = &d
	}
	o.mu.Unlock()
	o.signal()
	return first
}

// evict marks the outbox closing with d and drops what is queued, unless
// it is closing already; it reports whether d was the first close.
func (o *outbox) evict(d proto.Disconnect) bool {
	o.mu.Lock()
	first := o.closing == nil
	if first {
		o.closing = &d
		clear(o.queue)
		o.queue = o.queue[:0]
	}
	o.mu.Unlock()
	o.signal()
	return first
}

func (o *outbox) signal() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// take swaps the queued frames out into spare (reused to avoid allocating)
// and returns them with the close reason, if one is set.
func (o *outbox) take(spare []frame) ([]frame, *proto.Disconnect) {
	o.mu.Lock()
	q := o.queue
	o.queue = spare[:0]
	d := o.closing
	o.mu.Unlock()
	return q, d
}
