package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-go/switchboard"
)

// Factory returns a new, empty Store for one subtest, not yet initialized.
// The suite hands it to switchboard.New (which calls Init) or calls its
// methods itself, and closes it at the end of the subtest. Use t.Cleanup
// for anything else the store needs released.
type Factory func(t *testing.T) switchboard.Store

// start is the time the suite's clocks start at.
var start = time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)

type rule struct {
	name string
	fn   func(*testing.T, Factory)
}

// Run runs the conformance suite against the stores newStore makes. Each
// rule is a subtest with a fresh store, in five groups:
//
//   - Store: the SPI called directly (Init, Close, done contexts, the
//     sizes, flags and outcomes every method reports);
//   - Manager: sections 1–5 of the contract through a Manager on the store
//     (freshness, capacity, eviction, resolve, prune, events, concurrency);
//   - Trust: section 6 (provenance, precedence, revisions, conditional
//     writes, Confirm, Invalidate, tombstones, provisional routes);
//   - Operate: section 7 (List, DeleteMatching, Explain);
//   - Faults: unavailable partitions, when the store implements
//     PartitionBreaker (a store that cannot fail has nothing to prove
//     there: its subtests say so and skip).
func Run(t *testing.T, newStore Factory) {
	t.Helper()
	groups := []struct {
		name  string
		rules []rule
	}{
		{"Store", storeRules},
		{"Manager", managerRules},
		{"Trust", trustRules},
		{"Operate", operateRules},
		{"Faults", faultRules},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, r := range g.rules {
				t.Run(r.name, func(t *testing.T) { r.fn(t, newStore) })
			}
		})
	}
}

// env is one subtest's Manager over a fresh store.
type env struct {
	t       *testing.T
	m       *switchboard.Manager
	store   switchboard.Store
	clock   *Clock
	obs     *recorder
	ctx     context.Context
	breaker PartitionBreaker // nil when the store cannot break partitions
}

func newEnv(t *testing.T, newStore Factory, cfg switchboard.Config) *env {
	t.Helper()
	clock := NewClock(start)
	obs := &recorder{}
	if cfg.PruneInterval == 0 {
		cfg.PruneInterval = time.Hour // the suite prunes explicitly
	}
	st := newStore(t)
	m, err := switchboard.New(cfg, switchboard.WithStore(st), switchboard.WithClock(clock.Now), switchboard.WithObserver(obs))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = m.Close() })
	b, _ := st.(PartitionBreaker)
	return &env{t: t, m: m, store: st, clock: clock, obs: obs, ctx: context.Background(), breaker: b}
}

func key(room, thread string) switchboard.SessionKey {
	return switchboard.SessionKey{ChannelType: "telegram", BridgeID: "bot_1", RoomID: room, ThreadID: thread}
}

func route(id string) switchboard.Route {
	return switchboard.Route{ExternalRoomID: id, ChannelType: "telegram", BridgeID: "bot_1", RoomID: id}
}

func (e *env) set(k switchboard.SessionKey, r switchboard.Route, opts ...switchboard.SetOption) {
	e.t.Helper()
	if err := e.m.Set(e.ctx, k, r, opts...); err != nil {
		e.t.Fatalf("Set(%v): %v", k, err)
	}
}

func (e *env) get(k switchboard.SessionKey) switchboard.Record {
	e.t.Helper()
	rec, err := e.m.Get(e.ctx, k)
	if err != nil {
		e.t.Fatalf("Get(%v): %v", k, err)
	}
	return rec
}

func (e *env) resolve(k switchboard.SessionKey, fallbacks ...switchboard.Route) switchboard.Resolution {
	e.t.Helper()
	res, err := e.m.Resolve(e.ctx, k, fallbacks...)
	if err != nil {
		e.t.Fatalf("Resolve(%v): %v", k, err)
	}
	return res
}

// wantGetErr checks that Get(k) fails with target.
func (e *env) wantGetErr(k switchboard.SessionKey, target error) {
	e.t.Helper()
	rec, err := e.m.Get(e.ctx, k)
	if !errors.Is(err, target) {
		e.t.Fatalf("Get(%v) = %+v, %v; want error %v", k, rec, err, target)
	}
}

// wantRoute checks that Get(k) returns a route with ExternalRoomID id.
func (e *env) wantRoute(k switchboard.SessionKey, id string) {
	e.t.Helper()
	if got := e.get(k).Route.ExternalRoomID; got != id {
		e.t.Fatalf("Get(%v).Route.ExternalRoomID = %q, want %q", k, got, id)
	}
}

func (e *env) entries() (total int) {
	e.t.Helper()
	for p := range e.m.PartitionCount() {
		st, err := e.m.PartitionStatus(e.ctx, p)
		if err != nil {
			e.t.Fatalf("PartitionStatus(%d): %v", p, err)
		}
		total += st.Entries
	}
	return total
}

// keyIn returns a key of the given room prefix that lives in partition p.
func (e *env) keyIn(p int, prefix, thread string) switchboard.SessionKey {
	e.t.Helper()
	for i := 0; i < 100000; i++ {
		if k := key(fmt.Sprintf("%s%d", prefix, i), thread); e.m.RoutePartition(k) == p {
			return k
		}
	}
	e.t.Fatalf("no key in partition %d", p)
	return switchboard.SessionKey{}
}

// recorder is an Observer that keeps every event.
type recorder struct {
	mu     sync.Mutex
	events []switchboard.Event
}

func (r *recorder) Observe(e switchboard.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

// take returns the events since the last take.
func (r *recorder) take() []switchboard.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.events
	r.events = nil
	return out
}

func sameResolution(a, b switchboard.Resolution) bool {
	return a.ExternalRoomID == b.ExternalRoomID && sameRoute(a.Route, b.Route) && a.Partition == b.Partition &&
		a.SessionKey == b.SessionKey && a.Source == b.Source && a.Fallback == b.Fallback && a.Stale == b.Stale &&
		a.FallbackReason == b.FallbackReason
}

func sameRoute(a, b switchboard.Route) bool {
	if a.ExternalRoomID != b.ExternalRoomID || a.ChannelType != b.ChannelType || a.BridgeID != b.BridgeID ||
		a.RoomID != b.RoomID || a.ThreadID != b.ThreadID || len(a.Meta) != len(b.Meta) {
		return false
	}
	for k, v := range a.Meta {
		if w, ok := b.Meta[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func bigMeta(n int) map[string]string {
	m := make(map[string]string, n)
	for i := range n {
		m[fmt.Sprintf("k%d", i)] = "v"
	}
	return m
}
