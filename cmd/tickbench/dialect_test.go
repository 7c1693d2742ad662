package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lxzan/gws"

	"github.com/tickgate/tickgate/codec"
	"github.com/tickgate/tickgate/feed"
	"github.com/tickgate/tickgate/proto"
)

// recorder is a sink that keeps what a session reported.
type recorder struct {
	acks, refusals, bad int
	got                 []delivery
	replies             []string
}

func (r *recorder) acked()                       { r.acks++ }
func (r *recorder) delivered(d delivery)         { r.got = append(r.got, d) }
func (r *recorder) refused()                     { r.refusals++ }
func (r *recorder) undecodable()                 { r.bad++ }
func (r *recorder) reply(_ gws.Opcode, b []byte) { r.replies = append(r.replies, string(b)) }
func feedPayload(seq uint64, ts int64) string {
	return fmt.Sprintf(`{"seq":%d,"type":"update","data":{"symbol":"SIM0001-USD","bid":"1.5","ts":%d}}`, seq, ts)
}

// TestNATSSessionStream feeds the NATS protocol split at every byte
// boundary: a frame may hold several operations or part of one.
func TestNATSSessionStream(t *testing.T) {
	spec := &clientSpec{channels: []string{"ticker.A", "ticker.B"}}
	p1, p2 := feedPayload(7, 1000), feedPayload(8, 2000)
	stream := "INFO {\"server_id\":\"x\"}\r\n+OK\r\nPONG\r\n" +
		fmt.Sprintf("MSG md.ticker.B 2 %d\r\n%s\r\n", len(p1), p1) +
		"PING\r\n" +
		fmt.Sprintf("MSG md.ticker.A 1 reply.to %d\r\n%s\r\n", len(p2), p2) +
		"-ERR 'Permissions Violation'\r\n"
	for split := 1; split < len(stream); split++ {
		s := natsDialect{prefix: "md"}.session(spec)
		r := &recorder{}
		s.handle([]byte(stream[:split]), r)
		s.handle([]byte(stream[split:]), r)
		want := []delivery{
			{channel: "ticker.B", seq: 7, ts: 1000, update: true},
			{channel: "ticker.A", seq: 8, ts: 2000, update: true},
		}
		if fmt.Sprint(r.got) != fmt.Sprint(want) || r.acks != 1 || r.refusals != 1 || r.bad != 0 ||
			len(r.replies) != 1 || r.replies[0] != "PONG\r\n" {
			t.Fatalf("split at %d: %+v, want deliveries %v, 1 ack, 1 refusal, one PONG", split, r, want)
		}
	}
}

func TestNATSSessionHello(t *testing.T) {
	s := natsDialect{prefix: "md"}.session(&clientSpec{channels: []string{"ticker.A", "ticker.B"}})
	op, b, err := s.hello()
	if err != nil || op != gws.OpcodeBinary {
		t.Fatalf("hello: %v, %v", op, err)
	}
	want := "SUB md.ticker.A 1\r\nSUB md.ticker.B 2\r\nPING\r\n"
	if !strings.HasPrefix(string(b), "CONNECT {") || !strings.HasSuffix(string(b), want) {
		t.Fatalf("hello %q: want CONNECT … %q", b, want)
	}
}

func TestCentrifugoSession(t *testing.T) {
	spec := &clientSpec{channels: []string{"ticker.A", "ticker.B"}, token: "tok"}
	p := feedPayload(3, 99)
	tests := map[string]struct {
		frames              []string
		acks, refusals, bad int
		deliveries, replies int
	}{
		"connect and subscribes in one frame": {
			frames: []string{`{"id":1,"connect":{"client":"c","version":"6","ping":25,"pong":true}}` + "\n" + `{"id":2,"subscribe":{}}` + "\n" + `{"id":3,"subscribe":{}}`},
			acks:   1,
		},
		"pushes batched, and a ping": {
			frames:     []string{`{"push":{"channel":"ticker.A","pub":{"data":` + p + `}}}` + "\n{}\n" + `{"push":{"channel":"ticker.B","pub":{"data":` + p + `,"offset":4}}}`},
			deliveries: 2, replies: 1,
		},
		"error reply": {
			frames:   []string{`{"id":2,"error":{"code":103,"message":"permission denied"}}`},
			refusals: 1,
		},
		"push of another channel": {
			frames: []string{`{"push":{"channel":"ticker.Z","pub":{"data":` + p + `}}}`},
			bad:    1,
		},
		"unsubscribe push is no delivery": {
			frames: []string{`{"push":{"channel":"ticker.A","unsubscribe":{"code":2500}}}`},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s, r := centrifugoDialect{}.session(spec), &recorder{}
			for _, f := range tc.frames {
				s.handle([]byte(f), r)
			}
			if r.acks != tc.acks || r.refusals != tc.refusals || r.bad != tc.bad || len(r.got) != tc.deliveries || len(r.replies) != tc.replies {
				t.Fatalf("got %+v, want %d acks, %d refusals, %d bad, %d deliveries, %d replies", r, tc.acks, tc.refusals, tc.bad, tc.deliveries, tc.replies)
			}
			for _, d := range r.got {
				if d.seq != 3 || d.ts != 99 || !d.update {
					t.Errorf("delivery %+v: want seq 3, ts 99", d)
				}
			}
		})
	}
}

func TestCentrifugoHello(t *testing.T) {
	s := centrifugoDialect{}.session(&clientSpec{channels: []string{"ticker.A"}, token: "tok"})
	_, b, err := s.hello()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":1,"connect":{"token":"tok","name":"tickbench"}}` + "\n" + `{"id":2,"subscribe":{"channel":"ticker.A"}}`
	if string(b) != want {
		t.Fatalf("hello %s, want %s", b, want)
	}
}

// TestCentrifugoToken checks the JWT by hand: HS256 over header.claims.
func TestCentrifugoToken(t *testing.T) {
	tok := centrifugoToken([]byte("secret"), "tickbench-1", time.Unix(1767225600, 0))
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q: want three parts", tok)
	}
	m := hmac.New(sha256.New, []byte("secret"))
	m.Write([]byte(parts[0] + "." + parts[1]))
	if base64.RawURLEncoding.EncodeToString(m.Sum(nil)) != parts[2] {
		t.Fatal("signature does not verify")
	}
	raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil || claims["sub"] != "tickbench-1" || claims["exp"] != float64(1767225600) || len(claims) != 2 {
		t.Fatalf("claims %s (%v): want sub and exp only", raw, err)
	}
}

// TestTickerFeedPayload: the feed's bytes are a ticker update the gateway
// decodes, of the size the comparison states, with increasing seq.
func TestTickerFeedPayload(t *testing.T) {
	f, err := newTickerFeed("md", []string{"SIM0001-USD", "SIM0002-USD"}, 100, 1)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1767225600, 123)
	for i, want := range []struct {
		subject string
		seq     uint64
	}{{"md.ticker.SIM0001-USD", 1}, {"md.ticker.SIM0002-USD", 1}, {"md.ticker.SIM0001-USD", 2}} {
		subject, payload := f.message(now)
		ch, err := proto.ParseChannel(strings.TrimPrefix(subject, "md."))
		if err != nil {
			t.Fatalf("message %d: subject %s: %v", i, subject, err)
		}
		m, err := feed.Decode(ch, payload)
		if err != nil || subject != want.subject || m.Seq != want.seq || m.Snapshot || m.Ticker() == nil || m.Ticker().TS != now.UnixNano() || m.Ticker().Bid == "" {
			t.Fatalf("message %d: %s %s: %+v, %v", i, subject, payload, m, err)
		}
		if n := len(payload); n < 140 || n > 200 {
			t.Errorf("payload of %d bytes, want about 150", n)
		}
	}
}

// The feed flushes after each tick's burst, and only then: a burst
// reaches NATS together.
func TestTickerFeedFlushesEachBurst(t *testing.T) {
	f, err := newTickerFeed("md", []string{"A-USD", "B-USD", "C-USD"}, 500, 5) // a burst of 5 every 10 ms
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var events []string
	publish := func(string, []byte) error { events = append(events, "p"); return nil }
	flush := func() error {
		events = append(events, "f")
		if strings.Count(strings.Join(events, ""), "f") == 4 {
			cancel()
		}
		return nil
	}
	if err := f.run(ctx, publish, flush); !errors.Is(err, context.Canceled) {
		t.Fatalf("run: %v, want the context's end", err)
	}
	if got := strings.Join(events, ""); got != strings.Repeat("pppppf", 4) {
		t.Fatalf("publishes and flushes %s, want four bursts of five, each flushed", got)
	}
}

func TestParseWorkload(t *testing.T) {
	tests := map[string]struct {
		args               []string
		conns, subs, burst int
		rate, stall        float64
		servers            string
		plain              bool
		sweep, rounds      int
		wantErr            bool
	}{
		"C-burst":            {args: []string{"--workload", "C-burst"}, conns: 200, subs: 50, burst: 20, rate: 2000, servers: "tickgate,nats,centrifugo", plain: true, sweep: 1},
		"A scaled, over TLS": {args: []string{"--workload", "A", "--connections", "2000", "--tls", "--servers", "nats,tickgate", "--sweep", "0.5,1,2"}, conns: 2000, subs: 5, burst: 1, rate: 200, servers: "nats,tickgate", sweep: 3},
		"stalled":            {args: []string{"--workload", "stalled"}, conns: 10000, subs: 5, burst: 1, rate: 200, stall: 0.01, servers: "tickgate,nats,centrifugo", plain: true, sweep: 1},
		"idle has no feed":   {args: []string{"--workload", "idle"}, conns: 10000, subs: 10, burst: 1, servers: "tickgate,nats,centrifugo", plain: true, sweep: 1},
		"C evenly spaced":    {args: []string{"--workload", "C"}, conns: 200, subs: 50, burst: 1, rate: 2000, servers: "tickgate,nats,centrifugo", plain: true, sweep: 1},
		"C in bursts of 5":   {args: []string{"--workload", "C", "--burst", "5"}, conns: 200, subs: 50, burst: 5, rate: 2000, servers: "tickgate,nats,centrifugo", plain: true, sweep: 1},
		"C-burst spaced":     {args: []string{"--workload", "C-burst", "--burst", "1"}, conns: 200, subs: 50, burst: 1, rate: 2000, servers: "tickgate,nats,centrifugo", plain: true, sweep: 1},
		"negative burst":     {args: []string{"--workload", "C", "--burst", "-1"}, wantErr: true},
		"unknown workload":   {args: []string{"--workload", "Z"}, wantErr: true},
		"unknown server":     {args: []string{"--workload", "A", "--servers", "tickgate,redis"}, wantErr: true},
		"with --url":         {args: []string{"--workload", "A", "--url", "ws://127.0.0.1:1/"}, wantErr: true},
		"sweep without one":  {args: []string{"--sweep", "1,2", "--spawn"}, wantErr: true},
		"bad sweep":          {args: []string{"--workload", "A", "--sweep", "1,-2"}, wantErr: true},
		"rounds":             {args: []string{"--workload", "C", "--rounds", "5"}, conns: 200, subs: 50, burst: 1, rate: 2000, servers: "tickgate,nats,centrifugo", plain: true, sweep: 1, rounds: 5},
		"rounds without one": {args: []string{"--rounds", "3", "--spawn"}, wantErr: true},
		"no rounds":          {args: []string{"--workload", "C", "--rounds", "0"}, wantErr: true},
		"rounds and a sweep": {args: []string{"--workload", "C", "--rounds", "2", "--sweep", "1,2"}, wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c, err := parseConfig(tc.args, &strings.Builder{})
			if tc.wantErr {
				if err == nil {
					t.Fatalf("no error, want one")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.conns != tc.conns || c.channelsPerConn != tc.subs || c.burst != tc.burst || c.rate != tc.rate ||
				c.stallFraction != tc.stall || strings.Join(c.servers, ",") != tc.servers || c.plain != tc.plain ||
				len(c.sweep) != tc.sweep || c.rounds != max(tc.rounds, 1) || c.msgpackFraction != 0 || len(c.kinds) != 1 || c.kinds[0] != proto.KindTicker {
				t.Fatalf("config %+v", c)
			}
		})
	}
}

func TestNiceCeil(t *testing.T) {
	for in, want := range map[float64]float64{0: 1, 0.3: 0.5, 1: 1, 1.2: 2, 3: 5, 7: 10, 180_000: 200_000, 640_000: 1_000_000} {
		if got := niceCeil(in); got != want {
			t.Errorf("niceCeil(%v) = %v, want %v", in, got, want)
		}
	}
}

func TestTickgateSession(t *testing.T) {
	spec := &clientSpec{channels: []string{"ticker.A"}, codec: codec.JSON()}
	tests := map[string]struct {
		msg       string
		want      []delivery
		acks, bad int
	}{
		"snapshot": {
			msg:  `{"type":"snapshot","channel":"ticker.A","seq":5,"data":{"symbol":"A","ts":77}}`,
			want: []delivery{{channel: "ticker.A", seq: 5, ts: 77, chained: true}},
		},
		"update": {
			msg:  `{"type":"update","channel":"ticker.A","seq":6,"prev":5,"n":1,"data":{"symbol":"A","ts":78}}`,
			want: []delivery{{channel: "ticker.A", seq: 6, prev: 5, ts: 78, chained: true, update: true}},
		},
		"update without prev": {
			msg:  `{"type":"update","channel":"ticker.A","seq":6,"data":{"ts":78}}`,
			want: []delivery{{channel: "ticker.A", seq: 6, prev: ^uint64(0), ts: 78, chained: true, update: true}},
		},
		"another channel": {msg: `{"type":"update","channel":"ticker.B","seq":6,"prev":5,"data":{"ts":78}}`, bad: 1},
		"subscribed ack":  {msg: `{"type":"subscribed","id":1,"channels":["ticker.A"]}`, acks: 1},
		"heartbeat":       {msg: `{"type":"heartbeat","ts":12}`},
		"not json at all": {msg: `{"type":`, bad: 1},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := &recorder{}
			tickgateDialect{}.session(spec).handle([]byte(tc.msg), r)
			if fmt.Sprint(r.got) != fmt.Sprint(tc.want) || r.acks != tc.acks || r.bad != tc.bad {
				t.Fatalf("got %+v, want deliveries %v, %d acks, %d bad", r, tc.want, tc.acks, tc.bad)
			}
		})
	}
}
