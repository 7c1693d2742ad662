package gateway

import (
	"encoding/binary"
	"errors"
	"net"
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

// pingFrameBytes is the size of a progress ping: a header and an 8-byte id.
const pingFrameBytes = 10

// appendPing appends a WebSocket ping carrying id to dst.
func appendPing(dst []byte, id uint64) []byte {
	dst = append(dst, 0x80|byte(gws.OpcodePing), 8)
	return binary.BigEndian.AppendUint64(dst, id)
}

// progress tracks how far the client has read, with numbered pings: a
// client reads frames in order and answers a ping only after everything
// written before it, so the pong to a ping sent after some data confirms
// that data arrived. A ping unanswered for LagTimeout means the client
// stopped reading or is that far behind, whatever the kernel buffers still
// absorb, and evicts it (sweep).
//
// RFC 6455 has a pong echo its ping's payload, and browsers do; some
// client libraries answer with an empty pong, which then confirms the
// latest ping.
type progress struct {
	sent  atomic.Uint64 // Written by the writer: the id of the last ping sent.
	acked atomic.Uint64 // Written by the read loop: the highest id answered.
	// sentNs is when the last ping was sent (Unix ns; at first when the
	// connection was made), written by the writer before the ping goes
	// out (and before sent moves to its id), read by the sweep and the
	// read loop.
	sentNs atomic.Int64
	// dirty is set by the writer when data went out, cleared when a ping
	// goes out after it; read by the sweep.
	dirty atomic.Bool
	// rtt is the round trip of the last ping answered (ns, 0: none yet),
	// written by the read loop, read by inspection.
	rtt atomic.Int64
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

// Chores the node's sweep (sweep.go) asks of a writer, in conn.chores.
const (
	choreHeartbeat uint32 = 1 << iota // nothing went out for HeartbeatInterval
	chorePing                         // time for a progress ping
)

// writeLoop is one run of the connection's writer goroutine. The writer
// owns every write to the socket after the handshake; one writer round
// runs at a time, on this goroutine or, for a connection whose writer is
// not running when a feed message is fanned out to it, on the fan-out's
// goroutine (inline.go). The goroutine runs only while there is work
// (writerrun.go): everything that has work for it wakes it, starting it
// when it does not run: data queued, a throttled subscription falling
// due (a timer made only for a connection that has one), the node's
// sweep (a heartbeat or a ping due), the end of the connection. Each
// round takes everything due from the outbox and writes it, with the
// ping or heartbeat due, in as few writes as it can (one, up to
// maxWriteBytes); a write that makes no progress for WriteTimeout evicts
// the connection (see write). After a round with no wake-up behind it
// the writer parks until the node's next sweep tick, and the run ends
// there unless woken. The writer sends the close frame once the outbox is
// closing, and ends for good then, or when the connection is done.
// Liveness (idle and lag timeouts) is the sweep's.
func (c *conn) writeLoop() {
	reserveStack() // its first write would grow the stack, deep (stack.go)
	defer c.srv.recoverPanic("writer", c)
	w := c.srv.scratch.get()
	idle := false
	defer func() { c.endWriter(w, idle) }()
	var t writeTally
	defer t.flush() // what a round that panicked had written
	for first := true; ; first = false {
		if !c.out.run.next(first, c.out.wake) {
			idle = true
			return
		}
		clk := fanClock{clock: c.srv.cfg.Now}
		over, _ := c.round(w, &clk, false, &t)
		t.flush()
		if over {
			return
		}
	}
}

// round is one writer round: it takes everything due from the outbox and
// writes it, with the ping or heartbeat due, and the close frame once the
// outbox is closing. It reports over when the writer is done for good
// (the connection ended, the close frame went out, a write failed).
//
// An inline round (inline.go) runs on the fan-out's goroutine with the
// socket in inline mode, where writes never wait; it leaves the close
// frame, which waits, to a writer goroutine, and reports handOff then.
// A round on the writer goroutine first writes what an inline round's
// socket kept (sockConn.flush).
//
// clk is the round's instant: read at its first use, and read again after
// the round's write (writeBatch), so that the next round of an inline
// sweep starts from that reading (fanClock).
func (c *conn) round(w *writerScratch, clk *fanClock, inline bool, t *writeTally) (over, handOff bool) {
	cfg := &c.srv.cfg
	b, buf := &w.b, &w.buf
	if c.gone.Load() {
		return true, false
	}
	if !inline && c.sock != nil && c.sock.kept() {
		if err := c.flushKept(); err != nil {
			c.writeFailed(err)
			return true, false
		}
	}
	now := clk.now()
	chores := c.chores.Swap(0)
	closing := c.out.take(b, now)
	t.m = c.srv.metrics
	if n := b.len(); n > 0 {
		t.took(n)
	}
	// What follows the data: a heartbeat or a ping, or both. A ping alone
	// is built in place, so that a round pinging a busy connection (four
	// times per lag timeout) allocates nothing for it.
	var tailBytes [pingFrameBytes]byte
	tail := tailBytes[:0]
	if closing != nil {
		chores = 0 // the close frame is what goes out next
	}
	beat := chores&choreHeartbeat != 0 && b.len() == 0 && now.UnixNano()-c.lastWrite.Load() >= int64(cfg.HeartbeatInterval)
	if beat {
		tail = c.srv.codecs.frame(c.variant, proto.Heartbeat{Type: proto.TypeHeartbeat, TS: now.UnixNano()})
	}
	pinged := chores&chorePing != 0 && !c.prog.outstanding()
	if pinged {
		c.prog.sentNs.Store(now.UnixNano())
		tail = appendPing(tail, c.prog.sent.Add(1))
	}
	if data := b.len() > 0; data || len(tail) > 0 {
		var err error
		if *buf, err = c.writeBatch(b, (*buf)[:0], tail, clk, inline, t); err != nil {
			c.writeFailed(err)
			return true, false
		}
		if data && !inline {
			c.out.wrote() // an inline round's data may be kept: writeInline tells
		}
		if data || beat {
			c.lastWrite.Store(now.UnixNano())
		}
		c.prog.dirty.Store(!pinged) // a ping confirms what it follows
	}
	if closing != nil {
		if inline {
			return false, true
		}
		c.writeClose(*closing)
		return true, false
	}
	if b.delayed {
		if next := c.out.nextDelayed(); !next.IsZero() {
			c.armThrottle(next.Sub(cfg.Now()))
		}
	}
	return false, false
}

// flushKept writes what the socket kept in inline mode (an inline
// round's data, ping or heartbeat, or a close frame gws wrote meanwhile),
// within the write deadline, and tells the outbox its data is written:
// until then it counts it as being written, and updates for it fold.
func (c *conn) flushKept() error {
	cfg := &c.srv.cfg
	if err := c.deadline.arm(c.sock, cfg.Now(), cfg.WriteTimeout, deadlineSlack(cfg)); err != nil {
		return err
	}
	if err := c.sock.flush(); err != nil {
		return err
	}
	c.out.wrote() // a no-op when no data was kept: take left writing false
	return nil
}

// writeBatch encodes what the batch holds unencoded (updates for this
// connection alone), then writes the frames back to back and tail (a
// heartbeat, a ping) after them, flushing every maxWriteBytes. It returns
// buf for reuse. The clock is read after the write, for the messages'
// delivery latency, and that reading becomes clk's instant. inline: the
// socket is in inline mode (c.write). The node's metrics of what it
// writes go to t (its round's, which names the node's metrics), the
// caller's to flush.
func (c *conn) writeBatch(b *batch, buf, tail []byte, clk *fanClock, inline bool, t *writeTally) ([]byte, error) {
	var err error
	for i := range b.frames {
		if buf, err = c.appendFrame(buf, b.frames[i].frame, inline, t); err != nil {
			return buf, err
		}
	}
	for i := range b.items {
		p := &b.items[i]
		if p.frame == nil {
			if p.upd.Type == "" { // a frame whose encoding failed (logged)
				continue
			}
			if p.frame = c.srv.codecs.frame(c.variant, p.upd); p.frame == nil {
				continue // encoding failed; logged
			}
			p.upd = proto.Update{}
		}
		if buf, err = c.appendFrame(buf, p.frame, inline, t); err != nil {
			return buf, err
		}
	}
	buf = append(buf, tail...)
	if len(buf) > 0 {
		if err := c.write(buf, inline, t); err != nil {
			return buf, err
		}
	}
	n := b.len()
	if n == 0 {
		return buf, nil
	}
	done := clk.read().UnixNano()
	for i := range b.frames {
		it := &b.frames[i]
		if it.ts > 0 {
			t.delivered(done - it.ts)
		}
		*it = item{} // release shared bytes
	}
	for i := range b.items {
		p := &b.items[i]
		if p.ts > 0 {
			t.delivered(done - p.ts)
		}
		*p = pending{} // release shared bytes
	}
	t.msgs += uint64(n)
	c.msgsSent.Add(uint64(n))
	b.frames, b.items = b.frames[:0], b.items[:0]
	return buf, nil
}

// appendFrame appends frame to buf, writing buf out first when the frame
// would take it past maxWriteBytes.
func (c *conn) appendFrame(buf, frame []byte, inline bool, t *writeTally) ([]byte, error) {
	if len(buf) > 0 && len(buf)+len(frame) > maxWriteBytes {
		if err := c.write(buf, inline, t); err != nil {
			return buf, err
		}
		buf = buf[:0]
	}
	return append(buf, frame...), nil
}

// deadlineSlack is how far beyond WriteTimeout the write deadline may lie:
// the deadline is moved only when less than WriteTimeout is left, so a
// busy writer sets it about once per this instead of once per write (each
// set is a runtime timer update). A write that makes no progress is thus
// cut after WriteTimeout to WriteTimeout plus this.
func deadlineSlack(cfg *Config) time.Duration { return cfg.WriteTimeout / 4 }

// writeDeadline is a socket's write deadline as its writer last set it.
type writeDeadline struct{ at time.Time }

// arm makes sure the deadline of nc lies at least timeout after now,
// moving it to timeout plus slack after now only when it does not.
func (d *writeDeadline) arm(nc net.Conn, now time.Time, timeout, slack time.Duration) error {
	if d.at.Sub(now) >= timeout {
		return nil
	}
	d.at = now.Add(timeout + slack)
	return nc.SetWriteDeadline(d.at)
}

// write writes p to the socket, at least WriteTimeout before the deadline
// (see deadlineSlack). In inline mode (inline.go) a write never waits and
// the deadline is not looked at: whatever the socket keeps, flushKept
// writes under a deadline it sets. The bytes written count in t, the
// caller's to flush, and in the connection's own counter.
func (c *conn) write(p []byte, inline bool, t *writeTally) error {
	nc := c.netConn()
	if !inline {
		cfg := &c.srv.cfg
		if err := c.deadline.arm(nc, cfg.Now(), cfg.WriteTimeout, deadlineSlack(cfg)); err != nil {
			return err
		}
	}
	_, err := nc.Write(p)
	if err == nil {
		t.bytes += uint64(len(p))
		c.bytesSent.Add(uint64(len(p)))
	}
	return err
}

// netConn is what the writer writes its frames to: the TLS connection,
// the socket, or, when the listener's connections are neither (tests),
// gws's NetConn (see conn.tlsConn).
func (c *conn) netConn() net.Conn {
	switch {
	case c.tlsConn != nil:
		return c.tlsConn
	case c.sock != nil:
		return c.sock
	}
	return c.ws.NetConn()
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
