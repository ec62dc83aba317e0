package storetest

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-go/switchboard"
)

// trustRules are section 6 of the contract: routing you can trust.
var trustRules = []rule{
	{"Provenance", testProvenance},
	{"Precedence", testPrecedence},
	{"BadOptionsStoreNothing", testBadOptions},
	{"Revisions", testRevisions},
	{"IfRevision", testIfRevision},
	{"IfAbsent", testIfAbsent},
	{"CheckOrder", testCheckOrder},
	{"RacingIfRevision", testRacingIfRevision},
	{"Confirm", testConfirm},
	{"Invalidate", testInvalidate},
	{"ResolvePastTombstones", testResolvePastTombstones},
	{"TombstoneLifecycle", testTombstoneLifecycle},
	{"ProvisionalTTL", testProvisionalTTL},
	{"TrustEvents", testTrustEvents},
}

func testProvenance(t *testing.T, newStore Factory) {
	e := newEnv(t, newStore, switchboard.Config{TTL: time.Hour})
	room, thread, other := key("chat_1", ""), key("chat_1", "t"), key("chat_2", "")
	e.set(room, route("r"), switchboard.WithWriter("inbound"), switchboard.WithPriority(10))
	rec := e.get(room)
	if rec.Origin != switchboard.OriginSet || rec.Writer != "inbound" || rec.Priority != 10 || rec.Revision == 0 ||
		rec.Confirmed || rec.Invalidated != "" {
		t.Fatalf("record written by Set = %+v, want origin set, writer inbound, priority 10, a revision", rec)
	}
	// A route copied from the room, and a stored fallback, say so, with
	// priority 0 and no writer; the resolution carries the record's fields.
	res := e.resolve(thread)
	trec := e.get(thread)
	if trec.Origin != switchboard.OriginRoomFallback || trec.Writer != "" || trec.Priority != 0 || trec.Revision <= rec.Revision || trec.Confirmed {
		t.Fatalf("thread record stored by Resolve = %+v", trec)
	}
	if res.Origin != switchboard.OriginRoomFallback || res.Revision != trec.Revision || res.Confirmed || res.Writer != "" {
		t.Fatalf("room fallback resolution = %+v, want the stored record's origin and revision %d", res, trec.Revision)
	}
	res = e.resolve(other, route("guess"))
	orec := e.get(other)
	if orec.Origin != switchboard.OriginProvidedFallback || res.Origin != switchboard.OriginProvidedFallback || res.Revision != orec.Revision {
		t.Fatalf("provided fallback: resolution %+v, record %+v", res, orec)
	}
	// A laundered guess is visible: a state hit whose origin is a fallback,
	// unconfirmed.
	res = e.resolve(other)
	if res.Source != switchboard.SourceStateHit || res.Origin != switchboard.OriginProvidedFallback || res.Confirmed || res.Revision != orec.Revision {
		t.Fatalf("state hit of a stored guess = %+v", res)
	}
	res = e.resolve(room)
	if res.Source != switchboard.SourceStateHit || res.Origin != switchboard.OriginSet || res.Writer != "inbound" || res.Revision != rec.Revision {
		t.Fatalf("state hit of a Set record = %+v", res)
	}
}

func testPrecedence(t *testing.T, newStore Factory) {
	const ttl = time.Minute
	tests := []struct {
		name      string
		setup     func(e *env, k switchboard.SessionKey)
		prio      int
		wantErr   error
		wantRoute string
	}{
		{"lower priority is refused", func(e *env, k switchboard.SessionKey) { e.set(k, route("user"), switchboard.WithPriority(10)) }, 0, switchboard.ErrSuperseded, "user"},
		{"equal priority replaces", func(e *env, k switchboard.SessionKey) { e.set(k, route("user"), switchboard.WithPriority(10)) }, 10, nil, "new"},
		{"higher priority replaces", func(e *env, k switchboard.SessionKey) { e.set(k, route("user"), switchboard.WithPriority(10)) }, 11, nil, "new"},
		{"negative priorities", func(e *env, k switchboard.SessionKey) { e.set(k, route("user"), switchboard.WithPriority(-5)) }, -6, switchboard.ErrSuperseded, "user"},
		{"an expired record never blocks", func(e *env, k switchboard.SessionKey) {
			e.set(k, route("user"), switchboard.WithPriority(10))
			e.clock.Advance(ttl)
		}, 0, nil, "new"},
		{"a tombstone never blocks", func(e *env, k switchboard.SessionKey) {
			e.set(k, route("user"), switchboard.WithPriority(10))
			if err := e.m.Invalidate(e.ctx, k, route("user"), "gone"); err != nil {
				e.t.Fatal(err)
			}
		}, -1000, nil, "new"},
		{"a stored fallback has priority 0", func(e *env, k switchboard.SessionKey) { e.resolve(k, route("guess")) }, 0, nil, "new"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, newStore, switchboard.Config{TTL: ttl})
			k := key("chat_1", "")
			tt.setup(e, k)
			before, _ := e.m.Get(e.ctx, k)
			err := e.m.Set(e.ctx, k, route("new"), switchboard.WithPriority(tt.prio), switchboard.WithWriter("heartbeat"))
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("Set at priority %d: err = %v, want %v", tt.prio, err, tt.wantErr)
			}
			if tt.wantErr != nil {
				msg := err.Error()
				if !strings.Contains(msg, fmt.Sprint(tt.prio)) || !strings.Contains(msg, fmt.Sprint(before.Priority)) {
					t.Errorf("superseded error %q does not name both priorities (%d and %d)", msg, tt.prio, before.Priority)
				}
				var op *switchboard.OpError
				if !errors.As(err, &op) || op.Op != "set" || op.Key != k || op.Partition != e.m.RoutePartition(k) {
					t.Errorf("superseded error %#v: want an *OpError naming set, the key and its partition", err)
				}
				if after := e.get(k); after.Revision != before.Revision || after.Route.ExternalRoomID != "user" {
					t.Fatalf("a refused Set changed the record: %+v, was %+v", after, before)
				}
				return
			}
			e.wantRoute(k, tt.wantRoute)
		})
	}
	// The typical use: a heartbeat cannot clobber a fresh user route, and
	// takes over once it expires.
	e := newEnv(t, newStore, switchboard.Config{TTL: ttl})
	k := key("dm_1", "")
	e.set(k, route("dm"), switchboard.WithPriority(10), switchboard.WithWriter("inbound"))
	e.clock.Advance(ttl / 2)
	if err := e.m.Set(e.ctx, k, route("group"), switchboard.WithWriter("heartbeat")); !errors.Is(err, switchboard.ErrSuperseded) {
		t.Fatalf("heartbeat over a fresh user route: %v, want ErrSuperseded", err)
	}
	e.wantRoute(k, "dm")
	e.clock.Advance(ttl / 2)
	e.set(k, route("group"), switchboard.WithWriter("heartbeat"))
	if rec := e.get(k); rec.Route.ExternalRoomID != "group" || rec.Writer != "heartbeat" || rec.Priority != 0 {
		t.Fatalf("after the user route expired: %+v", rec)
	}
}

func testBadOptions(t *testing.T, newStore Factory) {
	e := newEnv(t, newStore, switchboard.Config{})
	k := key("chat_1", "")
	e.set(k, route("good"), switchboard.WithPriority(3), switchboard.WithWriter("inbound"))
	before := e.get(k)
	bad := map[string][]switchboard.SetOption{
		"priority below -1000":            {switchboard.WithPriority(switchboard.MinPriority - 1)},
		"priority above 1000":             {switchboard.WithPriority(switchboard.MaxPriority + 1)},
		"writer with a control character": {switchboard.WithWriter("cr\x01n")},
		"writer of invalid UTF-8":         {switchboard.WithWriter("a\xffb")},
		"writer longer than 64 bytes":     {switchboard.WithWriter(strings.Repeat("w", switchboard.MaxWriterLen+1))},
		"IfRevision(0)":                   {switchboard.IfRevision(0)},
		"IfRevision and IfAbsent":         {switchboard.IfRevision(before.Revision), switchboard.IfAbsent()},
	}
	for name, opts := range bad {
		for _, target := range []switchboard.SessionKey{k, key("chat_new", "")} {
			if err := e.m.Set(e.ctx, target, route("bad"), opts...); !errors.Is(err, switchboard.ErrInvalidOption) {
				t.Errorf("Set of %v with %s: err = %v, want ErrInvalidOption", target, name, err)
			}
		}
	}
	if after := e.get(k); after.Revision != before.Revision || after.Route.ExternalRoomID != "good" || after.Writer != "inbound" || after.Priority != 3 {
		t.Fatalf("record after bad options = %+v, want it unchanged (%+v)", after, before)
	}
	e.wantGetErr(key("chat_new", ""), switchboard.ErrNotFound)
	if n := e.entries(); n != 1 {
		t.Fatalf("entries after bad options = %d, want 1", n)
	}
	// The limits themselves are accepted.
	e.set(k, route("edge"), switchboard.WithWriter(strings.Repeat("w", switchboard.MaxWriterLen)), switchboard.WithPriority(switchboard.MaxPriority))
	e.set(key("low", ""), route("edge"), switchboard.WithPriority(switchboard.MinPriority))
}

func testRevisions(t *testing.T, newStore Factory) {
	e := newEnv(t, newStore, switchboard.Config{PartitionCount: 2, MaxEntriesPerPartition: 3, TTL: time.Hour})
	k := e.keyIn(0, "k", "")
	thread := k
	thread.ThreadID = "t"
	var revs []uint64
	note := func(what string, rev uint64) {
		t.Helper()
		if rev == 0 {
			t.Fatalf("%s: revision 0", what)
		}
		if len(revs) > 0 && rev <= revs[len(revs)-1] {
			t.Fatalf("%s: revision %d after %d: not increasing (%v)", what, rev, revs[len(revs)-1], revs)
		}
		revs = append(revs, rev)
	}
	e.set(k, route("a"))
	note("Set", e.get(k).Revision)
	e.set(k, route("b"))
	note("overwrite", e.get(k).Revision)
	rec, err := e.m.Confirm(e.ctx, k, route("b"))
	if err != nil {
		t.Fatal(err)
	}
	note("Confirm", rec.Revision)
	if err := e.m.Invalidate(e.ctx, k, route("b"), "gone"); err != nil {
		t.Fatal(err)
	}
	note("Invalidate", e.resolve(k, route("fb")).Revision) // the fallback replacing the tombstone is one more write
	if err := e.m.Delete(e.ctx, k); err != nil {
		t.Fatal(err)
	}
	e.set(k, route("after delete"))
	note("Set after Delete", e.get(k).Revision)
	// Eviction: capacity 3 in k's partition.
	for i := range 3 {
		e.set(e.keyIn(0, fmt.Sprintf("fill%d_", i), ""), route("fill"))
	}
	e.wantGetErr(k, switchboard.ErrNotFound)
	e.set(k, route("after eviction"))
	note("Set after eviction", e.get(k).Revision)
	e.resolve(thread)
	// Unique within the partition: every record holds another revision.
	seen := map[uint64]switchboard.SessionKey{}
	entries, _, err := e.m.List(e.ctx, switchboard.Filter{}, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, en := range entries {
		if en.Partition != 0 {
			continue
		}
		if other, dup := seen[en.Record.Revision]; dup {
			t.Fatalf("revision %d is held by %v and %v in one partition", en.Record.Revision, other, en.Key)
		}
		seen[en.Record.Revision] = en.Key
	}
}

func testIfRevision(t *testing.T, newStore Factory) {
	tests := []struct {
		name    string
		setup   func(e *env, k switchboard.SessionKey) uint64 // returns the revision to require
		wantErr error
	}{
		{"matching revision", func(e *env, k switchboard.SessionKey) uint64 { e.set(k, route("a")); return e.get(k).Revision }, nil},
		{"another revision", func(e *env, k switchboard.SessionKey) uint64 { e.set(k, route("a")); return e.get(k).Revision + 1 }, switchboard.ErrConflict},
		{"an older revision", func(e *env, k switchboard.SessionKey) uint64 {
			e.set(k, route("a"))
			r := e.get(k).Revision
			e.set(k, route("b"))
			return r
		}, switchboard.ErrConflict},
		{"no record", func(e *env, k switchboard.SessionKey) uint64 { return 1 }, switchboard.ErrConflict},
		{"an expired record", func(e *env, k switchboard.SessionKey) uint64 {
			e.set(k, route("a"), switchboard.WithTTL(time.Minute))
			r := e.get(k).Revision
			e.clock.Advance(time.Minute)
			return r
		}, switchboard.ErrConflict},
		{"a tombstone's revision", func(e *env, k switchboard.SessionKey) uint64 {
			e.set(k, route("a"))
			if err := e.m.Invalidate(e.ctx, k, route("a"), "gone"); err != nil {
				e.t.Fatal(err)
			}
			return tombstone(e.t, e, k).Revision
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, newStore, switchboard.Config{TTL: time.Hour})
			k := key("chat_1", "")
			rev := tt.setup(e, k)
			err := e.m.Set(e.ctx, k, route("conditional"), switchboard.IfRevision(rev))
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Set(IfRevision(%d)): %v", rev, err)
				}
				if got := e.get(k); got.Route.ExternalRoomID != "conditional" || got.Revision <= rev {
					t.Fatalf("after a matching IfRevision: %+v", got)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Set(IfRevision(%d)): err = %v, want %v", rev, err, tt.wantErr)
			}
			if got, err := e.m.Get(e.ctx, k); err == nil && got.Route.ExternalRoomID == "conditional" {
				t.Fatal("a refused conditional Set stored its route")
			}
		})
	}
}

func testIfAbsent(t *testing.T, newStore Factory) {
	tests := []struct {
		name    string
		setup   func(e *env, k switchboard.SessionKey)
		wantErr error
	}{
		{"no record", func(*env, switchboard.SessionKey) {}, nil},
		{"a fresh record", func(e *env, k switchboard.SessionKey) { e.set(k, route("a")) }, switchboard.ErrConflict},
		{"a stored fallback", func(e *env, k switchboard.SessionKey) { e.resolve(k, route("guess")) }, switchboard.ErrConflict},
		{"an expired record", func(e *env, k switchboard.SessionKey) {
			e.set(k, route("a"), switchboard.WithTTL(time.Minute))
			e.clock.Advance(time.Minute)
		}, nil},
		{"a tombstone", func(e *env, k switchboard.SessionKey) {
			e.set(k, route("a"), switchboard.WithPriority(100))
			if err := e.m.Invalidate(e.ctx, k, route("a"), "gone"); err != nil {
				e.t.Fatal(err)
			}
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, newStore, switchboard.Config{TTL: time.Hour})
			k := key("chat_1", "")
			tt.setup(e, k)
			err := e.m.Set(e.ctx, k, route("first"), switchboard.IfAbsent())
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Set(IfAbsent): %v", err)
				}
				e.wantRoute(k, "first")
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Set(IfAbsent): err = %v, want %v", err, tt.wantErr)
			}
			if got := e.get(k); got.Route.ExternalRoomID == "first" {
				t.Fatal("a refused IfAbsent stored its route")
			}
		})
	}
}

// testCheckOrder: validation, then conditions, then precedence.
func testCheckOrder(t *testing.T, newStore Factory) {
	e := newEnv(t, newStore, switchboard.Config{})
	k := key("chat_1", "")
	e.set(k, route("user"), switchboard.WithPriority(10))
	rev := e.get(k).Revision
	if err := e.m.Set(e.ctx, k, switchboard.Route{}, switchboard.IfRevision(rev+1)); !errors.Is(err, switchboard.ErrInvalidRoute) {
		t.Errorf("bad route and a failing condition: err = %v, want ErrInvalidRoute first", err)
	}
	if err := e.m.Set(e.ctx, k, route("x"), switchboard.IfRevision(rev+1)); !errors.Is(err, switchboard.ErrConflict) || errors.Is(err, switchboard.ErrSuperseded) {
		t.Errorf("failing condition at a lower priority: err = %v, want ErrConflict", err)
	}
	if err := e.m.Set(e.ctx, k, route("x"), switchboard.IfRevision(rev)); !errors.Is(err, switchboard.ErrSuperseded) {
		t.Errorf("matching condition at a lower priority: err = %v, want ErrSuperseded", err)
	}
	if err := e.m.Set(e.ctx, k, route("x"), switchboard.IfAbsent(), switchboard.WithPriority(20)); !errors.Is(err, switchboard.ErrConflict) {
		t.Errorf("IfAbsent at a higher priority over a fresh record: err = %v, want ErrConflict", err)
	}
	e.wantRoute(k, "user")
}

func testRacingIfRevision(t *testing.T, newStore Factory) {
	e := newEnv(t, newStore, switchboard.Config{})
	k := key("chat_1", "")
	e.set(k, route("base"))
	rev := e.get(k).Revision
	const racers = 64
	var wg sync.WaitGroup
	var mu sync.Mutex
	won, conflicts := []int{}, 0
	var other []error
	startGun := make(chan struct{})
	for i := range racers {
		wg.Go(func() {
			<-startGun
			err := e.m.Set(e.ctx, k, route(fmt.Sprint("racer", i)), switchboard.IfRevision(rev))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won = append(won, i)
			case errors.Is(err, switchboard.ErrConflict):
				conflicts++
			default:
				other = append(other, err)
			}
		})
	}
	close(startGun)
	wg.Wait()
	if len(won) != 1 || conflicts != racers-1 || len(other) != 0 {
		t.Fatalf("%d racers with IfRevision(%d): %d won (%v), %d conflicts, other errors %v; want exactly one winner", racers, rev, len(won), won, conflicts, other)
	}
	e.wantRoute(k, fmt.Sprint("racer", won[0]))
}

func testConfirm(t *testing.T, newStore Factory) {
	e := newEnv(t, newStore, switchboard.Config{PartitionCount: 1, MaxEntriesPerPartition: 3, TTL: time.Hour, ProvisionalTTL: 2 * time.Minute})
	a, b, c, d := key("a", ""), key("b", ""), key("c", ""), key("d", "")
	routeA := switchboard.Route{ExternalRoomID: "-100a", ThreadID: "42", Meta: map[string]string{"x": "1"}}
	e.set(a, routeA, switchboard.WithTTL(5*time.Minute), switchboard.WithWriter("inbound"), switchboard.WithPriority(4))
	e.set(b, route("b"))
	before := e.get(a)
	e.clock.Advance(3 * time.Minute)
	now := e.clock.Now()
	// The delivered route's target must match: (ExternalRoomID, ThreadID).
	for name, r := range map[string]switchboard.Route{
		"another room":   {ExternalRoomID: "-100b", ThreadID: "42"},
		"another thread": {ExternalRoomID: "-100a", ThreadID: "43"},
		"no thread":      {ExternalRoomID: "-100a"},
	} {
		if _, err := e.m.Confirm(e.ctx, a, r); !errors.Is(err, switchboard.ErrConflict) {
			t.Errorf("Confirm with %s: err = %v, want ErrConflict", name, err)
		}
	}
	if after := e.get(a); after.Revision != before.Revision || after.Confirmed {
		t.Fatalf("a conflicting Confirm changed the record: %+v", after)
	}
	// Meta and the other route fields do not take part.
	got, err := e.m.Confirm(e.ctx, a, switchboard.Route{ExternalRoomID: "-100a", ThreadID: "42", RoomID: "other"})
	if err != nil {
		t.Fatal(err)
	}
	if !got.Confirmed || !got.UpdatedAt.Equal(now) || !got.ExpiresAt.Equal(now.Add(5*time.Minute)) || got.Revision <= before.Revision ||
		got.Origin != switchboard.OriginSet || got.Writer != "inbound" || got.Priority != 4 || !sameRoute(got.Route, routeA) {
		t.Fatalf("confirmed record = %+v; want confirmed, updated now, fresh for its own 5m, provenance and route unchanged", got)
	}
	if rec := e.get(a); !rec.Confirmed || rec.Revision != got.Revision {
		t.Fatalf("stored after Confirm: %+v", rec)
	}
	// Confirm made a the most recently written: the next eviction takes b.
	e.set(c, route("c"))
	e.set(d, route("d"))
	e.wantGetErr(b, switchboard.ErrNotFound)
	e.get(a)
	// Any other write resets Confirmed.
	e.set(a, routeA, switchboard.WithPriority(4))
	if e.get(a).Confirmed {
		t.Fatal("a Set kept Confirmed")
	}
	// A route stored by Resolve gets the full TTL when confirmed.
	thread := key("c", "t")
	res := e.resolve(thread)
	if rec := e.get(thread); !rec.ExpiresAt.Equal(now.Add(2 * time.Minute)) {
		t.Fatalf("provisional route expires %v, want now + 2m", rec.ExpiresAt)
	}
	got, err = e.m.Confirm(e.ctx, thread, res.Route)
	if err != nil || !got.ExpiresAt.Equal(now.Add(time.Hour)) || got.Origin != switchboard.OriginRoomFallback {
		t.Fatalf("Confirm of a provisional route = %+v, %v; want the full TTL, origin kept", got, err)
	}
	// Nothing to confirm.
	if _, err := e.m.Confirm(e.ctx, key("none", ""), route("x")); !errors.Is(err, switchboard.ErrNotFound) {
		t.Errorf("Confirm without a record: %v, want ErrNotFound", err)
	}
	e.clock.Advance(time.Hour)
	if _, err := e.m.Confirm(e.ctx, thread, res.Route); !errors.Is(err, switchboard.ErrNotFound) {
		t.Errorf("Confirm of an expired record: %v, want ErrNotFound", err)
	}
	if _, err := e.m.Confirm(e.ctx, key("none", ""), switchboard.Route{}); !errors.Is(err, switchboard.ErrInvalidRoute) {
		t.Errorf("Confirm with an empty route: %v, want ErrInvalidRoute", err)
	}
}

func testInvalidate(t *testing.T, newStore Factory) {
	e := newEnv(t, newStore, switchboard.Config{TTL: time.Hour})
	k := key("chat_1", "")
	r := switchboard.Route{ExternalRoomID: "-100123", ThreadID: "9"}
	e.set(k, r, switchboard.WithWriter("inbound"), switchboard.WithPriority(2))
	before := e.get(k)
	for name, reason := range map[string]string{
		"empty":             "",
		"control character": "bot\nremoved",
		"invalid UTF-8":     "\xff",
		"too long":          strings.Repeat("r", switchboard.MaxReasonLen+1),
	} {
		if err := e.m.Invalidate(e.ctx, k, r, reason); !errors.Is(err, switchboard.ErrInvalidOption) {
			t.Errorf("Invalidate with a reason %s: err = %v, want ErrInvalidOption", name, err)
		}
	}
	if err := e.m.Invalidate(e.ctx, k, switchboard.Route{ExternalRoomID: "-100123"}, "gone"); !errors.Is(err, switchboard.ErrConflict) {
		t.Errorf("Invalidate of another target: %v, want ErrConflict", err)
	}
	e.get(k) // still valid
	e.clock.Advance(time.Minute)
	if err := e.m.Invalidate(e.ctx, k, r, "403 bot removed"); err != nil {
		t.Fatalf("Invalidate: %v", err)
	}
	_, err := e.m.Get(e.ctx, k)
	if !errors.Is(err, switchboard.ErrInvalidated) || !strings.Contains(err.Error(), "403 bot removed") {
		t.Fatalf("Get of a tombstone: err = %v, want ErrInvalidated with the reason", err)
	}
	tomb := tombstone(t, e, k)
	if tomb.Invalidated != "403 bot removed" || tomb.Revision <= before.Revision || !tomb.ExpiresAt.Equal(before.ExpiresAt) ||
		!sameRoute(tomb.Route, r) || tomb.Origin != switchboard.OriginSet || tomb.Writer != "inbound" || tomb.Priority != 2 || tomb.Confirmed {
		t.Fatalf("tombstone = %+v; want the reason, a new revision, route, provenance and expiry unchanged", tomb)
	}
	// Again with that target: nil, unchanged.
	if err := e.m.Invalidate(e.ctx, k, r, "another reason"); err != nil {
		t.Fatalf("second Invalidate: %v, want nil", err)
	}
	if again := tombstone(t, e, k); again.Revision != tomb.Revision || again.Invalidated != tomb.Invalidated {
		t.Fatalf("second Invalidate changed the tombstone: %+v", again)
	}
	if err := e.m.Invalidate(e.ctx, key("none", ""), r, "gone"); !errors.Is(err, switchboard.ErrNotFound) {
		t.Errorf("Invalidate without a record: %v, want ErrNotFound", err)
	}
	if _, err := e.m.Confirm(e.ctx, k, r); !errors.Is(err, switchboard.ErrNotFound) {
		t.Errorf("Confirm of a tombstone: %v, want ErrNotFound", err)
	}
}

// tombstone returns the tombstone of k, through List.
func tombstone(t *testing.T, e *env, k switchboard.SessionKey) switchboard.Record {
	t.Helper()
	entries, _, err := e.m.List(e.ctx, switchboard.Filter{ChannelType: k.ChannelType, BridgeID: k.BridgeID, RoomID: k.RoomID,
		ThreadID: k.ThreadID, Invalidated: true}, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, en := range entries {
		if en.Key == k {
			return en.Record
		}
	}
	t.Fatalf("no tombstone listed for %v", k)
	return switchboard.Record{}
}

// trustResolveCases are the resolve situations of section 6.
func trustResolveCases() []resolveCase {
	room, thread := key("chat_1", ""), key("chat_1", "th_1")
	x, y := route("X"), route("Y")
	invalidate := func(e *env, k switchboard.SessionKey, r switchboard.Route) {
		if err := e.m.Invalidate(e.ctx, k, r, "404 thread deleted"); err != nil {
			e.t.Fatal(err)
		}
	}
	res := func(r switchboard.Route, src switchboard.Source, stale bool, reason switchboard.FallbackReason) switchboard.Resolution {
		return switchboard.Resolution{Route: r, Source: src, Fallback: src != switchboard.SourceStateHit, Stale: stale, FallbackReason: reason}
	}
	return []resolveCase{{
		name:  "a tombstone is not answered; a fallback with its target is skipped",
		setup: func(e *env) { e.set(room, x); invalidate(e, room, x) },
		key:   room, fallbacks: []switchboard.Route{x, y},
		want:  res(y, switchboard.SourceProvidedFallback, false, switchboard.ReasonInvalidated),
		after: func(t *testing.T, e *env) { e.wantRoute(room, "Y") }, // the stored fallback replaced the tombstone
	}, {
		name:  "only fallbacks with the tombstone's target",
		setup: func(e *env) { e.set(room, x); invalidate(e, room, x) },
		key:   room, fallbacks: []switchboard.Route{x},
		wantErr: switchboard.ErrNoRoute,
		after:   func(t *testing.T, e *env) { e.wantGetErr(room, switchboard.ErrInvalidated) },
	}, {
		name:  "a thread's tombstone bans the room route with its target",
		setup: func(e *env) { e.set(room, x); e.set(thread, x); invalidate(e, thread, x) },
		key:   thread, fallbacks: []switchboard.Route{x, y},
		want: res(y, switchboard.SourceProvidedFallback, false, switchboard.ReasonInvalidated),
	}, {
		name:  "a thread's tombstone with another target: the room route",
		setup: func(e *env) { e.set(room, x); e.set(thread, y); invalidate(e, thread, y) },
		key:   thread,
		want:  res(x, switchboard.SourcePartitionFallback, false, switchboard.ReasonInvalidated),
		after: func(t *testing.T, e *env) { e.wantRoute(thread, "X") },
	}, {
		name:  "a room's tombstone bans fallbacks with its target",
		setup: func(e *env) { e.set(room, x); invalidate(e, room, x) },
		key:   thread, fallbacks: []switchboard.Route{{}, x, y},
		want: res(y, switchboard.SourceProvidedFallback, false, switchboard.ReasonInvalidated),
	}, {
		name:  "a room's tombstone and no other candidate",
		setup: func(e *env) { e.set(room, x); invalidate(e, room, x) },
		key:   thread, fallbacks: []switchboard.Route{x},
		wantErr: switchboard.ErrNoRoute,
	}, {
		name: "an expired record looked at makes it stale, not invalidated",
		setup: func(e *env) {
			e.set(room, y, switchboard.WithTTL(time.Minute))
			e.set(thread, x, switchboard.WithTTL(time.Hour))
			invalidate(e, thread, x)
			e.clock.Advance(time.Minute)
		},
		key: thread, fallbacks: []switchboard.Route{x, y},
		want: res(y, switchboard.SourceProvidedFallback, true, switchboard.ReasonStale),
	}, {
		name:  "a tombstone of another target does not ban a fallback",
		setup: func(e *env) { e.set(room, x); invalidate(e, room, x) },
		key:   room, fallbacks: []switchboard.Route{{ExternalRoomID: "X", ThreadID: "other"}},
		want: res(switchboard.Route{ExternalRoomID: "X", ThreadID: "other"}, switchboard.SourceProvidedFallback, false, switchboard.ReasonInvalidated),
	}}
}

func testResolvePastTombstones(t *testing.T, newStore Factory) {
	for _, tt := range trustResolveCases() {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, newStore, switchboard.Config{TTL: resolveTTL})
			tt.setup(e)
			got, err := e.m.Resolve(e.ctx, tt.key, tt.fallbacks...)
			tt.check(t, e, got, err)
			if tt.after != nil {
				tt.after(t, e)
			}
		})
	}
}

func testTombstoneLifecycle(t *testing.T, newStore Factory) {
	e := newEnv(t, newStore, switchboard.Config{PartitionCount: 1, MaxEntriesPerPartition: 2, TTL: time.Hour})
	a, b, c := key("a", ""), key("b", ""), key("c", "")
	e.set(a, route("a"), switchboard.WithPriority(50), switchboard.WithTTL(10*time.Minute))
	if err := e.m.Invalidate(e.ctx, a, route("a"), "gone"); err != nil {
		t.Fatal(err)
	}
	// It counts toward capacity and keeps its place in the write order.
	e.set(b, route("b"))
	if n := e.entries(); n != 2 {
		t.Fatalf("entries with a tombstone = %d, want 2", n)
	}
	e.set(c, route("c"))
	e.wantGetErr(a, switchboard.ErrNotFound) // the oldest, evicted
	// A Set at any priority replaces a tombstone; so does IfAbsent.
	e.set(a, route("a"), switchboard.WithTTL(10*time.Minute))
	if err := e.m.Invalidate(e.ctx, a, route("a"), "gone"); err != nil {
		t.Fatal(err)
	}
	e.set(a, route("a2"), switchboard.WithPriority(-1000), switchboard.IfAbsent(), switchboard.WithTTL(10*time.Minute))
	e.wantRoute(a, "a2")
	// It expires and is pruned like any record.
	if err := e.m.Invalidate(e.ctx, a, route("a2"), "gone"); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(10 * time.Minute)
	if res, err := e.m.Prune(e.ctx); err != nil || res.Pruned != 1 {
		t.Fatalf("Prune of an expired tombstone = %+v, %v; want 1 pruned", res, err)
	}
	e.wantGetErr(a, switchboard.ErrNotFound)
}

func testProvisionalTTL(t *testing.T, newStore Factory) {
	e := newEnv(t, newStore, switchboard.Config{TTL: time.Hour, ProvisionalTTL: 2 * time.Minute})
	room, thread, other := key("chat_1", ""), key("chat_1", "t"), key("chat_2", "")
	e.set(room, route("r"))
	if rec := e.get(room); !rec.ExpiresAt.Equal(start.Add(time.Hour)) {
		t.Fatalf("Set route expires %v, want the TTL", rec.ExpiresAt)
	}
	e.resolve(thread)
	e.resolve(other, route("guess"))
	for _, k := range []switchboard.SessionKey{thread, other} {
		if rec := e.get(k); !rec.ExpiresAt.Equal(start.Add(2 * time.Minute)) {
			t.Errorf("route stored by Resolve under %v expires %v, want the provisional 2m", k, rec.ExpiresAt)
		}
	}
	if _, err := e.m.Confirm(e.ctx, other, route("guess")); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(2 * time.Minute)
	e.wantGetErr(thread, switchboard.ErrExpired) // the unconfirmed guess is gone soon
	e.wantRoute(other, "guess")                  // the confirmed one stays
	// Without ProvisionalTTL, routes stored by Resolve get the TTL.
	e2 := newEnv(t, newStore, switchboard.Config{TTL: time.Hour})
	e2.resolve(other, route("guess"))
	if rec := e2.get(other); !rec.ExpiresAt.Equal(start.Add(time.Hour)) {
		t.Fatalf("without ProvisionalTTL a stored fallback expires %v, want the TTL", rec.ExpiresAt)
	}
	if got := e2.m.Config().EffectiveProvisionalTTL(); got != time.Hour {
		t.Fatalf("EffectiveProvisionalTTL = %v, want the TTL", got)
	}
}

func testTrustEvents(t *testing.T, newStore Factory) {
	e := newEnv(t, newStore, switchboard.Config{PartitionCount: 4})
	k := e.keyIn(3, "k", "")
	p := 3
	e.set(k, route("r"), switchboard.WithPriority(5))
	rev := e.get(k).Revision
	e.obs.take()
	type ev struct {
		kind switchboard.EventKind
		op   string
		key  switchboard.SessionKey
		part int
	}
	steps := []struct {
		name string
		do   func()
		want ev
	}{
		{"superseded", func() { _ = e.m.Set(e.ctx, k, route("x")) }, ev{switchboard.EventSuperseded, "", k, p}},
		{"conflict on set", func() { _ = e.m.Set(e.ctx, k, route("x"), switchboard.IfRevision(rev+7)) }, ev{switchboard.EventConflict, "set", k, p}},
		{"conflict on confirm", func() { _, _ = e.m.Confirm(e.ctx, k, route("x")) }, ev{switchboard.EventConflict, "confirm", k, p}},
		{"confirmed", func() { _, _ = e.m.Confirm(e.ctx, k, route("r")) }, ev{switchboard.EventConfirmed, "", k, p}},
		{"conflict on invalidate", func() { _ = e.m.Invalidate(e.ctx, k, route("x"), "gone") }, ev{switchboard.EventConflict, "invalidate", k, p}},
		{"invalidated", func() { _ = e.m.Invalidate(e.ctx, k, route("r"), "gone") }, ev{switchboard.EventInvalidated, "", k, p}},
	}
	for _, s := range steps {
		s.do()
		got := e.obs.take()
		if len(got) != 1 || (ev{got[0].Kind, got[0].Op, got[0].SessionKey, got[0].Partition}) != s.want || got[0].Revision == 0 {
			t.Errorf("%s: events %+v, want one %+v with a revision", s.name, got, s.want)
		}
	}
}
