package feed

import (
	"testing"

	"github.com/tickgate/tickgate/proto"
)

// L builds a level.
func L(price, size string) proto.Level { return proto.Level{price, size} }

// Ls builds a non-nil list of levels.
func Ls(ls ...proto.Level) []proto.Level {
	if ls == nil {
		return []proto.Level{}
	}
	return ls
}

var (
	tickerBTC = proto.Channel{Kind: proto.KindTicker, Symbol: "BTC-USD"}
	bookBTC   = proto.Channel{Kind: proto.KindBook, Symbol: "BTC-USD"}
	tradeBTC  = proto.Channel{Kind: proto.KindTrade, Symbol: "BTC-USD"}
)

func tickerMsg(seq uint64, bid string) *Message {
	return &Message{Seq: seq, Data: &proto.Ticker{
		Symbol: "BTC-USD", Bid: bid, BidSize: "1", Ask: "64001", AskSize: "1",
		Last: "64000.5", Volume: "10", TS: int64(seq) * 1000,
	}}
}

func tradeMsg(seq uint64) *Message {
	return &Message{Seq: seq, Data: &proto.Trade{
		Symbol: "BTC-USD", ID: int64(seq), Price: "64000.5", Size: "0.1",
		Side: proto.SideBuy, TS: int64(seq) * 1000,
	}}
}

func bookMsg(seq uint64, snapshot bool, bids, asks []proto.Level, checksum uint32) *Message {
	return &Message{Seq: seq, Snapshot: snapshot, Data: &proto.Book{
		Bids: bids, Asks: asks, Checksum: checksum, TS: int64(seq) * 1000,
	}}
}

// seqs returns the Seq and Prev of each event, flattened.
func seqs(evs []Event) [][2]uint64 {
	out := make([][2]uint64, 0, len(evs))
	for _, e := range evs {
		out = append(out, [2]uint64{e.Seq, e.Prev})
	}
	return out
}

// mustApply applies m and checks the emit flag and outcome.
func mustApply(t *testing.T, st State, m *Message, wantEmit bool, wantOut Outcome) Event {
	t.Helper()
	ev, emit, out := st.Apply(m)
	if emit != wantEmit || out != wantOut {
		t.Fatalf("Apply(seq %d): emit=%v out=%v, want emit=%v out=%v", m.Seq, emit, out, wantEmit, wantOut)
	}
	return ev
}
