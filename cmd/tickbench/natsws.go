package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/lxzan/gws"
	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/tickgate/tickgate/internal/wsconn"
)

// natsDialect is the NATS client protocol over nats-server's WebSocket
// listener, as nats.ws speaks it: the WebSocket carries the plain NATS
// text protocol as one byte stream (a frame may hold several operations,
// or part of one). The client sends CONNECT, one SUB per channel's subject
// and a PING; the PONG says every SUB was processed (the server handles a
// connection's operations in order). Deliveries are MSG operations whose
// payload is the feed message itself; the server's PINGs get a PONG.
type natsDialect struct{ prefix string }

func (natsDialect) name() string { return "nats" }

func (d natsDialect) session(s *clientSpec) session { return &natsSession{spec: s, prefix: d.prefix} }

// natsSession is one connection's parser state. Owned by its read loop.
type natsSession struct {
	spec   *clientSpec
	prefix string
	buf    []byte // bytes of an operation not complete yet
	acked  bool
}

func (*natsSession) header() http.Header { return nil }
func (*natsSession) accept(string) error { return nil }

const natsConnect = `CONNECT {"verbose":false,"pedantic":false,"protocol":1,"name":"tickbench","lang":"go","version":"0","headers":false,"no_responders":false}` + "\r\n"

func (n *natsSession) hello() (gws.Opcode, []byte, error) {
	b := []byte(natsConnect)
	for i, ch := range n.spec.channels {
		b = fmt.Appendf(b, "SUB %s.%s %d\r\n", n.prefix, ch, i+1)
	}
	return gws.OpcodeBinary, append(b, "PING\r\n"...), nil
}

func (*natsSession) probe() (byte, []byte, error) {
	return wsconn.OpBinary, []byte("PING\r\n"), nil
}

// handle parses every complete operation in the stream so far.
func (n *natsSession) handle(data []byte, to sink) {
	n.buf = append(n.buf, data...)
	b := n.buf
	for {
		eol := bytes.Index(b, []byte("\r\n"))
		if eol < 0 {
			break
		}
		line := b[:eol]
		switch {
		case bytes.HasPrefix(line, []byte("MSG ")):
			// MSG <subject> <sid> [reply-to] <size>
			f := bytes.Fields(line[4:])
			if len(f) < 3 {
				to.undecodable()
				n.buf = n.buf[:0]
				return
			}
			size, err1 := strconv.Atoi(string(f[len(f)-1]))
			sid, err2 := strconv.Atoi(string(f[1]))
			if err1 != nil || err2 != nil || sid < 1 || sid > len(n.spec.channels) {
				to.undecodable()
				n.buf = n.buf[:0]
				return
			}
			end := eol + 2 + size + 2
			if len(b) < end {
				n.buf = append(n.buf[:0], b...) // wait for the rest of the payload
				return
			}
			deliverFeed(n.spec.channels[sid-1], b[eol+2:eol+2+size], to)
			b = b[end:]
			continue
		case bytes.Equal(line, []byte("PING")):
			to.reply(gws.OpcodeBinary, []byte("PONG\r\n"))
		case bytes.Equal(line, []byte("PONG")):
			if !n.acked {
				n.acked = true
				to.acked()
			}
		case bytes.HasPrefix(line, []byte("-ERR")):
			to.refused()
		}
		b = b[eol+2:]
	}
	n.buf = append(n.buf[:0], b...)
}

// deliverFeed reports one feed message (a JSON payload of the feed
// contract) that arrived on channel ch.
func deliverFeed(ch string, payload []byte, to sink) {
	seq, ok1 := jsonInt(payload, `"seq":`)
	ts, ok2 := jsonInt(payload, `"ts":`)
	if !ok1 || !ok2 {
		to.undecodable()
		return
	}
	to.delivered(delivery{channel: ch, seq: uint64(seq), ts: ts, update: true})
}

// jsonInt reads the integer after the first occurrence of key in a JSON
// text of known shape, without decoding the rest: the load client must
// cost the same little for every server.
func jsonInt(b []byte, key string) (int64, bool) {
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return 0, false
	}
	b = b[i+len(key):]
	j := 0
	for j < len(b) && b[j] >= '0' && b[j] <= '9' {
		j++
	}
	v, err := strconv.ParseInt(string(b[:j]), 10, 64)
	return v, err == nil
}

// natsServerCommand is the hidden subcommand that runs an embedded
// nats-server with a WebSocket listener as a process of its own, so that
// its CPU and memory are read from /proc like any other server's.
const natsServerCommand = "nats-server"

// natsReady prefixes the line the child prints once it serves:
// "tickbench-nats serving <ws-url> <nats-url>".
const natsReady = "tickbench-nats serving "

// runNATSServer is `tickbench nats-server [--tls-cert F --tls-key F]`: it
// serves on random loopback ports until ctx ends.
func runNATSServer(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(natsServerCommand, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cert := fs.String("tls-cert", "", "certificate of the WebSocket listener (empty: plain ws://)")
	key := fs.String("tls-key", "", "its key")
	ws := fs.Bool("ws", true, "serve WebSocket clients too (false: the client port alone, the ready line's <ws-url> is -)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	o := &natsserver.Options{
		Host: "127.0.0.1", Port: natsserver.RANDOM_PORT, NoSigs: true, NoLog: true, ServerName: "tickbench-ws",
	}
	if *ws {
		o.Websocket = natsserver.WebsocketOpts{Host: "127.0.0.1", Port: natsserver.RANDOM_PORT, NoTLS: *cert == ""}
	} else {
		o.ServerName = "tickbench-feed"
	}
	if *cert != "" {
		pair, err := tls.LoadX509KeyPair(*cert, *key)
		if err != nil {
			fmt.Fprintf(stderr, "tickbench %s: %v\n", natsServerCommand, err)
			return 1
		}
		o.Websocket.TLSConfig = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	}
	ns, err := natsserver.NewServer(o)
	if err != nil {
		fmt.Fprintf(stderr, "tickbench %s: %v\n", natsServerCommand, err)
		return 1
	}
	ns.Start()
	defer ns.Shutdown()
	ports := ns.PortsInfo(10 * time.Second)
	if ports == nil || (*ws && len(ports.WebSocket) == 0) || len(ports.Nats) == 0 {
		fmt.Fprintf(stderr, "tickbench %s: not ready after 10s\n", natsServerCommand)
		return 1
	}
	wsURL := "-"
	if *ws {
		wsURL = ports.WebSocket[0]
	}
	fmt.Fprintf(stdout, "%s%s %s\n", natsReady, wsURL, ports.Nats[0])
	<-ctx.Done()
	return 0
}
