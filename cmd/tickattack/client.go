package main

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lxzan/gws"

	"github.com/tickgate/tickgate/internal/wsconn"
)

// jsonSubprotocol is the codec every tickattack client offers: the attacks
// are about what the node does, not about the codec.
const jsonSubprotocol = "tickgate.v1.json"

// serverMsg is what tickattack reads of a server message: the union of
// the fields of every message type of docs/protocol.md, so that a type or
// field the node did not send before a fix still shows up as counted.
type serverMsg struct {
	Type     string   `json:"type"`
	ID       *int64   `json:"id"`
	Code     string   `json:"code"`
	Channel  string   `json:"channel"`
	Channels []string `json:"channels"`
	Seq      uint64   `json:"seq"`
	Prev     *uint64  `json:"prev"`
	N        uint32   `json:"n"`
	Exp      int64    `json:"exp"`
	RetryMS  *int64   `json:"retry_ms"`
	From     uint64   `json:"from"`
	To       uint64   `json:"to"`
	State    string   `json:"state"`
	Reason   string   `json:"reason"`
	Data     struct {
		TS int64 `json:"ts"`
	} `json:"data"`
}

// kind is how replies are counted: the type, or "error:<code>".
func (m *serverMsg) kind() string {
	if m.Type == "error" {
		return "error:" + m.Code
	}
	return m.Type
}

// bigMessage is the size above which only the envelope of a message is
// decoded: a 5,000-level snapshot is hundreds of kilobytes of JSON, and
// decoding every level would make the attacking client, which shares the
// machine with the node, the slow part of the measurement.
const bigMessage = 64 << 10

var dataKey = []byte(`,"data":`)

// decodeServerMsg decodes b. For a big message whose data comes last (as
// the node writes it), only the fields before data and data's last "ts"
// are read.
func decodeServerMsg(b []byte) (serverMsg, error) {
	var m serverMsg
	if quickUpdate(b, &m) {
		return m, nil
	}
	if len(b) > bigMessage {
		if i := bytes.Index(b[:min(len(b), 512)], dataKey); i > 0 {
			head := append(b[:i:i], '}')
			if err := json.Unmarshal(head, &m); err == nil {
				m.Data.TS = lastTS(b)
				return m, nil
			}
		}
	}
	err := json.Unmarshal(b, &m)
	return m, err
}

var updatePrefix = []byte(`{"type":"update","channel":"`)

// quickUpdate reads an update as the node writes it ({"type":"update",
// "channel":…,"seq":…,"prev":…,"n":…,"data":{…,"ts":…}}) without a JSON
// decoder, and reports false for anything else (then decoded in full). A
// flood of trades must find the client faster than the node, or the
// node's trade buffer for it overflows before the node's own NATS
// subscription falls behind, which is what the flood looks for.
func quickUpdate(b []byte, m *serverMsg) bool {
	if len(b) > 4096 || !bytes.HasPrefix(b, updatePrefix) {
		return false
	}
	rest := b[len(updatePrefix):]
	q := bytes.IndexByte(rest, '"')
	if q < 0 {
		return false
	}
	channel := rest[:q]
	rest = rest[q+1:]
	num := func(key string) (uint64, bool) {
		if !bytes.HasPrefix(rest, []byte(key)) {
			return 0, false
		}
		rest = rest[len(key):]
		j := 0
		for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
			j++
		}
		v, err := strconv.ParseUint(string(rest[:j]), 10, 64)
		rest = rest[j:]
		return v, err == nil
	}
	seq, ok1 := num(`,"seq":`)
	prev, ok2 := num(`,"prev":`)
	n, ok3 := num(`,"n":`)
	if !ok1 || !ok2 || !ok3 || !bytes.HasPrefix(rest, dataKey) {
		return false
	}
	m.Type, m.Channel, m.Seq, m.Prev, m.N = "update", string(channel), seq, &prev, uint32(n)
	m.Data.TS = lastTS(b)
	return true
}

// lastTS reads the number after the last `"ts":` near the end of b, 0
// when there is none.
func lastTS(b []byte) int64 {
	tail := b[max(0, len(b)-64):]
	i := bytes.LastIndex(tail, []byte(`"ts":`))
	if i < 0 {
		return 0
	}
	digits := tail[i+5:]
	j := 0
	for j < len(digits) && digits[j] >= '0' && digits[j] <= '9' {
		j++
	}
	ts, _ := strconv.ParseInt(string(digits[:j]), 10, 64)
	return ts
}

// client is one reading WebSocket connection. Its read loop counts every
// message by kind and hands it to handle.
type client struct {
	gws.BuiltinEventHandler
	handle func(m *serverMsg, size int, at time.Time) // Static; may be nil. Runs on the read loop.

	ws *gws.Conn // Set by dial before the read loop starts.

	pings  atomic.Int64  // WebSocket pings from the node (answered by gws)
	closed chan struct{} // closed by OnClose

	mu       sync.Mutex
	counts   map[string]int // Guarded by mu: messages by kind
	welcome  *serverMsg     // Guarded by mu
	bad      int            // Guarded by mu: messages that did not decode
	closedAt time.Time      // Guarded by mu; written before closed closes
	closeErr error          // Guarded by mu; written before closed closes
	byUs     atomic.Bool    // we closed it
}

func newClient(handle func(m *serverMsg, size int, at time.Time)) *client {
	return &client{handle: handle, counts: map[string]int{}, closed: make(chan struct{})}
}

func (c *client) OnMessage(_ *gws.Conn, msg *gws.Message) {
	defer msg.Close()
	at := time.Now()
	b := msg.Bytes()
	m, err := decodeServerMsg(b)
	c.mu.Lock()
	if err != nil {
		c.bad++
		c.mu.Unlock()
		return
	}
	c.counts[m.kind()]++
	if m.Type == "welcome" && c.welcome == nil {
		w := m
		c.welcome = &w
	}
	c.mu.Unlock()
	if c.handle != nil {
		c.handle(&m, len(b), at)
	}
}

func (c *client) OnPing(socket *gws.Conn, payload []byte) {
	c.pings.Add(1)
	_ = socket.WritePong(payload)
}

func (c *client) OnClose(_ *gws.Conn, err error) {
	c.mu.Lock()
	c.closedAt, c.closeErr = time.Now(), err
	c.mu.Unlock()
	close(c.closed)
}

// ended reports whether the connection ended, when, and how (a close
// code or the kind of end, see wsconn.CloseCode); byUs when we closed it.
func (c *client) ended() (at time.Time, how string, byUs, ok bool) {
	select {
	case <-c.closed:
	default:
		return time.Time{}, "", false, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closedAt, wsconn.CloseCode(c.closeErr), c.byUs.Load(), true
}

// snapshotCounts copies the counts by kind.
func (c *client) snapshotCounts() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.counts))
	for k, v := range c.counts {
		out[k] = v
	}
	return out
}

// send writes one command as a JSON text message.
func (c *client) send(cmd any) error {
	b, err := json.Marshal(cmd)
	if err != nil {
		return err
	}
	return c.ws.WriteMessage(gws.OpcodeText, b)
}

// shutdown closes the connection from our side and waits, bounded.
func (c *client) shutdown() {
	if c.ws == nil {
		return
	}
	c.byUs.Store(true)
	_ = c.ws.NetConn().SetWriteDeadline(time.Now().Add(time.Second))
	_ = c.ws.WriteClose(1000, []byte("tickattack done"))
	select {
	case <-c.closed:
	case <-time.After(2 * time.Second):
		_ = c.ws.NetConn().Close()
		<-c.closed
	}
}

// subscribe is a subscribe command.
type subscribe struct {
	Op       string   `json:"op"`
	ID       int64    `json:"id"`
	Channels []string `json:"channels"`
}

func subscribeCmd(id int64, channels ...string) subscribe {
	return subscribe{Op: "subscribe", ID: id, Channels: channels}
}

// handshake is the outcome of an upgrade request.
type handshake struct {
	Status int    `json:"status"`         // HTTP status; 101 when upgraded, 0 when none came
	Code   string `json:"code,omitempty"` // the "error" of a refusal's JSON body
	Err    string `json:"err,omitempty"`  // what failed, when not upgraded
}

func (h handshake) String() string {
	switch {
	case h.Status == 101:
		return "HTTP 101"
	case h.Status == 0:
		return "no HTTP answer: " + h.Err
	case h.Code != "":
		return "HTTP " + strconv.Itoa(h.Status) + " " + h.Code
	}
	return "HTTP " + strconv.Itoa(h.Status)
}

// dialSpec is one connection to open.
type dialSpec struct {
	token   string
	source  net.IP // loopback source address; nil: any
	rcvbuf  int    // SO_RCVBUF; 0: the kernel's default
	timeout time.Duration
}

// holdConn keeps the socket open while held, so that a refused upgrade's
// body can still be read after gws, which closes the connection on any
// handshake error, returns.
type holdConn struct {
	net.Conn
	held atomic.Bool
}

func (h *holdConn) Close() error {
	if h.held.Load() {
		return nil
	}
	return h.Conn.Close()
}

// dial opens a WSS connection with a bearer token. With c, it starts c's
// read loop; without, nobody reads the socket (an attacker that never
// reads). It returns the socket when upgraded.
func (n *node) dial(spec dialSpec, c *client) (*gws.Conn, handshake) {
	if spec.timeout == 0 {
		spec.timeout = 10 * time.Second
	}
	u, _ := url.Parse(n.gw.URL)
	raw, err := wsconn.Dialer{Source: spec.source, RcvBuf: spec.rcvbuf, Timeout: spec.timeout}.Dial("tcp", u.Host)
	if err != nil {
		return nil, handshake{Err: err.Error()}
	}
	hc := &holdConn{Conn: tls.Client(raw, n.creds.ClientTLS.Clone())}
	hc.held.Store(true)
	h := http.Header{}
	h.Set("Authorization", "Bearer "+spec.token)
	h.Set("Sec-WebSocket-Protocol", jsonSubprotocol)
	var handler gws.Event = &gws.BuiltinEventHandler{}
	if c != nil {
		handler = c
	}
	ws, resp, err := gws.NewClientFromConn(handler, &gws.ClientOption{
		Addr: n.gw.URL, RequestHeader: h, HandshakeTimeout: spec.timeout,
	}, hc)
	if err != nil {
		res := handshake{Err: err.Error()}
		if resp != nil {
			res.Status = resp.StatusCode
			var body struct {
				Error string `json:"error"`
			}
			_ = hc.Conn.SetReadDeadline(time.Now().Add(time.Second))
			if b, rerr := io.ReadAll(io.LimitReader(resp.Body, 4096)); rerr == nil || len(b) > 0 {
				if json.Unmarshal(b, &body) == nil {
					res.Code = body.Error
				}
			}
		}
		_ = hc.Conn.Close()
		return nil, res
	}
	hc.held.Store(false)
	if got := ws.SubProtocol(); got != jsonSubprotocol {
		_ = ws.NetConn().Close()
		return nil, handshake{Status: resp.StatusCode, Err: "subprotocol " + strconv.Quote(got)}
	}
	if c != nil {
		c.ws = ws
		go ws.ReadLoop()
	}
	return ws, handshake{Status: resp.StatusCode}
}
