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

// managerRules are sections 1–5 of the contract, through a Manager.
var managerRules = []rule{
	{"PartitionStability", testPartitionStability},
	{"SetGet", testSetGet},
	{"TTLBoundary", testTTLBoundary},
	{"ExpiredReadDeletes", testExpiredReadDeletes},
	{"WithTTL", testWithTTL},
	{"Overwrite", testOverwrite},
	{"EvictionOrder", testEvictionOrder},
	{"CapacityPerPartition", testCapacityPerPartition},
	{"Resolve", testResolve},
	{"ResolveStoredBecomesHit", testResolveStoredBecomesHit},
	{"ResolveEvicts", testResolveEvicts},
	{"Delete", testDelete},
	{"Prune", testPrune},
	{"BackgroundPrune", testBackgroundPrune},
	{"PartitionStatus", testPartitionStatus},
	{"Copies", testCopies},
	{"Events", testEvents},
	{"ObserverOutsideLocks", testObserverOutsideLocks},
	{"Concurrent", testConcurrent},
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

// resolveTTL is the configured TTL of the resolve cases.
const resolveTTL = time.Hour

func testResolve(t *testing.T, newStore Factory) {
	for _, tt := range resolveCases() {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, newStore, switchboard.Config{TTL: resolveTTL})
			if tt.setup != nil {
				tt.setup(e)
			}
			got, err := e.m.Resolve(e.ctx, tt.key, tt.fallbacks...)
			tt.check(t, e, got, err)
			if tt.after != nil {
				tt.after(t, e)
			}
		})
	}
}

// check compares a Resolve answer with the case's.
func (tt *resolveCase) check(t *testing.T, e *env, got switchboard.Resolution, err error) {
	t.Helper()
	if tt.wantErr != nil {
		if !errors.Is(err, tt.wantErr) {
			t.Fatalf("Resolve = %+v, %v; want error %v", got, err, tt.wantErr)
		}
		return
	}
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

// resolveCases are the resolve situations of section 2; trustResolveCases
// adds those of section 6.
func resolveCases() []resolveCase {
	const ttl = resolveTTL
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
	return tests
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

// testEvents checks every event kind of sections 2–5 with four partitions:
// each event carries the partition of its key, and Resolve's stale events
// name the expired record's key.
// hitSize in an expected event stands for the partition's size, 1, or -1:
// a store may leave the size of a state hit unknown (ResolveResult.Size).
const hitSize = -3

func testEvents(t *testing.T, newStore Factory) {
	const parts = 4
	e := newEnv(t, newStore, switchboard.Config{PartitionCount: parts, MaxEntriesPerPartition: 2, TTL: time.Minute})
	// Two rooms in different partitions, neither in partition 0.
	a := e.keyIn(1, "a", "")
	b := e.keyIn(2, "b", "")
	at, bt := a, b
	at.ThreadID, bt.ThreadID = "t", "t"
	type ev struct {
		kind      switchboard.EventKind
		partition int
		key       switchboard.SessionKey
		outcome   switchboard.Outcome
		source    switchboard.Source
		reason    switchboard.FallbackReason
		stale     bool
		count     int
		size      int
	}
	other := e.keyIn(1, "c", "") // a third room in a's partition
	steps := []struct {
		name string
		do   func()
		want []ev
	}{
		{"set", func() { e.set(a, route("a")) }, []ev{{kind: switchboard.EventSet, partition: 1, key: a, size: 1}}},
		{"set elsewhere", func() { e.set(b, route("b")) }, []ev{{kind: switchboard.EventSet, partition: 2, key: b, size: 1}}},
		{"resolve hit", func() { e.resolve(b) }, []ev{
			{kind: switchboard.EventResolved, partition: 2, key: b, outcome: switchboard.OutcomeHit, source: switchboard.SourceStateHit, size: hitSize}}},
		{"resolve thread", func() { e.resolve(at) }, []ev{
			{kind: switchboard.EventFallback, partition: 1, key: at, source: switchboard.SourcePartitionFallback, reason: switchboard.ReasonThreadScopeMiss, size: 2},
			{kind: switchboard.EventResolved, partition: 1, key: at, outcome: switchboard.OutcomeFallback, source: switchboard.SourcePartitionFallback, reason: switchboard.ReasonThreadScopeMiss, size: 2},
		}},
		{"set with eviction", func() { e.set(other, route("c")) }, []ev{
			{kind: switchboard.EventSet, partition: 1, key: other, count: 1, size: 2},
			{kind: switchboard.EventEvicted, partition: 1, count: 1, size: 2},
		}},
		{"expired get", func() { e.clock.Advance(time.Minute); _, _ = e.m.Get(e.ctx, other) },
			[]ev{{kind: switchboard.EventStale, partition: 1, key: other, stale: true, size: -1}}},
		{"stale resolve of a thread", func() { e.resolve(bt, route("fb")) }, []ev{
			// b's room record expired too: Resolve reports it as stale, by its key.
			{kind: switchboard.EventStale, partition: 2, key: b, stale: true, size: 1},
			{kind: switchboard.EventFallback, partition: 2, key: bt, source: switchboard.SourceProvidedFallback, reason: switchboard.ReasonStale, stale: true, size: 1},
			{kind: switchboard.EventResolved, partition: 2, key: bt, outcome: switchboard.OutcomeFallback, source: switchboard.SourceProvidedFallback, reason: switchboard.ReasonStale, stale: true, size: 1},
		}},
		{"stale resolve of a key", func() { e.clock.Advance(2 * time.Minute); e.resolve(bt, route("fb2")) }, []ev{
			{kind: switchboard.EventStale, partition: 2, key: bt, stale: true, size: 1},
			{kind: switchboard.EventFallback, partition: 2, key: bt, source: switchboard.SourceProvidedFallback, reason: switchboard.ReasonStale, stale: true, size: 1},
			{kind: switchboard.EventResolved, partition: 2, key: bt, outcome: switchboard.OutcomeFallback, source: switchboard.SourceProvidedFallback, reason: switchboard.ReasonStale, stale: true, size: 1},
		}},
		{"miss", func() { _, _ = e.m.Resolve(e.ctx, key("chat_3", "")) },
			[]ev{{kind: switchboard.EventResolved, partition: e.m.RoutePartition(key("chat_3", "")), key: key("chat_3", ""), outcome: switchboard.OutcomeMiss, size: -2}}},
		{"prune", func() { _, _ = e.m.Prune(e.ctx) }, []ev{
			{kind: switchboard.EventPruned, partition: 0, size: -2},
			{kind: switchboard.EventPruned, partition: 1, count: 1, size: 0}, // the thread copy of a
			{kind: switchboard.EventPruned, partition: 2, size: 1},           // bt's fallback is still fresh
			{kind: switchboard.EventPruned, partition: 3, size: -2},
		}},
		{"delete", func() { e.set(a, route("a")); e.obs.take(); _ = e.m.Delete(e.ctx, a) },
			[]ev{{kind: switchboard.EventDeleted, partition: 1, key: a, size: 0}}},
	}
	e.obs.take()
	for _, s := range steps {
		s.do()
		var got []ev
		for _, x := range e.obs.take() {
			got = append(got, ev{x.Kind, x.Partition, x.SessionKey, x.Outcome, x.Source, x.FallbackReason, x.Stale, x.Count, x.Size})
		}
		if len(got) == len(s.want) {
			for i := range got {
				if s.want[i].size == -2 { // "any": partitions the step did not choose
					got[i].size = -2
				}
				if s.want[i].size == hitSize && (got[i].size == 1 || got[i].size == -1) {
					got[i].size = hitSize // a state hit's size may be unknown (see ResolveResult.Size)
				}
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(s.want) {
			t.Errorf("%s: events\n %+v\nwant\n %+v", s.name, got, s.want)
		}
	}
}

// testBackgroundPrune: the Manager prunes every PruneInterval by itself
// (the clock is the injected one; only the ticking is real time).
func testBackgroundPrune(t *testing.T, newStore Factory) {
	e := newEnv(t, newStore, switchboard.Config{PartitionCount: 2, TTL: time.Minute, PruneInterval: 5 * time.Millisecond})
	for i := range 6 {
		e.set(key(fmt.Sprintf("room_%d", i), ""), route("r"))
	}
	e.clock.Advance(time.Minute)
	deadline := time.Now().Add(10 * time.Second)
	pruned := 0
	for pruned < 6 && time.Now().Before(deadline) {
		for _, ev := range e.obs.take() {
			if ev.Kind == switchboard.EventPruned {
				pruned += ev.Count
			}
		}
		time.Sleep(5 * time.Millisecond) // waiting for the background goroutine, not for TTLs
	}
	if pruned != 6 {
		t.Fatalf("background pruning deleted %d records within 10s at a 5ms interval, want 6", pruned)
	}
	if n := e.entries(); n != 0 {
		t.Fatalf("entries after background pruning = %d, want 0", n)
	}
}

// testObserverOutsideLocks: an observer that calls back into the Manager,
// on the very partition it is told about, for every kind of event, must
// not deadlock.
func testObserverOutsideLocks(t *testing.T, newStore Factory) {
	var m *switchboard.Manager
	ctx := context.Background()
	var mu sync.Mutex
	kinds := map[switchboard.EventKind]bool{}
	inside := false // the calls below emit events too: observe those without calling back again
	obs := switchboard.ObserverFunc(func(ev switchboard.Event) {
		mu.Lock()
		kinds[ev.Kind] = true
		again := inside
		inside = true
		mu.Unlock()
		if again {
			return
		}
		defer func() { mu.Lock(); inside = false; mu.Unlock() }()
		k := ev.SessionKey
		if k == (switchboard.SessionKey{}) {
			k = key("probe", "")
		}
		_, _ = m.Get(ctx, k)
		_ = m.Set(ctx, key("probe", ""), route("probe")) // needs the write lock
		_, _ = m.PartitionStatus(ctx, ev.Partition)
	})
	clock := NewClock(start)
	m, err := switchboard.New(switchboard.Config{PartitionCount: 1, MaxEntriesPerPartition: 4, TTL: time.Minute, PruneInterval: time.Hour},
		switchboard.WithStore(newStore(t)), switchboard.WithClock(clock.Now), switchboard.WithObserver(obs))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		k := key("chat_1", "")
		_ = m.Set(ctx, k, route("r"), switchboard.WithPriority(5))
		_ = m.Set(ctx, k, route("x"))                              // superseded
		_ = m.Set(ctx, k, route("x"), switchboard.IfRevision(999)) // conflict
		_, _ = m.Resolve(ctx, k)
		_, _ = m.Resolve(ctx, key("chat_2", "t"), route("fb"))
		_, _ = m.Confirm(ctx, k, route("r"))
		_ = m.Invalidate(ctx, k, route("r"), "gone")
		_ = m.Set(ctx, key("chat_3", ""), route("r"))
		clock.Advance(2 * time.Minute)
		_, _ = m.Get(ctx, key("chat_3", ""))
		_, _ = m.Prune(ctx)
		_ = m.Set(ctx, k, route("r"))
		_ = m.Delete(ctx, k)
		for i := range 5 { // over capacity: evictions
			_ = m.Set(ctx, key(fmt.Sprint("fill_", i), ""), route("r"))
		}
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("an observer calling back into the Manager deadlocked")
	}
	mu.Lock()
	defer mu.Unlock()
	for _, k := range []switchboard.EventKind{switchboard.EventSet, switchboard.EventResolved, switchboard.EventFallback,
		switchboard.EventEvicted, switchboard.EventStale, switchboard.EventPruned, switchboard.EventDeleted,
		switchboard.EventConfirmed, switchboard.EventInvalidated, switchboard.EventSuperseded, switchboard.EventConflict} {
		if !kinds[k] {
			t.Errorf("no %s event was observed", k)
		}
	}
}

var _ = strings.Cut
var _ = rand.New
