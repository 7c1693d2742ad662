package gateway

import (
	"encoding/binary"
	"errors"
	"sync/atomic"
	"time"

	"github.com/lxzan/gws"

	"github.com/tickgate/tickgate/proto"
)

const (
	// closeWriteTimeout bounds writing the close frame of a closing
	// connection.
	closeWriteTimeout = time.Second
	// maxWriteBytes caps one write: a batch larger than this goes out in
	// several writes, each with its own deadline, so a slow but moving
	// reader is not mistaken for a stalled one.
	maxWriteBytes = 64 << 10
)

// pingFrame returns a WebSocket ping carrying id.
func pingFrame(id uint64) []byte {
	f := []byte{0x80 | byte(gws.OpcodePing), 8}
	return binary.BigEndian.AppendUint64(f, id)
}

// progress tracks how far the client has read, with numbered pings: a
// client reads frames in order and answers a ping only after everything
// written before it, so the pong to a ping sent after some data confirms
// that data arrived. A ping unanswered for LagTimeout means the client
// stopped reading or is that far behind, whatever the kernel buffers still
// absorb, and evicts it.
//
// RFC 6455 has a pong echo its ping's payload, and browsers do; some
// client libraries answer with an empty pong, which then confirms the
// latest ping.
type progress struct {
	sent   atomic.Uint64 // Written by the writer: the id of the last ping sent.
	acked  atomic.Uint64 // Written by the read loop: the highest id answered.
	sentAt time.Time     // Owned by the writer: when the last ping was sent.
	dirty  bool          // Owned by the writer: data went out since that ping.
	// sentNs is sentAt in Unix ns, written by the writer before the ping
	// it times (and before sent moves to its id), for the read loop; rtt
	// is the round trip of the last ping answered (ns, 0: none yet),
	// written by the read loop, read by inspection.
	sentNs atomic.Int64
	rtt    atomic.Int64
}

// pong records a pong from the read loop, received at now (Unix ns).
// The writer sends a ping only when the one before is answered, so a pong
// for the latest ping, the first for it, times that ping: the round trip
// includes the client's reading of whatever was sent before the ping.
func (p *progress) pong(payload []byte, now int64) {
	latest := p.sent.Load()
	id := latest
	if len(payload) == 8 {
		id = min(id, binary.BigEndian.Uint64(payload))
	}
	if id == latest && id > p.acked.Load() {
		if at := p.sentNs.Load(); at > 0 && now >= at {
			p.rtt.Store(max(now-at, 1))
		}
	}
	for {
		cur := p.acked.Load()
		if id <= cur || p.acked.CompareAndSwap(cur, id) {
			return
		}
	}
}

// outstanding reports whether the last ping is still unanswered.
func (p *progress) outstanding() bool { return p.acked.Load() < p.sent.Load() }

// writeLoop is the connection's one writer: it owns every write to the
// socket after the handshake. Each time it wakes it takes everything due
// from the outbox and writes it in as few writes as it can (one, up to
// maxWriteBytes), each with a deadline; a write that makes no progress for
// WriteTimeout evicts the connection. Every check interval it sends a
// numbered ping when data went out since the last answered one (or a
// heartbeat interval passed), and evicts the connection when a ping stayed
// unanswered for LagTimeout (see progress); the pongs also renew the
// client's read deadline, so a client that only listens stays. It sends a
// heartbeat message when nothing else went out for an interval, and the
// close frame once the outbox is closing. It returns when the connection
// is done.
func (c *conn) writeLoop() {
	defer c.srv.recoverPanic("writer", c)
	cfg := &c.srv.cfg
	interval := cfg.HeartbeatInterval
	heartbeat := time.NewTimer(interval)
	defer heartbeat.Stop()
	check := time.NewTicker(progressEvery(cfg))
	defer check.Stop()
	throttle := time.NewTimer(time.Hour)
	throttle.Stop()
	defer throttle.Stop()
	var (
		b   batch
		buf []byte
	)
	for {
		select {
		case <-c.out.wake:
		case <-throttle.C:
		case <-heartbeat.C:
			hb := c.srv.codecs.frame(c.codecIdx, proto.Heartbeat{Type: proto.TypeHeartbeat, TS: cfg.Now().UnixNano()})
			if err := c.write(hb); err != nil {
				c.writeFailed(err)
				return
			}
			c.prog.dirty = true
			heartbeat.Reset(interval)
			continue
		case <-check.C:
			if err := c.checkProgress(); err != nil {
				c.writeFailed(err)
				return
			}
			continue
		case <-c.done:
			return
		}
		closing := c.out.take(&b, cfg.Now())
		if n := len(b.items); n > 0 {
			c.srv.metrics.outboxPending.Observe(float64(n))
			var err error
			if buf, err = c.writeBatch(&b, buf[:0]); err != nil {
				c.writeFailed(err)
				return
			}
			c.out.wrote()
			c.prog.dirty = true
			heartbeat.Reset(interval)
		}
		if closing != nil {
			c.writeClose(*closing)
			return
		}
		if next := c.out.nextDelayed(); !next.IsZero() {
			throttle.Reset(next.Sub(cfg.Now()))
		}
	}
}

// progressEvery is how often the writer checks the client's progress:
// often enough that a client that stalls is evicted within about
// LagTimeout plus this.
func progressEvery(cfg *Config) time.Duration {
	return min(time.Second, cfg.LagTimeout/4, cfg.HeartbeatInterval)
}

// checkProgress evicts a client silent for IdleTimeout or whose last ping
// went unanswered for LagTimeout, else sends the next ping when data went out since the
// last one or a heartbeat interval passed.
func (c *conn) checkProgress() error {
	cfg := &c.srv.cfg
	now := cfg.Now()
	if now.UnixNano()-c.lastSeen.Load() > int64(cfg.IdleTimeout) {
		c.evict(evictIdleTimeout)
		return nil
	}
	if c.prog.outstanding() {
		if now.Sub(c.prog.sentAt) > cfg.LagTimeout {
			c.evict(evictLagTimeout)
		}
		return nil
	}
	if !c.prog.dirty && now.Sub(c.prog.sentAt) < cfg.HeartbeatInterval {
		return nil
	}
	c.prog.sentNs.Store(now.UnixNano())
	id := c.prog.sent.Add(1)
	c.prog.sentAt, c.prog.dirty = now, false
	return c.write(pingFrame(id))
}

// writeBatch encodes what the batch holds unencoded (updates for this
// connection alone), then writes the frames back to back, flushing every
// maxWriteBytes. It returns buf for reuse.
func (c *conn) writeBatch(b *batch, buf []byte) ([]byte, error) {
	m := c.srv.metrics
	for i := range b.items {
		p := &b.items[i]
		if p.frame == nil {
			if p.upd.Type == "" { // a frame whose encoding failed (logged)
				continue
			}
			if p.frame = c.srv.codecs.frame(c.codecIdx, p.upd); p.frame == nil {
				continue // encoding failed; logged
			}
			p.upd = proto.Update{}
		}
		if len(buf) > 0 && len(buf)+len(p.frame) > maxWriteBytes {
			if err := c.write(buf); err != nil {
				return buf, err
			}
			buf = buf[:0]
		}
		buf = append(buf, p.frame...)
	}
	if len(buf) > 0 {
		if err := c.write(buf); err != nil {
			return buf, err
		}
	}
	now := c.srv.cfg.Now().UnixNano()
	for i := range b.items {
		p := &b.items[i]
		if p.ts > 0 {
			m.deliveryLatency.Observe(float64(now-p.ts) / 1e9)
		}
		*p = pending{} // release shared bytes
	}
	m.messagesSent.Add(float64(len(b.items)))
	c.msgsSent.Add(uint64(len(b.items)))
	b.items = b.items[:0]
	return buf, nil
}

// write writes p to the socket with the write deadline.
func (c *conn) write(p []byte) error {
	nc := c.ws.NetConn()
	if err := nc.SetWriteDeadline(c.srv.cfg.Now().Add(c.srv.cfg.WriteTimeout)); err != nil {
		return err
	}
	_, err := nc.Write(p)
	if err == nil {
		c.srv.metrics.bytesSent.Add(float64(len(p)))
		c.bytesSent.Add(uint64(len(p)))
	}
	return err
}

// writeClose sends the close frame (gws closes the socket after it); the
// reader then sees the socket end and cleans up.
func (c *conn) writeClose(d proto.Disconnect) {
	_ = c.ws.SetWriteDeadline(c.srv.cfg.Now().Add(closeWriteTimeout))
	_ = c.ws.WriteClose(uint16(d.Code), d.ReasonBytes())
	c.srv.log.Info("connection closed", c.logAttrs("code", int(d.Code), "reason", d.Reason)...)
}

// writeFailed handles a write that failed or timed out. Nothing more can
// be sent on the socket, so it is closed; a timeout is an eviction.
func (c *conn) writeFailed(err error) {
	var ne interface{ Timeout() bool }
	if errors.As(err, &ne) && ne.Timeout() {
		c.srv.metrics.evictions.WithLabelValues(evictWriteTimeout).Inc()
		c.srv.log.Warn("slow consumer evicted", c.logAttrs("reason", evictWriteTimeout)...)
	} else {
		c.srv.log.Debug("write failed", c.logAttrs("err", err.Error())...)
	}
	_ = c.ws.NetConn().Close()
}
