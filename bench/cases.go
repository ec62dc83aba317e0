package bench

import (
	"context"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/maypok86/otter/v2"

	"github.com/switchboard-go/switchboard"
)

// A Case is one workload on one target, runnable as a benchmark.
type Case struct {
	Workload string
	Target   string
	Run      func(b *testing.B)
}

// store is what every target offers: a read that reports a hit and a write.
type store struct {
	get func(switchboard.SessionKey) bool
	set func(switchboard.SessionKey, switchboard.Route)
}

// TTL is the expire-after-write of every target.
const TTL = 30 * time.Minute

func newSwitchboard(b *testing.B, resolve bool) store {
	m, err := switchboard.New(switchboard.Config{MaxEntriesPerPartition: 2 * LiveKeys, TTL: TTL})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = m.Close() })
	ctx := context.Background()
	s := store{
		get: func(k switchboard.SessionKey) bool { _, err := m.Get(ctx, k); return err == nil },
		set: func(k switchboard.SessionKey, r switchboard.Route) { _ = m.Set(ctx, k, r) },
	}
	if resolve {
		s.get = func(k switchboard.SessionKey) bool {
			res, err := m.Resolve(ctx, k)
			return err == nil && res.Source == switchboard.SourceStateHit
		}
	}
	return s
}

func newOtter(*testing.B) store {
	c := otter.Must(&otter.Options[switchboard.SessionKey, switchboard.Route]{
		MaximumSize:      2 * LiveKeys,
		ExpiryCalculator: otter.ExpiryWriting[switchboard.SessionKey, switchboard.Route](TTL),
	})
	return store{
		get: func(k switchboard.SessionKey) bool { _, ok := c.GetIfPresent(k); return ok },
		set: func(k switchboard.SessionKey, r switchboard.Route) { c.Set(k, r) },
	}
}

func newMap(*testing.B) store {
	m := map[switchboard.SessionKey]switchboard.Route{}
	return store{
		get: func(k switchboard.SessionKey) bool { _, ok := m[k]; return ok },
		set: func(k switchboard.SessionKey, r switchboard.Route) { m[k] = r },
	}
}

// Cases returns every comparison: reads and overwrites of LiveKeys keys
// under RunParallel, in a random order (as messages from many
// conversations arrive) and in insertion order (kind to caches that lay
// records out in that order).
func Cases() []Case {
	type target struct {
		name string
		make func(*testing.B) store
	}
	readers := []target{
		{"switchboard.Get", func(b *testing.B) store { return newSwitchboard(b, false) }},
		{"switchboard.Resolve", func(b *testing.B) store { return newSwitchboard(b, true) }},
		{"otter.GetIfPresent", newOtter},
		{"map (unlocked floor)", newMap},
	}
	writers := []target{
		{"switchboard.Set", func(b *testing.B) store { return newSwitchboard(b, false) }},
		{"otter.Set", newOtter},
	}
	var out []Case
	for _, random := range []bool{true, false} {
		order := "random"
		if !random {
			order = "sequential"
		}
		for _, t := range readers {
			out = append(out, Case{"get_hit_" + order, t.name, func(b *testing.B) {
				s := t.make(b)
				parallel(b, load(s), random, s.get)
			}})
		}
		for _, t := range writers {
			out = append(out, Case{"set_overwrite_" + order, t.name, func(b *testing.B) {
				s := t.make(b)
				r := Route(1)
				parallel(b, load(s), random, func(k switchboard.SessionKey) bool { s.set(k, r); return true })
			}})
		}
	}
	return out
}

// load fills s with the workload and returns lookup copies of its keys.
func load(s store) []switchboard.SessionKey {
	for i := range LiveKeys {
		s.set(Key(i), Route(i))
	}
	return Lookups(LiveKeys)
}

// parallel runs op under RunParallel over keys, each goroutine from its own
// offset, in a fixed random permutation or in order.
func parallel(b *testing.B, keys []switchboard.SessionKey, random bool, op func(switchboard.SessionKey) bool) {
	if random {
		rng := rand.New(rand.NewPCG(1, 2))
		rng.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
	}
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
