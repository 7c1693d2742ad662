package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tickgate/tickgate/auth"
	"github.com/tickgate/tickgate/internal/proc"
	"github.com/tickgate/tickgate/internal/wsconn"
)

// resubscribeScenario: the node holds a big book; attackers subscribe to
// it again and again (each subscribe under the node's command rate) and
// never read, while two legitimate readers measure delivery latency.
type resubscribeScenario struct {
	Attackers int           `json:"attackers"`             // --attackers
	Rate      float64       `json:"subscribes_per_s_each"` // --rate
	Duration  time.Duration `json:"duration"`              // --duration
	Baseline  time.Duration `json:"baseline"`              // --baseline
	Levels    int           `json:"levels_per_side"`       // --levels
	FeedRate  float64       `json:"feed_rate_per_channel"` // --feed-rate
	Rcvbuf    int           `json:"attacker_rcvbuf"`       // --attacker-rcvbuf
	Source    string        `json:"attacker_source"`       // --attacker-source
	Settle    time.Duration `json:"settle"`                // --settle
	Book      string        `json:"book_channel"`          // fixed
	Ticker    string        `json:"ticker_channel"`        // fixed
	source    net.IP
}

func (s *resubscribeScenario) register(fs *flag.FlagSet) {
	fs.IntVar(&s.Attackers, "attackers", 60, "attacker connections, all from --attacker-source")
	fs.Float64Var(&s.Rate, "rate", 19, "subscribes per second per attacker (the node's default --command-rate is 20)")
	fs.DurationVar(&s.Duration, "duration", 20*time.Second, "attack window, from the first attacker's dial")
	fs.DurationVar(&s.Baseline, "baseline", 5*time.Second, "window before the attack in which the readers' latency is the baseline")
	fs.IntVar(&s.Levels, "levels", 5000, "levels per side of the book (the feed allows at most 5000)")
	fs.Float64Var(&s.FeedRate, "feed-rate", 50, "book deltas per second, and ticker updates per second")
	fs.IntVar(&s.Rcvbuf, "attacker-rcvbuf", 4096, "SO_RCVBUF of attacker sockets: a small TCP window that fills at once")
	fs.StringVar(&s.Source, "attacker-source", "127.0.0.2", "loopback source address of every attacker (the readers use 127.0.0.1)")
	fs.DurationVar(&s.Settle, "settle", time.Second, "pause after the readers' first snapshot, before the baseline window")
	s.Book, s.Ticker = "book.BIG", "ticker.OTHER"
}

func (s *resubscribeScenario) check() error {
	if s.source = net.ParseIP(s.Source).To4(); s.source == nil || !s.source.IsLoopback() {
		return fmt.Errorf("--attacker-source %q: want an IPv4 loopback address", s.Source)
	}
	if s.Levels < 1 || s.Levels > 5000 {
		return errors.New("--levels must be in 1..5000")
	}
	return positive(map[string]float64{"attackers": float64(s.Attackers), "rate": s.Rate, "duration": s.Duration.Seconds(),
		"baseline": s.Baseline.Seconds(), "feed-rate": s.FeedRate})
}

func (s *resubscribeScenario) nodeNeeds() nodeNeeds { return nodeNeeds{} }

// reader is a legitimate client and its latency in each phase.
type reader struct {
	channel string
	c       *client
	phase   *atomic.Int32 // 0: before the baseline, 1: baseline, 2: attack, 3: after
	lat     [4]*latency
	mu      sync.Mutex
	last    uint64 // Guarded by mu: last seq
	breaks  int    // Guarded by mu: updates whose prev was not the last seq
	data    atomic.Int64
	maxUS   atomic.Int64 // the largest latency since the last timeline tick, µs
}

func newReader(channel string, phase *atomic.Int32) *reader {
	r := &reader{channel: channel, phase: phase}
	for i := range r.lat {
		r.lat[i] = newLatency()
	}
	r.c = newClient(r.handle)
	return r
}

func (r *reader) handle(m *serverMsg, _ int, at time.Time) {
	if m.Channel != r.channel || (m.Type != "snapshot" && m.Type != "update") {
		return
	}
	r.data.Add(1)
	r.mu.Lock()
	if m.Type == "update" && (m.Prev == nil || *m.Prev != r.last) {
		r.breaks++
	}
	r.last = m.Seq
	r.mu.Unlock()
	if m.Type == "update" && m.Data.TS > 0 {
		d := at.Sub(time.Unix(0, m.Data.TS))
		r.lat[r.phase.Load()].record(d)
		for us := d.Microseconds(); ; {
			old := r.maxUS.Load()
			if us <= old || r.maxUS.CompareAndSwap(old, us) {
				break
			}
		}
	}
}

// attacker is one connection that subscribes and never reads.
type attacker struct {
	hs     handshake
	sent   int
	ended  time.Duration // since the attack started; 0: still open
	how    string        // the write error that ended it
	stuck  bool          // a write made no progress for a second: the node stopped reading
	socket net.Conn
}

// second is one second of the attack window.
type second struct {
	AtS       float64 `json:"at_s"`           // end of the second, since the attack started
	CPUCores  float64 `json:"cpu_cores"`      // the node's CPU in that second
	RSS       int64   `json:"rss_bytes"`      // at its end
	Attackers int64   `json:"attackers_open"` // upgraded and not yet failed
	// MaxLatencyMS is each reader's largest delivery latency in that
	// second (0: no update arrived), in the order of Readers.
	MaxLatencyMS []float64 `json:"max_latency_ms"`
}

// readerResult is one reader's figures.
type readerResult struct {
	Channel     string         `json:"channel"`
	Baseline    latencySummary `json:"baseline_latency"`
	Attack      latencySummary `json:"attack_latency"`
	Messages    int64          `json:"data_messages"`
	ChainBreaks int            `json:"chain_breaks"`
	Replies     map[string]int `json:"messages_by_kind"`
	Closed      string         `json:"closed,omitempty"` // how, when the node closed it
}

// resubscribeResult is the scenario's result.
type resubscribeResult struct {
	BaselineUsage usage          `json:"baseline_usage"`
	AttackUsage   usage          `json:"attack_usage"`
	Readers       []readerResult `json:"readers"`
	Attackers     struct {
		Upgraded   int                `json:"upgraded"`
		Refused    map[string]int     `json:"refused,omitempty"` // by handshake outcome
		Subscribes int                `json:"subscribes_sent"`
		Closed     int                `json:"closed"`
		CloseCodes map[string]int     `json:"close_codes"` // they do not read: how the socket failed
		Stuck      int                `json:"writes_stuck"`
		ClosedAtS  []float64          `json:"closed_at_s"` // seconds after the attack started, sorted
		Evictions  map[string]float64 `json:"evictions"`   // tickgate_evictions_total growth by reason
	} `json:"attackers"`
	Timeline []second `json:"timeline"`
	// AttackedUsage is the node's CPU while at least one attacker was
	// open (whole seconds of the timeline).
	AttackedSeconds  int     `json:"attacked_seconds"`
	AttackedCPUCores float64 `json:"attacked_cpu_cores"`
	MaxSecondCPU     float64 `json:"max_second_cpu_cores"`
	MessagesSent     float64 `json:"messages_sent"` // tickgate_messages_sent_total growth in the attack window
	BytesSent        float64 `json:"bytes_sent"`    // tickgate_bytes_sent_total growth in the attack window
	FeedErrors       int64   `json:"feed_publish_errors"`
}

func (s *resubscribeScenario) run(ctx context.Context, n *node, logf logFunc) (result, error) {
	pub, err := n.publisher("resubscribe")
	if err != nil {
		return nil, err
	}
	defer pub.Close()
	book := newBigBook("BIG", s.Levels, 1)
	bookCh, tickerCh := channel(s.Book), channel(s.Ticker)
	res := &resubscribeResult{}

	// The readers subscribe first: the node subscribes on NATS only for
	// channels some client wants, so a snapshot published before would
	// reach nobody.
	var phase atomic.Int32
	readers := []*reader{newReader(s.Book, &phase), newReader(s.Ticker, &phase)}
	tok, err := n.creds.Signer.Sign(auth.TokenSpec{Subject: "reader", Channels: []string{">"}, TTL: time.Hour})
	if err != nil {
		return nil, err
	}
	for _, r := range readers {
		if _, hs := n.dial(dialSpec{token: tok, source: net.IPv4(127, 0, 0, 1)}, r.c); hs.Status != 101 {
			return nil, fmt.Errorf("reader of %s: %s", r.channel, hs)
		}
		defer r.c.shutdown()
		if err := r.c.send(subscribeCmd(1, r.channel)); err != nil {
			return nil, err
		}
	}
	if err := waitFor(ctx, 10*time.Second, func() bool {
		return readers[0].c.snapshotCounts()["subscribed"] > 0 && readers[1].c.snapshotCounts()["subscribed"] > 0
	}); err != nil {
		return nil, fmt.Errorf("the readers' subscribes were not acknowledged: %w", err)
	}
	if err := pub.PublishMessage(bookCh, book.snapshot(time.Now().UnixNano())); err != nil {
		return nil, err
	}
	if err := flush(pub); err != nil {
		return nil, err
	}

	// The feed: book deltas and ticker updates at --feed-rate, ts = now.
	feedCtx, stopFeed := context.WithCancel(ctx)
	defer stopFeed()
	var feedErrs atomic.Int64
	var feedDone sync.WaitGroup
	feedDone.Go(func() {
		t := time.NewTicker(time.Duration(float64(time.Second) / s.FeedRate))
		defer t.Stop()
		for seq := uint64(1); ; seq++ {
			select {
			case <-feedCtx.Done():
				return
			case <-t.C:
			}
			now := time.Now().UnixNano()
			if pub.PublishMessage(bookCh, book.update(now)) != nil || pub.PublishMessage(tickerCh, tickerMsg("OTHER", seq, now)) != nil {
				feedErrs.Add(1)
			}
		}
	})
	defer feedDone.Wait()
	defer stopFeed()

	if err := waitFor(ctx, 15*time.Second, func() bool { return readers[0].data.Load() > 0 && readers[1].data.Load() > 0 }); err != nil {
		return nil, fmt.Errorf("the readers got no data (messages by kind: %s, %s): %w",
			counts(readers[0].c.snapshotCounts()), counts(readers[1].c.snapshotCounts()), err)
	}
	time.Sleep(s.Settle)

	logf("resubscribe: baseline window %v", s.Baseline)
	phase.Store(1)
	b0, _ := n.proc.Sample()
	time.Sleep(s.Baseline)
	b1, _ := n.proc.Sample()
	res.BaselineUsage = usageOf(b0, b1)

	logf("resubscribe: %d attackers from %s, %.0f subscribes/s each, for %v", s.Attackers, s.Source, s.Rate, s.Duration)
	m0, _ := n.metrics()
	phase.Store(2)
	a0, _ := n.proc.Sample()
	start := a0.At
	attackers, timeline := s.attack(ctx, n, start, readers, logf)
	a1, _ := n.proc.Sample()
	m1, _ := n.metrics()
	phase.Store(3)
	res.AttackUsage = usageOf(a0, a1)
	res.Timeline = timeline
	var cpu float64
	for _, sec := range timeline {
		res.MaxSecondCPU = max(res.MaxSecondCPU, sec.CPUCores)
		if sec.Attackers > 0 {
			res.AttackedSeconds++
			cpu += sec.CPUCores
		}
	}
	if res.AttackedSeconds > 0 {
		res.AttackedCPUCores = cpu / float64(res.AttackedSeconds)
	}
	for _, a := range attackers {
		if a.socket != nil {
			_ = a.socket.Close()
		}
	}
	stopFeed()
	res.FeedErrors = feedErrs.Load()
	s.fill(res, readers, attackers, m0, m1)
	return res, nil
}

// attack runs the attackers for the window and returns them.
func (s *resubscribeScenario) attack(ctx context.Context, n *node, start time.Time, readers []*reader, logf logFunc) ([]*attacker, []second) {
	tok, _ := n.creds.Signer.Sign(auth.TokenSpec{Subject: "attacker", Channels: []string{">"}, TTL: time.Hour})
	actx, cancel := context.WithDeadline(ctx, start.Add(s.Duration))
	defer cancel()
	out := make([]*attacker, s.Attackers)
	var wg sync.WaitGroup
	var open atomic.Int64
	for i := range out {
		a := &attacker{}
		out[i] = a
		wg.Go(func() {
			ws, hs := n.dial(dialSpec{token: tok, source: s.source, rcvbuf: s.Rcvbuf}, nil)
			a.hs = hs
			if ws == nil {
				return
			}
			a.socket = ws.NetConn()
			open.Add(1)
			defer open.Add(-1)
			s.hammer(actx, a, start)
		})
	}
	var timeline []second
	prev, _ := n.proc.Sample()
	for _, r := range readers {
		r.maxUS.Store(0)
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-actx.Done():
			wg.Wait()
			return out, timeline
		case <-tick.C:
		}
		cur, _ := n.proc.Sample()
		sec := second{AtS: cur.At.Sub(start).Seconds(), CPUCores: proc.Cores(prev, cur), RSS: cur.RSS, Attackers: open.Load()}
		prev = cur
		for _, r := range readers {
			sec.MaxLatencyMS = append(sec.MaxLatencyMS, float64(r.maxUS.Swap(0))/1000)
		}
		timeline = append(timeline, sec)
		logf("resubscribe: %4.1fs: attackers open %d, node CPU %3.0f%%, RSS %.0f MiB; max latency this second: book %.1f ms, ticker %.1f ms",
			sec.AtS, sec.Attackers, sec.CPUCores*100, mib(sec.RSS), sec.MaxLatencyMS[0], sec.MaxLatencyMS[1])
	}
}

// hammer writes subscribe frames on a's raw socket at --rate until ctx
// ends or a write fails.
func (s *resubscribeScenario) hammer(ctx context.Context, a *attacker, start time.Time) {
	interval := time.Duration(float64(time.Second) / s.Rate)
	// Spread the attackers' writes over the interval.
	select {
	case <-ctx.Done():
		return
	case <-time.After(rand.N(interval)):
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for id := int64(1); ; id++ {
		b, _ := json.Marshal(subscribeCmd(id, s.Book))
		_ = a.socket.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := a.socket.Write(wsconn.MaskedFrame(wsconn.OpText, b)); err != nil {
			a.ended, a.how = time.Since(start), wsconn.CloseCode(err)
			var ne net.Error
			a.stuck = errors.As(err, &ne) && ne.Timeout()
			return
		}
		a.sent++
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *resubscribeScenario) fill(res *resubscribeResult, readers []*reader, attackers []*attacker, m0, m1 metrics) {
	for _, r := range readers {
		rr := readerResult{Channel: r.channel, Baseline: r.lat[1].summary(), Attack: r.lat[2].summary(),
			Messages: r.data.Load(), Replies: r.c.snapshotCounts()}
		r.mu.Lock()
		rr.ChainBreaks = r.breaks
		r.mu.Unlock()
		if _, how, byUs, ok := r.c.ended(); ok && !byUs {
			rr.Closed = how
		}
		res.Readers = append(res.Readers, rr)
	}
	at := &res.Attackers
	at.Refused, at.CloseCodes = map[string]int{}, map[string]int{}
	for _, a := range attackers {
		if a.hs.Status != 101 {
			at.Refused[a.hs.String()]++
			continue
		}
		at.Upgraded++
		at.Subscribes += a.sent
		switch {
		case a.stuck:
			at.Stuck++
		case a.how != "":
			at.Closed++
			at.CloseCodes["unknown (not read); write failed: "+a.how]++
			at.ClosedAtS = append(at.ClosedAtS, a.ended.Seconds())
		}
	}
	slices.Sort(at.ClosedAtS)
	at.Evictions = delta(m0, m1, "tickgate_evictions_total")
	res.MessagesSent = m1.sum("tickgate_messages_sent_total") - m0.sum("tickgate_messages_sent_total")
	res.BytesSent = m1.sum("tickgate_bytes_sent_total") - m0.sum("tickgate_bytes_sent_total")
}

func (r *resubscribeResult) text(p printer) {
	p("node, baseline: %s", r.BaselineUsage)
	p("node, attack:   %s", r.AttackUsage)
	p("node CPU while attackers were open: %.0f%% of a core on average over %d s; busiest second %.0f%%",
		r.AttackedCPUCores*100, r.AttackedSeconds, r.MaxSecondCPU*100)
	for _, rr := range r.Readers {
		p("reader %-13s baseline %s", rr.Channel+":", rr.Baseline)
		p("reader %-13s attack   %s", rr.Channel+":", rr.Attack)
		closed := "open"
		if rr.Closed != "" {
			closed = "closed by the node: " + rr.Closed
		}
		p("reader %-13s %d data messages, %d chain breaks, %s; by kind %s", rr.Channel+":", rr.Messages, rr.ChainBreaks, closed, counts(rr.Replies))
	}
	a := &r.Attackers
	p("attackers: %d upgraded, refused %s; %d subscribes sent", a.Upgraded, counts(a.Refused), a.Subscribes)
	p("attackers closed: %d %s; writes stuck (node stopped reading): %d", a.Closed, counts(a.CloseCodes), a.Stuck)
	if len(a.ClosedAtS) > 0 {
		p("attackers closed at: first %.1f s, median %.1f s, last %.1f s after the attack started",
			a.ClosedAtS[0], a.ClosedAtS[len(a.ClosedAtS)/2], a.ClosedAtS[len(a.ClosedAtS)-1])
	}
	p("evictions in the window (tickgate_evictions_total): %v", a.Evictions)
	p("node sent %.0f messages, %.1f MiB in the attack window", r.MessagesSent, r.BytesSent/(1<<20))
}
