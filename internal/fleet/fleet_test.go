package fleet

import (
	"context"
	"net"
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	s := Summarize(ds)
	if s.N != 100 || s.P50 != 50*time.Millisecond || s.P99 != 99*time.Millisecond || s.Max != 100*time.Millisecond || s.Min != time.Millisecond {
		t.Fatalf("Summarize = %+v", s)
	}
	if (Summarize(nil) != Durations{}) {
		t.Fatal("Summarize(nil) is not zero")
	}
}

// TestFailoverDialer: the dialer skips a node that refuses and reaches the
// next one, whatever address the client asked for.
func TestFailoverDialer(t *testing.T) {
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	_ = dead.Close()
	live, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	go func() {
		if c, err := live.Accept(); err == nil {
			_ = c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := FailoverDialer([]string{deadAddr, live.Addr().String()})(ctx, "tcp", deadAddr)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.RemoteAddr().String(); got != live.Addr().String() {
		t.Errorf("dialed %s, want %s", got, live.Addr())
	}
	_ = c.Close()
	if _, err := FailoverDialer([]string{deadAddr})(ctx, "tcp", deadAddr); err == nil {
		t.Error("dialing only a dead node succeeded")
	}
}
