package gateway

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/tickgate/tickgate/codec"
)

// BenchmarkSweep is the node's connection sweep (sweep.go) over 10,000
// connections: one op is one connection looked at, with nothing due
// (idle) or a heartbeat due (its writer woken). At the default period
// (about once a second) it replaces 10,000 tickers and heartbeat timers.
//
//	go test -run '^$' -bench Sweep ./gateway
func BenchmarkSweep(b *testing.B) {
	s := hubFixture(b)
	conns := make([]*conn, 10_000)
	for i := range conns {
		conns[i] = s.bareConn(codec.JSON())
	}
	for _, due := range []bool{false, true} {
		b.Run(fmt.Sprintf("heartbeat_due=%v", due), func(b *testing.B) {
			now := time.Now().UnixNano()
			if due {
				now += int64(s.cfg.HeartbeatInterval)
			}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				c := conns[i%len(conns)]
				c.sweep(now)
				if due {
					<-c.out.wake
				}
			}
		})
	}
}

// BenchmarkWriteDeadline is what keeping a socket's write deadline costs
// per write, on a loopback TCP socket: set before every write (as the
// writer once did: a runtime timer moved each time) or armed only when
// less than the timeout is left (writeDeadline). The write itself (7 to
// 13 us on loopback here) is left out, as its noise would hide the
// difference.
//
//	go test -run '^$' -bench WriteDeadline ./gateway
func BenchmarkWriteDeadline(b *testing.B) {
	for _, mode := range []string{"every_write", "armed"} {
		b.Run("deadline="+mode, func(b *testing.B) {
			_, server := loopbackPair(b)
			var d writeDeadline
			b.ReportAllocs()
			for b.Loop() {
				now := time.Now()
				var err error
				if mode == "armed" {
					err = d.arm(server, now, 5*time.Second, time.Second)
				} else {
					err = server.SetWriteDeadline(now.Add(5 * time.Second))
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// loopbackPair is a connected pair of loopback TCP sockets, closed at the
// end of the benchmark.
func loopbackPair(b *testing.B) (client, server net.Conn) {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		b.Fatal("accept failed")
	}
	b.Cleanup(func() { _ = client.Close(); _ = server.Close() })
	return client, server
}
