package gateway

import "time"

// The node's connection sweep: one goroutine per node, running while the
// node has connections, looks at every connection a few times per
// heartbeat interval and lag timeout, instead of a heartbeat timer and a
// progress ticker per connection (each one a runtime timer to move, and a
// channel in the writer's select, per write). A connection costs the sweep
// a few atomic loads; its writer is woken only when it has a chore.

// sweepEvery is the sweep's period: fine enough that a heartbeat, a lag
// or an idle eviction comes at most an eighth (a sixteenth for the
// heartbeat) of its interval late, and at least once a second.
func sweepEvery(cfg *Config) time.Duration {
	return max(min(time.Second, cfg.HeartbeatInterval/16, cfg.LagTimeout/8, cfg.IdleTimeout/8), time.Millisecond)
}

// pingEvery is how often a connection with data going out gets a progress
// ping: four per LagTimeout, so that a client that stops reading is
// evicted within about 1.25 LagTimeout (plus a sweep period: a ping due
// waits that long for data to go out with), and at least one per heartbeat
// interval, so that a client that only listens has something to answer
// within IdleTimeout. (It was once a second: at 10,000 connections,
// 10,000 pings and pongs a second for nothing.)
func pingEvery(cfg *Config) time.Duration {
	return min(cfg.LagTimeout/4, cfg.HeartbeatInterval)
}

// sweepConns runs the sweep until stop is closed: untrack closes it when
// the node's last connection goes, track starts a sweep with the next one.
func (s *Server) sweepConns(stop <-chan struct{}) {
	t := time.NewTicker(sweepEvery(&s.cfg))
	defer t.Stop()
	var conns []*conn
	for {
		select {
		case <-t.C:
		case <-stop:
			return
		}
		s.mu.Lock()
		for c := range s.conns {
			conns = append(conns, c)
		}
		s.mu.Unlock()
		now := s.cfg.Now().UnixNano()
		for _, c := range conns {
			c.sweep(now)
		}
		clear(conns)
		conns = conns[:0]
		s.grace.tick() // writers parked now end (writerrun.go)
	}
}

// sweep evicts c when the client was silent for IdleTimeout or left its
// last ping unanswered for LagTimeout, and otherwise wakes the writer when
// a heartbeat (nothing went out for HeartbeatInterval) or a ping (data
// went out since the last one and pingEvery passed, or HeartbeatInterval
// passed) is due. now is Unix ns.
func (c *conn) sweep(now int64) {
	cfg := &c.srv.cfg
	if now-c.lastSeen.Load() > int64(cfg.IdleTimeout) {
		c.evict(evictIdleTimeout)
		return
	}
	var chores uint32
	sincePing := now - c.prog.sentNs.Load()
	switch {
	case c.prog.outstanding():
		if sincePing > int64(cfg.LagTimeout) {
			c.evict(evictLagTimeout)
			return
		}
	case sincePing >= int64(cfg.HeartbeatInterval),
		sincePing >= int64(pingEvery(cfg)) && c.prog.dirty.Load():
		chores |= chorePing
	}
	if now-c.lastWrite.Load() >= int64(cfg.HeartbeatInterval) {
		chores |= choreHeartbeat
	}
	if chores == 0 {
		return
	}
	// A ping due on a connection with data going out waits for the
	// writer's next data, which it goes out with in one write (the writer
	// takes its chores each time it wakes): waking every writer whose ping
	// fell due would make each sweep a burst of writes, a third of a busy
	// node's connections at once, that the data behind it waits for. A
	// ping still waiting at the next sweep is sent on its own then.
	if prev := c.chores.Or(chores); chores == chorePing && prev&chorePing == 0 && c.prog.dirty.Load() {
		return
	}
	c.out.wakeWriter()
}
