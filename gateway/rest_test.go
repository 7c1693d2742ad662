package gateway

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tickgate/tickgate/auth"
	"github.com/tickgate/tickgate/codec"
	"github.com/tickgate/tickgate/feed"
	"github.com/tickgate/tickgate/internal/booktest"
	"github.com/tickgate/tickgate/proto"
)

// restFixture is a hub fixture with a token for its verifier.
func restFixture(t *testing.T, tweak ...func(*Config)) (*Server, func(channels ...string) string) {
	t.Helper()
	s := hubFixture(t, append([]func(*Config){func(c *Config) { c.RESTLinger = time.Minute }}, tweak...)...)
	signer, err := auth.NewHMACSigner(make([]byte, 32), "")
	if err != nil {
		t.Fatal(err)
	}
	return s, func(channels ...string) string {
		tok, err := signer.Sign(auth.TokenSpec{Subject: "rest", Channels: channels, TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
}

// get runs one request through the server's handler.
func get(t *testing.T, s *Server, method, path, token string) (int, http.Header, []byte) {
	t.Helper()
	r := httptest.NewRequest(method, path, nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, r)
	body, _ := io.ReadAll(w.Result().Body)
	return w.Code, w.Result().Header, body
}

type restBody struct {
	Channel string   `json:"channel"`
	Seq     uint64   `json:"seq"`
	Data    wireData `json:"data"`
	Error   string   `json:"error"`
	RetryMS int64    `json:"retry_ms"`
}

func decodeREST(t *testing.T, b []byte) restBody {
	t.Helper()
	var out restBody
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return out
}

// Every refusal has its status and code, and is counted.
func TestRESTSnapshotRefusals(t *testing.T) {
	s, token := restFixture(t)
	tok := token("book.*", "trade.*")
	for name, tc := range map[string]struct {
		method, path, token string
		status              int
		code                string
	}{
		"no token":           {"GET", "/v1/snapshot/book.X", "", 401, "missing_token"},
		"bad token":          {"GET", "/v1/snapshot/book.X", "a.b.c", 401, "invalid_token"},
		"not a channel":      {"GET", "/v1/snapshot/book.X/y", tok, 400, "bad_channel"},
		"unknown kind":       {"GET", "/v1/snapshot/books.X", tok, 400, "bad_channel"},
		"bad interval":       {"GET", "/v1/snapshot/candle.2m.X", tok, 400, "bad_channel"},
		"empty":              {"GET", "/v1/snapshot/", tok, 400, "bad_channel"},
		"forbidden":          {"GET", "/v1/snapshot/ticker.X", tok, 403, "forbidden"},
		"bad depth":          {"GET", "/v1/snapshot/book.X?depth=7", tok, 400, "bad_request"},
		"depth not a number": {"GET", "/v1/snapshot/book.X?depth=ten", tok, 400, "bad_request"},
		"depth twice":        {"GET", "/v1/snapshot/book.X?depth=10&depth=25", tok, 400, "bad_request"},
		"recent too many":    {"GET", "/v1/snapshot/trade.X?recent=1001", tok, 400, "bad_request"},
		"trade, no recent":   {"GET", "/v1/snapshot/trade.X", tok, 400, "bad_request"},
		"post":               {"POST", "/v1/snapshot/book.X", tok, 405, "method_not_allowed"},
	} {
		t.Run(name, func(t *testing.T) {
			status, _, body := get(t, s, tc.method, tc.path, tc.token)
			if b := decodeREST(t, body); status != tc.status || b.Error != tc.code {
				t.Fatalf("%d %s, want %d %s", status, body, tc.status, tc.code)
			}
			if n := count(t, s.metrics.restSnapshots.WithLabelValues(tc.code)); n < 1 {
				t.Fatalf("%s not counted", tc.code)
			}
		})
	}
}

// A channel without data answers 404 no_data after 2 s; one whose data
// arrives meanwhile answers with it.
func TestRESTSnapshotWaitsForData(t *testing.T) {
	s, token := restFixture(t)
	tok := token(">")
	start := time.Now()
	status, _, body := get(t, s, "GET", "/v1/snapshot/ticker.QUIET", tok)
	if status != 404 || decodeREST(t, body).Error != "no_data" || time.Since(start) < restWait {
		t.Fatalf("%d %s after %v", status, body, time.Since(start))
	}
	var wg sync.WaitGroup
	wg.Add(1)
	var got restBody
	go func() {
		defer wg.Done()
		status, _, body := get(t, s, "GET", "/v1/snapshot/ticker.X", tok)
		if status != 200 {
			t.Errorf("%d %s", status, body)
		}
		got = decodeREST(t, body)
	}()
	ch := proto.Channel{Kind: proto.KindTicker, Symbol: "X"}
	for s.hub.lookup(ch) == nil {
		time.Sleep(time.Millisecond)
	}
	s.hub.onFeed(ch, &feed.Message{Seq: 7, Data: &proto.Ticker{Symbol: "X", Bid: "1", BidSize: "1", Ask: "2", AskSize: "1", Last: "1", Volume: "1", TS: 1}})
	wg.Wait()
	if got.Channel != "ticker.X" || got.Seq != 7 || got.Data.Bid != "1" {
		t.Fatalf("got %+v", got)
	}
}

// Requests for one channel and options between two feed messages cost one
// encoding: the same bytes, counted as cache hits; the next message
// invalidates them. Options are part of the key; seq serves as since.
func TestRESTSnapshotCache(t *testing.T) {
	s, token := restFixture(t)
	tok := token("book.*")
	f := booktest.NewDeepFeed(3)
	bids, asks := f.Snapshot(40)
	// The first request holds the channel; the data comes while it waits.
	done := make(chan []byte)
	go func() {
		_, _, body := get(t, s, "GET", "/v1/snapshot/book.X?depth=10", tok)
		done <- body
	}()
	for s.hub.lookup(bookX) == nil {
		time.Sleep(time.Millisecond)
	}
	s.hub.onFeed(bookX, deepMessage(1, true, bids, asks))
	first := <-done
	b := decodeREST(t, first)
	if b.Seq != 1 || len(b.Data.Bids) != 10 || len(b.Data.Asks) != 10 || b.Data.Checksum != proto.BookChecksum(bids, asks) {
		t.Fatalf("depth 10: %s", first)
	}
	before := s.codecs.encodes.Load()
	hits := count(t, s.metrics.restCacheHits)
	for range 1000 {
		if status, _, body := get(t, s, "GET", "/v1/snapshot/book.X?depth=10", tok); status != 200 || string(body) != string(first) {
			t.Fatalf("%d %s", status, body)
		}
	}
	if n := count(t, s.metrics.restCacheHits) - hits; n != 1000 {
		t.Fatalf("%v cache hits for 1000 requests", n)
	}
	if n := s.codecs.encodes.Load() - before; n != 0 {
		t.Fatalf("%d frames encoded meanwhile", n)
	}
	_, _, whole := get(t, s, "GET", "/v1/snapshot/book.X", tok)
	if w := decodeREST(t, whole); len(w.Data.Bids) != 40 {
		t.Fatalf("whole book: %d bids", len(w.Data.Bids))
	}
	delta, _ := f.Delta()
	s.hub.onFeed(bookX, deepMessage(2, false, delta, nil))
	_, _, next := get(t, s, "GET", "/v1/snapshot/book.X?depth=10", tok)
	if w := decodeREST(t, next); w.Seq != 2 {
		t.Fatalf("after an update: %s", next)
	}
	// HEAD answers the headers alone.
	if status, h, body := get(t, s, "HEAD", "/v1/snapshot/book.X?depth=10", tok); status != 200 || len(body) != 0 || h.Get("Content-Type") != "application/json" {
		t.Fatalf("HEAD: %d %q %v", status, body, h)
	}
	// The seq is a since: a subscriber resumes from it.
	c := s.bareConn(codec.JSON())
	sub := s.joinFor(t, c, bookX, joinOptions{snapshot: true, since: ptr(uint64(2))})
	if got := queued(c); len(got) != 0 || sub.last != 2 {
		t.Fatalf("resume from the REST seq: %q, last %d", got, sub.last)
	}
}

// Pacing, draining and a node cut off from NATS answer as the handshake
// does: 429 with Retry-After, 503 draining, 503 unavailable with retry_ms.
func TestRESTSnapshotLimits(t *testing.T) {
	s, token := restFixture(t, func(c *Config) { c.HandshakeRate, c.HandshakeBurst = 0.5, 1 })
	tok := token(">")
	if status, _, body := get(t, s, "GET", "/v1/snapshot/book.A?depth=7", tok); status != 400 { // refused before the pacing: takes nothing
		t.Fatalf("depth 7: %d %s", status, body)
	}
	if ok, _ := s.admit.paceREST(); !ok { // an admitted request takes the burst
		t.Fatal("a refused request took the burst")
	}
	status, h, body := get(t, s, "GET", "/v1/snapshot/book.A", tok)
	if status != 429 || decodeREST(t, body).Error != "too_many_connections" || h.Get("Retry-After") == "" {
		t.Fatalf("paced: %d %s %v", status, body, h)
	}
	s.draining.Store(true)
	if status, h, body := get(t, s, "GET", "/v1/snapshot/book.A", tok); status != 503 || decodeREST(t, body).Error != "draining" || h.Get("Retry-After") != "1" {
		t.Fatalf("draining: %d %s", status, body)
	}

	off, token := restFixture(t)
	off.hub.src = refusingSource{}
	status, h, body = get(t, off, "GET", "/v1/snapshot/book.A", token(">"))
	if b := decodeREST(t, body); status != 503 || b.Error != "unavailable" || b.RetryMS <= 0 || h.Get("Retry-After") == "" {
		t.Fatalf("no NATS: %d %s", status, body)
	}
}

// A channel held for REST takes one of the asking subscriber's
// subscriptions until the hold ends: past MaxSubscriptionsPerSubject a
// subscriber cannot make the node hold (and subscribe on NATS to) more
// channels, whatever their names; channels already held cost nothing
// more, and the slots come back when the holds end.
func TestRESTHoldsCountAsSubscriptions(t *testing.T) {
	s, token := restFixture(t, func(c *Config) { c.MaxSubscriptionsPerSubject, c.RESTLinger = 2, 200*time.Millisecond })
	tok := token("ticker.*")
	ticker := func(sym string) proto.Channel { return proto.Channel{Kind: proto.KindTicker, Symbol: sym} }
	var wg sync.WaitGroup
	for _, sym := range []string{"A", "B"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if status, _, body := get(t, s, "GET", "/v1/snapshot/ticker."+sym, tok); status != 200 {
				t.Errorf("ticker.%s: %d %s", sym, status, body)
			}
		}()
		for s.hub.lookup(ticker(sym)) == nil {
			time.Sleep(time.Millisecond)
		}
	}
	status, h, body := get(t, s, "GET", "/v1/snapshot/ticker.C", tok)
	if b := decodeREST(t, body); status != 429 || b.Error != "too_many_connections" || h.Get("Retry-After") == "" {
		t.Fatalf("a third channel: %d %s %v", status, body, h)
	}
	if s.hub.lookup(ticker("C")) != nil {
		t.Fatal("the refused channel is on the node")
	}
	s.hub.onFeed(ticker("A"), tickerMsg(1))
	s.hub.onFeed(ticker("B"), tickerMsg(1))
	wg.Wait()
	if status, _, body := get(t, s, "GET", "/v1/snapshot/ticker.A", tok); status != 200 { // held already: no slot taken
		t.Fatalf("a held channel again: %d %s", status, body)
	}
	if s.admit.reserve("rest") {
		t.Fatal("the holds took no subscription slot")
	}
	// Once the holds end, their slots are the subscriber's again.
	waitFor(t, "holds ended", func() bool { return s.hub.lookup(ticker("A")) == nil && s.hub.lookup(ticker("B")) == nil })
	for range 2 {
		if !s.admit.reserve("rest") {
			t.Fatal("a hold's slot was not given back")
		}
	}
}

// A held channel's slot is the last asker's that can take one: a
// subscriber's slot is not kept taken by others polling the channel after
// its own requests stopped; one at its cap gets its snapshot of a held
// channel, the slot staying where it was, without extending the hold.
func TestRESTHoldChargedToTheLastAsker(t *testing.T) {
	s, _ := restFixture(t, func(c *Config) { c.MaxSubscriptionsPerSubject, c.RESTLinger = 1, 300*time.Millisecond })
	signer, err := auth.NewHMACSigner(make([]byte, 32), "")
	if err != nil {
		t.Fatal(err)
	}
	tok := func(sub string) string {
		v, err := signer.Sign(auth.TokenSpec{Subject: sub, Channels: []string{"ticker.*"}, TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	ch := proto.Channel{Kind: proto.KindTicker, Symbol: "A"}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if status, _, body := get(t, s, "GET", "/v1/snapshot/ticker.A", tok("alice")); status != 200 {
			t.Errorf("alice: %d %s", status, body)
		}
	}()
	for s.hub.lookup(ch) == nil {
		time.Sleep(time.Millisecond)
	}
	s.hub.onFeed(ch, tickerMsg(1))
	<-done
	free := func(sub string) bool { // whether sub has its one slot, given back at once
		if !s.admit.reserve(sub) {
			return false
		}
		s.admit.unreserve(sub, 1)
		return true
	}
	if free("alice") {
		t.Fatal("alice's hold took no slot")
	}
	if status, _, body := get(t, s, "GET", "/v1/snapshot/ticker.A", tok("bob")); status != 200 {
		t.Fatalf("bob: %d %s", status, body)
	}
	if !free("alice") || free("bob") {
		t.Fatalf("after bob's request: alice's slot free %v, bob's %v; want true, false", free("alice"), free("bob"))
	}
	if !s.admit.reserve("carol") { // carol at her cap
		t.Fatal("carol")
	}
	if status, _, body := get(t, s, "GET", "/v1/snapshot/ticker.A", tok("carol")); status != 200 {
		t.Fatalf("carol at her cap, on a held channel: %d %s", status, body)
	}
	if free("bob") {
		t.Fatal("the hold left bob for carol, who had no slot")
	}
	// carol polls on, bob asks no more: carol's requests do not extend the
	// hold, which ends a linger after bob's last; then carol, with no slot
	// to spare, is refused, and bob's slot is free.
	deadline := time.Now().Add(5 * time.Second)
	for {
		status, _, body := get(t, s, "GET", "/v1/snapshot/ticker.A", tok("carol"))
		if status == 429 {
			break
		}
		if status != 200 || time.Now().After(deadline) {
			t.Fatalf("carol polling: %d %s", status, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !free("bob") || !free("alice") {
		t.Fatal("a slot not given back when the hold ended")
	}
}

// Every recent value is a view of its own; a channel keeps at most
// maxCachedViews of them between two feed messages, and the views beyond
// are answered all the same.
func TestRESTViewsCachedWithinBound(t *testing.T) {
	s, token := restFixture(t)
	tok := token("trade.*")
	ch := proto.Channel{Kind: proto.KindTrade, Symbol: "X"}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if status, _, body := get(t, s, "GET", "/v1/snapshot/trade.X?recent=1", tok); status != 200 {
			t.Errorf("%d %s", status, body)
		}
	}()
	for s.hub.lookup(ch) == nil {
		time.Sleep(time.Millisecond)
	}
	for i := 1; i <= 100; i++ {
		s.hub.onFeed(ch, &feed.Message{Seq: uint64(i), Data: &proto.Trade{Symbol: "X", ID: int64(i), Price: "1", Size: "1", Side: "buy", TS: 1}})
	}
	<-done
	for round := range 2 {
		for r := 1; r <= 50; r++ {
			status, _, body := get(t, s, "GET", "/v1/snapshot/trade.X?recent="+strconv.Itoa(r), tok)
			var got struct {
				Seq  uint64 `json:"seq"`
				Data struct {
					Trades []proto.Trade `json:"trades"`
				} `json:"data"`
			}
			if err := json.Unmarshal(body, &got); status != 200 || err != nil || got.Seq != 100 || len(got.Data.Trades) != r || got.Data.Trades[r-1].ID != 100 {
				t.Fatalf("round %d, recent=%d: %d %.200s", round, r, status, body)
			}
		}
		e := s.hub.lookup(ch)
		e.mu.Lock()
		n := len(e.views)
		e.mu.Unlock()
		if n != maxCachedViews {
			t.Fatalf("round %d: %d views cached, want %d", round, n, maxCachedViews)
		}
	}
}

// refusingSource is a node cut off from NATS.
type refusingSource struct{}

func (refusingSource) AcquireAsync(proto.Channel, feed.Handler) (*feed.Pending, error) {
	return nil, feed.ErrUnavailable
}
func (refusingSource) Connected() bool { return false }

// Over TLS with the handshake's credentials: a header token, and the
// access_token parameter when the node allows it (the options in the same
// query still count).
func TestRESTSnapshotEndToEnd(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.AllowQueryToken = true })
	tok := e.token(t, "rest", time.Hour, "candle.>")
	c := e.connect(t, "json", tok)
	c.send(t, proto.Command{Op: proto.OpSubscribe, ID: ptr[int64](1), Channels: []string{"candle.1m.BTC-USD"}})
	c.expect(t, proto.TypeSubscribed)
	for i := range 3 {
		e.publish(t, "candle.1m.BTC-USD", uint64(i+1), proto.FeedUpdate, testBar(i, "150", true))
	}
	e.flush(t)
	c.expect(t, proto.TypeSnapshot)
	c.expect(t, proto.TypeUpdate)
	c.expect(t, proto.TypeUpdate)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: e.cert.ClientConfig()}}
	for name, req := range map[string]func() *http.Request{
		"header": func() *http.Request {
			r, _ := http.NewRequest("GET", "https://"+e.addr+SnapshotPath+"candle.1m.BTC-USD?bars=2", nil)
			r.Header.Set("Authorization", "Bearer "+tok)
			return r
		},
		"query": func() *http.Request {
			r, _ := http.NewRequest("GET", "https://"+e.addr+SnapshotPath+"candle.1m.BTC-USD?bars=2&access_token="+tok, nil)
			return r
		},
	} {
		t.Run(name, func(t *testing.T) {
			resp, err := client.Do(req())
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			var b struct {
				Channel string
				Seq     uint64
				Data    struct{ Bars []proto.Candle }
			}
			if err := json.Unmarshal(body, &b); err != nil || resp.StatusCode != 200 || b.Seq != 3 || len(b.Data.Bars) != 2 || b.Data.Bars[1].Start != testMinute(2) {
				t.Fatalf("%d %s (%v)", resp.StatusCode, body, err)
			}
		})
	}
	if strings.Contains(e.logs.String(), tok) {
		t.Fatal("the token reached the log")
	}
}
