package feed

import (
	"fmt"
	"reflect"

	"github.com/tickgate/tickgate/proto"
)

// DefaultHistoryLen is how many emitted events a State keeps for resume
// when NewState is given zero.
const DefaultHistoryLen = 1024

// Event is what a feed message means for subscribers, after a State applied
// it. Its Data is immutable once emitted: the gateway may encode it once and
// share the bytes among all subscribers that get it unchanged.
type Event struct {
	Channel proto.Channel
	// Snapshot is true when the event goes out as a "snapshot" (a book
	// after a gap or a checksum mismatch, its first snapshot, or a periodic
	// snapshot that differs from the held book); false for an "update".
	Snapshot bool
	// Seq is the feed seq of the message.
	Seq uint64
	// Prev is the seq of the previous event the State emitted on the
	// channel, 0 if none. Subscribers whose last seq equals Prev can share
	// one encoding of this event.
	Prev uint64
	// Data is *proto.Ticker (the full state), *proto.Trade, or *proto.Book:
	// for an update the delta as sent with Checksum set to the node's
	// checksum after applying it and Symbol empty; for a snapshot the full
	// book with Symbol and Checksum set.
	Data any
	// TS is the source event time (the data's ts), Unix nanoseconds.
	TS int64
	// Restart is true for the first event after the publisher started its
	// seq over (see PublisherRestarted): Seq is not above Prev.
	Restart bool
	// Views holds what the event means for each view that shapes updates
	// and that the state tracks (Track: a book's depth), when the event is
	// an update. Nil otherwise.
	Views []ViewUpdate
	// GapFrom and GapTo (inclusive), on an event channel (trade), are the
	// feed seqs the node never had right before this event: a seq jump on
	// NATS, or messages the node dropped (Source.Dropped). Zero when none.
	// Subscribers' chains stay intact across it, so the gateway reports it
	// to them on its own (a gap message). An event with a gap and no Data
	// (a publisher heartbeat ahead of the node) carries only the gap: it is
	// no update, and Seq is not part of the chain.
	GapFrom, GapTo uint64
}

// ViewUpdate is what one update event means for the subscribers of one
// view that shapes updates (a book's depth): the change within the view,
// and the view's own chain, whose updates skip the events that changed
// nothing in it.
type ViewUpdate struct {
	View SnapshotOptions
	// Data is the view's delta (for a depth: *proto.Book with exactly the
	// levels that changed within the best Depth of each side, those that
	// left it with size "0", those that entered it with their size, and
	// the checksum of the whole book); nil when the event changed nothing
	// in the view, and subscribers of the view get no update for it.
	Data any
	// Prev is the seq of the view's previous update or snapshot event;
	// N the feed messages from then to this one (this one included).
	Prev uint64
	N    uint32
}

// View returns what ev means for view v, when the state tracked it.
func (ev *Event) View(v SnapshotOptions) (ViewUpdate, bool) {
	for _, u := range ev.Views {
		if u.View == v {
			return u, true
		}
	}
	return ViewUpdate{}, false
}

// Bounds of PublisherRestarted.
const (
	// RestartLowSeq: a seq this low, below the newest, is one of the first
	// messages of a new run (its seq 1 may have been lost while the node's
	// NATS connection was down).
	RestartLowSeq = 64
	// RestartJump: a seq this far below the newest is a new run too; no
	// message is overtaken by this many on its way through NATS.
	RestartJump = 1024
	// AheadMax: a resume from a seq up to this many beyond the newest the
	// node has emitted is taken: the client saw those messages on another
	// node first (NATS delivers to each node at its own pace, and a client
	// that moves can arrive before them). The node's next events up to
	// that seq are the ones the client holds, and are not sent again.
	AheadMax = 64
)

// PublisherRestarted reports whether a feed message with seq, arriving
// after the newest seq last, means the publisher started over rather than
// a duplicate or a late message. Publishers count each channel from 1, and
// one that restarts without keeping its count begins at 1 again; dropping
// its messages as duplicates would freeze the channel until the new count
// passed the old one. A seq equal to last is a duplicate; a seq a little
// below a high last (a message overtaken in a NATS cluster while its
// publisher reconnected) is dropped as one too.
func PublisherRestarted(seq, last uint64) bool {
	return seq < last && (seq <= RestartLowSeq || last-seq > RestartJump)
}

// State is the per-channel state of a gateway node. Implementations are
// pure and not safe for concurrent use: the caller serialises all calls on
// one State (the gateway holds a per-channel mutex).
type State interface {
	// Apply folds m into the state and takes ownership of m's data, which
	// may become (part of) the event's Data. emit=false means nothing goes
	// to subscribers: a duplicate or old seq, a book delta while unsynced,
	// a gap or checksum mismatch that unsynced a book, or a periodic book
	// snapshot equal to the held book. out says what happened, for counting.
	Apply(m *Message) (ev Event, emit bool, out Outcome)
	// Snapshot returns the current state for a new subscriber, as o asks
	// for it: the seq of the newest feed message in it and the data (the
	// held *proto.Ticker, which is immutable; a fresh *proto.Book copy with
	// Symbol and Checksum set, cut to o.Depth; a fresh
	// *proto.CandleSnapshot of up to o.Bars bars; a fresh
	// *proto.TradeSnapshot of up to o.Recent trades). ok=false when the
	// node has no state yet, a book is unsynced, or a trade snapshot was
	// not asked for (o.Recent 0) or has no trade. older are messages of
	// the channel from the history stream, oldest first, that a snapshot
	// of events completes the state's memory with (Short); other states
	// ignore them.
	Snapshot(o SnapshotOptions, older ...*Message) (seq uint64, data any, ok bool)
	// Short reports whether a snapshot of o would lack what the node's
	// memory does not reach and the history stream may hold: fewer than
	// o.Recent trades held, and not all since the publisher's first.
	Short(o SnapshotOptions) bool
	// Track starts (on) or stops (off) computing, for every update it
	// emits, what it means for view o (Event.Views), when o shapes updates
	// (SnapshotOptions.ShapesUpdates: a book's depth); other views are
	// ignored. Starts and stops are counted: a view is tracked while it
	// has more starts than stops.
	Track(o SnapshotOptions, on bool)
	// Since returns the emitted events after seq, for a client resuming from
	// seq, when the bounded history holds an unbroken chain: the first event
	// has Prev == seq and each next one's Prev is the Seq of the one before,
	// up to the newest event. If seq is the newest emitted seq, ok=true and
	// there are no events. ok=false when it cannot: seq is 0, older than the
	// history, not a seq this state emitted, more than AheadMax beyond the
	// newest (a little beyond it is ok, with no events: the client saw
	// them on another node first), a book snapshot event lies in between,
	// or a book is unsynced.
	//
	// A book may also resume from a feed seq that only refreshed its state
	// (an unchanged periodic snapshot, which a new subscriber may have got
	// as its Snapshot seq): the events after it are returned, and the first
	// one's Prev is then the emitted seq before seq, not seq. The caller
	// sends each subscriber its own prev anyway (see Event.Prev).
	//
	// The returned slice is the caller's; the events' Data are shared and
	// immutable.
	Since(seq uint64) (evs []Event, ok bool)
	// LastSeq returns the seq of the newest event emitted, which is what an
	// in-sync subscriber holds; 0 if none.
	LastSeq() uint64
	// Seen returns the newest seq the state has seen, from messages and
	// publisher heartbeats, applied or not; 0 if none.
	Seen() uint64
	// Resyncing reports whether the state lost its data to a gap or a
	// mismatch and waits for the feed to send it again: a book that had a
	// book and waits for a snapshot. Ticker and trade states never do.
	Resyncing() bool
	// Warm gives a state that holds nothing current its data from the
	// history stream (History.Recent): a ticker without a ticker takes the
	// newest; a book that is not synced takes the newest snapshot and the
	// updates after it, when they follow one another and reach at least
	// the newest seq the state has seen (else the live updates it dropped
	// meanwhile are missing and it keeps waiting for the publisher's
	// snapshot). It returns the event to fan out (a snapshot event for a
	// book) and whether it took them. Trade states take nothing.
	Warm(msgs []*Message) (ev Event, ok bool)
	// HistoryLen returns how many emitted events the state keeps for
	// Since now (at most its historyLen).
	HistoryLen() int
}

// SnapshotOptions are what a subscriber asks of a snapshot beyond the
// kind's default (the subscribe options of contract 1.1). The zero value
// is the default: the whole book, DefaultBars bars, no recent trades.
// Comparable: the gateway shares snapshots between subscribers with equal
// options.
type SnapshotOptions struct {
	Depth  int // book: the best levels per side (one of proto.Depths); 0: the whole book
	Bars   int // candle: the newest bars, at most; 0: proto.DefaultBars
	Recent int // trade: the newest trades, at most; 0: no snapshot
}

// ShapesUpdates reports whether the view changes a subscriber's updates,
// not only its snapshot: a book's depth does (each update holds what
// changed within it, Event.Views), so its subscribers resume from a fresh
// snapshot rather than a replay of whole-book deltas.
func (o SnapshotOptions) ShapesUpdates() bool { return o.Depth != 0 }

// For returns the options a channel of the kind declared by spec takes
// (proto.KindSpec.Options), the others zero.
func (o SnapshotOptions) For(spec proto.KindSpec) SnapshotOptions {
	var v SnapshotOptions
	if spec.Takes(proto.OptionBars) {
		v.Bars = o.Bars
	}
	if spec.Takes(proto.OptionDepth) {
		v.Depth = o.Depth
	}
	if spec.Takes(proto.OptionRecent) {
		v.Recent = o.Recent
	}
	return v
}

// bars is o.Bars with its default.
func (o SnapshotOptions) bars() int {
	if o.Bars <= 0 {
		return proto.DefaultBars
	}
	return o.Bars
}

// StateOption tunes one NewState.
type StateOption func(*stateConfig)

// stateConfig is what NewState's options set.
type stateConfig struct {
	historyLen int
	candleBars int
}

// CandleBars is how many bars a candle state keeps for snapshots (zero:
// DefaultCandleBars).
func CandleBars(n int) StateOption {
	return func(c *stateConfig) {
		if n > 0 {
			c.candleBars = n
		}
	}
}

// DefaultCandleBars is how many bars a candle state keeps by default
// (proto.MaxBars, so that any bars option is served).
const DefaultCandleBars = proto.MaxBars

// NewState returns an empty State for ch, the kind's (its newState), that
// keeps up to historyLen emitted events for Since (zero:
// DefaultHistoryLen; negative: none). It panics on a channel of unknown
// kind.
func NewState(ch proto.Channel, historyLen int, opts ...StateOption) State {
	if historyLen == 0 {
		historyLen = DefaultHistoryLen
	}
	cfg := stateConfig{historyLen: max(historyLen, 0), candleBars: DefaultCandleBars}
	for _, o := range opts {
		o(&cfg)
	}
	k := kindOf(ch.Kind)
	if k == nil {
		panic(fmt.Sprintf("feed: NewState: unknown kind %v", ch.Kind))
	}
	return k.newState(ch, cfg)
}

// Outcome is what State.Apply did with a feed message, for counting.
type Outcome uint8

// Outcomes of State.Apply.
const (
	// OutcomeApplied: applied in sequence and emitted as an update.
	OutcomeApplied Outcome = iota
	// OutcomeSnapshot: a book snapshot replaced the book (the first one,
	// one after a gap or mismatch, or a periodic one that differed) and was
	// emitted as a snapshot.
	OutcomeSnapshot
	// OutcomeDuplicate: seq at or below the newest seq seen; dropped.
	OutcomeDuplicate
	// OutcomeGap: seq jumped. Ticker and trade messages are still applied
	// and emitted; a book delta is dropped and the book is unsynced until
	// the next feed snapshot.
	OutcomeGap
	// OutcomeUnsynced: a book delta dropped while awaiting a snapshot.
	OutcomeUnsynced
	// OutcomeSnapshotUnchanged: a periodic book snapshot equal to the held
	// book; only the state's seq moved, nothing emitted.
	OutcomeSnapshotUnchanged
	// OutcomeChecksumMismatch: a book delta carried a non-zero checksum that
	// disagrees with the node's book after applying it; dropped, and the
	// book is unsynced until the next feed snapshot.
	OutcomeChecksumMismatch
	// OutcomeInvalid: the message carries no data of the channel's kind (a
	// caller bug: Decode never produces that); dropped.
	OutcomeInvalid
	// OutcomeRestart: a seq below the newest that PublisherRestarted takes
	// for a new run of the publisher. A ticker or trade message is applied and
	// emitted with Restart set; for a book the held book is dropped, and
	// a snapshot is emitted at once or with the publisher's next one.
	OutcomeRestart
	// OutcomeHeartbeat: a publisher heartbeat whose seq is not above the
	// newest seen (one above it is OutcomeGap).
	OutcomeHeartbeat
	numOutcomes
)

// Outcomes returns every Outcome, for metrics that start each labelled
// series at zero.
func Outcomes() []Outcome {
	out := make([]Outcome, numOutcomes)
	for i := range out {
		out[i] = Outcome(i)
	}
	return out
}

// String returns the outcome's metric label.
func (o Outcome) String() string {
	switch o {
	case OutcomeApplied:
		return "applied"
	case OutcomeSnapshot:
		return "snapshot"
	case OutcomeDuplicate:
		return "duplicate"
	case OutcomeGap:
		return "gap"
	case OutcomeUnsynced:
		return "unsynced"
	case OutcomeSnapshotUnchanged:
		return "snapshot_unchanged"
	case OutcomeChecksumMismatch:
		return "checksum_mismatch"
	case OutcomeInvalid:
		return "invalid"
	case OutcomeRestart:
		return "restart"
	case OutcomeHeartbeat:
		return "heartbeat"
	}
	return fmt.Sprintf("outcome(%d)", uint8(o))
}

// streamState is the State of a kind whose every message stands alone
// (ticker, trade): every message in a newer seq is applied and emitted,
// gaps included. What differs between such kinds is read from the kind's
// proto.KindSpec: with WholeState (ticker) the newest message is the
// state, a subscriber's snapshot and what the history stream warms it
// from; with Events (trade) the subscribers simply continue after a gap,
// but an event carries the seqs it skipped (GapFrom, GapTo), which the
// gateway reports (docs/protocol.md §4.3, gap).
type streamState struct {
	ch   proto.Channel  // Static after construction.
	spec proto.KindSpec // Static after construction: ch.Kind's.
	// dataType is the type of the kind's data (spec.Data): a message
	// carrying another is a caller bug. Static after construction.
	dataType reflect.Type
	seen     uint64 // newest seq seen, from messages and publisher heartbeats
	last     uint64 // seq of the newest message applied and emitted
	cur      any    // newest data applied; immutable
	ts       int64  // ts of cur
	hist     history
}

func newStreamState(ch proto.Channel, cfg stateConfig) State {
	return makeStreamState(ch, cfg)
}

func makeStreamState(ch proto.Channel, cfg stateConfig) *streamState {
	spec := ch.Kind.Spec()
	return &streamState{ch: ch, spec: spec, dataType: reflect.TypeOf(spec.Data()), hist: history{limit: cfg.historyLen}}
}

func (s *streamState) Apply(m *Message) (Event, bool, Outcome) {
	if m.Heartbeat {
		return s.heartbeat(m.Seq)
	}
	if m.Data == nil || reflect.TypeOf(m.Data) != s.dataType {
		return Event{}, false, OutcomeInvalid
	}
	data, ts := m.Data, m.TS()
	restart := false
	if m.Seq <= s.seen {
		if !PublisherRestarted(m.Seq, s.seen) {
			return Event{}, false, OutcomeDuplicate
		}
		restart = true
	}
	out := OutcomeApplied
	switch {
	case restart:
		out = OutcomeRestart
	case s.seen != 0 && m.Seq != s.seen+1:
		out = OutcomeGap
	}
	ev := Event{Channel: s.ch, Seq: m.Seq, Prev: s.last, Data: data, TS: ts, Restart: restart}
	if out == OutcomeGap && s.spec.Events {
		ev.GapFrom, ev.GapTo = s.seen+1, m.Seq-1
	}
	s.seen, s.last, s.cur, s.ts = m.Seq, m.Seq, data, ts
	if restart {
		// The history's seqs belong to the publisher's previous run, and
		// seqs up to ev.Prev may mean either run: no resume from them.
		s.hist.restart(ev.Prev)
	} else {
		s.hist.push(ev)
	}
	return ev, true, out
}

// heartbeat handles a publisher heartbeat carrying the publisher's newest
// seq. A seq above the newest seen means messages the node never had: for
// an event kind (trade), an event without data that carries the gap
// (GapFrom, GapTo) and does not move the chain (Prev and LastSeq stay);
// otherwise only the count. The first heartbeat of a state that has seen
// nothing only sets where the feed stands.
func (s *streamState) heartbeat(seq uint64) (Event, bool, Outcome) {
	switch {
	case s.seen == 0:
		s.seen = seq
		return Event{}, false, OutcomeHeartbeat
	case seq <= s.seen:
		return Event{}, false, OutcomeHeartbeat
	}
	from := s.seen + 1
	s.seen = seq
	if !s.spec.Events {
		return Event{}, false, OutcomeGap
	}
	ev := Event{Channel: s.ch, Seq: seq, Prev: s.last, GapFrom: from, GapTo: seq}
	s.hist.push(ev)
	return ev, true, OutcomeGap
}

func (s *streamState) Resyncing() bool { return false }

func (s *streamState) Track(SnapshotOptions, bool) {}

func (s *streamState) Seen() uint64 { return s.seen }

func (s *streamState) Warm(msgs []*Message) (Event, bool) {
	if !s.spec.WholeState || s.cur != nil || len(msgs) == 0 {
		return Event{}, false
	}
	m := msgs[len(msgs)-1]
	if m.Data == nil || reflect.TypeOf(m.Data) != s.dataType {
		return Event{}, false
	}
	// Older than a heartbeat the node saw, it is still the newest state
	// the node can have: the newer one was lost on the way.
	s.last, s.cur, s.ts = m.Seq, m.Data, m.TS()
	s.seen = max(s.seen, m.Seq)
	return Event{Channel: s.ch, Seq: m.Seq, Data: m.Data, TS: s.ts}, true
}
func (s *streamState) HistoryLen() int { return s.hist.len() }

func (s *streamState) Short(SnapshotOptions) bool { return false }

func (s *streamState) Snapshot(SnapshotOptions, ...*Message) (uint64, any, bool) {
	if !s.spec.WholeState || s.cur == nil {
		return 0, nil, false
	}
	return s.last, s.cur, true
}

func (s *streamState) Since(seq uint64) ([]Event, bool) {
	if s.hist.ambiguous(seq) {
		return nil, false
	}
	return s.hist.since(s.ch, seq, s.last, true)
}

func (s *streamState) LastSeq() uint64 { return s.last }

// histEntry is an emitted update event without the fields that are the
// same for every event of a channel.
type histEntry struct {
	seq, prev      uint64
	data           any
	ts             int64
	gapFrom, gapTo uint64
}

// history is a bounded ring of the update events a State emitted since its
// last snapshot event, oldest first; each entry's prev is the seq of the
// entry before it. It grows lazily up to limit entries.
type history struct {
	limit int // Static after construction.
	buf   []histEntry
	start int    // index of the oldest entry once buf is full
	floor uint64 // seqs up to this belong to a previous run of the publisher too
}

func (h *history) len() int { return len(h.buf) }

// at returns the i-th oldest entry.
func (h *history) at(i int) *histEntry {
	return &h.buf[(h.start+i)%len(h.buf)]
}

func (h *history) push(ev Event) {
	if h.limit == 0 {
		return
	}
	e := histEntry{seq: ev.Seq, prev: ev.Prev, data: ev.Data, ts: ev.TS, gapFrom: ev.GapFrom, gapTo: ev.GapTo}
	if len(h.buf) < h.limit {
		h.buf = append(h.buf, e)
		return
	}
	h.buf[h.start] = e
	h.start = (h.start + 1) % len(h.buf)
}

// clear drops every entry (and the data they keep alive) but keeps the
// storage.
func (h *history) clear() {
	clear(h.buf)
	h.buf = h.buf[:0]
	h.start = 0
}

// restart empties the history after a publisher restart whose previous run
// reached seq oldLast: from now on a client's seq up to oldLast may come
// from either run, and a resume from it could skip messages unseen.
func (h *history) restart(oldLast uint64) {
	h.clear()
	h.floor = max(h.floor, oldLast)
}

// ambiguous reports whether seq may belong to an earlier run of the
// publisher (see restart).
func (h *history) ambiguous(seq uint64) bool { return seq <= h.floor }

// since implements State.Since for a history whose newest entry has seq
// last (or which is empty because the newest event was a snapshot).
//
// With exact, seq must be the prev of the oldest entry or the seq of an
// entry. Without, seq may be any seq from the oldest entry's prev on: a
// book's history has no gaps while synced (a gap unsyncs it and clears the
// history), so a seq between two entries was a feed message that changed
// nothing (an unchanged periodic snapshot) and a client holding it holds
// the book of the entry before it.
func (h *history) since(ch proto.Channel, seq, last uint64, exact bool) ([]Event, bool) {
	switch {
	case seq == 0:
		return nil, false
	case seq > last:
		// Ahead of the node, a little: nothing to replay yet (AheadMax).
		return nil, last != 0 && seq-last <= AheadMax
	}
	if seq == last {
		return nil, true
	}
	n := h.len()
	if n == 0 || seq < h.at(0).prev {
		return nil, false
	}
	// Entries' seqs increase: find the first one after seq.
	lo, hi := 0, n
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if h.at(mid).seq <= seq {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo == n || exact && h.at(lo).prev != seq {
		return nil, false
	}
	evs := make([]Event, 0, n-lo)
	for i := lo; i < n; i++ {
		e := h.at(i)
		evs = append(evs, Event{Channel: ch, Seq: e.seq, Prev: e.prev, Data: e.data, TS: e.ts, GapFrom: e.gapFrom, GapTo: e.gapTo})
	}
	return evs, true
}
