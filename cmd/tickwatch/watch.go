package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tickgate/tickgate/internal/cli"

	"github.com/tickgate/tickgate/client"
	"github.com/tickgate/tickgate/codec"
	"github.com/tickgate/tickgate/proto"
)

// run executes tickwatch and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseConfig(args, stderr)
	if code, ended := cli.FlagsFailed("tickwatch", err, stderr); ended {
		return code
	}
	ok, err := watch(ctx, cfg, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "tickwatch: %v\n", err)
		return 1
	}
	if !ok {
		return 1
	}
	return 0
}

// watch runs the client until the duration ends or ctx does, prints the
// summary, and reports whether every inconsistency was recovered.
func watch(ctx context.Context, cfg *config, stdout io.Writer) (bool, error) {
	if _, err := readToken(cfg.tokenFile); err != nil {
		return false, err
	}
	opts := client.Options{
		TokenSource:        func(context.Context) (string, error) { return readToken(cfg.tokenFile) },
		TokenInSubprotocol: cfg.subprotocol,
	}
	if cfg.msgpack {
		opts.Codec = codec.Msgpack()
	}
	if cfg.caFile != "" {
		pem, err := os.ReadFile(cfg.caFile)
		if err != nil {
			return false, fmt.Errorf("--ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return false, fmt.Errorf("--ca-file %s: no PEM certificate in it", cfg.caFile)
		}
		opts.TLS = &tls.Config{RootCAs: pool}
	}
	if cfg.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.duration)
		defer cancel()
	}
	w := &watcher{out: stdout, json: cfg.json, channels: cfg.channels}
	opts.OnEvent = w.event
	c, err := client.Dial(ctx, cfg.url, opts)
	if err != nil {
		return false, err
	}
	if _, err := c.Subscribe(ctx, cfg.channels, cfg.options...); err != nil {
		_ = c.Close()
		return false, err
	}
	<-ctx.Done()
	// A resync under way when the time is up gets a moment to finish.
	deadline := time.Now().Add(cfg.grace)
	for !allLive(c, cfg.channels) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	final := c.Channels()
	stats := c.Stats()
	_ = c.Close() // the handler has returned for good: w is ours
	return w.summary(stats, final), nil
}

func allLive(c *client.Client, channels []string) bool {
	for _, ch := range channels {
		if st, ok := c.State(ch); !ok || st != client.StateLive {
			return false
		}
	}
	return true
}

func readToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("--token-file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("--token-file %s is empty", path)
	}
	return tok, nil
}

// watcher prints events and keeps the books of recovery. Its fields are
// owned by the client's event goroutine until Close returns.
type watcher struct {
	out      io.Writer
	json     bool
	channels []string

	mu sync.Mutex
	// lost counts inconsistencies that cannot be recovered: trades
	// reported missing, subscriptions the node ended. The others (a gap
	// the client resyncs, a lost connection) are recovered when their
	// channel is live again, which the summary checks at the end.
	lost   int
	events int
}

// line is an event as --json prints it.
type line struct {
	Time       string        `json:"time"`
	Channel    string        `json:"channel"`
	Type       string        `json:"type"`
	Seq        uint64        `json:"seq"`
	Prev       uint64        `json:"prev"`
	N          int           `json:"n,omitempty"`
	State      string        `json:"state,omitempty"`
	ChecksumOK *bool         `json:"checksum_ok,omitempty"`
	Checksum   *uint32       `json:"checksum,omitempty"`
	Bid        *proto.Level  `json:"bid,omitempty"`
	Ask        *proto.Level  `json:"ask,omitempty"`
	Levels     *[2]int       `json:"levels,omitempty"`
	Ticker     *proto.Ticker `json:"ticker,omitempty"`
	Trade      *proto.Trade  `json:"trade,omitempty"`
	Trades     int           `json:"trades,omitempty"`
	Candle     *proto.Candle `json:"candle,omitempty"`
	Bars       int           `json:"bars,omitempty"`
	Gap        *client.Gap   `json:"gap,omitempty"`
	Resumed    bool          `json:"resumed,omitempty"`
	Error      string        `json:"error,omitempty"`
	Node       string        `json:"node,omitempty"`
	Session    string        `json:"session,omitempty"`
	RetryInMS  int64         `json:"retry_in_ms,omitempty"`
}

func (w *watcher) event(e client.Event) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.events++
	w.track(e)
	l := line{Time: time.Now().UTC().Format(time.RFC3339Nano), Channel: e.Channel, Type: e.Type.String(), Seq: e.Seq, Prev: e.Prev, N: e.N}
	if e.Channel != "" {
		l.State = e.State.String()
	}
	yes, no := true, false
	if e.Book != nil {
		l.ChecksumOK = &yes // the client hands over only verified books
		sum := e.Book.Checksum()
		l.Checksum = &sum
		if b, ok := e.Book.BestBid(); ok {
			l.Bid = &b
		}
		if a, ok := e.Book.BestAsk(); ok {
			l.Ask = &a
		}
		nb, na := e.Book.Depth()
		l.Levels = &[2]int{nb, na}
	}
	l.Ticker, l.Trade, l.Trades, l.Candle, l.Bars = e.Ticker, e.Trade, len(e.Trades), e.Candle, len(e.Bars)
	if e.Gap != nil {
		g := *e.Gap
		l.Gap = &g
		if g.Reason == client.GapChecksum {
			l.ChecksumOK = &no
		}
	}
	l.Resumed = e.Resumed
	if e.Err != nil {
		l.Error = e.Err.Error()
	}
	if e.Conn != nil {
		l.Node, l.Session = e.Conn.Node, e.Conn.Session
	}
	l.RetryInMS = e.Delay.Milliseconds()
	if w.json {
		b, err := json.Marshal(l)
		if err == nil {
			fmt.Fprintf(w.out, "%s\n", b)
		}
		return
	}
	fmt.Fprintln(w.out, human(e, &l))
}

// track counts what cannot be recovered.
func (w *watcher) track(e client.Event) {
	switch {
	case e.Type == client.EventGap && !e.Gap.Resync:
		w.lost++
	case e.Type == client.EventError && e.Channel != "":
		w.lost++
	}
}

// human writes an event as one readable line.
func human(e client.Event, l *line) string {
	var b strings.Builder
	b.WriteString(time.Now().Format("15:04:05.000"))
	b.WriteByte(' ')
	if e.Channel != "" {
		b.WriteString(e.Channel)
		b.WriteByte(' ')
	}
	b.WriteString(l.Type)
	switch e.Type {
	case client.EventSnapshot, client.EventUpdate:
		fmt.Fprintf(&b, " seq=%d", e.Seq)
		if e.Type == client.EventUpdate {
			fmt.Fprintf(&b, " prev=%d", e.Prev)
		}
		if e.N > 1 {
			fmt.Fprintf(&b, " n=%d", e.N)
		}
	}
	level := func(name string, p *proto.Level) {
		if p != nil {
			fmt.Fprintf(&b, " %s=%s×%s", name, p[0], p[1])
		} else {
			fmt.Fprintf(&b, " %s=-", name)
		}
	}
	switch {
	case e.Book != nil:
		level("bid", l.Bid)
		level("ask", l.Ask)
		fmt.Fprintf(&b, " levels=%d/%d checksum=ok", l.Levels[0], l.Levels[1])
	case e.Ticker != nil:
		fmt.Fprintf(&b, " bid=%s×%s ask=%s×%s last=%s", e.Ticker.Bid, e.Ticker.BidSize, e.Ticker.Ask, e.Ticker.AskSize, e.Ticker.Last)
	case e.Trade != nil:
		fmt.Fprintf(&b, " %s %s@%s id=%d", e.Trade.Side, e.Trade.Size, e.Trade.Price, e.Trade.ID)
	case e.Trades != nil:
		fmt.Fprintf(&b, " %d recent trades", len(e.Trades))
	case e.Candle != nil:
		c := e.Candle
		fmt.Fprintf(&b, " %s o=%s h=%s l=%s c=%s v=%s trades=%d", time.Unix(0, c.Start).UTC().Format("15:04"), c.Open, c.High, c.Low, c.Close, c.Volume, c.Trades)
		if c.Closed {
			b.WriteString(" closed")
		}
	case e.Bars != nil:
		fmt.Fprintf(&b, " %d bars", len(e.Bars))
	case e.Gap != nil:
		fmt.Fprintf(&b, " %s", e.Gap.Reason)
		switch {
		case e.Gap.From != 0 && e.Gap.To != 0:
			fmt.Fprintf(&b, " seqs %d-%d", e.Gap.From, e.Gap.To)
		case e.Gap.From != 0:
			fmt.Fprintf(&b, " from seq %d", e.Gap.From)
		}
		if e.Gap.Resync {
			b.WriteString(", resyncing")
		} else {
			b.WriteString(", lost")
		}
	case e.Type == client.EventState:
		fmt.Fprintf(&b, " %s", e.State)
		if e.Resumed {
			b.WriteString(" (resumed)")
		}
	case e.Conn != nil:
		fmt.Fprintf(&b, " node=%s session=%s codec=%s", e.Conn.Node, e.Conn.Session, e.Conn.Codec)
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	if e.Type == client.EventDisconnected {
		fmt.Fprintf(&b, "; next attempt in %v", e.Delay.Round(time.Millisecond))
	}
	return b.String()
}

// summary prints the summary line and reports whether every
// inconsistency was recovered.
func (w *watcher) summary(st client.Stats, final map[string]client.ChannelState) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	notLive := []string{}
	for _, ch := range w.channels {
		if s, ok := final[ch]; !ok || s != client.StateLive {
			notLive = append(notLive, ch+"="+stateName(s, ok))
		}
	}
	slices.Sort(notLive)
	unrecovered := w.lost + len(notLive)
	ok := unrecovered == 0
	if w.json {
		b, _ := json.Marshal(map[string]any{
			"type": "summary", "messages": st.Messages, "events": w.events, "gaps": st.Gaps, "resyncs": st.Resyncs,
			"reconnects": st.Reconnects, "resumed": st.Resumed, "checksum_failures": st.ChecksumFailures,
			"unrecovered": unrecovered, "not_live": notLive, "ok": ok,
		})
		fmt.Fprintf(w.out, "%s\n", b)
		return ok
	}
	verdict := "ok: every inconsistency recovered"
	if !ok {
		verdict = "NOT OK"
		if len(notLive) > 0 {
			verdict += ": not live at the end: " + strings.Join(notLive, " ")
		}
	}
	fmt.Fprintf(w.out, "summary: messages=%d gaps=%d resyncs=%d reconnects=%d resumed=%d checksum_failures=%d unrecovered=%d; %s\n",
		st.Messages, st.Gaps, st.Resyncs, st.Reconnects, st.Resumed, st.ChecksumFailures, unrecovered, verdict)
	return ok
}

func stateName(s client.ChannelState, ok bool) string {
	if !ok {
		return "ended"
	}
	return s.String()
}
