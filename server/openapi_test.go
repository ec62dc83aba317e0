package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/switchboard-go/switchboard/api"
)

// The API document is checked against the server itself: every request
// and response of the server tests goes through validator, which holds
// them to api/openapi.yaml with kin-openapi's openapi3filter: a request
// the document calls invalid must be refused (4xx), one it calls valid
// must not be refused as malformed (400) but for the few rules a schema
// cannot state (listed in semanticRefusals); every response must be of a
// status the document lists for the operation and match its schema. A new
// endpoint or field cannot drift from the document without failing here.

var (
	docOnce   sync.Once
	docRouter routers.Router
	docErr    error
)

func apiRouter(t *testing.T) routers.Router {
	t.Helper()
	docOnce.Do(func() {
		loader := openapi3.NewLoader()
		doc, err := loader.LoadFromData(api.OpenAPI())
		if err != nil {
			docErr = err
			return
		}
		if err := doc.Validate(context.Background()); err != nil {
			docErr = fmt.Errorf("the document is not valid OpenAPI: %w", err)
			return
		}
		doc.Servers = nil // match the test servers' random ports
		docRouter, docErr = gorillamux.NewRouter(doc)
	})
	if docErr != nil {
		t.Fatal(docErr)
	}
	return docRouter
}

// semanticRefusals are the 400 answers to requests a schema cannot tell
// from valid ones: a condition given twice, an empty filter for a real
// delete, a cursor List did not hand out, query parameters the document
// does not list (or repeats), and byte limits of text outside ASCII.
var semanticRefusals = map[string]bool{"invalid_option": true}

type validator struct {
	t    *testing.T
	next http.RoundTripper
	mu   sync.Mutex
	seen int
}

// validate makes every request of the server's own client go through the
// document's checks.
func validate(t *testing.T, c *http.Client) *validator {
	v := &validator{t: t, next: c.Transport}
	if v.next == nil {
		v.next = http.DefaultTransport
	}
	apiRouter(t)
	c.Transport = v
	return v
}

func (v *validator) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		req.Body.Close()
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	resp, err := v.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	respBody, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(respBody))
	v.check(req, body, resp, respBody)
	return resp, nil
}

func (v *validator) fail(format string, args ...any) {
	v.t.Errorf("OpenAPI: "+format, args...)
}

func (v *validator) check(req *http.Request, reqBody []byte, resp *http.Response, respBody []byte) {
	v.mu.Lock()
	v.seen++
	v.mu.Unlock()
	desc := req.Method + " " + req.URL.RequestURI()
	if len(desc) > 200 {
		desc = desc[:200] + "…"
	}
	code := ""
	if resp.StatusCode >= 400 {
		var eb struct {
			Error struct{ Code string }
		}
		if json.Unmarshal(respBody, &eb) != nil || eb.Error.Code == "" {
			v.fail("%s answered %d without the error envelope: %.200s", desc, resp.StatusCode, respBody)
		}
		code = eb.Error.Code
	}
	r := req.Clone(context.Background())
	r.Body = io.NopCloser(bytes.NewReader(reqBody))
	// The document's bodies are application/json; the server also reads a
	// body without a Content-Type, or with curl -d's form type, as JSON.
	if ct := r.Header.Get("Content-Type"); len(reqBody) > 0 && (ct == "" || ct == "application/x-www-form-urlencoded") {
		r.Header.Set("Content-Type", "application/json")
	}
	route, params, err := docRouter.FindRoute(r)
	if err != nil { // no such operation in the document
		if resp.StatusCode < 400 {
			v.fail("%s is not in the document but answered %d", desc, resp.StatusCode)
		}
		return
	}
	for k, p := range params { // the router hands them over still path-escaped
		if u, err := url.PathUnescape(p); err == nil {
			params[k] = u
		}
	}
	in := &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	reqErr := openapi3filter.ValidateRequest(context.Background(), in)
	// kin-openapi's JSON reader is lenient; JSON itself (RFC 8259: valid
	// UTF-8, unique member names, one value) is the document's too.
	if reqErr == nil && len(reqBody) > 0 && route.Operation.RequestBody != nil && !jsontext.Value(reqBody).IsValid() {
		reqErr = errors.New("the body is not valid JSON (RFC 8259)")
	}
	switch {
	case reqErr != nil && resp.StatusCode < 400:
		v.fail("%s is invalid by the document (%v) but the server answered %d", desc, firstLine(reqErr), resp.StatusCode)
	case reqErr == nil && resp.StatusCode == http.StatusBadRequest && !semanticRefusals[code]:
		v.fail("%s is valid by the document but the server refused it: %d %.200s", desc, resp.StatusCode, respBody)
	}
	if reqErr != nil && resp.StatusCode >= 400 {
		return // a refused invalid request: its answer is the error envelope, checked above
	}
	if route.Operation.Responses.Status(resp.StatusCode) == nil {
		v.fail("%s answered %d, a status the document does not list for %s", desc, resp.StatusCode, route.Operation.OperationID)
		return
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
		Body: io.NopCloser(bytes.NewReader(respBody)), Options: &openapi3filter.Options{IncludeResponseStatus: true}}
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		v.fail("%s: the %d answer does not match the document: %v\n%.300s", desc, resp.StatusCode, firstLine(err), respBody)
	}
}

func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

// TestOpenAPIDocument: the document is valid OpenAPI 3, every operation
// has an operationId and tags, and the validator is live (it flags a
// response that breaks the document).
func TestOpenAPIDocument(t *testing.T) {
	router := apiRouter(t)
	doc, _ := openapi3.NewLoader().LoadFromData(api.OpenAPI())
	ids := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			if op.OperationID == "" || len(op.Tags) == 0 {
				t.Errorf("%s %s: operationId %q, tags %v", method, path, op.OperationID, op.Tags)
			}
			if ids[op.OperationID] {
				t.Errorf("operationId %q used twice", op.OperationID)
			}
			ids[op.OperationID] = true
		}
	}
	if doc.Info.License == nil || doc.Info.License.Name == "" {
		t.Error("no license in the document")
	}
	// A deliberately wrong answer is caught.
	req, _ := http.NewRequest("GET", "http://127.0.0.1:7420/v1/instances/a/config", nil)
	route, params, err := router.FindRoute(req)
	if err != nil {
		t.Fatal(err)
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	bad := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: 200,
		Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(strings.NewReader(`{"partition_count":"four"}`))}
	if openapi3filter.ValidateResponse(context.Background(), bad) == nil {
		t.Fatal("the validator accepts a config answer without its required fields")
	}
}
