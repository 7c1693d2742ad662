package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/tickgate/tickgate/auth"
)

// outageScenario kills the node's nats-server with SIGKILL under a
// subscribed client, which then subscribes to new channels and keeps
// answering the node's pings; it records every reply with its time since
// the kill.
type outageScenario struct {
	Record   time.Duration `json:"record"`       // --record
	Channels int           `json:"new_channels"` // --channels
	First    string        `json:"first_channel"`
	maxEvent int
}

func (s *outageScenario) register(fs *flag.FlagSet) {
	fs.DurationVar(&s.Record, "record", 25*time.Second, "how long to record after the kill")
	fs.IntVar(&s.Channels, "channels", 4, "subscribes for new channels sent back to back right after the kill")
	s.First, s.maxEvent = "ticker.OUTAGE", 1000
}

func (s *outageScenario) check() error {
	return positive(map[string]float64{"record": s.Record.Seconds(), "channels": float64(s.Channels)})
}

func (s *outageScenario) nodeNeeds() nodeNeeds { return nodeNeeds{externalNATS: true} }

// outageEvent is one message the client received after the kill.
type outageEvent struct {
	AtMS    float64 `json:"at_ms"` // since the kill
	Kind    string  `json:"kind"`  // type, or error:<code>
	ID      *int64  `json:"id,omitempty"`
	Channel string  `json:"channel,omitempty"`
	RetryMS *int64  `json:"retry_ms,omitempty"`
	State   string  `json:"state,omitempty"`
	Reason  string  `json:"reason,omitempty"`
}

// outageSample is the node seen from outside, once a second.
type outageSample struct {
	AtS           float64 `json:"at_s"`
	Evictions     float64 `json:"evictions_total"`
	NATSConnected float64 `json:"nats_connected"`
	Readyz        int     `json:"readyz_status"`
	PingsFromNode int64   `json:"pings_from_node"` // WebSocket pings the client answered so far (since the kill)
}

// outageResult is the scenario's result.
type outageResult struct {
	Sent      []sentCmd          `json:"sent"`
	Events    []outageEvent      `json:"events"`
	Dropped   int                `json:"events_not_kept"`
	Closed    *closeSeen         `json:"closed,omitempty"`
	Samples   []outageSample     `json:"samples"`
	Evictions map[string]float64 `json:"evictions"` // tickgate_evictions_total growth by reason
}

// sentCmd is a command the client sent after the kill.
type sentCmd struct {
	AtMS    float64 `json:"at_ms"` // since the kill
	ID      int64   `json:"id"`
	Channel string  `json:"channel"`
	Err     string  `json:"err,omitempty"` // the write failed
}

// closeSeen is a connection's end as the client saw it.
type closeSeen struct {
	AtMS float64 `json:"at_ms"`
	How  string  `json:"how"` // close code, or the kind of end without one
}

func (s *outageScenario) run(ctx context.Context, n *node, logf logFunc) (result, error) {
	first := channel(s.First)
	res := &outageResult{}
	var mu sync.Mutex
	var killAt time.Time // Guarded by mu; zero until the kill
	c := newClient(func(m *serverMsg, _ int, at time.Time) {
		mu.Lock()
		defer mu.Unlock()
		if killAt.IsZero() {
			return
		}
		if len(res.Events) >= s.maxEvent {
			res.Dropped++
			return
		}
		res.Events = append(res.Events, outageEvent{AtMS: ms(at.Sub(killAt)), Kind: m.kind(), ID: m.ID, Channel: m.Channel,
			RetryMS: m.RetryMS, State: m.State, Reason: m.Reason})
	})
	tok, err := n.creds.Signer.Sign(auth.TokenSpec{Subject: "outage", Channels: []string{">"}, TTL: time.Hour})
	if err != nil {
		return nil, err
	}
	if _, hs := n.dial(dialSpec{token: tok}, c); hs.Status != 101 {
		return nil, fmt.Errorf("client: %s", hs)
	}
	defer c.shutdown()
	if err := c.send(subscribeCmd(1, s.First)); err != nil {
		return nil, err
	}
	// The node subscribes on NATS only once a client wants the channel:
	// the first ticker is published after the ack.
	if err := waitFor(ctx, 10*time.Second, func() bool { return c.snapshotCounts()["subscribed"] > 0 }); err != nil {
		return nil, fmt.Errorf("no ack for %s: %w", s.First, err)
	}
	pub, err := n.publisher("outage")
	if err != nil {
		return nil, err
	}
	for seq := uint64(1); seq <= 3; seq++ {
		if err := pub.PublishMessage(first, tickerMsg(first.Symbol, seq, time.Now().UnixNano())); err != nil {
			pub.Close()
			return nil, err
		}
	}
	err = flush(pub)
	pub.Close()
	if err != nil {
		return nil, err
	}

	if err := waitFor(ctx, 10*time.Second, func() bool { return c.snapshotCounts()["snapshot"] > 0 }); err != nil {
		return nil, fmt.Errorf("no snapshot of %s before the kill: %w", s.First, err)
	}
	m0, err := n.metrics()
	if err != nil {
		return nil, err
	}
	pings0 := c.pings.Load()

	logf("nats-outage: kill -9 nats-server (%s), then %d subscribes; recording %v", n.natsBin, s.Channels, s.Record)
	mu.Lock()
	killAt = time.Now()
	mu.Unlock()
	if err := n.killNATS(); err != nil {
		return nil, err
	}
	for i := range s.Channels {
		id, name := int64(11+i), fmt.Sprintf("ticker.NEW%d", i+1)
		err := c.send(subscribeCmd(id, name))
		sent := sentCmd{AtMS: ms(time.Since(killAt)), ID: id, Channel: name}
		if err != nil {
			sent.Err = err.Error()
		}
		res.Sent = append(res.Sent, sent)
	}

	end := killAt.Add(s.Record)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for time.Now().Before(end) {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
		sm := outageSample{AtS: time.Since(killAt).Seconds(), PingsFromNode: c.pings.Load() - pings0, Readyz: status(n.admin + "/readyz")}
		if m, err := n.metrics(); err == nil {
			sm.Evictions, sm.NATSConnected = m.sum("tickgate_evictions_total"), m.sum("tickgate_nats_connected")
		}
		res.Samples = append(res.Samples, sm)
		closed := ""
		if at, how, _, ok := c.ended(); ok {
			closed = fmt.Sprintf(", connection closed at %.1f s: %s", at.Sub(killAt).Seconds(), how)
		}
		mu.Lock()
		nev := len(res.Events)
		mu.Unlock()
		logf("nats-outage: %4.1fs: %d messages since the kill, %d pings answered, evictions %.0f%s", sm.AtS, nev, sm.PingsFromNode, sm.Evictions, closed)
	}
	if at, how, byUs, ok := c.ended(); ok && !byUs {
		res.Closed = &closeSeen{AtMS: ms(at.Sub(killAt)), How: how}
	}
	if m1, err := n.metrics(); err == nil {
		res.Evictions = delta(m0, m1, "tickgate_evictions_total")
	}
	// The handler appends under mu until the read loop ends, which
	// c.shutdown (deferred) waits for: hand res over only after that.
	c.shutdown()
	return res, nil
}

// status is the HTTP status of a GET, 0 when none came.
func status(url string) int {
	cl := http.Client{Timeout: 2 * time.Second}
	resp, err := cl.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (r *outageResult) text(p printer) {
	p("t = 0: SIGKILL to nats-server; subscribes sent:")
	for _, s := range r.Sent {
		errText := ""
		if s.Err != "" {
			errText = " (send failed: " + s.Err + ")"
		}
		p("  %8.1f ms  id %d %s%s", s.AtMS, s.ID, s.Channel, errText)
	}
	p("messages received after the kill (%d, %d more not kept):", len(r.Events), r.Dropped)
	for _, e := range r.Events {
		var extra []string
		if e.ID != nil {
			extra = append(extra, fmt.Sprintf("id %d", *e.ID))
		}
		if e.Channel != "" {
			extra = append(extra, e.Channel)
		}
		if e.RetryMS != nil {
			extra = append(extra, fmt.Sprintf("retry_ms %d", *e.RetryMS))
		}
		if e.State != "" {
			extra = append(extra, "state "+e.State+" "+e.Reason)
		}
		p("  %8.1f ms  %s %s", e.AtMS, e.Kind, strings.Join(extra, " "))
	}
	if r.Closed != nil {
		p("connection closed by the node at %.1f ms: %s", r.Closed.AtMS, r.Closed.How)
	} else {
		p("connection still open at the end of the recording")
	}
	if len(r.Samples) > 0 {
		last := r.Samples[len(r.Samples)-1]
		p("node at %.0f s: /readyz %d, nats_connected %.0f, WebSocket pings answered since the kill %d",
			last.AtS, last.Readyz, last.NATSConnected, last.PingsFromNode)
	}
	p("evictions during the recording (tickgate_evictions_total): %v", r.Evictions)
}
