package gateway

import (
	"errors"
	"time"

	"github.com/lxzan/gws"

	"github.com/tickgate/tickgate/proto"
)

// closeWriteTimeout bounds writing the close frame of a closing connection.
const closeWriteTimeout = time.Second

// writeLoop is the connection's one writer: it owns every write to the
// socket after the handshake. It drains everything queued, writes it with a
// deadline on each write, sends a WebSocket ping every heartbeat interval
// (the client's pong renews its read deadline, so a client that only
// listens stays connected while one that vanished is closed), a heartbeat
// message when nothing else went out for an interval, and the close frame
// once the outbox is closing. It returns when the connection is done.
func (c *conn) writeLoop() {
	defer c.srv.recoverPanic("writer", c)
	interval := c.srv.cfg.HeartbeatInterval
	heartbeat := time.NewTimer(interval)
	defer heartbeat.Stop()
	ping := time.NewTicker(interval)
	defer ping.Stop()
	var spare []frame
	for {
		select {
		case <-c.out.wake:
		case <-heartbeat.C:
			if err := c.writeHeartbeat(); err != nil {
				c.writeFailed(err)
				return
			}
			heartbeat.Reset(interval)
			continue
		case <-ping.C:
			if err := c.writeFrame(frame{op: gws.OpcodePing}); err != nil {
				c.writeFailed(err)
				return
			}
			continue
		case <-c.done:
			return
		}
		q, closing := c.out.take(spare)
		for i := range q {
			if err := c.writeFrame(q[i]); err != nil {
				c.writeFailed(err)
				return
			}
			q[i] = frame{} // release shared bytes early
		}
		spare = q
		if len(q) > 0 {
			heartbeat.Reset(interval)
		}
		if closing != nil {
			c.writeClose(*closing)
			return
		}
	}
}

func (c *conn) writeFrame(f frame) error {
	if err := c.ws.SetWriteDeadline(c.srv.cfg.Now().Add(c.srv.cfg.WriteTimeout)); err != nil {
		return err
	}
	return c.ws.WriteMessage(f.op, f.b)
}

func (c *conn) writeHeartbeat() error {
	now := c.srv.cfg.Now()
	b, err := c.codec.Append(nil, proto.Heartbeat{Type: proto.TypeHeartbeat, TS: now.UnixNano()})
	if err != nil {
		return err
	}
	return c.writeFrame(frame{op: c.opcode, b: b})
}

// writeClose sends the close frame (gws closes the socket after it); the
// reader then sees the socket end and cleans up.
func (c *conn) writeClose(d proto.Disconnect) {
	_ = c.ws.SetWriteDeadline(c.srv.cfg.Now().Add(closeWriteTimeout))
	_ = c.ws.WriteClose(uint16(d.Code), d.ReasonBytes())
	c.srv.log.Info("connection closed", c.logAttrs(
		"code", int(d.Code), "reason", d.Reason)...)
}

// writeFailed handles a write that failed or timed out: gws has already
// closed the socket, so nothing more can be sent; a timeout is an eviction.
func (c *conn) writeFailed(err error) {
	var ne interface{ Timeout() bool }
	if errors.As(err, &ne) && ne.Timeout() {
		c.srv.log.Warn("slow consumer evicted", c.logAttrs("reason", "write_timeout")...)
	} else {
		c.srv.log.Debug("write failed", c.logAttrs("err", err.Error())...)
	}
	_ = c.ws.NetConn().Close()
}
