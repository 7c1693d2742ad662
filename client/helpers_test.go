package client_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tickgate/tickgate/client"
	"github.com/tickgate/tickgate/internal/nodetest"
)

// recorder keeps what a client's handler saw.
type recorder struct {
	mu     sync.Mutex
	events []client.Event      // without Book (only valid in the call)
	trades map[string][]uint64 // delivered trade seqs per channel
	gaps   map[string][]client.Gap
	block  chan struct{} // when set, the handler waits on it
}

// newRecorder returns a recorder that logs what it saw (all but data
// events) when the test fails.
func newRecorder(t *testing.T) *recorder {
	r := &recorder{trades: map[string][]uint64{}, gaps: map[string][]client.Gap{}}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, e := range r.events {
			if e.Type != client.EventUpdate && e.Type != client.EventSnapshot {
				t.Log(describe(e))
			}
		}
	})
	return r
}

func (r *recorder) handle(e client.Event) {
	r.mu.Lock()
	block := r.block
	r.mu.Unlock()
	if block != nil {
		<-block
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	e.Book = nil
	r.events = append(r.events, e)
	switch {
	case e.Type == client.EventUpdate && e.Trade != nil:
		r.trades[e.Channel] = append(r.trades[e.Channel], e.Seq)
	case e.Type == client.EventGap:
		r.gaps[e.Channel] = append(r.gaps[e.Channel], *e.Gap)
	}
}

// count returns how many events match f.
func (r *recorder) count(f func(e client.Event) bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.events {
		if f(e) {
			n++
		}
	}
	return n
}

func (r *recorder) allGaps() []client.Gap {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []client.Gap
	for _, g := range r.gaps {
		out = append(out, g...)
	}
	return out
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// dial connects a client to url with a fresh long-lived token per call.
func dial(t *testing.T, env *nodetest.Env, url string, o client.Options) *client.Client {
	t.Helper()
	if o.TokenSource == nil {
		o.TokenSource = func(context.Context) (string, error) { return env.Token(t, "test", time.Hour, ">"), nil }
	}
	if o.TLS == nil {
		o.TLS = env.ClientTLS()
	}
	if o.BackoffMin == 0 {
		o.BackoffMin, o.BackoffMax = 50*time.Millisecond, time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, url, o)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func subscribe(t *testing.T, c *client.Client, channels ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := c.Subscribe(ctx, channels)
	if err != nil || !slices.Equal(got, channels) {
		t.Fatalf("subscribe %v: %v, %v", channels, got, err)
	}
}

// allLive reports whether every channel of c is live.
func allLive(c *client.Client, channels []string) bool {
	for _, ch := range channels {
		if st, ok := c.State(ch); !ok || st != client.StateLive {
			return false
		}
	}
	return true
}

// converge stops the market and checks that c ends with the publisher's
// book, as a fresh subscriber on url does.
func converge(t *testing.T, env *nodetest.Env, url string, c *client.Client, m *nodetest.Market, book string) {
	t.Helper()
	m.Stop()
	env.Flush(t)
	bids, asks, _ := m.Book()
	same := func(b *client.Book) bool {
		gb, ga := b.TopN(-1)
		return slices.Equal(gb, bids) && slices.Equal(ga, asks)
	}
	waitFor(t, 10*time.Second, "the client's book to reach the publisher's", func() bool {
		b, _, ok := c.Book(book)
		return ok && same(b)
	})
	fresh := dial(t, env, url, client.Options{})
	subscribe(t, fresh, book)
	waitFor(t, 10*time.Second, "a fresh subscriber's book", func() bool {
		b, _, ok := fresh.Book(book)
		return ok && same(b)
	})
	mine, _, _ := c.Book(book)
	theirs, _, _ := fresh.Book(book)
	if !mine.Equal(theirs) || mine.Checksum() != theirs.Checksum() {
		t.Fatal("the client's book differs from a fresh subscriber's")
	}
}

// tradeSeen reports whether trade seq reached the handler or was reported
// missing in a gap that names it.
func (r *recorder) tradeSeen(channel string, seq uint64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if slices.Contains(r.trades[channel], seq) {
		return true
	}
	for _, g := range r.gaps[channel] {
		if g.From <= seq && seq <= g.To {
			return true
		}
	}
	return false
}

// waitLastTrade waits until the market's last trade was seen, and checks
// every trade before it (checkTrades).
func waitLastTrade(t *testing.T, r *recorder, m *nodetest.Market, channel string) {
	t.Helper()
	_, last, _ := m.Seqs()
	waitFor(t, 5*time.Second, "the last trade", func() bool { return r.tradeSeen(channel, last) })
	checkTrades(t, r, channel, last)
}

// checkTrades checks that every trade seq from the first delivered one to
// last was either delivered, once and in order, or reported in a gap.
func checkTrades(t *testing.T, r *recorder, channel string, last uint64) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	seqs := r.trades[channel]
	if len(seqs) == 0 {
		t.Fatalf("%s: no trades", channel)
	}
	covered := map[uint64]string{}
	for i, s := range seqs {
		if i > 0 && s <= seqs[i-1] {
			t.Fatalf("%s: trade %d after %d", channel, s, seqs[i-1])
		}
		covered[s] = "delivered"
	}
	for _, g := range r.gaps[channel] {
		to := g.To
		if to == 0 { // open: up to the next trade delivered
			i, _ := slices.BinarySearch(seqs, g.From)
			if i == len(seqs) {
				to = last
			} else {
				to = seqs[i] - 1
			}
		}
		for s := g.From; s <= to && s != 0; s++ {
			covered[s] = string(g.Reason)
		}
	}
	for s := seqs[0]; s <= last; s++ {
		if covered[s] == "" {
			t.Fatalf("%s: trade %d neither delivered nor reported missing (gaps %+v)", channel, s, r.gaps[channel])
		}
	}
}

func describe(e client.Event) string {
	switch e.Type {
	case client.EventGap:
		return fmt.Sprintf("%s gap %+v", e.Channel, *e.Gap)
	case client.EventDisconnected, client.EventError:
		return fmt.Sprintf("%s %s %v", e.Channel, e.Type, e.Err)
	case client.EventConnected:
		return fmt.Sprintf("connected to %s", e.Conn.Node)
	}
	return fmt.Sprintf("%s %s %s seq %d", e.Channel, e.Type, e.State, e.Seq)
}
