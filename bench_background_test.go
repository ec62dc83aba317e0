package switchboard_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/switchboard-go/switchboard"
	"github.com/switchboard-go/switchboard/manualclock"
)

// BenchmarkResolveDuringBackgroundWork measures Resolve (state hits)
// latency on a Manager of 1,000,000 records while nothing else runs, while
// an operator pages through a full List of them, and while pruning deletes
// the half of them that expired; it reports p50, p99 and p999 in ns. Scans
// and pruning hold a partition's lock for one chunk of 256 slots at a
// time, so the percentiles should stay close to idle.
func BenchmarkResolveDuringBackgroundWork(b *testing.B) {
	const n = 1_000_000
	for _, mode := range []string{"idle", "listing", "pruning"} {
		b.Run(mode, func(b *testing.B) {
			clock := manualclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
			m, err := switchboard.New(switchboard.Config{PartitionCount: 16, MaxEntriesPerPartition: n, TTL: time.Hour, PruneInterval: time.Hour},
				switchboard.WithClock(clock.Now))
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close()
			ctx := context.Background()
			keys := make([]switchboard.SessionKey, n)
			for i := range keys {
				keys[i] = switchboard.SessionKey{ChannelType: "telegram", BridgeID: fmt.Sprint("bot_", i%16), RoomID: fmt.Sprint("room_", i)}
				var opts []switchboard.SetOption
				if i%2 == 1 {
					opts = append(opts, switchboard.WithTTL(time.Minute)) // expire for the pruning mode
				}
				if err := m.Set(ctx, keys[i], switchboard.Route{ExternalRoomID: fmt.Sprint("-100", i)}, opts...); err != nil {
					b.Fatal(err)
				}
			}
			if mode == "pruning" {
				clock.Advance(time.Minute)
			}
			var stop atomic.Bool
			background := make(chan int, 1)
			go func() {
				rounds := 0
				for !stop.Load() {
					switch mode {
					case "listing":
						for cursor := ""; !stop.Load(); {
							_, next, err := m.List(ctx, switchboard.Filter{}, switchboard.MaxListLimit, cursor)
							if err != nil || next == "" {
								break
							}
							cursor = next
						}
					case "pruning":
						_, _ = m.Prune(ctx)
						// Refill what was pruned, so every round prunes half a million.
						for i := 1; i < n && !stop.Load(); i += 2 {
							_ = m.Set(ctx, keys[i], switchboard.Route{ExternalRoomID: "x"}, switchboard.WithTTL(time.Nanosecond*1))
						}
					default:
						time.Sleep(time.Millisecond)
					}
					rounds++
				}
				background <- rounds
			}()
			h := hdrhistogram.New(1, int64(time.Second), 3)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				k := keys[(i*7919*2)%n] // the even keys: never expired
				start := time.Now()
				if _, err := m.Resolve(ctx, k); err != nil {
					b.Fatal(err)
				}
				_ = h.RecordValue(int64(time.Since(start)))
			}
			b.StopTimer()
			stop.Store(true)
			rounds := <-background
			b.ReportMetric(float64(h.ValueAtQuantile(50)), "p50-ns")
			b.ReportMetric(float64(h.ValueAtQuantile(99)), "p99-ns")
			b.ReportMetric(float64(h.ValueAtQuantile(99.9)), "p999-ns")
			b.ReportMetric(float64(rounds), "background-rounds")
		})
	}
}
