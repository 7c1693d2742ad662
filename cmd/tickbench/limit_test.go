package main

import (
	"io"
	"net"
	"runtime"
	"testing"
	"time"
)

// BenchmarkLoopbackFrames measures the machine's limit that every server of
// the comparison meets: writing ~170-byte WebSocket frames (the ticker
// update as a server sends it) to a loopback TCP socket that a reader
// drains, one frame per write (an evenly spaced feed) or 20 frames per
// write (a burst). It reports frames per CPU-second of the writing thread,
// the ceiling of "deliveries per server core" when a server did nothing
// but write; docs/benchmarks.md compares the servers' figures with it.
//
//	go test -run '^$' -bench LoopbackFrames ./cmd/tickbench/
func BenchmarkLoopbackFrames(b *testing.B) {
	payload := make([]byte, 170)
	frame := append([]byte{0x81, byte(len(payload))}, payload...)
	for _, bench := range []struct {
		name  string
		batch int
	}{{"1 frame per write", 1}, {"20 frames per write", 20}} {
		b.Run(bench.name, func(b *testing.B) {
			w, stop := loopbackPair(b)
			defer stop()
			buf := make([]byte, 0, len(frame)*bench.batch)
			for range bench.batch {
				buf = append(buf, frame...)
			}
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			b.ReportAllocs()
			cpu0 := threadCPU(b)
			b.ResetTimer()
			frames := 0
			for frames < b.N {
				if _, err := w.Write(buf); err != nil {
					b.Fatal(err)
				}
				frames += bench.batch
			}
			b.StopTimer()
			if cpu := threadCPU(b) - cpu0; cpu > 0 {
				b.ReportMetric(float64(frames)/cpu.Seconds(), "frames/cpu-s")
			}
		})
	}
}

// loopbackPair returns the writing end of a loopback TCP connection whose
// other end is drained by a goroutine; stop closes both.
func loopbackPair(b *testing.B) (*net.TCPConn, func()) {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.Copy(io.Discard, c)
	}()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	return c.(*net.TCPConn), func() { _ = c.Close(); <-done }
}

// threadCPU is the CPU time of the calling OS thread (it must be locked).
func threadCPU(b *testing.B) time.Duration {
	b.Helper()
	cpu, _, err := ownThreadCPU()
	if err != nil {
		b.Fatal(err)
	}
	return cpu
}
