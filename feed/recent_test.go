package feed

import (
	"slices"
	"testing"
	"time"

	"github.com/tickgate/tickgate/proto"
)

// tradeIDs are the ids of a trade snapshot's trades.
func tradeIDs(t *testing.T, data any) []int64 {
	t.Helper()
	ts := data.(*proto.TradeSnapshot)
	if ts.Symbol != "BTC-USD" {
		t.Fatalf("snapshot symbol %q", ts.Symbol)
	}
	var ids []int64
	for _, tr := range ts.Trades {
		ids = append(ids, tr.ID)
	}
	return ids
}

// A trade state keeps the newest proto.MaxRecent trades, whatever its
// history length, and serves up to o.Recent of them, oldest first, with
// the newest one's seq; it is short of trades when it holds fewer and not
// since the publisher's first; older trades from the stream complete it.
func TestTradeRecent(t *testing.T) {
	st := NewState(tradeBTC, -1) // no history for resume: recent trades all the same
	if _, _, ok := st.Snapshot(SnapshotOptions{Recent: 5}); ok {
		t.Fatal("a recent snapshot without trades")
	}
	if !st.Short(SnapshotOptions{Recent: 5}) || st.Short(SnapshotOptions{}) {
		t.Fatal("an empty state is short of recent trades, and of nothing else")
	}
	for seq := uint64(1); seq <= 3; seq++ {
		mustApply(t, st, tradeMsg(seq), true, OutcomeApplied)
	}
	if st.Short(SnapshotOptions{Recent: 5}) {
		t.Fatal("short of trades although it holds all since seq 1")
	}
	mustApply(t, st, tradeMsg(7), true, OutcomeGap)
	seq, data, ok := st.Snapshot(SnapshotOptions{Recent: 2})
	if !ok || seq != 7 || !slices.Equal(tradeIDs(t, data), []int64{3, 7}) {
		t.Fatalf("recent 2: seq %d %v", seq, data)
	}
	if _, _, ok := st.Snapshot(SnapshotOptions{}); ok {
		t.Fatal("a trade snapshot without recent")
	}
	for seq := uint64(8); seq < 8+proto.MaxRecent; seq++ {
		mustApply(t, st, tradeMsg(seq), true, OutcomeApplied)
	}
	seq, data, _ = st.Snapshot(SnapshotOptions{Recent: proto.MaxRecent})
	if ids := tradeIDs(t, data); len(ids) != proto.MaxRecent || ids[0] != 8 || seq != 7+proto.MaxRecent {
		t.Fatalf("recent %d: seq %d, %d trades from %d", proto.MaxRecent, seq, len(ids), ids[0])
	}

	// A node that joined late holds trades from 50 on; the stream has more.
	late := NewState(tradeBTC, 0)
	for seq := uint64(50); seq <= 52; seq++ {
		mustApply(t, late, tradeMsg(seq), true, OutcomeApplied)
	}
	o := SnapshotOptions{Recent: 5}
	if !late.Short(o) {
		t.Fatal("not short of trades although it holds 3 of 5, from seq 50")
	}
	var older []*Message
	for seq := uint64(45); seq <= 51; seq++ { // overlaps what it holds
		older = append(older, tradeMsg(seq))
	}
	seq, data, ok = late.Snapshot(o, older...)
	if !ok || seq != 52 || !slices.Equal(tradeIDs(t, data), []int64{48, 49, 50, 51, 52}) {
		t.Fatalf("completed: seq %d %v", seq, tradeIDs(t, data))
	}
}

// History.Last reads the newest n trades from the stream, or from the
// oldest it holds when n reach further back.
func TestHistoryLast(t *testing.T) {
	_, h, publish := historyEnv(t, StreamConfig{MaxMsgsPerSubject: 100})
	ctx := ctxTimeout(t, 30*time.Second)
	if _, err := h.Last(ctx, tradeBTC, 10); err == nil {
		t.Fatal("Last of an empty channel")
	}
	for seq := uint64(1); seq <= 150; seq++ {
		publish(tradeBTC, trade(seq))
	}
	publish(tradeBTC, proto.FeedMessage{Seq: 150, Type: proto.FeedHeartbeat}) // the stream keeps 52..150 and it
	msgs, err := h.Last(ctx, tradeBTC, 10)
	if got := seqsOf(msgs); err != nil || len(got) != 10 || got[0] != 141 || got[9] != 150 {
		t.Fatalf("Last 10 = %v, %v", got, err)
	}
	msgs, err = h.Last(ctx, tradeBTC, 1000)
	if got := seqsOf(msgs); err != nil || len(got) != 99 || got[0] != 52 {
		t.Fatalf("Last 1000 = %d from %v, %v", len(got), got[:1], err)
	}
}
