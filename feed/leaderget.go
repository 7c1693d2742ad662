package feed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// leaderGets are gets that the stream's leader answers, through the
// JetStream API's message get ($JS.API.STREAM.MSG.GET), never a replica's
// direct get: the leader holds every message the stream acknowledged.
// jetstream.Stream takes direct gets whenever the stream allows them.
type leaderGets struct {
	nc     *nats.Conn
	stream string
}

// msgGetRequest is the API's message get request.
type msgGetRequest struct {
	Seq     uint64 `json:"seq,omitempty"`
	NextFor string `json:"next_by_subj,omitempty"`
	LastFor string `json:"last_by_subj,omitempty"`
}

// msgGetResponse is the API's answer: a message, or an error.
type msgGetResponse struct {
	Message *struct {
		Subject  string `json:"subject"`
		Sequence uint64 `json:"seq"`
		Data     []byte `json:"data"` // base64 in JSON: encoding/json decodes it
	} `json:"message"`
	Error *struct {
		Code        int    `json:"code"`
		ErrCode     int    `json:"err_code"`
		Description string `json:"description"`
	} `json:"error"`
}

// errCodeNoMessage is JetStream's error code for "no message found".
const errCodeNoMessage = 10037

func (g leaderGets) next(ctx context.Context, from uint64, subject string) (*jetstream.RawStreamMsg, error) {
	return g.get(ctx, msgGetRequest{Seq: from, NextFor: subject})
}

func (g leaderGets) last(ctx context.Context, subject string) (*jetstream.RawStreamMsg, error) {
	return g.get(ctx, msgGetRequest{LastFor: subject})
}

// request sends a message get request to subject and returns the reply.
func request(ctx context.Context, nc *nats.Conn, subject string, req msgGetRequest) (*nats.Msg, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	return nc.RequestWithContext(ctx, subject, body)
}

func (g leaderGets) get(ctx context.Context, req msgGetRequest) (*jetstream.RawStreamMsg, error) {
	reply, err := request(ctx, g.nc, "$JS.API.STREAM.MSG.GET."+g.stream, req)
	if err != nil {
		return nil, err
	}
	var resp msgGetResponse
	if err := json.Unmarshal(reply.Data, &resp); err != nil {
		return nil, fmt.Errorf("message get: %w", err)
	}
	switch {
	case resp.Error != nil && resp.Error.ErrCode == errCodeNoMessage:
		return nil, jetstream.ErrMsgNotFound
	case resp.Error != nil:
		return nil, fmt.Errorf("message get: %d %s", resp.Error.ErrCode, resp.Error.Description)
	case resp.Message == nil:
		return nil, jetstream.ErrInvalidJetStreamResponse
	}
	m := resp.Message
	return &jetstream.RawStreamMsg{Subject: m.Subject, Sequence: m.Sequence, Data: m.Data}, nil
}

// directGets are direct gets ($JS.API.DIRECT.GET), which any replica of a
// stream that allows them answers, without the JetStream cluster's meta
// leader: they keep working while it is being elected (a NATS node lost),
// when stream info and consumers do not. A replica may lag the leader.
type directGets struct {
	nc     *nats.Conn
	stream string
}

func (g directGets) next(ctx context.Context, from uint64, subject string) (*jetstream.RawStreamMsg, error) {
	return g.get(ctx, msgGetRequest{Seq: from, NextFor: subject})
}

func (g directGets) last(ctx context.Context, subject string) (*jetstream.RawStreamMsg, error) {
	return g.get(ctx, msgGetRequest{LastFor: subject})
}

func (g directGets) get(ctx context.Context, req msgGetRequest) (*jetstream.RawStreamMsg, error) {
	reply, err := request(ctx, g.nc, "$JS.API.DIRECT.GET."+g.stream, req)
	if err != nil {
		return nil, err
	}
	if status := reply.Header.Get("Status"); len(reply.Data) == 0 && status != "" {
		if status == "404" {
			return nil, jetstream.ErrMsgNotFound
		}
		return nil, fmt.Errorf("direct get: %s %s", status, reply.Header.Get("Description"))
	}
	seq, err := strconv.ParseUint(reply.Header.Get(jetstream.SequenceHeader), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("direct get: sequence header: %w", err)
	}
	subject := reply.Header.Get(jetstream.SubjectHeader)
	if subject == "" {
		return nil, errors.New("direct get: no subject header")
	}
	return &jetstream.RawStreamMsg{Subject: subject, Sequence: seq, Data: reply.Data}, nil
}
