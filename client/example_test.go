package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"

	"github.com/switchboard-go/switchboard"
	"github.com/switchboard-go/switchboard/client"
	"github.com/switchboard-go/switchboard/server"
)

// The same calls as on an embedded Manager, over HTTP; errors keep their
// sentinels across the wire.
func ExampleNew() {
	m, err := switchboard.New(switchboard.Config{PartitionCount: 8})
	if err != nil {
		panic(err)
	}
	defer m.Close()
	h, err := server.New(server.Options{
		Instances: []server.Instance{{Name: "support_bot", Manager: m, Tokens: []string{"s3cr3t"}}},
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		panic(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()

	c, err := client.New(srv.URL, client.Options{Instance: "support_bot", Token: "s3cr3t"})
	if err != nil {
		panic(err)
	}
	var r switchboard.Router = c // or the Manager itself
	ctx := context.Background()
	room := switchboard.SessionKey{ChannelType: "slack", BridgeID: "T1", RoomID: "C1"}
	if err := r.Set(ctx, room, switchboard.Route{ExternalRoomID: "C1"}); err != nil {
		panic(err)
	}
	thread := room
	thread.ThreadID = "1700000000.000100"
	res, err := r.Resolve(ctx, thread)
	if err != nil {
		panic(err)
	}
	fmt.Println(res.ExternalRoomID, res.Source, res.FallbackReason)
	_, err = r.Get(ctx, switchboard.SessionKey{ChannelType: "slack", BridgeID: "T1", RoomID: "C2"})
	fmt.Println(errors.Is(err, switchboard.ErrNotFound))
	// Output:
	// C1 partition_fallback thread_scope_miss
	// true
}
