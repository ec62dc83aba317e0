// Package client is a Go client for a Switchboard server (switchboard
// serve). A *Client has the Manager's method set and satisfies
// switchboard.Router, so code written against a Router runs embedded or
// remote alike: it validates keys, routes and options with the Manager's
// own rules before sending anything (the same errors, nothing sent), and
// errors map back to the library's sentinels, so errors.Is(err,
// switchboard.ErrNotFound) works across the wire.
//
//	c, err := client.New("http://127.0.0.1:7420", client.Options{Instance: "support_bot", Token: token})
//	res, err := c.Resolve(ctx, key, fallback)
//
// A request that fails in transport is an *Error of code "transport". When
// it may have reached the server (a timeout, a connection broken after
// sending), the error also wraps switchboard.ErrOutcomeUnknown: a write
// may have been applied; retry it with IfRevision or IfAbsent, or read
// back. A refused connection means nothing was applied.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
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
	// timeout over a transport that keeps MaxIdleConnsPerHost idle
	// connections to the server.
	HTTPClient *http.Client
	// MaxIdleConnsPerHost is how many idle connections the default
	// transport keeps to the server: at least the number of goroutines
	// that call the Client at once, or every request beyond it opens (and
	// closes, leaving a socket in TIME_WAIT) a connection of its own — Go's
	// http.DefaultTransport keeps 2. Ignored with HTTPClient. Default: 256.
	MaxIdleConnsPerHost int
}

// DefaultMaxIdleConnsPerHost is the default of Options.MaxIdleConnsPerHost.
const DefaultMaxIdleConnsPerHost = 256

// Client talks to one instance of a Switchboard server. It is safe for
// concurrent use.
type Client struct {
	base     string
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
	c := &Client{base: strings.TrimSuffix(u.String(), "/"), instance: opts.Instance, token: opts.Token, hc: opts.HTTPClient}
	if c.instance == "" {
		c.instance = "default"
	}
	if c.hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = opts.MaxIdleConnsPerHost
		if tr.MaxIdleConnsPerHost <= 0 {
			tr.MaxIdleConnsPerHost = DefaultMaxIdleConnsPerHost
		}
		tr.MaxIdleConns = 0 // no limit over all hosts: the per-host one bounds it
		c.hc = &http.Client{Timeout: 10 * time.Second, Transport: tr}
	}
	return c, nil
}

// CloseIdleConnections closes the idle connections of the Client's
// transport (see http.Client.CloseIdleConnections).
func (c *Client) CloseIdleConnections() { c.hc.CloseIdleConnections() }

// CodeTransport is the Code of an *Error for a request that got no answer.
const CodeTransport = "transport"

// Error is an error answer of the server, or (Code CodeTransport) a
// request that got none. It unwraps to the library's sentinel for its
// code, when there is one, and to switchboard.ErrOutcomeUnknown when a
// write may have been applied although it failed.
type Error struct {
	Status         int    // HTTP status; 0 for a transport error
	Code           string // the API's error code, such as "not_found"
	Message        string
	OutcomeUnknown bool
	Err            error // the transport error, for CodeTransport
}

func (e *Error) Error() string {
	if e.Code == CodeTransport {
		return e.Message
	}
	return fmt.Sprintf("server answered %d %s: %s", e.Status, e.Code, e.Message)
}

// Unwrap returns the sentinel error of the code, ErrOutcomeUnknown and the
// transport error, as they apply.
func (e *Error) Unwrap() []error {
	var out []error
	if s := wire.Sentinel(e.Code); s != nil {
		out = append(out, s)
	}
	if e.OutcomeUnknown {
		out = append(out, switchboard.ErrOutcomeUnknown)
	}
	if e.Err != nil {
		out = append(out, e.Err)
	}
	return out
}

func (c *Client) path(parts ...string) string {
	return c.base + "/v1/instances/" + url.PathEscape(c.instance) + "/" + strings.Join(parts, "/")
}

func keyPath(k switchboard.SessionKey) string { return url.PathEscape(k.String()) }

// do sends a request and decodes a JSON answer into out (when not nil).
func (c *Client) do(ctx context.Context, method, u string, header http.Header, in, out any) error {
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
	for k, v := range header {
		req.Header[k] = v
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
		return transportError(method, u, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return transportError(method, u, err)
	}
	if resp.StatusCode >= 300 {
		var eb wire.ErrorBody
		if json.Unmarshal(data, &eb) != nil || eb.Error.Code == "" {
			return &Error{Status: resp.StatusCode, Code: wire.CodeInternal, Message: strings.TrimSpace(string(data))}
		}
		return &Error{Status: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message, OutcomeUnknown: eb.Error.OutcomeUnknown}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("client: %s %s: bad answer: %w", method, u, err)
		}
	}
	return nil
}

// transportError describes a request that got no answer, saying whether
// it may have been applied.
func transportError(method, u string, err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return &Error{Code: CodeTransport, Err: err,
			Message: fmt.Sprintf("%s %s: could not connect (nothing was applied): %v", method, u, err)}
	}
	return &Error{Code: CodeTransport, Err: err, OutcomeUnknown: true,
		Message: fmt.Sprintf("%s %s: no answer (a write may have been applied): %v", method, u, err)}
}

// Set stores r as the route of key (see switchboard.Manager.Set).
// IfRevision travels as If-Match, IfAbsent as If-None-Match: *. A TTL is
// sent in whole milliseconds, rounded up.
func (c *Client) Set(ctx context.Context, key switchboard.SessionKey, r switchboard.Route, opts ...switchboard.SetOption) error {
	if err := key.Validate(); err != nil {
		return err
	}
	if err := r.Validate(); err != nil {
		return err
	}
	o, err := switchboard.ApplySetOptions(opts...)
	if err != nil {
		return err
	}
	req := wire.SetRequest{Route: r, Writer: o.Writer}
	if o.TTL != 0 {
		ms := int64(math.Ceil(float64(o.TTL) / float64(time.Millisecond)))
		req.TTLMs = &ms
	}
	if o.Priority != 0 {
		req.Priority = &o.Priority
	}
	header := http.Header{}
	if o.IfRevision != 0 {
		header.Set("If-Match", wire.ETag(o.IfRevision))
	}
	if o.IfAbsent {
		header.Set("If-None-Match", "*")
	}
	return c.do(ctx, http.MethodPut, c.path("routes", keyPath(key)), header, req, nil)
}

// Get returns the fresh record of key (see switchboard.Manager.Get). Times
// have millisecond precision.
func (c *Client) Get(ctx context.Context, key switchboard.SessionKey) (switchboard.Record, error) {
	e, err := c.Lookup(ctx, key)
	return e.Record, err
}

// Lookup is Get with the record's partition.
func (c *Client) Lookup(ctx context.Context, key switchboard.SessionKey) (switchboard.Entry, error) {
	if err := key.Validate(); err != nil {
		return switchboard.Entry{}, err
	}
	var rec wire.Record
	if err := c.do(ctx, http.MethodGet, c.path("routes", keyPath(key)), nil, nil, &rec); err != nil {
		return switchboard.Entry{}, err
	}
	return switchboard.Entry{Key: key, Partition: rec.Partition, Record: rec.ToRecord()}, nil
}

// candidates drops the fallbacks the Manager would skip, so that JSON
// encoding cannot turn an invalid one into a valid one (invalid UTF-8
// becomes U+FFFD); more than wire.MaxFallbacks valid ones are refused as
// the server refuses them.
func candidates(fallbacks []switchboard.Route) ([]switchboard.Route, error) {
	out := make([]switchboard.Route, 0, len(fallbacks))
	for _, f := range fallbacks {
		if f.ExternalRoomID != "" && f.Validate() == nil {
			out = append(out, f)
		}
	}
	if len(out) > wire.MaxFallbacks {
		return nil, fmt.Errorf("%w: %d fallbacks, at most %d allowed over the wire", switchboard.ErrInvalidRoute, len(out), wire.MaxFallbacks)
	}
	return out, nil
}

// Resolve answers where the reply for key goes (see
// switchboard.Manager.Resolve).
func (c *Client) Resolve(ctx context.Context, key switchboard.SessionKey, fallbacks ...switchboard.Route) (switchboard.Resolution, error) {
	if err := key.Validate(); err != nil {
		return switchboard.Resolution{}, err
	}
	fbs, err := candidates(fallbacks)
	if err != nil {
		return switchboard.Resolution{}, err
	}
	var res wire.Resolution
	if err := c.do(ctx, http.MethodPost, c.path("resolve"), nil, wire.ResolveRequest{SessionKey: key.String(), Fallbacks: fbs}, &res); err != nil {
		return switchboard.Resolution{}, err
	}
	return res.ToResolution()
}

// Explain reports what Resolve would do now, step by step (see
// switchboard.Manager.Explain).
func (c *Client) Explain(ctx context.Context, key switchboard.SessionKey, fallbacks ...switchboard.Route) (switchboard.Explanation, error) {
	if err := key.Validate(); err != nil {
		return switchboard.Explanation{}, err
	}
	fbs, err := candidates(fallbacks)
	if err != nil {
		return switchboard.Explanation{}, err
	}
	var res wire.ExplainResponse
	if err := c.do(ctx, http.MethodPost, c.path("explain"), nil, wire.ResolveRequest{SessionKey: key.String(), Fallbacks: fbs}, &res); err != nil {
		return switchboard.Explanation{}, err
	}
	return res.ToExplanation(func(d wire.ErrorDetail) error {
		return &Error{Status: wire.Status(d.Code), Code: d.Code, Message: d.Message, OutcomeUnknown: d.OutcomeUnknown}
	})
}

// Confirm reports a delivery to delivered's target (see
// switchboard.Manager.Confirm).
func (c *Client) Confirm(ctx context.Context, key switchboard.SessionKey, delivered switchboard.Route) (switchboard.Record, error) {
	if err := key.Validate(); err != nil {
		return switchboard.Record{}, err
	}
	if err := delivered.Validate(); err != nil {
		return switchboard.Record{}, err
	}
	var rec wire.Record
	if err := c.do(ctx, http.MethodPost, c.path("confirm"), nil, wire.FeedbackRequest{SessionKey: key.String(), Route: delivered}, &rec); err != nil {
		return switchboard.Record{}, err
	}
	return rec.ToRecord(), nil
}

// Invalidate reports a failed delivery to failed's target (see
// switchboard.Manager.Invalidate).
func (c *Client) Invalidate(ctx context.Context, key switchboard.SessionKey, failed switchboard.Route, reason string) error {
	if err := key.Validate(); err != nil {
		return err
	}
	if err := failed.Validate(); err != nil {
		return err
	}
	if err := switchboard.CheckReason(reason); err != nil {
		return err
	}
	return c.do(ctx, http.MethodPost, c.path("invalidate"), nil, wire.FeedbackRequest{SessionKey: key.String(), Route: failed, Reason: reason}, nil)
}

// Delete removes the record of key (see switchboard.Manager.Delete).
func (c *Client) Delete(ctx context.Context, key switchboard.SessionKey) error {
	if err := key.Validate(); err != nil {
		return err
	}
	return c.do(ctx, http.MethodDelete, c.path("routes", keyPath(key)), nil, nil, nil)
}

// List returns one page of the records matching f (see
// switchboard.Manager.List). UpdatedBefore travels in whole milliseconds.
func (c *Client) List(ctx context.Context, f switchboard.Filter, limit int, cursor string) ([]switchboard.Entry, string, error) {
	if err := f.Validate(); err != nil {
		return nil, "", err
	}
	if limit < 0 || limit > switchboard.MaxListLimit {
		return nil, "", fmt.Errorf("%w: limit %d must be between 1 and %d", switchboard.ErrInvalidOption, limit, switchboard.MaxListLimit)
	}
	wf := wire.FromFilter(f)
	q := url.Values{}
	for name, v := range map[string]string{"channel_type": wf.ChannelType, "bridge_id": wf.BridgeID, "room_id": wf.RoomID,
		"thread_id": wf.ThreadID, "scope": wf.Scope, "external_room_id": wf.ExternalRoomID, "origin": wf.Origin,
		"writer": wf.Writer, "cursor": cursor} {
		if v != "" {
			q.Set(name, v)
		}
	}
	if wf.UpdatedBeforeMs != 0 {
		q.Set("updated_before_ms", strconv.FormatInt(wf.UpdatedBeforeMs, 10))
	}
	if wf.Invalidated {
		q.Set("invalidated", "true")
	}
	if limit != 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	u := c.path("routes")
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var res wire.ListResponse
	if err := c.do(ctx, http.MethodGet, u, nil, nil, &res); err != nil {
		return nil, "", err
	}
	out := make([]switchboard.Entry, len(res.Routes))
	for i, r := range res.Routes {
		e, err := r.ToEntry()
		if err != nil {
			return nil, "", fmt.Errorf("client: bad answer: %w", err)
		}
		out[i] = e
	}
	return out, res.Next, nil
}

// DeleteMatching deletes (or, with dryRun, counts) the records matching f
// (see switchboard.Manager.DeleteMatching).
func (c *Client) DeleteMatching(ctx context.Context, f switchboard.Filter, dryRun bool) (switchboard.DeleteResult, error) {
	if err := f.Validate(); err != nil {
		return switchboard.DeleteResult{}, err
	}
	if f.IsZero() && !dryRun {
		return switchboard.DeleteResult{}, fmt.Errorf("%w: a delete with an empty filter would delete every route; give a filter (or use a dry run)", switchboard.ErrInvalidOption)
	}
	var res wire.DeleteResult
	if err := c.do(ctx, http.MethodPost, c.path("routes:delete"), nil, wire.DeleteRequest{Filter: wire.FromFilter(f), DryRun: dryRun}, &res); err != nil {
		return switchboard.DeleteResult{}, err
	}
	out := switchboard.DeleteResult{Matched: res.Matched, Deleted: res.Deleted}
	for _, s := range res.Sample {
		k, err := switchboard.ParseSessionKey(s)
		if err != nil {
			return out, fmt.Errorf("client: bad answer: %w", err)
		}
		out.Sample = append(out.Sample, k)
	}
	return out, nil
}

// Prune deletes every expired record now (see switchboard.Manager.Prune).
func (c *Client) Prune(ctx context.Context) (switchboard.PruneResult, error) {
	var res wire.PruneResult
	if err := c.do(ctx, http.MethodPost, c.path("prune"), nil, nil, &res); err != nil {
		return switchboard.PruneResult{}, err
	}
	return switchboard.PruneResult{Pruned: res.Pruned, Partitions: res.Partitions}, nil
}

// PartitionStatus reports on one partition.
func (c *Client) PartitionStatus(ctx context.Context, partition int) (switchboard.PartitionStatus, error) {
	var st wire.PartitionStatus
	if err := c.do(ctx, http.MethodGet, c.path("partitions", strconv.Itoa(partition)), nil, nil, &st); err != nil {
		return switchboard.PartitionStatus{}, err
	}
	return st.ToPartitionStatus(), nil
}

// Partitions reports on every partition.
func (c *Client) Partitions(ctx context.Context) ([]switchboard.PartitionStatus, error) {
	var sts []wire.PartitionStatus
	if err := c.do(ctx, http.MethodGet, c.path("partitions"), nil, nil, &sts); err != nil {
		return nil, err
	}
	out := make([]switchboard.PartitionStatus, len(sts))
	for i, st := range sts {
		out[i] = st.ToPartitionStatus()
	}
	return out, nil
}

// Config returns the instance's effective configuration (ProvisionalTTL
// is the value in force).
func (c *Client) Config(ctx context.Context) (switchboard.Config, error) {
	var cfg wire.Config
	if err := c.do(ctx, http.MethodGet, c.path("config"), nil, nil, &cfg); err != nil {
		return switchboard.Config{}, err
	}
	return cfg.ToConfig(), nil
}

// PartitionCount returns the instance's partition count.
func (c *Client) PartitionCount(ctx context.Context) (int, error) {
	cfg, err := c.Config(ctx)
	return cfg.PartitionCount, err
}
