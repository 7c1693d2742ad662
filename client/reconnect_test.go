package client

import (
	"errors"
	"io"
	"testing"
	"time"

	"github.com/tickgate/tickgate/proto"
)

func TestBackoffFullJitter(t *testing.T) {
	b := backoff{min: 100 * time.Millisecond, max: 2 * time.Second, rand: func() float64 { return 0.999999 }}
	var got []time.Duration
	for range 7 {
		got = append(got, b.next().Round(time.Millisecond))
	}
	want := []time.Duration{100, 200, 400, 800, 1600, 2000, 2000}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Fatalf("ceilings %v, want %v ms", got, want)
		}
	}
	b.reset()
	b.rand = func() float64 { return 0 }
	if d := b.next(); d != 0 {
		t.Fatalf("full jitter reaches 0, got %v", d)
	}
}

func TestReconnectDelay(t *testing.T) {
	o := Options{}.withDefaults() // 250 ms .. 30 s, slow consumer 5 s
	half := func() float64 { return 0.5 }
	tests := []struct {
		name     string
		e        ended
		attempt  int // backoff attempts before
		min, max time.Duration
		reset    bool // the backoff starts over
	}{
		{name: "refused: backoff", e: ended{err: io.EOF}, attempt: 3, min: time.Second, max: time.Second},
		{name: "drain without notice: within a second", e: ended{err: &CloseError{Code: proto.CloseGoingAway}, lived: time.Minute}, attempt: 5, min: 500 * time.Millisecond, max: 500 * time.Millisecond, reset: true},
		// A node (or proxy) that keeps closing soon after the welcome, and
		// tokens that expire a moment after they are issued: the backoff
		// goes on (attempt 5: up to 8 s), never a constant sub-second rejoin.
		{name: "drain soon after the welcome, again: the backoff", e: ended{err: &CloseError{Code: proto.CloseGoingAway}, lived: time.Second}, attempt: 5, min: 4 * time.Second, max: 4 * time.Second},
		{name: "token expired soon after the welcome, again: the backoff", e: ended{err: &CloseError{Code: proto.CloseTokenExpired}, lived: time.Second}, attempt: 5, min: 4 * time.Second, max: 4 * time.Second},
		{name: "drain with notice: no more than within_ms", e: ended{err: &CloseError{Code: proto.CloseGoingAway}, withinMS: 200}, min: 100 * time.Millisecond, max: 100 * time.Millisecond, reset: true},
		{name: "token expired: promptly", e: ended{err: &CloseError{Code: proto.CloseTokenExpired}}, min: 125 * time.Millisecond, max: 125 * time.Millisecond},
		{name: "slow consumer: longer", e: ended{err: &CloseError{Code: proto.CloseSlowConsumer}}, attempt: 1, min: 5250 * time.Millisecond, max: 5250 * time.Millisecond},
		{name: "policy: never hot", e: ended{err: &CloseError{Code: proto.ClosePolicy}}, min: 22500 * time.Millisecond, max: 22500 * time.Millisecond},
		{name: "429 Retry-After", e: ended{err: &HandshakeError{StatusCode: 429, RetryAfter: 2 * time.Second}}, min: 2500 * time.Millisecond, max: 2500 * time.Millisecond},
		{name: "429 without Retry-After: at least 1 s", e: ended{err: &HandshakeError{StatusCode: 429}}, min: time.Second, max: time.Second},
		{name: "503 draining", e: ended{err: &HandshakeError{StatusCode: 503, Code: proto.HandshakeDraining, RetryAfter: time.Second}}, min: 1250 * time.Millisecond, max: 1250 * time.Millisecond},
		{name: "401: never hot", e: ended{err: &HandshakeError{StatusCode: 401, Code: proto.HandshakeTokenExpired}}, min: 22500 * time.Millisecond, max: 22500 * time.Millisecond},
		{name: "a lasting connection starts the backoff over", e: ended{err: io.EOF, lived: time.Minute}, attempt: 9, min: 125 * time.Millisecond, max: 125 * time.Millisecond, reset: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := backoff{min: o.BackoffMin, max: o.BackoffMax, attempt: tt.attempt, rand: half}
			d := reconnectDelay(tt.e, &b, &o)
			if d < tt.min || d > tt.max {
				t.Fatalf("delay %v, want %v..%v", d, tt.min, tt.max)
			}
			if tt.reset && b.attempt > 1 {
				t.Fatalf("backoff at attempt %d, want it started over", b.attempt)
			}
		})
	}
}

func TestErrorsMatchSentinels(t *testing.T) {
	tests := []struct {
		err  error
		want error
	}{
		{&ServerError{Code: proto.CodeForbidden, Channel: "book.X"}, ErrForbidden},
		{&ServerError{Code: proto.CodeUnavailable, RetryAfter: time.Second}, ErrUnavailable},
		{&HandshakeError{StatusCode: 401, Code: proto.HandshakeTokenExpired}, ErrTokenExpired},
		{&HandshakeError{StatusCode: 503}, ErrDraining},
		{&HandshakeError{StatusCode: 429, Code: proto.HandshakeTooManyConnections}, ErrTooManyConnections},
		{&CloseError{Code: proto.CloseSlowConsumer}, ErrSlowConsumer},
		{&CloseError{Code: proto.CloseTokenExpired}, ErrTokenExpired},
		{&CloseError{Code: proto.ClosePolicy}, ErrPolicy},
	}
	for _, tt := range tests {
		if !errors.Is(tt.err, tt.want) {
			t.Errorf("%v is not %v", tt.err, tt.want)
		}
		if errors.Is(errors.Join(errors.New("x"), tt.err), tt.want) != true {
			t.Errorf("joined %v is not %v", tt.err, tt.want)
		}
	}
	var se *ServerError
	if !errors.As(errors.Join(&ServerError{Code: proto.CodeUnavailable, RetryAfter: 3 * time.Second}), &se) || se.RetryAfter != 3*time.Second {
		t.Fatal("RetryAfter lost")
	}
}
