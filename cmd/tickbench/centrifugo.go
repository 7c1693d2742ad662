package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/lxzan/gws"

	"github.com/tickgate/tickgate/internal/wsconn"
)

// centrifugoDialect is Centrifugo's client protocol v2 in JSON: commands
// and replies are JSON objects, several to a frame separated by newlines.
// The client sends a connect command with its JWT and one subscribe
// command per channel in one frame; the ack is the last subscribe reply.
// Publications arrive as pushes whose pub.data is the feed message as
// NATS carried it (raw mode); the server's ping is an empty object,
// answered with one.
type centrifugoDialect struct{}

func (centrifugoDialect) name() string { return "centrifugo" }

func (centrifugoDialect) session(s *clientSpec) session {
	return &centrifugoSession{spec: s, names: newChannelNames(s.channels)}
}

// centrifugoSession is one connection's state. Owned by its read loop.
type centrifugoSession struct {
	spec    *clientSpec
	names   channelNames
	replies int // subscribe replies received
}

func (*centrifugoSession) header() http.Header { return nil }
func (*centrifugoSession) accept(string) error { return nil }

// centrifugoCommand is the part of a client command tickbench sends.
type centrifugoCommand struct {
	ID      uint32 `json:"id"`
	Connect *struct {
		Token string `json:"token"`
		Name  string `json:"name"`
	} `json:"connect,omitempty"`
	Subscribe *struct {
		Channel string `json:"channel"`
	} `json:"subscribe,omitempty"`
}

func (c *centrifugoSession) hello() (gws.Opcode, []byte, error) {
	cmd := centrifugoCommand{ID: 1}
	cmd.Connect = &struct {
		Token string `json:"token"`
		Name  string `json:"name"`
	}{c.spec.token, "tickbench"}
	b, err := json.Marshal(cmd)
	if err != nil {
		return 0, nil, err
	}
	for i, ch := range c.spec.channels {
		cmd := centrifugoCommand{ID: uint32(i + 2), Subscribe: &struct {
			Channel string `json:"channel"`
		}{ch}}
		s, err := json.Marshal(cmd)
		if err != nil {
			return 0, nil, err
		}
		b = append(append(b, '\n'), s...)
	}
	return gws.OpcodeText, b, nil
}

// probe is an RPC command: without an RPC proxy the server answers it with
// an error reply and nothing else. An unsolicited pong ({}) is not
// harmless: Centrifugo closed stalled clients probing with it with 3501
// (bad request) about 5 s after they began, which looked like an eviction.
func (c *centrifugoSession) probe() (byte, []byte, error) {
	return wsconn.OpText, []byte(`{"id":1000000,"rpc":{"method":"tickbench.probe"}}`), nil
}

// centrifugoReply is the part of a reply (not a push) tickbench reads.
type centrifugoReply struct {
	ID    uint32          `json:"id"`
	Error json.RawMessage `json:"error"`
	Push  json.RawMessage `json:"push"`
}

func (c *centrifugoSession) handle(data []byte, to sink) {
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		switch {
		case len(line) == 0:
		case bytes.Equal(line, []byte("{}")):
			to.reply(gws.OpcodeText, []byte("{}"))
		case bytes.HasPrefix(line, []byte(`{"push":`)):
			c.push(line, to)
		default:
			var r centrifugoReply
			if err := json.Unmarshal(line, &r); err != nil {
				to.undecodable()
				continue
			}
			switch {
			case len(r.Error) > 0:
				to.refused()
			case len(r.Push) > 0:
				c.push(line, to)
			case r.ID >= 2:
				if c.replies++; c.replies == len(c.spec.channels) {
					to.acked()
				}
			}
		}
	}
}

// push reports a publication push: {"push":{"channel":"…","pub":{"data":…}}}.
func (c *centrifugoSession) push(line []byte, to sink) {
	i := bytes.Index(line, []byte(`"pub":`))
	if i < 0 {
		return // another push (unsubscribe, disconnect): not a delivery
	}
	name, _ := jsonString(line, `"channel":"`)
	ch, ok := c.names[string(name)]
	if !ok {
		to.undecodable()
		return
	}
	deliverFeed(ch, line[i:], to)
}

// centrifugoToken mints the HS256 connection JWT Centrifugo checks: sub and
// exp only (a channels claim would mean server-side subscriptions there).
func centrifugoToken(secret []byte, sub string, exp time.Time) string {
	enc := base64.RawURLEncoding
	header := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	claims := enc.EncodeToString([]byte(`{"sub":` + strconv.Quote(sub) + `,"exp":` + strconv.FormatInt(exp.Unix(), 10) + `}`))
	m := hmac.New(sha256.New, secret)
	fmt.Fprintf(m, "%s.%s", header, claims)
	return header + "." + claims + "." + enc.EncodeToString(m.Sum(nil))
}
