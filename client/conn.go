package client

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lxzan/gws"

	"github.com/tickgate/tickgate/codec"
	"github.com/tickgate/tickgate/proto"
)

// conn is one WebSocket connection: gws's event handler, whose callbacks
// run on the connection's read loop goroutine.
type conn struct {
	c    *Client     // Static.
	cd   codec.Codec // Static.
	ws   *gws.Conn   // Set before the read loop starts.
	info ConnInfo    // Written by the read loop before welcome is sent on.

	welcome chan struct{} // closed once the welcome arrived
	done    chan struct{} // closed when the read loop returned
	err     error         // Written by OnClose, before done closes.
	// withinMS is the reconnect notice's within_ms, 0 without one.
	withinMS atomic.Int64

	// Owned by the read loop.
	welcomed   bool
	timeout    time.Duration // read deadline after the welcome
	deadlineAt time.Time     // when the read deadline was last pushed
}

// OnOpen implements gws.Event.
func (cn *conn) OnOpen(*gws.Conn) {}

// OnClose implements gws.Event: it records why the connection ended.
func (cn *conn) OnClose(_ *gws.Conn, err error) {
	var ce *gws.CloseError
	if errors.As(err, &ce) {
		cn.err = &CloseError{Code: proto.CloseCode(ce.Code), Reason: string(ce.Reason)}
		return
	}
	if err == nil {
		err = io.EOF
	}
	cn.err = err
}

// OnPing implements gws.Event: the pong echoes the payload (the node
// counts its pings by it, docs/protocol.md §8.2).
func (cn *conn) OnPing(ws *gws.Conn, payload []byte) {
	cn.touch()
	_ = ws.WritePong(payload)
}

// OnPong implements gws.Event.
func (cn *conn) OnPong(*gws.Conn, []byte) { cn.touch() }

// touch pushes the read deadline on, at most four times per timeout.
func (cn *conn) touch() {
	if cn.timeout <= 0 {
		return
	}
	now := time.Now()
	if now.Sub(cn.deadlineAt) > cn.timeout/4 {
		cn.deadlineAt = now
		_ = cn.ws.SetReadDeadline(now.Add(cn.timeout))
	}
}

// OnMessage implements gws.Event: it decodes the message and hands it on.
// It never waits for the handler.
func (cn *conn) OnMessage(ws *gws.Conn, msg *gws.Message) {
	defer msg.Close()
	cn.touch()
	var m message
	err := m.decode(cn.cd, msg.Bytes())
	if err != nil {
		// A message the client cannot read may be one it needed: start
		// over on a new connection, which resumes every channel.
		cn.c.log.Warn("undecodable message; reconnecting", "err", err.Error())
		_ = ws.WriteClose(uint16(closeProtocolError), []byte("client: undecodable message"))
		return
	}
	if !cn.welcomed {
		if m.Type != proto.TypeWelcome {
			cn.c.log.Warn("first message is not welcome; reconnecting", "type", m.Type)
			_ = ws.WriteClose(uint16(closeProtocolError), []byte("client: no welcome"))
			return
		}
		cn.welcomed = true
		cn.info = ConnInfo{Node: m.Node, Session: m.Session, Codec: m.Codec,
			Heartbeat: time.Duration(m.HeartbeatMS) * time.Millisecond, Features: m.Features}
		if m.Exp > 0 {
			cn.info.TokenExpiry = time.Unix(m.Exp, 0)
		}
		cn.timeout = cn.c.opts.ReadTimeout
		if cn.timeout == 0 {
			cn.timeout = 2*cn.info.Heartbeat + 5*time.Second
		}
		cn.deadlineAt = time.Time{}
		cn.touch()
		close(cn.welcome)
		return
	}
	cn.c.handle(cn, &m)
}

// send encodes and writes one command.
func (cn *conn) send(cmd command) error {
	b, err := cn.cd.Append(nil, cmd)
	if err != nil {
		return err
	}
	op := gws.OpcodeText
	if cn.cd.Binary() {
		op = gws.OpcodeBinary
	}
	return cn.ws.WriteMessage(op, b)
}

// ctxDialer is the gws.Dialer of one attempt: it dials with the attempt's
// context, and closes the connection if the context ends before the
// handshake is done.
type ctxDialer struct {
	ctx  context.Context
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
	stop func() bool
}

func (d *ctxDialer) Dial(network, addr string) (net.Conn, error) {
	nc, err := d.dial(d.ctx, network, addr)
	if err != nil {
		return nil, err
	}
	d.stop = context.AfterFunc(d.ctx, func() { _ = nc.Close() })
	return nc, nil
}

// gwsLogger routes gws's own error logs to slog.
type gwsLogger struct{ l *slog.Logger }

func (g gwsLogger) Error(v ...any) { g.l.Error("gws", "detail", fmt.Sprint(v...)) }

// connect makes one connection attempt: token, TCP, TLS, upgrade and
// welcome, within HandshakeTimeout. The read loop runs once it returns a
// conn.
func (c *Client) connect() (*conn, error) {
	ctx, cancel := context.WithTimeout(c.ctx, c.opts.HandshakeTimeout)
	defer cancel()
	token, err := c.opts.TokenSource(ctx)
	if err != nil {
		return nil, fmt.Errorf("client: token source: %w", err)
	}
	h := http.Header{}
	for k, v := range c.opts.Header {
		h[k] = append([]string(nil), v...)
	}
	sp := c.opts.Codec.Subprotocol()
	if c.opts.TokenInSubprotocol {
		sp += ", " + proto.BearerPrefix + token
	} else {
		h.Set("Authorization", "Bearer "+token)
	}
	h.Set("Sec-WebSocket-Protocol", sp)
	var tc *tls.Config
	if c.opts.TLS != nil {
		tc = c.opts.TLS.Clone()
	}
	d := &ctxDialer{ctx: ctx, dial: c.opts.Dialer}
	cn := &conn{c: c, cd: c.opts.Codec, welcome: make(chan struct{}), done: make(chan struct{})}
	ws, resp, err := gws.NewClient(cn, &gws.ClientOption{
		Addr:             c.url,
		RequestHeader:    h,
		TlsConfig:        tc,
		HandshakeTimeout: c.opts.HandshakeTimeout,
		NewDialer:        func() (gws.Dialer, error) { return d, nil },
		Logger:           gwsLogger{c.log},
	})
	if stopped := d.stop == nil || d.stop(); !stopped && err == nil {
		err = ctx.Err() // the connection was closed under the handshake
		_ = ws.NetConn().Close()
	}
	if err != nil {
		if ctx.Err() != nil && c.ctx.Err() == nil && !errors.Is(err, ctx.Err()) {
			err = fmt.Errorf("%w (%w)", err, ctx.Err())
		}
		return nil, handshakeError(resp, err)
	}
	cn.ws = ws
	deadline, _ := ctx.Deadline()
	_ = ws.SetReadDeadline(deadline)
	c.wg.Go(func() {
		defer close(cn.done)
		ws.ReadLoop()
	})
	select {
	case <-cn.welcome:
		return cn, nil
	case <-cn.done:
		return nil, fmt.Errorf("client: connection ended before the welcome: %w", cn.err)
	case <-ctx.Done():
		_ = ws.NetConn().Close()
		<-cn.done
		if c.ctx.Err() != nil {
			return nil, ErrClosed
		}
		return nil, fmt.Errorf("client: no welcome: %w", ctx.Err())
	}
}

// handshakeError turns a refused upgrade into a *HandshakeError.
func handshakeError(resp *http.Response, err error) error {
	if resp == nil || resp.StatusCode == http.StatusSwitchingProtocols {
		return err
	}
	he := &HandshakeError{StatusCode: resp.StatusCode}
	if ra := strings.TrimSpace(resp.Header.Get("Retry-After")); ra != "" {
		if secs, e := strconv.Atoi(ra); e == nil && secs >= 0 {
			he.RetryAfter = time.Duration(secs) * time.Second
		}
	}
	if resp.Body != nil {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		var hb proto.HandshakeError
		if json.Unmarshal(body, &hb) == nil {
			he.Code, he.Message = hb.Error, hb.Message
		}
	}
	return he
}

// request is a command waiting for its answer. Guarded by the Client's mu.
type request struct {
	id       int64
	op       string
	channels []string
	user     bool // a user's call waits on done; else the client's own re-subscribe
	opts     subOptions
	answered int // channels answered by an error
	accepted []string
	errs     []error
	exp      int64 // authenticated
	ts       int64 // pong
	lost     bool  // the connection ended before the answer
	done     chan struct{}
	once     sync.Once
}

func (r *request) complete() { r.once.Do(func() { close(r.done) }) }

func serverError(m *message) *ServerError {
	return &ServerError{Code: m.Code, Message: m.Message, Channel: m.Channel, RetryAfter: time.Duration(m.RetryMS) * time.Millisecond}
}

// command is every client-to-server message the client sends. It is the
// client's own (not proto.Command) so that it can carry contract 1.1's
// subscribe options, which a 1.0 node ignores as unknown keys.
type command struct {
	Op         string            `json:"op" msgpack:"op"`
	ID         int64             `json:"id" msgpack:"id"`
	Channels   []string          `json:"channels,omitempty" msgpack:"channels,omitempty"`
	ThrottleMS int64             `json:"throttle_ms,omitempty" msgpack:"throttle_ms,omitempty"`
	Snapshot   *bool             `json:"snapshot,omitempty" msgpack:"snapshot,omitempty"`
	Since      map[string]uint64 `json:"since,omitempty" msgpack:"since,omitempty"`
	Token      string            `json:"token,omitempty" msgpack:"token,omitempty"`
	Depth      int               `json:"depth,omitempty" msgpack:"depth,omitempty"`
	Recent     int               `json:"recent,omitempty" msgpack:"recent,omitempty"`
	Bars       int               `json:"bars,omitempty" msgpack:"bars,omitempty"`
}
