package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/tickgate/tickgate/codec"
	"github.com/tickgate/tickgate/feed"
	"github.com/tickgate/tickgate/proto"
)

// bigBook is a book feed with many levels per side: bids 99,999.00 down,
// asks 100,001.00 up, one level per whole price, so the book never
// crosses and every change keeps its price. Its messages carry the true
// seq and checksum, so the node accepts them as a publisher's.
type bigBook struct {
	symbol     string
	bids, asks []proto.Level // best first
	rng        *rand.Rand
	seq        uint64
}

func newBigBook(symbol string, levels int, seed uint64) *bigBook {
	b := &bigBook{symbol: symbol, rng: rand.New(rand.NewPCG(seed, 0x626f6f6b))}
	for i := range levels {
		b.bids = append(b.bids, proto.Level{fmt.Sprintf("%d.00", 99_999-i), b.size()})
		b.asks = append(b.asks, proto.Level{fmt.Sprintf("%d.00", 100_001+i), b.size()})
	}
	return b
}

func (b *bigBook) size() string { return fmt.Sprintf("%d.%d", 1+b.rng.IntN(99), b.rng.IntN(10)) }

// snapshot returns the next message: the whole book. Its levels are the
// book's own slices: publish it before the next change.
func (b *bigBook) snapshot(ts int64) proto.FeedMessage {
	b.seq++
	return proto.FeedMessage{Seq: b.seq, Type: proto.FeedSnapshot, Data: &proto.Book{
		Symbol: b.symbol, Bids: b.bids, Asks: b.asks, Checksum: proto.BookChecksum(b.bids, b.asks), TS: ts,
	}}
}

// update changes the size of one to three levels near the top and
// returns the delta.
func (b *bigBook) update(ts int64) proto.FeedMessage {
	var bids, asks []proto.Level
	seen := map[int]bool{}
	for range 1 + b.rng.IntN(3) {
		i := b.rng.IntN(min(50, len(b.bids)))
		side := b.rng.IntN(2)
		if seen[i*2+side] {
			continue
		}
		seen[i*2+side] = true
		if side == 0 {
			b.bids[i][1] = b.size()
			bids = append(bids, b.bids[i])
		} else {
			b.asks[i][1] = b.size()
			asks = append(asks, b.asks[i])
		}
	}
	b.seq++
	return proto.FeedMessage{Seq: b.seq, Type: proto.FeedUpdate, Data: &proto.Book{
		Bids: nonNilLevels(bids), Asks: nonNilLevels(asks), Checksum: proto.BookChecksum(b.bids, b.asks), TS: ts,
	}}
}

// change alters one level's size without a message: the next snapshot
// differs from the node's state, so the node forwards it.
func (b *bigBook) change() {
	i := b.rng.IntN(len(b.bids))
	b.bids[i][1] = b.size()
}

func nonNilLevels(l []proto.Level) []proto.Level {
	if l == nil {
		return []proto.Level{}
	}
	return l
}

// tickerMsg is the seq-th ticker message of symbol.
func tickerMsg(symbol string, seq uint64, ts int64) proto.FeedMessage {
	last := fmt.Sprintf("%d.%02d", 100+seq%7, seq%100)
	return proto.FeedMessage{Seq: seq, Type: proto.FeedUpdate, Data: &proto.Ticker{
		Symbol: symbol, Bid: "99.99", BidSize: "1.5", Ask: "100.01", AskSize: "2", Last: last, Volume: "1000", TS: ts,
	}}
}

// tradeMsg is the seq-th trade of symbol (its id is its seq).
func tradeMsg(symbol string, seq uint64, ts int64) proto.FeedMessage {
	side := proto.SideBuy
	if seq%2 == 0 {
		side = proto.SideSell
	}
	return proto.FeedMessage{Seq: seq, Type: proto.FeedUpdate, Data: &proto.Trade{
		Symbol: symbol, ID: int64(seq), Price: "100.5", Size: "0.01", Side: side, TS: ts,
	}}
}

// publisher publishes feed messages on the node's NATS.
func (n *node) publisher(name string) (*feed.Publisher, error) {
	return feed.DialPublisher(n.natsURL, "tickattack "+name, feed.DefaultSubjectPrefix)
}

// flush waits until NATS has everything published so far.
func flush(p *feed.Publisher) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return p.Flush(ctx)
}

// channel parses a channel name the scenario made up (always valid).
func channel(name string) proto.Channel {
	ch, err := proto.ParseChannel(name)
	if err != nil {
		panic(fmt.Sprintf("tickattack: channel %q: %v", name, err))
	}
	return ch
}

// errTemplate is returned when a feed message does not encode with its
// seq as a fixed-width msgpack uint64.
var errTemplate = errors.New("tickattack: feed template: no fixed-width seq")

// template is a msgpack feed message encoded once, whose seq is rewritten
// in place for each publish: a flood of 5,000-level snapshots must be
// limited by the node and NATS, not by encoding 10,000 levels per message
// in the attacking process.
type template struct {
	b  []byte
	at int // offset of the 8 bytes of seq
}

// newTemplate encodes m with a seq of 2^63, which msgpack writes as 0xcf
// and 8 bytes, and remembers where they are.
func newTemplate(m proto.FeedMessage) (*template, error) {
	m.Seq = 1 << 63
	b, err := codec.Msgpack().Append(nil, m)
	if err != nil {
		return nil, err
	}
	i := bytes.Index(b, []byte("\xa3seq\xcf"))
	if i < 0 {
		return nil, errTemplate
	}
	return &template{b: b, at: i + 5}, nil
}

// with returns the message with seq; the bytes are the template's own,
// valid until the next call.
func (t *template) with(seq uint64) []byte {
	binary.BigEndian.PutUint64(t.b[t.at:], seq)
	return t.b
}
