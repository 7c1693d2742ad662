package gateway

import (
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tickgate/tickgate/proto"
)

// The writer model: issue 3 asks whether one writer goroutine per
// connection or a small pool of writers serving ready connections is
// better at 10k+ connections. BenchmarkWriterModel drives the real outbox
// of 10,000 connections through both schedulings. Sockets are modelled: a
// healthy one takes a write at once; a stalled one (1%, then 5%) blocks each write
// for stallFor, as a slow reader's socket does until the write deadline.
// Each round pushes two messages to every connection, then waits 5 ms (a
// feed round). Reported for the healthy connections: delivery latency
// from push to written (p50, p99) and the share delivered by the end; and
// the goroutine stack memory each scheduling holds per connection.
//
//	go test -run '^$' -bench WriterModel -benchtime 40x ./gateway

const (
	modelConns    = 10_000
	modelPerRound = 2
	stallFor      = 20 * time.Millisecond
)

// modelConn is one connection of the model: a real outbox, a modelled
// socket, and the push times of what waits in the outbox.
type modelConn struct {
	out       *outbox
	stalled   bool
	scheduled atomic.Bool // pool: in the ready queue

	mu     sync.Mutex
	pushed []int64         // Guarded by mu: push times, oldest first.
	lat    []time.Duration // Guarded by mu: delivery latencies.
}

func newModelConns(stalled int) []*modelConn {
	conns := make([]*modelConn, modelConns)
	for i := range conns {
		conns[i] = &modelConn{out: newOutbox(1<<20, time.Now), stalled: i%(modelConns/stalled) == 0}
	}
	return conns
}

// push queues one message and records when.
func (m *modelConn) push() {
	m.mu.Lock()
	m.pushed = append(m.pushed, time.Now().UnixNano())
	m.mu.Unlock()
	m.out.push([]byte{0})
}

// takeOnce takes what is pending and writes it to the modelled socket.
func (m *modelConn) takeOnce(b *batch) {
	m.out.take(b, time.Time{})
	n := b.len()
	if n == 0 {
		return
	}
	if m.stalled {
		time.Sleep(stallFor)
	}
	now := time.Now().UnixNano()
	m.mu.Lock()
	for _, at := range m.pushed[:n] {
		m.lat = append(m.lat, time.Duration(now-at))
	}
	m.pushed = m.pushed[n:]
	m.mu.Unlock()
	m.out.wrote()
	b.reset()
}

// scheduler starts the writers of one model and returns how a push tells
// them, and how to stop them.
type scheduler func(conns []*modelConn) (notify func(*modelConn), stop func())

func perConnection(conns []*modelConn) (func(*modelConn), func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var b batch
			for {
				select {
				case <-c.out.wake:
					c.takeOnce(&b)
				case <-done:
					return
				}
			}
		}()
	}
	return func(*modelConn) {}, func() { close(done); wg.Wait() } // push signals the outbox itself
}

func pool(workers int) scheduler {
	return func(conns []*modelConn) (func(*modelConn), func()) {
		ready := make(chan *modelConn, len(conns))
		var wg sync.WaitGroup
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var b batch
				for c := range ready {
					c.scheduled.Store(false)
					c.takeOnce(&b)
				}
			}()
		}
		notify := func(c *modelConn) {
			if c.scheduled.CompareAndSwap(false, true) {
				ready <- c
			}
		}
		return notify, func() { close(ready); wg.Wait() }
	}
}

func BenchmarkWriterModel(b *testing.B) {
	models := []struct {
		name  string
		sched scheduler
	}{
		{"per-connection", perConnection},
		{"pool-16", pool(16)},
		{"pool-256", pool(256)},
	}
	for _, stalled := range []int{100, 500} {
		for _, m := range models {
			b.Run(fmt.Sprintf("stalled=%d/%s", stalled, m.name), func(b *testing.B) {
				benchWriterModel(b, m.sched, stalled)
			})
		}
	}
}

func benchWriterModel(b *testing.B, sched scheduler, stalled int) {
	conns := newModelConns(stalled)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	notify, stop := sched(conns)
	time.Sleep(50 * time.Millisecond) // let the goroutines park
	runtime.ReadMemStats(&after)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		for range modelPerRound {
			for _, c := range conns {
				c.push()
				notify(c)
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.StopTimer()
	time.Sleep(200 * time.Millisecond) // the healthy ones finish
	for _, c := range conns {
		c.out.evict(proto.Disconnect{Code: proto.CloseGoingAway, Reason: "model done"}) // stalled ones: stop writing
	}
	stop()
	var lat []time.Duration
	for _, c := range conns {
		if !c.stalled {
			c.mu.Lock()
			lat = append(lat, c.lat...)
			c.mu.Unlock()
		}
	}
	if len(lat) == 0 {
		b.Fatal("nothing delivered")
	}
	slices.Sort(lat)
	ms := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))]) / 1e6 }
	b.ReportMetric(ms(0.5), "p50-ms")
	b.ReportMetric(ms(0.99), "p99-ms")
	b.ReportMetric(float64(len(lat))/float64(b.N*modelPerRound*(modelConns-stalled)), "delivered")
	// Signed: the runtime may free more stacks than the model starts.
	b.ReportMetric(float64(int64(after.StackInuse)-int64(before.StackInuse))/modelConns, "stack-B/conn")
}
