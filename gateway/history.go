package gateway

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tickgate/tickgate/feed"
	"github.com/tickgate/tickgate/proto"
)

// History is where a node reads a channel's past beyond its memory
// (feed.History over the JetStream stream, with --history jetstream): a
// client resuming on a node that never held its channel, or whose memory
// no longer reaches its seq, is resumed from it (contract 1.1 durable
// resume).
type History interface {
	// Since returns the channel's feed messages after publisher seq seq,
	// in order, and the newest publisher seq the stream reaches; it fails
	// (feed.ErrNotCovered, feed.ErrNoHistory) unless the stream holds
	// every message after seq.
	Since(ctx context.Context, ch proto.Channel, seq uint64) (msgs []*feed.Message, upTo uint64, err error)
	// Recent returns what a channel's state starts from: a book's newest
	// snapshot and the updates after it, a ticker's newest ticker.
	Recent(ctx context.Context, ch proto.Channel) ([]*feed.Message, error)
	// Last returns the channel's newest n data messages, oldest first:
	// recent trades the node's memory does not reach.
	Last(ctx context.Context, ch proto.Channel, n int) ([]*feed.Message, error)
	// Range returns the channel's messages with seqs above after and up to
	// to, as far as the stream holds them, reading with gets only (no
	// stream info, no consumer): a small live gap's fill, which must work
	// while the JetStream cluster elects a meta leader.
	Range(ctx context.Context, ch proto.Channel, after, to uint64) ([]*feed.Message, error)
}

// Results of a history read, the label values of tickgate_history_reads_total.
const (
	historyResumed    = "resumed"     // the stream held every message after the seq
	historyWarmed     = "warmed"      // a channel the node held nothing of started from the stream
	historyFilled     = "filled"      // trades the node never had live, filled from the stream
	historyRecent     = "recent"      // recent trades the node's memory was short of, for a snapshot
	historyNotCovered = "not_covered" // it did not (its limits, a seq of another run)
	historyFailed     = "unavailable" // no stream, no JetStream, or a timeout
)

// fetched is what the history stream held after a resume point: its
// trades as events, each with the gap before it, and a gap alone up to
// upTo when the stream's newest is a publisher heartbeat ahead of them.
type fetched struct {
	events []feed.Event
	upTo   uint64
}

// errStreamBehind: the history stream held a resume's trades up to a seq
// the node's memory does not reach back to (the stream stores what core
// NATS already delivered a moment later, more so under load). Read again,
// it reaches the memory: the subscribe is answered unavailable and
// retried.
var errStreamBehind = fmt.Errorf("%w: the history stream is behind the node's live trades", feed.ErrUnavailable)

// needsHistory reports whether p resumes from a seq the node's memory
// cannot serve, on a kind without state (trades: a channel with state
// falls back to a snapshot, which is exact and cheaper). Called with
// cmdMu held.
func (c *conn) needsHistory(p pick) bool {
	if c.srv.cfg.History == nil || p.since == nil || p.ch.Kind.HasSnapshot() {
		return false
	}
	e := p.entry
	if p.sub != nil {
		e = p.sub.entry
	}
	e.mu.Lock()
	_, ok := e.state.Since(*p.since)
	e.mu.Unlock()
	return !ok
}

// needsRecent reports whether p asks for recent trades (and no resume)
// that the node's memory holds fewer of than asked, and not since the
// publisher's first, so that the history stream may hold more. Called
// with cmdMu held.
func (c *conn) needsRecent(p pick, view feed.SnapshotOptions) bool {
	if c.srv.cfg.History == nil || p.since != nil || view.Recent == 0 {
		return false
	}
	e := p.entry
	if p.sub != nil {
		e = p.sub.entry
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.state.Short(view)
}

// fetchRecent reads the channel's newest n messages from the history
// stream, or nil when it cannot: the snapshot is then the memory's. It
// runs on a waiting subscribe's goroutine (or a REST request's), under no
// lock.
func (h *hub) fetchRecent(ctx context.Context, ch proto.Channel, n int) []*feed.Message {
	msgs, err := h.history.Last(ctx, ch, n)
	switch {
	case errors.Is(err, feed.ErrNotCovered):
		h.metrics.historyReads[historyNotCovered].Inc()
		return nil
	case err != nil:
		h.metrics.historyReads[historyFailed].Inc()
		h.log.Warn("history stream unavailable; recent trades from memory only", "channel", ch.String(), "err", err.Error())
		return nil
	}
	h.metrics.historyReads[historyRecent].Inc()
	return msgs
}

// fetchHistory reads what the history stream holds after since, or nil
// when it cannot serve the resume. It runs on the waiting subscribe's
// goroutine, under no lock. busy is set when the read ran out of time (a
// node or a stream overloaded, as during a reconnect storm): the stream
// may well hold the trades, so the subscribe should be retried, not
// answered with history_unavailable.
func (c *conn) fetchHistory(ctx context.Context, ch proto.Channel, since uint64) (f *fetched, busy error) {
	msgs, upTo, err := c.srv.cfg.History.Since(ctx, ch, since)
	switch {
	case errors.Is(err, feed.ErrNotCovered):
		c.srv.metrics.historyReads[historyNotCovered].Inc()
		c.srv.log.Debug("resume not covered by the history stream", c.logAttrs("channel", ch.String(), "since", since, "err", err.Error())...)
		return nil, nil
	case err != nil:
		c.srv.metrics.historyReads[historyFailed].Inc()
		if errors.Is(err, feed.ErrHistoryRead) || errors.Is(err, context.DeadlineExceeded) {
			// The stream may well hold the trades: the client tries again.
			c.srv.log.Debug("history read failed; the resume is to be retried", c.logAttrs("channel", ch.String(), "err", err.Error())...)
			return nil, fmt.Errorf("%w: reading the history stream failed: %w", feed.ErrUnavailable, err)
		}
		c.srv.log.Warn("history stream unavailable; resume from memory only", c.logAttrs("channel", ch.String(), "err", err.Error())...)
		return nil, nil
	}
	c.srv.metrics.historyReads[historyResumed].Inc()
	f = &fetched{events: make([]feed.Event, 0, len(msgs)+1), upTo: upTo}
	prev := since
	for _, m := range msgs {
		ev := feed.Event{Channel: ch, Seq: m.Seq, Prev: prev, Data: m.Data, TS: m.TS()}
		if m.Seq > prev+1 {
			ev.GapFrom, ev.GapTo = prev+1, m.Seq-1
		}
		f.events = append(f.events, ev)
		prev = m.Seq
	}
	if upTo > prev {
		f.events = append(f.events, feed.Event{Channel: ch, Seq: upTo, Prev: prev, GapFrom: prev + 1, GapTo: upTo})
	}
	return f, nil
}

// Bounds of filling a live trade gap from the stream: the trades one fill
// may read, how long it may take (the channel's messages wait meanwhile),
// and how often a channel may try (a node flooded past its pending limits
// sees gap after gap, and must not spend itself on reads).
const (
	fillMax     = 10_000
	fillTimeout = time.Second
	fillEvery   = 100 * time.Millisecond
	// A read that fails on the way, or comes back short, is tried again
	// after fillPause, within fillTimeout; one that finds the next seq
	// missing at most fillTries more times.
	fillPause = 20 * time.Millisecond
	fillTries = 2
	// A gap of up to rangeMax trades is read with gets (History.Range),
	// a larger one with a consumer (History.Since).
	rangeMax = 256
)

// gapDue reports whether the trades between the newest the channel has
// seen and m (a trade, or a publisher heartbeat ahead of it) are to be
// read from the history stream now (fillRange), and which: after seen, up
// to to. A try is noted (e.filled) when it is due. It takes the channel's
// lock as apply does (bl.lockEntry: a burst's kept outbox locks stay kept
// unless the lock is taken), and reads the clock only when there is a
// gap to fill.
func (h *hub) gapDue(e *hubEntry, m *feed.Message, bl *burstLocks) (seen, to uint64, due bool) {
	bl.lockEntry(e)
	defer e.mu.Unlock()
	seen = e.state.Seen()
	if seen == 0 {
		// Nothing live yet, but a subscriber holds the trades up to
		// fromStream from the stream: those after it that reached
		// neither (the stream had not stored them when it was read, nor
		// was the node subscribed when they were published) are filled.
		seen = e.fromStream
	} else {
		e.fromStream = 0 // the chain is the node's own from here: no longer read
	}
	to = m.Seq - 1
	if m.Heartbeat {
		to = m.Seq
	}
	if seen == 0 || to <= seen || to-seen > fillMax {
		return seen, to, false
	}
	now := h.now()
	if due = now.Sub(e.filled) >= fillEvery; due {
		e.filled = now
	}
	return seen, to, due
}

// fillGap reads the trades gapDue named from the history stream and
// applies them, before m, so that subscribers get them instead of a gap
// message (contract 1.1 §9), then applies m. The read waits on the
// network, so it runs on a goroutine of its own while the feed's
// dispatcher holds the channel's later messages back (m.Pause), and the
// dispatcher hands the other channels over meanwhile. What the stream
// does not hold, or cannot give within fillTimeout, stays a gap and is
// reported as one. It reports false when no read was due: the caller
// applies m, and the locks bl keeps (the calling dispatcher's burst,
// burst.go; nil: none) stay kept. A fill lets them go first: its fan-outs
// take outbox locks, on this goroutine or another.
func (h *hub) fillGap(e *hubEntry, m *feed.Message, bl *burstLocks) bool {
	seen, to, due := h.gapDue(e, m, bl)
	if !due {
		return false
	}
	bl.release()
	resume := m.Pause()
	if resume == nil { // not from a dispatcher: read here
		h.fillRange(e, seen, to)
		h.process(e, m, nil)
		return true
	}
	h.wakes.pass(false, false) // m's fan-out runs on the goroutine below
	go func() {
		defer resume()
		h.fillRange(e, seen, to)
		m.Behind, m.More = false, false
		h.process(e, m, nil)
	}()
	return true
}

// fillRange reads the trades after seen up to to from the history stream
// and applies them, within fillTimeout.
func (h *hub) fillRange(e *hubEntry, seen, to uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), fillTimeout)
	defer cancel()
	n, misses := 0, 0
	for seen < to {
		var msgs []*feed.Message
		var err error
		if to-seen <= rangeMax {
			msgs, err = h.history.Range(ctx, e.ch, seen, to)
		} else {
			msgs, _, err = h.history.Since(ctx, e.ch, seen)
		}
		got := 0
		for _, fm := range msgs {
			if fm.Seq > to {
				break
			}
			h.process(e, fm, nil)
			seen = fm.Seq
			got++
		}
		n += got
		switch {
		case seen >= to:
		case err != nil && !errors.Is(err, feed.ErrNotCovered) && !errors.Is(err, feed.ErrHistoryRead):
			// No stream: nothing to wait for.
			h.log.Debug("feed gap not filled from the history stream", "channel", e.name, "from", seen+1, "to", to, "err", err.Error())
			return
		case got == 0 && (err == nil || errors.Is(err, feed.ErrNotCovered)):
			// The stream does not hold the next seq (yet: it may store
			// what core NATS delivered a moment later). A few short tries,
			// then it is a gap: a feed that lost them must not stall the
			// channel for long.
			if misses++; misses > fillTries {
				h.log.Debug("feed gap not in the history stream", "channel", e.name, "from", seen+1, "to", to)
				return
			}
		}
		if seen < to {
			select {
			case <-ctx.Done():
				h.log.Debug("feed gap not filled in time from the history stream", "channel", e.name, "from", seen+1, "to", to)
				return
			case <-time.After(fillPause):
			}
		}
	}
	if n > 0 {
		h.metrics.historyReads[historyFilled].Inc()
	}
}

// warmFromHistory starts the state of e, which holds nothing current (a
// node's first subscriber of a book or ticker, or a book that lost its
// sync), from the history stream, so that its subscribers need not wait
// for the publisher's next snapshot: on its own goroutine, under no lock
// but while it applies what it read. The channel's warming flag, set by
// the caller under e.mu, keeps it to one read at a time.
func (h *hub) warmFromHistory(e *hubEntry) {
	ctx, cancel := context.WithTimeout(context.Background(), warmTimeout)
	defer cancel()
	msgs, err := h.history.Recent(ctx, e.ch)
	var starts []restart
	e.mu.Lock()
	e.warming = false
	switch {
	case errors.Is(err, feed.ErrNotCovered):
		h.metrics.historyReads[historyNotCovered].Inc()
	case err != nil:
		h.metrics.historyReads[historyFailed].Inc()
		h.log.Debug("history stream unavailable to start a channel", "channel", e.name, "err", err.Error())
	default:
		if ev, ok := e.state.Warm(msgs); ok {
			h.metrics.historyReads[historyWarmed].Inc()
			e.dropSnapshots()
			e.fanout(h, &ev, &starts, nil)
			e.updateStatus(h, h.now(), nil)
		}
	}
	e.mu.Unlock()
	for _, r := range starts {
		r.s.fillHead(h.codecs, r.plan)
	}
}

// warmTimeout bounds one read of a channel's start from the stream.
const warmTimeout = 5 * time.Second

// warm starts warmFromHistory for e when the node reads a history stream
// and no read is under way. Called with e.mu held.
func (h *hub) warm(e *hubEntry) {
	if h.history == nil || e.warming || !feed.Warms(e.ch.Kind) {
		return
	}
	e.warming = true
	go h.warmFromHistory(e)
}

// splice joins what the stream held after a resume point with the node's
// memory after it: the stream's events alone when they reach as far as
// the node's own chain, else those and the memory's events after the
// stream's newest. ok=false when the two do not meet. Called with e.mu
// held.
func (e *hubEntry) splice(f *fetched) (evs []feed.Event, ok bool) {
	if e.state.Seen() == 0 {
		e.fromStream = max(e.fromStream, f.upTo)
	}
	if f.upTo >= e.state.LastSeq() {
		// Live trades up to upTo that reach the node later are not sent
		// again (a subscriber skips seqs it holds).
		return f.events, true
	}
	mem, ok := e.state.Since(f.upTo)
	if !ok {
		return nil, false
	}
	return append(f.events[:len(f.events):len(f.events)], mem...), true
}
