package proto

import "fmt"

// Kind is a channel kind. Everything that differs between kinds on the
// wire is declared once, in its KindSpec in the kinds table below; every
// other package reads the declaration (Kind.Spec) rather than comparing
// kinds. How to add a kind: docs/architecture.md, "Adding a kind".
type Kind uint8

// The channel kinds. The zero Kind is invalid.
const (
	KindTicker Kind = iota + 1 // latest state: replaced when pending
	KindBook                   // L2 book: pending deltas merge level by level
	KindTrade                  // events: never dropped or merged
	KindCandle                 // OHLCV bars per interval (contract 1.1): closed bars never dropped, the open bar revised
)

// NumKinds is how many kinds there are; a Kind indexes an array of
// NumKinds+1 entries.
const NumKinds = 4

// Pending is a kind's rule for the updates that wait while a connection's
// writer is busy (docs/protocol.md §5.2, "n"). The gateway implements each
// rule once; a kind picks one.
type Pending uint8

// The pending rules.
const (
	// PendingReplace: the newest update replaces the one pending; n counts
	// the updates folded. The data of every update is the whole state.
	PendingReplace Pending = iota + 1
	// PendingMerge: pending book deltas fold level by level into one, a
	// later level for a price replacing the earlier one.
	PendingMerge
	// PendingKeep: every update is kept, in order, never dropped or
	// merged; what is pending is bounded, and a connection that overflows
	// the bound is evicted (4008).
	PendingKeep
	// PendingRevise: as PendingKeep, except that a pending update that a
	// newer one revises (Revisable: a candle's open bar, by a newer
	// message for the same start) is replaced by it; n counts both.
	PendingRevise
)

// Revisable is the data of a PendingRevise kind.
type Revisable interface {
	Data
	// Revises reports whether this data replaces prev while both wait
	// for a busy connection: prev is still open (not final) and is the
	// same item.
	Revises(prev any) bool
}

// Coalesces reports whether updates pending under the rule may fold into
// one, so that a subscription's throttle can hold them back without
// piling them up.
func (p Pending) Coalesces() bool { return p == PendingReplace || p == PendingMerge }

// KindSpec is one kind's declaration on the wire.
type KindSpec struct {
	// Name is the kind's wire name, the first token of its channels.
	Name string
	// Params, when not empty, are the values allowed for the token between
	// the kind and the symbol: such a kind's channels are
	// <kind>.<param>.<symbol>; without, <kind>.<symbol>.
	Params []string
	// Data returns a new value of the kind's data shape, the type a feed
	// message's data decodes into.
	Data func() Data
	// State: the channel carries state, and the first message after a
	// subscribe is a snapshot of it; a resume the node cannot serve falls
	// back to a fresh snapshot. Without, the channel is a stream of
	// events: no snapshot, and a resume the node cannot serve is answered
	// with history_unavailable.
	State bool
	// WholeState: every update's data is the channel's whole state, so an
	// update doubles as a snapshot (ticker).
	WholeState bool
	// Events: every feed message is an event each subscriber must get, so
	// feed seqs the node never had are filled from the history stream
	// where it can and reported to subscribers (a gap message) where it
	// cannot.
	Events bool
	// Pending is how updates wait for a busy connection.
	Pending Pending
	// Options are the subscribe options of contract 1.1 that shape the
	// kind's snapshot and updates (OptionDepth, OptionRecent, OptionBars);
	// the others are ignored on its channels.
	Options []string
}

// Subscribe options of contract 1.1 (Command.Depth, Recent, Bars), as
// KindSpec.Options names them.
const (
	OptionDepth  = "depth"
	OptionRecent = "recent"
	OptionBars   = "bars"
)

// Takes reports whether the kind's channels read the subscribe option
// named opt.
func (s KindSpec) Takes(opt string) bool {
	for _, o := range s.Options {
		if o == opt {
			return true
		}
	}
	return false
}

// kinds declares every kind, indexed by Kind.
var kinds = [NumKinds + 1]KindSpec{
	KindTicker: {
		Name: "ticker", Data: func() Data { return new(Ticker) },
		State: true, WholeState: true, Pending: PendingReplace,
	},
	KindBook: {
		Name: "book", Data: func() Data { return new(Book) },
		State: true, Pending: PendingMerge, Options: []string{OptionDepth},
	},
	KindTrade: {
		Name: "trade", Data: func() Data { return new(Trade) },
		Events: true, Pending: PendingKeep, Options: []string{OptionRecent},
	},
	KindCandle: {
		Name: "candle", Params: CandleIntervals(), Data: func() Data { return new(Candle) },
		State: true, Events: true, Pending: PendingRevise, Options: []string{OptionBars},
	},
}

// Kinds lists every valid kind, in wire order.
func Kinds() []Kind {
	out := make([]Kind, 0, NumKinds)
	for k := Kind(1); k <= NumKinds; k++ {
		out = append(out, k)
	}
	return out
}

// Valid reports whether k is a declared kind.
func (k Kind) Valid() bool { return k >= 1 && k <= NumKinds }

// Spec returns k's declaration; the zero KindSpec for an invalid kind.
func (k Kind) Spec() KindSpec {
	if !k.Valid() {
		return KindSpec{}
	}
	return kinds[k]
}

// String returns the kind's wire name ("ticker", "book", "trade", "candle").
func (k Kind) String() string {
	if !k.Valid() {
		return fmt.Sprintf("kind(%d)", uint8(k))
	}
	return kinds[k].Name
}

// HasSnapshot reports whether the kind carries state that a subscriber gets
// as a snapshot first (ticker, book, candle) rather than a stream of
// events (trade).
func (k Kind) HasSnapshot() bool { return k.Spec().State }

// ParseKind returns the kind named s.
func ParseKind(s string) (Kind, error) {
	for k := Kind(1); k <= NumKinds; k++ {
		if kinds[k].Name == s {
			return k, nil
		}
	}
	return 0, fmt.Errorf("%w: unknown kind %q", ErrBadChannel, truncate(s, 16))
}
