package server_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestHTTPByTheBook: each request of this table was answered wrongly by an
// earlier server (found with tools nobody on the project wrote); each now
// gets the documented answer, in the JSON envelope.
func TestHTTPByTheBook(t *testing.T) {
	f := newFixture(t)
	routes := "/v1/instances/open/routes/"
	tests := []struct {
		name, method, path, body string
		hdr                      map[string]string
		status                   int
		code                     string
		message                  string // a substring of the error message
		header                   [2]string
	}{
		{name: "member names are case-sensitive", method: "PUT", path: routes + "a:b:c", body: `{"ROUTE":{"External_Room_ID":"r"},"TTL_MS":60000}`,
			status: 400, code: "invalid_json", message: "unknown member /ROUTE"},
		{name: "nested names are case-sensitive", method: "PUT", path: routes + "a:b:c", body: `{"route":{"External_Room_ID":"r"}}`,
			status: 400, code: "invalid_json", message: "/route/External_Room_ID"},
		{name: "resolve names are case-sensitive", method: "POST", path: "/v1/instances/open/resolve", body: `{"Session_Key":"a:b:c"}`,
			status: 400, code: "invalid_json", message: "unknown member /Session_Key"},
		{name: "duplicate members", method: "PUT", path: routes + "a:b:c", body: `{"route":{"external_room_id":"a","external_room_id":"b"}}`,
			status: 400, code: "invalid_json", message: "duplicate member /route/external_room_id"},
		{name: "invalid UTF-8 in a string", method: "PUT", path: routes + "a:b:c", body: "{\"route\":{\"external_room_id\":\"a\xffb\"}}",
			status: 400, code: "invalid_json", message: "invalid UTF-8"},
		{name: "wire names in type errors", method: "PUT", path: routes + "a:b:c", body: `{"route":{"external_room_id":"r"},"ttl_ms":"soon"}`,
			status: 400, code: "invalid_json", message: "at /ttl_ms: a JSON string is not allowed here, want an integer"},
		{name: "wire names in validation errors", method: "PUT", path: routes + "a:b:c", body: `{"route":{"external_room_id":""}}`,
			status: 400, code: "invalid_route", message: "external_room_id is empty"},
		{name: "405 says what is allowed", method: "PATCH", path: routes + "a:b:c", status: 405, code: "method_not_allowed",
			header: [2]string{"Allow", "PUT, GET, HEAD, DELETE"}},
		{name: "405 on a POST endpoint", method: "GET", path: "/v1/instances/open/resolve", status: 405, code: "method_not_allowed",
			header: [2]string{"Allow", "POST"}},
		{name: "a double slash is not redirected", method: "GET", path: "//v1/instances/open/config", status: 404, code: "not_found"},
		{name: "dot segments are not redirected", method: "GET", path: "/v1/instances/open/partitions/../config", status: 404, code: "not_found"},
		{name: "a dot segment is not redirected", method: "GET", path: "/v1/instances/open/./config", status: 404, code: "not_found"},
		{name: "a trailing dot segment is not redirected", method: "GET", path: "/v1/instances/open/config/.", status: 404, code: "not_found"},
		{name: "a trailing dot-dot segment is not redirected", method: "GET", path: "/v1/instances/open/config/x/..", status: 404, code: "not_found"},
		{name: "dots inside a key are not dot segments", method: "PUT", path: routes + "a.:..b:.c.", body: `{"route":{"external_room_id":""}}`,
			status: 400, code: "invalid_route", message: "external_room_id is empty"},
		{name: "a trailing slash is not redirected", method: "GET", path: "/v1/instances/open/config/", status: 404, code: "not_found"},
		{name: "headers too large", method: "GET", path: "/v1/instances/open/config", hdr: map[string]string{"X-Big": strings.Repeat("x", 70<<10)},
			status: 431, code: "header_too_large"},
		{name: "a body that is not JSON by type", method: "PUT", path: routes + "a:b:c", body: `<route/>`, hdr: map[string]string{"Content-Type": "application/xml"},
			status: 415, code: "unsupported_media_type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body, hdr := f.rawHeaders(t, tt.method, tt.path, tt.body, tt.hdr)
			if status != tt.status || errorCode(t, body) != tt.code || !strings.Contains(body, tt.message) {
				t.Fatalf("%s %s = %d %s, want %d %s mentioning %q", tt.method, tt.path, status, body, tt.status, tt.code, tt.message)
			}
			if ct := hdr.Get("Content-Type"); ct != "application/json" {
				t.Fatalf("Content-Type %q, want application/json", ct)
			}
			if tt.header[0] != "" && hdr.Get(tt.header[0]) != tt.header[1] {
				t.Fatalf("%s: %q, want %q", tt.header[0], hdr.Get(tt.header[0]), tt.header[1])
			}
		})
	}
	// What curl -d sends (a form content type) is read as JSON, as the
	// README's examples do; so is a body without a Content-Type.
	for _, ct := range []string{"application/x-www-form-urlencoded", "", "application/json; charset=utf-8"} {
		status, body, _ := f.rawHeaders(t, "PUT", routes+"a:b:c", `{"route":{"external_room_id":"r"}}`, map[string]string{"Content-Type": ct})
		if status != 204 {
			t.Fatalf("PUT with Content-Type %q = %d %s", ct, status, body)
		}
	}
}

func TestRequestIDs(t *testing.T) {
	f := newFixture(t)
	_, _, hdr := f.rawHeaders(t, "GET", "/healthz", "", map[string]string{"X-Request-Id": "req-42.a:b"})
	if got := hdr.Get("X-Request-Id"); got != "req-42.a:b" {
		t.Fatalf("a sane request id is echoed: got %q", got)
	}
	seen := map[string]bool{}
	for _, bad := range []string{"", "has space", strings.Repeat("x", 129), "semi;colon"} {
		_, _, hdr := f.rawHeaders(t, "GET", "/v1/instances/open/routes/x:y:z", "", map[string]string{"X-Request-Id": bad})
		got := hdr.Get("X-Request-Id")
		if got == "" || got == bad || seen[got] {
			t.Fatalf("request id %q: answered %q, want a new one", bad, got)
		}
		seen[got] = true
	}
	// Every answer has one, errors included.
	resp, err := http.Get(f.srv.URL + "/nowhere")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("X-Request-Id") == "" {
		t.Fatal("a 404 has no X-Request-Id")
	}
}

// A body too large is refused whether it declares its length (refused
// unread) or comes chunked (refused once the reading passes the limit), and
// a chunked body within the limit is read whole.
func TestBodyLengths(t *testing.T) {
	f := newFixture(t)
	path := f.srv.URL + "/v1/instances/open/routes/slack:T1:C7"
	big := `{"route":{"external_room_id":"` + strings.Repeat("x", 70<<10) + `"}}`
	tests := []struct {
		name    string
		body    string
		chunked bool
		status  int
	}{
		{"declared, too large", big, false, 413},
		{"chunked, too large", big, true, 413},
		{"chunked, fits", `{"route":{"external_room_id":"C7"}}`, true, 204},
		{"declared, fits", `{"route":{"external_room_id":"C7"}}`, false, 204},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader = strings.NewReader(tt.body)
			if tt.chunked {
				body = io.MultiReader(body) // hides the length: sent chunked
			}
			req, err := http.NewRequest("PUT", path, body)
			if err != nil {
				t.Fatal(err)
			}
			if tt.chunked != (req.ContentLength == 0) {
				t.Fatalf("ContentLength %d, chunked %v", req.ContentLength, tt.chunked)
			}
			resp, err := f.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			data, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("PUT = %d %s, want %d", resp.StatusCode, data, tt.status)
			}
			if tt.status == 413 && errorCode(t, string(data)) != "body_too_large" {
				t.Fatalf("PUT = %s, want body_too_large", data)
			}
		})
	}
}
