package switchboard_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/switchboard-go/switchboard"
	"github.com/switchboard-go/switchboard/storetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// faultStore is a MemoryStore whose partitions can be taken down: calls on
// a down partition fail as a network backend's would.
type faultStore struct {
	*switchboard.MemoryStore
	mu     sync.Mutex
	down   map[int]bool
	during func() // called inside every store call, to act mid-call
}

func newFaultStore() *faultStore {
	return &faultStore{MemoryStore: switchboard.NewMemoryStore(), down: map[int]bool{}}
}

var errRefused = fmt.Errorf("dial tcp 127.0.0.1:7001: %w", syscall.ECONNREFUSED)

func (f *faultStore) setDown(p int, down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down[p] = down
}

func (f *faultStore) check(p int) error {
	f.mu.Lock()
	down, during := f.down[p], f.during
	f.mu.Unlock()
	if during != nil {
		during()
	}
	if down {
		return fmt.Errorf("%w: partition %d: %w", switchboard.ErrPartitionUnavailable, p, errRefused)
	}
	return nil
}

func (f *faultStore) Get(ctx context.Context, k switchboard.StoreKey, now time.Time) (switchboard.Record, error) {
	if err := f.check(k.Partition); err != nil {
		return switchboard.Record{}, err
	}
	return f.MemoryStore.Get(ctx, k, now)
}

func (f *faultStore) Set(ctx context.Context, k switchboard.StoreKey, r switchboard.Record) (switchboard.SetResult, error) {
	if err := f.check(k.Partition); err != nil {
		return switchboard.SetResult{}, err
	}
	return f.MemoryStore.Set(ctx, k, r)
}

func (f *faultStore) Resolve(ctx context.Context, req switchboard.ResolveRequest) (switchboard.ResolveResult, error) {
	if err := f.check(req.Key.Partition); err != nil {
		return switchboard.ResolveResult{}, err
	}
	return f.MemoryStore.Resolve(ctx, req)
}

func (f *faultStore) Delete(ctx context.Context, k switchboard.StoreKey) (int, error) {
	if err := f.check(k.Partition); err != nil {
		return 0, err
	}
	return f.MemoryStore.Delete(ctx, k)
}

func (f *faultStore) Prune(ctx context.Context, p int, now time.Time) (switchboard.PruneStats, error) {
	if err := f.check(p); err != nil {
		return switchboard.PruneStats{}, err
	}
	return f.MemoryStore.Prune(ctx, p, now)
}

func (f *faultStore) Stat(ctx context.Context, p int) (switchboard.StoreStatus, error) {
	if err := f.check(p); err != nil {
		return switchboard.StoreStatus{Owner: "127.0.0.1:7001"}, nil
	}
	return f.MemoryStore.Stat(ctx, p)
}

type events struct {
	mu  sync.Mutex
	all []switchboard.Event
}

func (e *events) Observe(ev switchboard.Event) { e.mu.Lock(); e.all = append(e.all, ev); e.mu.Unlock() }

func (e *events) kinds() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, ev := range e.all {
		s := string(ev.Kind)
		if ev.FallbackReason != "" {
			s += "/" + string(ev.FallbackReason)
		}
		out = append(out, s)
	}
	e.all = nil
	return out
}

func newFaultManager(t *testing.T, cfg switchboard.Config) (*switchboard.Manager, *faultStore, *storetest.Clock, *events) {
	t.Helper()
	fs := newFaultStore()
	clock := storetest.NewClock(time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC))
	obs := &events{}
	m, err := switchboard.New(cfg, switchboard.WithStore(fs), switchboard.WithClock(clock.Now), switchboard.WithObserver(obs))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m, fs, clock, obs
}

func tkey(room, thread string) switchboard.SessionKey {
	return switchboard.SessionKey{ChannelType: "slack", BridgeID: "T1", RoomID: room, ThreadID: thread}
}

func TestPartitionUnavailable(t *testing.T) {
	ctx := context.Background()
	m, fs, _, obs := newFaultManager(t, switchboard.Config{PartitionCount: 4})
	k := tkey("C1", "th")
	p := m.RoutePartition(k)
	if err := m.Set(ctx, k.RoomScope(), switchboard.Route{ExternalRoomID: "room"}); err != nil {
		t.Fatal(err)
	}
	fs.setDown(p, true)
	obs.kinds()

	fb := switchboard.Route{ExternalRoomID: "fb", Meta: map[string]string{"a": "1"}}
	res, err := m.Resolve(ctx, k, switchboard.Route{}, fb)
	if err != nil {
		t.Fatalf("Resolve with a fallback on a down partition: %v", err)
	}
	want := switchboard.Resolution{ExternalRoomID: "fb", Route: fb, Partition: p, SessionKey: k,
		Source: switchboard.SourceProvidedFallback, Fallback: true, FallbackReason: switchboard.ReasonSessionUnavailable}
	if fmt.Sprint(res) != fmt.Sprint(want) {
		t.Fatalf("Resolve = %+v, want %+v", res, want)
	}
	res.Route.Meta["a"] = "changed"
	if fb.Meta["a"] != "1" {
		t.Fatal("the returned route shares Meta with the caller's fallback")
	}
	if got := obs.kinds(); strings.Join(got, ",") != "fallback/session_unavailable,resolved/session_unavailable" {
		t.Fatalf("events = %v", got)
	}

	checks := map[string]error{}
	_, checks["Resolve without fallback"] = m.Resolve(ctx, k)
	_, checks["Get"] = m.Get(ctx, k)
	checks["Set"] = m.Set(ctx, k, fb)
	checks["Delete"] = m.Delete(ctx, k)
	for op, err := range checks {
		if !errors.Is(err, switchboard.ErrPartitionUnavailable) || !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("%s on a down partition: err = %v, want ErrPartitionUnavailable wrapping the cause", op, err)
		}
	}
	st, err := m.PartitionStatus(ctx, p)
	if err != nil || st.Available || st.Owner != "127.0.0.1:7001" {
		t.Fatalf("PartitionStatus of a down partition = %+v, %v", st, err)
	}

	// Other partitions keep working.
	var other switchboard.SessionKey
	for i := 0; ; i++ {
		if other = tkey(fmt.Sprintf("C%d", i), ""); m.RoutePartition(other) != p {
			break
		}
	}
	if err := m.Set(ctx, other, fb); err != nil {
		t.Fatalf("Set on a healthy partition: %v", err)
	}
	if res, err := m.Resolve(ctx, other); err != nil || res.Source != switchboard.SourceStateHit {
		t.Fatalf("Resolve on a healthy partition = %+v, %v", res, err)
	}

	// Nothing was stored by the session_unavailable answer; the partition
	// works again once it is back.
	fs.setDown(p, false)
	if _, err := m.Get(ctx, k); !errors.Is(err, switchboard.ErrNotFound) {
		t.Fatalf("Get after recovery: err = %v, want ErrNotFound", err)
	}
	if res, err := m.Resolve(ctx, k); err != nil || res.Source != switchboard.SourcePartitionFallback || res.ExternalRoomID != "room" {
		t.Fatalf("Resolve after recovery = %+v, %v", res, err)
	}
}

func TestPrunePartialFailure(t *testing.T) {
	ctx := context.Background()
	m, fs, clock, _ := newFaultManager(t, switchboard.Config{PartitionCount: 4, TTL: time.Minute})
	perPartition := map[int]int{}
	for i := range 40 {
		k := tkey(fmt.Sprintf("C%d", i), "")
		perPartition[m.RoutePartition(k)]++
		if err := m.Set(ctx, k, switchboard.Route{ExternalRoomID: "r"}); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(time.Minute)
	fs.setDown(1, true)
	fs.setDown(3, true)
	res, err := m.Prune(ctx)
	if want := perPartition[0] + perPartition[2]; res.Pruned != want || res.Partitions != 2 {
		t.Fatalf("Prune = %+v, want %d pruned over 2 partitions", res, want)
	}
	if !errors.Is(err, switchboard.ErrPartitionUnavailable) || !strings.Contains(err.Error(), "partition 1") || !strings.Contains(err.Error(), "partition 3") {
		t.Fatalf("Prune error = %v, want ErrPartitionUnavailable for partitions 1 and 3", err)
	}
	fs.setDown(1, false)
	fs.setDown(3, false)
	if res, err := m.Prune(ctx); err != nil || res.Pruned != perPartition[1]+perPartition[3] || res.Partitions != 4 {
		t.Fatalf("Prune after recovery = %+v, %v", res, err)
	}
}

// TestContextWinsOverStoreError: when the caller's context ends during a
// store call, the Manager reports the context's error, not the store's.
func TestContextWinsOverStoreError(t *testing.T) {
	m, fs, _, _ := newFaultManager(t, switchboard.Config{PartitionCount: 1})
	fs.setDown(0, true)
	ctx, cancel := context.WithCancel(context.Background())
	fs.during = cancel
	if _, err := m.Resolve(ctx, tkey("C1", ""), switchboard.Route{ExternalRoomID: "fb"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Resolve: err = %v, want context.Canceled", err)
	}
}

// TestObserverOutsideLocks: an observer that calls back into the Manager on
// the same partition must not deadlock.
func TestObserverOutsideLocks(t *testing.T) {
	ctx := context.Background()
	var m *switchboard.Manager
	calls := 0
	obs := switchboard.ObserverFunc(func(e switchboard.Event) {
		if e.SessionKey == (switchboard.SessionKey{}) || e.Kind == switchboard.EventDeleted {
			return
		}
		calls++
		_, _ = m.Get(ctx, e.SessionKey)
		if e.Kind == switchboard.EventSet {
			_ = m.Delete(ctx, e.SessionKey) // needs the write lock
		}
	})
	m, err := switchboard.New(switchboard.Config{PartitionCount: 1, MaxEntriesPerPartition: 1}, switchboard.WithObserver(obs))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = m.Set(ctx, tkey("C1", ""), switchboard.Route{ExternalRoomID: "r"})
		_, _ = m.Resolve(ctx, tkey("C2", "t"), switchboard.Route{ExternalRoomID: "r"})
		_, _ = m.Prune(ctx)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("an observer calling back into the Manager deadlocked")
	}
	if calls < 3 {
		t.Fatalf("observer called %d times, want at least 3", calls)
	}
}

// TestBackgroundPrune: the background goroutine prunes every PruneInterval
// and Close stops it (TestMain checks for leaked goroutines).
func TestBackgroundPrune(t *testing.T) {
	clock := storetest.NewClock(time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC))
	pruned := make(chan int, 100)
	obs := switchboard.ObserverFunc(func(e switchboard.Event) {
		if e.Kind == switchboard.EventPruned && e.Count > 0 {
			select {
			case pruned <- e.Count:
			default:
			}
		}
	})
	m, err := switchboard.New(switchboard.Config{PartitionCount: 1, TTL: time.Minute, PruneInterval: time.Millisecond},
		switchboard.WithClock(clock.Now), switchboard.WithObserver(obs))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 5 {
		if err := m.Set(ctx, tkey(fmt.Sprintf("C%d", i), ""), switchboard.Route{ExternalRoomID: "r"}); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(time.Minute)
	select {
	case n := <-pruned:
		if n != 5 {
			t.Fatalf("background prune deleted %d records, want 5", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no background prune within 10s at a 1ms interval")
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestDefaultClock(t *testing.T) {
	m, err := switchboard.New(switchboard.Config{TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()
	k := tkey("C1", "")
	before := time.Now()
	if err := m.Set(ctx, k, switchboard.Route{ExternalRoomID: "r"}); err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	rec, err := m.Get(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	// The default clock is coarse: up to about a millisecond behind (more
	// on a loaded machine, hence the margin).
	const slack = 50 * time.Millisecond
	if rec.UpdatedAt.Before(before.Add(-slack)) || rec.UpdatedAt.After(after) {
		t.Fatalf("UpdatedAt %v not within [%v, %v]", rec.UpdatedAt, before.Add(-slack), after)
	}
	if got := rec.ExpiresAt.Sub(rec.UpdatedAt); got != time.Hour {
		t.Fatalf("ExpiresAt - UpdatedAt = %v, want 1h", got)
	}
}

func TestNewOptions(t *testing.T) {
	// nil options are ignored; a nil-config Manager has the defaults.
	m, err := switchboard.New(switchboard.Config{}, nil, switchboard.WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Config() != switchboard.DefaultConfig() {
		t.Fatalf("Config() = %+v, want the defaults", m.Config())
	}
	if m.PartitionCount() != switchboard.DefaultConfig().PartitionCount {
		t.Fatalf("PartitionCount() = %d", m.PartitionCount())
	}
}
