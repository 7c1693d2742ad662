package fleet

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/tickgate/tickgate/client"
	"github.com/tickgate/tickgate/proto"
)

// Verdict is the fleet's account after the feed stopped.
type Verdict struct {
	Trades       TradeTotals
	TradeFaults  []string // members whose trades are not all there, in order, once (at most 20 listed)
	Books        int      // book subscriptions equal to a fresh subscriber's book
	BookFaults   []string
	Tickers      int // ticker subscriptions equal to the last published ticker
	TickerFaults []string
}

// TradeTotals add up the members' TradeChecks.
type TradeTotals struct {
	Subscriptions int
	Expected      int
	Received      int
	Lost          int
	Dups          int
	Replayed      int // received through a resume after a reconnect
}

// OK reports no fault at all.
func (v *Verdict) OK() bool {
	return len(v.TradeFaults) == 0 && len(v.BookFaults) == 0 && len(v.TickerFaults) == 0
}

func (v *Verdict) fault(list *[]string, format string, a ...any) {
	if len(*list) < 20 {
		*list = append(*list, fmt.Sprintf(format, a...))
	} else if len(*list) == 20 {
		*list = append(*list, "…")
	}
}

// Verify compares every member with what the feed published, once the
// feed has stopped: every trade channel holds every trade from its first
// one on, in order, none twice; every book equals fresh's book of the
// channel (a client that subscribed after the feed stopped, holding the
// last published seq), levels and checksum; every ticker equals the last published ticker. It waits
// up to ctx's end for members to converge.
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
	// Wait for every member's state to reach the last seq, then judge.
	converged := func(m *Member) bool {
		for _, ch := range m.channels {
			last := fd.LastSeq(ch)
			var seq uint64
			var ok bool
			switch {
			case strings.HasPrefix(ch, proto.KindBook.String()+"."):
				// A periodic feed snapshot equal to the node's book takes a
				// seq that no subscriber of the node sees (docs/protocol.md
				// §5.3): a book has converged when it equals the fresh
				// subscriber's, whatever its seq.
				b, _, live := m.c.Book(ch)
				if !live || !b.Equal(want[ch]) {
					return false
				}
				continue
			case strings.HasPrefix(ch, proto.KindTicker.String()+"."):
				_, seq, ok = m.c.Ticker(ch)
			default:
				m.mu.Lock()
				l := m.trades[ch]
				ok = l != nil
				if ok {
					seq = l.last
				}
				m.mu.Unlock()
			}
			if !ok || seq != last {
				return false
			}
		}
		return true
	}
	for _, m := range f.members {
		for !converged(m) && ctx.Err() == nil {
			time.Sleep(20 * time.Millisecond)
		}
	}
	v := &Verdict{}
	for _, m := range f.members {
		for _, tc := range m.CheckTrades(fd) {
			t := &v.Trades
			t.Subscriptions++
			t.Expected += tc.Expected
			t.Received += tc.Received
			t.Lost += tc.Lost
			t.Dups += tc.Dups
			t.Replayed += tc.Replayed
			if !tc.OK() || tc.Received == 0 {
				v.fault(&v.TradeFaults, "member %d (%s) %s: expected %d received %d lost %d dups %d bad ids %d (published up to seq %d)",
					m.Index, m.Group, tc.Channel, tc.Expected, tc.Received, tc.Lost, tc.Dups, tc.BadIDs, tc.Published)
			}
		}
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
			}
		}
	}
	return v, nil
}
