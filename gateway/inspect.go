package gateway

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"time"

	"github.com/tickgate/tickgate/proto"
)

// Inspection (docs/operations.md, "Inspecting and revoking"): what an operator reads of a running node,
// its connections and its channels, without stopping delivery. A listing
// holds Server.mu (or a hub shard's read lock) only to copy the pointers
// of its entries; then it reads each entry on its own: static fields,
// atomics the writer and the feed path keep, and, per connection, its
// expiry lock and its outbox lock for the O(pending) count of what waits.
// No connection's command lock and no channel lock is taken, so a listing
// never waits for a command, a snapshot encoding or a fan-out.

// Bounds of a connection listing's Limit.
const (
	DefaultListLimit = 1000
	MaxListLimit     = 100_000
)

// ErrFilter reports a filter that cannot be used.
var ErrFilter = errors.New("gateway: bad filter")

// ConnectionOrder is the order of a connection listing, applied before
// its limit.
type ConnectionOrder uint8

// Orders of a connection listing.
const (
	ByConnected ConnectionOrder = iota // oldest first (the default)
	ByLag                              // highest lag_ms first
	ByPending                          // most messages pending first
)

var orderNames = map[string]ConnectionOrder{"connected_at": ByConnected, "lag": ByLag, "pending": ByPending}

// ParseConnectionOrder reads an order by its name: connected_at, lag or
// pending ("" is connected_at).
func ParseConnectionOrder(s string) (ConnectionOrder, error) {
	if s == "" {
		return ByConnected, nil
	}
	o, ok := orderNames[s]
	if !ok {
		return 0, fmt.Errorf("%w: sort must be connected_at, lag or pending", ErrFilter)
	}
	return o, nil
}

// ConnectionFilter selects the connections of a listing. Every zero field
// selects all.
type ConnectionFilter struct {
	// Sub is the exact token sub.
	Sub string
	// IP holds the client address, as the node counts it (the peer, or
	// X-Forwarded-For behind a trusted proxy); a single address is a /32
	// (or /128) prefix.
	IP netip.Prefix
	// Channel is a channel the connection is subscribed to (its canonical
	// name, as proto.Channel.String gives it).
	Channel string
	// Order sorts the connections before Limit is applied.
	Order ConnectionOrder
	// Limit is how many are listed at most, 1 to MaxListLimit. Zero:
	// DefaultListLimit.
	Limit int
}

// Validate reports a filter that cannot be used, wrapping ErrFilter.
func (f ConnectionFilter) Validate() error {
	if f.Limit < 0 || f.Limit > MaxListLimit {
		return fmt.Errorf("%w: limit must be within 1..%d", ErrFilter, MaxListLimit)
	}
	if f.Channel != "" {
		ch, err := proto.ParseChannel(f.Channel)
		if err != nil || ch.String() != f.Channel {
			return fmt.Errorf("%w: channel must be a channel name: <kind>.<symbol>, or candle.<interval>.<symbol>", ErrFilter)
		}
	}
	if _, ok := orderOf(f.Order); !ok {
		return fmt.Errorf("%w: unknown order", ErrFilter)
	}
	return nil
}

// ConnectionInfo is one connection as an operator sees it (docs/operations.md,
// "Inspecting and revoking"). Times are Unix seconds, like exp in welcome.
type ConnectionInfo struct {
	ID            string   `json:"id"`               // the session of welcome
	Sub           string   `json:"sub"`              // the token's sub
	Remote        string   `json:"remote"`           // the client address: the peer's host:port, or the address behind a trusted proxy
	Codec         string   `json:"codec"`            // json or msgpack
	ConnectedAt   int64    `json:"connected_at"`     // when the handshake was accepted
	Exp           int64    `json:"exp"`              // the current token's exp (a refresh moves it)
	Subscriptions []string `json:"subscriptions"`    // channel names, sorted
	MessagesSent  uint64   `json:"messages_sent"`    // messages written to the socket
	BytesSent     uint64   `json:"bytes_sent"`       // bytes of frames written, pings and heartbeats included
	Pending       int      `json:"pending"`          // messages waiting for the socket (queued, or taken by the writer and not yet written)
	LagMS         int64    `json:"lag_ms"`           // how long the oldest of them waits; 0 when none
	LastPongRTTMS *float64 `json:"last_pong_rtt_ms"` // round trip of the node's last answered progress ping; null before the first
}

// ConnectionList is a connection listing.
type ConnectionList struct {
	Node        string           `json:"node"`        // the node's id
	Total       int              `json:"total"`       // connections that match the filter, before the limit
	Connections []ConnectionInfo `json:"connections"` // at most the limit, in the asked order
}

// ListConnections lists the node's connections that match f (which must
// pass Validate; an invalid limit or order is taken as the default).
// Server.mu is held only to copy the connections' pointers.
func (s *Server) ListConnections(f ConnectionFilter) ConnectionList {
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		if f.Sub == "" || c.subject == f.Sub {
			conns = append(conns, c)
		}
	}
	s.mu.Unlock()
	match := conns[:0]
	for _, c := range conns {
		if f.IP.IsValid() && !f.IP.Contains(c.addr) {
			continue
		}
		if f.Channel != "" {
			if _, ok := slices.BinarySearch(c.subscriptions(), f.Channel); !ok {
				continue
			}
		}
		match = append(match, c)
	}
	limit := f.Limit
	if limit <= 0 || limit > MaxListLimit {
		limit = DefaultListLimit
	}
	order, _ := orderOf(f.Order)
	if f.Order == ByConnected {
		// The order needs no reading: only the connections listed are read.
		slices.SortFunc(match, func(a, b *conn) int { return cmp.Or(a.since.Compare(b.since), cmp.Compare(a.session, b.session)) })
		list := ConnectionList{Node: s.cfg.NodeID, Total: len(match), Connections: make([]ConnectionInfo, 0, min(limit, len(match)))}
		now := s.cfg.Now()
		for _, c := range match[:min(limit, len(match))] {
			list.Connections = append(list.Connections, c.info(now))
		}
		return list
	}
	now := s.cfg.Now()
	list := ConnectionList{Node: s.cfg.NodeID, Total: len(match), Connections: make([]ConnectionInfo, 0, len(match))}
	for _, c := range match {
		list.Connections = append(list.Connections, c.info(now))
	}
	slices.SortFunc(list.Connections, order)
	if len(list.Connections) > limit {
		clear(list.Connections[limit:])
		list.Connections = list.Connections[:limit]
	}
	return list
}

// subscriptions returns the connection's published subscription list:
// sorted, shared, never changed.
func (c *conn) subscriptions() []string {
	if p := c.subList.Load(); p != nil {
		return *p
	}
	return nil
}

// orderOf returns the comparison of an order.
func orderOf(o ConnectionOrder) (func(a, b ConnectionInfo) int, bool) {
	oldest := func(a, b ConnectionInfo) int {
		return cmp.Or(cmp.Compare(a.ConnectedAt, b.ConnectedAt), cmp.Compare(a.ID, b.ID))
	}
	switch o {
	case ByConnected:
		return oldest, true
	case ByLag:
		return func(a, b ConnectionInfo) int {
			return cmp.Or(cmp.Compare(b.LagMS, a.LagMS), cmp.Compare(b.Pending, a.Pending), oldest(a, b))
		}, true
	case ByPending:
		return func(a, b ConnectionInfo) int {
			return cmp.Or(cmp.Compare(b.Pending, a.Pending), cmp.Compare(b.LagMS, a.LagMS), oldest(a, b))
		}, true
	}
	return oldest, false
}

// info reads one connection for a listing at now.
func (c *conn) info(now time.Time) ConnectionInfo {
	c.expMu.Lock()
	exp := c.exp
	c.expMu.Unlock()
	pending, oldest := c.out.stats()
	ci := ConnectionInfo{
		ID:            c.session,
		Sub:           c.subject,
		Remote:        cmp.Or(c.client, c.remote),
		Codec:         c.codec.Name(),
		ConnectedAt:   c.since.Unix(),
		Exp:           exp.Unix(),
		Subscriptions: c.subscriptions(),
		MessagesSent:  c.msgsSent.Load(),
		BytesSent:     c.bytesSent.Load(),
		Pending:       pending,
	}
	if ci.Subscriptions == nil {
		ci.Subscriptions = []string{}
	}
	if oldest > 0 {
		ci.LagMS = max(now.UnixNano()-oldest, 0) / int64(time.Millisecond)
	}
	if rtt := c.prog.rtt.Load(); rtt > 0 {
		ms := math.Round(float64(rtt)/1e3) / 1e3 // microsecond precision
		ci.LastPongRTTMS = &ms
	}
	return ci
}

// clientAddr is a connection's remote as a listing shows it: the peer's
// host:port, or, when admission counted another address (X-Forwarded-For
// behind a trusted proxy), that address.
func clientAddr(remote string, counted netip.Addr) string {
	if !counted.IsValid() || parseAddr(remote) == counted {
		return remote
	}
	return counted.String()
}

// ChannelFilter selects the channels of a listing. Zero fields select all.
type ChannelFilter struct {
	Kind   proto.Kind // zero: every kind
	Symbol string     // exact symbol
}

// ChannelInfo is one channel the node holds, as an operator sees it
// (docs/operations.md, "Inspecting and revoking").
type ChannelInfo struct {
	Channel     string  `json:"channel"`     // <kind>.<symbol>
	Subscribers int     `json:"subscribers"` // subscriptions on this node
	LastSeq     uint64  `json:"last_seq"`    // the newest feed seq sent to subscribers (0: none yet)
	FeedRate    float64 `json:"feed_rate"`   // feed messages per second, over the last second
	State       string  `json:"state"`       // live, stale or resyncing: what subscribers are told
	History     int     `json:"history"`     // events kept for resume (since)
}

// ChannelList is a channel listing.
type ChannelList struct {
	Node     string        `json:"node"`
	Total    int           `json:"total"`
	Channels []ChannelInfo `json:"channels"` // sorted by name
}

// ListChannels lists the channels the node holds that match f. Each hub
// shard's read lock is held only to copy its entries' pointers; the
// entries are read through their atomics, never under their lock.
func (s *Server) ListChannels(f ChannelFilter) ChannelList {
	list := ChannelList{Node: s.cfg.NodeID, Channels: []ChannelInfo{}}
	s.hub.each(func(e *hubEntry) {
		if f.Kind != 0 && e.ch.Kind != f.Kind || f.Symbol != "" && e.ch.Symbol != f.Symbol {
			return
		}
		list.Channels = append(list.Channels, ChannelInfo{
			Channel:     e.name,
			Subscribers: int(e.subscribers.Load()),
			LastSeq:     e.lastSeq.Load(),
			FeedRate:    math.Round(math.Float64frombits(e.rate.Load())*100) / 100,
			State:       chanState(e.stateNow.Load()).String(),
			History:     int(e.historyLen.Load()),
		})
	})
	slices.SortFunc(list.Channels, func(a, b ChannelInfo) int { return cmp.Compare(a.Channel, b.Channel) })
	list.Total = len(list.Channels)
	return list
}
