package main

// One short run per scenario against a real gateway. The assertions are
// about the tool: that each figure was produced and is sane. They never
// assert the node's behaviour, which the tool exists to measure before
// and after fixes; nor performance, on a busy shared machine.

import (
	"io"
	"strings"
	"testing"

	"github.com/tickgate/tickgate/feed"
	"github.com/tickgate/tickgate/proto"
)

func TestClaims(t *testing.T) {
	var r claimsResult
	runScenario(t, &r, "claims", "--wait", "2s")
	if len(r.Cases) != 7 || r.Channel != "book.SECRET" {
		t.Fatalf("%d cases on %q, want 7 on book.SECRET", len(r.Cases), r.Channel)
	}
	// The control token grants ticker.X only: whatever the node's claims
	// parsing, it must upgrade and refuse book.SECRET.
	ctl := r.Cases[0]
	if ctl.Result.Status != 101 || ctl.Subscribe["error:forbidden"] != 1 || ctl.WelcomeExpIn == nil || *ctl.WelcomeExpIn < 590 || *ctl.WelcomeExpIn > 610 {
		t.Errorf("control case %+v: want HTTP 101, welcome.exp ~ +600 s, error:forbidden", ctl)
	}
	for _, c := range r.Cases {
		switch {
		case c.Result.Status == 101:
			if c.WelcomeExpIn == nil || len(c.Subscribe) != 1 {
				t.Errorf("%s: upgraded, but welcome exp %v, subscribe answers %v: want both", c.Name, c.WelcomeExpIn, c.Subscribe)
			}
		case c.Result.Status >= 400 && c.Result.Status < 500:
			if c.Result.Code == "" {
				t.Errorf("%s: HTTP %d without an error code", c.Name, c.Result.Status)
			}
		default:
			t.Errorf("%s: handshake %+v", c.Name, c.Result)
		}
	}
}

func TestResubscribe(t *testing.T) {
	var r resubscribeResult
	runScenario(t, &r, "resubscribe", "--attackers", "3", "--rate", "5", "--duration", "2s",
		"--baseline", "1s", "--levels", "100", "--settle", "200ms")
	if len(r.Readers) != 2 {
		t.Fatalf("%d readers, want 2", len(r.Readers))
	}
	for _, rd := range r.Readers {
		if rd.Messages == 0 || rd.Baseline.Count+rd.Attack.Count == 0 {
			t.Errorf("reader %s: %d messages, latency samples %d + %d: want some", rd.Channel, rd.Messages, rd.Baseline.Count, rd.Attack.Count)
		}
		if rd.Attack.Count > 0 && (rd.Attack.P50 <= 0 || rd.Attack.Max < rd.Attack.P99 || rd.Attack.P99 < rd.Attack.P50) {
			t.Errorf("reader %s: attack latency %+v not ordered", rd.Channel, rd.Attack)
		}
	}
	a := r.Attackers
	refused := 0
	for _, n := range a.Refused {
		refused += n
	}
	if a.Upgraded+refused != 3 || (a.Upgraded > 0 && a.Subscribes == 0) {
		t.Errorf("attackers: %d upgraded + %d refused, %d subscribes: want 3 in all, subscribes sent", a.Upgraded, refused, a.Subscribes)
	}
	if a.Closed != len(a.ClosedAtS) || a.Closed+a.Stuck > a.Upgraded {
		t.Errorf("attackers: %d closed, %d close times, %d stuck of %d", a.Closed, len(a.ClosedAtS), a.Stuck, a.Upgraded)
	}
	if len(r.Timeline) == 0 || r.AttackUsage.RSSEnd <= 0 || r.BaselineUsage.Seconds <= 0 || r.AttackUsage.CPUCores < 0 {
		t.Errorf("usage not sampled: timeline %d seconds, baseline %+v, attack %+v", len(r.Timeline), r.BaselineUsage, r.AttackUsage)
	}
}

func TestFlood(t *testing.T) {
	for _, kind := range []string{"book", "trade"} {
		t.Run(kind, func(t *testing.T) {
			var r floodResult
			runScenario(t, &r, "nats-flood", "--kind", kind, "--duration", "1s", "--rate", "500", "--levels", "50", "--settle", "5s")
			if r.Published == 0 || r.Node.FeedMessages <= 0 || r.Client.Data == 0 {
				t.Fatalf("published %d, node received %.0f, client got %d: want all > 0", r.Published, r.Node.FeedMessages, r.Client.Data)
			}
			if got := uint64(r.Client.Delivered) + r.Client.Missing; got != r.Published {
				t.Errorf("delivered %d + missing %d = %d, want the %d published", r.Client.Delivered, r.Client.Missing, got, r.Published)
			}
			if r.Node.WarnLines < 0 || r.Node.Usage.RSSEnd <= 0 || r.Client.ByKind["subscribed"] != 1 {
				t.Errorf("node %+v, client by kind %v", r.Node, r.Client.ByKind)
			}
		})
	}
}

func TestTokenCost(t *testing.T) {
	var r tokenCostResult
	runScenario(t, &r, "token-cost", "--connections", "3", "--channels", "30", "--batch", "10")
	refused := 0
	for _, n := range r.Refused {
		refused += n
	}
	if r.Upgraded+refused != 3 || r.Requested != r.Upgraded*30 {
		t.Fatalf("%d upgraded + %d refused, %d requested", r.Upgraded, refused, r.Requested)
	}
	errs := 0
	for _, n := range r.Errors {
		errs += n
	}
	if r.Accepted+errs+r.Unanswered < r.Requested {
		t.Errorf("accepted %d + errors %d + unanswered %d < requested %d", r.Accepted, errs, r.Unanswered, r.Requested)
	}
	if r.Accepted > 0 && (r.NATSSubs <= 0 || r.SubsActive <= 0 || r.ServerSubs == nil) {
		t.Errorf("node subscriptions not read: %+v", r)
	}
}

func TestUsage(t *testing.T) {
	for name, tc := range map[string]struct {
		args []string
		code int
	}{
		"no scenario":    {nil, 2},
		"unknown":        {[]string{"nope"}, 2},
		"help":           {[]string{"-h"}, 0},
		"scenario help":  {[]string{"claims", "-h"}, 0},
		"bad flag value": {[]string{"nats-flood", "--kind", "ticker"}, 2},
		"stray argument": {[]string{"token-cost", "x"}, 2},
		"bad source":     {[]string{"resubscribe", "--attacker-source", "10.0.0.1"}, 2},
	} {
		t.Run(name, func(t *testing.T) {
			if got := run(t.Context(), tc.args, io.Discard, io.Discard); got != tc.code {
				t.Errorf("exit %d, want %d", got, tc.code)
			}
		})
	}
}

func TestParseMetrics(t *testing.T) {
	m, err := parseMetrics(strings.NewReader(`# HELP x y
# TYPE tickgate_evictions_total counter
tickgate_evictions_total{reason="lag_timeout"} 2
tickgate_evictions_total{reason="write timeout, odd"} 3
tickgate_nats_subscriptions 64000
tickgate_nats_subscriptions_other 1
process_start 1.7e+09 1700000000000
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := m.sum("tickgate_evictions_total"); got != 5 {
		t.Errorf("sum = %v, want 5", got)
	}
	if got := m.sum("tickgate_nats_subscriptions"); got != 64000 {
		t.Errorf("sum of an unlabelled series = %v, want 64000 (a longer name is another metric)", got)
	}
	if !m.has("process_start") || m.has("tickgate_feed_dropped_total") {
		t.Errorf("has: %v", m)
	}
	before := metrics{`tickgate_evictions_total{reason="lag_timeout"}`: 1}
	if d := delta(before, m, "tickgate_evictions_total"); len(d) != 2 || d[`reason="lag_timeout"`] != 1 {
		t.Errorf("delta = %v", d)
	}
}

func TestDecodeServerMsg(t *testing.T) {
	for name, tc := range map[string]struct {
		in   string
		want serverMsg
	}{
		"update, quick path": {`{"type":"update","channel":"trade.A","seq":7,"prev":6,"n":1,"data":{"symbol":"A","id":7,"ts":123}}`,
			serverMsg{Type: "update", Channel: "trade.A", Seq: 7, N: 1}},
		"update, other field order": {`{"channel":"trade.A","type":"update","seq":7,"prev":6,"n":1,"data":{"ts":123}}`,
			serverMsg{Type: "update", Channel: "trade.A", Seq: 7, N: 1}},
		"error": {`{"type":"error","id":3,"code":"unavailable","retry_ms":500,"channel":"ticker.B","message":"x"}`,
			serverMsg{Type: "error", Code: "unavailable", Channel: "ticker.B"}},
		"big snapshot, envelope only": {`{"type":"snapshot","channel":"book.A","seq":9,"data":{"bids":[` +
			strings.Repeat(`["1.0","2"],`, 7000) + `["1.0","2"]],"asks":[],"checksum":1,"ts":123}}`,
			serverMsg{Type: "snapshot", Channel: "book.A", Seq: 9}},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := decodeServerMsg([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if got.Type != tc.want.Type || got.Channel != tc.want.Channel || got.Seq != tc.want.Seq || got.N != tc.want.N || got.Code != tc.want.Code {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			if got.Type != "error" && got.Data.TS != 123 {
				t.Errorf("ts %d, want 123", got.Data.TS)
			}
			if got.Type == "update" && (got.Prev == nil || *got.Prev != 6) {
				t.Errorf("prev %v, want 6", got.Prev)
			}
			if got.Type == "error" && (got.RetryMS == nil || *got.RetryMS != 500 || got.kind() != "error:unavailable") {
				t.Errorf("retry_ms %v, kind %q", got.RetryMS, got.kind())
			}
		})
	}
}

// The node's own decoder must read a template's patched seq.
func TestTemplateSeq(t *testing.T) {
	b := newBigBook("T", 20, 1)
	for name, msg := range map[string]proto.FeedMessage{"book.T": b.snapshot(1), "trade.T": tradeMsg("T", 1, 1)} {
		tpl, err := newTemplate(msg)
		if err != nil {
			t.Fatal(err)
		}
		for _, seq := range []uint64{1, 2, 1 << 40} {
			m, err := feed.Decode(channel(name), tpl.with(seq))
			if err != nil || m.Seq != seq {
				t.Errorf("%s with(%d): %+v, %v", name, seq, m, err)
			}
		}
	}
}
