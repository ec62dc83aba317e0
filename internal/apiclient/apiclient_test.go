package apiclient_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/switchboard-go/switchboard"
	"github.com/switchboard-go/switchboard/internal/apiclient"
	"github.com/switchboard-go/switchboard/server"
)

// TestGeneratedClient drives the server with the client oapi-codegen
// generated from the API document: the document is complete enough to
// generate a typed client that works, required fields as plain values.
func TestGeneratedClient(t *testing.T) {
	m, err := switchboard.New(switchboard.Config{PartitionCount: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	h, err := server.New(server.Options{Instances: []server.Instance{{Name: "bot", Manager: m, Tokens: []string{"tok"}}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	auth := func(_ context.Context, req *http.Request) error {
		req.Header.Set("Authorization", "Bearer tok")
		return nil
	}
	c, err := apiclient.NewClientWithResponses(srv.URL, apiclient.WithHTTPClient(srv.Client()), apiclient.WithRequestEditorFn(auth))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	prio, writer := 10, apiclient.Writer("inbound")
	set, err := c.SetRouteWithResponse(ctx, "bot", "telegram:bot_1:chat_123", nil,
		apiclient.SetRequest{Route: apiclient.Route{ExternalRoomId: "-100123"}, Priority: &prio, Writer: &writer})
	if err != nil || set.StatusCode() != 204 {
		t.Fatalf("setRoute = %v, %v", set.StatusCode(), err)
	}
	got, err := c.GetRouteWithResponse(ctx, "bot", "telegram:bot_1:chat_123")
	if err != nil || got.JSON200 == nil {
		t.Fatalf("getRoute = %v, %v", got.StatusCode(), err)
	}
	if r := got.JSON200; r.Route.ExternalRoomId != "-100123" || r.Priority != 10 || r.Origin != apiclient.OriginSet || r.Revision != 1 || r.Confirmed {
		t.Fatalf("getRoute record = %+v", *r)
	}
	etag := got.HTTPResponse.Header.Get("ETag")
	cond, err := c.SetRouteWithResponse(ctx, "bot", "telegram:bot_1:chat_123", &apiclient.SetRouteParams{IfMatch: &etag},
		apiclient.SetRequest{Route: apiclient.Route{ExternalRoomId: "-100124"}, Priority: &prio})
	if err != nil || cond.StatusCode() != 204 {
		t.Fatalf("conditional setRoute = %v, %v", cond.StatusCode(), err)
	}
	res, err := c.ResolveWithResponse(ctx, "bot", apiclient.ResolveRequest{SessionKey: "telegram:bot_1:chat_123:7"})
	if err != nil || res.JSON200 == nil || res.JSON200.Source != apiclient.ResolutionSourcePartitionFallback || res.JSON200.ExternalRoomId != "-100124" {
		t.Fatalf("resolve = %v %+v, %v", res.StatusCode(), res.JSON200, err)
	}
	miss, err := c.GetRouteWithResponse(ctx, "bot", "telegram:bot_1:nobody")
	if err != nil || miss.JSON404 == nil || miss.JSON404.Error.Code != apiclient.ErrorDetailCodeNotFound {
		t.Fatalf("getRoute of nothing = %v, %v", miss.StatusCode(), err)
	}
	list, err := c.ListRoutesWithResponse(ctx, "bot", &apiclient.ListRoutesParams{})
	if err != nil || list.JSON200 == nil || len(list.JSON200.Routes) != 2 || list.JSON200.Next != "" {
		t.Fatalf("listRoutes = %v %+v, %v", list.StatusCode(), list.JSON200, err)
	}
	cfg, err := c.GetConfigWithResponse(ctx, "bot")
	if err != nil || cfg.JSON200 == nil || cfg.JSON200.PartitionCount != 4 || cfg.JSON200.Capacity != 40000 {
		t.Fatalf("getConfig = %v %+v, %v", cfg.StatusCode(), cfg.JSON200, err)
	}
}
