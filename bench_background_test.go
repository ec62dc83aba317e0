package switchboard_test

import (
	"context"
	"fmt"
	"io"
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

// BenchmarkPartitionLockHold measures how long background work holds a
// partition's lock at a time, on one partition of 100,000 records: a prune
// pass that deletes all of them (expired; refilled between passes,
// untimed), a DeleteMatching that deletes all of them (refilled the same
// way), a listing of all of them through the store's Scan, 256 records a
// page, and a snapshot (WriteSnapshot, to io.Discard). It reports the holds' mean, p99, p99.9 and longest, in
// µs (the goal: at most 1 ms), and holds per operation.
func BenchmarkPartitionLockHold(b *testing.B) {
	const n = 100_000
	ctx := context.Background()
	for _, mode := range []string{"prune", "delete", "list", "snapshot"} {
		b.Run(mode, func(b *testing.B) {
			h := hdrhistogram.New(1, int64(time.Second), 3)
			store := switchboard.NewMemoryStore()
			switchboard.ObserveHoldsForTest(store, func(d time.Duration) { _ = h.RecordValue(d.Nanoseconds()) })
			clock := manualclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
			m, err := switchboard.New(switchboard.Config{PartitionCount: 1, MaxEntriesPerPartition: n, TTL: time.Minute, PruneInterval: time.Hour},
				switchboard.WithClock(clock.Now), switchboard.WithStore(store))
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close()
			keys := make([]switchboard.SessionKey, n)
			for i := range keys {
				keys[i] = switchboard.SessionKey{ChannelType: "telegram", BridgeID: fmt.Sprint("bot_", i%16), RoomID: fmt.Sprint("room_", i)}
			}
			fill := func() {
				for i, k := range keys {
					if err := m.Set(ctx, k, switchboard.Route{ExternalRoomID: fmt.Sprint("-100", i)}); err != nil {
						b.Fatal(err)
					}
				}
			}
			fill()
			b.ResetTimer()
			for range b.N {
				switch mode {
				case "prune":
					b.StopTimer()
					fill() // the first pass overwrites, later ones refill
					clock.Advance(2 * time.Minute)
					b.StartTimer()
					st, err := store.Prune(ctx, 0, clock.Now())
					if err != nil || st.Pruned != n {
						b.Fatalf("pruned %d of %d: %v", st.Pruned, n, err)
					}
				case "delete":
					b.StopTimer()
					fill()
					b.StartTimer()
					st, err := store.DeleteMatching(ctx, switchboard.DeleteRequest{Partition: 0, Filter: switchboard.Filter{ChannelType: "telegram"}, Now: clock.Now()})
					if err != nil || st.Deleted != n {
						b.Fatalf("deleted %d of %d: %v", st.Deleted, n, err)
					}
				case "snapshot":
					if err := store.WriteSnapshot(io.Discard); err != nil {
						b.Fatal(err)
					}
				case "list":
					seen := 0
					for after, done := uint64(0), false; !done; {
						res, err := store.Scan(ctx, switchboard.ScanRequest{Partition: 0, After: after, Limit: 256, Now: clock.Now()})
						if err != nil {
							b.Fatal(err)
						}
						seen += len(res.Entries)
						after, done = res.Next, res.Done
					}
					if seen != n {
						b.Fatalf("listed %d of %d records", seen, n)
					}
				}
			}
			b.StopTimer()
			if h.TotalCount() == 0 {
				b.Fatal("no lock hold was observed")
			}
			b.ReportMetric(h.Mean()/1e3, "mean-hold-µs")
			b.ReportMetric(float64(h.ValueAtQuantile(99))/1e3, "p99-hold-µs")
			b.ReportMetric(float64(h.ValueAtQuantile(99.9))/1e3, "p999-hold-µs")
			b.ReportMetric(float64(h.Max())/1e3, "max-hold-µs")
			b.ReportMetric(float64(h.TotalCount())/float64(b.N), "holds/op")
		})
	}
}
