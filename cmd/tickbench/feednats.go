package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lxzan/gws"
	"golang.org/x/sys/unix"

	"github.com/tickgate/tickgate/internal/spawn"
)

// The feed's path, kept clear of the load client.
//
// Every update's latency starts at data.ts, stamped just before it is
// published, and the load client on the same CPUs as the feed must not
// add to it: the servers are compared, not the load client's queue. Two
// things did. An embedded NATS server shares the load client's Go
// scheduler, so a message waited behind thousands of client goroutines
// before it was routed to the server under test; and the NATS client
// library writes from a flusher goroutine, which waits the same way
// between the stamp and the socket (at 5,000 connections over TLS, a
// subscriber of its own saw the feed 4.9 ms late at p99 and 30 ms at
// p99.9; docs/benchmarks.md). So the feed's NATS server runs as a
// process of its own (this binary's nats-server subcommand, client port
// only), raised above the load client's priority where tickbench may
// (nice -5, with CAP_SYS_NICE; the report says when it could not), and
// the feed is written to it by the goroutine that stamped it, each
// tick's burst in one write (feedConn), as the library's flushing sends
// a burst.

// feedNiceness is the feed NATS server's nice value: below the load
// client's 0, so the kernel runs it first when both have work.
const feedNiceness = -5

// feedNATS starts the run's NATS server in a process of its own, raises
// it above the load client where tickbench may (CAP_SYS_NICE), and
// records it in t: the feed goes through it to the server under test.
func feedNATS(ctx context.Context, c *config, t *target, dir string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	p, err := spawn.Start(ctx, spawn.Options{
		Bin: self, Args: []string{natsServerCommand, "--ws=false"},
		Ready: natsReady, LogPath: filepath.Join(dir, "feed-nats.log"), StartTimeout: c.startTimeout,
	})
	if err != nil {
		return fmt.Errorf("the feed's NATS server: %w", err)
	}
	t.cleanup = append(t.cleanup, p.Stop)
	f := strings.Fields(p.URL)
	if len(f) != 2 || f[0] != "-" {
		return fmt.Errorf("the feed's NATS server's ready line %q: want - <nats-url>", p.URL)
	}
	t.natsURL, t.feedDirect, t.feedPID = f[1], true, p.PID
	if err := raise(p.PID, feedNiceness); err != nil {
		t.feedNote = fmt.Sprintf("its NATS server runs at the load client's priority (raising it to nice %d: %v), so the load client can delay it", feedNiceness, err)
	}
	return nil
}

// raise sets every thread of process pid to nice value nice. The threads
// the process starts later take the value of the thread that starts
// them; a second pass catches those started during the first.
func raise(pid, nice int) error {
	for range 2 {
		tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		if err != nil {
			return err
		}
		for _, e := range tasks {
			tid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			if err := unix.Setpriority(unix.PRIO_PROCESS, tid, nice); err != nil && !errors.Is(err, unix.ESRCH) {
				return os.NewSyscallError("setpriority", err)
			}
		}
	}
	return nil
}

// feedConn publishes on a NATS server with the client protocol: Publish
// adds a message to what is pending, and Flush writes what is pending in
// one write, from the goroutine that calls it. What the server sends is
// parsed by the nats dialect's session (natsws.go), as the load client's
// and the feed probe's connections parse it; feedConn is its sink. Safe
// for concurrent use.
type feedConn struct {
	conn  net.Conn    // Static after dialFeed.
	sess  natsSession // Owned by dialFeed's goroutine until the handshake's end, then by read's.
	ready bool        // Owned by dialFeed's goroutine: the handshake's PONG came.

	mu      sync.Mutex // Serializes writes: flushes, and PONGs to the server's PINGs.
	pending []byte     // Guarded by mu: PUBs not yet written.
	err     error      // Guarded by mu: the connection's end, from a write or the reader.
}

// feedWriteTimeout bounds one write of the feed.
const feedWriteTimeout = 5 * time.Second

// dialFeed connects to the NATS server at url (nats://host:port) and
// completes the protocol's handshake: the server's INFO, then the
// session's hello (CONNECT and PING, no SUB) and the server's PONG.
func dialFeed(url string) (*feedConn, error) {
	addr := strings.TrimPrefix(url, "nats://")
	conn, err := net.DialTimeout("tcp", addr, feedWriteTimeout)
	if err != nil {
		return nil, fmt.Errorf("feed: %w", err)
	}
	_ = conn.SetDeadline(time.Now().Add(feedWriteTimeout))
	f := &feedConn{conn: conn, sess: natsSession{spec: &clientSpec{}}}
	fail := func(err error) (*feedConn, error) {
		_ = conn.Close()
		return nil, fmt.Errorf("feed: NATS handshake with %s: %w", addr, err)
	}
	buf := make([]byte, 4<<10)
	n, err := io.ReadAtLeast(conn, buf, len("INFO "))
	if err != nil {
		return fail(err)
	}
	if !bytes.HasPrefix(buf[:n], []byte("INFO ")) {
		first, _, _ := bytes.Cut(buf[:n], []byte("\r\n"))
		return fail(fmt.Errorf("first line %q, want INFO", first))
	}
	f.sess.handle(buf[:n], f)
	_, hello, _ := f.sess.hello()
	if _, err := conn.Write(hello); err != nil {
		return fail(err)
	}
	for !f.ready {
		if err := f.failure(); err != nil {
			return fail(err)
		}
		n, err := conn.Read(buf)
		f.sess.handle(buf[:n], f)
		if err != nil {
			return fail(err)
		}
	}
	if err := f.failure(); err != nil {
		return fail(err)
	}
	_ = conn.SetDeadline(time.Time{})
	go f.read(buf)
	return f, nil
}

// read parses what the server sends until the connection ends: the
// session answers its PINGs (reply) and reports an -ERR (refused).
func (f *feedConn) read(buf []byte) {
	for {
		n, err := f.conn.Read(buf)
		f.sess.handle(buf[:n], f)
		if err != nil {
			f.fail(fmt.Errorf("feed: the NATS connection ended: %w", err))
			return
		}
	}
}

// The session's sink: the handshake's PONG, the server's PINGs and -ERRs.
// Nothing is subscribed, so nothing is delivered.

func (f *feedConn) acked()           { f.ready = true }
func (*feedConn) delivered(delivery) {}
func (*feedConn) undecodable()       {}
func (f *feedConn) refused()         { f.fail(errors.New("feed: the NATS server answered with -ERR")) }
func (f *feedConn) reply(_ gws.Opcode, payload []byte) {
	f.mu.Lock()
	_ = f.writeLocked(payload)
	f.mu.Unlock()
}

// fail keeps the connection's first error.
func (f *feedConn) fail(err error) {
	f.mu.Lock()
	if f.err == nil {
		f.err = err
	}
	f.mu.Unlock()
}

// failure is the connection's error, nil while it lasts.
func (f *feedConn) failure() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// writeLocked writes b whole, or keeps the error. Called with mu held.
func (f *feedConn) writeLocked(b []byte) error {
	if f.err != nil {
		return f.err
	}
	_ = f.conn.SetWriteDeadline(time.Now().Add(feedWriteTimeout))
	if _, err := f.conn.Write(b); err != nil {
		f.err = err
	}
	return f.err
}

// Publish adds payload on subject to what the next Flush writes.
func (f *feedConn) Publish(subject string, payload []byte) error {
	if subject == "" || strings.ContainsAny(subject, " \t\r\n") {
		return fmt.Errorf("feed: subject %q", subject)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	b := append(f.pending, "PUB "...)
	b = append(b, subject...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(len(payload)), 10)
	b = append(b, "\r\n"...)
	b = append(b, payload...)
	f.pending = append(b, "\r\n"...)
	return nil
}

// Flush writes what was published since the last Flush.
func (f *feedConn) Flush() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.pending) == 0 {
		return f.err
	}
	err := f.writeLocked(f.pending)
	f.pending = f.pending[:0]
	return err
}

// Close closes the connection.
func (f *feedConn) Close() { _ = f.conn.Close() }
