// Package client is a Go client for a Switchboard server (switchboard
// serve). A *Client has the Manager's method set and satisfies
// switchboard.Router, so code written against a Router runs embedded or
// remote alike; errors map back to the library's sentinels, so
// errors.Is(err, switchboard.ErrNotFound) works across the wire.
//
//	c, err := client.New("http://127.0.0.1:7420", client.Options{Instance: "support_bot", Token: token})
//	res, err := c.Resolve(ctx, key, fallback)
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-go/switchboard"
	"github.com/switchboard-go/switchboard/internal/wire"
)

// Options configures a Client. The zero value means all defaults.
type Options struct {
	// Instance is the server instance to use. Default: "default".
	Instance string
	// Token is sent as "Authorization: Bearer <Token>" when not empty.
	Token string
	// HTTPClient makes the requests. Default: an http.Client with a 10s
	// timeout.
	HTTPClient *http.Client
}

// Client talks to one instance of a Switchboard server. It is safe for
// concurrent use.
type Client struct {
	base     *url.URL
	instance string
	token    string
	hc       *http.Client
}

var _ switchboard.Router = (*Client)(nil)

// New returns a Client for the server at baseURL (such as
// "http://127.0.0.1:7420").
func New(baseURL string, opts Options) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: server URL %q must be http(s)://host[:port]", baseURL)
	}
	c := &Client{base: u, instance: opts.Instance, token: opts.Token, hc: opts.HTTPClient}
	if c.instance == "" {
		c.instance = "default"
	}
	if c.hc == nil {
		c.hc = &http.Client{Timeout: 10 * time.Second}
	}
	return c, nil
}

// Error is an error answer of the server. It unwraps to the library's
// sentinel for its code, when there is one.
type Error struct {
	Status  int    // HTTP status
	Code    string // the API's error code, such as "not_found"
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("switchboard server: %s (%d): %s", e.Code, e.Status, e.Message)
}

// Unwrap returns the sentinel error of the code, or nil.
func (e *Error) Unwrap() error { return wire.Sentinel(e.Code) }

func (c *Client) path(parts ...string) string {
	return strings.TrimSuffix(c.base.String(), "/") + "/v1/instances/" + url.PathEscape(c.instance) + "/" + strings.Join(parts, "/")
}

func keyPath(k switchboard.SessionKey) string { return url.PathEscape(k.String()) }

// do sends a request and decodes a JSON answer into out (when not nil).
func (c *Client) do(ctx context.Context, method, u string, in, out any) error {
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		return fmt.Errorf("client: %s %s: %w", method, u, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("client: %s %s: %w", method, u, err)
	}
	if resp.StatusCode >= 300 {
		var eb wire.ErrorBody
		if json.Unmarshal(data, &eb) != nil || eb.Error.Code == "" {
			return &Error{Status: resp.StatusCode, Code: wire.CodeInternal, Message: strings.TrimSpace(string(data))}
		}
		return &Error{Status: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("client: %s %s: bad answer: %w", method, u, err)
		}
	}
	return nil
}

// Set stores r as the route of key (see switchboard.Manager.Set).
func (c *Client) Set(ctx context.Context, key switchboard.SessionKey, r switchboard.Route, opts ...switchboard.SetOption) error {
	req := wire.SetRequest{Route: r}
	for _, o := range opts {
		if d, ok := o.TTL(); ok {
			if d < time.Millisecond || d > switchboard.MaxTTL {
				return fmt.Errorf("%w: %v must be between 1ms and %v over the wire", switchboard.ErrInvalidTTL, d, switchboard.MaxTTL)
			}
			ms := d.Milliseconds()
			req.TTLMs = &ms
		}
	}
	if err := key.Validate(); err != nil {
		return err
	}
	return c.do(ctx, http.MethodPut, c.path("routes", keyPath(key)), req, nil)
}

// Get returns the fresh record of key (see switchboard.Manager.Get). Times
// have millisecond precision.
func (c *Client) Get(ctx context.Context, key switchboard.SessionKey) (switchboard.Record, error) {
	if err := key.Validate(); err != nil {
		return switchboard.Record{}, err
	}
	var rec wire.Record
	if err := c.do(ctx, http.MethodGet, c.path("routes", keyPath(key)), nil, &rec); err != nil {
		return switchboard.Record{}, err
	}
	return rec.ToRecord(), nil
}

// Resolve answers where the reply for key goes (see
// switchboard.Manager.Resolve).
func (c *Client) Resolve(ctx context.Context, key switchboard.SessionKey, fallbacks ...switchboard.Route) (switchboard.Resolution, error) {
	if err := key.Validate(); err != nil {
		return switchboard.Resolution{}, err
	}
	var res wire.Resolution
	if err := c.do(ctx, http.MethodPost, c.path("resolve"), wire.ResolveRequest{SessionKey: key.String(), Fallbacks: fallbacks}, &res); err != nil {
		return switchboard.Resolution{}, err
	}
	return res.ToResolution()
}

// Delete removes the record of key (see switchboard.Manager.Delete).
func (c *Client) Delete(ctx context.Context, key switchboard.SessionKey) error {
	if err := key.Validate(); err != nil {
		return err
	}
	return c.do(ctx, http.MethodDelete, c.path("routes", keyPath(key)), nil, nil)
}

// Prune deletes every expired record now (see switchboard.Manager.Prune).
func (c *Client) Prune(ctx context.Context) (switchboard.PruneResult, error) {
	var res wire.PruneResult
	if err := c.do(ctx, http.MethodPost, c.path("prune"), nil, &res); err != nil {
		return switchboard.PruneResult{}, err
	}
	return switchboard.PruneResult{Pruned: res.Pruned, Partitions: res.Partitions}, nil
}

// PartitionStatus reports on one partition.
func (c *Client) PartitionStatus(ctx context.Context, partition int) (switchboard.PartitionStatus, error) {
	var st wire.PartitionStatus
	if err := c.do(ctx, http.MethodGet, c.path("partitions", strconv.Itoa(partition)), nil, &st); err != nil {
		return switchboard.PartitionStatus{}, err
	}
	return st.ToPartitionStatus(), nil
}

// Partitions reports on every partition.
func (c *Client) Partitions(ctx context.Context) ([]switchboard.PartitionStatus, error) {
	var sts []wire.PartitionStatus
	if err := c.do(ctx, http.MethodGet, c.path("partitions"), nil, &sts); err != nil {
		return nil, err
	}
	out := make([]switchboard.PartitionStatus, len(sts))
	for i, st := range sts {
		out[i] = st.ToPartitionStatus()
	}
	return out, nil
}

// Config returns the instance's effective configuration.
func (c *Client) Config(ctx context.Context) (switchboard.Config, error) {
	var cfg wire.Config
	if err := c.do(ctx, http.MethodGet, c.path("config"), nil, &cfg); err != nil {
		return switchboard.Config{}, err
	}
	return cfg.ToConfig(), nil
}

// PartitionCount returns the instance's partition count.
func (c *Client) PartitionCount(ctx context.Context) (int, error) {
	cfg, err := c.Config(ctx)
	return cfg.PartitionCount, err
}
