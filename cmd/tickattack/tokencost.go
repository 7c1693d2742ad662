package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/tickgate/tickgate/auth"
)

// tokenCostScenario measures what one token can make a node hold: as many
// connections as it allows per sub, each subscribed to many distinct
// channels, each channel a NATS subscription of the node.
type tokenCostScenario struct {
	Connections int           `json:"connections"`       // --connections
	Channels    int           `json:"channels_per_conn"` // --channels
	Batch       int           `json:"batch"`             // --batch
	Kinds       []string      `json:"kinds"`             // --kinds
	Wait        time.Duration `json:"wait"`              // --wait
	kinds       string
}

func (s *tokenCostScenario) register(fs *flag.FlagSet) {
	fs.IntVar(&s.Connections, "connections", 64, "connections opened with the one token (the node's default --max-conns-per-sub is 64)")
	fs.IntVar(&s.Channels, "channels", 1000, "distinct channels each connection subscribes to (distinct across connections too)")
	fs.IntVar(&s.Batch, "batch", 100, "channels per subscribe command")
	fs.StringVar(&s.kinds, "kinds", "ticker,book,trade", "channel kinds, used in turn")
	fs.DurationVar(&s.Wait, "wait", 30*time.Second, "bound on the answers to one subscribe command")
}

func (s *tokenCostScenario) check() error {
	for k := range strings.SplitSeq(s.kinds, ",") {
		switch k = strings.TrimSpace(k); k {
		case "ticker", "book", "trade":
			s.Kinds = append(s.Kinds, k)
		default:
			return fmt.Errorf("--kinds: %q is not ticker, book or trade", k)
		}
	}
	return positive(map[string]float64{"connections": float64(s.Connections), "channels": float64(s.Channels),
		"batch": float64(s.Batch), "wait": s.Wait.Seconds()})
}

func (s *tokenCostScenario) nodeNeeds() nodeNeeds { return nodeNeeds{} }

// costConn is one connection's subscribe bookkeeping.
type costConn struct {
	c        *client
	answered chan int // channels answered per reply (subscribed: its list; an error: 1, or the batch)
	batch    int
	mu       sync.Mutex
	accepted int            // Guarded by mu
	errors   map[string]int // Guarded by mu: by code
}

func (cc *costConn) handle(m *serverMsg, _ int, _ time.Time) {
	if m.ID == nil {
		return
	}
	n := 0
	cc.mu.Lock()
	switch m.Type {
	case "subscribed":
		cc.accepted += len(m.Channels)
		n = len(m.Channels)
	case "error":
		cc.errors[m.Code]++
		n = 1
		if m.Channel == "" {
			n = cc.batch // the whole command was refused
		}
	}
	cc.mu.Unlock()
	if n > 0 {
		cc.answered <- n
	}
}

// tokenCostResult is the scenario's result.
type tokenCostResult struct {
	Upgraded         int                `json:"upgraded"`
	Refused          map[string]int     `json:"refused,omitempty"` // by handshake outcome
	Requested        int                `json:"channels_requested"`
	Accepted         int                `json:"channels_accepted"`
	Errors           map[string]int     `json:"errors"`     // subscribe errors by code
	Unanswered       int                `json:"unanswered"` // channels without an answer within --wait
	Seconds          float64            `json:"subscribe_seconds"`
	NATSSubs         float64            `json:"nats_subscriptions"`           // tickgate_nats_subscriptions at the end
	SubsActive       float64            `json:"subscriptions_active"`         // tickgate_subscriptions_active at the end
	ServerSubs       *int64             `json:"nats_server_subscriptions"`    // growth of the embedded NATS server's count
	Usage            usage              `json:"usage"`                        // from before the first connection to the end
	RSSPerSubscribed float64            `json:"rss_growth_per_channel_bytes"` // (RSS end - start) / accepted
	Closed           map[string]int     `json:"closed,omitempty"`             // connections the node closed, by how
	Evictions        map[string]float64 `json:"evictions"`
}

func (s *tokenCostScenario) run(ctx context.Context, n *node, logf logFunc) (result, error) {
	tok, err := n.creds.Signer.Sign(auth.TokenSpec{Subject: "one-token", Channels: []string{">"}, TTL: time.Hour})
	if err != nil {
		return nil, err
	}
	m0, err := n.metrics()
	if err != nil {
		return nil, err
	}
	u0, _ := n.proc.Sample()
	var serverSubs0 uint32
	if n.natsEmb != nil {
		serverSubs0 = n.natsEmb.NumSubscriptions()
	}
	res := &tokenCostResult{Refused: map[string]int{}, Errors: map[string]int{}, Closed: map[string]int{}}
	var conns []*costConn
	for range s.Connections {
		cc := &costConn{answered: make(chan int, 4*s.Batch), batch: s.Batch, errors: map[string]int{}}
		cc.c = newClient(cc.handle)
		if _, hs := n.dial(dialSpec{token: tok}, cc.c); hs.Status != 101 {
			res.Refused[hs.String()]++
			continue
		}
		conns = append(conns, cc)
	}
	res.Upgraded = len(conns)
	defer func() {
		for _, cc := range conns {
			cc.c.shutdown()
		}
	}()
	logf("token-cost: %d connections upgraded, %d refused; subscribing %d channels each", res.Upgraded, s.Connections-res.Upgraded, s.Channels)

	start := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i, cc := range conns {
		wg.Go(func() {
			unanswered := s.subscribeAll(ctx, i, cc)
			mu.Lock()
			res.Unanswered += unanswered
			mu.Unlock()
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for waiting := true; waiting; {
		select {
		case <-done:
			waiting = false
		case <-time.After(time.Second):
			m, _ := n.metrics()
			logf("token-cost: %4.0fs: node holds %.0f NATS subscriptions", time.Since(start).Seconds(), m.sum("tickgate_nats_subscriptions"))
		}
	}
	res.Seconds = time.Since(start).Seconds()
	u1, _ := n.proc.Sample()
	m1, err := n.metrics()
	if err != nil {
		return nil, err
	}
	res.Usage = usageOf(u0, u1)
	res.NATSSubs, res.SubsActive = m1.sum("tickgate_nats_subscriptions"), m1.sum("tickgate_subscriptions_active")
	if n.natsEmb != nil {
		grown := int64(n.natsEmb.NumSubscriptions()) - int64(serverSubs0)
		res.ServerSubs = &grown
	}
	res.Evictions = delta(m0, m1, "tickgate_evictions_total")
	res.Requested = len(conns) * s.Channels
	for _, cc := range conns {
		cc.mu.Lock()
		res.Accepted += cc.accepted
		for k, v := range cc.errors {
			res.Errors[k] += v
		}
		cc.mu.Unlock()
		if _, how, byUs, ok := cc.c.ended(); ok && !byUs {
			res.Closed[how]++
		}
	}
	if res.Accepted > 0 {
		res.RSSPerSubscribed = float64(u1.RSS-u0.RSS) / float64(res.Accepted)
	}
	return res, nil
}

// subscribeAll sends connection i's channels in batches, each after the
// previous one was answered, and returns how many went unanswered.
func (s *tokenCostScenario) subscribeAll(ctx context.Context, i int, cc *costConn) int {
	unanswered := 0
	for b, id := 0, int64(1); b < s.Channels; b, id = b+s.Batch, id+1 {
		var names []string
		for j := b; j < min(b+s.Batch, s.Channels); j++ {
			names = append(names, fmt.Sprintf("%s.C%d-%d", s.Kinds[j%len(s.Kinds)], i, j))
		}
		if err := cc.c.send(subscribeCmd(id, names...)); err != nil {
			return unanswered + s.Channels - b
		}
		want := len(names)
		timeout := time.After(s.Wait)
		for want > 0 {
			select {
			case k := <-cc.answered:
				want -= k
			case <-timeout:
				unanswered += want
				want = 0
			case <-cc.c.closed:
				return unanswered + s.Channels - b
			case <-ctx.Done():
				return unanswered + s.Channels - b
			}
		}
	}
	return unanswered
}

func (r *tokenCostResult) text(p printer) {
	p("one token: %d connections upgraded, refused %s", r.Upgraded, counts(r.Refused))
	p("channels: %d requested, %d accepted, errors %s, %d unanswered, in %.1f s", r.Requested, r.Accepted, counts(r.Errors), r.Unanswered, r.Seconds)
	srv := "n/a"
	if r.ServerSubs != nil {
		srv = fmt.Sprint(*r.ServerSubs)
	}
	p("node holds: tickgate_nats_subscriptions %.0f, tickgate_subscriptions_active %.0f; NATS server subscriptions +%s", r.NATSSubs, r.SubsActive, srv)
	p("node: %s; RSS growth %.0f bytes per accepted channel", r.Usage, r.RSSPerSubscribed)
	p("connections closed by the node: %s; evictions %v", counts(r.Closed), r.Evictions)
}
