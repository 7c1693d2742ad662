package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tickgate/tickgate/auth"
	"github.com/tickgate/tickgate/feed"
)

// floodScenario publishes on one channel as fast as the publisher can,
// while one client reads it: does the node drop feed messages, say so
// (metrics, gap messages, a broken chain), and how much does it log?
type floodScenario struct {
	Kind     string        `json:"kind"`            // --kind
	Duration time.Duration `json:"duration"`        // --duration
	Levels   int           `json:"levels_per_side"` // --levels (book)
	Rate     float64       `json:"rate"`            // --rate; 0: as fast as possible
	Settle   time.Duration `json:"settle"`          // --settle
	Channel  string        `json:"channel"`
}

func (s *floodScenario) register(fs *flag.FlagSet) {
	fs.StringVar(&s.Kind, "kind", "book", "book: 5,000-level snapshots; trade: trades")
	fs.DurationVar(&s.Duration, "duration", 18*time.Second, "how long to flood")
	fs.IntVar(&s.Levels, "levels", 5000, "levels per side of each book snapshot (at most 5000)")
	fs.Float64Var(&s.Rate, "rate", 0, "feed messages per second; 0: as fast as the publisher can")
	fs.DurationVar(&s.Settle, "settle", 15*time.Second, "bound on waiting, after the flood, until the node has received no feed message for 1 s")
}

func (s *floodScenario) check() error {
	switch s.Kind {
	case "book", "trade":
	default:
		return fmt.Errorf("--kind %q: want book or trade", s.Kind)
	}
	if s.Levels < 1 || s.Levels > 5000 {
		return errors.New("--levels must be in 1..5000")
	}
	if s.Rate < 0 {
		return errors.New("--rate must not be negative")
	}
	s.Channel = s.Kind + ".FLOOD"
	return positive(map[string]float64{"duration": s.Duration.Seconds(), "settle": s.Settle.Seconds()})
}

func (s *floodScenario) nodeNeeds() nodeNeeds { return nodeNeeds{} }

// floodReader follows the chain of one channel and which feed seqs came.
type floodReader struct {
	channel string
	mu      sync.Mutex
	last    uint64 // Guarded by mu
	breaks  int    // Guarded by mu: updates whose prev was not the last seq
	jumps   int    // Guarded by mu: messages whose seq was not last+1
	seen    []bool // Guarded by mu: feed seqs delivered (index seq)
	data    int    // Guarded by mu
	gaps    int    // Guarded by mu: gap messages
	gapSeqs uint64 // Guarded by mu: seqs the gap messages name
}

func (r *floodReader) handle(m *serverMsg, _ int, _ time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case m.Type == "gap" && m.Channel == r.channel:
		r.gaps++
		if m.To >= m.From {
			r.gapSeqs += m.To - m.From + 1
		}
		return
	case m.Channel != r.channel || (m.Type != "snapshot" && m.Type != "update"):
		return
	}
	r.data++
	if m.Type == "update" && (m.Prev == nil || *m.Prev != r.last) {
		r.breaks++
	}
	if r.last != 0 && m.Seq != r.last+1 {
		r.jumps++
	}
	r.last = m.Seq
	if m.Seq < 1<<26 { // 64 Mi seqs: more than any run publishes
		for uint64(len(r.seen)) <= m.Seq {
			r.seen = append(r.seen, make([]bool, len(r.seen)+1024)...)
		}
		r.seen[m.Seq] = true
	}
}

// floodResult is the scenario's result.
type floodResult struct {
	Published       uint64  `json:"published"`
	PublishedPerSec float64 `json:"published_per_s"`
	PublishErrors   int64   `json:"publish_errors"`
	SettleSeconds   float64 `json:"settle_seconds"` // from the flood's end until the node went quiet
	Node            struct {
		Usage         usage              `json:"usage"`
		FeedMessages  float64            `json:"feed_messages"`             // tickgate_feed_messages_total growth
		Outcomes      map[string]float64 `json:"feed_outcomes"`             // tickgate_feed_outcomes_total growth
		DroppedMetric *float64           `json:"feed_dropped,omitempty"`    // tickgate_feed_dropped_total growth; nil: not exported
		GapsMetric    map[string]float64 `json:"feed_gaps,omitempty"`       // tickgate_feed_gaps_total growth
		Reconnects    float64            `json:"nats_reconnects"`           // tickgate_nats_reconnects_total growth
		Evictions     map[string]float64 `json:"evictions"`                 // tickgate_evictions_total growth
		WarnLines     int                `json:"warn_lines"`                // WARN lines the node logged
		WarnPerSec    float64            `json:"warn_lines_per_s"`          // over the flood and the settle time
		WarnByMsg     map[string]int     `json:"warn_by_msg"`               // by msg
		ErrorLines    int                `json:"error_lines"`               // ERROR lines
		FirstWarn     string             `json:"first_warn_line,omitempty"` // an example
	} `json:"node"`
	Client struct {
		ByKind      map[string]int `json:"messages_by_kind"`
		Data        int            `json:"data_messages"`
		Delivered   int            `json:"feed_seqs_delivered"`
		Missing     uint64         `json:"feed_seqs_missing"` // published seqs never delivered
		Holes       int            `json:"holes"`             // runs of missing seqs
		ChainBreaks int            `json:"chain_breaks"`      // updates whose prev was not the last seq
		SeqJumps    int            `json:"seq_jumps"`         // messages whose seq was not last+1
		GapMessages int            `json:"gap_messages"`
		GapSeqs     uint64         `json:"gap_seqs"` // seqs the gap messages name
		Closed      string         `json:"closed,omitempty"`
	} `json:"client"`
}

func (s *floodScenario) run(ctx context.Context, n *node, logf logFunc) (result, error) {
	pub, err := n.publisher("flood")
	if err != nil {
		return nil, err
	}
	defer pub.Close()
	ch := channel(s.Channel)
	r := &floodReader{channel: s.Channel}
	c := newClient(r.handle)
	tok, err := n.creds.Signer.Sign(auth.TokenSpec{Subject: "flood-reader", Channels: []string{">"}, TTL: time.Hour})
	if err != nil {
		return nil, err
	}
	if _, hs := n.dial(dialSpec{token: tok}, c); hs.Status != 101 {
		return nil, fmt.Errorf("client: %s", hs)
	}
	defer c.shutdown()
	if err := c.send(subscribeCmd(1, s.Channel)); err != nil {
		return nil, err
	}
	if err := waitFor(ctx, 10*time.Second, func() bool { return c.snapshotCounts()["subscribed"] > 0 }); err != nil {
		return nil, fmt.Errorf("no subscribed ack: %w", err)
	}
	// The node subscribes on NATS only once a client wants the channel:
	// the first snapshot comes after the ack.
	var book *bigBook
	if s.Kind == "book" {
		book = newBigBook(ch.Symbol, s.Levels, 2)
		if err := pub.PublishMessage(ch, book.snapshot(time.Now().UnixNano())); err != nil {
			return nil, err
		}
		if err := flush(pub); err != nil {
			return nil, err
		}
		if err := waitFor(ctx, 10*time.Second, func() bool { return c.snapshotCounts()["snapshot"] > 0 }); err != nil {
			return nil, fmt.Errorf("no book snapshot: %w", err)
		}
	}
	logOffset := fileSize(n.gw.LogPath)
	m0, err := n.metrics()
	if err != nil {
		return nil, err
	}
	u0, _ := n.proc.Sample()

	logf("nats-flood: flooding %s for %v", s.Channel, s.Duration)
	res := &floodResult{}
	// Two snapshots that differ in one level, published in turn, so that
	// each differs from the node's state and is forwarded.
	// Trades too: seq is all the node checks of a trade's identity.
	var snaps [2]*template
	var seq uint64
	if book == nil {
		if snaps[0], err = newTemplate(tradeMsg(ch.Symbol, 1, time.Now().UnixNano())); err != nil {
			return nil, err
		}
		snaps[1] = snaps[0]
	} else {
		seq = book.seq
		for i := range snaps {
			book.change()
			if snaps[i], err = newTemplate(book.snapshot(time.Now().UnixNano())); err != nil {
				return nil, err
			}
		}
		book.seq = seq
	}
	first := seq + 1
	var pubErrs atomic.Int64
	subject := ch.Subject(feed.DefaultSubjectPrefix)
	start := time.Now()
	var interval time.Duration
	if s.Rate > 0 {
		interval = time.Duration(float64(time.Second) / s.Rate)
	}
	next := start
	for time.Since(start) < s.Duration && ctx.Err() == nil {
		seq++
		if err := pub.Publish(subject, snaps[seq%2].with(seq)); err != nil {
			pubErrs.Add(1)
		}
		if interval > 0 {
			next = next.Add(interval)
			time.Sleep(time.Until(next))
		}
	}
	_ = flush(pub)
	flooded := time.Since(start)
	logf("nats-flood: published %d messages in %.1f s; waiting up to %v for the node to catch up", seq-first+1, flooded.Seconds(), s.Settle)
	// The node may still hold a backlog: wait until it stops receiving.
	lastCount, stableSince := -1.0, time.Now()
	_ = waitFor(ctx, s.Settle, func() bool {
		m, err := n.metrics()
		if err != nil {
			return false
		}
		if c := m.sum("tickgate_feed_messages_total"); c != lastCount {
			lastCount, stableSince = c, time.Now()
		}
		return time.Since(stableSince) >= time.Second
	})
	res.SettleSeconds = time.Since(start.Add(flooded)).Seconds()
	u1, _ := n.proc.Sample()
	m1, err := n.metrics()
	if err != nil {
		return nil, err
	}
	res.Published = seq - first + 1
	res.PublishedPerSec = float64(res.Published) / flooded.Seconds()
	res.PublishErrors = pubErrs.Load()

	nd := &res.Node
	nd.Usage = usageOf(u0, u1)
	nd.FeedMessages = m1.sum("tickgate_feed_messages_total") - m0.sum("tickgate_feed_messages_total")
	nd.Outcomes = delta(m0, m1, "tickgate_feed_outcomes_total")
	if m1.has("tickgate_feed_dropped_total") {
		d := m1.sum("tickgate_feed_dropped_total") - m0.sum("tickgate_feed_dropped_total")
		nd.DroppedMetric = &d
	}
	nd.GapsMetric = delta(m0, m1, "tickgate_feed_gaps_total")
	nd.Reconnects = m1.sum("tickgate_nats_reconnects_total") - m0.sum("tickgate_nats_reconnects_total")
	nd.Evictions = delta(m0, m1, "tickgate_evictions_total")
	lc, err := countLog(n.gw.LogPath, logOffset)
	if err != nil {
		return nil, err
	}
	nd.WarnLines, nd.ErrorLines, nd.WarnByMsg, nd.FirstWarn = lc.warn, lc.errors, lc.byMsg, lc.first
	nd.WarnPerSec = float64(lc.warn) / u1.At.Sub(u0.At).Seconds()

	cl := &res.Client
	cl.ByKind = c.snapshotCounts()
	r.mu.Lock()
	defer r.mu.Unlock()
	cl.Data, cl.ChainBreaks, cl.SeqJumps, cl.GapMessages, cl.GapSeqs = r.data, r.breaks, r.jumps, r.gaps, r.gapSeqs
	inHole := false
	for q := first; q <= seq; q++ {
		got := q < uint64(len(r.seen)) && r.seen[q]
		if got {
			cl.Delivered++
		} else {
			cl.Missing++
			if !inHole {
				cl.Holes++
			}
		}
		inHole = !got
	}
	if _, how, byUs, ok := c.ended(); ok && !byUs {
		cl.Closed = how
	}
	return res, nil
}

// fileSize is a file's size, 0 when it cannot be read.
func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

// logCount tallies a gateway log's lines by level.
type logCount struct {
	warn, errors int
	byMsg        map[string]int
	first        string
}

// Fields of a log/slog text line.
var (
	msgField   = regexp.MustCompile(`\bmsg=("(?:[^"\\]|\\.)*"|\S+)`)
	warnLevel  = regexp.MustCompile(`\blevel=WARN\b`)
	errorLevel = regexp.MustCompile(`\blevel=ERROR\b`)
)

// countLog reads the log from offset and counts WARN and ERROR lines
// (slog's text format: level=WARN), WARN ones by msg.
func countLog(path string, offset int64) (logCount, error) {
	lc := logCount{byMsg: map[string]int{}}
	f, err := os.Open(path)
	if err != nil {
		return lc, err
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return lc, err
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case warnLevel.MatchString(line):
			lc.warn++
			if lc.first == "" {
				lc.first = line
			}
			if m := msgField.FindStringSubmatch(line); m != nil {
				lc.byMsg[m[1]]++
			}
		case errorLevel.MatchString(line):
			lc.errors++
		}
	}
	return lc, sc.Err()
}

func (r *floodResult) text(p printer) {
	p("published %d feed messages (%.0f/s), %d publish errors; the node went quiet %.1f s after the flood", r.Published, r.PublishedPerSec, r.PublishErrors, r.SettleSeconds)
	nd := &r.Node
	p("node: %s", nd.Usage)
	dropped := "not exported"
	if nd.DroppedMetric != nil {
		dropped = fmt.Sprintf("%.0f", *nd.DroppedMetric)
	}
	p("node: received %.0f feed messages (tickgate_feed_messages_total), outcomes %v, tickgate_feed_dropped_total %s, tickgate_feed_gaps_total %v",
		nd.FeedMessages, nd.Outcomes, dropped, nd.GapsMetric)
	p("node: NATS reconnects %.0f, evictions %v", nd.Reconnects, nd.Evictions)
	p("node log: %d WARN lines (%.1f/s), %d ERROR lines; WARN by msg %s", nd.WarnLines, nd.WarnPerSec, nd.ErrorLines, counts(nd.WarnByMsg))
	if nd.FirstWarn != "" {
		p("node log, first WARN: %s", nd.FirstWarn)
	}
	cl := &r.Client
	closed := "open"
	if cl.Closed != "" {
		closed = "closed by the node: " + cl.Closed
	}
	p("client: %d data messages, by kind %s; %s", cl.Data, counts(cl.ByKind), closed)
	p("client: feed seqs delivered %d, missing %d in %d holes; chain breaks %d, seq jumps %d; gap messages %d naming %d seqs",
		cl.Delivered, cl.Missing, cl.Holes, cl.ChainBreaks, cl.SeqJumps, cl.GapMessages, cl.GapSeqs)
}
