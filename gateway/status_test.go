package gateway

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/tickgate/tickgate/codec"
	"github.com/tickgate/tickgate/feed"
	"github.com/tickgate/tickgate/internal/booktest"
	"github.com/tickgate/tickgate/proto"
)

// fakeClock is a settable clock for hub tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// took is what c's writer would take now, each message summarised as
// "type seq/prev" or "status state reason" or "gap from-to".
func took(t *testing.T, c *conn) []string {
	t.Helper()
	var out []string
	for _, f := range queued(c) {
		var w wire
		if err := codec.DecodeMessage(c.codec, f, &w); err != nil {
			t.Fatal(err)
		}
		switch w.Type {
		case proto.TypeStatus:
			out = append(out, strings.TrimSpace("status "+w.State+" "+w.Reason))
		case proto.TypeGap:
			out = append(out, fmt.Sprintf("gap %d-%d", w.From, w.To))
		case proto.TypeUpdate:
			out = append(out, fmt.Sprintf("update %d/%d", w.Seq, *w.Prev))
		default:
			out = append(out, fmt.Sprintf("%s %d", w.Type, w.Seq))
		}
	}
	return out
}

func (m *Metrics) channelCount(st chanState) float64 {
	var out dto.Metric
	if err := m.channelsByState[st].Write(&out); err != nil {
		return -1
	}
	return out.GetGauge().GetValue()
}

func heartbeat(seq uint64) *feed.Message { return &feed.Message{Seq: seq, Heartbeat: true} }

func tradeMsg(seq uint64) *feed.Message {
	return &feed.Message{Seq: seq, Data: &proto.Trade{Symbol: "BTC-USD", ID: int64(seq), Price: "1", Size: "1", Side: "buy", TS: 1}}
}

// The channel status rules of contract 1.1, on the hub with a fake clock:
// each case drives one channel and lists what one subscriber's writer
// takes after each step.
func TestChannelStatus(t *testing.T) {
	tickerCh := proto.Channel{Kind: proto.KindTicker, Symbol: "BTC-USD"}
	tradeCh := proto.Channel{Kind: proto.KindTrade, Symbol: "BTC-USD"}
	bookCh := proto.Channel{Kind: proto.KindBook, Symbol: "BTC-USD"}
	bf := booktest.NewFeed("BTC-USD", 5)
	bookMsg := func(m proto.FeedMessage) *feed.Message {
		b := m.Data.(*proto.Book)
		return &feed.Message{Seq: m.Seq, Snapshot: m.Type == proto.FeedSnapshot, Data: b}
	}
	snap1, upd2, upd4, snap5 := bookMsg(bf.Snapshot(1)), bookMsg(bf.Update(2)), (*feed.Message)(nil), (*feed.Message)(nil)
	bf.Update(3) // never arrives
	upd4 = bookMsg(bf.Update(4))
	snap5 = bookMsg(bf.Snapshot(5))

	type step struct {
		do   string        // "feed", "wait", "check", "lost"
		msg  *feed.Message // with feed
		wait time.Duration // with wait
		pend bool          // the writer does not run after the step
		want []string      // what the writer takes after the step
	}
	tests := map[string]struct {
		ch    proto.Channel
		steps []step
	}{
		"silent, then back": {tickerCh, []step{
			{do: "feed", msg: tickerMsg(1), want: []string{"snapshot 1"}},
			{do: "wait", wait: 9 * time.Second},
			{do: "check", want: nil},
			{do: "wait", wait: 2 * time.Second},
			{do: "check", want: []string{"status stale feed_silent"}},
			{do: "check", want: nil}, // only on a change
			{do: "feed", msg: tickerMsg(2), want: []string{"update 2/1", "status live"}},
		}},
		"publisher heartbeats keep a quiet channel live": {tickerCh, []step{
			{do: "feed", msg: tickerMsg(1), want: []string{"snapshot 1"}},
			{do: "wait", wait: 8 * time.Second},
			{do: "feed", msg: heartbeat(1), want: nil},
			{do: "wait", wait: 8 * time.Second},
			{do: "check", want: nil},
		}},
		"the last state wins while pending": {tickerCh, []step{
			{do: "feed", msg: tickerMsg(1), want: []string{"snapshot 1"}},
			{do: "lost", pend: true},
			{do: "feed", msg: tickerMsg(2), want: []string{"update 2/1"}}, // stale, then live again before the writer ran
		}},
		"NATS lost, then data again": {tradeCh, []step{
			{do: "feed", msg: tradeMsg(1), want: []string{"update 1/0"}},
			{do: "lost", want: []string{"status stale feed_disconnected"}},
			{do: "wait", wait: time.Minute},
			{do: "check", want: nil}, // disconnected wins over silent
			{do: "feed", msg: tradeMsg(2), want: []string{"update 2/1", "status live"}},
		}},
		"a trade heartbeat ahead is a gap": {tradeCh, []step{
			{do: "feed", msg: tradeMsg(1), want: []string{"update 1/0"}},
			{do: "feed", msg: heartbeat(1), want: nil},
			{do: "feed", msg: heartbeat(4), want: []string{"gap 2-4"}},
			{do: "feed", msg: tradeMsg(5), want: []string{"update 5/1"}},
		}},
		"a book gap: resyncing until the snapshot": {bookCh, []step{
			{do: "feed", msg: snap1, want: []string{"snapshot 1"}},
			{do: "feed", msg: upd2, want: []string{"update 2/1"}},
			{do: "feed", msg: upd4, want: []string{"status resyncing feed_gap"}},
			{do: "feed", msg: snap5, want: []string{"snapshot 5", "status live"}},
		}},
		"a book heartbeat ahead: resyncing": {bookCh, []step{
			{do: "feed", msg: snap1, want: []string{"snapshot 1"}},
			{do: "feed", msg: heartbeat(3), want: []string{"status resyncing feed_gap"}},
		}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			clock := &fakeClock{t: time.Unix(1000, 0)}
			s := hubFixture(t, func(c *Config) { c.Now = clock.now })
			c := s.bareConn(codec.JSON())
			s.joinFor(t, c, tc.ch, joinOptions{snapshot: true})
			took(t, c)
			for i, st := range tc.steps {
				switch st.do {
				case "feed":
					s.hub.onFeed(tc.ch, st.msg)
				case "wait":
					clock.add(st.wait)
				case "check":
					s.hub.check(false)
				case "lost":
					s.hub.check(true)
				}
				if st.do == "wait" || st.pend {
					continue
				}
				if got := took(t, c); !slices.Equal(got, st.want) {
					t.Fatalf("step %d (%s): writer took %q, want %q", i, st.do, got, st.want)
				}
			}
		})
	}
}

// A joiner is told a channel that is not live, after its ack (the
// subscription is gated until then), and tickgate_channels counts the
// channels by state.
func TestChannelStatusForJoinersAndCounted(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1000, 0)}
	s := hubFixture(t, func(c *Config) { c.Now = clock.now })
	ch := proto.Channel{Kind: proto.KindTicker, Symbol: "BTC-USD"}
	first := s.bareConn(codec.JSON())
	s.joinFor(t, first, ch, joinOptions{snapshot: true})
	s.hub.onFeed(ch, tickerMsg(1))
	other := proto.Channel{Kind: proto.KindTrade, Symbol: "ETH-USD"}
	s.joinFor(t, s.bareConn(codec.JSON()), other, joinOptions{})
	s.hub.onFeed(other, tradeMsg(1))
	if live := s.metrics.channelCount(stateLive); live != 2 {
		t.Fatalf("tickgate_channels{state=live} = %v, want 2", live)
	}
	s.hub.check(true)
	if stale, live := s.metrics.channelCount(stateStale), s.metrics.channelCount(stateLive); stale != 2 || live != 0 {
		t.Fatalf("after the loss of NATS: stale %v, live %v; want 2, 0", stale, live)
	}

	c := s.bareConn(codec.Msgpack())
	e, hold, err := s.hub.acquire(ch)
	if err != nil {
		t.Fatal(err)
	}
	sub := c.newSubscription(e, hold)
	sub.fillHead(s.codecs, e.join(s.hub, sub, joinOptions{snapshot: true}).plan)
	if got := took(t, c); len(got) != 0 {
		t.Fatalf("a gated joiner's writer took %q before its ack", got)
	}
	c.reply(proto.Subscribed{Type: proto.TypeSubscribed, Channels: []string{ch.String()}})
	sub.ungate(clock.now)
	if got := took(t, c); !slices.Equal(got, []string{"subscribed 0", "snapshot 1", "status stale feed_disconnected"}) {
		t.Fatalf("joiner took %q, want the ack, the snapshot, then stale", got)
	}
	s.hub.onFeed(ch, tickerMsg(2))
	if stale, live := s.metrics.channelCount(stateStale), s.metrics.channelCount(stateLive); stale != 1 || live != 1 {
		t.Fatalf("after data on one: stale %v, live %v; want 1, 1", stale, live)
	}
}

// A re-subscribe of a channel on the same connection is told the channel's
// status again after its ack, as a new joiner is: its client forgets what
// it was told with the new ack (the Go client and the browser module both
// clear a channel's status on every ack). Before, a stale channel
// re-subscribed came back with the ack and a snapshot only, and the
// client showed it live while the node had no feed.
func TestChannelStatusToldAgainAfterAResubscribe(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1000, 0)}
	s := hubFixture(t, func(c *Config) { c.Now = clock.now })
	ch := proto.Channel{Kind: proto.KindTicker, Symbol: "BTC-USD"}
	c := s.bareConn(codec.JSON())
	sub := s.joinFor(t, c, ch, joinOptions{snapshot: true})
	s.hub.onFeed(ch, tickerMsg(1))
	took(t, c)
	s.hub.check(true)
	if got := took(t, c); !slices.Equal(got, []string{"status stale feed_disconnected"}) {
		t.Fatalf("took %q", got)
	}
	sub.fillHead(s.codecs, sub.entry.join(s.hub, sub, joinOptions{snapshot: true}).plan)
	c.reply(proto.Subscribed{Type: proto.TypeSubscribed, Channels: []string{ch.String()}})
	sub.ungate(clock.now)
	if got := took(t, c); !slices.Equal(got, []string{"subscribed 0", "snapshot 1", "status stale feed_disconnected"}) {
		t.Fatalf("the re-subscriber took %q, want the ack, the snapshot, then stale again", got)
	}
}
