package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/tickgate/tickgate/codec"
	"github.com/tickgate/tickgate/feed"
	"github.com/tickgate/tickgate/feed/feedsim"
	"github.com/tickgate/tickgate/internal/proc"
	"github.com/tickgate/tickgate/internal/spawn"
	"github.com/tickgate/tickgate/proto"
)

// Bounds of the phases around the measurement window.
const (
	settleTime      = 500 * time.Millisecond // after the window, before counting stalled clients
	releaseWait     = 3 * time.Second        // stalled clients read what is left, up to this
	closeWait       = 5 * time.Second        // healthy clients' close handshakes, up to this
	maxFirstErrors  = 5                      // handshake errors kept for the report
	progressPeriod  = time.Second
	tokenTTLMargin  = 10 * time.Minute
	maxDialInFlight = 2000 // connections being set up at once
)

// bench is one run. Its fields are static after construction except where
// noted.
type bench struct {
	cfg    *config
	target *target
	stderr io.Writer
	cnt    *counters
	lat    *latencies   // publish to the read loop
	sock   *latencies   // publish to the socket
	gw     *proc.Reader // nil: no gateway pid
	self   *proc.Reader

	release chan struct{} // closed at teardown: stalled clients read again

	mu        sync.Mutex // guards the fields below
	clients   []*client  // connected clients, in no order
	failures  int        // connections that did not get subscribed
	firstErrs []string
}

// run performs a whole run against t and returns its report.
func (b *bench) run(ctx context.Context) (*report, error) {
	rep := &report{}
	rep.fillConfig(b.cfg, b.target)
	var gwBase proc.Sample
	if b.gw != nil {
		var err error
		if gwBase, err = b.gw.Sample(); err != nil {
			return nil, fmt.Errorf("gateway /proc: %w", err)
		}
	}

	// The feed runs from the start, so books have state before the window.
	feedCtx, stopFeed := context.WithCancel(ctx)
	defer stopFeed()
	feedDone, err := b.startFeed(feedCtx)
	if err != nil {
		return nil, err
	}

	specs, err := b.specs()
	if err != nil {
		return nil, err
	}
	rampStart := time.Now()
	b.ramp(ctx, specs)
	rep.RampSeconds = time.Since(rampStart).Seconds()
	if err := ctx.Err(); err != nil {
		b.teardown()
		return nil, err
	}

	// The measurement window.
	var gwStart, gwEnd proc.Sample
	if b.gw != nil {
		gwStart, _ = b.gw.Sample()
	}
	selfStart, _ := b.self.Sample()
	machStart, _ := proc.MachineCPU()
	windowStart := time.Now()
	b.cnt.inWindow.Store(true)
	b.progress(ctx, windowStart)
	b.cnt.inWindow.Store(false)
	window := time.Since(windowStart)
	if b.gw != nil {
		gwEnd, _ = b.gw.Sample()
	}
	selfEnd, _ := b.self.Sample()
	machEnd, _ := proc.MachineCPU()

	exited, exitErr := b.target.exited()
	time.Sleep(settleTime)
	stopFeed()
	<-feedDone
	b.teardown()

	rep.fillResults(b, window)
	if b.gw != nil {
		rep.fillGateway(gwBase, gwStart, gwEnd, len(b.clients))
		if exited {
			rep.Gateway.ExitedEarly = fmt.Sprint(exitErr)
		}
	}
	if b.target.logPath != "" && (exited || rep.Connections.HealthyClosed > 0) {
		rep.GatewayLogTail = strings.Split(spawn.Tail(b.target.logPath, 15), "\n")
	}
	rep.Bench.CPUSeconds = (selfEnd.CPU - selfStart.CPU).Seconds()
	rep.Machine.CPUs = runtime.NumCPU()
	rep.Machine.BusyCoresInWindow = (machEnd.Busy - machStart.Busy).Seconds() / window.Seconds()
	rep.Machine.StolenCoresInWindow = (machEnd.Steal - machStart.Steal).Seconds() / window.Seconds()
	other := rep.Machine.BusyCoresInWindow - rep.Bench.CPUSeconds/window.Seconds()
	if rep.Gateway != nil {
		other -= rep.Gateway.CPUCoresInWindow
	}
	rep.Machine.OtherCoresInWindow = max(other, 0)
	rep.Bench.RSSBytes = selfEnd.RSS
	return rep, nil
}

func lat(l *latencies) *latencySummary { return summarize(l.merged()) }

// startFeed publishes the synthetic feed at --rate on the target's NATS;
// the returned channel closes when it stopped. feedsim stamps every
// message's data.ts with time.Now() just before it is published.
func (b *bench) startFeed(ctx context.Context) (<-chan struct{}, error) {
	done := make(chan struct{})
	if b.target.natsURL == "" || b.cfg.rate == 0 {
		close(done)
		return done, nil
	}
	run, err := b.feedRunner()
	if err != nil {
		return nil, err
	}
	pub, err := b.dialFeed()
	if err != nil {
		return nil, err
	}
	go func() {
		defer close(done)
		defer pub.Close()
		err := run(ctx, func(subject string, payload []byte) error {
			if err := pub.Publish(subject, payload); err != nil {
				b.cnt.publishErrors.Add(1)
				return err
			}
			b.cnt.published.Add(1)
			return nil
		}, pub.Flush)
		if err != nil && !errors.Is(err, context.Canceled) {
			fmt.Fprintf(b.stderr, "tickbench: feed stopped: %v\n", err)
		}
	}()
	return done, nil
}

// publisher is where the feed is published: Flush sends what was
// published since the last Flush, a feed tick's burst at once.
type publisher interface {
	Publish(subject string, payload []byte) error
	Flush() error
	Close()
}

// dialFeed connects the feed's publisher: for a workload, straight to the
// feed's own NATS server (feednats.go); otherwise with the NATS client
// library (an attached gateway's NATS, and feedsim's feed, whose bursts
// the library's own flushing keeps together).
func (b *bench) dialFeed() (publisher, error) {
	if b.target.feedDirect && b.cfg.workload != nil {
		return dialFeed(b.target.natsURL)
	}
	pub, err := feed.DialPublisher(b.target.natsURL, "tickbench feed", b.cfg.subjectPrefix)
	if err != nil {
		return nil, fmt.Errorf("feed: %w", err)
	}
	return libraryPublisher{pub}, nil
}

// libraryPublisher is the NATS client library's publisher, which flushes
// on its own.
type libraryPublisher struct{ *feed.Publisher }

func (libraryPublisher) Flush() error { return nil }

// feedRun publishes a feed until ctx ends: publish for each message,
// flush at the end of each tick.
type feedRun func(ctx context.Context, publish func(subject string, payload []byte) error, flush func() error) error

// feedRunner is the feed of the run: the comparison's ticker feed for a
// workload, else feedsim's ticker, book and trade feed.
func (b *bench) feedRunner() (feedRun, error) {
	if b.cfg.workload != nil {
		syms, err := b.symbols()
		if err != nil {
			return nil, err
		}
		f, err := newTickerFeed(b.cfg.subjectPrefix, syms, b.cfg.rate, b.cfg.burst)
		if err != nil {
			return nil, err
		}
		return f.run, nil
	}
	sim, err := feedsim.New(feedsim.Config{
		Count: b.cfg.symbols, Rate: b.cfg.rate, Burst: b.cfg.burst, SubjectPrefix: b.cfg.subjectPrefix,
		SnapshotEvery: b.cfg.snapshotEvery, Seed: b.cfg.seed,
	})
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, publish func(string, []byte) error, _ func() error) error {
		return sim.Run(ctx, publish) // through the library, which flushes on its own (dialFeed)
	}, nil
}

// symbols are the feed's symbols (feedsim's names: SIM0004-USD, …).
func (b *bench) symbols() ([]string, error) {
	sim, err := feedsim.New(feedsim.Config{Count: b.cfg.symbols})
	if err != nil {
		return nil, err
	}
	return sim.Symbols(), nil
}

// specs decides every connection: codec, channels, stalled or not, source
// address and token. Stalled connections are spread evenly over the
// indexes; the choice is deterministic for a seed.
func (b *bench) specs() ([]clientSpec, error) {
	c := b.cfg
	rng := rand.New(rand.NewPCG(uint64(c.seed), 0x7469636b62656e63))
	symbols, err := b.symbols()
	if err != nil {
		return nil, err
	}
	var universe []string
	for _, k := range c.kinds {
		for _, s := range symbols {
			universe = append(universe, proto.Channel{Kind: k, Symbol: s}.String())
		}
	}
	ipv4 := b.target.url != "" && !strings.Contains(b.target.url, "[")
	ttl := c.duration + time.Duration(float64(c.conns)/c.rampRate*float64(time.Second)) + tokenTTLMargin
	specs := make([]clientSpec, c.conns)
	for i := range specs {
		s := clientSpec{idx: i, codec: codec.JSON(), token: b.target.token, compression: b.cfg.compression}
		if rng.Float64() < c.msgpackFraction {
			s.codec = codec.Msgpack()
		}
		s.stalled = math.Floor(float64(i+1)*c.stallFraction) > math.Floor(float64(i)*c.stallFraction)
		k := c.channelsPerConn
		if s.stalled && c.stallChannels > 0 {
			k = c.stallChannels
		}
		for _, j := range rng.Perm(len(universe))[:k] {
			s.channels = append(s.channels, universe[j])
		}
		if ipv4 {
			s.source = net.IPv4(127, 0, 0, byte(1+i/c.connsPerSource))
		}
		if b.target.mint != nil {
			tok, err := b.target.mint(fmt.Sprintf("tickbench-%d", i), ttl)
			if err != nil {
				return nil, err
			}
			s.token = tok
		}
		specs[i] = s
	}
	return specs, nil
}

// ramp starts handshakes at --ramp-rate and returns when every connection
// is subscribed or has failed, or ctx ends.
func (b *bench) ramp(ctx context.Context, specs []clientSpec) {
	interval := time.Duration(float64(time.Second) / b.cfg.rampRate)
	tick := time.NewTicker(max(interval, time.Millisecond))
	defer tick.Stop()
	perTick := max(1, int(math.Round(float64(time.Millisecond)/float64(interval))))
	sem := make(chan struct{}, maxDialInFlight)
	var wg sync.WaitGroup
	start, lastLog := time.Now(), time.Now()
	for i := 0; i < len(specs); {
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-tick.C:
		}
		for n := 0; n < perTick && i < len(specs); n, i = n+1, i+1 {
			sem <- struct{}{}
			wg.Add(1)
			go func(s clientSpec) {
				defer wg.Done()
				defer func() { <-sem }()
				b.connectOne(s)
			}(specs[i])
		}
		if !b.cfg.quiet && time.Since(lastLog) >= progressPeriod {
			lastLog = time.Now()
			b.mu.Lock()
			fmt.Fprintf(b.stderr, "ramp %4.0fs: started %d/%d, subscribed %d, failed %d, healthy closed %d\n",
				time.Since(start).Seconds(), i, len(specs), len(b.clients), b.failures, b.cnt.healthyClosed.Load())
			b.mu.Unlock()
		}
	}
	wg.Wait()
	if !b.cfg.quiet {
		fmt.Fprintf(b.stderr, "ramp done in %.1fs: subscribed %d/%d, failed %d\n",
			time.Since(start).Seconds(), len(b.clients), len(specs), b.failures)
	}
}

func (b *bench) connectOne(s clientSpec) {
	rcvbuf := 0
	if s.stalled {
		rcvbuf = b.cfg.stallRcvbuf
	}
	c := newClient(s, b.target.dialect, b.lat, b.sock, b.cnt, b.release)
	err := c.connect(b.target, b.cfg.handshakeWait, rcvbuf)
	b.mu.Lock()
	defer b.mu.Unlock()
	if err != nil {
		b.failures++
		if len(b.firstErrs) < maxFirstErrors {
			b.firstErrs = append(b.firstErrs, fmt.Sprintf("connection %d: %v", s.idx, err))
		}
		return
	}
	b.cnt.open.Add(1)
	b.clients = append(b.clients, c)
}

// progress prints one line per second until the window ends.
func (b *bench) progress(ctx context.Context, start time.Time) {
	end := time.NewTimer(b.cfg.duration)
	defer end.Stop()
	t := time.NewTicker(progressPeriod)
	defer t.Stop()
	last, lastAt := b.cnt.delivered.Load(), start
	for {
		select {
		case <-ctx.Done():
			return
		case <-end.C:
			return
		case now := <-t.C:
			if b.cfg.quiet {
				continue
			}
			d := b.cnt.delivered.Load()
			rate := float64(d-last) / now.Sub(lastAt).Seconds()
			last, lastAt = d, now
			s := summarize(b.lat.merged())
			gone := ""
			if exited, err := b.target.exited(); exited {
				gone = fmt.Sprintf(" (GATEWAY EXITED: %v)", err)
			}
			fmt.Fprintf(b.stderr, "%3.0fs: conns %d, delivered %.0f msg/s, p99 %.2f ms, stalled evicted %d, healthy closed %d%s\n",
				now.Sub(start).Seconds(), b.cnt.open.Load(), rate, s.P99, b.cnt.evicted.Load(), b.cnt.healthyClosed.Load(), gone)
		}
	}
}

// teardown lets stalled clients read what is left (to see the close frame,
// when the gateway sent one), closes every connection from our side and
// waits, bounded, for them to end.
func (b *bench) teardown() {
	close(b.release)
	b.mu.Lock()
	clients := append([]*client(nil), b.clients...)
	b.mu.Unlock()
	deadline := time.Now().Add(releaseWait)
	for _, c := range clients {
		if c.spec.stalled && c.evictedAt.Load() != 0 {
			select {
			case <-c.closed:
			case <-time.After(time.Until(deadline)):
			}
		}
	}
	for _, c := range clients {
		c.shutdown()
	}
	deadline = time.Now().Add(closeWait)
	for _, c := range clients {
		select {
		case <-c.closed:
		case <-time.After(time.Until(deadline)):
			_ = c.ws.NetConn().Close()
			<-c.closed
		}
	}
}

// tally counts values by key, sorted by key for stable output.
func tally(keys []string) map[string]int {
	m := map[string]int{}
	for _, k := range keys {
		m[k]++
	}
	return m
}

// sortedDurations returns ds sorted ascending.
func sortedDurations(ds []time.Duration) []time.Duration {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds
}
