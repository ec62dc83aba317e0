// Package bench compares Switchboard's memory backend with general-purpose
// Go caches on the same workload (the keys of internal/benchdata, which the
// library's own benchmarks use too). It is its own module so that the
// library does not depend on the caches it is measured against.
//
// Run everything and print the side-by-side table:
//
//	cd bench && go test -run '^$' -bench . -benchmem
package bench

import (
	"context"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/dgraph-io/ristretto/v2"
	"github.com/hashicorp/golang-lru/v2/expirable"
	"github.com/jellydator/ttlcache/v3"
	"github.com/maypok86/otter/v2"

	"github.com/switchboard-go/switchboard"
	"github.com/switchboard-go/switchboard/internal/benchdata"
)

// A Case is one workload on one target, runnable as a benchmark.
type Case struct {
	Workload string
	Target   string
	Run      func(b *testing.B)
	// Done, when not nil, is called once the case has run (however many
	// times testing ran Run): the last case of a target releases it.
	Done func()
}

// TTL is the expire-after-write of every target.
const TTL = 30 * time.Minute

// FreshKeys is the size of the pool of never-stored keys the eviction
// workload cycles through: three times the capacity, so a key comes back
// only after 200,000 other new keys were written and it was evicted. (It
// was ten times the capacity; the million keys' pointers made every
// garbage collection that testing.Benchmark forces before each run take
// twice as long, for the same workload.)
const FreshKeys = 3 * benchdata.LiveKeys

// target is one implementation, holding its own form of the workload's
// keys: the stored ones, the lookup copies and the fresh ones.
type target struct {
	load   func(i int)      // store live key i (its stored copy)
	get    func(i int) bool // look up live key i
	getAt  func(j int) bool // look up the j-th warm lookup (keys.warm)
	setAt  func(j int)      // overwrite through the j-th warm lookup
	set    func(i int)      // overwrite live key i
	setNew func(i int)      // store fresh key i (evicting at capacity)
	close  func()
}

// keys of one run: what is stored, lookup copies with their own string
// memory (as keys decoded from a request are), and fresh keys.
//
// warm holds lookup copies too, but laid out in visiting order: warm[j]
// is a copy of the key the j-th step of the visiting schedule visits,
// its strings allocated right after warm[j-1]'s. Reading warm[j] at step
// j finds the caller's key in cache, as in a server, where the key was
// just decoded from the request; only the stored records are visited in
// no particular order. lookups, visited through the random order, are
// cold: every target pays the same cache misses for the caller's key
// itself, which favours targets that touch little else.
type keys struct {
	stored, lookups, fresh, warm []switchboard.SessionKey
	// The same as strings, for caches that cannot key by a struct.
	storedStr, lookupStr, freshStr, warmStr []string
}

// VisitPasses is how many different random orders of the live keys the
// visiting schedule holds, one pass after the other (see visitOrder).
const VisitPasses = 2

// visitOrder is the fixed schedule of live key indexes every workload
// walks: VisitPasses passes over the live keys, each in a random order of
// its own. One order repeated would favour targets that allocate a new
// node on every write (otter, ristretto): a pass of writes would lay their
// nodes out in visiting order, and every later pass in that order would
// then walk memory sequentially, which no stream of conversations does.
// Measured with one repeated order, otter's 90/10 mix ran at 0.72× its own
// pure get_hit time; with two orders a pass's layout says nothing about
// the next pass.
func visitOrder() []int {
	rng := rand.New(rand.NewPCG(1, 2))
	order := make([]int, 0, VisitPasses*benchdata.LiveKeys)
	for range VisitPasses {
		order = append(order, rng.Perm(benchdata.LiveKeys)...)
	}
	return order
}

// sharedKeys builds the keys once per process: every benchmark run reads
// them and none changes them. Each set's strings are packed into one
// allocation of its own, in the set's order (see packed), so that the
// millions of key strings are a handful of objects to the garbage
// collector, whose full collection before every benchmark run would
// otherwise dominate the comparison's running time.
var sharedKeys = sync.OnceValue(func() keys {
	k := keys{stored: make([]switchboard.SessionKey, benchdata.LiveKeys), lookups: make([]switchboard.SessionKey, benchdata.LiveKeys), fresh: make([]switchboard.SessionKey, FreshKeys)}
	for i := range k.stored {
		k.stored[i] = benchdata.Key(i)
	}
	copy(k.lookups, k.stored)
	for i := range k.fresh {
		k.fresh[i] = benchdata.Key(benchdata.LiveKeys + i)
	}
	order := liveOrder()
	k.warm = make([]switchboard.SessionKey, len(order))
	for j, i := range order {
		k.warm[j] = k.stored[i]
	}
	for _, set := range [][]switchboard.SessionKey{k.stored, k.lookups, k.fresh, k.warm} {
		packed(set)
	}
	k.storedStr, k.lookupStr, k.freshStr, k.warmStr = strs(k.stored), strs(k.lookups), strs(k.fresh), strs(k.warm)
	return k
})

// packed gives the keys of set string memory of their own: one allocation
// holding every key's strings, key after key in set's order.
func packed(set []switchboard.SessionKey) {
	n := 0
	for _, k := range set {
		n += len(k.ChannelType) + len(k.BridgeID) + len(k.RoomID) + len(k.ThreadID)
	}
	arena := make([]byte, 0, n)
	for _, k := range set {
		arena = append(arena, k.ChannelType...)
		arena = append(arena, k.BridgeID...)
		arena = append(arena, k.RoomID...)
		arena = append(arena, k.ThreadID...)
	}
	all := unsafe.String(unsafe.SliceData(arena), len(arena))
	off := 0
	take := func(l int) string { off += l; return all[off-l : off] }
	for i, k := range set {
		set[i] = switchboard.SessionKey{ChannelType: take(len(k.ChannelType)), BridgeID: take(len(k.BridgeID)),
			RoomID: take(len(k.RoomID)), ThreadID: take(len(k.ThreadID))}
	}
}

func strs(ks []switchboard.SessionKey) []string {
	n := 0
	for _, k := range ks {
		n += len(k.String())
	}
	arena := make([]byte, 0, n)
	ends := make([]int, len(ks))
	for i, k := range ks {
		arena = append(arena, k.String()...)
		ends[i] = len(arena)
	}
	all := unsafe.String(unsafe.SliceData(arena), len(arena))
	out := make([]string, len(ks))
	start := 0
	for i, end := range ends {
		out[i], start = all[start:end], end
	}
	return out
}

// The targets, each holding at most benchdata.LiveKeys entries.
var makers = []struct {
	name string
	make func(k keys) target
}{
	{"switchboard", func(k keys) target { return newSwitchboard(k).target }},
	{"switchboard Resolve", func(k keys) target {
		// The same Manager, reading with Resolve (state hits) instead of Get.
		t := newSwitchboard(k)
		m := t.manager
		ctx := context.Background()
		t.get = func(i int) bool {
			res, err := m.Resolve(ctx, k.lookups[i])
			return err == nil && res.Source == switchboard.SourceStateHit
		}
		t.getAt = func(j int) bool {
			res, err := m.Resolve(ctx, k.warm[j])
			return err == nil && res.Source == switchboard.SourceStateHit
		}
		return t.target
	}},
	{"otter", func(k keys) target {
		c := otter.Must(&otter.Options[switchboard.SessionKey, switchboard.Route]{
			MaximumSize: benchdata.LiveKeys, ExpiryCalculator: otter.ExpiryWriting[switchboard.SessionKey, switchboard.Route](TTL)})
		r := benchdata.Route(1)
		return target{
			load:   func(i int) { c.Set(k.stored[i], r) },
			get:    func(i int) bool { _, ok := c.GetIfPresent(k.lookups[i]); return ok },
			getAt:  func(j int) bool { _, ok := c.GetIfPresent(k.warm[j]); return ok },
			set:    func(i int) { c.Set(k.lookups[i], r) },
			setAt:  func(j int) { c.Set(k.warm[j], r) },
			setNew: func(i int) { c.Set(k.fresh[i], r) },
			close:  func() {},
		}
	}},
	{"ristretto", func(k keys) target {
		// Ristretto keys are strings (it cannot key by a struct); the
		// string forms are computed once, outside the measurement.
		c, err := ristretto.NewCache(&ristretto.Config[string, switchboard.Route]{
			NumCounters: 10 * benchdata.LiveKeys, MaxCost: benchdata.LiveKeys, BufferItems: 64, IgnoreInternalCost: true})
		if err != nil {
			panic(err)
		}
		r := benchdata.Route(1)
		return target{
			load: func(i int) {
				c.SetWithTTL(k.storedStr[i], r, 1, TTL)
				if i%1024 == 0 {
					c.Wait() // ristretto applies writes asynchronously and drops them when its buffer is full
				}
			},
			get:    func(i int) bool { _, ok := c.Get(k.lookupStr[i]); return ok },
			getAt:  func(j int) bool { _, ok := c.Get(k.warmStr[j]); return ok },
			set:    func(i int) { c.SetWithTTL(k.lookupStr[i], r, 1, TTL) },
			setAt:  func(j int) { c.SetWithTTL(k.warmStr[j], r, 1, TTL) },
			setNew: func(i int) { c.SetWithTTL(k.freshStr[i], r, 1, TTL) },
			close:  c.Close,
		}
	}},
	{"golang-lru/expirable", func(k keys) target {
		c := expirable.NewLRU[switchboard.SessionKey, switchboard.Route](benchdata.LiveKeys, nil, TTL)
		r := benchdata.Route(1)
		return target{
			load:   func(i int) { c.Add(k.stored[i], r) },
			get:    func(i int) bool { _, ok := c.Get(k.lookups[i]); return ok },
			getAt:  func(j int) bool { _, ok := c.Get(k.warm[j]); return ok },
			set:    func(i int) { c.Add(k.lookups[i], r) },
			setAt:  func(j int) { c.Add(k.warm[j], r) },
			setNew: func(i int) { c.Add(k.fresh[i], r) },
			close:  func() {},
		}
	}},
	{"ttlcache", func(k keys) target {
		c := ttlcache.New(ttlcache.WithTTL[switchboard.SessionKey, switchboard.Route](TTL),
			ttlcache.WithCapacity[switchboard.SessionKey, switchboard.Route](benchdata.LiveKeys),
			ttlcache.WithDisableTouchOnHit[switchboard.SessionKey, switchboard.Route]())
		r := benchdata.Route(1)
		return target{
			load:   func(i int) { c.Set(k.stored[i], r, ttlcache.DefaultTTL) },
			get:    func(i int) bool { return c.Get(k.lookups[i]) != nil },
			getAt:  func(j int) bool { return c.Get(k.warm[j]) != nil },
			set:    func(i int) { c.Set(k.lookups[i], r, ttlcache.DefaultTTL) },
			setAt:  func(j int) { c.Set(k.warm[j], r, ttlcache.DefaultTTL) },
			setNew: func(i int) { c.Set(k.fresh[i], r, ttlcache.DefaultTTL) },
			close:  c.Stop,
		}
	}},
}

// switchboardTarget is the Manager target, with the Manager for variants.
type switchboardTarget struct {
	target
	manager *switchboard.Manager
}

// partitions is the Manager's partition count: 16, as in the workload the
// performance work was specified on, or SWITCHBOARD_BENCH_PARTITIONS. (The
// library's default is 2 per CPU, 4 on a 2-core machine: there, writes
// from two cores meet on a partition's lock four times as often; see
// docs/benchmarks.md.)
func partitions() int {
	if n, err := strconv.Atoi(os.Getenv("SWITCHBOARD_BENCH_PARTITIONS")); err == nil && n > 0 {
		return n
	}
	return 16
}

func newSwitchboard(k keys) switchboardTarget {
	// Capacity is per partition: benchdata.LiveKeys spread over the partitions, with
	// 2% headroom for their uneven shares.
	perPartition := benchdata.LiveKeys / partitions() * 102 / 100
	m, err := switchboard.New(switchboard.Config{PartitionCount: partitions(), MaxEntriesPerPartition: perPartition, TTL: TTL})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	r := benchdata.Route(1)
	return switchboardTarget{manager: m, target: target{
		load:   func(i int) { _ = m.Set(ctx, k.stored[i], r) },
		get:    func(i int) bool { _, err := m.Get(ctx, k.lookups[i]); return err == nil },
		getAt:  func(j int) bool { _, err := m.Get(ctx, k.warm[j]); return err == nil },
		set:    func(i int) { _ = m.Set(ctx, k.lookups[i], r) },
		setAt:  func(j int) { _ = m.Set(ctx, k.warm[j], r) },
		setNew: func(i int) { _ = m.Set(ctx, k.fresh[i], r) },
		close:  func() { _ = m.Close() },
	}}
}

// A Suite is one round of comparisons: each target is built and loaded
// with the live keys once, on its first case, and shared by all its
// workloads (none changes which keys are live, except set_new_evicting,
// which comes last); every run goes on from the key where the target's
// previous run stopped, so that testing.Benchmark's successive runs do not
// revisit keys the last run left in cache. Cases come target by target,
// and the last case of a target releases it (Case.Done), so that one
// target is in memory at a time: the collection testing.Benchmark forces
// before every run then scans one target's heap, not all of them (with
// every target loaded at once, those collections took a third of the
// comparison's time). Close releases whatever is left.
type Suite struct {
	keys     keys
	fixtures map[string]*fixture
	floor    map[switchboard.SessionKey]switchboard.Route
}

// fixture is one built target and where its runs are in the visiting
// order: live is the next step over the live keys, fresh over FreshKeys.
type fixture struct {
	target
	live, fresh int
}

// NewSuite returns a Suite over the shared keys; nothing is built yet.
func NewSuite() *Suite {
	return &Suite{keys: sharedKeys(), fixtures: map[string]*fixture{}}
}

// Close releases every target the suite built.
func (s *Suite) Close() {
	for name := range s.fixtures {
		s.release(name)
	}
	s.floor = nil
}

func (s *Suite) fixture(name string, mk func(k keys) target) *fixture {
	if f := s.fixtures[name]; f != nil {
		return f
	}
	f := &fixture{target: mk(s.keys)}
	for i := range benchdata.LiveKeys {
		f.load(i)
	}
	time.Sleep(10 * time.Millisecond) // let buffered caches (ristretto) apply their writes
	s.fixtures[name] = f
	return f
}

func (s *Suite) release(name string) {
	if f := s.fixtures[name]; f != nil {
		f.close()
		delete(s.fixtures, name)
	}
}

func (s *Suite) floorMap() map[switchboard.SessionKey]switchboard.Route {
	if s.floor == nil {
		s.floor = map[switchboard.SessionKey]switchboard.Route{}
		for i := range benchdata.LiveKeys {
			s.floor[benchdata.Key(i)] = benchdata.Route(i)
		}
	}
	return s.floor
}

// Cases returns every comparison: get hit and overwrite set (each with cold
// and with warm caller keys, see keys), a 90/10 get/set mix and new keys
// with eviction, each serial and under RunParallel, with keys in a fixed
// random order (as messages from many conversations arrive); plus reads of
// a plain unlocked map as the floor. They come target by target (see
// Suite), each target's eviction workload last: it replaces the live keys.
func (s *Suite) Cases() []Case {
	var out []Case
	// Each op reports whether it was a read that missed.
	// i is the live key the step visits, j the step (mod the schedule length):
	// the warm workloads read the caller's key from keys.warm[j].
	workloads := []struct {
		name string
		op   func(t *target, i, j int, rng uint64) (miss bool)
	}{
		{"get_hit", func(t *target, i, _ int, _ uint64) bool { return !t.get(i) }},
		{"get_hit_warm", func(t *target, _, j int, _ uint64) bool { return !t.getAt(j) }},
		{"set_overwrite", func(t *target, i, _ int, _ uint64) bool { t.set(i); return false }},
		{"set_overwrite_warm", func(t *target, _, j int, _ uint64) bool { t.setAt(j); return false }},
		{"mix_90get_10set", func(t *target, i, _ int, rng uint64) bool {
			if rng%10 == 0 {
				t.set(i)
				return false
			}
			return !t.get(i)
		}},
		{"set_new_evicting", func(t *target, i, _ int, _ uint64) bool { t.setNew(i); return false }},
	}
	for _, mk := range makers {
		for _, wl := range workloads {
			for _, mode := range []string{"serial", "parallel"} {
				out = append(out, Case{Workload: wl.name + "/" + mode, Target: mk.name, Run: func(b *testing.B) {
					f := s.fixture(mk.name, mk.make)
					fresh := wl.name == "set_new_evicting"
					cursor := &f.live
					if fresh {
						cursor = &f.fresh
					}
					run(b, mode == "parallel", fresh, cursor, func(i, j int, rng uint64) bool { return wl.op(&f.target, i, j, rng) })
				}})
			}
		}
		out[len(out)-1].Done = func() { s.release(mk.name) }
	}
	for _, warm := range []bool{false, true} {
		name := "get_hit"
		if warm {
			name = "get_hit_warm"
		}
		for _, mode := range []string{"serial", "parallel"} {
			out = append(out, Case{Workload: name + "/" + mode, Target: "map (unlocked floor)", Run: func(b *testing.B) {
				m, k := s.floorMap(), s.keys
				var cursor int
				run(b, mode == "parallel", false, &cursor, func(i, j int, _ uint64) bool {
					key := k.lookups[i]
					if warm {
						key = k.warm[j]
					}
					_, ok := m[key]
					return !ok
				})
			}})
		}
	}
	out[len(out)-1].Done = func() { s.floor = nil }
	return out
}

// run calls op over a fixed random permutation of key indexes, serially
// or under RunParallel (each goroutine from its own offset), starting at
// step *cursor and leaving *cursor after the last step; fresh selects the
// FreshKeys pool instead of the live keys. It reports the share of reads
// that missed as "miss%": a cache that drops or has not yet applied writes
// looks faster than it is.
func run(b *testing.B, parallel, fresh bool, cursor *int, op func(i, j int, rng uint64) (miss bool)) {
	order := liveOrder()
	if fresh {
		order = freshOrder()
	}
	n := len(order)
	start := *cursor
	*cursor = (start + b.N) % n
	var misses atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	if !parallel {
		for j := start; j < start+b.N; j++ {
			if op(order[j%n], j%n, uint64(j)*0x9e3779b97f4a7c15>>32) {
				misses.Add(1)
			}
		}
	} else {
		var next atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			j := start + int(next.Add(1))*7919
			local := int64(0)
			for pb.Next() {
				if op(order[j%n], j%n, uint64(j)*0x9e3779b97f4a7c15>>32) {
					local++
				}
				j++
			}
			misses.Add(local)
		})
	}
	b.ReportMetric(100*float64(misses.Load())/float64(b.N), "miss%")
}

// liveOrder and freshOrder are the visiting orders, computed once.
var (
	liveOrder  = sync.OnceValue(visitOrder)
	freshOrder = sync.OnceValue(func() []int { return rand.New(rand.NewPCG(1, 2)).Perm(FreshKeys) })
)
