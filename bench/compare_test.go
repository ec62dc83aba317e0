package bench

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/maypok86/otter/v2"

	"github.com/switchboard-go/switchboard"
)

// target is one implementation under comparison.
type target struct {
	name string
	get  func(switchboard.SessionKey) bool
	set  func(switchboard.SessionKey, switchboard.Route)
}

func targets(b *testing.B) []func() target {
	return []func() target{
		func() target {
			m, err := switchboard.New(switchboard.Config{MaxEntriesPerPartition: 2 * LiveKeys, TTL: 30 * time.Minute})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = m.Close() })
			ctx := context.Background()
			return target{"switchboard",
				func(k switchboard.SessionKey) bool { _, err := m.Get(ctx, k); return err == nil },
				func(k switchboard.SessionKey, r switchboard.Route) { _ = m.Set(ctx, k, r) }}
		},
		func() target {
			ctx := context.Background()
			m, err := switchboard.New(switchboard.Config{MaxEntriesPerPartition: 2 * LiveKeys, TTL: 30 * time.Minute})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = m.Close() })
			return target{"switchboard_resolve",
				func(k switchboard.SessionKey) bool {
					res, err := m.Resolve(ctx, k)
					return err == nil && res.Source == switchboard.SourceStateHit
				},
				func(k switchboard.SessionKey, r switchboard.Route) { _ = m.Set(ctx, k, r) }}
		},
		func() target {
			c := otter.Must(&otter.Options[switchboard.SessionKey, switchboard.Route]{
				MaximumSize:      2 * LiveKeys,
				ExpiryCalculator: otter.ExpiryWriting[switchboard.SessionKey, switchboard.Route](30 * time.Minute),
			})
			return target{"otter",
				func(k switchboard.SessionKey) bool { _, ok := c.GetIfPresent(k); return ok },
				func(k switchboard.SessionKey, r switchboard.Route) { c.Set(k, r) }}
		},
		func() target {
			m := map[switchboard.SessionKey]switchboard.Route{}
			return target{"map_unlocked_floor",
				func(k switchboard.SessionKey) bool { _, ok := m[k]; return ok },
				func(k switchboard.SessionKey, r switchboard.Route) { m[k] = r }}
		},
	}
}

func load(t target) []switchboard.SessionKey {
	for i := range LiveKeys {
		t.set(Key(i), Route(i))
	}
	return Lookups(LiveKeys)
}

func parallel(b *testing.B, keys []switchboard.SessionKey, op func(switchboard.SessionKey) bool) {
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(1)) * 7919
		for pb.Next() {
			if !op(keys[i%len(keys)]) {
				b.Error("miss on a live key")
				return
			}
			i++
		}
	})
}

func BenchmarkGetHit(b *testing.B) {
	for _, mk := range targets(b) {
		t := mk()
		keys := load(t)
		b.Run(t.name, func(b *testing.B) { parallel(b, keys, t.get) })
	}
}

func BenchmarkSetOverwrite(b *testing.B) {
	r := Route(1)
	for _, mk := range targets(b) {
		t := mk()
		if t.name == "map_unlocked_floor" || t.name == "switchboard_resolve" {
			continue // an unlocked map cannot be written concurrently; resolve is a read here
		}
		keys := load(t)
		b.Run(t.name, func(b *testing.B) {
			parallel(b, keys, func(k switchboard.SessionKey) bool { t.set(k, r); return true })
		})
	}
}
