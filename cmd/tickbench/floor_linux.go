package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"golang.org/x/sys/unix"

	"github.com/tickgate/tickgate/internal/proc"
	"github.com/tickgate/tickgate/internal/rawio"
	"github.com/tickgate/tickgate/internal/selfsigned"
)

// floorSock is the writing end of one of the floor's connections:
// written with send(2), as tickgate writes, or through TLS, whose records
// go out the same way (floorRecords).
type floorSock struct {
	plain floorRecords
	tls   *tls.Conn // nil: plain
}

func (s *floorSock) write(b []byte) (err error) {
	if s.tls != nil {
		_, err = s.tls.Write(b)
	} else {
		_, err = s.plain.Write(b)
	}
	return err
}

// floorRecords is a floor connection's socket as a net.Conn (the TLS
// connection's underneath) whose Write is send(2) on its descriptor.
type floorRecords struct {
	*net.TCPConn         // holds fd open; its Write waits for room
	fd           uintptr // the TCPConn's
}

// Write writes b whole. The reader keeps up, so a wait for room (through
// the runtime's poller) is rare.
func (r floorRecords) Write(b []byte) (int, error) {
	n, e := rawio.TryWrite(r.fd, b)
	if e != 0 {
		return n, e
	}
	if n < len(b) {
		m, err := r.TCPConn.Write(b[n:])
		return n + m, err
	}
	return n, nil
}

// floorHandshake bounds a floor connection's TLS handshake.
const floorHandshake = 10 * time.Second

// floorConns are the floor's connections and their readers.
type floorConns struct {
	socks   []*floorSock
	closers []io.Closer
	readers sync.WaitGroup
}

// dialFloor opens n loopback connections (TLS unless plain), each with a
// goroutine that reads and discards what arrives.
func dialFloor(n int, plain bool) (fc *floorConns, err error) {
	var cert *selfsigned.Cert
	if !plain {
		if cert, err = selfsigned.New(time.Hour); err != nil {
			return nil, err
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer l.Close()
	fc = &floorConns{socks: make([]*floorSock, 0, n)}
	defer func() {
		if err != nil {
			fc.close()
		}
	}()
	for range n {
		client, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			return fc, err
		}
		fc.closers = append(fc.closers, client)
		server, err := l.Accept()
		if err != nil {
			return fc, err
		}
		fc.closers = append(fc.closers, server)
		tc := server.(*net.TCPConn)
		fd, err := rawio.Descriptor(tc)
		if err != nil {
			return fc, err
		}
		sock := &floorSock{plain: floorRecords{TCPConn: tc, fd: fd}}
		var r io.Reader = client
		if !plain {
			ccfg := cert.ClientConfig()
			ccfg.ServerName = "localhost"
			cc := tls.Client(client, ccfg)
			sock.tls = tls.Server(sock.plain, cert.ServerConfig())
			// Both ends' handshakes at once, each bounded: one that fails
			// must not leave the other waiting.
			deadline := time.Now().Add(floorHandshake)
			_ = client.SetDeadline(deadline)
			_ = tc.SetDeadline(deadline)
			errc := make(chan error, 1)
			go func() { errc <- cc.Handshake() }()
			err := sock.tls.Handshake()
			if cerr := <-errc; err == nil {
				err = cerr
			}
			if err != nil {
				return fc, fmt.Errorf("TLS handshake: %w", err)
			}
			_ = client.SetDeadline(time.Time{})
			_ = tc.SetDeadline(time.Time{})
			r = cc
		}
		fc.readers.Add(1)
		go func() {
			defer fc.readers.Done()
			buf := make([]byte, 32<<10)
			for {
				if _, err := r.Read(buf); err != nil {
					return
				}
			}
		}()
		fc.socks = append(fc.socks, sock)
	}
	return fc, nil
}

// close closes every connection and waits for the readers.
func (fc *floorConns) close() {
	for _, c := range fc.closers {
		_ = c.Close()
	}
	fc.readers.Wait()
}

// measureFloor runs the floor for cfg's workload (its feed rate already
// multiplied for the sweep): a warm-up, then cfg.duration measured.
func measureFloor(ctx context.Context, cfg *config) (floorRun, error) {
	var r floorRun
	p, err := planFloor(cfg)
	if err != nil {
		return r, err
	}
	fc, err := dialFloor(cfg.conns, cfg.plain)
	if err != nil {
		return r, fmt.Errorf("floor connections: %w", err)
	}
	defer fc.close()
	r.FrameBytes = len(p.frame)
	done := make(chan error, 1)
	go func() { done <- p.write(ctx, fc.socks, cfg.cpus, cfg.duration, &r) }()
	return r, <-done
}

// write runs the plan on an OS thread of its own, pinned to CPUs
// 0..cpus-1 when cpus > 0 (tickbench's other threads are on the rest):
// floorWarmup unmeasured, then window measured into r.
func (p *floorPlan) write(ctx context.Context, socks []*floorSock, cpus int, window time.Duration, r *floorRun) error {
	runtime.LockOSThread() // never unlocked: the thread, pinned, ends with the goroutine
	if cpus > 0 {
		if err := pinThread(cpus); err != nil {
			return fmt.Errorf("pinning the floor's writer: %w", err)
		}
	}
	batch := make([]byte, 0, 64*len(p.frame))
	frames := func(n int) []byte {
		batch = batch[:0]
		for range n {
			batch = append(batch, p.frame...)
		}
		return batch
	}
	// sweep: each frame's time from its tick's first write to the end of
	// the write that carried it, in µs, over the window.
	sweep := hdrhistogram.New(latencyMinMicros, latencyMaxMicros, latencyDigits)
	start := time.Now()
	open, end := start.Add(floorWarmup), start.Add(floorWarmup+window)
	var (
		cpu0, sys0 time.Duration
		mach0      proc.MachineTimes
		measuring  bool
	)
	for k := 0; ; k++ {
		at := start.Add(time.Duration(k) * p.period)
		if !measuring && !at.Before(open) {
			var err error
			if cpu0, sys0, err = ownThreadCPU(); err != nil {
				return err
			}
			mach0, _ = proc.MachineCPU()
			measuring, open = true, time.Now()
		}
		if !at.Before(end) {
			break
		}
		if d := time.Until(at); d > 0 {
			time.Sleep(d)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		t0 := time.Now()
		for _, w := range p.ticks[k%len(p.ticks)] {
			if err := socks[w.conn].write(frames(int(w.frames))); err != nil {
				return err
			}
			if measuring {
				r.Messages += int64(w.frames)
				r.Writes++
				_ = sweep.RecordValues(micros(time.Since(t0)), int64(w.frames))
			}
		}
	}
	cpu1, sys1, err := ownThreadCPU()
	if err != nil {
		return err
	}
	mach1, _ := proc.MachineCPU()
	r.WindowSeconds = time.Since(open).Seconds()
	r.CPUSeconds, r.SystemSeconds = (cpu1 - cpu0).Seconds(), (sys1 - sys0).Seconds()
	r.StolenCores = (mach1.Steal - mach0.Steal).Seconds() / r.WindowSeconds
	if sweep.TotalCount() > 0 {
		r.SweepMS = summarize(sweep)
	}
	return nil
}

// pinThread moves the calling OS thread to CPUs 0..cpus-1.
func pinThread(cpus int) error {
	var set unix.CPUSet
	for c := range cpus {
		set.Set(c)
	}
	return unix.SchedSetaffinity(0, &set)
}

// ownThreadCPU is the calling OS thread's CPU time, and the kernel's part.
func ownThreadCPU() (cpu, system time.Duration, err error) {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		return 0, 0, err
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), time.Duration(ru.Stime.Nano()), nil
}
