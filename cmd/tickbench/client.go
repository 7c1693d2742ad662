package main

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lxzan/gws"

	"github.com/tickgate/tickgate/codec"
	"github.com/tickgate/tickgate/internal/wsconn"
)

// probeInterval is how often a stalled client writes a ping command to
// learn whether the gateway has closed its side: once the gateway closed
// the socket, the next write draws a TCP reset and the one after fails. It
// bounds the resolution of the measured time to eviction, and stays well
// under the gateway's command rate.
const probeInterval = 100 * time.Millisecond

// clientSpec is what one connection is told to do.
type clientSpec struct {
	idx      int
	codec    codec.Codec
	channels []string
	stalled  bool
	source   net.IP // local address to dial from; nil: any
	token    string
	// compression: offer permessage-deflate (--compression).
	compression bool
}

// client is one WebSocket connection of the bench: a healthy one reads
// everything and records latency; a stalled one stops reading its socket
// once its subscribe is acknowledged. The server's protocol is its
// session's business (dialect.go).
type client struct {
	gws.BuiltinEventHandler
	spec clientSpec    // Static after construction.
	sess session       // Static after construction.
	lat  *latencies    // Static after construction: publish to the read loop.
	sock *latencies    // Static after construction: publish to the socket (stamp_linux.go).
	cnt  *counters     // Static after construction.
	stop chan struct{} // Static; closed when stalled clients may read again.

	ws *gws.Conn // Set before the read loop starts.

	last map[string]uint64 // Owned by the read loop: last seq per channel.

	ack     chan struct{} // Closed by the read loop on the subscribed ack.
	ackOnce sync.Once

	stalledAt time.Time // Written by the read loop before ack closes; read after.
	now       time.Time // Owned by the read loop: when the message in hand arrived.
	// stamp is the healthy client's socket, read with the kernel's receive
	// timestamps; nil for a stalled client, or where they could not be
	// had. Set by Dial, before the read loop starts.
	stamp *stampConn
	// counted is whether the message in hand falls in the measurement
	// window: read once per frame, so its frame and its deliveries are
	// counted together or not at all. Owned by the read loop.
	counted bool

	received  atomic.Int64  // snapshots and updates received
	closing   atomic.Bool   // we close it ourselves (teardown)
	byPeer    bool          // written by OnClose before closed closes: the gateway closed it
	closed    chan struct{} // closed by OnClose
	closeErr  error         // written by OnClose before closed closes
	evictedAt atomic.Int64  // Unix ns when a probe found the gateway gone; 0: not seen
	probeErr  atomic.Value  // error of the failing probe
}

func newClient(spec clientSpec, d dialect, lat, sock *latencies, cnt *counters, release chan struct{}) *client {
	c := &client{
		spec:   spec,
		lat:    lat,
		sock:   sock,
		cnt:    cnt,
		stop:   release,
		last:   make(map[string]uint64, len(spec.channels)),
		ack:    make(chan struct{}),
		closed: make(chan struct{}),
	}
	for _, ch := range spec.channels {
		c.last[ch] = 0
	}
	c.sess = d.session(&c.spec)
	return c
}

// connect dials, upgrades, subscribes and waits for the subscribed ack
// (or an error, a close, or the timeout).
func (c *client) connect(target *target, timeout time.Duration, rcvbuf int) error {
	deadline := time.Now().Add(timeout)
	d := wsconn.Dialer{Source: c.spec.source, RcvBuf: rcvbuf, Timeout: timeout}
	ws, resp, err := gws.NewClient(c, &gws.ClientOption{
		Addr:             target.url,
		TlsConfig:        target.tls,
		HandshakeTimeout: timeout,
		RequestHeader:    c.sess.header(),
		NewDialer:        func() (gws.Dialer, error) { return countingDialer{d, c}, nil },
		// With --compression, the offer browsers send ("permessage-deflate;
		// client_max_window_bits"); the server's answer decides the rest.
		PermessageDeflate: gws.PermessageDeflate{Enabled: c.spec.compression, ServerContextTakeover: true, ClientContextTakeover: true},
	})
	if err != nil {
		if resp != nil {
			return fmt.Errorf("handshake: HTTP %d: %w", resp.StatusCode, err)
		}
		return fmt.Errorf("dial: %w", err)
	}
	if err := c.sess.accept(ws.SubProtocol()); err != nil {
		_ = ws.NetConn().Close()
		return err
	}
	c.ws = ws
	go ws.ReadLoop()

	op, b, err := c.sess.hello()
	if err != nil {
		_ = ws.NetConn().Close()
		return err
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

// countingDialer counts what a healthy client reads off its socket in the
// measurement window (the bytes on the wire, compressed or not), and
// reads it with the kernel's receive timestamps (stamp_linux.go).
type countingDialer struct {
	gws.Dialer
	c *client
}

func (d countingDialer) Dial(network, addr string) (net.Conn, error) {
	nc, err := d.Dialer.Dial(network, addr)
	if err != nil || d.c.spec.stalled {
		return nc, err
	}
	if sc, err := newStampConn(nc); err == nil {
		d.c.stamp, nc = sc, sc
	} else {
		d.c.cnt.unstamped.Add(1)
	}
	return countingConn{nc, d.c.cnt}, nil
}

type countingConn struct {
	net.Conn
	cnt *counters
}

func (c countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && c.cnt.inWindow.Load() {
		c.cnt.wireBytes.Add(int64(n))
	}
	return n, err
}

// OnMessage hands one server message to the session, in the read loop.
func (c *client) OnMessage(_ *gws.Conn, m *gws.Message) {
	defer m.Close()
	c.now = time.Now()
	c.counted = c.cnt.inWindow.Load()
	if !c.spec.stalled && c.counted {
		c.cnt.frames.Add(1)
	}
	c.sess.handle(m.Bytes(), c)
}

// acked is the session's word that every channel is subscribed. A stalled
// client stops reading its socket here, until teardown.
func (c *client) acked() {
	if c.spec.stalled {
		c.stalledAt = c.now
		c.ackOnce.Do(func() { close(c.ack) })
		go c.probe()
		<-c.stop
		return
	}
	c.ackOnce.Do(func() { close(c.ack) })
}

func (c *client) refused()     { c.cnt.subErrors.Add(1) }
func (c *client) undecodable() { c.cnt.decodeErrors.Add(1) }

func (c *client) reply(op gws.Opcode, payload []byte) {
	_ = c.ws.WriteMessage(op, payload)
}

// delivered checks a feed message's place in its channel's sequence,
// records its latency and counts it; a stalled client's are ignored.
func (c *client) delivered(d delivery) {
	if c.spec.stalled {
		return
	}
	last := c.last[d.channel]
	if d.update {
		if (d.chained && d.prev != last) || (!d.chained && last != 0 && d.seq != last+1) {
			c.cnt.gaps.Add(1)
		}
		if c.counted && d.ts > 0 {
			c.lat.record(c.spec.idx, c.now.Sub(time.Unix(0, d.ts)))
			// The read that completed the message in hand was the last:
			// handle runs in the read loop, between two reads.
			if c.stamp != nil && c.stamp.at != 0 {
				c.sock.record(c.spec.idx, time.Duration(c.stamp.at-d.ts))
			}
		}
	}
	c.last[d.channel] = d.seq
	c.received.Add(1)
	c.cnt.deliveredAll.Add(1)
	if c.counted {
		c.cnt.delivered.Add(1)
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

// probe writes the session's probe command on the raw connection every
// probeInterval, until a write fails (the gateway closed its side) or
// teardown. It never reads. It sends no WebSocket pongs: a client that
// stops reading cannot answer the gateway's pings, and the gateway's
// eviction of stalled readers rests on exactly that.
func (c *client) probe() {
	op, payload, err := c.sess.probe()
	if err != nil {
		c.probeErr.Store(err)
		return
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
