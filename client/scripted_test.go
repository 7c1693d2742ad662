package client_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lxzan/gws"

	"github.com/tickgate/tickgate/client"
	"github.com/tickgate/tickgate/proto"
)

// script is a WebSocket server that plays faults a real node never
// commits (a broken chain, a wrong checksum), to check what the client
// does about them on the wire. It hands the test every command the client
// sends and sends what the test tells it to.
type script struct {
	gws.BuiltinEventHandler
	t    *testing.T
	cmds chan map[string]any
	conn chan *gws.Conn
}

func (s *script) OnMessage(_ *gws.Conn, m *gws.Message) {
	defer m.Close()
	var cmd map[string]any
	if err := json.Unmarshal(m.Bytes(), &cmd); err != nil {
		s.t.Errorf("script: %v", err)
		return
	}
	s.cmds <- cmd
}

func newScript(t *testing.T) (*script, string) {
	s := &script{t: t, cmds: make(chan map[string]any, 16), conn: make(chan *gws.Conn, 4)}
	up := gws.NewUpgrader(s, &gws.ServerOption{SubProtocols: []string{proto.SubprotocolJSON}})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r)
		if err != nil {
			return
		}
		s.conn <- ws
		ws.ReadLoop()
	}))
	t.Cleanup(srv.Close)
	return s, "ws" + strings.TrimPrefix(srv.URL, "http") + "/v1/ws"
}

// dial connects a client with onEvent to the script at url, which
// welcomes it; the client closes, and ctx (10 s) ends, with the test.
func (s *script) dial(t *testing.T, url string, onEvent func(client.Event)) (ctx context.Context, c *client.Client, ws *gws.Conn) {
	t.Helper()
	connected := make(chan *gws.Conn, 1)
	go func() {
		ws := <-s.conn
		s.send(ws, `{"type":"welcome","v":1,"session":"s","node":"script","codec":"json","heartbeat_ms":15000,"exp":0}`)
		connected <- ws
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	c, err := client.Dial(ctx, url, client.Options{OnEvent: onEvent, TokenSource: func(context.Context) (string, error) { return "t", nil }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return ctx, c, <-connected
}

func (s *script) send(ws *gws.Conn, msgs ...string) {
	for _, m := range msgs {
		if err := ws.WriteString(m); err != nil {
			s.t.Errorf("script: %v", err)
		}
	}
}

// next returns the client's next command.
func (s *script) next() map[string]any {
	select {
	case c := <-s.cmds:
		return c
	case <-time.After(5 * time.Second):
		s.t.Fatal("script: no command from the client")
	}
	return nil
}

func bookMsg(typ string, seq, prev uint64, bids, asks []proto.Level, checksum uint32) string {
	m := map[string]any{"type": typ, "channel": "book.X", "seq": seq,
		"data": map[string]any{"bids": bids, "asks": asks, "checksum": checksum, "ts": 1}}
	if typ == "update" {
		m["prev"], m["n"] = prev, 1
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// On a gap the client re-subscribes that channel with since = the last
// seq it holds, and goes on with the node's replay; on a checksum
// mismatch it re-subscribes without since and waits for the snapshot.
func TestClientResyncsOnTheWire(t *testing.T) {
	s, url := newScript(t)
	rec := newRecorder(t)
	ctx, c, ws := s.dial(t, url, rec.handle)
	done := make(chan error, 1)
	go func() {
		_, err := c.Subscribe(ctx, []string{"book.X"})
		done <- err
	}()
	cmd := s.next()
	if cmd["op"] != "subscribe" || cmd["since"] != nil {
		t.Fatalf("first command %v", cmd)
	}
	id := cmd["id"]
	L := func(ps ...string) []proto.Level {
		out := []proto.Level{}
		for i := 0; i < len(ps); i += 2 {
			out = append(out, proto.Level{ps[i], ps[i+1]})
		}
		return out
	}
	book := client.NewBook()
	sum := func(bids, asks []proto.Level) uint32 { book.Update(bids, asks); return book.Checksum() }
	book.Reset(L("10", "1"), L("11", "1"))
	s.send(ws, `{"type":"subscribed","id":`+jsonOf(id)+`,"channels":["book.X"]}`,
		bookMsg("snapshot", 10, 0, L("10", "1"), L("11", "1"), book.Checksum()),
		bookMsg("update", 11, 10, L("10", "2"), L(), sum(L("10", "2"), L())),
		bookMsg("update", 14, 13, L("9", "1"), L(), 12345)) // 12 and 13 never came
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	cmd = s.next()
	since, _ := cmd["since"].(map[string]any)
	if cmd["op"] != "subscribe" || !slices.Equal(toStrings(cmd["channels"]), []string{"book.X"}) || since["book.X"] != float64(11) {
		t.Fatalf("after the gap the client sent %v", cmd)
	}
	waitFor(t, time.Second, "resyncing", func() bool { st, _ := c.State("book.X"); return st == client.StateResyncing })
	// The node resumes from 11: the replay chains from it.
	s.send(ws, `{"type":"subscribed","id":`+jsonOf(cmd["id"])+`,"channels":["book.X"],"resumed":["book.X"]}`,
		bookMsg("update", 12, 11, L("9", "1"), L(), sum(L("9", "1"), L())),
		bookMsg("update", 13, 12, L(), L("12", "3"), sum(L(), L("12", "3"))),
		bookMsg("update", 14, 13, L("10", "0"), L(), sum(L("10", "0"), L())),
		bookMsg("update", 15, 14, L("8", "1"), L(), book.Checksum())) // a stale checksum
	cmd = s.next()
	if cmd["op"] != "subscribe" || cmd["since"] != nil {
		t.Fatalf("after the mismatch the client sent %v", cmd)
	}
	if _, _, ok := c.Book("book.X"); ok {
		t.Fatal("the client hands over a book it knows to be wrong")
	}
	book.Reset(L("9", "1", "8", "1"), L("11", "1", "12", "3"))
	s.send(ws, `{"type":"subscribed","id":`+jsonOf(cmd["id"])+`,"channels":["book.X"]}`,
		bookMsg("snapshot", 16, 0, L("9", "1", "8", "1"), L("11", "1", "12", "3"), book.Checksum()))
	waitFor(t, 2*time.Second, "live again", func() bool {
		b, seq, ok := c.Book("book.X")
		return ok && seq == 16 && b.Equal(book)
	})
	st := c.Stats()
	if st.Gaps != 2 || st.ChecksumFailures != 1 || st.Resumed != 1 || st.Resyncs != 1 {
		t.Fatalf("stats %+v", st)
	}
	gaps := rec.allGaps()
	if len(gaps) != 2 || gaps[0].Reason != client.GapPrev || gaps[0].From != 12 || gaps[0].To != 13 || !gaps[0].Resync ||
		gaps[1].Reason != client.GapChecksum {
		t.Fatalf("gaps %+v", gaps)
	}
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func toStrings(v any) []string {
	var out []string
	for _, e := range v.([]any) {
		out = append(out, e.(string))
	}
	return out
}

// A book whose snapshot never verifies (a node's or the client's bug) is
// asked for again with a backoff, not in a hot loop: before, one channel
// sent over 20,000 subscribes a second, which a real node answers with
// rate_limited and then 1008, taking every other channel down with it.
func TestBadBookResyncsBackOff(t *testing.T) {
	s, url := newScript(t)
	ctx, c, ws := s.dial(t, url, func(client.Event) {})
	go func() { _, _ = c.Subscribe(ctx, []string{"book.X"}) }()
	levels := []proto.Level{{"10", "1"}}
	n := 0
	end := time.After(time.Second)
	for done := false; !done; {
		select {
		case cmd := <-s.cmds:
			n++ // answered with a snapshot whose checksum is wrong
			s.send(ws, `{"type":"subscribed","id":`+jsonOf(cmd["id"])+`,"channels":["book.X"]}`,
				bookMsg("snapshot", uint64(10+n), 0, levels, levels, 12345))
		case <-end:
			done = true
		}
	}
	if st := c.Stats(); n > 4 || st.ChecksumFailures < 2 {
		t.Fatalf("%d subscribes in one second for one bad book (stats %+v); want the first at once, then a backoff", n, st)
	}
}
