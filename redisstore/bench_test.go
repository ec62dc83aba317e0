package redisstore_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard-go/switchboard"
	"github.com/switchboard-go/switchboard/internal/redistest"
	"github.com/switchboard-go/switchboard/redisstore"
)

// BenchmarkRedis compares, at 64 goroutines, Resolve (state_hit) and Set
// through the Redis store with a plain go-redis GET of one key on the same
// server, standalone and cluster. ops/s is reported beside ns/op.
func BenchmarkRedis(b *testing.B) {
	for _, mode := range []string{"standalone", "cluster"} {
		b.Run(mode, func(b *testing.B) {
			var c redis.UniversalClient
			if mode == "standalone" {
				srv := redistest.Start(b)
				c = redis.NewClient(&redis.Options{Addr: srv.Addr, PoolSize: 64, ContextTimeoutEnabled: true})
			} else {
				cl := redistest.StartCluster(b)
				c = redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs(), PoolSize: 64, ContextTimeoutEnabled: true})
			}
			b.Cleanup(func() { _ = c.Close() })
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
			if err := c.Set(ctx, "plain", "-1001234567890", 0).Err(); err != nil {
				b.Fatal(err)
			}
			ops := map[string]func(i int) error{
				"go-redis_GET": func(int) error { return c.Get(ctx, "plain").Err() },
				"Resolve_hit": func(i int) error {
					res, err := m.Resolve(ctx, key(i))
					if err == nil && res.Source != switchboard.SourceStateHit {
						err = fmt.Errorf("source %s", res.Source)
					}
					return err
				},
				"Set": func(i int) error { return m.Set(ctx, key(i), route) },
			}
			for _, name := range []string{"go-redis_GET", "Resolve_hit", "Set"} {
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
