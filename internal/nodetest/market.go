package nodetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tickgate/tickgate/internal/booktest"
	"github.com/tickgate/tickgate/proto"
)

// Market publishes one symbol's book, trades and ticker: every tick a
// book delta (a full snapshot every SnapshotEvery book messages, so that a
// node that joins later, or resyncs, gets the book), a trade and a ticker.
type Market struct {
	env    *Env
	symbol string
	// SnapshotEvery is how many book messages the market sends per
	// snapshot (each a fresh random book). Zero: DefaultSnapshotEvery.
	SnapshotEvery uint64

	mu      sync.Mutex
	book    *booktest.Feed // Guarded by mu.
	trade   uint64         // Guarded by mu: the last trade seq (= trade id)
	ticker  uint64         // Guarded by mu: the last ticker seq
	tickerD *proto.Ticker  // Guarded by mu: the last ticker

	stop chan struct{}
	done chan struct{}
}

// DefaultSnapshotEvery is how many book messages a market sends per
// snapshot unless told otherwise.
const DefaultSnapshotEvery = 20

// NewMarket returns a market for symbol that has published nothing yet.
func (e *Env) NewMarket(symbol string, seed uint64) *Market {
	return &Market{env: e, symbol: symbol, book: booktest.NewFeed(symbol, seed)}
}

// Channels returns the market's three channels.
func (m *Market) Channels() []string {
	return []string{"book." + m.symbol, "trade." + m.symbol, "ticker." + m.symbol}
}

// Step publishes one message of each kind.
func (m *Market) Step(t testing.TB) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now().UnixNano()
	var bm proto.FeedMessage
	every := m.SnapshotEvery
	if every == 0 {
		every = DefaultSnapshotEvery
	}
	if m.book.Seq()%every == 0 {
		bm = m.book.Snapshot(now)
	} else {
		bm = m.book.Update(now)
	}
	m.env.Publish(t, proto.Channel{Kind: proto.KindBook, Symbol: m.symbol}, bm)
	m.trade++
	m.env.Publish(t, proto.Channel{Kind: proto.KindTrade, Symbol: m.symbol}, proto.FeedMessage{Seq: m.trade, Type: proto.FeedUpdate,
		Data: &proto.Trade{Symbol: m.symbol, ID: int64(m.trade), Price: fmt.Sprintf("100.%02d", m.trade%100), Size: "0.5", Side: proto.SideBuy, TS: now}})
	m.ticker++
	m.tickerD = &proto.Ticker{Symbol: m.symbol, Bid: fmt.Sprintf("99.%02d", m.ticker%100), BidSize: "1", Ask: "101", AskSize: "2",
		Last: "100", Volume: fmt.Sprint(m.ticker), TS: now}
	m.env.Publish(t, proto.Channel{Kind: proto.KindTicker, Symbol: m.symbol}, proto.FeedMessage{Seq: m.ticker, Type: proto.FeedUpdate, Data: m.tickerD})
}

// Run publishes a step every tick until Stop.
func (m *Market) Run(t testing.TB, tick time.Duration) {
	m.stop, m.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(m.done)
		tk := time.NewTicker(tick)
		defer tk.Stop()
		for {
			select {
			case <-m.stop:
				return
			case <-tk.C:
				m.Step(t)
			}
		}
	}()
	t.Cleanup(m.Stop)
}

// Stop ends Run and waits until NATS has everything published.
func (m *Market) Stop() {
	if m.stop == nil {
		return
	}
	select {
	case <-m.stop:
		return
	default:
	}
	close(m.stop)
	<-m.done
}

// Book returns the publisher's book and the seq of its last message.
func (m *Market) Book() (bids, asks []proto.Level, seq uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	bids, asks = m.book.Book().Levels()
	return bids, asks, m.book.Seq()
}

// Seqs returns the last seq of each channel: book, trade, ticker.
func (m *Market) Seqs() (book, trade, ticker uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.book.Seq(), m.trade, m.ticker
}
