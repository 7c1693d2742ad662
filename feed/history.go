package feed

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tickgate/tickgate/proto"
)

// History reads a channel's past from a JetStream stream over the feed
// subjects (contract 1.1 durable resume, docs/operations.md "History
// stream"): the stream is the operator's; a node only reads it. It is
// safe for concurrent use. A stream that is missing, or a server without
// JetStream, makes every read fail with ErrNoHistory until it appears: the
// node serves from its memory meanwhile.
type History struct {
	js     jetstream.JetStream // Static after construction.
	nc     *nats.Conn          // Static after construction: for gets the stream's leader answers.
	name   string              // Static after construction: the stream.
	prefix string              // Static after construction: the subject prefix.
	limit  int                 // Static after construction: messages one Since may replay.
	// fetch takes the next batch of a read's consumer. Static after
	// construction: FetchNoWait, or a test's stand-in.
	fetch func(jetstream.Consumer) (jetstream.MessageBatch, error)
	// gets makes a search's first getter. Static after construction:
	// streamGets, or a test's stand-in (a replica behind the leader).
	gets func(jetstream.Stream) getter
}

// Errors of History.
var (
	// ErrNoHistory: the stream is missing, or the server has no JetStream.
	ErrNoHistory = errors.New("feed: no history stream")
	// ErrNotCovered: the stream does not hold every message after the
	// given seq (it was cut by its limits, or the seq is not the
	// publisher's), or more of them than a replay may take.
	ErrNotCovered = errors.New("feed: history does not cover the seq")
	// ErrHistoryRead: a read of the stream failed on the way (a timeout,
	// a server overloaded or unreachable for a moment); it says nothing
	// about what the stream holds, so the read is worth trying again.
	// Such errors wrap ErrNoHistory too.
	ErrHistoryRead = errors.New("feed: history read failed")
)

// readFailed wraps err, a failure on the way to the stream, as
// ErrNoHistory and ErrHistoryRead: what is a transient failure.
func readFailed(what string, err error) error {
	return fmt.Errorf("%w: %w: %s: %w", ErrNoHistory, ErrHistoryRead, what, err)
}

// DefaultReplayLimit bounds the messages one History.Since replays.
const DefaultReplayLimit = 100_000

// NewHistory reads history from stream name through src's connection.
// limit bounds the messages one Since replays (zero: DefaultReplayLimit).
func NewHistory(src *Source, name string, limit int) (*History, error) {
	js, err := jetstream.New(src.nc)
	if err != nil {
		return nil, fmt.Errorf("feed: jetstream: %w", err)
	}
	if limit <= 0 {
		limit = DefaultReplayLimit
	}
	return &History{js: js, nc: src.nc, name: name, prefix: src.cfg.SubjectPrefix, limit: limit, fetch: fetchNoWait,
		gets: func(st jetstream.Stream) getter { return streamGets{st} }}, nil
}

// Stream returns the stream's name.
func (h *History) Stream() string { return h.name }

// Check reports whether the stream can be read: nil, or an error wrapping
// ErrNoHistory that says why not.
func (h *History) Check(ctx context.Context) error {
	_, err := h.stream(ctx)
	return err
}

func (h *History) stream(ctx context.Context) (jetstream.Stream, error) {
	s, err := h.js.Stream(ctx, h.name)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return nil, fmt.Errorf("%w: stream %s does not exist", ErrNoHistory, h.name)
	case errors.Is(err, jetstream.ErrJetStreamNotEnabled), errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount):
		return nil, fmt.Errorf("%w: JetStream is not enabled", ErrNoHistory)
	case err != nil:
		return nil, readFailed("stream "+h.name, err)
	}
	return s, nil
}

// Since returns the channel's feed messages after publisher seq seq, in
// order, as the stream holds them now, and the newest publisher seq they
// reach (seq itself when there is nothing newer). Publisher heartbeats are
// left out, but a heartbeat ahead of the messages moves upTo. It fails
// with ErrNotCovered unless the stream holds the message right after seq
// (or nothing after seq at all, when seq is the channel's newest), and
// when more than the replay limit would follow.
//
// The position of seq is found by a binary search over the stream's
// sequence numbers, each step one direct get of the channel's next message
// at or after a stream sequence: about log2(stream length) requests (30 for
// a billion messages), never a scan. It relies on a channel's publisher
// seqs growing with the stream sequence, which holds within one run of the
// publisher; the message found must carry exactly seq+1.
//
// A direct get may be answered by any replica, and a replica may not have
// the newest messages yet (a write is acknowledged once a majority has
// it). So a search that finds seq not covered is done again with gets the
// stream's leader answers, which has every acknowledged message, before
// the answer stands; the replay itself is read from the leader.
func (h *History) Since(ctx context.Context, ch proto.Channel, seq uint64) (msgs []*Message, upTo uint64, err error) {
	st, err := h.stream(ctx)
	if err != nil {
		return nil, 0, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil, 0, readFailed("stream info", err)
	}
	if info.State.Msgs == 0 {
		return nil, 0, fmt.Errorf("%w: the stream is empty", ErrNotCovered)
	}
	msgs, upTo, err = h.since(ctx, st, info, ch, seq, h.gets(st))
	if errors.Is(err, ErrNotCovered) && info.Config.AllowDirect {
		msgs, upTo, err = h.since(ctx, st, info, ch, seq, leaderGets{h.nc, h.name})
	}
	return msgs, upTo, err
}

// Range returns ch's feed messages with publisher seqs above after and
// up to to, in order, heartbeats left out, as far as the stream holds
// them: what a node fills a small live gap with. It uses gets only: the
// stream's newest message of ch, a binary search for after, then one get
// per message. No stream info and no consumer, which the JetStream
// cluster's meta leader answers: while one is being elected (the loss of
// the NATS node that was it, which is also when a node sees gaps), those
// fail for seconds and gets do not. Direct gets first (any replica), then
// the leader's for what a replica had not stored yet.
func (h *History) Range(ctx context.Context, ch proto.Channel, after, to uint64) ([]*Message, error) {
	direct, derr := h.rangeWith(ctx, ch, after, to, directGets{h.nc, h.name})
	if derr == nil && len(direct) > 0 && direct[len(direct)-1].Seq >= to {
		return direct, nil
	}
	leader, lerr := h.rangeWith(ctx, ch, after, to, leaderGets{h.nc, h.name})
	switch {
	case lerr == nil && len(leader) >= len(direct):
		return leader, nil
	case derr == nil:
		return direct, nil
	}
	return nil, lerr
}

// rangeWith is Range through g.
func (h *History) rangeWith(ctx context.Context, ch proto.Channel, after, to uint64, g getter) ([]*Message, error) {
	subject := ch.Subject(h.prefix)
	last, err := g.last(ctx, subject)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return nil, nil
	case err != nil:
		return nil, readFailed("last message", err)
	}
	var found *jetstream.RawStreamMsg
	lo, hi := uint64(1), last.Sequence+1
	for lo < hi {
		mid := lo + (hi-lo)/2
		m, p, err := h.next(ctx, g, ch, subject, mid)
		if err != nil {
			return nil, err
		}
		if m == nil || p > after {
			if m != nil {
				found = m
			}
			hi = mid
			continue
		}
		lo = m.Sequence + 1
	}
	var msgs []*Message
	prev := after
	for m := found; m != nil; {
		if dm, err := Decode(ch, m.Data); err == nil && !dm.Heartbeat {
			if dm.Seq > to {
				break
			}
			if dm.Seq > prev {
				msgs = append(msgs, dm)
				prev = dm.Seq
			}
		}
		if m.Sequence >= last.Sequence {
			break
		}
		if m, err = g.next(ctx, m.Sequence+1, subject); errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		} else if err != nil {
			return nil, readFailed("get", err)
		}
	}
	return msgs, nil
}

// getter gets a stream's messages: through jetstream.Stream (direct gets
// when the stream allows them, streamGets), or from its leader
// (leaderGets). Both fail with jetstream.ErrMsgNotFound for none.
type getter interface {
	// next gets the first message of subject at or after stream
	// sequence from.
	next(ctx context.Context, from uint64, subject string) (*jetstream.RawStreamMsg, error)
	// last gets subject's newest message.
	last(ctx context.Context, subject string) (*jetstream.RawStreamMsg, error)
}

// streamGets are jetstream.Stream's gets.
type streamGets struct{ st jetstream.Stream }

func (g streamGets) next(ctx context.Context, from uint64, subject string) (*jetstream.RawStreamMsg, error) {
	return g.st.GetMsg(ctx, from, jetstream.WithGetMsgSubject(subject))
}

func (g streamGets) last(ctx context.Context, subject string) (*jetstream.RawStreamMsg, error) {
	return g.st.GetLastMsgForSubject(ctx, subject)
}

// since is Since's search and replay, its gets through g.
func (h *History) since(ctx context.Context, st jetstream.Stream, info *jetstream.StreamInfo, ch proto.Channel, seq uint64, g getter) ([]*Message, uint64, error) {
	subject := ch.Subject(h.prefix)
	first, last := info.State.FirstSeq, info.State.LastSeq
	// The smallest stream sequence holding a message of ch with a
	// publisher seq above seq.
	var found *jetstream.RawStreamMsg
	var foundSeq uint64
	lo, hi := first, last+1
	for lo < hi {
		mid := lo + (hi-lo)/2
		m, p, err := h.next(ctx, g, ch, subject, mid)
		if err != nil {
			return nil, 0, err
		}
		if m == nil || p > seq {
			if m != nil {
				found, foundSeq = m, p
			}
			hi = mid
			continue
		}
		lo = m.Sequence + 1
	}
	if found == nil {
		// Nothing after seq: covered only when seq is the newest.
		m, err := g.last(ctx, subject)
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
			return nil, 0, fmt.Errorf("%w: %s: %w", ErrNotCovered, ch, err)
		case err != nil:
			return nil, 0, readFailed("last message", err)
		}
		if p, err := pubSeq(ch, m.Data); err != nil || p != seq {
			return nil, 0, fmt.Errorf("%w: %s: the stream's newest is not %d", ErrNotCovered, ch, seq)
		}
		return nil, seq, nil
	}
	if foundSeq != seq+1 {
		return nil, 0, fmt.Errorf("%w: %s: the stream's first message after %d is %d", ErrNotCovered, ch, seq, foundSeq)
	}
	return h.replay(ctx, st, ch, subject, found.Sequence, seq)
}

// next returns the first message of ch at or after stream sequence from,
// with its publisher seq, or nil when there is none. A heartbeat counts
// with its seq.
func (h *History) next(ctx context.Context, g getter, ch proto.Channel, subject string, from uint64) (*jetstream.RawStreamMsg, uint64, error) {
	m, err := g.next(ctx, from, subject)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return nil, 0, nil
	case err != nil:
		return nil, 0, readFailed("get", err)
	}
	p, err := pubSeq(ch, m.Data)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %s at stream seq %d: %w", ErrNotCovered, ch, m.Sequence, err)
	}
	return m, p, nil
}

// pubSeq is the publisher seq of a stored feed payload.
func pubSeq(ch proto.Channel, payload []byte) (uint64, error) {
	m, err := Decode(ch, payload)
	if err != nil {
		return 0, err
	}
	return m.Seq, nil
}

// replay reads ch's messages from stream sequence start to the stream's
// end, after publisher seq after.
func (h *History) replay(ctx context.Context, st jetstream.Stream, ch proto.Channel, subject string, start, after uint64) ([]*Message, uint64, error) {
	var msgs []*Message
	upTo := after
	err := h.read(ctx, st, subject, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: start,
	}, func(payload []byte) error {
		m, err := Decode(ch, payload)
		switch {
		case err != nil:
			// A payload the node would have dropped live: left out, and
			// its seq shows as a gap if it was one.
		case m.Heartbeat:
			upTo = max(upTo, m.Seq)
		case m.Seq <= upTo:
			// A duplicate, or the old run of a restarted publisher.
		default:
			msgs = append(msgs, m)
			upTo = m.Seq
			if len(msgs) > h.limit {
				return fmt.Errorf("%w: %s: more than %d messages after %d", ErrNotCovered, ch, h.limit, after)
			}
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return msgs, upTo, nil
}

// recentWindows are how far back Recent looks, in turn, for a message that
// carries a channel's whole state.
var recentWindows = [...]time.Duration{10 * time.Second, time.Minute, 10 * time.Minute, time.Hour}

// Recent returns what a node that holds nothing of ch needs to start it
// from the stream: for a book its newest snapshot and the updates after
// it, for a ticker its newest ticker. It reads the channel's messages of
// the last 10 s, then of the last minute, 10 minutes and hour, until it
// finds one (a book's publisher sends a snapshot periodically), and fails
// with ErrNotCovered when there is none in the last hour or the replay
// limit would be passed. Trade channels have no state to start from.
// A candle channel's bars are each message's own whole state: it returns
// every message of the window its kind declares (the default snapshot's
// bars: 100 intervals), the newest replay-limit of them.
func (h *History) Recent(ctx context.Context, ch proto.Channel) ([]*Message, error) {
	if !Warms(ch.Kind) {
		return nil, fmt.Errorf("%w: %s has no state to start from", ErrNotCovered, ch)
	}
	if w := warmWindow(ch); w > 0 {
		return h.window(ctx, ch, w)
	}
	whole := ch.Kind.Spec().WholeState
	st, err := h.stream(ctx)
	if err != nil {
		return nil, err
	}
	subject := ch.Subject(h.prefix)
	for _, w := range recentWindows {
		start := time.Now().Add(-w)
		var msgs []*Message
		err := h.read(ctx, st, subject, jetstream.OrderedConsumerConfig{
			DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &start,
		}, func(payload []byte) error {
			m, err := Decode(ch, payload)
			switch {
			case err != nil, m.Heartbeat:
			case m.Snapshot || whole:
				msgs = append(msgs[:0], m) // a whole state: start over from it
			case len(msgs) > 0:
				msgs = append(msgs, m)
			}
			if len(msgs) > h.limit {
				return fmt.Errorf("%w: %s: more than %d updates after its newest snapshot", ErrNotCovered, ch, h.limit)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if len(msgs) > 0 {
			return msgs, nil
		}
	}
	return nil, fmt.Errorf("%w: %s: no whole state in the last %v", ErrNotCovered, ch, recentWindows[len(recentWindows)-1])
}

// window returns ch's data messages of the last w, oldest first, at most
// the newest replay-limit of them; ErrNotCovered when there is none.
func (h *History) window(ctx context.Context, ch proto.Channel, w time.Duration) ([]*Message, error) {
	st, err := h.stream(ctx)
	if err != nil {
		return nil, err
	}
	start := time.Now().Add(-w)
	var msgs []*Message
	err = h.read(ctx, st, ch.Subject(h.prefix), jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &start,
	}, func(payload []byte) error {
		if m, err := Decode(ch, payload); err == nil && !m.Heartbeat {
			if len(msgs) == 2*h.limit {
				msgs = append(msgs[:0], msgs[h.limit:]...)
			}
			msgs = append(msgs, m)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(msgs) == 0 {
		return nil, fmt.Errorf("%w: %s: nothing in the last %v", ErrNotCovered, ch, w)
	}
	return msgs[max(len(msgs)-h.limit, 0):], nil
}

// Last returns the newest n data messages of ch in the stream, oldest
// first, publisher heartbeats left out: what a snapshot of recent trades
// takes when the node's memory is short (contract 1.1 §8, §11). It reads
// from the newest publisher seq minus n on (Since: a binary search, then a
// replay of at most n messages), or, when the stream does not reach back
// that far, from the oldest message it holds of ch. ErrNotCovered when it
// holds none.
func (h *History) Last(ctx context.Context, ch proto.Channel, n int) ([]*Message, error) {
	latest, err := h.Latest(ctx, ch)
	if err != nil {
		return nil, err
	}
	from := uint64(0)
	if latest.Seq > uint64(n) {
		from = latest.Seq - uint64(n)
	}
	msgs, _, err := h.Since(ctx, ch, from)
	if errors.Is(err, ErrNotCovered) {
		st, serr := h.stream(ctx)
		if serr != nil {
			return nil, serr
		}
		info, serr := st.Info(ctx)
		if serr != nil {
			return nil, readFailed("stream info", serr)
		}
		m, oldest, serr := h.next(ctx, streamGets{st}, ch, ch.Subject(h.prefix), info.State.FirstSeq)
		if serr != nil {
			return nil, serr
		}
		if m == nil || oldest == 0 {
			return nil, fmt.Errorf("%w: %s: nothing stored", ErrNotCovered, ch)
		}
		msgs, _, err = h.Since(ctx, ch, oldest-1)
	}
	if err != nil {
		return nil, err
	}
	return msgs[max(len(msgs)-n, 0):], nil
}

// read passes every stored message of subject from where cfg starts to
// the stream's end to f, in order, with an ordered consumer.
func (h *History) read(ctx context.Context, st jetstream.Stream, subject string, cfg jetstream.OrderedConsumerConfig, f func(payload []byte) error) error {
	cfg.FilterSubjects, cfg.InactiveThreshold = []string{subject}, time.Minute
	cons, err := st.OrderedConsumer(ctx, cfg)
	if err != nil {
		return readFailed("consumer", err)
	}
	defer func() {
		if info := cons.CachedInfo(); info != nil {
			dctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_ = st.DeleteConsumer(dctx, info.Name)
			cancel()
		}
	}()
	read := false
	for {
		// Stored messages are there at once: no waiting for more.
		batch, err := h.fetch(cons)
		if err != nil {
			return readFailed("fetch", err)
		}
		n, done := 0, false
		for jm := range batch.Messages() {
			n++
			md, err := jm.Metadata()
			if err != nil {
				return readFailed("metadata", err)
			}
			if err := f(jm.Data()); err != nil {
				return err
			}
			if md.NumPending == 0 {
				done = true
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return readFailed("fetch", err)
		}
		read = read || n > 0
		if done {
			return nil
		}
		if n == 0 {
			// A batch can end empty before the consumer's end: nats.go
			// takes the server's "no messages" and "request timeout"
			// answers alike for the end of a no-wait fetch, and an
			// overloaded server (a reconnect storm) gives them for
			// messages it holds. The end is certain only when the
			// consumer had nothing pending when it was made, and nothing
			// was read; otherwise try again, within ctx. (Taking such a
			// batch for the end returned short replays, and lost trades.)
			if info := cons.CachedInfo(); !read && info != nil && info.NumPending == 0 {
				return nil
			}
			select {
			case <-ctx.Done():
				return readFailed("fetch", ctx.Err())
			case <-time.After(emptyFetchRetry):
			}
			continue
		}
		if err := ctx.Err(); err != nil {
			return readFailed("read", err)
		}
	}
}

// emptyFetchRetry is the pause before fetching again after a batch that
// ended empty before the consumer's end.
const emptyFetchRetry = 20 * time.Millisecond

func fetchNoWait(c jetstream.Consumer) (jetstream.MessageBatch, error) { return c.FetchNoWait(500) }

// Latest returns the newest message of ch in the stream (a heartbeat
// included), or ErrNotCovered when there is none.
func (h *History) Latest(ctx context.Context, ch proto.Channel) (*Message, error) {
	st, err := h.stream(ctx)
	if err != nil {
		return nil, err
	}
	m, err := st.GetLastMsgForSubject(ctx, ch.Subject(h.prefix))
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return nil, fmt.Errorf("%w: %s: nothing stored", ErrNotCovered, ch)
	case err != nil:
		return nil, readFailed("last message", err)
	}
	return Decode(ch, m.Data)
}
