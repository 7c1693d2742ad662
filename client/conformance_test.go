package client

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tickgate/tickgate/codec"
	"github.com/tickgate/tickgate/internal/conformance"
	"github.com/tickgate/tickgate/proto"
)

// flushNow delivers everything waiting, on the calling goroutine: the
// dispatcher's work, synchronously, for tests.
func (q *queue) flushNow() {
	for {
		q.mu.Lock()
		n := len(q.ready)
		q.mu.Unlock()
		if n == 0 {
			return
		}
		l, items, _ := q.take()
		q.deliver(l, items)
	}
}

// msgpackOf re-encodes a JSON message as msgpack: the same map, integers
// as integers.
func msgpackOf(t *testing.T, raw []byte) []byte {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	var conv func(any) any
	conv = func(v any) any {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				x[k] = conv(e)
			}
		case []any:
			for i, e := range x {
				x[i] = conv(e)
			}
		case json.Number:
			if i, err := x.Int64(); err == nil {
				return i
			}
			var u uint64
			if err := json.Unmarshal([]byte(x), &u); err == nil {
				return u
			}
			f, _ := x.Float64()
			return f
		}
		return v
	}
	b, err := codec.Msgpack().Append(nil, conv(v))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// conformanceCases loads proto/testdata/conformance.
func conformanceCases(t *testing.T) []conformance.Case {
	t.Helper()
	cases, err := conformance.Load(filepath.Join("..", filepath.FromSlash(conformance.Dir)))
	if err != nil {
		t.Fatal(err)
	}
	return cases
}

// The client's state machine passes every conformance case in both
// codecs: each step's message decoded as the read loop decodes it,
// applied by the router, and delivered through the event queue, so the
// book the user sees is checked as well as the one the client verifies.
func TestConformance(t *testing.T) {
	cases := conformanceCases(t)
	for _, cd := range []codec.Codec{codec.JSON(), codec.Msgpack()} {
		for _, c := range cases {
			t.Run(cd.Name()+"/"+strings.TrimSuffix(c.File, ".json"), func(t *testing.T) {
				runConformance(t, cd, c)
			})
		}
	}
}

func runConformance(t *testing.T, cd codec.Codec, c conformance.Case) {
	var (
		stats counters
		kicks int
		evs   []Event
		user  *Book // the user's book as of the last book event
	)
	q := newQueue(func(e Event) {
		evs = append(evs, e)
		if e.Book != nil {
			user = e.Book.Clone()
		}
	}, 1<<20, &stats)
	r := newRouter(q, &stats, func() { kicks++ }, time.Now)
	ch, err := proto.ParseChannel(c.Channel)
	if err != nil {
		t.Fatal(err)
	}
	// The client holds the subscribed ack and nothing else.
	r.add(c.Channel, ch, subOptions{}, 1)
	r.acked(1, c.Channel, subOptions{}, false)
	q.flushNow()
	s := r.chans[c.Channel]
	for i, step := range c.Steps {
		raw := []byte(step.Recv)
		if cd.Binary() {
			raw = msgpackOf(t, raw)
		}
		var m message
		if err := m.decode(cd, raw); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		k0 := kicks
		evs = evs[:0]
		r.handle(&m)
		q.flushNow()

		var (
			gap, checksumOK *bool
			trades          = []int64{}
			gapSeqs         *[2]uint64
			ticker          *proto.Ticker
		)
		yes, no := true, false
		for _, e := range evs {
			switch {
			case e.Type == EventGap && e.Gap.Reason == GapPrev:
				gap = &yes
			case e.Type == EventGap && e.Gap.Reason == GapChecksum:
				checksumOK = &no
			case e.Type == EventGap && e.Gap.Reason == GapNode:
				gapSeqs = &[2]uint64{e.Gap.From, e.Gap.To}
			case e.Type == EventGap:
				t.Fatalf("step %d: unexpected gap %+v", i, *e.Gap)
			case (e.Type == EventSnapshot || e.Type == EventUpdate) && ch.Kind == proto.KindBook:
				checksumOK = &yes
			case e.Type == EventUpdate && ch.Kind == proto.KindTrade:
				trades = append(trades, e.Trade.ID)
			}
			if e.Ticker != nil {
				ticker = e.Ticker
			}
		}
		if gap == nil {
			gap = &no
		}
		ex := step.Expect
		fail := func(what string, got, want any) {
			t.Helper()
			t.Fatalf("step %d (%s): %s = %v, want %v", i, step.Recv, what, got, want)
		}
		if ex.State != nil && s.compute().String() != *ex.State {
			fail("state", s.compute(), *ex.State)
		}
		if ex.Gap != nil && *gap != *ex.Gap {
			fail("gap", *gap, *ex.Gap)
		}
		if ex.Resync != nil && (kicks > k0) != *ex.Resync {
			fail("resync", kicks > k0, *ex.Resync)
		}
		if ex.ChecksumOK != nil && (checksumOK == nil || *checksumOK != *ex.ChecksumOK) {
			fail("checksum_ok", checksumOK, *ex.ChecksumOK)
		}
		if ex.Seq != nil && s.since() != *ex.Seq {
			fail("seq", s.since(), *ex.Seq)
		}
		if ex.Book != nil {
			bids, asks := s.book.TopN(-1)
			if !slices.Equal(bids, ex.Book.Bids) || !slices.Equal(asks, ex.Book.Asks) {
				fail("book", [2][]proto.Level{bids, asks}, *ex.Book)
			}
			ub, ua := user.TopN(-1)
			if !slices.Equal(ub, ex.Book.Bids) || !slices.Equal(ua, ex.Book.Asks) {
				fail("the user's book", [2][]proto.Level{ub, ua}, *ex.Book)
			}
		}
		if ex.Checksum != nil && s.book.Checksum() != *ex.Checksum {
			fail("checksum", s.book.Checksum(), *ex.Checksum)
		}
		if ex.Ticker != nil {
			if s.ticker == nil || *s.ticker != *ex.Ticker || ticker == nil || *ticker != *ex.Ticker {
				fail("ticker", ticker, *ex.Ticker)
			}
		}
		if ex.Trades != nil && !slices.Equal(trades, *ex.Trades) {
			fail("trades", trades, *ex.Trades)
		}
		if ex.GapSeqs != nil && (gapSeqs == nil || *gapSeqs != *ex.GapSeqs) {
			fail("gap_seqs", gapSeqs, *ex.GapSeqs)
		}
	}
}
