package switchboard_test

import (
	"context"
	"runtime"
	"strings"
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

// TestMemoryStoreConformanceWithFaults runs the suite through a FaultStore,
// so the rules about unavailable partitions run for the Manager over the
// memory backend too.
func TestMemoryStoreConformanceWithFaults(t *testing.T) {
	storetest.Run(t, func(*testing.T) switchboard.Store { return storetest.NewFaultStore(switchboard.NewMemoryStore()) })
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

// TestMemoryStoreStress runs the suite's concurrency rule with many more
// goroutines and operations than the suite uses, under -race in CI, since
// the memory backend's locking is its own.
func TestMemoryStoreStress(t *testing.T) {
	storetest.Stress(t, func(*testing.T) switchboard.Store { return switchboard.NewMemoryStore() }, 64, 2000)
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
