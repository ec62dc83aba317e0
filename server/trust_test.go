package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-go/switchboard"
	"github.com/switchboard-go/switchboard/client"
	"github.com/switchboard-go/switchboard/server"
	"github.com/switchboard-go/switchboard/storetest"
)

// rawHeaders is raw with request headers; it returns the response too.
func (f *fixture) rawHeaders(t *testing.T, method, path, body string, hdr map[string]string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data), resp.Header
}

func TestTrustOverHTTP(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	routes := "/v1/instances/open/routes/"
	key := switchboard.SessionKey{ChannelType: "slack", BridgeID: "T1", RoomID: "C1"}
	if err := f.open.Set(ctx, key, switchboard.Route{ExternalRoomID: "C1"}, switchboard.WithPriority(10), switchboard.WithWriter("inbound")); err != nil {
		t.Fatal(err)
	}
	status, body, hdr := f.rawHeaders(t, "GET", routes+"slack:T1:C1", "", nil)
	if status != 200 || hdr.Get("ETag") != `"1"` ||
		!strings.Contains(body, `"origin":"set","writer":"inbound","priority":10,"revision":1,"confirmed":false`) {
		t.Fatalf("GET = %d %s ETag %q", status, body, hdr.Get("ETag"))
	}
	tests := []struct {
		name, method, path, body string
		hdr                      map[string]string
		status                   int
		code                     string
	}{
		{"lower priority", "PUT", routes + "slack:T1:C1", `{"route":{"external_room_id":"x"}}`, nil, 409, "superseded"},
		{"If-Match another revision", "PUT", routes + "slack:T1:C1", `{"route":{"external_room_id":"x"},"priority":10}`, map[string]string{"If-Match": `"7"`}, 412, "conflict"},
		{"If-None-Match on a fresh record", "PUT", routes + "slack:T1:C1", `{"route":{"external_room_id":"x"},"priority":20}`, map[string]string{"If-None-Match": "*"}, 412, "conflict"},
		{"both conditions", "PUT", routes + "slack:T1:C1", `{"route":{"external_room_id":"x"}}`, map[string]string{"If-Match": `"1"`, "If-None-Match": "*"}, 400, "invalid_option"},
		{"If-Match not an ETag", "PUT", routes + "slack:T1:C1", `{"route":{"external_room_id":"x"}}`, map[string]string{"If-Match": "1"}, 400, "invalid_option"},
		{"If-None-Match not *", "PUT", routes + "slack:T1:C1", `{"route":{"external_room_id":"x"}}`, map[string]string{"If-None-Match": `"1"`}, 400, "invalid_option"},
		{"priority out of range", "PUT", routes + "slack:T1:C1", `{"route":{"external_room_id":"x"},"priority":1001}`, nil, 400, "invalid_option"},
		{"bad writer", "PUT", routes + "slack:T1:C1", `{"route":{"external_room_id":"x"},"writer":"a\u0001b"}`, nil, 400, "invalid_option"},
		{"confirm another target", "POST", "/v1/instances/open/confirm", `{"session_key":"slack:T1:C1","route":{"external_room_id":"C2"}}`, nil, 409, "conflict"},
		{"confirm nothing", "POST", "/v1/instances/open/confirm", `{"session_key":"slack:T1:C9","route":{"external_room_id":"C9"}}`, nil, 404, "not_found"},
		{"confirm with a reason", "POST", "/v1/instances/open/confirm", `{"session_key":"slack:T1:C1","route":{"external_room_id":"C1"},"reason":"x"}`, nil, 400, "invalid_json"},
		{"invalidate without a reason", "POST", "/v1/instances/open/invalidate", `{"session_key":"slack:T1:C1","route":{"external_room_id":"C1"}}`, nil, 400, "invalid_option"},
		{"invalidate another target", "POST", "/v1/instances/open/invalidate", `{"session_key":"slack:T1:C1","route":{"external_room_id":"C2"},"reason":"gone"}`, nil, 409, "conflict"},
		{"invalidate nothing", "POST", "/v1/instances/open/invalidate", `{"session_key":"slack:T1:C9","route":{"external_room_id":"C9"},"reason":"gone"}`, nil, 404, "not_found"},
		{"invalidate with a bad key", "POST", "/v1/instances/open/invalidate", `{"session_key":"x","route":{"external_room_id":"C9"},"reason":"gone"}`, nil, 400, "invalid_session_key"},
		{"list with a bad limit", "GET", "/v1/instances/open/routes?limit=1001", "", nil, 400, "invalid_option"},
		{"list with a negative limit", "GET", "/v1/instances/open/routes?limit=-1", "", nil, 400, "invalid_option"},
		{"list with a bad cursor", "GET", "/v1/instances/open/routes?cursor=nope", "", nil, 400, "invalid_option"},
		{"list with an unknown parameter", "GET", "/v1/instances/open/routes?bridge=T1", "", nil, 400, "invalid_option"},
		{"list with a repeated parameter", "GET", "/v1/instances/open/routes?room_id=a&room_id=b", "", nil, 400, "invalid_option"},
		{"list with a bad scope", "GET", "/v1/instances/open/routes?scope=all", "", nil, 400, "invalid_option"},
		{"list with a bad invalidated", "GET", "/v1/instances/open/routes?invalidated=yes", "", nil, 400, "invalid_option"},
		{"delete everything for real", "POST", "/v1/instances/open/routes:delete", `{"filter":{},"dry_run":false}`, nil, 400, "invalid_option"},
		{"delete with a bad filter", "POST", "/v1/instances/open/routes:delete", `{"filter":{"origin":"guess"},"dry_run":true}`, nil, 400, "invalid_option"},
		{"delete with an unknown field", "POST", "/v1/instances/open/routes:delete", `{"filter":{"bridge":"T1"},"dry_run":true}`, nil, 400, "invalid_json"},
		{"explain a bad key", "POST", "/v1/instances/open/explain", `{"session_key":"x"}`, nil, 400, "invalid_session_key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body, _ := f.rawHeaders(t, tt.method, tt.path, tt.body, tt.hdr)
			if status != tt.status || errorCode(t, body) != tt.code {
				t.Fatalf("%s %s = %d %s, want %d %s", tt.method, tt.path, status, body, tt.status, tt.code)
			}
		})
	}
	// Nothing stored changed.
	if rec, err := f.open.Get(ctx, key); err != nil || rec.Revision != 1 || rec.Route.ExternalRoomID != "C1" {
		t.Fatalf("record after refused requests = %+v, %v", rec, err)
	}
	// The ETag of a GET makes a conditional PUT; the same again conflicts.
	put := `{"route":{"external_room_id":"C1b"},"priority":10,"writer":"inbound"}`
	if status, body, _ := f.rawHeaders(t, "PUT", routes+"slack:T1:C1", put, map[string]string{"If-Match": `"1"`}); status != 204 {
		t.Fatalf("conditional PUT = %d %s", status, body)
	}
	if status, body, _ := f.rawHeaders(t, "PUT", routes+"slack:T1:C1", put, map[string]string{"If-Match": `"1"`}); status != 412 || errorCode(t, body) != "conflict" {
		t.Fatalf("repeated conditional PUT = %d %s", status, body)
	}
	// Confirm answers the record; invalidate makes GET answer 410 invalidated.
	status, body, hdr = f.rawHeaders(t, "POST", "/v1/instances/open/confirm", `{"session_key":"slack:T1:C1","route":{"external_room_id":"C1b"}}`, nil)
	if status != 200 || !strings.Contains(body, `"confirmed":true`) || hdr.Get("ETag") == "" {
		t.Fatalf("confirm = %d %s", status, body)
	}
	if status, body, _ := f.rawHeaders(t, "POST", "/v1/instances/open/invalidate", `{"session_key":"slack:T1:C1","route":{"external_room_id":"C1b"},"reason":"403 bot removed"}`, nil); status != 204 {
		t.Fatalf("invalidate = %d %s", status, body)
	}
	status, body, _ = f.rawHeaders(t, "GET", routes+"slack:T1:C1", "", nil)
	if status != 410 || errorCode(t, body) != "invalidated" || !strings.Contains(body, "403 bot removed") {
		t.Fatalf("GET of a tombstone = %d %s", status, body)
	}
	// The resolution body carries provenance.
	status, body, _ = f.rawHeaders(t, "POST", "/v1/instances/open/resolve", `{"session_key":"slack:T1:C1","fallbacks":[{"external_room_id":"C1b"},{"external_room_id":"C1c"}]}`, nil)
	if status != 200 || !strings.Contains(body, `"fallback_reason":"invalidated","origin":"provided_fallback","revision":`) || !strings.Contains(body, `"external_room_id":"C1c"`) {
		t.Fatalf("resolve past a tombstone = %d %s", status, body)
	}
}

func TestClientTrustAndOperations(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c := f.client(t, "sales", "s3cr3t")
	var r switchboard.Router = c
	k := switchboard.SessionKey{ChannelType: "telegram", BridgeID: "bot_1", RoomID: "dm_1"}
	user := switchboard.Route{ExternalRoomID: "-100dm"}
	if err := r.Set(ctx, k, user, switchboard.WithPriority(10), switchboard.WithWriter("inbound")); err != nil {
		t.Fatal(err)
	}
	if err := r.Set(ctx, k, switchboard.Route{ExternalRoomID: "-100group"}, switchboard.WithWriter("heartbeat")); !errors.Is(err, switchboard.ErrSuperseded) {
		t.Fatalf("heartbeat over the user route: %v, want ErrSuperseded", err)
	}
	rec, err := r.Get(ctx, k)
	if err != nil || rec.Writer != "inbound" || rec.Priority != 10 || rec.Origin != switchboard.OriginSet || rec.Revision == 0 {
		t.Fatalf("Get = %+v, %v", rec, err)
	}
	if err := r.Set(ctx, k, user, switchboard.IfRevision(rec.Revision+5), switchboard.WithPriority(10)); !errors.Is(err, switchboard.ErrConflict) {
		t.Fatalf("IfRevision mismatch: %v, want ErrConflict", err)
	}
	if err := r.Set(ctx, k, user, switchboard.IfRevision(rec.Revision), switchboard.WithPriority(10)); err != nil {
		t.Fatalf("IfRevision match: %v", err)
	}
	if err := r.Set(ctx, k, user, switchboard.IfAbsent(), switchboard.WithPriority(10)); !errors.Is(err, switchboard.ErrConflict) {
		t.Fatalf("IfAbsent over a fresh record: %v, want ErrConflict", err)
	}
	conf, err := r.Confirm(ctx, k, user)
	if err != nil || !conf.Confirmed {
		t.Fatalf("Confirm = %+v, %v", conf, err)
	}
	if _, err := r.Confirm(ctx, k, switchboard.Route{ExternalRoomID: "elsewhere"}); !errors.Is(err, switchboard.ErrConflict) {
		t.Fatalf("Confirm of another target: %v", err)
	}
	if err := r.Invalidate(ctx, k, user, "403 bot removed"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Get(ctx, k); !errors.Is(err, switchboard.ErrInvalidated) || !strings.Contains(err.Error(), "403 bot removed") {
		t.Fatalf("Get of a tombstone: %v", err)
	}
	res, err := r.Resolve(ctx, k, user, switchboard.Route{ExternalRoomID: "-100new"})
	if err != nil || res.ExternalRoomID != "-100new" || res.FallbackReason != switchboard.ReasonInvalidated || res.Origin != switchboard.OriginProvidedFallback {
		t.Fatalf("Resolve past the tombstone = %+v, %v", res, err)
	}
	// Explain, List and DeleteMatching answer as the Manager does.
	ex, err := r.Explain(ctx, k)
	want, _ := f.sales.Explain(ctx, k)
	if err != nil || ex.Resolution.ExternalRoomID != want.Resolution.ExternalRoomID || len(ex.Steps) != len(want.Steps) || ex.Steps[0].Found != want.Steps[0].Found {
		t.Fatalf("Explain over HTTP = %+v, %v; the Manager's %+v", ex, err, want)
	}
	ex, err = r.Explain(ctx, switchboard.SessionKey{ChannelType: "x", BridgeID: "y", RoomID: "z"})
	if err != nil || !errors.Is(ex.Err, switchboard.ErrNoRoute) {
		t.Fatalf("Explain of nothing = %+v, %v; want Err ErrNoRoute", ex, err)
	}
	for i := range 25 {
		if err := r.Set(ctx, switchboard.SessionKey{ChannelType: "slack", BridgeID: "T9", RoomID: "C" + string(rune('a'+i))}, switchboard.Route{ExternalRoomID: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	var listed []switchboard.Entry
	for cursor := ""; ; {
		page, next, err := r.List(ctx, switchboard.Filter{BridgeID: "T9"}, 7, cursor)
		if err != nil {
			t.Fatal(err)
		}
		listed = append(listed, page...)
		if next == "" {
			break
		}
		cursor = next
	}
	if len(listed) != 25 {
		t.Fatalf("listed %d routes of bridge T9, want 25", len(listed))
	}
	dry, err := r.DeleteMatching(ctx, switchboard.Filter{BridgeID: "T9"}, true)
	if err != nil || dry.Matched != 25 || dry.Deleted != 0 || len(dry.Sample) != 10 {
		t.Fatalf("dry run = %+v, %v", dry, err)
	}
	done, err := r.DeleteMatching(ctx, switchboard.Filter{BridgeID: "T9"}, false)
	if err != nil || done.Deleted != 25 {
		t.Fatalf("DeleteMatching = %+v, %v", done, err)
	}
	if _, err := r.DeleteMatching(ctx, switchboard.Filter{}, false); !errors.Is(err, switchboard.ErrInvalidOption) {
		t.Fatalf("DeleteMatching with a zero filter: %v", err)
	}
	if _, _, err := r.List(ctx, switchboard.Filter{}, 10, "garbage"); !errors.Is(err, switchboard.ErrInvalidOption) {
		t.Fatalf("List with a bad cursor: %v", err)
	}
}

// TestClientValidatesBeforeSending: what the Manager refuses, the client
// refuses with the same error, and sends nothing (JSON would turn invalid
// UTF-8 into U+FFFD and the server would store it).
func TestClientValidatesBeforeSending(t *testing.T) {
	var requests atomic.Int64
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { requests.Add(1); w.WriteHeader(204) })
	srv := httptest.NewServer(h)
	defer srv.Close()
	c, err := client.New(srv.URL, client.Options{HTTPClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	m, err := switchboard.New(switchboard.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()
	k := switchboard.SessionKey{ChannelType: "c", BridgeID: "b", RoomID: "r"}
	good := switchboard.Route{ExternalRoomID: "x"}
	calls := map[string]func(r switchboard.Router) error{
		"invalid UTF-8 in ExternalRoomID": func(r switchboard.Router) error { return r.Set(ctx, k, switchboard.Route{ExternalRoomID: "a\xffb"}) },
		"invalid UTF-8 in RoomID": func(r switchboard.Router) error {
			return r.Set(ctx, k, switchboard.Route{ExternalRoomID: "x", RoomID: "\xc3"})
		},
		"invalid UTF-8 in Meta": func(r switchboard.Router) error {
			return r.Set(ctx, k, switchboard.Route{ExternalRoomID: "x", Meta: map[string]string{"k": "\xff"}})
		},
		"sub-millisecond TTL": func(r switchboard.Router) error {
			return r.Set(ctx, k, good, switchboard.WithTTL(500*time.Microsecond))
		},
		"bad priority": func(r switchboard.Router) error { return r.Set(ctx, k, good, switchboard.WithPriority(5000)) },
		"both conditions": func(r switchboard.Router) error {
			return r.Set(ctx, k, good, switchboard.IfAbsent(), switchboard.IfRevision(3))
		},
		"bad key": func(r switchboard.Router) error { return r.Set(ctx, switchboard.SessionKey{RoomID: "r"}, good) },
		"confirm an invalid route": func(r switchboard.Router) error {
			_, err := r.Confirm(ctx, k, switchboard.Route{ExternalRoomID: "\xff"})
			return err
		},
		"invalidate without a reason": func(r switchboard.Router) error { return r.Invalidate(ctx, k, good, "") },
		"list with a bad filter": func(r switchboard.Router) error {
			_, _, err := r.List(ctx, switchboard.Filter{Scope: "x"}, 0, "")
			return err
		},
		"list with a bad limit": func(r switchboard.Router) error { _, _, err := r.List(ctx, switchboard.Filter{}, -3, ""); return err },
		"delete everything": func(r switchboard.Router) error {
			_, err := r.DeleteMatching(ctx, switchboard.Filter{}, false)
			return err
		},
	}
	for name, call := range calls {
		want := call(m)
		got := call(c)
		if want == nil || got == nil {
			t.Errorf("%s: Manager %v, client %v; want both refused", name, want, got)
			continue
		}
		for _, s := range []error{switchboard.ErrInvalidRoute, switchboard.ErrInvalidTTL, switchboard.ErrInvalidOption, switchboard.ErrInvalidSessionKey} {
			if errors.Is(want, s) != errors.Is(got, s) {
				t.Errorf("%s: Manager %v, client %v; want the same sentinel", name, want, got)
			}
		}
	}
	if n := requests.Load(); n != 0 {
		t.Fatalf("the client sent %d requests for input it should have refused", n)
	}
	// A fallback the Manager would skip is not sent (it would arrive valid).
	var body string
	srv2 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, _ := io.ReadAll(r.Body)
		body = string(data)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"external_room_id":"x","route":{"external_room_id":"x"},"partition":0,"session_key":"c:b:r","source":"provided_fallback","fallback":true,"stale":false,"fallback_reason":"miss","confirmed":false}`))
	}))
	defer srv2.Close()
	c2, _ := client.New(srv2.URL, client.Options{HTTPClient: srv2.Client()})
	if _, err := c2.Resolve(ctx, k, switchboard.Route{ExternalRoomID: "bad\xff"}, good); err != nil {
		t.Fatal(err)
	}
	var sent struct{ Fallbacks []switchboard.Route }
	if err := json.Unmarshal([]byte(body), &sent); err != nil || len(sent.Fallbacks) != 1 || sent.Fallbacks[0].ExternalRoomID != "x" {
		t.Fatalf("sent fallbacks %s, want only the valid one", body)
	}
}

// TestTransportErrorsSayWhetherApplied: a refused connection means nothing
// was applied; a request that timed out may have been.
func TestTransportErrorsSayWhetherApplied(t *testing.T) {
	ctx := context.Background()
	k := switchboard.SessionKey{ChannelType: "c", BridgeID: "b", RoomID: "r"}
	// A port nobody listens on.
	ln := httptest.NewServer(http.NotFoundHandler())
	addr := ln.URL
	ln.Close()
	c, _ := client.New(addr, client.Options{})
	err := c.Set(ctx, k, switchboard.Route{ExternalRoomID: "x"})
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Code != client.CodeTransport || errors.Is(err, switchboard.ErrOutcomeUnknown) {
		t.Fatalf("Set to a closed port: %v; want a transport error without ErrOutcomeUnknown", err)
	}
	// A server that takes the request and never answers in time.
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer slow.Close()
	defer close(release) // before Close, which waits for the handler
	c, _ = client.New(slow.URL, client.Options{HTTPClient: &http.Client{Timeout: 100 * time.Millisecond}})
	err = c.Set(ctx, k, switchboard.Route{ExternalRoomID: "x"})
	if !errors.As(err, &ce) || ce.Code != client.CodeTransport || !errors.Is(err, switchboard.ErrOutcomeUnknown) {
		t.Fatalf("Set to a server that does not answer: %v; want a transport error with ErrOutcomeUnknown", err)
	}
}

// TestUnavailableOverHTTP: an unavailable partition answers 503
// partition_unavailable without internal details (the node's address),
// Resolve with a fallback still answers, and /readyz says 503.
func TestUnavailableOverHTTP(t *testing.T) {
	fs := storetest.NewFaultStore(switchboard.NewMemoryStore())
	m, err := switchboard.New(switchboard.Config{PartitionCount: 2}, switchboard.WithStore(fs))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var logged strings.Builder
	h, err := server.New(server.Options{Instances: []server.Instance{{Name: "a", Manager: m}},
		Logger: slog.New(slog.NewTextHandler(&logged, nil)), ReadyTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	f := &fixture{srv: srv}
	k := switchboard.SessionKey{ChannelType: "c", BridgeID: "b", RoomID: "r"}
	p := m.RoutePartition(k)
	if status, _ := f.raw(t, "GET", "/readyz", "", ""); status != 200 {
		t.Fatalf("readyz with every partition up = %d", status)
	}
	fs.BreakPartition(p)
	status, body := f.raw(t, "PUT", "/v1/instances/a/routes/c:b:r", "", `{"route":{"external_room_id":"x"}}`)
	if status != 503 || errorCode(t, body) != "partition_unavailable" || strings.Contains(body, storetest.FaultOwner) || strings.Contains(body, "dial") {
		t.Fatalf("PUT on a down partition = %d %s; want 503 without internal details", status, body)
	}
	if !strings.Contains(logged.String(), storetest.FaultOwner) {
		t.Fatalf("the server log lacks the details: %s", logged.String())
	}
	status, body = f.raw(t, "POST", "/v1/instances/a/resolve", "", `{"session_key":"c:b:r","fallbacks":[{"external_room_id":"fb"}]}`)
	if status != 200 || !strings.Contains(body, `"fallback_reason":"session_unavailable"`) {
		t.Fatalf("resolve on a down partition = %d %s", status, body)
	}
	if status, body := f.raw(t, "GET", "/readyz", "", ""); status != 503 || strings.Contains(body, storetest.FaultOwner) {
		t.Fatalf("readyz with a partition down = %d %s", status, body)
	}
	c, _ := client.New(srv.URL, client.Options{Instance: "a", HTTPClient: srv.Client()})
	if _, err := c.Get(context.Background(), k); !errors.Is(err, switchboard.ErrPartitionUnavailable) {
		t.Fatalf("client Get: %v, want ErrPartitionUnavailable", err)
	}
	fs.HealPartition(p)
	if status, _ := f.raw(t, "GET", "/readyz", "", ""); status != 200 {
		t.Fatalf("readyz after recovery = %d", status)
	}
}

func TestNewEndpointsNeedTokens(t *testing.T) {
	f := newFixture(t)
	endpoints := []struct{ method, path, body string }{
		{"GET", "/v1/instances/sales/routes", ""},
		{"POST", "/v1/instances/sales/routes:delete", `{"filter":{"bridge_id":"x"},"dry_run":true}`},
		{"POST", "/v1/instances/sales/explain", `{"session_key":"slack:T1:C1"}`},
		{"POST", "/v1/instances/sales/confirm", `{"session_key":"slack:T1:C1","route":{"external_room_id":"x"}}`},
		{"POST", "/v1/instances/sales/invalidate", `{"session_key":"slack:T1:C1","route":{"external_room_id":"x"},"reason":"r"}`},
	}
	for _, e := range endpoints {
		for _, c := range []struct {
			token  string
			status int
		}{{"", 401}, {"wrong", 401}, {"support-token", 403}, {"s3cr3t", 0}} {
			status, body := f.raw(t, e.method, e.path, c.token, e.body)
			if c.status == 0 {
				if status == 401 || status == 403 || status >= 500 {
					t.Errorf("%s %s with the right token: %d %s", e.method, e.path, status, body)
				}
				continue
			}
			if status != c.status {
				t.Errorf("%s %s with token %q: %d, want %d", e.method, e.path, c.token, status, c.status)
			}
		}
	}
}
