package gateway

import (
	"bufio"
	"io"
	"runtime"
	"sync"

	"github.com/lxzan/gws"
)

// An idle connection keeps no goroutine. Its read loop, once it has read
// a whole frame and the socket has nothing more, hands the socket to the
// node's parker and ends; the parker starts a new read loop when the
// socket becomes readable or the node closes it. A connection that only
// receives market data (which is what most of them do, most of the time)
// so holds neither the read loop's goroutine nor its stack: about 4.4 KB
// of the 12.4 KB an idle plain connection held live (heap and stack), and
// about 6 KiB of its RSS once the collector's headroom is counted
// (docs/benchmarks.md, *Idle memory per connection*, *Fourth round*).
//
// The read loop is gws's (ReadLoop), which returns only when the
// connection ends. A loop ends early with runtime.Goexit, from the frame
// reader's Read (parkingReader), and only at a point where that leaves
// nothing behind: every byte gws took belongs to a frame it has handled
// (the last callback of a frame marks the spot, frameRead), no byte waits
// in the frame reader, in crypto/tls, or in the socket. Up to that Read
// gws's loop holds no state on its stack (a frame's header is the first
// thing it reads), and it runs no deferred call on the way out, so the
// loop started again by ReadLoop carries on from the same place; its
// OnOpen is answered only the first time.

// parkingReader is what a connection's frame reader (the bufio.Reader gws
// reads frames through) reads from: the bytes net/http had buffered, then
// the socket (through tlsReader over TLS). On a parker's socket it ends
// the read loop where the loop would wait for the client's next frame
// (see above).
type parkingReader struct {
	src   io.Reader     // Static: what the frame reader reads.
	early *earlyReader  // Static: src, when there are early bytes; else nil.
	tls   *tlsReader    // Static: src or under early, over TLS; else nil.
	sock  *sockConn     // Static: the socket; nil: never parks.
	br    *bufio.Reader // Static after construction: the frame reader over this.

	// socket is gws's connection, for the read loop the parker starts.
	// Written once after the upgrade, before the first read loop.
	socket *gws.Conn

	// Owned by the read loop (one at a time; the parker hands the reader
	// from one loop to the next with its lock, which orders them):
	taken  uint64 // bytes handed to the frame reader
	frames uint64 // taken less what the frame reader held, when the last whole frame was handled
	opened bool   // OnOpen ran: a loop started again does not open again
	woken  bool   // the parker started this loop for the socket's readiness; cleared by the loop's first Read
}

func newParkingReader(src io.Reader, sock *sockConn) *parkingReader {
	r := &parkingReader{src: src, sock: sock}
	r.early, _ = src.(*earlyReader)
	if r.early != nil {
		src = r.early.r
	}
	r.tls, _ = src.(*tlsReader)
	if sock != nil && (sock.park == nil || r.tls != nil && r.tls.raw == nil) {
		r.sock = nil // no parker, or a TLS reader that cannot wait above crypto/tls
	}
	return r
}

// Read reads for the frame reader. At a frame's end, with nothing to
// read, it parks the socket and ends the read loop instead of waiting.
func (r *parkingReader) Read(p []byte) (n int, err error) {
	// A loop the parker started for the socket's readiness reads at once:
	// epoll reported bytes, the peer's end or an error, and the first read
	// returns without waiting, so looking at the socket again (a system
	// call) would tell nothing.
	woken := r.woken
	r.woken = false
	switch {
	case r.sock == nil || !r.betweenFrames() || len(p) == 0 || r.early != nil && len(r.early.early) > 0:
		n, err = r.src.Read(p)
	case r.tls != nil:
		held := false
		if n, err, held = r.tls.readHeld(p); !held {
			if woken {
				// Read through crypto/tls: tlsReader would look for
				// what it holds and at the socket again. The record
				// goes into an array lent for the wake-up.
				tlsConnBuffers.lend(r.tls.tc, &r.sock.park.bufs)
				n, err = r.tls.tc.Read(p)
			} else {
				r.park()
				n, err = r.src.Read(p) // not parked: tlsReader waits
			}
		}
	default:
		if !woken {
			r.park()
		}
		n, err = r.src.Read(p)
	}
	r.taken += uint64(n)
	return n, err
}

// park parks the socket and ends the read loop, and returns only when it
// could not park it (closing, or the parker stopped). Over TLS, the read
// buffers crypto/tls keeps go first (tlsBuffers): before park, after
// which the next loop may be reading already.
//
// It does not look at the socket first: arming it for readiness (poller.arm)
// reports a socket with bytes waiting at once, and the parker starts the
// next loop. A look (a system call) would spare that loop's start only when
// the client's next frame arrived after the last read, and a read loop ends
// here mostly for one frame it was started for: a pong, every few seconds
// per connection while data flows (docs/benchmarks.md, *What pings cost*,
// twenty-first round).
func (r *parkingReader) park() {
	if r.tls != nil {
		tlsConnBuffers.release(r.tls.tc, &r.sock.park.bufs)
	}
	if r.sock.park.park(r) {
		runtime.Goexit() // the parker starts the next loop
	}
}

// betweenFrames reports whether gws has taken no byte past the last frame
// it handled: its next read is the next frame's first.
func (r *parkingReader) betweenFrames() bool {
	return r.taken-uint64(r.br.Buffered()) == r.frames
}

// frameRead marks the end of a frame gws has handled: called from its
// callbacks (a message, a ping, a pong), which it makes once the frame's
// last byte is read. A fragment of a message has none, so the loop waits
// for the rest as before.
func (r *parkingReader) frameRead() {
	r.frames = r.taken - uint64(r.br.Buffered())
}

// open reports whether this is the connection's first OnOpen.
func (r *parkingReader) open() bool {
	if r.opened {
		return false
	}
	r.opened = true
	return true
}

// parker holds the sockets of connections whose read loop ended between
// frames (parkingReader), and starts a read loop for one when its socket
// becomes readable, when the node closes it, or when the parker stops.
// A spurious start costs a loop that finds nothing and parks again.
type parker struct {
	poll   *poller         // Static: the node's readiness set (park_linux.go).
	resume func(*gws.Conn) // Static: starts a read loop.

	mu      sync.Mutex
	parked  map[int32]*parkingReader // Guarded by mu: by socket descriptor.
	stopped bool                     // Guarded by mu: parks no more.

	starting []*parkingReader // Owned by the poller's goroutine (ready).

	bufs tlsReadBufs // Safe for concurrent use: arrays lent to TLS read buffers for a wake-up.
}

// newParker returns the node's parker, or nil where sockets cannot be
// parked (another system, or no readiness set to be had).
func newParker(resume func(*gws.Conn)) *parker {
	poll, err := newPoller()
	if err != nil || poll == nil {
		return nil
	}
	p := &parker{poll: poll, resume: resume, parked: make(map[int32]*parkingReader)}
	go poll.run(p.ready)
	return p
}

// park puts r's socket in the readiness set and reports true: the read
// loop must end, the next is the parker's to start. False (the loop reads
// on) when the socket is closing, the parker stopped, or the set refused.
func (p *parker) park(r *parkingReader) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped || r.sock.closing {
		return false
	}
	fd := r.sock.fdn // open: Close tells the parker before it closes the socket
	if p.poll.arm(fd, r.sock.armed) != nil {
		return false
	}
	r.sock.armed = true
	p.parked[fd] = r
	return true
}

// ready starts a read loop for each parked socket of fds: the readiness
// set reported them. Called by the poller's goroutine only.
func (p *parker) ready(fds []int32) {
	p.mu.Lock()
	start := p.starting[:0]
	for _, fd := range fds {
		if r := p.parked[fd]; r != nil {
			delete(p.parked, fd)
			r.woken = true
			start = append(start, r)
		}
	}
	p.mu.Unlock()
	for i, r := range start {
		go p.loop(r.socket)
		start[i] = nil
	}
	p.starting = start
}

// closing is s about to close: it parks no more, and a read loop starts
// if it is parked, to find the socket closed and end the connection (a
// closed descriptor leaves the readiness set without a word).
func (p *parker) closing(s *sockConn) {
	p.mu.Lock()
	s.closing = true
	var r *parkingReader
	if r = p.parked[s.fdn]; r != nil && r.sock == s { // a second Close: the number may be another socket's
		delete(p.parked, s.fdn)
	} else {
		r = nil
	}
	p.mu.Unlock()
	if r != nil {
		go p.loop(r.socket)
	}
}

// loop is a read loop the parker starts: resume, on a stack grown first
// (reserveStack). A new goroutine's stack is smaller than a read loop
// needs, so the loop grew it once, deep in the first read (gws's frame
// reader under crypto/tls): about 4 µs per pong in a profile of workload
// A over TLS, where clients answer a ping every 2.5 s and a loop is
// started for each answer.
func (p *parker) loop(socket *gws.Conn) {
	reserveStack()
	p.resume(socket)
}

// stop parks no more and starts a read loop for every parked socket:
// they wait in their loops from now on.
func (p *parker) stop() {
	p.mu.Lock()
	p.stopped = true
	start := make([]*parkingReader, 0, len(p.parked))
	for fd, r := range p.parked {
		delete(p.parked, fd)
		start = append(start, r)
	}
	p.mu.Unlock()
	p.poll.close()
	for _, r := range start {
		go p.loop(r.socket)
	}
}
