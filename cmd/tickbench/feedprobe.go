package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// feedProbeCommand is the hidden subcommand that measures the feed's own
// hop: `tickbench feed-probe --nats URL --duration D` subscribes to every
// subject of a NATS server, as a server under test does, reads with the
// kernel's receive timestamps (stamp_linux.go), and prints each message's
// time from its data.ts to its arrival at the probe's socket. Run it in a
// process of its own during a run (its URL is in the run's log: the
// --nats flag of the server under test) to see what of a latency is the
// feed's before any server has the message. Like the clients' latency at
// the socket, it errs late when one read takes several segments.
const feedProbeCommand = "feed-probe"

func runFeedProbe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(feedProbeCommand, flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("nats", "", "the NATS server's URL (nats://host:port)")
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
	h, err := probeFeed(ctx, *url)
	if err != nil {
		// The run may end first (its NATS server goes): what was measured
		// until then stands.
		fmt.Fprintf(stderr, "tickbench %s: ended before --duration: %v\n", feedProbeCommand, err)
	}
	if h.TotalCount() == 0 {
		fmt.Fprintf(stderr, "tickbench %s: no stamped message with a data.ts\n", feedProbeCommand)
		return 1
	}
	s := summarize(h)
	fmt.Fprintf(stdout, "feed hop (data.ts to the probe's socket, %d messages): p50 %.3f ms, p90 %.3f ms, p99 %.3f ms, p99.9 %.3f ms, max %.3f ms\n",
		s.Count, s.P50, s.P90, s.P99, s.P999, s.Max)
	return 0
}

// probeFeed subscribes to every subject at url and records, until ctx
// ends, each message's time from its data.ts to its arrival, in µs. The
// histogram holds what was measured even when the connection failed.
func probeFeed(ctx context.Context, url string) (*hdrhistogram.Histogram, error) {
	h := hdrhistogram.New(latencyMinMicros, latencyMaxMicros, latencyDigits)
	nc, err := net.DialTimeout("tcp", strings.TrimPrefix(url, "nats://"), 5*time.Second)
	if err != nil {
		return h, err
	}
	defer nc.Close()
	sc, err := newStampConn(nc)
	if err != nil {
		return h, err
	}
	stop := context.AfterFunc(ctx, func() { _ = sc.SetReadDeadline(time.Now()) })
	defer stop()
	if _, err := sc.Write([]byte("CONNECT {\"verbose\":false,\"pedantic\":false,\"name\":\"tickbench feed probe\",\"protocol\":1}\r\nSUB > 1\r\n")); err != nil {
		return h, err
	}
	br := bufio.NewReaderSize(sc, 64<<10)
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			if ctx.Err() != nil {
				return h, nil
			}
			return h, err
		}
		switch {
		case bytes.HasPrefix(line, []byte("PING")):
			if _, err := sc.Write([]byte("PONG\r\n")); err != nil {
				return h, err
			}
		case bytes.HasPrefix(line, []byte("-ERR")):
			return h, errors.New(strings.TrimSpace(string(line)))
		case bytes.HasPrefix(line, []byte("MSG ")):
			f := bytes.Fields(line)
			n, err := strconv.Atoi(string(f[len(f)-1]))
			if err != nil || n < 0 {
				return h, fmt.Errorf("bad MSG line %q", line)
			}
			payload := make([]byte, n+2)
			if _, err := io.ReadFull(br, payload); err != nil {
				if ctx.Err() != nil {
					return h, nil
				}
				return h, err
			}
			if ts, ok := jsonInt(payload[:n], `"ts":`); ok && ts > 0 && sc.at != 0 {
				us := min(max((sc.at-ts)/1000, latencyMinMicros), latencyMaxMicros)
				_ = h.RecordValue(us)
			}
		}
	}
}
