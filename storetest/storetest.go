package storetest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-go/switchboard"
)

// Factory returns a new, empty Store for one subtest. The suite hands it to
// switchboard.New (which calls Init) and closes the Manager at the end of
// the subtest (which closes the Store). Use t.Cleanup for anything else the
// store needs released.
type Factory func(t *testing.T) switchboard.Store

// Start is the time the suite's clocks start at.
var start = time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)

// Run runs the conformance suite against the stores newStore makes. Each
// rule is a subtest with a fresh store.
func Run(t *testing.T, newStore Factory) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(*testing.T, Factory)
	}{
		{"KeyStringForm", testKeyStringForm},
		{"PartitionStability", testPartitionStability},
		{"ConfigMerge", testConfigMerge},
		{"SetGet", testSetGet},
		{"TTLBoundary", testTTLBoundary},
		{"ExpiredReadDeletes", testExpiredReadDeletes},
		{"WithTTL", testWithTTL},
		{"BadInputKeepsState", testBadInputKeepsState},
		{"Overwrite", testOverwrite},
		{"EvictionOrder", testEvictionOrder},
		{"CapacityPerPartition", testCapacityPerPartition},
		{"Resolve", testResolve},
		{"ResolveStoredBecomesHit", testResolveStoredBecomesHit},
		{"ResolveEvicts", testResolveEvicts},
		{"Delete", testDelete},
		{"Prune", testPrune},
		{"PartitionStatus", testPartitionStatus},
		{"Copies", testCopies},
		{"ContextDone", testContextDone},
		{"Events", testEvents},
		{"Concurrent", testConcurrent},
		{"Close", testClose},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, newStore) })
	}
}

// env is one subtest's Manager over a fresh store.
type env struct {
	t     *testing.T
	m     *switchboard.Manager
	clock *Clock
	obs   *recorder
	ctx   context.Context
}

func newEnv(t *testing.T, newStore Factory, cfg switchboard.Config) *env {
	t.Helper()
	clock := NewClock(start)
	obs := &recorder{}
	if cfg.PruneInterval == 0 {
		cfg.PruneInterval = time.Hour // the suite prunes explicitly
	}
	m, err := switchboard.New(cfg, switchboard.WithStore(newStore(t)), switchboard.WithClock(clock.Now), switchboard.WithObserver(obs))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return &env{t: t, m: m, clock: clock, obs: obs, ctx: context.Background()}
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

func testKeyStringForm(t *testing.T, _ Factory) {
	tests := []struct {
		key  switchboard.SessionKey
		want string
	}{
		{switchboard.SessionKey{ChannelType: "telegram", BridgeID: "bot_1", RoomID: "chat_123"}, "telegram:bot_1:chat_123"},
		{switchboard.SessionKey{ChannelType: "slack", BridgeID: "T1", RoomID: "C1", ThreadID: "1700000000.0001"}, "slack:T1:C1:1700000000.0001"},
		{switchboard.SessionKey{ChannelType: "matrix", BridgeID: "b", RoomID: "!abc:matrix.org"}, "matrix:b:!abc%3Amatrix.org"},
		{switchboard.SessionKey{ChannelType: "x", BridgeID: "100%", RoomID: "a%3Ab", ThreadID: ":"}, "x:100%25:a%253Ab:%3A"},
		{switchboard.SessionKey{ChannelType: "discord", BridgeID: "g", RoomID: "ü 💬", ThreadID: "t"}, "discord:g:ü 💬:t"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.key.String(); got != tt.want {
				t.Fatalf("String() = %q, want %q", got, tt.want)
			}
			got, err := switchboard.ParseSessionKey(tt.want)
			if err != nil || got != tt.key {
				t.Fatalf("ParseSessionKey(%q) = %#v, %v; want %#v", tt.want, got, err, tt.key)
			}
		})
	}
}

func testPartitionStability(t *testing.T, newStore Factory) {
	// Golden values: the same key maps to the same partition in every
	// process, on every machine, in every release, whatever the backend.
	tests := []struct {
		key        switchboard.SessionKey
		partitions int
		want       int
	}{
		{switchboard.SessionKey{ChannelType: "telegram", BridgeID: "bot_1", RoomID: "chat_123"}, 8, 2},
		{switchboard.SessionKey{ChannelType: "telegram", BridgeID: "bot_1", RoomID: "chat_123", ThreadID: "t1"}, 8, 2},
		{switchboard.SessionKey{ChannelType: "telegram", BridgeID: "bot_1", RoomID: "chat_123"}, 1024, 207},
		{switchboard.SessionKey{ChannelType: "slack", BridgeID: "T024BE7LD", RoomID: "C024BE91L"}, 1024, 987},
		{switchboard.SessionKey{ChannelType: "matrix", BridgeID: "bridge", RoomID: "!abc:matrix.org"}, 1024, 261},
		{switchboard.SessionKey{ChannelType: "discord", BridgeID: "guild_1", RoomID: "chan_9", ThreadID: "th_2"}, 1024, 457},
		{switchboard.SessionKey{ChannelType: "discord", BridgeID: "guild_1", RoomID: "chan_9"}, 1, 0},
	}
	for _, tt := range tests {
		e := newEnv(t, newStore, switchboard.Config{PartitionCount: tt.partitions})
		if got := e.m.RoutePartition(tt.key); got != tt.want {
			t.Errorf("RoutePartition(%v) with %d partitions = %d, want %d", tt.key, tt.partitions, got, tt.want)
		}
		if got := e.m.PartitionCount(); got != tt.partitions {
			t.Errorf("PartitionCount() = %d, want %d", got, tt.partitions)
		}
	}
}

func testConfigMerge(t *testing.T, newStore Factory) {
	def := switchboard.DefaultConfig()
	e := newEnv(t, newStore, switchboard.Config{TTL: 5 * time.Minute, PruneInterval: time.Hour})
	want := def
	want.TTL = 5 * time.Minute
	want.PruneInterval = time.Hour
	if got := e.m.Config(); got != want {
		t.Fatalf("Config() = %+v, want %+v", got, want)
	}
	if _, err := switchboard.New(switchboard.Config{MaxEntriesPerPartition: -1}, switchboard.WithStore(newStore(t))); !errors.Is(err, switchboard.ErrInvalidConfig) {
		t.Fatalf("New with negative MaxEntriesPerPartition: err = %v, want ErrInvalidConfig", err)
	}
}

func testSetGet(t *testing.T, newStore Factory) {
	e := newEnv(t, newStore, switchboard.Config{TTL: 10 * time.Minute})
	k := key("chat_1", "")
	r := switchboard.Route{ExternalRoomID: "-100123", ChannelType: "telegram", BridgeID: "bot_1", RoomID: "chat_1",
		ThreadID: "", Meta: map[string]string{"lang": "de", "tier": "gold"}}
	e.wantGetErr(k, switchboard.ErrNotFound)
	e.set(k, r)
	rec := e.get(k)
	if rec.Route.ExternalRoomID != r.ExternalRoomID || rec.Route.ChannelType != r.ChannelType ||
		rec.Route.BridgeID != r.BridgeID || rec.Route.RoomID != r.RoomID || rec.Route.ThreadID != r.ThreadID ||
		len(rec.Route.Meta) != 2 || rec.Route.Meta["lang"] != "de" || rec.Route.Meta["tier"] != "gold" {
		t.Fatalf("Get route = %+v, want %+v", rec.Route, r)
	}
	if !rec.UpdatedAt.Equal(start) || !rec.ExpiresAt.Equal(start.Add(10*time.Minute)) {
		t.Fatalf("Get times = %v .. %v, want %v .. %v", rec.UpdatedAt, rec.ExpiresAt, start, start.Add(10*time.Minute))
	}
	// Thread and room keys are distinct records.
	e.wantGetErr(key("chat_1", "t1"), switchboard.ErrNotFound)
	e.set(key("chat_1", "t1"), route("thread-route"))
	e.wantRoute(key("chat_1", "t1"), "thread-route")
	e.wantRoute(k, "-100123")
	// Keys that differ in one component only, or whose components would
	// collide if joined naively, are distinct.
	a := switchboard.SessionKey{ChannelType: "a", BridgeID: "b:c", RoomID: "d"}
	b := switchboard.SessionKey{ChannelType: "a:b", BridgeID: "c", RoomID: "d"}
	e.set(a, route("A"))
	e.set(b, route("B"))
	e.wantRoute(a, "A")
	e.wantRoute(b, "B")
}

func testTTLBoundary(t *testing.T, newStore Factory) {
	const ttl = 30 * time.Minute
	e := newEnv(t, newStore, switchboard.Config{TTL: ttl})
	k := key("chat_1", "")
	e.set(k, route("r"))
	e.clock.Advance(ttl - time.Nanosecond)
	e.wantRoute(k, "r") // fresh 1 ns before ExpiresAt
	res, err := e.m.Resolve(e.ctx, k)
	if err != nil || res.Source != switchboard.SourceStateHit {
		t.Fatalf("Resolve 1 ns before expiry = %+v, %v; want state_hit", res, err)
	}
	e.clock.Advance(time.Nanosecond)
	e.wantGetErr(k, switchboard.ErrExpired) // expired at ExpiresAt
}

func testExpiredReadDeletes(t *testing.T, newStore Factory) {
	e := newEnv(t, newStore, switchboard.Config{TTL: time.Minute})
	k := key("chat_1", "")
	e.set(k, route("r"))
	e.set(key("chat_2", ""), route("r2"), switchboard.WithTTL(time.Hour))
	e.clock.Advance(time.Minute)
	if n := e.entries(); n != 2 {
		t.Fatalf("entries before the expired read = %d, want 2", n)
	}
	e.wantGetErr(k, switchboard.ErrExpired)
	e.wantGetErr(k, switchboard.ErrNotFound)
	if n := e.entries(); n != 1 {
		t.Fatalf("entries after the expired read = %d, want 1", n)
	}
	// Setting again makes it fresh again.
	e.set(k, route("r3"))
	e.wantRoute(k, "r3")
}

func testWithTTL(t *testing.T, newStore Factory) {
	e := newEnv(t, newStore, switchboard.Config{TTL: time.Hour})
	k := key("chat_1", "")
	e.set(k, route("r"), switchboard.WithTTL(5*time.Minute))
	if got := e.get(k).ExpiresAt; !got.Equal(start.Add(5 * time.Minute)) {
		t.Fatalf("ExpiresAt with WithTTL(5m) = %v, want %v", got, start.Add(5*time.Minute))
	}
	e.clock.Advance(5 * time.Minute)
	e.wantGetErr(k, switchboard.ErrExpired)

	// A longer TTL than the config's works too; the last option wins.
	e.set(k, route("r"), switchboard.WithTTL(time.Minute), switchboard.WithTTL(48*time.Hour))
	if got := e.get(k).ExpiresAt; !got.Equal(e.clock.Now().Add(48 * time.Hour)) {
		t.Fatalf("ExpiresAt with WithTTL(48h) = %v, want %v", got, e.clock.Now().Add(48*time.Hour))
	}

	for _, d := range []time.Duration{0, -time.Second, switchboard.MaxTTL + 1} {
		err := e.m.Set(e.ctx, key("chat_bad", ""), route("x"), switchboard.WithTTL(d))
		if !errors.Is(err, switchboard.ErrInvalidTTL) {
			t.Errorf("Set with WithTTL(%v): err = %v, want ErrInvalidTTL", d, err)
		}
	}
	e.wantGetErr(key("chat_bad", ""), switchboard.ErrNotFound)
	// The zero SetOption changes nothing.
	e.set(key("chat_z", ""), route("z"), switchboard.SetOption{})
	if got := e.get(key("chat_z", "")).ExpiresAt; !got.Equal(e.clock.Now().Add(time.Hour)) {
		t.Fatalf("ExpiresAt with a zero SetOption = %v, want the config TTL", got)
	}
}

func testBadInputKeepsState(t *testing.T, newStore Factory) {
	e := newEnv(t, newStore, switchboard.Config{})
	k := key("chat_1", "")
	e.set(k, route("good"))
	before := e.get(k)
	e.clock.Advance(time.Second)

	long := string(make([]byte, switchboard.MaxFieldLen+1))
	badRoutes := map[string]switchboard.Route{
		"empty external id": {ChannelType: "telegram"},
		"control char":      {ExternalRoomID: "a\nb"},
		"invalid utf8":      {ExternalRoomID: "a\xffb"},
		"too long":          {ExternalRoomID: "x", RoomID: long},
		"empty meta key":    {ExternalRoomID: "x", Meta: map[string]string{"": "v"}},
		"meta value ctrl":   {ExternalRoomID: "x", Meta: map[string]string{"k": "\x7f"}},
		"too much meta":     {ExternalRoomID: "x", Meta: bigMeta(switchboard.MaxMetaEntries + 1)},
	}
	for name, r := range badRoutes {
		if err := e.m.Set(e.ctx, k, r); !errors.Is(err, switchboard.ErrInvalidRoute) {
			t.Errorf("Set with %s route: err = %v, want ErrInvalidRoute", name, err)
		}
	}
	badKeys := map[string]switchboard.SessionKey{
		"empty channel": {BridgeID: "b", RoomID: "r"},
		"empty bridge":  {ChannelType: "c", RoomID: "r"},
		"empty room":    {ChannelType: "c", BridgeID: "b"},
		"ctrl thread":   {ChannelType: "c", BridgeID: "b", RoomID: "r", ThreadID: "\x00"},
		"long room":     {ChannelType: "c", BridgeID: "b", RoomID: long},
		"bad utf8":      {ChannelType: "c\xc3", BridgeID: "b", RoomID: "r"},
	}
	for name, bk := range badKeys {
		if err := e.m.Set(e.ctx, bk, route("x")); !errors.Is(err, switchboard.ErrInvalidSessionKey) {
			t.Errorf("Set with %s key: err = %v, want ErrInvalidSessionKey", name, err)
		}
		if _, err := e.m.Get(e.ctx, bk); !errors.Is(err, switchboard.ErrInvalidSessionKey) {
			t.Errorf("Get with %s key: err = %v, want ErrInvalidSessionKey", name, err)
		}
		if _, err := e.m.Resolve(e.ctx, bk, route("fb")); !errors.Is(err, switchboard.ErrInvalidSessionKey) {
			t.Errorf("Resolve with %s key: err = %v, want ErrInvalidSessionKey", name, err)
		}
		if err := e.m.Delete(e.ctx, bk); !errors.Is(err, switchboard.ErrInvalidSessionKey) {
			t.Errorf("Delete with %s key: err = %v, want ErrInvalidSessionKey", name, err)
		}
	}
	if err := e.m.Set(e.ctx, k, route("x"), switchboard.WithTTL(-1)); !errors.Is(err, switchboard.ErrInvalidTTL) {
		t.Errorf("Set with negative TTL: err = %v, want ErrInvalidTTL", err)
	}
	after := e.get(k)
	if after.Route.ExternalRoomID != "good" || !after.UpdatedAt.Equal(before.UpdatedAt) || !after.ExpiresAt.Equal(before.ExpiresAt) {
		t.Fatalf("record after bad input = %+v, want unchanged %+v", after, before)
	}
	if n := e.entries(); n != 1 {
		t.Fatalf("entries after bad input = %d, want 1", n)
	}
}

func bigMeta(n int) map[string]string {
	m := make(map[string]string, n)
	for i := range n {
		m[fmt.Sprintf("k%d", i)] = "v"
	}
	return m
}

func testOverwrite(t *testing.T, newStore Factory) {
	e := newEnv(t, newStore, switchboard.Config{PartitionCount: 1, TTL: time.Minute})
	k := key("chat_1", "")
	for i := range 500 {
		e.set(k, route(fmt.Sprint(i)))
		e.clock.Advance(time.Millisecond)
	}
	if n := e.entries(); n != 1 {
		t.Fatalf("entries after 500 overwrites of one key = %d, want 1", n)
	}
	rec := e.get(k)
	if rec.Route.ExternalRoomID != "499" || !rec.UpdatedAt.Equal(start.Add(499*time.Millisecond)) {
		t.Fatalf("record after overwrites = %+v, want the last write", rec)
	}
	// The last write's TTL counts, not the first's.
	e.clock.Set(start.Add(time.Minute + 100*time.Millisecond))
	e.wantRoute(k, "499")
}

func testEvictionOrder(t *testing.T, newStore Factory) {
	e := newEnv(t, newStore, switchboard.Config{PartitionCount: 1, MaxEntriesPerPartition: 3})
	a, b, c, d, f := key("a", ""), key("b", ""), key("c", ""), key("d", ""), key("f", "")
	e.set(a, route("a"))
	e.set(b, route("b"))
	e.set(c, route("c"))
	e.obs.take()
	e.set(a, route("a2")) // re-setting makes a the newest: order b, c, a
	e.set(d, route("d"))  // evicts b
	e.wantGetErr(b, switchboard.ErrNotFound)
	e.wantRoute(a, "a2")
	e.wantRoute(c, "c")
	e.wantRoute(d, "d")
	evicted := 0
	for _, ev := range e.obs.take() {
		if ev.Kind == switchboard.EventEvicted {
			evicted += ev.Count
			if ev.EvictionReason != switchboard.EvictionCapacity {
				t.Errorf("evicted event reason = %q, want capacity", ev.EvictionReason)
			}
		}
	}
	if evicted != 1 {
		t.Fatalf("evicted events count %d records, want 1", evicted)
	}
	e.set(f, route("f")) // evicts c, the least recently written (reads do not count)
	e.wantGetErr(c, switchboard.ErrNotFound)
	for _, k := range []switchboard.SessionKey{a, d, f} {
		e.get(k)
	}
	if n := e.entries(); n != 3 {
		t.Fatalf("entries = %d, want 3", n)
	}
	// A deleted slot is reused without evicting anyone.
	if err := e.m.Delete(e.ctx, a); err != nil {
		t.Fatal(err)
	}
	e.set(b, route("b2"))
	e.wantRoute(d, "d")
	e.wantRoute(f, "f")
	e.wantRoute(b, "b2")
}

func testCapacityPerPartition(t *testing.T, newStore Factory) {
	e := newEnv(t, newStore, switchboard.Config{PartitionCount: 4, MaxEntriesPerPartition: 5})
	perPartition := map[int]int{}
	for i := range 200 {
		k := key(fmt.Sprintf("room_%d", i), "")
		perPartition[e.m.RoutePartition(k)]++
		e.set(k, route(k.RoomID))
	}
	total := 0
	for p := range 4 {
		st, err := e.m.PartitionStatus(e.ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		want := min(5, perPartition[p])
		if st.Entries != want || st.Capacity != 5 {
			t.Errorf("partition %d: Entries %d Capacity %d, want %d and 5", p, st.Entries, st.Capacity, want)
		}
		total += st.Entries
	}
	if total != 20 {
		t.Fatalf("total entries = %d, want 20", total)
	}
}

type resolveCase struct {
	name      string
	setup     func(e *env)
	key       switchboard.SessionKey
	fallbacks []switchboard.Route
	wantErr   error
	want      switchboard.Resolution // Partition, SessionKey and ExternalRoomID are filled in by the test
	after     func(t *testing.T, e *env)
}

func testResolve(t *testing.T, newStore Factory) {
	const ttl = time.Hour
	room, thread := key("chat_1", ""), key("chat_1", "th_1")
	fb, fb2 := route("fallback"), route("fallback-2")
	res := func(r switchboard.Route, src switchboard.Source, stale bool, reason switchboard.FallbackReason) switchboard.Resolution {
		return switchboard.Resolution{Route: r, Source: src, Fallback: src != switchboard.SourceStateHit, Stale: stale, FallbackReason: reason}
	}
	storedWith := func(k switchboard.SessionKey, id string) func(*testing.T, *env) {
		return func(t *testing.T, e *env) {
			rec := e.get(k)
			if rec.Route.ExternalRoomID != id || !rec.UpdatedAt.Equal(e.clock.Now()) || !rec.ExpiresAt.Equal(e.clock.Now().Add(ttl)) {
				t.Fatalf("stored under %v: %+v, want %q written now with the config TTL", k, rec, id)
			}
		}
	}
	tests := []resolveCase{{
		name:  "state hit",
		setup: func(e *env) { e.set(room, route("r")) },
		key:   room, fallbacks: []switchboard.Route{fb},
		want: res(route("r"), switchboard.SourceStateHit, false, ""),
	}, {
		name:  "thread hit ignores the room",
		setup: func(e *env) { e.set(room, route("r")); e.set(thread, route("t")) },
		key:   thread,
		want:  res(route("t"), switchboard.SourceStateHit, false, ""),
	}, {
		name:  "thread falls back to its room",
		setup: func(e *env) { e.set(room, route("r")) },
		key:   thread, fallbacks: []switchboard.Route{fb},
		want:  res(route("r"), switchboard.SourcePartitionFallback, false, switchboard.ReasonThreadScopeMiss),
		after: storedWith(thread, "r"),
	}, {
		name: "expired thread falls back to its room as stale",
		setup: func(e *env) {
			e.set(thread, route("t"), switchboard.WithTTL(time.Minute))
			e.set(room, route("r"), switchboard.WithTTL(3*time.Hour))
			e.clock.Advance(2 * time.Minute)
		},
		key:   thread,
		want:  res(route("r"), switchboard.SourcePartitionFallback, true, switchboard.ReasonStale),
		after: storedWith(thread, "r"),
	}, {
		name: "miss takes the provided fallback",
		key:  room, fallbacks: []switchboard.Route{fb, fb2},
		want:  res(fb, switchboard.SourceProvidedFallback, false, switchboard.ReasonMiss),
		after: storedWith(room, "fallback"),
	}, {
		name: "thread without room state takes the provided fallback as a miss",
		key:  thread, fallbacks: []switchboard.Route{fb},
		want: res(fb, switchboard.SourceProvidedFallback, false, switchboard.ReasonMiss),
		after: func(t *testing.T, e *env) {
			storedWith(thread, "fallback")(t, e)
			e.wantGetErr(room, switchboard.ErrNotFound) // only the thread key is written
		},
	}, {
		name: "expired exact record takes the provided fallback as stale",
		setup: func(e *env) {
			e.set(room, route("r"), switchboard.WithTTL(time.Minute))
			e.clock.Advance(time.Minute)
		},
		key: room, fallbacks: []switchboard.Route{fb},
		want:  res(fb, switchboard.SourceProvidedFallback, true, switchboard.ReasonStale),
		after: storedWith(room, "fallback"),
	}, {
		name: "expired room record makes a thread's provided fallback stale",
		setup: func(e *env) {
			e.set(room, route("r"), switchboard.WithTTL(time.Minute))
			e.clock.Advance(time.Minute)
		},
		key: thread, fallbacks: []switchboard.Route{fb},
		want: res(fb, switchboard.SourceProvidedFallback, true, switchboard.ReasonStale),
		after: func(t *testing.T, e *env) {
			storedWith(thread, "fallback")(t, e)
			e.wantGetErr(room, switchboard.ErrNotFound) // the expired room record was deleted
		},
	}, {
		name: "invalid fallbacks are skipped",
		key:  room,
		fallbacks: []switchboard.Route{
			{}, {ChannelType: "telegram"}, {ExternalRoomID: "bad\x00id"},
			{ExternalRoomID: "x", Meta: bigMeta(switchboard.MaxMetaEntries + 1)}, fb2, fb,
		},
		want:  res(fb2, switchboard.SourceProvidedFallback, false, switchboard.ReasonMiss),
		after: storedWith(room, "fallback-2"),
	}, {
		name:    "no state and no fallback",
		key:     thread,
		wantErr: switchboard.ErrNoRoute,
		after: func(t *testing.T, e *env) {
			e.wantGetErr(thread, switchboard.ErrNotFound)
			if n := e.entries(); n != 0 {
				t.Fatalf("entries after ErrNoRoute = %d, want 0", n)
			}
		},
	}, {
		name:      "only invalid fallbacks",
		key:       room,
		fallbacks: []switchboard.Route{{}, {ExternalRoomID: "a\tb"}},
		wantErr:   switchboard.ErrNoRoute,
	}, {
		name: "expired records and no fallback",
		setup: func(e *env) {
			e.set(thread, route("t"), switchboard.WithTTL(time.Minute))
			e.set(room, route("r"), switchboard.WithTTL(time.Minute))
			e.clock.Advance(time.Hour)
		},
		key:     thread,
		wantErr: switchboard.ErrNoRoute,
		after: func(t *testing.T, e *env) {
			e.wantGetErr(thread, switchboard.ErrNotFound)
			e.wantGetErr(room, switchboard.ErrNotFound)
		},
	}, {
		name:      "a room key never falls back to its threads",
		setup:     func(e *env) { e.set(thread, route("t")) },
		key:       room,
		fallbacks: nil,
		wantErr:   switchboard.ErrNoRoute,
	}, {
		name:  "another room's state is not used",
		setup: func(e *env) { e.set(key("chat_2", ""), route("other")) },
		key:   key("chat_1", "th_9"), fallbacks: []switchboard.Route{fb},
		want: res(fb, switchboard.SourceProvidedFallback, false, switchboard.ReasonMiss),
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, newStore, switchboard.Config{TTL: ttl})
			if tt.setup != nil {
				tt.setup(e)
			}
			got, err := e.m.Resolve(e.ctx, tt.key, tt.fallbacks...)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Resolve = %+v, %v; want error %v", got, err, tt.wantErr)
				}
			} else {
				if err != nil {
					t.Fatalf("Resolve: %v", err)
				}
				want := tt.want
				want.Partition = e.m.RoutePartition(tt.key)
				want.SessionKey = tt.key
				want.ExternalRoomID = want.Route.ExternalRoomID
				if !sameResolution(got, want) {
					t.Fatalf("Resolve =\n %+v\nwant\n %+v", got, want)
				}
			}
			if tt.after != nil {
				tt.after(t, e)
			}
		})
	}
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

func testResolveStoredBecomesHit(t *testing.T, newStore Factory) {
	e := newEnv(t, newStore, switchboard.Config{})
	room, thread := key("chat_1", ""), key("chat_1", "th_1")
	if _, err := e.m.Resolve(e.ctx, room, route("fb")); err != nil {
		t.Fatal(err)
	}
	got, err := e.m.Resolve(e.ctx, room)
	if err != nil || got.Source != switchboard.SourceStateHit || got.ExternalRoomID != "fb" || got.Fallback {
		t.Fatalf("second Resolve of the room = %+v, %v; want state_hit fb", got, err)
	}
	if got, err = e.m.Resolve(e.ctx, thread); err != nil || got.Source != switchboard.SourcePartitionFallback {
		t.Fatalf("first Resolve of the thread = %+v, %v; want partition_fallback", got, err)
	}
	// The thread's copy is its own record: changing the room later does not
	// change it.
	e.set(room, route("room-2"))
	if got, err = e.m.Resolve(e.ctx, thread); err != nil || got.Source != switchboard.SourceStateHit || got.ExternalRoomID != "fb" {
		t.Fatalf("second Resolve of the thread = %+v, %v; want state_hit fb", got, err)
	}
}

func testResolveEvicts(t *testing.T, newStore Factory) {
	e := newEnv(t, newStore, switchboard.Config{PartitionCount: 1, MaxEntriesPerPartition: 2})
	e.set(key("a", ""), route("a"))
	e.set(key("b", ""), route("b"))
	if _, err := e.m.Resolve(e.ctx, key("c", ""), route("c")); err != nil {
		t.Fatal(err)
	}
	e.wantGetErr(key("a", ""), switchboard.ErrNotFound)
	e.wantRoute(key("b", ""), "b")
	e.wantRoute(key("c", ""), "c")
	// A room fallback stored under the thread key counts against capacity too.
	if _, err := e.m.Resolve(e.ctx, key("c", "t")); err != nil {
		t.Fatal(err)
	}
	e.wantGetErr(key("b", ""), switchboard.ErrNotFound)
	if n := e.entries(); n != 2 {
		t.Fatalf("entries = %d, want 2", n)
	}
}

func testDelete(t *testing.T, newStore Factory) {
	e := newEnv(t, newStore, switchboard.Config{TTL: time.Minute})
	k, other := key("chat_1", ""), key("chat_1", "t")
	e.set(k, route("r"))
	e.set(other, route("t"))
	if err := e.m.Delete(e.ctx, k); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	e.wantGetErr(k, switchboard.ErrNotFound)
	e.wantRoute(other, "t")
	if err := e.m.Delete(e.ctx, k); !errors.Is(err, switchboard.ErrNotFound) {
		t.Fatalf("second Delete: err = %v, want ErrNotFound", err)
	}
	// Delete removes an expired record too.
	e.clock.Advance(time.Hour)
	if err := e.m.Delete(e.ctx, other); err != nil {
		t.Fatalf("Delete of an expired record: %v", err)
	}
	if n := e.entries(); n != 0 {
		t.Fatalf("entries = %d, want 0", n)
	}
}

func testPrune(t *testing.T, newStore Factory) {
	e := newEnv(t, newStore, switchboard.Config{PartitionCount: 4, TTL: time.Hour})
	for i := range 30 {
		opts := []switchboard.SetOption{}
		if i%3 == 0 {
			opts = append(opts, switchboard.WithTTL(time.Minute)) // 10 short-lived records
		}
		e.set(key(fmt.Sprintf("room_%d", i), ""), route("r"), opts...)
	}
	res, err := e.m.Prune(e.ctx)
	if err != nil || res.Pruned != 0 || res.Partitions != 4 {
		t.Fatalf("Prune before expiry = %+v, %v; want 0 pruned over 4 partitions", res, err)
	}
	e.clock.Advance(time.Minute)
	e.obs.take()
	if res, err = e.m.Prune(e.ctx); err != nil || res.Pruned != 10 || res.Partitions != 4 {
		t.Fatalf("Prune = %+v, %v; want 10 pruned over 4 partitions", res, err)
	}
	pruned, events := 0, 0
	for _, ev := range e.obs.take() {
		if ev.Kind == switchboard.EventPruned {
			events++
			pruned += ev.Count
		}
	}
	if events != 4 || pruned != 10 {
		t.Fatalf("pruned events: %d events counting %d, want 4 counting 10", events, pruned)
	}
	if n := e.entries(); n != 20 {
		t.Fatalf("entries after Prune = %d, want 20", n)
	}
	if res, err = e.m.Prune(e.ctx); err != nil || res.Pruned != 0 {
		t.Fatalf("second Prune = %+v, %v; want 0", res, err)
	}
	e.wantGetErr(key("room_0", ""), switchboard.ErrNotFound) // pruned, not merely expired
	e.wantRoute(key("room_1", ""), "r")
}

func testPartitionStatus(t *testing.T, newStore Factory) {
	e := newEnv(t, newStore, switchboard.Config{PartitionCount: 3, MaxEntriesPerPartition: 7})
	k := key("chat_1", "")
	e.set(k, route("r"))
	e.set(key("chat_1", "t"), route("r"))
	p := e.m.RoutePartition(k)
	st, err := e.m.PartitionStatus(e.ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Index != p || !st.Available || st.Entries != 2 || st.Capacity != 7 || st.Owner == "" {
		t.Fatalf("PartitionStatus(%d) = %+v, want index %d, available, 2 entries, capacity 7, an owner", p, st, p)
	}
	for _, bad := range []int{-1, 3, 100} {
		if _, err := e.m.PartitionStatus(e.ctx, bad); !errors.Is(err, switchboard.ErrNotFound) {
			t.Errorf("PartitionStatus(%d): err = %v, want ErrNotFound", bad, err)
		}
	}
}

func testCopies(t *testing.T, newStore Factory) {
	e := newEnv(t, newStore, switchboard.Config{})
	k := key("chat_1", "")
	r := switchboard.Route{ExternalRoomID: "r", Meta: map[string]string{"a": "1"}}
	e.set(k, r)
	r.Meta["a"] = "changed"
	r.Meta["b"] = "added"
	r.ExternalRoomID = "changed"
	got := e.get(k)
	if got.Route.ExternalRoomID != "r" || len(got.Route.Meta) != 1 || got.Route.Meta["a"] != "1" {
		t.Fatalf("stored route changed with the caller's: %+v", got.Route)
	}
	got.Route.Meta["a"] = "mine"
	res, err := e.m.Resolve(e.ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	if res.Route.Meta["a"] != "1" {
		t.Fatalf("stored route changed with a returned one: %+v", res.Route)
	}
	res.Route.Meta["a"] = "mine too"
	if e.get(k).Route.Meta["a"] != "1" {
		t.Fatal("stored route changed with a resolved one")
	}
	// A fallback stored by Resolve is a copy too, and so is the one returned.
	fb := switchboard.Route{ExternalRoomID: "fb", Meta: map[string]string{"x": "1"}}
	res, err = e.m.Resolve(e.ctx, key("chat_2", ""), fb)
	if err != nil {
		t.Fatal(err)
	}
	fb.Meta["x"] = "caller"
	res.Route.Meta["x"] = "result"
	if got := e.get(key("chat_2", "")).Route.Meta["x"]; got != "1" {
		t.Fatalf("stored fallback Meta = %q, want 1", got)
	}
	// A thread's copy of its room's route is independent of the room's.
	res, err = e.m.Resolve(e.ctx, key("chat_2", "t"))
	if err != nil {
		t.Fatal(err)
	}
	res.Route.Meta["x"] = "thread result"
	if got := e.get(key("chat_2", "")).Route.Meta["x"]; got != "1" {
		t.Fatalf("room Meta after changing the thread's result = %q, want 1", got)
	}
	if got := e.get(key("chat_2", "t")).Route.Meta["x"]; got != "1" {
		t.Fatalf("thread Meta after changing its result = %q, want 1", got)
	}
}

func testContextDone(t *testing.T, newStore Factory) {
	e := newEnv(t, newStore, switchboard.Config{})
	k := key("chat_1", "")
	e.set(k, route("r"))
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Unix(0, 0))
	defer cancel2()
	for _, c := range []struct {
		ctx  context.Context
		want error
	}{{cancelled, context.Canceled}, {expired, context.DeadlineExceeded}} {
		if err := e.m.Set(c.ctx, k, route("x")); !errors.Is(err, c.want) {
			t.Errorf("Set: err = %v, want %v", err, c.want)
		}
		if _, err := e.m.Get(c.ctx, k); !errors.Is(err, c.want) {
			t.Errorf("Get: err = %v, want %v", err, c.want)
		}
		if _, err := e.m.Resolve(c.ctx, k, route("fb")); !errors.Is(err, c.want) {
			t.Errorf("Resolve: err = %v, want %v", err, c.want)
		}
		if err := e.m.Delete(c.ctx, k); !errors.Is(err, c.want) {
			t.Errorf("Delete: err = %v, want %v", err, c.want)
		}
		if _, err := e.m.Prune(c.ctx); !errors.Is(err, c.want) {
			t.Errorf("Prune: err = %v, want %v", err, c.want)
		}
		if _, err := e.m.PartitionStatus(c.ctx, 0); !errors.Is(err, c.want) {
			t.Errorf("PartitionStatus: err = %v, want %v", err, c.want)
		}
	}
	e.wantRoute(k, "r") // nothing changed
}

func testEvents(t *testing.T, newStore Factory) {
	e := newEnv(t, newStore, switchboard.Config{PartitionCount: 1, MaxEntriesPerPartition: 2, TTL: time.Minute})
	room, thread := key("chat_1", ""), key("chat_1", "t")
	type ev struct {
		kind    switchboard.EventKind
		key     switchboard.SessionKey
		outcome switchboard.Outcome
		reason  switchboard.FallbackReason
		count   int
		size    int
	}
	steps := []struct {
		name string
		do   func()
		want []ev
	}{
		{"set", func() { e.set(room, route("r")) }, []ev{{kind: switchboard.EventSet, key: room, size: 1}}},
		{"resolve hit", func() { _, _ = e.m.Resolve(e.ctx, room) },
			[]ev{{kind: switchboard.EventResolved, key: room, outcome: switchboard.OutcomeHit, size: 1}}},
		{"resolve thread", func() { _, _ = e.m.Resolve(e.ctx, thread) }, []ev{
			{kind: switchboard.EventFallback, key: thread, reason: switchboard.ReasonThreadScopeMiss, size: 2},
			{kind: switchboard.EventResolved, key: thread, outcome: switchboard.OutcomeFallback, reason: switchboard.ReasonThreadScopeMiss, size: 2},
		}},
		{"set with eviction", func() { e.set(key("chat_2", ""), route("r2")) }, []ev{
			{kind: switchboard.EventSet, key: key("chat_2", ""), count: 1, size: 2},
			{kind: switchboard.EventEvicted, count: 1, size: 2},
		}},
		{"expired get", func() { e.clock.Advance(time.Minute); _, _ = e.m.Get(e.ctx, thread) },
			[]ev{{kind: switchboard.EventStale, key: thread, size: -1}}},
		{"miss", func() { _, _ = e.m.Resolve(e.ctx, key("chat_3", "")) },
			[]ev{{kind: switchboard.EventResolved, key: key("chat_3", ""), outcome: switchboard.OutcomeMiss, size: 1}}},
		{"prune", func() { _, _ = e.m.Prune(e.ctx) }, []ev{{kind: switchboard.EventPruned, count: 1, size: 0}}},
		{"delete", func() { e.set(room, route("r")); e.obs.take(); _ = e.m.Delete(e.ctx, room) },
			[]ev{{kind: switchboard.EventDeleted, key: room, size: 0}}},
	}
	e.obs.take()
	for _, s := range steps {
		s.do()
		var got []ev
		for _, x := range e.obs.take() {
			if x.Partition != 0 {
				t.Errorf("%s: event %+v has partition %d, want 0", s.name, x, x.Partition)
			}
			got = append(got, ev{x.Kind, x.SessionKey, x.Outcome, x.FallbackReason, x.Count, x.Size})
		}
		if fmt.Sprint(got) != fmt.Sprint(s.want) {
			t.Errorf("%s: events\n %+v\nwant\n %+v", s.name, got, s.want)
		}
	}
}

func testConcurrent(t *testing.T, newStore Factory) { concurrent(t, newStore, 16, 300) }

// Stress runs the suite's concurrency rule (Run's "Concurrent" subtest) at
// the given scale: workers goroutines doing opsPerWorker operations each.
// Run keeps the scale small so network backends stay quick; a backend with
// locking of its own calls Stress with many more operations under -race.
func Stress(t *testing.T, newStore Factory, workers, opsPerWorker int) {
	t.Helper()
	concurrent(t, newStore, workers, opsPerWorker)
}

// concurrent mixes every operation from many goroutines on overlapping keys
// while the clock moves past TTLs, and checks the invariants: every read
// returns a route some writer wrote for that key, no event ever reports a
// partition above its capacity, and after a final prune each partition's
// size equals the keys that can still be read from it.
func concurrent(t *testing.T, newStore Factory, workers, ops int) {
	const (
		rooms    = 40
		capacity = 16
		parts    = 4
	)
	e := newEnv(t, newStore, switchboard.Config{PartitionCount: parts, MaxEntriesPerPartition: capacity, TTL: time.Second})
	var keys []switchboard.SessionKey
	for r := range rooms {
		for _, th := range []string{"", "a", "b"} {
			keys = append(keys, key(fmt.Sprintf("room_%d", r), th))
		}
	}
	// A route's ExternalRoomID names the key it was written for, so a read
	// can tell whether it got another key's route. A thread key may also
	// hold a copy of its room's route (stored by a partition fallback).
	wroteFor := func(id string, k switchboard.SessionKey) bool {
		owner, _, _ := strings.Cut(id, "#")
		return owner == k.String() || owner == k.RoomScope().String()
	}
	errc := make(chan error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for i := range ops {
				k := keys[rng.IntN(len(keys))]
				var err error
				switch op := rng.IntN(100); {
				case op < 30:
					err = e.m.Set(e.ctx, k, route(fmt.Sprintf("%s#%d.%d", k, w, i)))
				case op < 55:
					var rec switchboard.Record
					if rec, err = e.m.Get(e.ctx, k); err == nil && !wroteFor(rec.Route.ExternalRoomID, k) {
						err = fmt.Errorf("Get(%v) returned %q", k, rec.Route.ExternalRoomID)
					}
				case op < 90:
					var res switchboard.Resolution
					res, err = e.m.Resolve(e.ctx, k, route(fmt.Sprintf("%s#fb%d", k, w)))
					if err == nil && !wroteFor(res.ExternalRoomID, k) {
						err = fmt.Errorf("Resolve(%v) returned %q from %s", k, res.ExternalRoomID, res.Source)
					}
				case op < 95:
					err = e.m.Delete(e.ctx, k)
				case op < 97:
					_, err = e.m.Prune(e.ctx)
				default:
					e.clock.Advance(100 * time.Millisecond)
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
	for _, ev := range e.obs.take() {
		if ev.Size > capacity {
			t.Errorf("%s event reported partition %d at %d records, capacity %d", ev.Kind, ev.Partition, ev.Size, capacity)
		}
	}
	if _, err := e.m.Prune(e.ctx); err != nil {
		t.Fatal(err)
	}
	readable := map[int]int{}
	for _, k := range keys {
		rec, err := e.m.Get(e.ctx, k)
		switch {
		case err == nil:
			readable[e.m.RoutePartition(k)]++
			if !wroteFor(rec.Route.ExternalRoomID, k) {
				t.Errorf("Get(%v) = %q after the run", k, rec.Route.ExternalRoomID)
			}
		case !errors.Is(err, switchboard.ErrNotFound):
			t.Errorf("Get(%v): %v", k, err)
		}
	}
	for p := range parts {
		st, err := e.m.PartitionStatus(e.ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Entries > capacity || st.Entries != readable[p] {
			t.Errorf("partition %d: Entries %d, readable keys %d, capacity %d", p, st.Entries, readable[p], capacity)
		}
	}
}

func testClose(t *testing.T, newStore Factory) {
	m, err := switchboard.New(switchboard.Config{}, switchboard.WithStore(newStore(t)))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	k := key("chat_1", "")
	if err := m.Set(ctx, k, route("r")); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := m.Close(); !errors.Is(err, switchboard.ErrClosed) {
		t.Errorf("second Close: err = %v, want ErrClosed", err)
	}
	if err := m.Set(ctx, k, route("x")); !errors.Is(err, switchboard.ErrClosed) {
		t.Errorf("Set after Close: err = %v, want ErrClosed", err)
	}
	if _, err := m.Get(ctx, k); !errors.Is(err, switchboard.ErrClosed) {
		t.Errorf("Get after Close: err = %v, want ErrClosed", err)
	}
	if _, err := m.Resolve(ctx, k, route("fb")); !errors.Is(err, switchboard.ErrClosed) {
		t.Errorf("Resolve after Close: err = %v, want ErrClosed", err)
	}
	if err := m.Delete(ctx, k); !errors.Is(err, switchboard.ErrClosed) {
		t.Errorf("Delete after Close: err = %v, want ErrClosed", err)
	}
	if _, err := m.Prune(ctx); !errors.Is(err, switchboard.ErrClosed) {
		t.Errorf("Prune after Close: err = %v, want ErrClosed", err)
	}
	if _, err := m.PartitionStatus(ctx, 0); !errors.Is(err, switchboard.ErrClosed) {
		t.Errorf("PartitionStatus after Close: err = %v, want ErrClosed", err)
	}
	// Configuration stays readable.
	if m.PartitionCount() <= 0 || m.Config().TTL <= 0 {
		t.Errorf("Config after Close = %+v", m.Config())
	}
}
