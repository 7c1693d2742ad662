package fleet

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/tickgate/tickgate/client"
	"github.com/tickgate/tickgate/proto"
)

// convergeWithin bounds the wait for books and tickers after the feed
// stopped.
const convergeWithin = 6 * time.Second

// Verdict is the fleet's account after the feed stopped.
type Verdict struct {
	Trades       TradeTotals
	TradeFaults  []string // members whose trades are not all there, in order, once (at most 20 listed)
	Books        int      // book subscriptions equal to a fresh subscriber's book
	BookFaults   []string
	Tickers      int // ticker subscriptions equal to the last published ticker
	TickerFaults []string
	// Candles: candle subscriptions at the last published seq whose every
	// bar equals the newest revision published of it.
	Candles      int
	CandleFaults []string
	Stuck        string // the first member whose books and tickers did not converge in time, and how
}

// TradeTotals add up the members' TradeChecks.
type TradeTotals struct {
	Subscriptions int
	Expected      int
	Received      int
	Lost          int
	Dups          int
	Replayed      int // received through a resume after a reconnect
	// NoneHeld counts trade subscriptions that received no trade at all:
	// one that lost its node before its first trade has no seq to resume
	// from (docs/protocol.md: the first trade has prev 0), so what was
	// published meanwhile cannot be named. Not counted as lost.
	NoneHeld int
}

// OK reports no fault at all.
func (v *Verdict) OK() bool {
	return len(v.TradeFaults) == 0 && len(v.BookFaults) == 0 && len(v.TickerFaults) == 0 && len(v.CandleFaults) == 0
}

func (v *Verdict) fault(list *[]string, format string, a ...any) {
	if len(*list) < 20 {
		*list = append(*list, fmt.Sprintf(format, a...))
	} else if len(*list) == 20 {
		*list = append(*list, "…")
	}
}

// describe tells a member's book and ticker channels: state, seq, and
// whether the book equals want's.
func (m *Member) describe(fd *Feed, want map[string]*client.Book) string {
	var b strings.Builder
	fmt.Fprintf(&b, "member %d (%s, node %s, %d sessions, ended %q, gaps %q, errors %q):", m.Index, m.Group, m.Node(), m.Sessions(), m.Downs(5), m.GapNotes(), lastN(m.Errors(), 5))
	for _, ch := range m.channels {
		st, _ := m.c.State(ch)
		fmt.Fprintf(&b, " %s %v published %d", ch, st, fd.LastSeq(ch))
		switch {
		case strings.HasPrefix(ch, proto.KindBook.String()+"."):
			bk, seq, ok := m.c.Book(ch)
			fmt.Fprintf(&b, " held %d live %v equal %v;", seq, ok, ok && bk.Equal(want[ch]))
		case strings.HasPrefix(ch, proto.KindTicker.String()+"."):
			_, seq, ok := m.c.Ticker(ch)
			fmt.Fprintf(&b, " held %d live %v;", seq, ok)
		case strings.HasPrefix(ch, proto.KindCandle.String()+"."):
			bars, seq, ok := m.c.Candles(ch)
			fmt.Fprintf(&b, " held %d live %v bars %d wrong %q;", seq, ok, len(bars), wrongBar(fd, ch, bars))
		}
	}
	return b.String()
}

// lastN is the last n of list.
func lastN(list []string, n int) []string { return list[max(len(list)-n, 0):] }

// wrongBar describes the first of bars that is not the newest revision
// the feed published of its start, "" when every one is.
func wrongBar(fd *Feed, ch string, bars []proto.Candle) string {
	for _, b := range bars {
		if pub, ok := fd.Bar(ch, b.Start); !ok || pub != b {
			return fmt.Sprintf("bar %d close %s closed %v, published close %s closed %v (found %v)", b.Start, b.Close, b.Closed, pub.Close, pub.Closed, ok)
		}
	}
	return ""
}

// Verify compares every member with what the feed published, once the
// feed has stopped: every trade channel holds every trade from its first
// one on, in order, none twice; every book equals fresh's book of the
// channel (a client that subscribed after the feed stopped, holding the
// last published seq), levels and checksum; every ticker equals the last
// published ticker; every candle channel is at the last published seq and
// each bar it holds is the newest revision published of it. It waits up
// to ctx's end for members to converge.
func (f *Fleet) Verify(ctx context.Context, fd *Feed, fresh *client.Client) (*Verdict, error) {
	books := map[string]bool{}
	for _, m := range f.members {
		for _, ch := range m.channels {
			if strings.HasPrefix(ch, proto.KindBook.String()+".") {
				books[ch] = true
			}
		}
	}
	var bookList []string
	for ch := range books {
		bookList = append(bookList, ch)
	}
	want := map[string]*client.Book{}
	if len(bookList) > 0 {
		if _, err := fresh.Subscribe(ctx, bookList); err != nil {
			return nil, fmt.Errorf("fleet: the fresh subscriber: %w", err)
		}
		for _, ch := range bookList {
			for {
				b, seq, ok := fresh.Book(ch)
				if ok && seq == fd.LastSeq(ch) {
					want[ch] = b
					break
				}
				if ctx.Err() != nil {
					return nil, fmt.Errorf("fleet: the fresh subscriber has no book %s at seq %d (it has %d)", ch, fd.LastSeq(ch), seq)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
	// Books and tickers first: once the feed is silent for the nodes'
	// --stale-after, they turn stale. Wait for each member's to converge
	// on the last published state, then judge; trades after.
	converged := func(m *Member) bool {
		for _, ch := range m.channels {
			switch {
			case strings.HasPrefix(ch, proto.KindBook.String()+"."):
				// A periodic feed snapshot equal to the node's book takes a
				// seq that no subscriber of the node sees (docs/protocol.md
				// §5.3): a book has converged when it equals the fresh
				// subscriber's, whatever its seq.
				if b, _, live := m.c.Book(ch); !live || !b.Equal(want[ch]) {
					return false
				}
			case strings.HasPrefix(ch, proto.KindTicker.String()+"."):
				if _, seq, live := m.c.Ticker(ch); !live || seq != fd.LastSeq(ch) {
					return false
				}
			case strings.HasPrefix(ch, proto.KindCandle.String()+"."):
				if bars, seq, live := m.c.Candles(ch); !live || seq != fd.LastSeq(ch) || len(bars) == 0 || wrongBar(fd, ch, bars) != "" {
					return false
				}
			}
		}
		return true
	}
	// Bounded well within the nodes' default --stale-after (10 s): a
	// member that never converges must not make the others go stale.
	v := &Verdict{}
	bctx, cancel := context.WithTimeout(ctx, convergeWithin)
	defer cancel()
	for _, m := range f.members {
		for !converged(m) && bctx.Err() == nil {
			time.Sleep(20 * time.Millisecond)
		}
		if v.Stuck == "" && !converged(m) {
			v.Stuck = m.describe(fd, want)
		}
	}
	for _, m := range f.members {
		for _, ch := range m.channels {
			switch {
			case strings.HasPrefix(ch, proto.KindBook.String()+"."):
				b, seq, ok := m.c.Book(ch)
				switch {
				case !ok:
					st, _ := m.c.State(ch)
					v.fault(&v.BookFaults, "member %d %s: no live book (state %v, published seq %d)", m.Index, ch, st, fd.LastSeq(ch))
				case !b.Equal(want[ch]) || b.Checksum() != want[ch].Checksum():
					v.fault(&v.BookFaults, "member %d %s: book at seq %d checksum %d, fresh subscriber's at seq %d checksum %d",
						m.Index, ch, seq, b.Checksum(), fd.LastSeq(ch), want[ch].Checksum())
				default:
					v.Books++
				}
			case strings.HasPrefix(ch, proto.KindTicker.String()+"."):
				t, seq, ok := m.c.Ticker(ch)
				pub, _ := fd.Ticker(ch)
				switch {
				case !ok:
					st, _ := m.c.State(ch)
					v.fault(&v.TickerFaults, "member %d %s: no live ticker (state %v, published seq %d)", m.Index, ch, st, fd.LastSeq(ch))
				case seq != fd.LastSeq(ch) || t != pub:
					v.fault(&v.TickerFaults, "member %d %s: ticker seq %d last %q, published seq %d last %q",
						m.Index, ch, seq, t.Last, fd.LastSeq(ch), pub.Last)
				default:
					v.Tickers++
				}
			case strings.HasPrefix(ch, proto.KindCandle.String()+"."):
				bars, seq, ok := m.c.Candles(ch)
				switch {
				case !ok:
					st, _ := m.c.State(ch)
					v.fault(&v.CandleFaults, "member %d %s: no live bars (state %v, published seq %d)", m.Index, ch, st, fd.LastSeq(ch))
				case seq != fd.LastSeq(ch) || len(bars) == 0:
					v.fault(&v.CandleFaults, "member %d %s: %d bars at seq %d, published seq %d", m.Index, ch, len(bars), seq, fd.LastSeq(ch))
				case wrongBar(fd, ch, bars) != "":
					v.fault(&v.CandleFaults, "member %d %s: %s", m.Index, ch, wrongBar(fd, ch, bars))
				default:
					v.Candles++
				}
			}
		}
	}
	// Trades: wait until each member holds the last published trade of
	// each of its trade channels (or ctx ends), then count.
	for _, m := range f.members {
		for ctx.Err() == nil && !m.tradesDone(fd) {
			time.Sleep(20 * time.Millisecond)
		}
		for _, tc := range m.CheckTrades(fd) {
			t := &v.Trades
			t.Subscriptions++
			if tc.Received == 0 && tc.Dups == 0 {
				// It never held a trade, so it had no seq to resume from
				// (a trade channel has no snapshot; Recent gives one).
				t.NoneHeld++
				continue
			}
			t.Expected += tc.Expected
			t.Received += tc.Received
			t.Lost += tc.Lost
			t.Dups += tc.Dups
			t.Replayed += tc.Replayed
			if !tc.OK() {
				v.fault(&v.TradeFaults, "member %d (%s, node %s, %d sessions) %s: expected %d received %d lost %d dups %d bad ids %d (published up to seq %d); gaps %q",
					m.Index, m.Group, m.Node(), m.Sessions(), tc.Channel, tc.Expected, tc.Received, tc.Lost, tc.Dups, tc.BadIDs, tc.Published, m.GapNotes())
			}
		}
	}
	return v, nil
}
