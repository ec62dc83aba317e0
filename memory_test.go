package switchboard_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-go/switchboard"
	"github.com/switchboard-go/switchboard/storetest"
)

func TestMemoryStoreConformance(t *testing.T) {
	storetest.Run(t, func(*testing.T) switchboard.Store { return switchboard.NewMemoryStore() })
}

// TestMemoryStoreConformanceThroughInterface runs the suite with the
// MemoryStore hidden behind the Store interface, so the Manager takes the
// path every other backend takes instead of its MemoryStore fast path.
func TestMemoryStoreConformanceThroughInterface(t *testing.T) {
	type opaque struct{ switchboard.Store }
	storetest.Run(t, func(*testing.T) switchboard.Store { return opaque{switchboard.NewMemoryStore()} })
}

func TestMemoryStoreServesOneManager(t *testing.T) {
	st := switchboard.NewMemoryStore()
	m, err := switchboard.New(switchboard.Config{}, switchboard.WithStore(st))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := switchboard.New(switchboard.Config{}, switchboard.WithStore(st)); err == nil {
		t.Fatal("a second Manager on the same MemoryStore: want an error")
	}
}

// TestMemoryStoreOverwriteDoesNotGrow sets one key two million times and
// checks that the heap does not grow with the number of writes.
func TestMemoryStoreOverwriteDoesNotGrow(t *testing.T) {
	if testing.Short() {
		t.Skip("2M writes; skipped with -short")
	}
	m, err := switchboard.New(switchboard.Config{PartitionCount: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()
	k := switchboard.SessionKey{ChannelType: "telegram", BridgeID: "bot_1", RoomID: "chat_1", ThreadID: "t"}
	r := switchboard.Route{ExternalRoomID: "-100200300"}
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	if err := m.Set(ctx, k, r); err != nil {
		t.Fatal(err)
	}
	before := heap()
	for range 2_000_000 {
		if err := m.Set(ctx, k, r); err != nil {
			t.Fatal(err)
		}
	}
	after := heap()
	if after > before+64<<10 {
		t.Fatalf("heap grew from %d to %d bytes over 2M overwrites of one key", before, after)
	}
	st, err := m.PartitionStatus(ctx, m.RoutePartition(k))
	if err != nil || st.Entries != 1 {
		t.Fatalf("PartitionStatus = %+v, %v; want 1 entry", st, err)
	}
}

// TestMemoryStoreStress runs many goroutines mixing every operation on
// overlapping keys while the clock moves, under -race in CI, and checks the
// invariants the whole time: no partition ever reports more records than
// its capacity, every read returns a route written for that key (or, for a
// thread, for its room), and afterwards each partition's size equals the
// records that can be read from it.
func TestMemoryStoreStress(t *testing.T) {
	const (
		workers  = 64
		ops      = 2000
		rooms    = 40
		capacity = 16
		parts    = 4
	)
	clock := storetest.NewClock(time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC))
	var maxSize atomic.Int64
	obs := switchboard.ObserverFunc(func(e switchboard.Event) {
		for {
			cur := maxSize.Load()
			if int64(e.Size) <= cur || maxSize.CompareAndSwap(cur, int64(e.Size)) {
				return
			}
		}
	})
	m, err := switchboard.New(switchboard.Config{PartitionCount: parts, MaxEntriesPerPartition: capacity, TTL: time.Second},
		switchboard.WithClock(clock.Now), switchboard.WithObserver(obs))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()
	var keys []switchboard.SessionKey
	for r := range rooms {
		for _, th := range []string{"", "a", "b"} {
			keys = append(keys, switchboard.SessionKey{ChannelType: "slack", BridgeID: "T1", RoomID: fmt.Sprintf("C%d", r), ThreadID: th})
		}
	}
	wroteFor := func(id string, k switchboard.SessionKey) bool {
		owner, _, _ := strings.Cut(id, "#")
		return owner == k.String() || owner == k.RoomScope().String()
	}
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for i := range ops {
				k := keys[rng.IntN(len(keys))]
				var err error
				switch op := rng.IntN(100); {
				case op < 30:
					err = m.Set(ctx, k, switchboard.Route{ExternalRoomID: fmt.Sprintf("%s#%d.%d", k, w, i)})
				case op < 55:
					var rec switchboard.Record
					if rec, err = m.Get(ctx, k); err == nil && !wroteFor(rec.Route.ExternalRoomID, k) {
						err = fmt.Errorf("Get(%v) = %q", k, rec.Route.ExternalRoomID)
					}
				case op < 90:
					var res switchboard.Resolution
					res, err = m.Resolve(ctx, k, switchboard.Route{ExternalRoomID: k.String() + "#fb"})
					if err == nil && !wroteFor(res.ExternalRoomID, k) {
						err = fmt.Errorf("Resolve(%v) = %q (%s)", k, res.ExternalRoomID, res.Source)
					}
				case op < 95:
					err = m.Delete(ctx, k)
				case op < 97:
					_, err = m.Prune(ctx)
				default:
					clock.Advance(100 * time.Millisecond)
				}
				if err != nil && !errors.Is(err, switchboard.ErrNotFound) && !errors.Is(err, switchboard.ErrExpired) {
					errc <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	if got := maxSize.Load(); got > capacity {
		t.Errorf("a partition reported %d records, capacity %d", got, capacity)
	}
	if _, err := m.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	readable := map[int]int{}
	for _, k := range keys {
		if _, err := m.Get(ctx, k); err == nil {
			readable[m.RoutePartition(k)]++
		} else if !errors.Is(err, switchboard.ErrNotFound) {
			t.Errorf("Get(%v) after the run: %v", k, err)
		}
	}
	for p := range parts {
		st, err := m.PartitionStatus(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Entries != readable[p] {
			t.Errorf("partition %d: %d entries, %d readable", p, st.Entries, readable[p])
		}
	}
}

// TestMemoryStoreHitsDoNotAllocate pins the zero-allocation hit paths: Get
// and Resolve of a fresh record, and overwriting Set with nil Meta.
func TestMemoryStoreHitsDoNotAllocate(t *testing.T) {
	m, err := switchboard.New(switchboard.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()
	stored := switchboard.SessionKey{ChannelType: "telegram", BridgeID: "bot_1", RoomID: "chat_1", ThreadID: "9"}
	r := switchboard.Route{ExternalRoomID: "-1001", ChannelType: "telegram"}
	if err := m.Set(ctx, stored, r); err != nil {
		t.Fatal(err)
	}
	k := switchboard.SessionKey{ChannelType: strings.Clone("telegram"), BridgeID: strings.Clone("bot_1"),
		RoomID: strings.Clone("chat_1"), ThreadID: strings.Clone("9")}
	fb := switchboard.Route{ExternalRoomID: "-1002"}
	for name, op := range map[string]func(){
		"Get":        func() { _, _ = m.Get(ctx, k) },
		"Resolve":    func() { _, _ = m.Resolve(ctx, k, fb) },
		"Set":        func() { _ = m.Set(ctx, k, r) },
		"SetWithTTL": func() { _ = m.Set(ctx, k, r, switchboard.WithTTL(time.Hour)) },
	} {
		if n := testing.AllocsPerRun(1000, op); n != 0 {
			t.Errorf("%s allocates %v times per call, want 0", name, n)
		}
	}
}
