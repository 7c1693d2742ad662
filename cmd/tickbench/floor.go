package main

import (
	"errors"
	"time"

	"github.com/tickgate/tickgate/proto"
)

// The floor: the machine's limit for a comparison's workload, measured
// beside the servers in the same run.
//
// A server in a workload writes many loopback sockets, each last written
// milliseconds ago, and its writes wake readers that had gone idle; on
// loopback the kernel also runs the receiving side of every write in the
// writer's context. That is the bulk of every server's CPU, and none of
// it is the server's doing. The floor is a bare writer that pays exactly
// that and nothing else: the workload's connections (loopback TCP, TLS
// when the comparison has it), each drained by a reader of its own in
// tickbench, the same subscriptions (the load client's, from the same
// seed), the feed's pace, and for every feed tick one write per recipient
// connection holding all of that tick's frames for it (the best batching
// a server can do without making a message wait). Its frames are the
// feed's payloads in a WebSocket frame, the least any server sends. No
// NATS, no decoding, no fan-out, no timers: one OS thread, pinned to the
// servers' CPUs. With --compression its frames are still plain: it stays
// below any server that compresses.
//
// The floor's CPU per message is the least a server could take in this
// workload on this machine; a server's CPU per message above it is its
// own work, and the floor's per-core figure over another server's is the
// most any per-core ratio against that server could be.

// floorRun is the floor at one round and feed rate of a comparison.
type floorRun struct {
	Round         int     `json:"round,omitempty"`
	Factor        float64 `json:"factor"`
	Offered       float64 `json:"offered"`
	Error         string  `json:"error,omitempty"`
	Messages      int64   `json:"messages"` // frames written in the window
	Writes        int64   `json:"writes"`   // system calls of those (TLS: records)
	FrameBytes    int     `json:"frame_bytes"`
	WindowSeconds float64 `json:"window_seconds"`
	CPUSeconds    float64 `json:"cpu_seconds"`    // the writing thread's, user and kernel
	SystemSeconds float64 `json:"system_seconds"` // the kernel's part
	StolenCores   float64 `json:"stolen_cores"`   // the machine's steal in the window (report.go)
	// SweepMS is each frame's time from the start of its tick's writes to
	// the end of the write that carried it: on loopback the frame is at
	// the reader's socket by then. A server's latency at the socket is at
	// least about this, plus the feed's hop, which the floor does not make
	// (one thread, one core: the k-th write of a tick waits for the k-1
	// before it, in whatever order).
	SweepMS *latencySummary `json:"sweep_ms,omitempty"`
}

// perCore is messages per CPU-second of the writer; 0 without figures.
func (f *floorRun) perCore() float64 {
	if f.Error != "" || f.CPUSeconds <= 0 {
		return 0
	}
	return float64(f.Messages) / f.CPUSeconds
}

// perDelivery is the writer's CPU per message in microseconds, and the
// kernel's part of it; zeros without figures.
func (f *floorRun) perDelivery() (cpu, system float64) {
	if f.Error != "" || f.Messages <= 0 {
		return 0, 0
	}
	n := float64(f.Messages)
	return f.CPUSeconds / n * 1e6, f.SystemSeconds / n * 1e6
}

// floorWarmup is how long the floor writes before its window opens:
// connections' congestion windows and the caches settle, as a server's
// do during the ramp.
const floorWarmup = time.Second

// floorWrite is one write of a tick: frames frames to connection conn.
type floorWrite struct{ conn, frames int32 }

// floorPlan is the workload's writes, tick by tick: ticks[k % len(ticks)]
// are the writes of the k-th feed tick (the feed publishes the symbols in
// turn, burst at a time, so the pattern repeats).
type floorPlan struct {
	period time.Duration
	ticks  [][]floorWrite
	frame  []byte // one frame: the feed's payload behind a WebSocket header
}

// planFloor works out the writes of cfg's workload at its feed rate: the
// load client's subscriptions (stalled connections left out: a server
// stops writing to them), the feed's order of symbols and its bursts.
func planFloor(cfg *config) (*floorPlan, error) {
	if !(cfg.rate > 0) {
		return nil, errors.New("the workload has no feed")
	}
	b := &bench{cfg: cfg, target: &target{}}
	specs, err := b.specs()
	if err != nil {
		return nil, err
	}
	symbols, err := b.symbols()
	if err != nil {
		return nil, err
	}
	readers := map[string][]int32{} // channel: the connections subscribed to it
	for _, s := range specs {
		if s.stalled {
			continue
		}
		for _, ch := range s.channels {
			readers[ch] = append(readers[ch], int32(s.idx))
		}
	}
	burst := max(cfg.burst, 1)
	feed, err := newTickerFeed(cfg.subjectPrefix, symbols, cfg.rate, burst)
	if err != nil {
		return nil, err
	}
	_, payload := feed.message(time.Now())
	p := &floorPlan{period: feed.period, frame: wsFrame(payload)}
	cycle := len(symbols) / gcd(len(symbols), burst)
	count := make([]int32, cfg.conns)
	for k := range cycle {
		var writes []floorWrite
		for m := range burst {
			sym := symbols[(k*burst+m)%len(symbols)]
			for _, c := range readers[proto.Channel{Kind: proto.KindTicker, Symbol: sym}.String()] {
				if count[c] == 0 {
					writes = append(writes, floorWrite{conn: c})
				}
				count[c]++
			}
		}
		for i := range writes {
			writes[i].frames = count[writes[i].conn]
			count[writes[i].conn] = 0
		}
		p.ticks = append(p.ticks, writes)
	}
	return p, nil
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// wsFrame is payload as a server's unmasked text frame.
func wsFrame(payload []byte) []byte {
	n := len(payload)
	var h []byte
	switch {
	case n < 126:
		h = []byte{0x81, byte(n)}
	case n < 1<<16:
		h = []byte{0x81, 126, byte(n >> 8), byte(n)}
	default:
		h = []byte{0x81, 127, 0, 0, 0, 0, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
	}
	return append(h, payload...)
}
