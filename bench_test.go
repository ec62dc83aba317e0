package switchboard_test

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-go/switchboard"
	"github.com/switchboard-go/switchboard/internal/benchdata"
)

// benchManager returns a Manager holding benchdata.LiveKeys records and lookup copies
// of their keys.
func benchManager(b *testing.B, cfg switchboard.Config) (*switchboard.Manager, []switchboard.SessionKey) {
	b.Helper()
	if cfg.MaxEntriesPerPartition == 0 {
		cfg.MaxEntriesPerPartition = switchboard.MaxEntriesLimit
	}
	m, err := switchboard.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = m.Close() })
	ctx := context.Background()
	lookups := make([]switchboard.SessionKey, benchdata.LiveKeys)
	for i := range lookups {
		k := benchdata.Key(i)
		if err := m.Set(ctx, k, benchdata.Route(i)); err != nil {
			b.Fatal(err)
		}
		lookups[i] = benchdata.Clone(k)
	}
	runtime.GC()
	return m, lookups
}

// freshKeys returns n keys no Manager has seen, in rooms that may exist.
func freshKeys(n int, thread bool) []switchboard.SessionKey {
	out := make([]switchboard.SessionKey, n)
	for i := range out {
		k := benchdata.Key(i % benchdata.LiveKeys)
		if thread {
			k.ThreadID = fmt.Sprintf("new_%d", i)
		} else {
			k.RoomID = fmt.Sprintf("new_%d", i)
			k.ThreadID = ""
		}
		out[i] = k
	}
	return out
}

// run runs op serially and under RunParallel, each goroutine starting at a
// different offset.
func run(b *testing.B, keys []switchboard.SessionKey, op func(switchboard.SessionKey) error) {
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			if err := op(keys[i%len(keys)]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		var next atomic.Int64
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			i := int(next.Add(1)) * 7919
			for pb.Next() {
				if err := op(keys[i%len(keys)]); err != nil {
					b.Error(err)
					return
				}
				i++
			}
		})
	})
}

func BenchmarkManager_Get(b *testing.B) {
	m, keys := benchManager(b, switchboard.Config{})
	ctx := context.Background()
	b.Run("hit", func(b *testing.B) {
		run(b, keys, func(k switchboard.SessionKey) error { _, err := m.Get(ctx, k); return err })
	})
}

func BenchmarkManager_Resolve(b *testing.B) {
	ctx := context.Background()
	fb := benchdata.Route(-1)
	b.Run("state_hit", func(b *testing.B) {
		m, keys := benchManager(b, switchboard.Config{})
		run(b, keys, func(k switchboard.SessionKey) error {
			res, err := m.Resolve(ctx, k, fb)
			if err == nil && res.Source != switchboard.SourceStateHit {
				err = fmt.Errorf("source %s", res.Source)
			}
			return err
		})
	})
	// Each op resolves a thread key never seen before: it falls back to its
	// room (or to the provided route) and stores the result.
	for _, tc := range []struct {
		name   string
		thread bool
		want   switchboard.Source
	}{{"partition_fallback", true, switchboard.SourcePartitionFallback}, {"provided_fallback", false, switchboard.SourceProvidedFallback}} {
		b.Run(tc.name, func(b *testing.B) {
			for _, mode := range []string{"serial", "parallel"} {
				b.Run(mode, func(b *testing.B) {
					m, _ := benchManager(b, switchboard.Config{})
					for i := range benchdata.LiveKeys { // room-scope records to fall back to
						if err := m.Set(ctx, benchdata.Key(i).RoomScope(), benchdata.Route(i)); err != nil {
							b.Fatal(err)
						}
					}
					keys := freshKeys(b.N, tc.thread)
					op := func(k switchboard.SessionKey) error {
						res, err := m.Resolve(ctx, k, fb)
						if err == nil && res.Source != tc.want {
							err = fmt.Errorf("source %s, want %s", res.Source, tc.want)
						}
						return err
					}
					b.ReportAllocs()
					b.ResetTimer()
					runOnce(b, mode, keys, op)
				})
			}
		})
	}
	b.Run("miss", func(b *testing.B) {
		m, _ := benchManager(b, switchboard.Config{})
		keys := freshKeys(benchdata.LiveKeys, false)
		run(b, keys, func(k switchboard.SessionKey) error {
			if _, err := m.Resolve(ctx, k); err != switchboard.ErrNoRoute {
				return fmt.Errorf("err = %v, want ErrNoRoute", err)
			}
			return nil
		})
	})
}

// runOnce runs op once on each of keys (len(keys) == b.N), serially or
// spread over RunParallel's goroutines.
func runOnce(b *testing.B, mode string, keys []switchboard.SessionKey, op func(switchboard.SessionKey) error) {
	if mode == "serial" {
		for i := range b.N {
			if err := op(keys[i]); err != nil {
				b.Fatal(err)
			}
		}
		return
	}
	var next atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := op(keys[next.Add(1)-1]); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkManager_Set(b *testing.B) {
	ctx := context.Background()
	b.Run("overwrite", func(b *testing.B) {
		m, keys := benchManager(b, switchboard.Config{})
		r := benchdata.Route(1)
		run(b, keys, func(k switchboard.SessionKey) error { return m.Set(ctx, k, r) })
	})
	b.Run("new_key", func(b *testing.B) {
		for _, mode := range []string{"serial", "parallel"} {
			b.Run(mode, func(b *testing.B) {
				m, _ := benchManager(b, switchboard.Config{})
				keys := freshKeys(b.N, true)
				r := benchdata.Route(1)
				b.ReportAllocs()
				b.ResetTimer()
				runOnce(b, mode, keys, func(k switchboard.SessionKey) error { return m.Set(ctx, k, r) })
			})
		}
	})
	b.Run("eviction", func(b *testing.B) {
		// Full partitions: every Set of a new key evicts the oldest record.
		for _, mode := range []string{"serial", "parallel"} {
			b.Run(mode, func(b *testing.B) {
				cfg := switchboard.Config{PartitionCount: 4, MaxEntriesPerPartition: benchdata.LiveKeys / 8}
				m, _ := benchManager(b, cfg)
				keys := freshKeys(b.N, true)
				r := benchdata.Route(1)
				b.ReportAllocs()
				b.ResetTimer()
				runOnce(b, mode, keys, func(k switchboard.SessionKey) error { return m.Set(ctx, k, r) })
			})
		}
	})
	b.Run("with_meta", func(b *testing.B) {
		m, keys := benchManager(b, switchboard.Config{})
		r := benchdata.Route(1)
		r.Meta = map[string]string{"lang": "de", "tier": "gold"}
		run(b, keys, func(k switchboard.SessionKey) error { return m.Set(ctx, k, r) })
	})
}

func BenchmarkManager_Delete(b *testing.B) {
	// Each op deletes one of b.N records stored beforehand, next to the
	// benchdata.LiveKeys workload.
	ctx := context.Background()
	m, _ := benchManager(b, switchboard.Config{})
	keys := freshKeys(b.N, true)
	r := benchdata.Route(1)
	for _, k := range keys {
		if err := m.Set(ctx, k, r); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for _, k := range keys {
		if err := m.Delete(ctx, k); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkManager_Prune(b *testing.B) {
	// One full prune pass over benchdata.LiveKeys records of which none has expired:
	// the cost of the background scan.
	ctx := context.Background()
	m, _ := benchManager(b, switchboard.Config{})
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := m.Prune(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/benchdata.LiveKeys, "ns/record")
}

// BenchmarkMemoryPerRecord stores 1,000,000 records and reports the heap
// they take beyond the bytes of their key and route strings (which the
// caller allocated and the store retains).
func BenchmarkMemoryPerRecord(b *testing.B) {
	for range b.N {
		perRecord := memoryPerRecord(b, 1_000_000)
		b.ReportMetric(perRecord, "B/record")
	}
}

func memoryPerRecord(tb testing.TB, n int) float64 {
	tb.Helper()
	keys := make([]switchboard.SessionKey, n)
	routes := make([]switchboard.Route, n)
	for i := range keys {
		keys[i] = benchdata.Key(i)
		routes[i] = benchdata.Route(i)
	}
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	before := heap()
	m, err := switchboard.New(switchboard.Config{MaxEntriesPerPartition: n, PruneInterval: time.Hour})
	if err != nil {
		tb.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()
	for i := range keys {
		if err := m.Set(ctx, keys[i], routes[i]); err != nil {
			tb.Fatal(err)
		}
	}
	after := heap()
	runtime.KeepAlive(keys)
	runtime.KeepAlive(routes)
	return float64(after-before) / float64(n)
}

func TestMemoryPerRecord(t *testing.T) {
	if testing.Short() {
		t.Skip("stores 1M records; skipped with -short")
	}
	const limit = 200
	got := memoryPerRecord(t, 1_000_000)
	t.Logf("%.1f bytes per record beyond its strings", got)
	if got > limit {
		t.Fatalf("%.1f bytes per record beyond its strings, want at most %d", got, limit)
	}
}
