package fleet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tickgate/tickgate/client"
	"github.com/tickgate/tickgate/proto"
)

// Member is one client of the fleet: a client.Client and the record of
// what it saw. Its OnEvent runs on the client's dispatcher goroutine.
type Member struct {
	Index int    // Static.
	Group string // Static: the group the member belongs to ("storm", "steady").

	fleet    *Fleet         // Static.
	channels []string       // Static.
	c        *client.Client // Static after Open.

	mu       sync.Mutex
	conns    []connRecord                   // Guarded by mu: every connection, in order.
	downs    []downRecord                   // Guarded by mu: every disconnect and failed attempt, in order.
	states   map[string]client.ChannelState // Guarded by mu: each channel's state as last reported.
	trades   map[string]*tradeLog           // Guarded by mu: per trade channel.
	statuses []statusRecord                 // Guarded by mu: state changes to stale or resyncing while a connection was up.
	gaps     map[client.GapReason]int       // Guarded by mu.
	errs     []string                       // Guarded by mu: EventError texts (at most 10).
	gapNotes []string                       // Guarded by mu: the first gaps, with channel, seqs and time (at most 10).
}

// connRecord is one connection.
type connRecord struct {
	at      time.Time
	node    string
	liveAt  time.Time       // when every channel was live on it; zero until then
	resumed map[string]bool // channels the node resumed on it
}

// downRecord is one disconnect or failed attempt.
type downRecord struct {
	at     time.Time
	status int           // the HTTP status of a refused handshake, 0 otherwise
	kind   string        // what ended it, in a few words (ErrorKind)
	delay  time.Duration // the client's wait before its next attempt
}

// statusRecord is a channel's state change while the member was connected.
type statusRecord struct {
	at      time.Time
	channel string
	state   client.ChannelState
}

// tradeLog is what a member received on one trade channel.
type tradeLog struct {
	first, last uint64    // seqs; 0 before the first trade
	firstAt     time.Time // when the first trade arrived
	lastID      int64
	received    int
	dups        int // a seq at or below the last one
	holes       int // seqs skipped over
	badIDs      int // a trade id not above the previous one
	replayed    int // trades whose source time is before the connection that delivered them
}

func (m *Member) onEvent(e client.Event) {
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	switch e.Type {
	case client.EventConnected:
		m.conns = append(m.conns, connRecord{at: now, node: e.Conn.Node, resumed: map[string]bool{}})
	case client.EventDisconnected:
		d := downRecord{at: now, delay: e.Delay, kind: ErrorKind(e.Err)}
		var he *client.HandshakeError
		if errors.As(e.Err, &he) {
			d.status = he.StatusCode
		}
		m.downs = append(m.downs, d)
	case client.EventState:
		m.states[e.Channel] = e.State
		if len(m.conns) == 0 {
			break
		}
		cur := &m.conns[len(m.conns)-1]
		if e.Resumed {
			cur.resumed[e.Channel] = true
		}
		if e.State != client.StateLive {
			if len(m.downs) == 0 || m.downs[len(m.downs)-1].at.Before(cur.at) {
				m.statuses = append(m.statuses, statusRecord{at: now, channel: e.Channel, state: e.State})
			}
			break
		}
		if cur.liveAt.IsZero() && m.allLiveLocked() {
			cur.liveAt = now
		}
	case client.EventUpdate:
		if e.TS > 0 {
			m.fleet.latency(m.Group, now.Sub(time.Unix(0, e.TS)), m.replayLocked(e.TS))
		}
		if e.Trade != nil {
			m.tradeLocked(e)
		}
	case client.EventGap:
		m.gaps[e.Gap.Reason]++
		if len(m.gapNotes) < 10 {
			m.gapNotes = append(m.gapNotes, fmt.Sprintf("%s %s %d-%d at %s", e.Channel, e.Gap.Reason, e.Gap.From, e.Gap.To, now.Format("15:04:05.000")))
		}
	case client.EventError:
		if len(m.errs) < 10 {
			m.errs = append(m.errs, e.Err.Error())
		}
	}
}

// replayLocked reports whether data of source time ts predates the
// current connection: a resumed replay, not live data.
func (m *Member) replayLocked(ts int64) bool {
	return len(m.conns) > 1 && ts < m.conns[len(m.conns)-1].at.UnixNano()
}

func (m *Member) allLiveLocked() bool {
	for _, ch := range m.channels {
		if m.states[ch] != client.StateLive {
			return false
		}
	}
	return true
}

func (m *Member) tradeLocked(e client.Event) {
	l := m.trades[e.Channel]
	if l == nil {
		l = &tradeLog{}
		m.trades[e.Channel] = l
	}
	switch {
	case l.last == 0:
		l.first, l.firstAt = e.Seq, time.Now()
	case e.Seq <= l.last:
		l.dups++
		return
	case e.Seq > l.last+1:
		l.holes += int(e.Seq - l.last - 1)
	}
	if l.last != 0 && e.Trade.ID <= l.lastID {
		l.badIDs++
	}
	l.last, l.lastID = e.Seq, e.Trade.ID
	l.received++
	if m.replayLocked(e.TS) {
		l.replayed++
	}
}

var addrs = regexp.MustCompile(`[0-9.]+:[0-9]+`)

// ErrorKind names what ended a connection or attempt, for counting:
// "http 429", "timeout", "reset", "refused", "eof", "close 1006", or the
// error's first words.
func ErrorKind(err error) string {
	var he *client.HandshakeError
	var ce *client.CloseError
	var ne net.Error
	switch {
	case err == nil:
		return "none"
	case errors.As(err, &he):
		return "http " + strconv.Itoa(he.StatusCode)
	case errors.As(err, &ce):
		return "close " + strconv.Itoa(int(ce.Code))
	case errors.Is(err, syscall.ECONNRESET):
		return "reset"
	case errors.Is(err, syscall.EPIPE):
		return "broken pipe"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "eof"
	}
	s := addrs.ReplaceAllString(err.Error(), "ADDR")
	if len(s) > 60 {
		s = s[:60]
	}
	return s
}

// open dials and subscribes.
func (m *Member) open(ctx context.Context, url string, opts client.Options) error {
	opts.OnEvent = m.onEvent
	c, err := client.Dial(ctx, url, opts)
	if err != nil {
		return err
	}
	m.c = c
	if _, err := c.Subscribe(ctx, m.channels); err != nil {
		return err
	}
	return nil
}

// Client is the member's client (nil before Open).
func (m *Member) Client() *client.Client { return m.c }

// Channels are the channels the member subscribed to.
func (m *Member) Channels() []string { return m.channels }

// Node is the node of the member's newest connection.
func (m *Member) Node() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.conns) == 0 {
		return ""
	}
	return m.conns[len(m.conns)-1].node
}

// Recovery is how a member came back after a moment (a node's loss).
type Recovery struct {
	Disturbed bool           // it lost its connection after the moment
	Noticed   time.Duration  // from the moment to the client's notice of the loss
	Waited    time.Duration  // the client's backoff waits before it was back
	Back      time.Duration  // from the moment to its next connection's welcome
	Live      time.Duration  // from the moment to every channel live again on it
	Node      string         // the node it came back on
	Attempts  int            // failed attempts in between
	Kinds     map[string]int // the failed attempts by ErrorKind
	Refused   int            // of which refused with 429 or 503
	Resumed   []string       // channels the node resumed on it
	Done      bool           // it is back and live
}

// RecoveryAfter tells how the member came back after t.
func (m *Member) RecoveryAfter(t time.Time) Recovery {
	m.mu.Lock()
	defer m.mu.Unlock()
	var r Recovery
	first := -1
	for i, d := range m.downs {
		if !d.at.Before(t) {
			first = i
			break
		}
	}
	if first < 0 {
		return r
	}
	r.Disturbed = true
	down := m.downs[first].at
	r.Noticed = down.Sub(t)
	for _, d := range m.downs[first+1:] {
		r.Attempts++
		if d.status == http.StatusTooManyRequests || d.status == http.StatusServiceUnavailable {
			r.Refused++
		}
	}
	for _, c := range m.conns {
		if c.at.Before(down) {
			continue
		}
		// The first connection after the loss that reached live; failed
		// attempts after it are not part of this recovery.
		r.Back, r.Node = c.at.Sub(t), c.node
		if c.liveAt.IsZero() {
			return r
		}
		r.Live, r.Done = c.liveAt.Sub(t), true
		for ch := range c.resumed {
			r.Resumed = append(r.Resumed, ch)
		}
		n := 0
		r.Kinds = map[string]int{}
		for i, d := range m.downs[first:] {
			if d.at.Before(c.at) {
				r.Waited += d.delay
				if i > 0 {
					n++
					r.Kinds[d.kind]++
				}
			}
		}
		r.Attempts = n
		return r
	}
	return r
}

// Sessions returns how many connections the member had.
func (m *Member) Sessions() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.conns)
}

// Statuses returns the channel state changes (away from live) the member
// saw while it was connected, as "channel:state" strings with their times.
func (m *Member) Statuses() (at []time.Time, what []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range m.statuses {
		at = append(at, s.at)
		what = append(what, s.channel+":"+s.state.String())
	}
	return at, what
}

// Gaps returns the gaps the member saw, by reason.
func (m *Member) Gaps() map[client.GapReason]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[client.GapReason]int, len(m.gaps))
	for k, v := range m.gaps {
		out[k] = v
	}
	return out
}

// Errors returns the first EventError texts.
func (m *Member) Errors() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.errs...)
}

// Downs returns how the member's connections ended, in order: what
// ended each (ErrorKind) and when, at most the last n.
func (m *Member) Downs(n int) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, d := range m.downs[max(len(m.downs)-n, 0):] {
		out = append(out, d.kind+" at "+d.at.Format("15:04:05.000"))
	}
	return out
}

// HeldTradeBefore reports whether the member had received a trade on
// channel before t: a seq it can resume from after a loss at t.
func (m *Member) HeldTradeBefore(channel string, t time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.trades[channel]
	return l != nil && l.last != 0 && l.firstAt.Before(t)
}

// GapNotes returns the member's first gaps (at most 10): channel, reason,
// seqs and time, for a report that must say where data went missing.
func (m *Member) GapNotes() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.gapNotes...)
}

// tradesDone reports whether the member holds the last trade f published
// on each of its trade channels.
func (m *Member) tradesDone(f *Feed) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, ch := range m.channels {
		if !strings.HasPrefix(ch, proto.KindTrade.String()+".") {
			continue
		}
		if l := m.trades[ch]; l == nil || l.last != f.LastSeq(ch) {
			return false
		}
	}
	return true
}

// TradeCheck is a member's account of one trade channel against what the
// feed published.
type TradeCheck struct {
	Channel   string
	Expected  int // trades published from the member's first one to the last
	Received  int
	Lost      int // expected and never received
	Dups      int
	Replayed  int // received through a resume (published while the member was away)
	BadIDs    int
	Published uint64
}

// OK reports every expected trade received, in order, none twice.
func (c TradeCheck) OK() bool {
	return c.Lost == 0 && c.Dups == 0 && c.BadIDs == 0 && c.Received == c.Expected
}

// CheckTrades compares every trade channel of the member with f.
func (m *Member) CheckTrades(f *Feed) []TradeCheck {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []TradeCheck
	for _, ch := range m.channels {
		if !strings.HasPrefix(ch, proto.KindTrade.String()+".") {
			continue
		}
		pub := f.LastSeq(ch)
		c := TradeCheck{Channel: ch, Published: pub}
		if l := m.trades[ch]; l != nil {
			c.Expected = int(pub - l.first + 1)
			c.Received, c.Dups, c.Replayed, c.BadIDs = l.received, l.dups, l.replayed, l.badIDs
			c.Lost = l.holes + int(pub-l.last)
		}
		out = append(out, c)
	}
	return out
}
