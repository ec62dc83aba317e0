package storetest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-go/switchboard"
)

// operateRules are section 7 of the contract: List, DeleteMatching,
// Explain.
var operateRules = []rule{
	{"ListFilters", testListFilters},
	{"ListConcurrentWriters", testListConcurrentWriters},
	{"ListBadInput", testListBadInput},
	{"DeleteMatching", testDeleteMatching},
	{"ExplainEqualsResolve", testExplainEqualsResolve},
}

// listed is what the model knows of one stored record.
type listed struct {
	key     switchboard.SessionKey
	ext     string
	updated time.Time
	expires time.Time
	origin  switchboard.Origin
	writer  string
	tomb    bool
}

// awkwardRooms are room ids that a string-prefix or naive join would
// confuse.
var awkwardRooms = []string{"a:b", "a", "a%3Ab", "a:b:c", "ü💬", "a%", "%3A"}

// populate stores n records over five bridges, two channel types, three
// ages ten minutes apart, a mix of origins and writers, some tombstones
// and some records that are expired by the end; it returns the model.
func populate(t *testing.T, e *env, n int) map[switchboard.SessionKey]*listed {
	t.Helper()
	model := map[switchboard.SessionKey]*listed{}
	rng := rand.New(rand.NewPCG(uint64(n), 3))
	perAge := n / 3
	for i := range n {
		if i > 0 && i%perAge == 0 && i/perAge < 3 {
			e.clock.Advance(10 * time.Minute)
		}
		now := e.clock.Now()
		k := switchboard.SessionKey{
			ChannelType: []string{"telegram", "slack"}[i%2],
			BridgeID:    fmt.Sprintf("b%d", i%5),
			RoomID:      fmt.Sprintf("room_%d", i/3),
		}
		if i%10 == 7 {
			k.RoomID = awkwardRooms[(i/10)%len(awkwardRooms)] + fmt.Sprint(i/70)
			if i%20 == 7 {
				k.RoomID = awkwardRooms[(i/20)%len(awkwardRooms)]
			}
		}
		if i%3 == 1 {
			k.ThreadID = fmt.Sprintf("t%d", i%4)
		}
		if model[k] != nil {
			continue
		}
		ext := fmt.Sprintf("ext_%d", i)
		rec := &listed{key: k, ext: ext, updated: now, expires: now.Add(time.Hour)}
		if r := rng.IntN(10); r < 3 {
			// Resolve stores the room's route for a thread whose room is
			// known, or else the caller's fallback.
			res, err := e.m.Resolve(e.ctx, k, route(ext))
			if err != nil {
				t.Fatal(err)
			}
			rec.ext, rec.origin = res.ExternalRoomID, res.Origin
		} else {
			rec.writer = []string{"inbound", "cron", ""}[i%3]
			ttl := time.Hour
			if i%17 == 0 {
				ttl = 5 * time.Minute // expired by the end
			}
			e.set(k, route(ext), switchboard.WithWriter(rec.writer), switchboard.WithTTL(ttl))
			rec.origin, rec.expires = switchboard.OriginSet, now.Add(ttl)
		}
		if i%13 == 0 {
			if err := e.m.Invalidate(e.ctx, k, route(rec.ext), "gone"); err != nil {
				t.Fatal(err)
			}
			rec.tomb = true
		}
		model[k] = rec
	}
	e.clock.Advance(10 * time.Minute) // the short-lived ones are expired now
	return model
}

// listAll pages through List with limit and returns every entry.
func listAll(t *testing.T, e *env, f switchboard.Filter, limit int) []switchboard.Entry {
	t.Helper()
	var out []switchboard.Entry
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 100000 {
			t.Fatal("List never ends")
		}
		entries, next, err := e.m.List(e.ctx, f, limit, cursor)
		if err != nil {
			t.Fatalf("List(%+v, %d, %q): %v", f, limit, cursor, err)
		}
		if len(entries) > limit {
			t.Fatalf("List returned %d entries, limit %d", len(entries), limit)
		}
		if next != "" && len(entries) < limit {
			t.Fatalf("List returned a short page (%d of %d) with a next cursor", len(entries), limit)
		}
		out = append(out, entries...)
		if next == "" {
			return out
		}
		cursor = next
	}
}

func testListFilters(t *testing.T, newStore Factory) {
	e := newEnv(t, newStore, switchboard.Config{PartitionCount: 4, MaxEntriesPerPartition: 100000, TTL: time.Hour})
	model := populate(t, e, 10000)
	now := e.clock.Now()
	secondAge := start.Add(10 * time.Minute)
	fresh := func(l *listed) bool { return now.Before(l.expires) }
	tests := []struct {
		name   string
		filter switchboard.Filter
		want   func(l *listed) bool
	}{
		{"everything valid", switchboard.Filter{}, func(l *listed) bool { return !l.tomb }},
		{"channel type", switchboard.Filter{ChannelType: "slack"}, func(l *listed) bool { return !l.tomb && l.key.ChannelType == "slack" }},
		{"bridge", switchboard.Filter{BridgeID: "b3"}, func(l *listed) bool { return !l.tomb && l.key.BridgeID == "b3" }},
		{"room with a colon", switchboard.Filter{RoomID: "a:b"}, func(l *listed) bool { return !l.tomb && l.key.RoomID == "a:b" }},
		{"room that prefixes others", switchboard.Filter{RoomID: "a"}, func(l *listed) bool { return !l.tomb && l.key.RoomID == "a" }},
		{"room with a percent", switchboard.Filter{RoomID: "a%3Ab"}, func(l *listed) bool { return !l.tomb && l.key.RoomID == "a%3Ab" }},
		{"room not ASCII", switchboard.Filter{RoomID: "ü💬"}, func(l *listed) bool { return !l.tomb && l.key.RoomID == "ü💬" }},
		{"thread", switchboard.Filter{ThreadID: "t1"}, func(l *listed) bool { return !l.tomb && l.key.ThreadID == "t1" }},
		{"room scope", switchboard.Filter{Scope: switchboard.ScopeRoom}, func(l *listed) bool { return !l.tomb && l.key.ThreadID == "" }},
		{"thread scope", switchboard.Filter{Scope: switchboard.ScopeThread}, func(l *listed) bool { return !l.tomb && l.key.ThreadID != "" }},
		{"external room", switchboard.Filter{ExternalRoomID: "ext_42"}, func(l *listed) bool { return !l.tomb && l.ext == "ext_42" }},
		{"provided fallbacks", switchboard.Filter{Origin: switchboard.OriginProvidedFallback}, func(l *listed) bool { return !l.tomb && l.origin == switchboard.OriginProvidedFallback }},
		{"room fallbacks", switchboard.Filter{Origin: switchboard.OriginRoomFallback}, func(l *listed) bool { return !l.tomb && l.origin == switchboard.OriginRoomFallback }},
		{"writer", switchboard.Filter{Writer: "cron"}, func(l *listed) bool { return !l.tomb && l.writer == "cron" }},
		{"updated before", switchboard.Filter{UpdatedBefore: secondAge.Add(time.Minute)}, func(l *listed) bool { return !l.tomb && l.updated.Before(secondAge.Add(time.Minute)) }},
		{"tombstones", switchboard.Filter{Invalidated: true}, func(l *listed) bool { return l.tomb }},
		{"tombstones of a bridge's threads", switchboard.Filter{BridgeID: "b1", Scope: switchboard.ScopeThread, Invalidated: true},
			func(l *listed) bool { return l.tomb && l.key.BridgeID == "b1" && l.key.ThreadID != "" }},
		{"combined", switchboard.Filter{ChannelType: "telegram", BridgeID: "b2", Scope: switchboard.ScopeRoom, Writer: "inbound"},
			func(l *listed) bool {
				return !l.tomb && l.key.ChannelType == "telegram" && l.key.BridgeID == "b2" && l.key.ThreadID == "" && l.writer == "inbound"
			}},
	}
	for _, tt := range tests {
		want := map[switchboard.SessionKey]bool{}
		for k, l := range model {
			if fresh(l) && tt.want(l) {
				want[k] = true
			}
		}
		if len(want) == 0 {
			t.Errorf("%s: the workload has no matching record (a useless case)", tt.name)
		}
		for _, size := range []int{7, 100, 1000} {
			got := listAll(t, e, tt.filter, size)
			seen := map[switchboard.SessionKey]bool{}
			for _, en := range got {
				l := model[en.Key]
				switch {
				case seen[en.Key]:
					t.Fatalf("%s, pages of %d: %v listed twice", tt.name, size, en.Key)
				case !want[en.Key]:
					t.Fatalf("%s, pages of %d: %v listed, but does not match (%+v)", tt.name, size, en.Key, en.Record)
				case en.Partition != e.m.RoutePartition(en.Key) || en.Record.Route.ExternalRoomID != l.ext ||
					en.Record.Origin != l.origin || en.Record.Writer != l.writer || (en.Record.Invalidated != "") != l.tomb:
					t.Fatalf("%s: entry %+v disagrees with what was written (%+v)", tt.name, en, *l)
				}
				seen[en.Key] = true
			}
			if len(seen) != len(want) {
				t.Fatalf("%s, pages of %d: %d records listed, want %d", tt.name, size, len(seen), len(want))
			}
		}
	}
}

func testListConcurrentWriters(t *testing.T, newStore Factory) {
	e := newEnv(t, newStore, switchboard.Config{PartitionCount: 4, MaxEntriesPerPartition: 100000, TTL: time.Hour})
	const n = 2000
	var untouched, touched []switchboard.SessionKey
	for i := range n {
		k := key(fmt.Sprintf("room_%d", i), "")
		e.set(k, route(k.RoomID))
		if i%4 == 0 {
			touched = append(touched, k)
		} else {
			untouched = append(untouched, k)
		}
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	errc := make(chan error, 4)
	for w := range 3 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 11))
			for i := 0; !stop.Load(); i++ {
				k := touched[rng.IntN(len(touched))]
				var err error
				switch rng.IntN(4) {
				case 0, 1:
					err = e.m.Set(e.ctx, k, route(k.RoomID))
				case 2:
					if err = e.m.Delete(e.ctx, k); errors.Is(err, switchboard.ErrNotFound) {
						err = nil
					}
				default: // new keys, in every partition
					err = e.m.Set(e.ctx, key(fmt.Sprintf("new_%d_%d", w, i), "t"), route("new"))
				}
				if err != nil {
					errc <- err
					return
				}
			}
		})
	}
	got := listAll(t, e, switchboard.Filter{}, 7)
	stop.Store(true)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	count := map[switchboard.SessionKey]int{}
	for _, en := range got {
		count[en.Key]++
	}
	for _, k := range untouched {
		if count[k] != 1 {
			t.Fatalf("untouched %v listed %d times during concurrent writes, want once", k, count[k])
		}
	}
}

func testListBadInput(t *testing.T, newStore Factory) {
	e := newEnv(t, newStore, switchboard.Config{PartitionCount: 4})
	for i := range 150 {
		e.set(key(fmt.Sprintf("room_%d", i), ""), route("r"))
	}
	page, next, err := e.m.List(e.ctx, switchboard.Filter{}, 0, "")
	if err != nil || len(page) != switchboard.DefaultListLimit || next == "" {
		t.Fatalf("List with limit 0 = %d entries, next %q, %v; want %d and a cursor", len(page), next, err, switchboard.DefaultListLimit)
	}
	other := newEnv(t, newStore, switchboard.Config{PartitionCount: 8})
	for i := range 150 {
		other.set(key(fmt.Sprintf("room_%d", i), ""), route("r"))
	}
	_, foreign, err := other.m.List(other.ctx, switchboard.Filter{}, 10, "")
	if err != nil || foreign == "" {
		t.Fatal(err)
	}
	bad := []struct {
		name   string
		filter switchboard.Filter
		limit  int
		cursor string
	}{
		{"negative limit", switchboard.Filter{}, -1, "-"},
		{"limit above the maximum", switchboard.Filter{}, switchboard.MaxListLimit + 1, "-"},
		{"garbage cursor", switchboard.Filter{}, 10, "not a cursor"},
		{"truncated cursor", switchboard.Filter{}, 10, next[:len(next)/2]},
		{"cursor of another partition count", switchboard.Filter{}, 10, foreign},
		{"unknown scope", switchboard.Filter{Scope: "everything"}, 10, ""},
		{"unknown origin", switchboard.Filter{Origin: "guess"}, 10, ""},
		{"control character", switchboard.Filter{RoomID: "a\nb"}, 10, ""},
		{"bad writer", switchboard.Filter{Writer: "\xff"}, 10, ""},
		{"thread in room scope", switchboard.Filter{ThreadID: "t", Scope: switchboard.ScopeRoom}, 10, ""},
	}
	for _, b := range bad {
		cursor := b.cursor
		if cursor == "-" { // a bad limit: with a valid cursor
			cursor = next
		}
		if _, _, err := e.m.List(e.ctx, b.filter, b.limit, cursor); !errors.Is(err, switchboard.ErrInvalidOption) {
			t.Errorf("List with %s: err = %v, want ErrInvalidOption", b.name, err)
		}
		if b.cursor == "" && b.limit > 0 {
			if _, err := e.m.DeleteMatching(e.ctx, b.filter, true); !errors.Is(err, switchboard.ErrInvalidOption) {
				t.Errorf("DeleteMatching with %s: err = %v, want ErrInvalidOption", b.name, err)
			}
		}
	}
}

func testDeleteMatching(t *testing.T, newStore Factory) {
	e := newEnv(t, newStore, switchboard.Config{PartitionCount: 4, MaxEntriesPerPartition: 100000, TTL: time.Hour})
	model := populate(t, e, 3000)
	now := e.clock.Now()
	valid := 0
	for _, l := range model {
		if now.Before(l.expires) && !l.tomb {
			valid++
		}
	}
	// A zero filter: fine as a dry run, refused for real.
	dry, err := e.m.DeleteMatching(e.ctx, switchboard.Filter{}, true)
	if err != nil || dry.Matched != valid || dry.Deleted != 0 {
		t.Fatalf("dry run with a zero filter = %+v, %v; want %d matched", dry, err, valid)
	}
	if _, err := e.m.DeleteMatching(e.ctx, switchboard.Filter{}, false); !errors.Is(err, switchboard.ErrInvalidOption) {
		t.Fatalf("a real delete with a zero filter: err = %v, want ErrInvalidOption", err)
	}
	for _, f := range []switchboard.Filter{
		{RoomID: "a:b"},
		{BridgeID: "b2", Scope: switchboard.ScopeThread},
		{Origin: switchboard.OriginProvidedFallback},
		{Invalidated: true, ChannelType: "slack"},
	} {
		entriesBefore := e.entries()
		listedBefore := listAll(t, e, f, 1000)
		dry, err := e.m.DeleteMatching(e.ctx, f, true)
		if err != nil || dry.Deleted != 0 || dry.Matched != len(listedBefore) || len(dry.Sample) != min(dry.Matched, switchboard.MaxDeleteSample) {
			t.Fatalf("dry run %+v = %+v, %v; want %d matched, nothing deleted", f, dry, err, len(listedBefore))
		}
		if dry.Matched == 0 {
			t.Fatalf("filter %+v matches nothing in the workload (a useless case)", f)
		}
		if n := e.entries(); n != entriesBefore || len(listAll(t, e, f, 1000)) != len(listedBefore) {
			t.Fatalf("the dry run changed something: entries %d, were %d", n, entriesBefore)
		}
		e.obs.take()
		res, err := e.m.DeleteMatching(e.ctx, f, false)
		if err != nil || res.Matched != dry.Matched || res.Deleted != dry.Matched {
			t.Fatalf("DeleteMatching %+v = %+v, %v; want %d deleted, as the dry run said", f, res, err, dry.Matched)
		}
		deleted := map[switchboard.SessionKey]bool{}
		for _, ev := range e.obs.take() {
			if ev.Kind == switchboard.EventDeleted {
				deleted[ev.SessionKey] = true
			}
		}
		for _, en := range listedBefore {
			if !deleted[en.Key] {
				t.Fatalf("no deleted event for %v", en.Key)
			}
			delete(model, en.Key)
		}
		if len(deleted) != res.Deleted {
			t.Fatalf("%d deleted events, %d deleted", len(deleted), res.Deleted)
		}
		for _, k := range res.Sample {
			if !deleted[k] {
				t.Fatalf("sample key %v was not deleted", k)
			}
		}
		if n := e.entries(); n != entriesBefore-res.Deleted {
			t.Fatalf("entries after deleting %d = %d, were %d", res.Deleted, n, entriesBefore)
		}
		if left := listAll(t, e, f, 1000); len(left) != 0 {
			t.Fatalf("%d records still match after DeleteMatching", len(left))
		}
	}
	// What was not matched is all still there.
	for k, l := range model {
		if !now.Before(l.expires) {
			continue
		}
		_, err := e.m.Get(e.ctx, k)
		if l.tomb && !errors.Is(err, switchboard.ErrInvalidated) || !l.tomb && err != nil {
			t.Fatalf("Get(%v) after the deletes: %v", k, err)
		}
	}
}

func testExplainEqualsResolve(t *testing.T, newStore Factory) {
	cases := append(resolveCases(), trustResolveCases()...)
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, newStore, switchboard.Config{TTL: resolveTTL})
			if tt.setup != nil {
				tt.setup(e)
			}
			before := e.entries()
			ex, err := e.m.Explain(e.ctx, tt.key, tt.fallbacks...)
			if err != nil {
				t.Fatalf("Explain: %v", err)
			}
			again, err := e.m.Explain(e.ctx, tt.key, tt.fallbacks...)
			if err != nil || !reflect.DeepEqual(again, ex) {
				t.Fatalf("a second Explain differs (%v):\n %+v\n %+v", err, again, ex)
			}
			if n := e.entries(); n != before {
				t.Fatalf("Explain changed the entry count from %d to %d", before, n)
			}
			if len(ex.Steps) == 0 || ex.Steps[0].Role != switchboard.RoleExact || ex.Steps[0].Key != tt.key {
				t.Fatalf("Explain steps %+v: want the exact key first", ex.Steps)
			}
			got, rerr := e.m.Resolve(e.ctx, tt.key, tt.fallbacks...)
			if (rerr == nil) != (ex.Err == nil) || (rerr != nil && !errors.Is(ex.Err, tt.wantErr)) {
				t.Fatalf("Explain's error %v, Resolve's %v", ex.Err, rerr)
			}
			tt.check(t, e, ex.Resolution, ex.Err)
			tt.check(t, e, got, rerr)
			if rerr == nil {
				x := ex.Resolution
				if x.Origin != got.Origin || x.Writer != got.Writer || x.Confirmed != got.Confirmed ||
					(got.Source == switchboard.SourceStateHit && x.Revision != got.Revision) {
					t.Fatalf("Explain's provenance %+v, Resolve's %+v", x, got)
				}
				used := slices.IndexFunc(ex.Steps, func(s switchboard.Step) bool { return s.Found == switchboard.FoundUsed })
				if got.Source != switchboard.SourceStateHit && (used < 0 || ex.Steps[used].Record.Route.ExternalRoomID != got.ExternalRoomID) {
					t.Fatalf("Explain steps %+v: want a used step with %q", ex.Steps, got.ExternalRoomID)
				}
			}
		})
	}
	// An expired record is reported, and stays to be reported again.
	e := newEnv(t, newStore, switchboard.Config{TTL: time.Minute})
	k := key("chat_1", "")
	e.set(k, route("r"))
	e.clock.Advance(time.Minute)
	for range 2 {
		ex, err := e.m.Explain(e.ctx, k)
		if err != nil || ex.Steps[0].Found != switchboard.FoundExpired || !errors.Is(ex.Err, switchboard.ErrNoRoute) {
			t.Fatalf("Explain of an expired record = %+v, %v", ex, err)
		}
	}
	e.wantGetErr(k, switchboard.ErrExpired)
}
