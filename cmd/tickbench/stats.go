package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Latency histogram range, in microseconds: 1 µs to 60 s with three
// significant digits (HdrHistogram: every value is recorded with a relative
// error below 0.1%).
const (
	latencyMinMicros = 1
	latencyMaxMicros = 60_000_000
	latencyDigits    = 3
	latencyShards    = 16
)

// latencies is a sharded HDR histogram of publish-to-receive latency: each
// client records into the shard of its index, so 10k readers do not all
// contend on one lock.
type latencies struct {
	shards [latencyShards]struct {
		mu sync.Mutex
		h  *hdrhistogram.Histogram // Guarded by mu.
	}
}

func newLatencies() *latencies {
	l := &latencies{}
	for i := range l.shards {
		l.shards[i].h = hdrhistogram.New(latencyMinMicros, latencyMaxMicros, latencyDigits)
	}
	return l
}

// record adds one latency, clamped to the histogram's range.
func (l *latencies) record(shard int, d time.Duration) {
	us := min(max(d.Microseconds(), latencyMinMicros), latencyMaxMicros)
	s := &l.shards[shard%latencyShards]
	s.mu.Lock()
	_ = s.h.RecordValue(us)
	s.mu.Unlock()
}

// merged returns a copy holding every shard's values.
func (l *latencies) merged() *hdrhistogram.Histogram {
	out := hdrhistogram.New(latencyMinMicros, latencyMaxMicros, latencyDigits)
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		out.Merge(s.h)
		s.mu.Unlock()
	}
	return out
}

// counters are the run's shared tallies. Every field is atomic.
type counters struct {
	inWindow      atomic.Bool  // set during the measurement window
	delivered     atomic.Int64 // snapshot+update messages healthy clients got in the window
	deliveredAll  atomic.Int64 // the same over the whole run
	gaps          atomic.Int64 // updates whose prev was not the last seq held
	subErrors     atomic.Int64 // error replies to subscribes
	decodeErrors  atomic.Int64 // server messages that did not decode
	open          atomic.Int64 // connections subscribed and not closed
	healthyClosed atomic.Int64 // healthy connections closed by the other side
	evicted       atomic.Int64 // stalled connections seen closed by the gateway
	published     atomic.Int64 // feed messages published
	publishErrors atomic.Int64
}

// procSample is one reading of a process's CPU time and memory.
type procSample struct {
	at      time.Time
	cpu     time.Duration // user + system
	rss     int64         // bytes (VmRSS)
	peakRSS int64         // bytes (VmHWM)
}

// procReader reads /proc/<pid>/{stat,status}.
type procReader struct {
	pid    int           // Static after construction.
	clkTck time.Duration // Static after construction: one clock tick.
}

func newProcReader(pid int) *procReader {
	return &procReader{pid: pid, clkTck: time.Second / time.Duration(clockTicks())}
}

// clockTicks returns the kernel's USER_HZ (the unit of utime and stime)
// from the auxiliary vector (AT_CLKTCK), or 100, its value on every
// mainstream Linux, when that cannot be read.
func clockTicks() int64 {
	const atClkTck = 17
	b, err := os.ReadFile("/proc/self/auxv")
	if err != nil {
		return 100
	}
	for i := 0; i+16 <= len(b); i += 16 {
		k, v := binary.NativeEndian.Uint64(b[i:]), binary.NativeEndian.Uint64(b[i+8:])
		if k == atClkTck && v > 0 && v < 1_000_000 {
			return int64(v)
		}
	}
	return 100
}

// sample reads the process's CPU time and RSS now.
func (p *procReader) sample() (procSample, error) {
	s := procSample{at: time.Now()}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.pid))
	if err != nil {
		return s, err
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// fields are counted after the last ')'. utime and stime are 14 and 15.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return s, fmt.Errorf("/proc/%d/stat: unexpected format", p.pid)
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return s, fmt.Errorf("/proc/%d/stat: too few fields", p.pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return s, fmt.Errorf("/proc/%d/stat: bad utime/stime", p.pid)
	}
	s.cpu = time.Duration(utime+stime) * p.clkTck
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.pid))
	if err != nil {
		return s, err
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch k {
		case "VmRSS":
			s.rss = parseKB(v)
		case "VmHWM":
			s.peakRSS = parseKB(v)
		}
	}
	return s, nil
}

// parseKB parses a /proc/<pid>/status value like "  123456 kB" into bytes.
func parseKB(v string) int64 {
	f := strings.Fields(v)
	if len(f) == 0 {
		return 0
	}
	n, _ := strconv.ParseInt(f[0], 10, 64)
	return n << 10
}

// machineCPU reads the machine's busy and total CPU time from /proc/stat
// (all CPUs together), to tell how much of the machine other processes
// used during the window: a shared machine makes latency noisy.
func machineCPU(clkTck time.Duration) (busy, total time.Duration, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0, fmt.Errorf("/proc/stat: unexpected format")
	}
	var sum, idle int64
	for i, s := range f[1:] {
		if i >= 8 { // guest and guest_nice are already in user and nice
			break
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/stat: %w", err)
		}
		sum += n
		if i == 3 || i == 4 { // idle, iowait
			idle += n
		}
	}
	return time.Duration(sum-idle) * clkTck, time.Duration(sum) * clkTck, nil
}
