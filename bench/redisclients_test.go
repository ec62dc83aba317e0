package bench

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/redis/rueidis"

	"github.com/switchboard-go/switchboard/internal/redistest"
)

// BenchmarkRedisClients measures the two maintained Go Redis clients on
// the same redis-server (standalone, and a 3-master cluster), at 64
// goroutines on this project's 2 cores: a GET of one key (the reference of
// the Redis backend's benchmarks) and an HMGET of five fields of one hash
// (what the backend's read that hits sends). go-redis v9 with a pool of 64
// connections, as the backend's benchmarks use it; rueidis with its
// defaults (automatic pipelining of concurrent commands over one
// connection per node, RESP3). ops/s is reported beside ns/op.
//
//	cd bench && go test -run '^$' -bench RedisClients -benchmem
func BenchmarkRedisClients(b *testing.B) {
	for _, mode := range []string{"standalone", "cluster"} {
		b.Run(mode, func(b *testing.B) {
			var addrs []string
			if mode == "standalone" {
				addrs = []string{redistest.Start(b).Addr}
			} else {
				addrs = redistest.StartCluster(b).Addrs()
			}
			ctx := context.Background()
			var gr redis.UniversalClient
			if mode == "standalone" {
				gr = redis.NewClient(&redis.Options{Addr: addrs[0], PoolSize: 64})
			} else {
				gr = redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, PoolSize: 64})
			}
			b.Cleanup(func() { _ = gr.Close() })
			ru, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: addrs, DisableCache: true})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(ru.Close)
			if err := gr.Set(ctx, "plain", "-1001234567890", 0).Err(); err != nil {
				b.Fatal(err)
			}
			if err := gr.HSet(ctx, "rec", "r", `{"external_room_id":"-1001234567890"}`, "u", "1", "e", "9", "v", "1", "w", "").Err(); err != nil {
				b.Fatal(err)
			}
			fields := []string{"r", "u", "e", "v", "w"}
			ops := []struct {
				name string
				op   func() error
			}{
				{"go-redis_GET", func() error { return gr.Get(ctx, "plain").Err() }},
				{"rueidis_GET", func() error { return ru.Do(ctx, ru.B().Get().Key("plain").Build()).Error() }},
				{"go-redis_HMGET", func() error { return gr.HMGet(ctx, "rec", fields...).Err() }},
				{"rueidis_HMGET", func() error { return ru.Do(ctx, ru.B().Hmget().Key("rec").Field(fields...).Build()).Error() }},
			}
			for _, o := range ops {
				b.Run(o.name, func(b *testing.B) {
					var failed atomic.Bool
					b.SetParallelism(32) // 64 goroutines on 2 cores
					b.ReportAllocs()
					b.ResetTimer()
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							if err := o.op(); err != nil && !failed.Swap(true) {
								b.Error(err)
							}
						}
					})
					b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
				})
			}
		})
	}
}
