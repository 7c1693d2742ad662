package gateway

import (
	"math"
	"time"

	"github.com/tickgate/tickgate/proto"
)

// Channel status (contract 1.1, docs/protocol.md §4.3 status): whether a
// channel's data can be trusted to be current, told to its subscribers
// when it changes.
//
//   - stale, feed_disconnected: the node lost NATS; it holds for every
//     channel until something (a message or a publisher heartbeat) arrives
//     on the channel after NATS is back;
//   - resyncing, feed_gap: a book lost its data to a gap and waits for the
//     publisher's next snapshot;
//   - stale, feed_silent: nothing arrived on the channel for StaleAfter;
//   - live otherwise.
//
// The hub reevaluates a channel after every feed message, and every
// channel on a node-wide sweep (watch) that also notices the loss of NATS.

// chanState is a channel's state, in the order of the label values of
// tickgate_channels.
type chanState uint8

const (
	stateLive chanState = iota
	stateStale
	stateResyncing
	numChanStates
)

var chanStateNames = [numChanStates]string{proto.StateLive, proto.StateStale, proto.StateResyncing}

func (s chanState) String() string { return chanStateNames[s] }

// status is one state of a channel as subscribers are told it, with its
// frames encoded once per codec when the channel enters it. Immutable. A
// nil *status is live: what a channel is until something says otherwise,
// and what a subscriber that was told nothing holds.
type status struct {
	state  chanState
	reason string
	frames [numVariants][]byte
}

// is reports whether st is state with reason (a nil st is live).
func (st *status) is(state chanState, reason string) bool {
	if st == nil {
		return state == stateLive
	}
	return st.state == state && st.reason == reason
}

// current is st's state (a nil st is live).
func (st *status) current() chanState {
	if st == nil {
		return stateLive
	}
	return st.state
}

// statusSweep is how often the node checks its NATS connection and the
// channels' silence.
const statusSweep = 250 * time.Millisecond

// evalStatus is what the channel's state is now. Called with e.mu held.
func (e *hubEntry) evalStatus(now time.Time, staleAfter time.Duration) (chanState, string) {
	switch {
	case e.disconnected:
		return stateStale, proto.ReasonFeedDisconnected
	case e.state.Resyncing():
		return stateResyncing, proto.ReasonFeedGap
	case staleAfter > 0 && now.Sub(e.arrived) >= staleAfter:
		return stateStale, proto.ReasonFeedSilent
	}
	return stateLive, ""
}

// updateStatus reevaluates the channel at now and, on a change, tells
// every subscriber, which takes their outbox locks: a fan-out's kept
// locks, bl (nil: none), are let go first. Called with e.mu held.
func (e *hubEntry) updateStatus(h *hub, now time.Time, bl *burstLocks) {
	st, reason := e.evalStatus(now, h.staleAfter)
	if e.status.is(st, reason) {
		return
	}
	bl.release()
	next := &status{state: st, reason: reason}
	for ci := range next.frames {
		h.codecs.variantFrame(&next.frames, ci, func(ci int) []byte {
			return h.codecs.frame(ci, proto.Status{Type: proto.TypeStatus, Channel: e.name,
				State: st.String(), Reason: reason, TS: now.UnixNano()})
		})
	}
	h.metrics.channelsByState[e.status.current()].Dec()
	h.metrics.channelsByState[st].Inc()
	e.status = next
	e.stateNow.Store(uint32(st))
	if st == stateResyncing {
		h.warm(e) // the stream may have the book again before its publisher's next snapshot
	}
	for _, s := range e.subs {
		s.tell(next, h.now)
	}
}

// tell makes st the status pending for s, replacing one not sent yet: the
// last state wins. Called with e.mu held (it takes c.out.mu).
func (s *subscription) tell(st *status, now func() time.Time) {
	o := s.c.out
	o.lock()
	defer o.mu.Unlock()
	if o.closing != nil || s.dead {
		return
	}
	s.status.Store(st)
	o.ready(s, now)
}

// statusDue reports whether s has a status to send: one other than what
// the client was told last. Called with c.out.mu held.
func (s *subscription) statusDue() bool {
	st := s.status.Load()
	return st != nil && !s.told.is(st.state, st.reason)
}

// watch runs the node-wide sweep until stop is closed: it marks every
// channel stale (feed_disconnected) when the NATS connection goes down,
// and reevaluates every channel's silence.
func (h *hub) watch(stop <-chan struct{}) {
	t := time.NewTicker(statusSweep)
	defer t.Stop()
	up := true
	rated := h.now()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		connected := h.src.Connected()
		lost := up && !connected
		up = connected
		if lost || h.staleAfter > 0 {
			h.check(lost)
		}
		if now := h.now(); now.Sub(rated) >= time.Second {
			h.measureRates(now.Sub(rated))
			rated = now
		}
	}
}

// measureRates sets every channel's feed rate: the messages applied since
// the last measurement, over elapsed. It reads counters only, no channel
// lock. Called by watch.
func (h *hub) measureRates(elapsed time.Duration) {
	h.each(func(e *hubEntry) {
		n := e.received.Load()
		e.rate.Store(math.Float64bits(float64(n-e.rateFrom) / elapsed.Seconds()))
		e.rateFrom = n
	})
}

// check reevaluates every channel's status; with lost, the node has just
// lost NATS and every channel becomes stale until something arrives on it.
func (h *hub) check(lost bool) {
	h.each(func(e *hubEntry) {
		e.mu.Lock()
		if lost {
			e.disconnected = true
		}
		e.updateStatus(h, h.now(), nil)
		e.mu.Unlock()
	})
}

// each calls f for every channel entry the node holds. The shard's lock
// is held only to list its entries.
func (h *hub) each(f func(e *hubEntry)) {
	var list []*hubEntry
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.RLock()
		list = list[:0]
		for _, e := range sh.m {
			list = append(list, e)
		}
		sh.mu.RUnlock()
		for _, e := range list {
			f(e)
		}
	}
}
