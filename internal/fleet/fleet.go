// Package fleet runs many Go clients (package client) against tickgate
// nodes and keeps, per client, what a reconnect storm or a node loss did to
// it: when it lost its connection, when it was back and every channel live
// again, which channels the node resumed, every trade in order or not, and
// the publish-to-receive latency of live data, by group and phase. It also
// publishes the synthetic feed and keeps what it published, so that a run
// can tell trades recovered from trades lost. cmd/tickstorm and the
// integration proof (cmd/tickgate) share it.
package fleet

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/tickgate/tickgate/client"
	"github.com/tickgate/tickgate/codec"
)

// Spec describes one member.
type Spec struct {
	Group    string   // a name for reports ("storm", "steady")
	URL      string   // wss:// or ws:// URL given to client.Dial
	Addrs    []string // when set, the TCP addresses to try in order instead of the URL's (a client-side list of nodes)
	Channels []string // subscribed once connected
	Token    string   // the bearer token
	Msgpack  bool     // the msgpack codec instead of JSON
}

// Config configures a Fleet.
type Config struct {
	// TLS is the client TLS configuration (wss://). Zero: system roots.
	TLS *tls.Config
	// Phases names the latency phases, in order (SetPhase selects one).
	// Zero: one phase, "all".
	Phases []string
	// BackoffMin and BackoffMax are the clients' reconnect backoff.
	// Zero: the client's defaults (250 ms, 30 s).
	BackoffMin, BackoffMax time.Duration
}

// Fleet is a set of members. Its methods are safe for concurrent use.
type Fleet struct {
	cfg     Config
	members []*Member // Static after Open.
	phase   atomic.Int32

	latMu sync.Mutex
	lat   map[string][]*hdrhistogram.Histogram // Guarded by latMu: group → per phase, live data only.
}

// Latency histogram range in microseconds: 1 µs to 120 s, 3 digits.
const (
	latMin    = 1
	latMax    = 120_000_000
	latDigits = 3
)

// New returns an empty fleet.
func New(cfg Config) *Fleet {
	if len(cfg.Phases) == 0 {
		cfg.Phases = []string{"all"}
	}
	return &Fleet{cfg: cfg, lat: map[string][]*hdrhistogram.Histogram{}}
}

// SetPhase makes later latencies count in phase i of Config.Phases.
func (f *Fleet) SetPhase(i int) { f.phase.Store(int32(i)) }

func (f *Fleet) latency(group string, d time.Duration, replay bool) {
	if replay {
		return
	}
	us := min(max(d.Microseconds(), latMin), latMax)
	p := int(f.phase.Load())
	f.latMu.Lock()
	hs := f.lat[group]
	if hs == nil {
		for range f.cfg.Phases {
			hs = append(hs, hdrhistogram.New(latMin, latMax, latDigits))
		}
		f.lat[group] = hs
	}
	_ = hs[p].RecordValue(us)
	f.latMu.Unlock()
}

// Latency summarises the live-data latency of group in each phase.
type Latency struct {
	Phase          string
	Count          int64
	P50, P99, P999 time.Duration
	Max            time.Duration
}

// Latencies returns the latency of group per phase.
func (f *Fleet) Latencies(group string) []Latency {
	f.latMu.Lock()
	defer f.latMu.Unlock()
	out := make([]Latency, len(f.cfg.Phases))
	for i, name := range f.cfg.Phases {
		out[i].Phase = name
		hs := f.lat[group]
		if hs == nil || hs[i].TotalCount() == 0 {
			continue
		}
		h := hs[i]
		us := func(v int64) time.Duration { return time.Duration(v) * time.Microsecond }
		out[i].Count = h.TotalCount()
		out[i].P50, out[i].P99, out[i].P999 = us(h.ValueAtQuantile(50)), us(h.ValueAtQuantile(99)), us(h.ValueAtQuantile(99.9))
		out[i].Max = us(h.Max())
	}
	return out
}

// Open dials every spec, at most rate new clients per second (0: no
// limit), each subscribing to its channels, and returns once all are
// subscribed; the first error ends it (the members opened so far stay
// for Close).
func (f *Fleet) Open(ctx context.Context, specs []Spec, rate float64, progress func(opened int)) error {
	var (
		wg      sync.WaitGroup
		errOnce sync.Once
		first   error
		opened  atomic.Int64
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	base := len(f.members)
	for i, s := range specs {
		m := &Member{Index: base + i, Group: s.Group, fleet: f, channels: s.Channels,
			states: map[string]client.ChannelState{}, trades: map[string]*tradeLog{}, gaps: map[client.GapReason]int{}}
		f.members = append(f.members, m)
		if rate > 0 {
			due := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				select {
				case <-ctx.Done():
				case <-time.After(d):
				}
			}
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			if err := m.open(ctx, s.URL, f.options(s)); err != nil {
				errOnce.Do(func() {
					first = fmt.Errorf("fleet: member %d (%s): %w", m.Index, s.Group, err)
					cancel()
				})
				return
			}
			if n := opened.Add(1); progress != nil {
				progress(int(n))
			}
		})
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		first = ctx.Err()
	}
	return first
}

func (f *Fleet) options(s Spec) client.Options {
	token := s.Token
	o := client.Options{
		TokenSource: func(context.Context) (string, error) { return token, nil },
		TLS:         f.cfg.TLS,
		BackoffMin:  f.cfg.BackoffMin,
		BackoffMax:  f.cfg.BackoffMax,
	}
	if s.Msgpack {
		o.Codec = codec.Msgpack()
	}
	if len(s.Addrs) > 0 {
		o.Dialer = FailoverDialer(s.Addrs)
	}
	return o
}

// FailoverDialer dials the first of addrs that accepts, in order,
// whatever address the client asks for: a client-side list of nodes
// (the URL's host still names the TLS server).
func FailoverDialer(addrs []string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	addrs = append([]string(nil), addrs...)
	return func(ctx context.Context, network, _ string) (net.Conn, error) {
		var last error
		var d net.Dialer
		for _, a := range addrs {
			c, err := d.DialContext(ctx, network, a)
			if err == nil {
				return c, nil
			}
			last = err
			if ctx.Err() != nil {
				break
			}
		}
		return nil, last // the last node's answer: the one that tells most
	}
}

// Members returns the members, in the order opened.
func (f *Fleet) Members() []*Member { return f.members }

// Group returns the members of group.
func (f *Fleet) Group(group string) []*Member {
	var out []*Member
	for _, m := range f.members {
		if m.Group == group {
			out = append(out, m)
		}
	}
	return out
}

// Close closes every member's client, concurrently.
func (f *Fleet) Close() {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 256)
	for _, m := range f.members {
		if m.c == nil {
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			_ = m.c.Close()
		})
	}
	wg.Wait()
}

// Durations summarises a set of durations.
type Durations struct {
	N                  int
	P50, P99, Max, Min time.Duration
}

// Summarize returns the quantiles of ds (nearest rank).
func Summarize(ds []time.Duration) Durations {
	if len(ds) == 0 {
		return Durations{}
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	q := func(p float64) time.Duration {
		i := int(p*float64(len(s))+0.999999) - 1
		return s[min(max(i, 0), len(s)-1)]
	}
	return Durations{N: len(s), P50: q(0.50), P99: q(0.99), Max: s[len(s)-1], Min: s[0]}
}
