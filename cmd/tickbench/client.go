package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lxzan/gws"

	"github.com/tickgate/tickgate/codec"
	"github.com/tickgate/tickgate/internal/wsconn"
	"github.com/tickgate/tickgate/proto"
)

// probeInterval is how often a stalled client writes a ping command to
// learn whether the gateway has closed its side: once the gateway closed
// the socket, the next write draws a TCP reset and the one after fails. It
// bounds the resolution of the measured time to eviction, and stays well
// under the gateway's command rate.
const probeInterval = 100 * time.Millisecond

// serverMsg is the part of a server message tickbench looks at.
type serverMsg struct {
	Type    string  `json:"type" msgpack:"type"`
	Channel string  `json:"channel" msgpack:"channel"`
	Seq     uint64  `json:"seq" msgpack:"seq"`
	Prev    *uint64 `json:"prev" msgpack:"prev"`
	Code    string  `json:"code" msgpack:"code"`
	Message string  `json:"message" msgpack:"message"`
	Data    struct {
		TS int64 `json:"ts" msgpack:"ts"`
	} `json:"data" msgpack:"data"`
}

// clientSpec is what one connection is told to do.
type clientSpec struct {
	idx      int
	codec    codec.Codec
	channels []string
	stalled  bool
	source   net.IP // local address to dial from; nil: any
	token    string
}

// client is one WebSocket connection of the bench: a healthy one reads
// everything and records latency; a stalled one stops reading its socket
// once its subscribe is acknowledged.
type client struct {
	gws.BuiltinEventHandler
	spec clientSpec    // Static after construction.
	lat  *latencies    // Static after construction.
	cnt  *counters     // Static after construction.
	stop chan struct{} // Static; closed when stalled clients may read again.

	ws *gws.Conn // Set before the read loop starts.

	last map[string]uint64 // Owned by the read loop: last seq per channel.

	ack     chan struct{} // Closed by the read loop on the subscribed ack.
	ackOnce sync.Once

	stalledAt time.Time // Written by the read loop before ack closes; read after.

	received  atomic.Int64  // snapshots and updates received
	closing   atomic.Bool   // we close it ourselves (teardown)
	byPeer    bool          // written by OnClose before closed closes: the gateway closed it
	closed    chan struct{} // closed by OnClose
	closeErr  error         // written by OnClose before closed closes
	evictedAt atomic.Int64  // Unix ns when a probe found the gateway gone; 0: not seen
	probeErr  atomic.Value  // error of the failing probe
}

func newClient(spec clientSpec, lat *latencies, cnt *counters, release chan struct{}) *client {
	c := &client{
		spec:   spec,
		lat:    lat,
		cnt:    cnt,
		stop:   release,
		last:   make(map[string]uint64, len(spec.channels)),
		ack:    make(chan struct{}),
		closed: make(chan struct{}),
	}
	for _, ch := range spec.channels {
		c.last[ch] = 0
	}
	return c
}

// connect dials, upgrades, subscribes and waits for the subscribed ack
// (or an error, a close, or the timeout).
func (c *client) connect(target *target, timeout time.Duration, rcvbuf int) error {
	deadline := time.Now().Add(timeout)
	d := wsconn.Dialer{Source: c.spec.source, RcvBuf: rcvbuf, Timeout: timeout}
	h := http.Header{}
	h.Set("Authorization", "Bearer "+c.spec.token)
	h.Set("Sec-WebSocket-Protocol", c.spec.codec.Subprotocol())
	ws, resp, err := gws.NewClient(c, &gws.ClientOption{
		Addr:             target.url,
		TlsConfig:        target.tls,
		HandshakeTimeout: timeout,
		RequestHeader:    h,
		NewDialer:        func() (gws.Dialer, error) { return d, nil },
	})
	if err != nil {
		if resp != nil {
			return fmt.Errorf("handshake: HTTP %d: %w", resp.StatusCode, err)
		}
		return fmt.Errorf("dial: %w", err)
	}
	if got := ws.SubProtocol(); got != c.spec.codec.Subprotocol() {
		_ = ws.NetConn().Close()
		return fmt.Errorf("handshake: subprotocol %q, want %q", got, c.spec.codec.Subprotocol())
	}
	c.ws = ws
	go ws.ReadLoop()

	id := int64(1)
	b, err := c.spec.codec.Append(nil, proto.Command{Op: proto.OpSubscribe, ID: &id, Channels: c.spec.channels})
	if err != nil {
		_ = ws.NetConn().Close()
		return err
	}
	op := gws.OpcodeText
	if c.spec.codec.Binary() {
		op = gws.OpcodeBinary
	}
	if err := ws.WriteMessage(op, b); err != nil {
		_ = ws.NetConn().Close()
		return fmt.Errorf("subscribe: %w", err)
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-c.ack:
		return nil
	case <-c.closed:
		return fmt.Errorf("closed before the subscribed ack: %v", c.closeErr)
	case <-t.C:
		c.closing.Store(true)
		_ = ws.NetConn().Close()
		return errors.New("no subscribed ack within the handshake timeout")
	}
}

// OnMessage handles one server message in the read loop.
func (c *client) OnMessage(_ *gws.Conn, m *gws.Message) {
	defer m.Close()
	now := time.Now()
	var msg serverMsg
	if err := codec.DecodeMessage(c.spec.codec, m.Bytes(), &msg); err != nil {
		c.cnt.decodeErrors.Add(1)
		return
	}
	switch msg.Type {
	case proto.TypeSubscribed:
		if c.spec.stalled {
			c.stalledAt = now
			c.ackOnce.Do(func() { close(c.ack) })
			go c.probe()
			<-c.stop // stop reading the socket until teardown
			return
		}
		c.ackOnce.Do(func() { close(c.ack) })
	case proto.TypeError:
		c.cnt.subErrors.Add(1)
	case proto.TypeSnapshot, proto.TypeUpdate:
		if c.spec.stalled {
			return
		}
		if msg.Type == proto.TypeUpdate {
			if msg.Prev == nil || *msg.Prev != c.last[msg.Channel] {
				c.cnt.gaps.Add(1)
			}
			if c.cnt.inWindow.Load() && msg.Data.TS > 0 {
				c.lat.record(c.spec.idx, now.Sub(time.Unix(0, msg.Data.TS)))
			}
		}
		c.last[msg.Channel] = msg.Seq
		c.received.Add(1)
		c.cnt.deliveredAll.Add(1)
		if c.cnt.inWindow.Load() {
			c.cnt.delivered.Add(1)
		}
	}
}

// OnClose records how the connection ended.
func (c *client) OnClose(_ *gws.Conn, err error) {
	c.closeErr = err
	if !c.spec.stalled && !c.closing.Load() {
		select {
		case <-c.ack:
			c.byPeer = true
			c.cnt.healthyClosed.Add(1)
			c.cnt.open.Add(-1)
		default: // still connecting: connect reports it
		}
	}
	close(c.closed)
}

// probe writes a {"op":"ping"} command on the raw TLS connection every
// probeInterval, until a write fails (the gateway closed its side) or
// teardown. It never reads. It sends no WebSocket pongs: a client that
// stops reading cannot answer the gateway's pings, and the gateway's
// eviction of stalled readers rests on exactly that.
func (c *client) probe() {
	payload, err := c.spec.codec.Append(nil, proto.Command{Op: proto.OpPing})
	if err != nil {
		c.probeErr.Store(err)
		return
	}
	op := wsconn.OpText
	if c.spec.codec.Binary() {
		op = wsconn.OpBinary
	}
	frame := wsconn.MaskedFrame(op, payload)
	t := time.NewTicker(probeInterval)
	defer t.Stop()
	nc := c.ws.NetConn()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		_ = nc.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := nc.Write(frame); err != nil {
			c.probeErr.Store(err)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return // the gateway stopped reading: not a close
			}
			c.evictedAt.Store(time.Now().UnixNano())
			c.cnt.evicted.Add(1)
			c.cnt.open.Add(-1)
			return
		}
	}
}

// shutdown closes a connection from our side at teardown.
func (c *client) shutdown() {
	if c.ws == nil {
		return
	}
	c.closing.Store(true)
	_ = c.ws.NetConn().SetWriteDeadline(time.Now().Add(time.Second))
	_ = c.ws.WriteClose(1000, []byte("tickbench done"))
}
