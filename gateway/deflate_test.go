package gateway

import (
	"bytes"
	"compress/flate"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	kflate "github.com/klauspost/compress/flate"

	"github.com/lxzan/gws"

	"github.com/tickgate/tickgate/codec"
	"github.com/tickgate/tickgate/internal/booktest"
	"github.com/tickgate/tickgate/proto"
)

// deflateAnswer is what the node answers an offer it accepts.
const deflateAnswer = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"

func TestDeflateOffered(t *testing.T) {
	for _, tc := range []struct {
		name   string
		offers []string // Sec-WebSocket-Extensions lines
		want   bool
	}{
		{"none", nil, false},
		{"bare", []string{"permessage-deflate"}, true},
		{"chromium", []string{"permessage-deflate; client_max_window_bits"}, true},
		{"firefox", []string{"permessage-deflate"}, true},
		{"client window value", []string{"permessage-deflate; client_max_window_bits=10"}, true},
		{"quoted value", []string{`permessage-deflate; client_max_window_bits="12"`}, true},
		{"no context takeover asked", []string{"permessage-deflate; server_no_context_takeover; client_no_context_takeover"}, true},
		{"server window 15", []string{"permessage-deflate; server_max_window_bits=15"}, true},
		{"case and spaces", []string{"  Permessage-Deflate ;Client_Max_Window_Bits "}, true},
		{"server window smaller", []string{"permessage-deflate; server_max_window_bits=10"}, false},
		{"server window without value", []string{"permessage-deflate; server_max_window_bits"}, false},
		{"client window out of range", []string{"permessage-deflate; client_max_window_bits=16"}, false},
		{"client window signed", []string{"permessage-deflate; client_max_window_bits=+9"}, false},
		{"takeover with a value", []string{"permessage-deflate; server_no_context_takeover=1"}, false},
		{"parameter twice", []string{"permessage-deflate; client_no_context_takeover; client_no_context_takeover"}, false},
		{"unknown parameter", []string{"permessage-deflate; x-other"}, false},
		{"another extension", []string{"x-webkit-deflate-frame"}, false},
		{"a name containing it", []string{"x-permessage-deflate-foo"}, false},
		{"fallback offer", []string{"permessage-deflate; server_max_window_bits=10, permessage-deflate"}, true},
		{"second line", []string{"x-foo", "permessage-deflate; client_max_window_bits"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for _, o := range tc.offers {
				h.Add(extensionsHeader, o)
			}
			if got := deflateOffered(h); got != tc.want {
				t.Fatalf("deflateOffered(%q) = %v, want %v", tc.offers, got, tc.want)
			}
		})
	}
}

// inflate is what a client does with a compressed payload (RFC 7692
// §7.2.2): the sync flush's tail added back, then inflated.
func inflate(t testing.TB, payload []byte) []byte {
	t.Helper()
	r := flate.NewReader(io.MultiReader(bytes.NewReader(payload), strings.NewReader(deflateTail+"\x01\x00\x00\xff\xff")))
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("inflate: %v", err)
	}
	return b
}

func TestDeflateFrame(t *testing.T) {
	var d deflater
	text := func(n int) []byte {
		return []byte(strings.Repeat(`{"price":"64000.10","size":"0.5"},`, n/34+1)[:n])
	}
	random := make([]byte, 4096)
	_, _ = rand.Read(random)
	for _, tc := range []struct {
		name       string
		op         gws.Opcode
		payload    []byte
		compressed bool
	}{
		{"small", gws.OpcodeText, text(deflateMinBytes - 1), false},
		{"at the threshold", gws.OpcodeText, text(deflateMinBytes), true},
		{"16-bit length", gws.OpcodeBinary, text(5000), true},
		{"64-bit length", gws.OpcodeText, text(100 << 10), true},
		{"incompressible", gws.OpcodeBinary, random, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plain := frameOf(tc.op, tc.payload)
			f, compressed := d.frame(plain)
			if compressed != tc.compressed {
				t.Fatalf("compressed %v, want %v", compressed, tc.compressed)
			}
			if !compressed {
				if &f[0] != &plain[0] {
					t.Fatal("an uncompressed frame is not the plain frame itself")
				}
				return
			}
			if f[0] != 0x80|rsv1|byte(tc.op) {
				t.Fatalf("first byte %#x, want FIN, RSV1 and opcode %d", f[0], tc.op)
			}
			z := payloadOf(f)
			if len(z) >= len(tc.payload) {
				t.Fatalf("%d compressed bytes for %d", len(z), len(tc.payload))
			}
			if bytes.HasSuffix(z, []byte(deflateTail)) {
				t.Fatal("the sync flush's tail was not removed")
			}
			if got := inflate(t, z); !bytes.Equal(got, tc.payload) {
				t.Fatalf("inflated %d bytes, not the payload", len(got))
			}
		})
	}
}

// queuedFrames takes what c's writer would take now, as whole frames.
func queuedFrames(t *testing.T, c *conn) [][]byte {
	t.Helper()
	var b batch
	c.out.take(&b, time.Now())
	c.out.wrote()
	out := make([][]byte, 0, b.len())
	for _, p := range b.taken() {
		f := p.frame
		if f == nil {
			f = c.srv.codecs.frame(c.variant, p.upd)
		}
		out = append(out, f)
	}
	return out
}

// plainPayload is the payload of frame f, inflated when RSV1 is set.
func plainPayload(t *testing.T, f []byte) []byte {
	t.Helper()
	if f[0]&rsv1 != 0 {
		return inflate(t, payloadOf(f))
	}
	return payloadOf(f)
}

// Subscribers that negotiated compression share one compressed frame per
// event and codec, made from the plain frame that plain subscribers share:
// one encoding and one compression per codec, whatever the number of
// subscribers.
func TestFanoutDeflatesOncePerCodec(t *testing.T) {
	s := hubFixture(t, func(c *Config) { c.Compression = true })
	f := booktest.NewDeepFeed(1)
	type sub struct {
		c        *conn
		deflated bool
	}
	var subs []sub
	for _, spec := range []struct {
		cd       codec.Codec
		deflated bool
		n        int
	}{{codec.JSON(), true, 3}, {codec.JSON(), false, 2}, {codec.Msgpack(), true, 2}, {codec.Msgpack(), false, 1}} {
		for range spec.n {
			c := s.bareConn(spec.cd)
			c.variant = variantOf(c.codecIdx, spec.deflated)
			s.joinFor(t, c, bookX, joinOptions{snapshot: true})
			subs = append(subs, sub{c, spec.deflated})
		}
	}
	bids, asks := f.Snapshot(40)
	before, zBefore := s.codecs.encodes.Load(), s.codecs.compressions.Load()
	s.hub.onFeed(bookX, deepMessage(1, true, bids, asks))
	if n, z := s.codecs.encodes.Load()-before, s.codecs.compressions.Load()-zBefore; n != 2 || z != 2 {
		t.Fatalf("the snapshot: %d encodings and %d compressions, want 2 and 2 (one per codec)", n, z)
	}
	for _, x := range subs {
		queuedFrames(t, x.c)
	}
	// A delta of ten levels: large enough to compress in either codec.
	delta := f.Book().Top(0, 10)
	for i := range delta {
		delta[i][1] = fmt.Sprintf("%d.5", i+1)
	}
	f.Book().Apply(delta, nil)
	before, zBefore = s.codecs.encodes.Load(), s.codecs.compressions.Load()
	s.hub.onFeed(bookX, deepMessage(2, false, delta, []proto.Level{}))
	if n, z := s.codecs.encodes.Load()-before, s.codecs.compressions.Load()-zBefore; n != 2 || z != 2 {
		t.Fatalf("the delta: %d encodings and %d compressions, want 2 and 2 (one per codec)", n, z)
	}
	shared := map[int][]byte{} // by variant
	for _, x := range subs {
		got := queuedFrames(t, x.c)
		if len(got) != 1 {
			t.Fatalf("%d frames, want the update", len(got))
		}
		fr := got[0]
		if compressed := fr[0]&rsv1 != 0; compressed != x.deflated {
			t.Fatalf("%s, deflated %v: RSV1 %v", x.c.codec.Name(), x.deflated, compressed)
		}
		if prev, ok := shared[x.c.variant]; ok && &prev[0] != &fr[0] {
			t.Fatalf("%s, deflated %v: subscribers in step got separate frames", x.c.codec.Name(), x.deflated)
		}
		shared[x.c.variant] = fr
	}
	for ci := range numCodecs {
		plain, z := shared[ci], shared[variantOf(ci, true)]
		if len(z) >= len(plain) {
			t.Fatalf("codec %d: compressed frame of %d bytes, plain %d", ci, len(z), len(plain))
		}
		if !bytes.Equal(plainPayload(t, z), payloadOf(plain)) {
			t.Fatalf("codec %d: the compressed frame does not inflate to the plain one", ci)
		}
	}
}

// compressedEnv is a node with Compression on.
func compressedEnv(t *testing.T) *testEnv {
	t.Helper()
	return newTestEnv(t, func(c *Config) { c.Compression = true })
}

// Offers as clients send them get the extension, without context
// takeover, only from a node that compresses and only when acceptable.
func TestCompressionNegotiation(t *testing.T) {
	on, off := compressedEnv(t), newTestEnv(t)
	for _, tc := range []struct {
		name  string
		env   *testEnv
		offer string
		want  string
	}{
		{"off, chromium's offer", off, "permessage-deflate; client_max_window_bits", ""},
		{"on, chromium's offer", on, "permessage-deflate; client_max_window_bits", deflateAnswer},
		{"on, bare offer", on, "permessage-deflate", deflateAnswer},
		{"on, no offer", on, "", ""},
		{"on, a smaller server window", on, "permessage-deflate; server_max_window_bits=10", ""},
		{"on, a fallback offer", on, "permessage-deflate; server_max_window_bits=10, permessage-deflate", deflateAnswer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{"Authorization": {"Bearer " + tc.env.token(t, "neg", time.Hour, ">")}}
			if tc.offer != "" {
				h.Set(extensionsHeader, tc.offer)
			}
			c, resp, err := tc.env.dial(t, dialOptions{subprotocols: []string{proto.SubprotocolJSON}, header: h})
			if err != nil {
				t.Fatalf("dial: %v (%s)", err, readBody(resp))
			}
			if got := resp.Header.Get(extensionsHeader); got != tc.want {
				t.Fatalf("Sec-WebSocket-Extensions %q, want %q", got, tc.want)
			}
			if tc.want == "" {
				c.expect(t, proto.TypeWelcome) // plain frames, which this client reads
			}
		})
	}
}

// Real clients, compressed and not, in both codecs, on one node: each
// gets the welcome, the book's snapshot and its updates intact (the chain
// and checksums verify), the compressed ones in fewer bytes (the updates
// of this small book are mostly below the threshold: the savings are
// measured in docs/benchmarks.md), and each shared event is compressed
// once per codec.
func TestCompressionEndToEnd(t *testing.T) {
	e := compressedEnv(t)
	const ch = "book.BTC-USD"
	type client struct {
		c        *testClient
		deflated bool
		k        *chainChecker
	}
	var clients []*client
	for _, spec := range []struct {
		codec    string
		deflated bool
	}{{"json", true}, {"json", true}, {"json", false}, {"msgpack", true}, {"msgpack", false}} {
		c := e.connectWith(t, spec.codec, e.token(t, "z", time.Hour, ">"), dialOptions{deflate: spec.deflated})
		if got := c.resp.Header.Get(extensionsHeader); (got == deflateAnswer) != spec.deflated {
			t.Fatalf("%s, offered %v: Sec-WebSocket-Extensions %q", spec.codec, spec.deflated, got)
		}
		c.send(t, proto.Command{Op: proto.OpSubscribe, ID: ptr[int64](1), Channels: []string{ch}})
		c.expect(t, proto.TypeSubscribed)
		clients = append(clients, &client{c: c, deflated: spec.deflated, k: &chainChecker{kind: proto.KindBook, book: booktest.New()}})
	}
	for _, x := range clients {
		x.c.send(t, proto.Command{Op: proto.OpPing, ID: ptr[int64](7)}) // compressed from a compressing client
		if w := x.c.expect(t, proto.TypePong); *w.ID != 7 {
			t.Fatalf("pong %s", w.raw)
		}
	}
	bch := proto.Channel{Kind: proto.KindBook, Symbol: "BTC-USD"}
	bf := booktest.NewFeed("BTC-USD", 3)
	e.publishMessage(t, bch, bf.Snapshot(1))
	for _, x := range clients {
		x.k.take(t, x.c.expect(t, proto.TypeSnapshot))
	}
	const n = 30
	zBefore := e.srv.codecs.compressions.Load()
	big := 0 // update frames compressed, over both codecs
	for i := 1; i <= n; i++ {
		m := bf.Update(int64(1 + i))
		big += compressedFrames(t, m)
		e.writersIdle(t) // so the fan-out shares the event's frames with everyone (encoded.prepare)
		e.publishMessage(t, bch, m)
		for _, x := range clients { // each reads it before the next: no folding
			x.k.take(t, x.c.expect(t, proto.TypeUpdate))
		}
	}
	if z := e.srv.codecs.compressions.Load() - zBefore; z != uint64(big) {
		t.Fatalf("%d compressions for %d compressible update frames: want one per event and codec", z, big)
	}
	if big == 0 {
		t.Fatal("no update was large enough to be compressed: the test proves nothing")
	}
	sent := map[string]map[bool]uint64{"json": {}, "msgpack": {}}
	for _, x := range clients {
		if x.k.last != uint64(n+1) || x.k.folded != 0 {
			t.Fatalf("%s, deflated %v: chain at %d (%d folded)", x.c.codec.Name(), x.deflated, x.k.last, x.k.folded)
		}
	}
	e.srv.mu.Lock()
	for c := range e.srv.conns {
		sent[c.codec.Name()][c.variant >= numCodecs] = max(sent[c.codec.Name()][c.variant >= numCodecs], c.bytesSent.Load())
	}
	e.srv.mu.Unlock()
	for name, by := range sent {
		if by[true] == 0 || by[true] >= by[false] {
			t.Fatalf("%s: %d bytes sent compressed, %d plain", name, by[true], by[false])
		}
	}
}

// compressedFrames is in how many codecs the update m becomes is
// compressed: at least deflateMinBytes, and smaller deflated.
func compressedFrames(t *testing.T, m proto.FeedMessage) (n int) {
	t.Helper()
	cs := newCodecSet(nil)
	for ci := range numCodecs {
		f := cs.encode(ci, proto.Update{Type: proto.TypeUpdate, Channel: "book.BTC-USD", Seq: m.Seq, Prev: m.Seq - 1, N: 1, Data: m.Data})
		if f == nil {
			t.Fatal("encoding failed")
		}
		if _, ok := cs.z.frame(f); ok {
			n++
		}
	}
	return n
}

// writersIdle waits until no writer of the node is busy writing: a writer
// that the client has read from may not have marked its write done yet.
func (e *testEnv) writersIdle(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		busy := false
		e.srv.mu.Lock()
		for c := range e.srv.conns {
			busy = busy || c.out.busy.Load()
		}
		e.srv.mu.Unlock()
		if !busy {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("writers still busy after 5s")
		}
		time.Sleep(time.Millisecond)
	}
}

// A compressed message is held to the message limit once inflated: a
// small frame inflating past it closes its connection with 1009, as an
// oversized plain message does, and no other connection notices; corrupt
// compressed data closes with 1007; a compressed frame on a connection
// that did not negotiate compression is a protocol error (1002).
func TestCompressedClientMessages(t *testing.T) {
	e := compressedEnv(t)
	tok := e.token(t, "in", time.Hour, ">")
	bystander := e.connectWith(t, "json", tok, dialOptions{deflate: true})

	bomb := e.connectWith(t, "json", tok, dialOptions{deflate: true})
	huge := bytes.Repeat([]byte(" "), 4*DefaultMaxMessageBytes)
	var z bytes.Buffer
	w, _ := flate.NewWriter(&z, flate.BestCompression)
	_, _ = w.Write(huge)
	_ = w.Close()
	if z.Len() >= DefaultMaxMessageBytes/16 {
		t.Fatalf("the compressed message is %d bytes: not a small frame", z.Len())
	}
	bomb.sendRaw(t, huge) // the client compresses it (dialOptions.deflate)
	if code, reason := bomb.waitClose(t, 5*time.Second); code != 1009 || reason != tooLargeReason {
		t.Fatalf("close %d %q, want 1009 %q", code, reason, tooLargeReason)
	}

	corrupt := e.connectWith(t, "json", tok, dialOptions{deflate: true})
	if _, err := corrupt.ws.NetConn().Write(maskedFrame(true, 0x40|0x1, []byte{0xff, 0xff, 0xff, 0xff})); err != nil {
		t.Fatal(err)
	}
	if code, _ := corrupt.waitClose(t, 5*time.Second); code != 1007 {
		t.Fatalf("close %d, want 1007 for corrupt compressed data", code)
	}

	plain := e.connect(t, "json", tok)
	if _, err := plain.ws.NetConn().Write(maskedFrame(true, 0x40|0x1, z.Bytes())); err != nil {
		t.Fatal(err)
	}
	if code, _ := plain.waitClose(t, 5*time.Second); code != 1002 {
		t.Fatalf("close %d, want 1002 for RSV1 without the extension", code)
	}

	bystander.send(t, proto.Command{Op: proto.OpPing, ID: ptr[int64](9)})
	if w := bystander.expect(t, proto.TypePong); *w.ID != 9 {
		t.Fatalf("pong %s", w.raw)
	}
}

// sampleFrames are frames of the node's common messages, for measuring
// compression: a ticker update, a trade, a book delta of a few levels and
// a book snapshot of 50 levels a side, in each codec.
func sampleFrames(t testing.TB) []struct {
	name  string
	frame []byte
} {
	t.Helper()
	const ts = 1764650000123456789
	levels := func(n int, from float64, step float64) []proto.Level {
		out := make([]proto.Level, n)
		for i := range out {
			out[i] = proto.Level{fmt.Sprintf("%.2f", from+step*float64(i)), fmt.Sprintf("%d.%03d", i%7, (i*379)%1000)}
		}
		return out
	}
	msgs := []struct {
		name string
		v    any
	}{
		{"ticker", proto.Update{Type: proto.TypeUpdate, Channel: "ticker.BTC-USD", Seq: 1234567, Prev: 1234566, N: 1, Data: &proto.Ticker{
			Symbol: "BTC-USD", Bid: "64012.10", BidSize: "1.532", Ask: "64012.20", AskSize: "0.741", Last: "64012.15", Volume: "18234.5521", TS: ts}}},
		{"trade", proto.Update{Type: proto.TypeUpdate, Channel: "trade.BTC-USD", Seq: 1234567, Prev: 1234566, N: 1, Data: &proto.Trade{
			Symbol: "BTC-USD", ID: 987654321, Price: "64012.15", Size: "0.0125", Side: proto.SideBuy, TS: ts}}},
		{"book-delta", proto.Update{Type: proto.TypeUpdate, Channel: "book.BTC-USD", Seq: 1234567, Prev: 1234566, N: 1, Data: &proto.Book{
			Bids: levels(3, 64010.10, -0.1), Asks: levels(2, 64012.20, 0.1), Checksum: 2840931127, TS: ts}}},
		{"book-snapshot", proto.Snapshot{Type: proto.TypeSnapshot, Channel: "book.BTC-USD", Seq: 1234567, Data: &proto.Book{
			Symbol: "BTC-USD", Bids: levels(50, 64010.10, -0.1), Asks: levels(50, 64012.20, 0.1), Checksum: 2840931127, TS: ts}}},
	}
	cs := newCodecSet(nil)
	var out []struct {
		name  string
		frame []byte
	}
	for _, m := range msgs {
		for ci, cd := range cs.c {
			f := cs.encode(ci, m.v)
			if f == nil {
				t.Fatalf("%s %s: encoding failed", m.name, cd.Name())
			}
			out = append(out, struct {
				name  string
				frame []byte
			}{m.name + "/" + cd.Name(), f})
		}
	}
	return out
}

// BenchmarkDeflateFrame compares compressing one shared frame (done once
// per event and codec, whatever the number of recipients) with sending it
// plain (appending it to a writer's batch), and reports the frame's size
// on the wire either way.
func BenchmarkDeflateFrame(b *testing.B) {
	var d deflater
	for _, s := range sampleFrames(b) {
		b.Run(s.name+"/plain", func(b *testing.B) {
			buf := make([]byte, 0, 64<<10)
			b.ReportAllocs()
			for b.Loop() {
				buf = append(buf[:0], s.frame...)
			}
			b.ReportMetric(float64(len(s.frame)), "wire-bytes")
		})
		b.Run(s.name+"/deflate", func(b *testing.B) {
			var f []byte
			b.ReportAllocs()
			for b.Loop() {
				f, _ = d.frame(s.frame)
			}
			b.ReportMetric(float64(len(f)), "wire-bytes")
		})
		// The compressors the node did not take, on the same payload:
		// the standard library's at the node's level, and klauspost's at
		// the default level (docs/benchmarks.md, "Compression").
		payload := s.frame[frameHeaderLen(s.frame[1]):]
		for _, alt := range []struct {
			name string
			w    func(io.Writer) (io.WriteCloser, func(io.Writer), func() error)
		}{
			{"stdlib-level1", func(dst io.Writer) (io.WriteCloser, func(io.Writer), func() error) {
				w, _ := flate.NewWriter(dst, flate.BestSpeed)
				return w, w.Reset, w.Flush
			}},
			{"level6", func(dst io.Writer) (io.WriteCloser, func(io.Writer), func() error) {
				w, _ := kflate.NewWriter(dst, kflate.DefaultCompression)
				return w, w.Reset, w.Flush
			}},
		} {
			b.Run(s.name+"/"+alt.name, func(b *testing.B) {
				var out appendBuffer
				w, reset, flush := alt.w(&out)
				b.ReportAllocs()
				for b.Loop() {
					out.b = out.b[:0]
					reset(&out)
					_, _ = w.Write(payload)
					_ = flush()
				}
				b.ReportMetric(float64(len(out.b)-len(deflateTail)), "payload-bytes")
			})
		}
	}
}
