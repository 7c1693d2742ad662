package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/lxzan/gws"

	"github.com/tickgate/tickgate/feed"
)

// feedProbeCommand is the hidden subcommand that measures the feed's own
// hop: `tickbench feed-probe --nats URL --duration D` subscribes to the
// feed's subjects on a NATS server, as a server under test does, reads
// with the kernel's receive timestamps (stamp_linux.go), and prints each
// message's time from its data.ts to its arrival at the probe's socket. Run it in a
// process of its own during a run (its URL is in the run's log: the
// --nats flag of the server under test) to see what of a latency is the
// feed's before any server has the message. Like the clients' latency at
// the socket, it errs late when one read takes several segments.
const feedProbeCommand = "feed-probe"

func runFeedProbe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(feedProbeCommand, flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("nats", "", "the NATS server's URL (nats://host:port)")
	prefix := fs.String("subject-prefix", feed.DefaultSubjectPrefix, "NATS subject prefix of the feed: the probe subscribes to <prefix>.>")
	d := fs.Duration("duration", 10*time.Second, "how long to listen")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *url == "" || *d <= 0 {
		fmt.Fprintf(stderr, "tickbench %s: --nats and a positive --duration are required\n", feedProbeCommand)
		return 2
	}
	ctx, cancel := context.WithTimeout(ctx, *d)
	defer cancel()
	l, err := probeFeed(ctx, *url, *prefix)
	if err != nil {
		// The run may end first (its NATS server goes): what was measured
		// until then stands.
		fmt.Fprintf(stderr, "tickbench %s: ended before --duration: %v\n", feedProbeCommand, err)
	}
	s := summarize(l.merged())
	if s.Count == 0 {
		fmt.Fprintf(stderr, "tickbench %s: no stamped message with a data.ts\n", feedProbeCommand)
		return 1
	}
	fmt.Fprintf(stdout, "feed hop (data.ts to the probe's socket, %d messages): p50 %.3f ms, p90 %.3f ms, p99 %.3f ms, p99.9 %.3f ms, max %.3f ms\n",
		s.Count, s.P50, s.P90, s.P99, s.P999, s.Max)
	return 0
}

// probeFeed subscribes to <prefix>.> at url, as the nats dialect's
// clients do (natsws.go, over TCP instead of WebSocket), and records,
// until ctx ends, each feed message's time from its data.ts to its
// arrival. What was measured stands even when the connection failed.
func probeFeed(ctx context.Context, url, prefix string) (*latencies, error) {
	ps := &probeSink{lat: newLatencies()}
	nc, err := net.DialTimeout("tcp", strings.TrimPrefix(url, "nats://"), 5*time.Second)
	if err != nil {
		return ps.lat, err
	}
	defer nc.Close()
	if ps.sc, err = newStampConn(nc); err != nil {
		return ps.lat, err
	}
	stop := context.AfterFunc(ctx, func() { _ = ps.sc.SetReadDeadline(time.Now()) })
	defer stop()
	sess := natsDialect{prefix: prefix}.session(&clientSpec{channels: []string{">"}})
	_, hello, _ := sess.hello()
	if _, err := ps.sc.Write(hello); err != nil {
		return ps.lat, err
	}
	buf := make([]byte, 64<<10)
	for ps.err == nil {
		n, err := ps.sc.Read(buf)
		sess.handle(buf[:n], ps)
		if err != nil {
			if ctx.Err() != nil {
				return ps.lat, nil
			}
			return ps.lat, err
		}
	}
	return ps.lat, ps.err
}

// probeSink takes the probe's parsed operations (natsSession.handle).
// Owned by probeFeed's goroutine.
type probeSink struct {
	sc  *stampConn
	lat *latencies
	err error // the first refusal or failed reply: the probe ends
}

func (*probeSink) acked() {}

func (ps *probeSink) delivered(d delivery) {
	if ps.sc.at != 0 && d.ts > 0 {
		ps.lat.record(0, time.Duration(ps.sc.at-d.ts))
	}
}

func (ps *probeSink) refused() { ps.setErr(errors.New("the NATS server answered with -ERR")) }

// undecodable: another publisher's message on the feed's subjects, not
// one to measure.
func (*probeSink) undecodable() {}

func (ps *probeSink) reply(_ gws.Opcode, payload []byte) {
	if _, err := ps.sc.Write(payload); err != nil {
		ps.setErr(err)
	}
}

func (ps *probeSink) setErr(err error) {
	if ps.err == nil {
		ps.err = err
	}
}
