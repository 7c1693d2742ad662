package feed

import (
	"slices"

	"github.com/tickgate/tickgate/proto"
)

// bookKind: an L2 book from a feed snapshot and level deltas, kept by a
// bookState.
var bookKind = kind{
	validate: validBook,
	newState: func(ch proto.Channel, cfg stateConfig) State {
		return &bookState{ch: ch, hist: history{limit: cfg.historyLen}}
	},
	warms: true,
	json: jsonFields[proto.Book]{
		jsonString("symbol", func(b *proto.Book) *string { return &b.Symbol }),
		jsonLevels("bids", func(b *proto.Book) *[]proto.Level { return &b.Bids }),
		jsonLevels("asks", func(b *proto.Book) *[]proto.Level { return &b.Asks }),
		jsonUint32("checksum", func(b *proto.Book) *uint32 { return &b.Checksum }),
		jsonInt("ts", func(b *proto.Book) *int64 { return &b.TS }),
	},
}

// Book returns the message's data on a book channel, or nil.
func (m *Message) Book() *proto.Book {
	b, _ := m.Data.(*proto.Book)
	return b
}

// validBook checks a book message: at most MaxBookLevels levels per side;
// a snapshot has no zero sizes and no two levels of one side at the same
// price (numerically, "1.5" = "1.50"). A snapshot's sides are sorted best
// first here when the publisher sent them in another order: the order
// carries no information beyond the prices, and the book checksum is
// defined over book order. A non-zero snapshot checksum must match its
// levels. An update's Symbol is cleared.
func validBook(ch proto.Channel, m *Message) error {
	b := m.Book()
	if m.Snapshot {
		if err := fillSymbol(ch, &b.Symbol); err != nil {
			return err
		}
	} else {
		if b.Symbol != "" && b.Symbol != ch.Symbol {
			return badf(ch, "data symbol does not match the channel")
		}
		b.Symbol = ""
	}
	if b.TS < 0 {
		return badf(ch, "negative ts")
	}
	if b.Bids == nil {
		b.Bids = []proto.Level{}
	}
	if b.Asks == nil {
		b.Asks = []proto.Level{}
	}
	if err := validLevels(ch, "bids", b.Bids, bidOrder, m.Snapshot); err != nil {
		return err
	}
	if err := validLevels(ch, "asks", b.Asks, askOrder, m.Snapshot); err != nil {
		return err
	}
	if m.Snapshot && b.Checksum != 0 && b.Checksum != proto.BookChecksum(b.Bids, b.Asks) {
		return badf(ch, "snapshot checksum does not match its levels")
	}
	return nil
}

// bookState is the State of a book channel: an L2 book kept in book order
// (bids highest first, asks lowest first) in sorted slices, with levels
// keyed by numeric price ("64000.1" and "64000.10" are one level) and each
// level's price string as most recently sent.
//
// The book is synced once a feed snapshot arrived and until a gap or a
// checksum mismatch; while unsynced, deltas are dropped and the next feed
// snapshot resyncs it.
type bookState struct {
	ch proto.Channel // Static after construction.
	// bids and asks are the book, owned by the state: never shared with an
	// event or a snapshot, which get their own slices.
	bids, asks []proto.Level
	synced     bool
	seen       uint64 // newest seq seen, applied or dropped; equals applied while synced
	applied    uint64 // seq of the newest feed message in the book
	emitted    uint64 // seq of the newest event emitted
	checksum   uint32 // proto.BookChecksum of the book, while synced
	ts         int64  // ts of the newest feed message in the book
	hist       history
	scratch    []byte // for checksum
	// views are the depths subscribers hold (Track, depth.go), and
	// oldBids/oldAsks the best levels before the delta being applied, for
	// them; scratch.
	views            []*depthView
	oldBids, oldAsks []proto.Level
}

func (s *bookState) Apply(m *Message) (Event, bool, Outcome) {
	if m.Heartbeat {
		return s.heartbeat(m.Seq)
	}
	b := m.Book()
	if b == nil {
		return Event{}, false, OutcomeInvalid
	}
	if b.Bids == nil {
		b.Bids = []proto.Level{}
	}
	if b.Asks == nil {
		b.Asks = []proto.Level{}
	}
	if m.Seq <= s.seen {
		if !PublisherRestarted(m.Seq, s.seen) {
			return Event{}, false, OutcomeDuplicate
		}
		// The publisher started over: the held book belongs to its
		// previous run. Its snapshot (normally its first message) starts
		// the book again and goes out to every subscriber.
		s.hist.restart(s.seen)
		s.seen = m.Seq
		s.unsync()
		if !m.Snapshot {
			return Event{}, false, OutcomeRestart
		}
		ev, emit, _ := s.applySnapshot(m.Seq, b)
		ev.Restart = true
		return ev, emit, OutcomeRestart
	}
	s.seen = m.Seq
	if m.Snapshot {
		return s.applySnapshot(m.Seq, b)
	}
	if !s.synced {
		return Event{}, false, OutcomeUnsynced
	}
	if m.Seq != s.applied+1 {
		s.unsync()
		return Event{}, false, OutcomeGap
	}
	s.keepWindows()
	for _, l := range b.Bids {
		applyLevel(&s.bids, l, bidOrder)
	}
	for _, l := range b.Asks {
		applyLevel(&s.asks, l, askOrder)
	}
	if len(s.bids) > MaxBookLevels || len(s.asks) > MaxBookLevels {
		// Deeper than any snapshot may be: a publisher that never removes
		// levels. Drop the book until its next snapshot rather than grow.
		s.unsync()
		return Event{}, false, OutcomeInvalid
	}
	ck := s.bookChecksum()
	if b.Checksum != 0 && b.Checksum != ck {
		s.unsync()
		return Event{}, false, OutcomeChecksumMismatch
	}
	s.applied, s.checksum, s.ts = m.Seq, ck, b.TS
	// The delta goes out as sent, with the node's checksum.
	b.Symbol, b.Checksum = "", ck
	ev := Event{Channel: s.ch, Seq: m.Seq, Prev: s.emitted, Data: b, TS: b.TS, Views: s.viewUpdates(m.Seq, ck, b.TS)}
	s.emitted = m.Seq
	s.hist.push(ev)
	return ev, true, OutcomeApplied
}

// applySnapshot handles a feed snapshot b (sorted, without zero sizes or
// duplicate prices, as Decode leaves it) whose seq is new.
func (s *bookState) applySnapshot(seq uint64, b *proto.Book) (Event, bool, Outcome) {
	if s.synced && slices.Equal(s.bids, b.Bids) && slices.Equal(s.asks, b.Asks) {
		s.applied, s.ts = seq, b.TS
		return Event{}, false, OutcomeSnapshotUnchanged
	}
	s.bids = append(s.bids[:0], b.Bids...)
	s.asks = append(s.asks[:0], b.Asks...)
	s.synced = true
	s.applied, s.ts = seq, b.TS
	s.checksum = s.bookChecksum()
	// The snapshot's own slices become the event's data: the state keeps
	// its copy above and never touches b again.
	b.Symbol, b.Checksum = s.ch.Symbol, s.checksum
	ev := Event{Channel: s.ch, Snapshot: true, Seq: seq, Prev: s.emitted, Data: b, TS: b.TS}
	s.emitted = seq
	s.resetViews(seq)
	// A resume across a snapshot event must fall back to a snapshot.
	s.hist.clear()
	return ev, true, OutcomeSnapshot
}

// unsync marks the book as waiting for a snapshot. The levels stay until the
// snapshot replaces them; nobody reads them meanwhile.
func (s *bookState) unsync() {
	s.synced = false
	s.hist.clear()
}

// applyLevel applies one delta level to side, kept in cmp order: a zero size
// removes the level (a missing level is fine), any other size sets it.
func applyLevel(side *[]proto.Level, l proto.Level, cmp func(a, b proto.Level) int) {
	i, found := slices.BinarySearchFunc(*side, l, cmp)
	switch {
	case proto.IsZeroDecimal(l[1]):
		if found {
			*side = slices.Delete(*side, i, i+1)
		}
	case found:
		(*side)[i] = l
	default:
		*side = slices.Insert(*side, i, l)
	}
}

// bookChecksum returns proto.BookChecksum of the book, built in a buffer
// the state keeps so that it does not allocate.
func (s *bookState) bookChecksum() uint32 {
	var sum uint32
	sum, s.scratch = proto.BookChecksumBuf(s.scratch, s.bids, s.asks)
	return sum
}

func (s *bookState) Short(SnapshotOptions) bool { return false }

func (s *bookState) Snapshot(o SnapshotOptions, _ ...*Message) (uint64, any, bool) {
	if !s.synced {
		return 0, nil, false
	}
	bids, asks := s.bids, s.asks
	if o.Depth > 0 {
		bids, asks = top(bids, o.Depth), top(asks, o.Depth)
	}
	return s.applied, &proto.Book{
		Symbol:   s.ch.Symbol,
		Bids:     slices.Clone(bids),
		Asks:     slices.Clone(asks),
		Checksum: s.checksum,
		TS:       s.ts,
	}, true
}

func (s *bookState) Since(seq uint64) ([]Event, bool) {
	if !s.synced || s.hist.ambiguous(seq) {
		return nil, false
	}
	if seq > s.emitted && seq <= s.applied {
		// Only unchanged periodic snapshots came after the newest event:
		// a client holding seq holds the current book.
		return nil, true
	}
	return s.hist.since(s.ch, seq, s.emitted, false)
}

func (s *bookState) LastSeq() uint64 { return s.emitted }

func (s *bookState) Seen() uint64 { return s.seen }

// heartbeat handles a publisher heartbeat carrying the publisher's newest
// seq: one above the newest seen means deltas the book never had, so it
// waits for a snapshot, as after any gap.
func (s *bookState) heartbeat(seq uint64) (Event, bool, Outcome) {
	switch {
	case s.seen == 0:
		s.seen = seq
		return Event{}, false, OutcomeHeartbeat
	case seq <= s.seen:
		return Event{}, false, OutcomeHeartbeat
	}
	s.seen = seq
	if s.synced {
		s.unsync()
	}
	return Event{}, false, OutcomeGap
}

// Resyncing reports whether the book had a book and lost it (a gap, a
// checksum mismatch, a publisher restart) and waits for a snapshot.
func (s *bookState) Resyncing() bool { return !s.synced && s.applied > 0 }

func (s *bookState) Warm(msgs []*Message) (Event, bool) {
	if s.synced || len(msgs) == 0 || !msgs[0].Snapshot || msgs[0].Book() == nil {
		return Event{}, false
	}
	// Rebuild on a scratch state, so that a failure leaves this one as it
	// was.
	w := &bookState{ch: s.ch, hist: history{limit: s.hist.limit}}
	if _, _, out := w.applySnapshot(msgs[0].Seq, msgs[0].Book()); out != OutcomeSnapshot {
		return Event{}, false
	}
	w.seen = msgs[0].Seq
	for _, m := range msgs[1:] {
		if m.Book() == nil || m.Snapshot {
			return Event{}, false // Recent gives one snapshot, then updates
		}
		if _, _, out := w.Apply(m); out != OutcomeApplied {
			return Event{}, false
		}
	}
	if w.applied < s.seen {
		return Event{}, false // live updates after the stream's newest were dropped meanwhile
	}
	prev := s.emitted
	s.bids, s.asks, s.synced, s.checksum, s.ts = w.bids, w.asks, true, w.checksum, w.ts
	s.seen, s.applied, s.emitted = w.applied, w.applied, w.applied
	s.hist.clear() // a resume across this snapshot falls back to a snapshot
	s.resetViews(s.applied)
	_, data, _ := s.Snapshot(SnapshotOptions{})
	return Event{Channel: s.ch, Snapshot: true, Seq: s.applied, Prev: prev, Data: data, TS: s.ts}, true
}

func (s *bookState) HistoryLen() int { return s.hist.len() }
