package client_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-go/switchboard"
	"github.com/switchboard-go/switchboard/client"
	"github.com/switchboard-go/switchboard/server"
)

// TestDefaultTransportReusesConnections: 64 goroutines calling one Client
// keep about 64 connections open, instead of opening (and leaving in
// TIME_WAIT) one per request beyond Go's default of 2 idle connections per
// host.
func TestDefaultTransportReusesConnections(t *testing.T) {
	m, err := switchboard.New(switchboard.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	h, err := server.New(server.Options{Instances: []server.Instance{{Name: "default", Manager: m}}, LogRequests: server.LogRequestsOff})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	var opened atomic.Int64
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			opened.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	run := func(c *client.Client) int64 {
		before := opened.Load()
		var wg sync.WaitGroup
		for g := range 64 {
			wg.Go(func() {
				k := switchboard.SessionKey{ChannelType: "c", BridgeID: "b", RoomID: string(rune('a' + g%26))}
				for range 30 {
					if err := c.Set(context.Background(), k, switchboard.Route{ExternalRoomID: "x"}); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		return opened.Load() - before
	}
	plain, _ := client.New(srv.URL, client.Options{HTTPClient: &http.Client{Timeout: 10 * time.Second}}) // Go's default transport
	tuned, _ := client.New(srv.URL, client.Options{})
	defer tuned.CloseIdleConnections()
	defer http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	withDefault, withTuned := run(plain), run(tuned)
	t.Logf("64 goroutines × 30 requests: %d connections with http.DefaultTransport, %d with the client's default", withDefault, withTuned)
	if withTuned > 128 { // a few more than 64: dials race while every connection is busy
		t.Fatalf("the client's default transport opened %d connections for 64 concurrent callers, want about 64 (at most 128)", withTuned)
	}
	if withDefault < 4*withTuned {
		t.Fatalf("http.DefaultTransport opened %d connections, the tuned one %d: the test no longer shows the difference", withDefault, withTuned)
	}
}
