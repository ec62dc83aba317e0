package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/switchboard-go/switchboard"
	"github.com/switchboard-go/switchboard/api"
	"github.com/switchboard-go/switchboard/client"
	"github.com/switchboard-go/switchboard/server"
	"github.com/switchboard-go/switchboard/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type fixture struct {
	srv   *httptest.Server
	clock *storetest.Clock
	open  *switchboard.Manager // instance "open": no tokens
	sales *switchboard.Manager // instance "sales": token "s3cr3t"
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{clock: storetest.NewClock(time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC))}
	var err error
	if f.open, err = switchboard.New(switchboard.Config{PartitionCount: 4, TTL: time.Hour}, switchboard.WithClock(f.clock.Now)); err != nil {
		t.Fatal(err)
	}
	if f.sales, err = switchboard.New(switchboard.Config{PartitionCount: 2, TTL: 5 * time.Minute}, switchboard.WithClock(f.clock.Now)); err != nil {
		t.Fatal(err)
	}
	support, err := switchboard.New(switchboard.Config{})
	if err != nil {
		t.Fatal(err)
	}
	h, err := server.New(server.Options{
		Instances: []server.Instance{
			{Name: "open", Manager: f.open},
			{Name: "sales", Manager: f.sales, Tokens: []string{"s3cr3t", "rotated"}},
			{Name: "support", Manager: support, Tokens: []string{"support-token"}},
		},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(h)
	validate(t, f.srv.Client()) // every request of the test is held to the API document
	t.Cleanup(func() {
		f.srv.Close()
		_ = f.open.Close()
		_ = f.sales.Close()
		_ = support.Close()
	})
	return f
}

func (f *fixture) client(t *testing.T, instance, token string) *client.Client {
	t.Helper()
	c, err := client.New(f.srv.URL, client.Options{Instance: instance, Token: token, HTTPClient: f.srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// raw sends a request and returns the status and body.
func (f *fixture) raw(t *testing.T, method, path, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}

func errorCode(t *testing.T, body string) string {
	t.Helper()
	var eb struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal([]byte(body), &eb); err != nil || eb.Error.Code == "" || eb.Error.Message == "" {
		t.Fatalf("body %q is not the error envelope", body)
	}
	return eb.Error.Code
}

func TestClientRoundTrip(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c := f.client(t, "sales", "s3cr3t")
	var r switchboard.Router = c
	room := switchboard.SessionKey{ChannelType: "matrix", BridgeID: "b", RoomID: "!abc:matrix.org"}
	thread := room
	thread.ThreadID = "$ev/1"
	route := switchboard.Route{ExternalRoomID: "!abc:matrix.org", ChannelType: "matrix", Meta: map[string]string{"lang": "de"}}
	if err := r.Set(ctx, room, route, switchboard.WithTTL(10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	rec, err := r.Get(ctx, room)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Route.ExternalRoomID != route.ExternalRoomID || rec.Route.Meta["lang"] != "de" ||
		!rec.UpdatedAt.Equal(f.clock.Now()) || !rec.ExpiresAt.Equal(f.clock.Now().Add(10*time.Minute)) {
		t.Fatalf("Get = %+v", rec)
	}
	res, err := r.Resolve(ctx, thread)
	if err != nil || res.Source != switchboard.SourcePartitionFallback || res.FallbackReason != switchboard.ReasonThreadScopeMiss ||
		res.SessionKey != thread || res.Partition != f.sales.RoutePartition(thread) || res.ExternalRoomID != route.ExternalRoomID {
		t.Fatalf("Resolve = %+v, %v", res, err)
	}
	other := switchboard.SessionKey{ChannelType: "telegram", BridgeID: "bot", RoomID: "-100"}
	if res, err = r.Resolve(ctx, other, switchboard.Route{}, switchboard.Route{ExternalRoomID: "-100"}); err != nil ||
		res.Source != switchboard.SourceProvidedFallback || res.FallbackReason != switchboard.ReasonMiss {
		t.Fatalf("Resolve with fallback = %+v, %v", res, err)
	}
	if _, err := r.Resolve(ctx, switchboard.SessionKey{ChannelType: "x", BridgeID: "y", RoomID: "z"}); !errors.Is(err, switchboard.ErrNoRoute) {
		t.Fatalf("Resolve without state: %v, want ErrNoRoute", err)
	}
	f.clock.Advance(10 * time.Minute)
	if _, err := r.Get(ctx, room); !errors.Is(err, switchboard.ErrExpired) {
		t.Fatalf("Get after expiry: %v, want ErrExpired", err)
	}
	if _, err := r.Get(ctx, room); !errors.Is(err, switchboard.ErrNotFound) {
		t.Fatalf("second Get: %v, want ErrNotFound", err)
	}
	pr, err := r.Prune(ctx)
	if err != nil || pr.Partitions != 2 || pr.Pruned != 2 { // the thread copy and the fallback, 5 minutes each
		t.Fatalf("Prune = %+v, %v", pr, err)
	}
	if err := r.Delete(ctx, other); !errors.Is(err, switchboard.ErrNotFound) {
		t.Fatalf("Delete of a pruned key: %v", err)
	}
	if err := r.Set(ctx, other, switchboard.Route{ExternalRoomID: "x"}); err != nil {
		t.Fatal(err)
	}
	if err := r.Delete(ctx, other); err != nil {
		t.Fatal(err)
	}
	st, err := r.PartitionStatus(ctx, 1)
	if err != nil || st.Index != 1 || st.Owner != "memory" || !st.Available || st.Capacity != 10000 {
		t.Fatalf("PartitionStatus = %+v, %v", st, err)
	}
	if _, err := r.PartitionStatus(ctx, 7); !errors.Is(err, switchboard.ErrNotFound) {
		t.Fatalf("PartitionStatus(7): %v", err)
	}
	sts, err := c.Partitions(ctx)
	if err != nil || len(sts) != 2 {
		t.Fatalf("Partitions = %+v, %v", sts, err)
	}
	cfg, err := c.Config(ctx)
	if err != nil || cfg.PartitionCount != 2 || cfg.TTL != 5*time.Minute || cfg.MaxEntriesPerPartition != 10000 || cfg.PruneInterval != 30*time.Second {
		t.Fatalf("Config = %+v, %v", cfg, err)
	}
	if n, err := c.PartitionCount(ctx); err != nil || n != 2 {
		t.Fatalf("PartitionCount = %d, %v", n, err)
	}
	// Percents, colons and slashes in keys survive the path.
	odd := switchboard.SessionKey{ChannelType: "x", BridgeID: "100%", RoomID: "a/b:c", ThreadID: "%3A"}
	if err := r.Set(ctx, odd, switchboard.Route{ExternalRoomID: "odd"}); err != nil {
		t.Fatal(err)
	}
	if rec, err := f.sales.Get(ctx, odd); err != nil || rec.Route.ExternalRoomID != "odd" {
		t.Fatalf("the server stored %+v, %v for %#v", rec, err, odd)
	}
	if rec, err := r.Get(ctx, odd); err != nil || rec.Route.ExternalRoomID != "odd" {
		t.Fatalf("Get(%#v) = %+v, %v", odd, rec, err)
	}
	if err := r.Delete(ctx, odd); err != nil {
		t.Fatal(err)
	}
	// Bad input is refused before the wire where the client can tell.
	if err := r.Set(ctx, switchboard.SessionKey{}, route); !errors.Is(err, switchboard.ErrInvalidSessionKey) {
		t.Fatalf("Set with an invalid key: %v", err)
	}
	if err := r.Set(ctx, room, switchboard.Route{}); !errors.Is(err, switchboard.ErrInvalidRoute) {
		t.Fatalf("Set with an invalid route: %v", err)
	}
	if err := r.Set(ctx, room, route, switchboard.WithTTL(time.Microsecond)); !errors.Is(err, switchboard.ErrInvalidTTL) {
		t.Fatalf("Set with a sub-millisecond TTL: %v", err)
	}
}

func TestErrorCodes(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	key := switchboard.SessionKey{ChannelType: "slack", BridgeID: "T1", RoomID: "C1"}
	if err := f.open.Set(ctx, key, switchboard.Route{ExternalRoomID: "C1"}, switchboard.WithTTL(time.Minute)); err != nil {
		t.Fatal(err)
	}
	routes := "/v1/instances/open/routes/"
	big := `{"route":{"external_room_id":"` + strings.Repeat("x", 70<<10) + `"}}`
	var fallbacks []string
	for range 17 {
		fallbacks = append(fallbacks, `{"external_room_id":"x"}`)
	}
	tests := []struct {
		name, method, path, token, body string
		status                          int
		code                            string
	}{
		{"not_found", "GET", routes + "slack:T1:C2", "", "", 404, "not_found"},
		{"no_route", "POST", "/v1/instances/open/resolve", "", `{"session_key":"slack:T1:C9"}`, 404, "no_route"},
		{"invalid key in path", "GET", routes + "slack:T1", "", "", 400, "invalid_session_key"},
		{"bad escape in path", "GET", routes + url.PathEscape("slack:T1:C%zz"), "", "", 400, "invalid_session_key"},
		{"invalid key in body", "POST", "/v1/instances/open/resolve", "", `{"session_key":"::"}`, 400, "invalid_session_key"},
		{"invalid route", "PUT", routes + "slack:T1:C1", "", `{"route":{"external_room_id":""}}`, 400, "invalid_route"},
		{"control char in route", "PUT", routes + "slack:T1:C1", "", `{"route":{"external_room_id":"a\u0000b"}}`, 400, "invalid_route"},
		{"too many fallbacks", "POST", "/v1/instances/open/resolve", "", `{"session_key":"slack:T1:C1","fallbacks":[` + strings.Join(fallbacks, ",") + `]}`, 400, "invalid_route"},
		{"invalid ttl", "PUT", routes + "slack:T1:C1", "", `{"route":{"external_room_id":"x"},"ttl_ms":0}`, 400, "invalid_ttl"},
		{"negative ttl", "PUT", routes + "slack:T1:C1", "", `{"route":{"external_room_id":"x"},"ttl_ms":-5}`, 400, "invalid_ttl"},
		{"unknown field", "PUT", routes + "slack:T1:C1", "", `{"route":{"external_room_id":"x"},"ttl":5}`, 400, "invalid_json"},
		{"unknown nested field", "PUT", routes + "slack:T1:C1", "", `{"route":{"external_room_id":"x","color":"red"}}`, 400, "invalid_json"},
		{"not json", "PUT", routes + "slack:T1:C1", "", `route=x`, 400, "invalid_json"},
		{"empty body", "POST", "/v1/instances/open/resolve", "", ``, 400, "invalid_json"},
		{"trailing data", "POST", "/v1/instances/open/resolve", "", `{"session_key":"slack:T1:C1"} {}`, 400, "invalid_json"},
		{"wrong type", "PUT", routes + "slack:T1:C1", "", `{"route":{"external_room_id":5}}`, 400, "invalid_json"},
		{"body too large", "PUT", routes + "slack:T1:C1", "", big, 413, "body_too_large"},
		{"unauthorized", "GET", "/v1/instances/sales/config", "", "", 401, "unauthorized"},
		{"wrong token", "GET", "/v1/instances/sales/config", "nope", "", 401, "unauthorized"},
		{"forbidden", "GET", "/v1/instances/sales/config", "support-token", "", 403, "forbidden"},
		{"unknown instance", "GET", "/v1/instances/nobody/config", "s3cr3t", "", 404, "unknown_instance"},
		{"unknown instance without a token", "GET", "/v1/instances/nobody/config", "", "", 401, "unauthorized"}, // as for an instance that needs one
		{"bad partition", "GET", "/v1/instances/open/partitions/x", "", "", 404, "not_found"},
		{"partition out of range", "GET", "/v1/instances/open/partitions/4", "", "", 404, "not_found"},
		{"method not allowed", "PATCH", routes + "slack:T1:C1", "", "", 405, "method_not_allowed"},
		{"no such endpoint", "GET", "/v2/whatever", "", "", 404, "not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := f.raw(t, tt.method, tt.path, tt.token, tt.body)
			if status != tt.status || errorCode(t, body) != tt.code {
				t.Fatalf("%s %s = %d %s, want %d %s", tt.method, tt.path, status, body, tt.status, tt.code)
			}
		})
	}
	// Nothing stored was changed by the bad requests.
	rec, err := f.open.Get(ctx, key)
	if err != nil || rec.Route.ExternalRoomID != "C1" {
		t.Fatalf("record after bad requests = %+v, %v", rec, err)
	}
	// expired: 410.
	f.clock.Advance(time.Minute)
	if status, body := f.raw(t, "GET", routes+"slack:T1:C1", "", ""); status != 410 || errorCode(t, body) != "expired" {
		t.Fatalf("expired: %d %s", status, body)
	}
}

func TestSuccessBodies(t *testing.T) {
	f := newFixture(t)
	key := "matrix:b:" + url.PathEscape("!abc%3Amatrix.org") // the escaped colon survives path escaping
	status, body := f.raw(t, "PUT", "/v1/instances/open/routes/"+key, "", `{"route":{"external_room_id":"!abc:matrix.org"},"ttl_ms":60000}`)
	if status != 204 || body != "" {
		t.Fatalf("PUT = %d %q", status, body)
	}
	k := switchboard.SessionKey{ChannelType: "matrix", BridgeID: "b", RoomID: "!abc:matrix.org"}
	if _, err := f.open.Get(context.Background(), k); err != nil {
		t.Fatalf("the PUT key did not round-trip to %v: %v", k, err)
	}
	now := f.clock.Now().UnixMilli()
	checks := []struct {
		method, path, body string
		want               string // regexp over the JSON body
	}{
		{"GET", "/v1/instances/open/routes/" + key, "", fmt.Sprintf(`^\{"route":\{"external_room_id":"!abc:matrix.org"\},"updated_at_ms":%d,"expires_at_ms":%d,"partition":\d,"origin":"set","priority":0,"revision":1,"confirmed":false\}`, now, now+60000)},
		{"POST", "/v1/instances/open/resolve", `{"session_key":"matrix:b:!abc%3Amatrix.org:$t","fallbacks":[]}`,
			`^\{"external_room_id":"!abc:matrix.org","route":\{.*\},"partition":\d,"session_key":"matrix:b:!abc%3Amatrix.org:\$t","source":"partition_fallback","fallback":true,"stale":false,"fallback_reason":"thread_scope_miss","origin":"partition_fallback","revision":2,"confirmed":false\}`},
		{"POST", "/v1/instances/open/prune", "", `^\{"pruned":0,"partitions":4\}`},
		{"GET", "/v1/instances/open/partitions", "", `^\[(\{"index":\d,"owner":"memory","available":true,"entries":\d,"capacity":10000\},?){4}\]`},
		{"GET", "/v1/instances/open/partitions/3", "", `^\{"index":3,"owner":"memory","available":true,"entries":\d,"capacity":10000\}`},
		{"GET", "/v1/instances/open/config", "", `^\{"partition_count":4,"ttl_ms":3600000,"max_entries_per_partition":10000,"prune_interval_ms":30000,"provisional_ttl_ms":3600000,"capacity":40000\}`},
		{"GET", "/healthz", "", `"ok"`},
		{"GET", "/readyz", "", `"ready"`},
		{"GET", "/v1/openapi.yaml", "", `^openapi: 3`},
	}
	for _, c := range checks {
		status, body := f.raw(t, c.method, c.path, "", c.body)
		if status != 200 || !regexp.MustCompile(c.want).MatchString(body) {
			t.Errorf("%s %s = %d %s, want 200 matching %s", c.method, c.path, status, body, c.want)
		}
	}
	if status, _ := f.raw(t, "DELETE", "/v1/instances/open/routes/"+key, "", ""); status != 204 {
		t.Fatalf("DELETE = %d", status)
	}
	if status, body := f.raw(t, "DELETE", "/v1/instances/open/routes/"+key, "", ""); status != 404 || errorCode(t, body) != "not_found" {
		t.Fatalf("second DELETE = %d %s", status, body)
	}
}

// TestAuthMatrix: every endpoint of a tokened instance with no token, a
// wrong one, another instance's, and the right one (both of its tokens);
// the open endpoints need none.
func TestAuthMatrix(t *testing.T) {
	f := newFixture(t)
	endpoints := []struct{ method, path, body string }{
		{"PUT", "/v1/instances/sales/routes/slack:T1:C1", `{"route":{"external_room_id":"x"}}`},
		{"GET", "/v1/instances/sales/routes/slack:T1:C1", ""},
		{"POST", "/v1/instances/sales/resolve", `{"session_key":"slack:T1:C1"}`},
		{"POST", "/v1/instances/sales/prune", ""},
		{"GET", "/v1/instances/sales/partitions", ""},
		{"GET", "/v1/instances/sales/partitions/0", ""},
		{"GET", "/v1/instances/sales/config", ""},
		{"DELETE", "/v1/instances/sales/routes/slack:T1:C1", ""},
	}
	for _, e := range endpoints {
		for _, c := range []struct {
			token  string
			status int
		}{{"", 401}, {"wrong", 401}, {"support-token", 403}, {"s3cr3t", 0}, {"rotated", 0}} {
			status, body := f.raw(t, e.method, e.path, c.token, e.body)
			if c.status == 0 { // authorized: anything but 401 and 403 (a second DELETE is a 404)
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
	for _, p := range []string{"/healthz", "/readyz", "/metrics", "/v1/openapi.yaml"} {
		if status, _ := f.raw(t, "GET", p, "", ""); status != 200 {
			t.Errorf("GET %s without a token: %d", p, status)
		}
	}
	// A wrong scheme is no token.
	req, _ := http.NewRequest("GET", f.srv.URL+"/v1/instances/sales/config", nil)
	req.Header.Set("Authorization", "Basic czNjcjN0")
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") == "" {
		t.Fatalf("Basic auth: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
}

// TestOpenAPIMatchesRoutes: every route the server registers is in the
// OpenAPI document and every operation of the document is served.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	m, err := switchboard.New(switchboard.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	h, err := server.New(server.Options{Instances: []server.Instance{{Name: "default", Manager: m}}})
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	path := ""
	pathRe := regexp.MustCompile(`^  (/\S*):\s*$`)
	opRe := regexp.MustCompile(`^    (get|put|post|delete|patch|head):`)
	for _, line := range strings.Split(string(api.OpenAPI()), "\n") {
		if m := pathRe.FindStringSubmatch(line); m != nil {
			path = m[1]
		} else if m := opRe.FindStringSubmatch(line); m != nil && path != "" {
			documented = append(documented, strings.ToUpper(m[1])+" "+path)
		} else if !strings.HasPrefix(line, " ") && line != "" {
			path = ""
		}
	}
	served := h.Routes()
	slices.Sort(documented)
	slices.Sort(served)
	if !slices.Equal(documented, served) {
		t.Fatalf("OpenAPI operations\n %v\nserver routes\n %v", documented, served)
	}
}

// TestConcurrentClients: 64 clients doing mixed set and resolve for a
// bounded time; no errors (and no races under -race).
func TestConcurrentClients(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	var total sync.Map
	for w := range 64 {
		wg.Go(func() {
			c := f.client(t, "sales", "s3cr3t")
			n := 0
			for i := 0; ctx.Err() == nil && i < 5000; i++ {
				k := switchboard.SessionKey{ChannelType: "slack", BridgeID: "T1", RoomID: fmt.Sprintf("C%d", (w*31+i)%200), ThreadID: fmt.Sprint(i % 3)}
				var err error
				if i%2 == 0 {
					err = c.Set(context.Background(), k, switchboard.Route{ExternalRoomID: k.RoomID})
				} else {
					var res switchboard.Resolution
					res, err = c.Resolve(context.Background(), k, switchboard.Route{ExternalRoomID: k.RoomID})
					if err == nil && res.ExternalRoomID != k.RoomID {
						err = fmt.Errorf("Resolve(%v) = %q", k, res.ExternalRoomID)
					}
				}
				if err != nil {
					errs <- err
					return
				}
				n++
			}
			total.Store(w, n)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	sum := 0
	total.Range(func(_, v any) bool { sum += v.(int); return true })
	if sum < 64 {
		t.Fatalf("only %d requests completed", sum)
	}
	t.Logf("%d requests from 64 clients", sum)
}

// FuzzDecodeRequests throws arbitrary bodies at the endpoints that decode
// JSON: never a 5xx, always the error envelope on failure, and nothing
// stored unless the answer says so.
func FuzzDecodeRequests(f *testing.F) {
	f.Add("PUT", `{"route":{"external_room_id":"x","meta":{"a":"b"}},"ttl_ms":1000}`)
	f.Add("POST", `{"session_key":"slack:T1:C1","fallbacks":[{"external_room_id":"x"}]}`)
	f.Add("POST", `{"session_key":"a:b:c:d:e"}`)
	f.Add("PUT", `{"route":null}`)
	f.Add("PUT", `[]`)
	m, err := switchboard.New(switchboard.Config{PartitionCount: 2})
	if err != nil {
		f.Fatal(err)
	}
	defer m.Close()
	h, err := server.New(server.Options{Instances: []server.Instance{{Name: "default", Manager: m}}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, method, body string) {
		path := "/v1/instances/default/resolve"
		if method != "POST" {
			method, path = "PUT", "/v1/instances/default/routes/slack:T1:C1"
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, path, bytes.NewBufferString(body)))
		if rec.Code >= 500 {
			t.Fatalf("%s %s %q: %d %s", method, path, body, rec.Code, rec.Body)
		}
		if rec.Code >= 400 {
			var eb struct {
				Error struct{ Code, Message string }
			}
			if json.Unmarshal(rec.Body.Bytes(), &eb) != nil || eb.Error.Code == "" {
				t.Fatalf("%q: error body %q is not the envelope", body, rec.Body)
			}
		}
	})
}
