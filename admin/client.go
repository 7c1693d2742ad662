package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/tickgate/tickgate/gateway"
)

// Client calls one node's admin listener. Safe for concurrent use.
type Client struct {
	base  string       // Static after construction: scheme://host:port, no trailing slash.
	token string       // Static after construction: the admin token, or "".
	http  *http.Client // Static after construction.
}

// NewClient returns a client of the admin listener at base (for example
// http://127.0.0.1:9090; a bare host:port means http), sending token when
// not empty.
func NewClient(base, token string) (*Client, error) {
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	u, err := url.Parse(base)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || u.RawQuery != "" || strings.Trim(u.Path, "/") != "" {
		return nil, fmt.Errorf("admin URL %q: want http(s)://host:port", base)
	}
	return &Client{base: u.Scheme + "://" + u.Host, token: token, http: &http.Client{Timeout: 5 * time.Second}}, nil
}

// Base returns the listener's URL.
func (c *Client) Base() string { return c.base }

// APIError is a refusal from the API (or another HTTP failure).
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("HTTP %d: %s", e.Status, e.Message)
	}
	return fmt.Sprintf("%s (HTTP %d): %s", e.Code, e.Status, e.Message)
}

// do sends one request and decodes a 200's JSON body into out.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, body any, out any) error {
	target := c.base + path
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e Error
		if json.Unmarshal(data, &e) == nil && e.Code != "" {
			return &APIError{Status: resp.StatusCode, Code: e.Code, Message: e.Message}
		}
		return &APIError{Status: resp.StatusCode, Message: strings.TrimSpace(string(clipBytes(data)))}
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

func clipBytes(b []byte) []byte {
	if len(b) > 200 {
		return b[:200]
	}
	return b
}

// Connections lists the node's connections; q holds the filters (sub,
// ip, channel, limit, sort).
func (c *Client) Connections(ctx context.Context, q url.Values) (gateway.ConnectionList, error) {
	var l gateway.ConnectionList
	err := c.do(ctx, http.MethodGet, PathConnections, q, nil, &l)
	return l, err
}

// Channels lists the node's channels; q holds the filters (kind, symbol).
func (c *Client) Channels(ctx context.Context, q url.Values) (gateway.ChannelList, error) {
	var l gateway.ChannelList
	err := c.do(ctx, http.MethodGet, PathChannels, q, nil, &l)
	return l, err
}

// Revoke revokes sub's tokens issued before issuedBefore (Unix seconds;
// 0: every token issued up to now) on every node, through this one.
func (c *Client) Revoke(ctx context.Context, sub string, issuedBefore int64) (gateway.RevokeResult, error) {
	req := RevokeRequest{Sub: sub}
	if issuedBefore != 0 {
		req.IssuedBefore = &issuedBefore
	}
	var res gateway.RevokeResult
	err := c.do(ctx, http.MethodPost, PathRevoke, nil, req, &res)
	return res, err
}

// Metrics reads the node's /metrics, parsed.
func (c *Client) Metrics(ctx context.Context) (map[string]*dto.MetricFamily, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, &APIError{Status: resp.StatusCode, Message: "/metrics"}
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("/metrics: %w", err)
	}
	return mfs, nil
}
