package redisstore_test

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/redis/rueidis"

	"github.com/switchboard-go/switchboard"
	"github.com/switchboard-go/switchboard/redisstore"
)

// A Manager keeping its state in a Redis Cluster. (No output: it needs a
// running cluster.)
func ExampleNew() {
	client, err := rueidis.NewClient(rueidis.ClientOption{
		InitAddress:  []string{"127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"},
		DisableCache: true, Dialer: net.Dialer{Timeout: 200 * time.Millisecond}, ConnWriteTimeout: 200 * time.Millisecond,
	})
	if err != nil {
		panic(err)
	}
	defer client.Close()
	st, err := redisstore.New(client, redisstore.Options{KeyPrefix: "support_bot"})
	if err != nil {
		panic(err)
	}
	m, err := switchboard.New(switchboard.Config{PartitionCount: 64}, switchboard.WithStore(st))
	if err != nil {
		panic(err)
	}
	defer m.Close()
	key := switchboard.SessionKey{ChannelType: "telegram", BridgeID: "bot_1", RoomID: "chat_123"}
	res, err := m.Resolve(context.Background(), key, switchboard.Route{ExternalRoomID: "-100123"})
	if err != nil {
		panic(err)
	}
	fmt.Println(res.ExternalRoomID, res.Source, res.FallbackReason)
}
