package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// feedServer is an in-process NATS server that pings its clients every
// 20 ms and drops one that leaves two pings unanswered.
func feedServer(t *testing.T) *natsserver.Server {
	t.Helper()
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: natsserver.RANDOM_PORT, NoSigs: true, NoLog: true,
		PingInterval: 20 * time.Millisecond, MaxPingsOut: 2})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS not ready")
	}
	t.Cleanup(ns.Shutdown)
	return ns
}

// The feed's publisher delivers every message, in order, byte for byte
// (a payload may hold the protocol's line ends), when flushed and not
// before; answers the server's pings; and refuses a subject the protocol
// cannot carry.
func TestFeedConnPublishes(t *testing.T) {
	ns := feedServer(t)
	sub, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	msgs := make(chan *nats.Msg, 1000)
	if _, err := sub.ChanSubscribe("md.>", msgs); err != nil {
		t.Fatal(err)
	}
	if err := sub.Flush(); err != nil {
		t.Fatal(err)
	}
	f, err := dialFeed(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	type sent struct {
		subject string
		payload []byte
	}
	var want []sent
	publish := func(n int) {
		t.Helper()
		for i := range n {
			s := sent{fmt.Sprintf("md.ticker.S%d", i%3), []byte(fmt.Sprintf(`{"seq":%d,"note":"a\r\nb"}`, len(want)))}
			if i%7 == 0 {
				s.payload = nil // an empty message is a message
			}
			if err := f.Publish(s.subject, s.payload); err != nil {
				t.Fatalf("publish %d: %v", len(want), err)
			}
			want = append(want, s)
		}
		if err := f.Flush(); err != nil {
			t.Fatalf("flush: %v", err)
		}
	}
	receive := func() {
		t.Helper()
		for len(want) > 0 {
			select {
			case m := <-msgs:
				if m.Subject != want[0].subject || !bytes.Equal(m.Data, want[0].payload) {
					t.Fatalf("got %s %q, want %s %q", m.Subject, m.Data, want[0].subject, want[0].payload)
				}
				want = want[1:]
			case <-time.After(5 * time.Second):
				t.Fatalf("%d messages never arrived", len(want))
			}
		}
	}
	// Published, not flushed: nothing goes out.
	if err := f.Publish("md.ticker.S9", []byte("held")); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-msgs:
		t.Fatalf("%s %q arrived before the flush", m.Subject, m.Data)
	case <-time.After(100 * time.Millisecond):
	}
	want = append(want, sent{"md.ticker.S9", []byte("held")})
	publish(100)
	receive()
	// Ten of the server's ping intervals: unanswered, it would have
	// dropped the publisher after two.
	time.Sleep(200 * time.Millisecond)
	publish(10)
	receive()

	for _, bad := range []string{"", "md.ticker x", "md.ticker\r\nPUB x 0"} {
		if err := f.Publish(bad, []byte("x")); err == nil {
			t.Errorf("subject %q published", bad)
		}
	}

	// Once the server is gone, publishing fails.
	ns.Shutdown()
	deadline := time.Now().Add(5 * time.Second)
	for f.Publish("md.ticker.S0", []byte("x")) == nil && f.Flush() == nil {
		if time.Now().After(deadline) {
			t.Fatal("publishing to a server that is gone still succeeds")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A peer that is not a NATS server, or one that refuses the handshake,
// is refused, with a clear error.
func TestDialFeedRefusesAnotherProtocol(t *testing.T) {
	for name, tc := range map[string]struct{ says, want string }{
		"HTTP":        {"HTTP/1.1 400 Bad Request\r\n\r\n", "want INFO"},
		"NATS's -ERR": {"INFO {}\r\n-ERR 'Authorization Violation'\r\n", "-ERR"},
	} {
		t.Run(name, func(t *testing.T) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			go func() {
				c, err := l.Accept()
				if err == nil {
					_, _ = c.Write([]byte(tc.says))
					time.Sleep(100 * time.Millisecond) // the client's CONNECT arrives; then the end
					_ = c.Close()
				}
			}()
			_, err = dialFeed("nats://" + l.Addr().String())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("dialFeed: %v, want an error naming %q", err, tc.want)
			}
		})
	}
}

// The run's NATS server is a process of its own, raised above the load
// client where tickbench runs as root, and the feed reaches it.
func TestFeedNATSIsAProcessOfItsOwn(t *testing.T) {
	cfg, err := parseConfig([]string{"--workload", "C", "--connections", "10"}, &strings.Builder{})
	if err != nil {
		t.Fatal(err)
	}
	tgt := &target{}
	defer tgt.close()
	if err := feedNATS(context.Background(), cfg, tgt, t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if !tgt.feedDirect || !strings.HasPrefix(tgt.natsURL, "nats://127.0.0.1:") || tgt.feedPID == 0 {
		t.Fatalf("target %+v: want the feed's NATS URL, written to directly, and its process", tgt)
	}
	// Every thread runs at feedNiceness, or the target says why not.
	if tgt.feedNote != "" {
		t.Logf("not raised here: %s", tgt.feedNote)
	} else {
		tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", tgt.feedPID))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range tasks {
			stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", tgt.feedPID, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			// The fields after the command's closing parenthesis: the nice
			// value is the 17th of them (proc(5)'s 19th field).
			rest := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
			if len(rest) < 17 || rest[16] != strconv.Itoa(feedNiceness) {
				t.Errorf("thread %s of the feed's NATS server runs at nice %v, want %d", e.Name(), rest[16:17], feedNiceness)
			}
		}
	}
	sub, err := nats.Connect(tgt.natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	s, err := sub.SubscribeSync("md.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.Flush(); err != nil {
		t.Fatal(err)
	}
	f, err := dialFeed(tgt.natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Publish("md.ticker.X", []byte("tick")); err != nil {
		t.Fatal(err)
	}
	if err := f.Flush(); err != nil {
		t.Fatal(err)
	}
	if m, err := s.NextMsg(5 * time.Second); err != nil || string(m.Data) != "tick" {
		t.Fatalf("got %v, %v; want the message published", m, err)
	}
}

// The probe sees the feed's messages (those under its prefix), each
// stamped at its arrival, and its figure is the time from data.ts to that
// arrival.
func TestFeedProbe(t *testing.T) {
	ns := feedServer(t)
	f, err := dialFeed(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	go func() {
		// Published 30 ms after its ts: the probe must see at least that.
		time.Sleep(300 * time.Millisecond) // the probe subscribes meanwhile
		for i := 0; ctx.Err() == nil && i < 50; i++ {
			ts := time.Now().Add(-30 * time.Millisecond).UnixNano()
			_ = f.Publish("md.ticker.S1", fmt.Appendf(nil, `{"seq":%d,"type":"update","data":{"ts":%d}}`, i+1, ts))
			_ = f.Publish("md.ticker.S2", []byte(`{"seq":1,"type":"update","data":{}}`))                               // no ts: not counted
			_ = f.Publish("other.ticker.S1", fmt.Appendf(nil, `{"seq":%d,"type":"update","data":{"ts":%d}}`, i+1, ts)) // not the feed's prefix
			_ = f.Flush()
			time.Sleep(5 * time.Millisecond)
		}
	}()
	l, err := probeFeed(ctx, ns.ClientURL(), "md")
	if err != nil {
		t.Fatal(err)
	}
	h := l.merged()
	// The kernel starts stamping shortly after the first socket asks: the
	// first messages may go uncounted.
	if n := h.TotalCount(); n < 25 || n > 50 {
		t.Fatalf("%d messages measured, want most of the 50 with a ts", n)
	}
	if lo, hi := h.Min(), h.Max(); lo < 30_000 || hi > 1_000_000 {
		t.Errorf("hop %d to %d us, want at least the 30 ms the messages were late, under a second", lo, hi)
	}
}
