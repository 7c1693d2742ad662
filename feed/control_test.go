package feed

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tickgate/tickgate/internal/natstest"
)

func TestControlConfigValidate(t *testing.T) {
	tests := map[string]struct {
		cfg    ControlConfig
		prefix string
		ok     bool
	}{
		"defaults":                   {cfg: ControlConfig{}, prefix: "md", ok: true},
		"own subject":                {cfg: ControlConfig{Subject: "ops.revoke"}, prefix: "md", ok: true},
		"prefix itself":              {cfg: ControlConfig{Subject: "md"}, prefix: "md"},
		"under the prefix":           {cfg: ControlConfig{Subject: "md.ctl.revoke"}, prefix: "md"},
		"a feed subject":             {cfg: ControlConfig{Subject: "md.ticker.BTC-USD"}, prefix: "md"},
		"under a dotted prefix":      {cfg: ControlConfig{Subject: "feeds.md.revoke"}, prefix: "feeds.md"},
		"beside a dotted prefix":     {cfg: ControlConfig{Subject: "feeds.revoke"}, prefix: "feeds.md", ok: true},
		"shares the first letters":   {cfg: ControlConfig{Subject: "mdx.revoke"}, prefix: "md", ok: true},
		"the default under tickgate": {cfg: ControlConfig{}, prefix: "tickgate"},
		"wildcard":                   {cfg: ControlConfig{Subject: "ops.*"}, prefix: "md"},
		"full wildcard":              {cfg: ControlConfig{Subject: "ops.>"}, prefix: "md"},
		"empty token":                {cfg: ControlConfig{Subject: "ops..revoke"}, prefix: "md"},
		"space":                      {cfg: ControlConfig{Subject: "ops revoke"}, prefix: "md"},
		"server's":                   {cfg: ControlConfig{Subject: "$KV.x"}, prefix: "md"},
		"bad bucket":                 {cfg: ControlConfig{Bucket: "a.b"}, prefix: "md"},
		"short ttl":                  {cfg: ControlConfig{TTL: time.Second}, prefix: "md"},
		"replicas":                   {cfg: ControlConfig{Replicas: 7}, prefix: "md"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			err := tt.cfg.Validate(tt.prefix)
			if (err == nil) != tt.ok || err != nil && !errors.Is(err, ErrBadConfig) {
				t.Fatalf("Validate = %v, want ok %v", err, tt.ok)
			}
		})
	}
}

func TestRevocationValidate(t *testing.T) {
	ok := Revocation{Sub: "alice", IssuedBefore: 1_800_000_000, At: 1_800_000_000, Node: "gw-1"}
	tests := map[string]struct {
		r  Revocation
		ok bool
	}{
		"ok":             {r: ok, ok: true},
		"no node":        {r: Revocation{Sub: "a", IssuedBefore: 1, At: 1}, ok: true},
		"empty sub":      {r: Revocation{IssuedBefore: 1, At: 1}},
		"long sub":       {r: Revocation{Sub: strings.Repeat("a", 257), IssuedBefore: 1, At: 1}},
		"control in sub": {r: Revocation{Sub: "a\nb", IssuedBefore: 1, At: 1}},
		"not UTF-8":      {r: Revocation{Sub: "\xff", IssuedBefore: 1, At: 1}},
		"no cut-off":     {r: Revocation{Sub: "a", At: 1}},
		"no time":        {r: Revocation{Sub: "a", IssuedBefore: 1}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if err := tt.r.Validate(); (err == nil) != tt.ok {
				t.Fatalf("Validate = %v, want ok %v", err, tt.ok)
			}
		})
	}
	for name, payload := range map[string]string{
		"not JSON":     "revoke alice",
		"wrong type":   `{"sub":"alice","issued_before":"1800000000","at":1}`,
		"missing sub":  `{"issued_before":1800000000,"at":1}`,
		"fraction":     `{"sub":"alice","issued_before":1.5,"at":1}`,
		"negative cut": `{"sub":"alice","issued_before":-5,"at":1}`,
	} {
		if _, err := parseRevocation([]byte(payload)); !errors.Is(err, ErrBadRevocation) {
			t.Errorf("%s: parseRevocation = %v, want ErrBadRevocation", name, err)
		}
	}
	if r, err := parseRevocation([]byte(`{"sub":"alice","issued_before":7,"at":8,"reason":"leak"}`)); err != nil || r.Sub != "alice" || r.IssuedBefore != 7 {
		t.Fatalf("unknown field: %+v, %v", r, err)
	}
}

// TestControlOverJetStream: a revocation published by one node reaches
// another node's subscription, and is kept in the bucket for a node that
// comes later, one entry per sub (the newest); subs of every shape are
// keys.
func TestControlOverJetStream(t *testing.T) {
	srv := natstest.RunJetStream(t, natstest.RandomPort)
	newControl := func() *Control {
		c, err := NewControl(connectSource(t, srv.ClientURL(), Config{}), ControlConfig{Memory: true, TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a, b := newControl(), newControl()
	got := make(chan Revocation, 10)
	unsub, err := b.Subscribe(func(r Revocation) { got <- r })
	if err != nil {
		t.Fatal(err)
	}
	defer unsub()
	if err := b.src.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	ctx := ctxTimeout(t, 10*time.Second)
	if stored, err := a.Stored(ctx); err != nil || len(stored) != 0 {
		t.Fatalf("empty bucket: %v, %v", stored, err)
	}
	odd := "carol/ünïcode with spaces.and.dots"
	revs := []Revocation{
		{Sub: "alice", IssuedBefore: 100, At: 100, Node: "gw-1"},
		{Sub: odd, IssuedBefore: 200, At: 200, Node: "gw-1"},
		{Sub: "alice", IssuedBefore: 300, At: 300, Node: "gw-2"},
	}
	for _, r := range revs {
		if err := a.Publish(ctx, r); err != nil {
			t.Fatal(err)
		}
		if err := a.Store(ctx, r); err != nil {
			t.Fatal(err)
		}
		select {
		case g := <-got:
			if g != r {
				t.Fatalf("received %+v, want %+v", g, r)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("revocation %+v not received", r)
		}
	}
	// A control of a node that starts now reads what the bucket keeps.
	stored, err := newControl().Stored(ctx)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(stored, func(x, y Revocation) int { return strings.Compare(x.Sub, y.Sub) })
	if want := []Revocation{revs[2], revs[1]}; !slices.Equal(stored, want) {
		t.Fatalf("stored %+v, want %+v", stored, want)
	}
	// Garbage on the subject is dropped, not delivered.
	if err := a.src.nc.Publish(a.Subject(), []byte(`{"sub":""}`)); err != nil {
		t.Fatal(err)
	}
	if err := a.Publish(ctx, Revocation{Sub: "dave", IssuedBefore: 1, At: 1}); err != nil {
		t.Fatal(err)
	}
	select {
	case g := <-got:
		if g.Sub != "dave" {
			t.Fatalf("received %+v, want dave's (the invalid one dropped)", g)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("dave's revocation not received")
	}
	if err := a.Publish(ctx, Revocation{Sub: "x"}); !errors.Is(err, ErrBadRevocation) {
		t.Fatalf("Publish of an invalid revocation = %v", err)
	}
}

// TestControlWithoutJetStream: the subject still carries revocations; the
// bucket reports ErrNoStore.
func TestControlWithoutJetStream(t *testing.T) {
	srv := natstest.Run(t, natstest.RandomPort)
	a, err := NewControl(connectSource(t, srv.ClientURL(), Config{}), ControlConfig{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewControl(connectSource(t, srv.ClientURL(), Config{}), ControlConfig{})
	got := make(chan Revocation, 1)
	unsub, err := b.Subscribe(func(r Revocation) { got <- r })
	if err != nil {
		t.Fatal(err)
	}
	defer unsub()
	_ = b.src.nc.Flush()
	ctx := ctxTimeout(t, 10*time.Second)
	r := Revocation{Sub: "alice", IssuedBefore: 5, At: 5}
	if err := a.Publish(ctx, r); err != nil {
		t.Fatal(err)
	}
	if g := <-got; g != r {
		t.Fatalf("received %+v", g)
	}
	if err := a.Store(ctx, r); !errors.Is(err, ErrNoStore) {
		t.Fatalf("Store without JetStream = %v, want ErrNoStore", err)
	}
	if _, err := a.Stored(ctx); !errors.Is(err, ErrNoStore) {
		t.Fatalf("Stored without JetStream = %v, want ErrNoStore", err)
	}
	srv.Shutdown()
	waitUntil(t, "disconnected", func() bool { return !a.src.Connected() })
	if err := a.Publish(ctx, r); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Publish without NATS = %v, want ErrUnavailable", err)
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
