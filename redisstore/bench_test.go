package redisstore_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/redis/rueidis"

	"github.com/switchboard-go/switchboard"
	"github.com/switchboard-go/switchboard/internal/redistest"
	"github.com/switchboard-go/switchboard/redisstore"
)

// BenchmarkRedis compares, at 64 goroutines, Resolve (state_hit) and Set
// through the Redis store with a plain GET of one key through the same
// rueidis client (its defaults: automatic pipelining) on the same server,
// standalone and cluster; GET_spread gets one of 10,000 plain keys, spread
// over the slots as the records are. ops/s is reported beside ns/op.
func BenchmarkRedis(b *testing.B) {
	for _, mode := range []string{"standalone", "cluster"} {
		b.Run(mode, func(b *testing.B) {
			var addrs []string
			if mode == "standalone" {
				addrs = []string{redistest.Start(b).Addr}
			} else {
				addrs = redistest.StartCluster(b).Addrs()
			}
			c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: addrs, DisableCache: true})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(c.Close)
			ctx := context.Background()
			m := newManager(b, c, redisstore.Options{KeyPrefix: "bench"}, switchboard.Config{PartitionCount: 16, MaxEntriesPerPartition: 100_000})
			const keys = 10_000
			all := make([]switchboard.SessionKey, keys) // built once: the loop measures the store, not fmt
			for i := range all {
				all[i] = switchboard.SessionKey{ChannelType: "telegram", BridgeID: "bot_1", RoomID: fmt.Sprintf("chat_%d", i)}
			}
			key := func(i int) switchboard.SessionKey { return all[i%keys] }
			route := switchboard.Route{ExternalRoomID: "-1001234567890", ChannelType: "telegram"}
			for i := range keys {
				if err := m.Set(ctx, key(i), route); err != nil {
					b.Fatal(err)
				}
			}
			if err := c.Do(ctx, c.B().Set().Key("plain").Value("-1001234567890").Build()).Error(); err != nil {
				b.Fatal(err)
			}
			// One plain key per record, over the slots (and so, in a cluster,
			// the nodes) as the records are: a GET that spreads as a hit does.
			spread := make([]string, keys)
			for i := range spread {
				spread[i] = fmt.Sprintf("plain:%d", i)
				if err := c.Do(ctx, c.B().Set().Key(spread[i]).Value("-1001234567890").Build()).Error(); err != nil {
					b.Fatal(err)
				}
			}
			recordKey := fmt.Sprintf("{bench:%d}:r:%s", m.RoutePartition(all[0]), all[0])
			if n, err := c.Do(ctx, c.B().Exists().Key(recordKey).Build()).AsInt64(); err != nil || n != 1 {
				b.Fatalf("record key %s: exists %d, %v", recordKey, n, err)
			}
			ops := map[string]func(i int) error{
				"GET": func(int) error { return c.Do(ctx, c.B().Get().Key("plain").Build()).Error() },
				"GET_spread": func(i int) error {
					return c.Do(ctx, c.B().Get().Key(spread[i%keys]).Build()).Error()
				},
				// What a hit sends, without the Manager and decoding.
				"GET_record": func(i int) error {
					return c.Do(ctx, c.B().Get().Key(recordKey).Build()).Error()
				},
				"Get_hit": func(i int) error { _, err := m.Get(ctx, key(i)); return err },
				"Resolve_hit": func(i int) error {
					res, err := m.Resolve(ctx, key(i))
					if err == nil && res.Source != switchboard.SourceStateHit {
						err = fmt.Errorf("source %s", res.Source)
					}
					return err
				},
				"Set": func(i int) error { return m.Set(ctx, key(i), route) },
			}
			for _, name := range []string{"GET", "GET_spread", "GET_record", "Get_hit", "Resolve_hit", "Set"} {
				op := ops[name]
				b.Run(name, func(b *testing.B) {
					var next atomic.Int64
					b.SetParallelism(32) // 64 goroutines on this project's 2 cores
					b.ReportAllocs()
					b.ResetTimer()
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							if err := op(int(next.Add(1))); err != nil {
								b.Error(err)
								return
							}
						}
					})
					b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
				})
			}
		})
	}
}
