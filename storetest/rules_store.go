package storetest

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-go/switchboard"
)

// storeRules call the Store's methods directly, as a Manager does, and
// check what each reports.
var storeRules = []rule{
	{"InitTwice", testStoreInitTwice},
	{"AfterClose", testStoreAfterClose},
	{"DoneContext", testStoreDoneContext},
	{"SetResults", testStoreSetResults},
	{"ResolveResults", testStoreResolveResults},
	{"Look", testStoreLook},
	{"FeedbackResults", testStoreFeedbackResults},
	{"DeletePruneStat", testStoreDeletePruneStat},
	{"ScanAndDeleteMatching", testStoreScan},
	{"ScanPages", testStoreScanPages},
}

// sEnv is a Store initialized by the test itself.
type sEnv struct {
	t   *testing.T
	st  switchboard.Store
	cfg switchboard.StoreConfig
	ctx context.Context
}

func newStoreEnv(t *testing.T, newStore Factory, partitions, capacity int) *sEnv {
	t.Helper()
	st := newStore(t)
	cfg := switchboard.StoreConfig{PartitionCount: partitions, MaxEntriesPerPartition: capacity, HashSeed: maphash.MakeSeed()}
	if err := st.Init(cfg); err != nil {
		t.Fatalf("Init(%+v): %v", cfg, err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return &sEnv{t: t, st: st, cfg: cfg, ctx: context.Background()}
}

func (s *sEnv) key(room, thread string) switchboard.StoreKey { return s.cfg.Key(key(room, thread)) }

// record is a Set's record: route id written at, fresh for ttl.
func record(id string, at time.Time, ttl time.Duration) switchboard.Record {
	return switchboard.Record{Route: route(id), UpdatedAt: at, ExpiresAt: at.Add(ttl), Origin: switchboard.OriginSet}
}

func (s *sEnv) set(k switchboard.StoreKey, rec switchboard.Record) switchboard.SetResult {
	s.t.Helper()
	res, err := s.st.Set(s.ctx, switchboard.SetRequest{Key: k, Record: rec})
	if err != nil || res.Outcome != switchboard.SetStored {
		s.t.Fatalf("Set(%v) = %+v, %v; want stored", k.Key, res, err)
	}
	return res
}

func (s *sEnv) get(k switchboard.StoreKey, now time.Time) (switchboard.Record, error) {
	return s.st.Get(s.ctx, k, now)
}

func (s *sEnv) entries(p int) int {
	s.t.Helper()
	st, err := s.st.Stat(s.ctx, p)
	if err != nil || !st.Available {
		s.t.Fatalf("Stat(%d) = %+v, %v", p, st, err)
	}
	return st.Entries
}

func testStoreInitTwice(t *testing.T, newStore Factory) {
	if err := newStore(t).Init(switchboard.StoreConfig{PartitionCount: 0, MaxEntriesPerPartition: 10}); !errors.Is(err, switchboard.ErrInvalidConfig) {
		t.Errorf("Init with 0 partitions: err = %v, want ErrInvalidConfig", err)
	}
	s := newStoreEnv(t, newStore, 2, 10)
	if err := s.st.Init(s.cfg); !errors.Is(err, switchboard.ErrInvalidConfig) {
		t.Fatalf("second Init: err = %v, want an error wrapping ErrInvalidConfig", err)
	}
	// The store keeps serving the first configuration.
	k := s.key("chat_1", "")
	s.set(k, record("r", start, time.Hour))
	if rec, err := s.get(k, start); err != nil || rec.Route.ExternalRoomID != "r" {
		t.Fatalf("Get after a refused second Init = %+v, %v", rec, err)
	}
}

// storeCalls calls every Store method but Init and Close once with ctx, on
// keys of s, and returns each call's error by name.
func storeCalls(ctx context.Context, s *sEnv, now time.Time) map[string]error {
	k, other := s.key("chat_1", ""), s.key("chat_9", "t")
	errs := map[string]error{}
	_, errs["Get"] = s.st.Get(ctx, k, now)
	_, errs["Set"] = s.st.Set(ctx, switchboard.SetRequest{Key: k, Record: record("changed", now, time.Hour)})
	_, errs["Resolve"] = s.st.Resolve(ctx, switchboard.ResolveRequest{Key: other, Room: s.cfg.Key(other.Key.RoomScope()),
		Fallbacks: []switchboard.Route{route("fb")}, Now: now, ExpiresAt: now.Add(time.Hour)})
	_, errs["Look"] = s.st.Look(ctx, switchboard.ResolveRequest{Key: k, Now: now})
	_, errs["Confirm"] = s.st.Confirm(ctx, switchboard.FeedbackRequest{Key: k, Target: route("r").Target(), Now: now, TTL: time.Hour})
	_, errs["Invalidate"] = s.st.Invalidate(ctx, switchboard.FeedbackRequest{Key: k, Target: route("r").Target(), Now: now, Reason: "gone"})
	_, errs["Delete"] = s.st.Delete(ctx, k)
	_, errs["Prune"] = s.st.Prune(ctx, k.Partition, now.Add(48*time.Hour))
	_, errs["Scan"] = s.st.Scan(ctx, switchboard.ScanRequest{Partition: k.Partition, Limit: 10, Now: now})
	_, errs["DeleteMatching"] = s.st.DeleteMatching(ctx, switchboard.DeleteRequest{Partition: k.Partition, Filter: switchboard.Filter{RoomID: "chat_1"}, Now: now})
	_, errs["Stat"] = s.st.Stat(ctx, k.Partition)
	return errs
}

func testStoreAfterClose(t *testing.T, newStore Factory) {
	s := newStoreEnv(t, newStore, 2, 10)
	s.set(s.key("chat_1", ""), record("r", start, time.Hour))
	if err := s.st.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.st.Close(); !errors.Is(err, switchboard.ErrClosed) {
		t.Errorf("second Close: err = %v, want ErrClosed", err)
	}
	for op, err := range storeCalls(s.ctx, s, start) {
		if !errors.Is(err, switchboard.ErrClosed) {
			t.Errorf("%s after Close: err = %v, want ErrClosed", op, err)
		}
	}
}

func testStoreDoneContext(t *testing.T, newStore Factory) {
	s := newStoreEnv(t, newStore, 2, 10)
	k := s.key("chat_1", "")
	s.set(k, record("r", start, time.Hour))
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for op, err := range storeCalls(cancelled, s, start.Add(time.Minute)) {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: err = %v, want one wrapping context.Canceled", op, err)
		}
	}
	// Nothing changed: the record is there as written, unconfirmed and
	// valid, and nothing else was stored.
	rec, err := s.get(k, start.Add(time.Minute))
	if err != nil || rec.Route.ExternalRoomID != "r" || rec.Confirmed || rec.Invalidated != "" || !rec.UpdatedAt.Equal(start) {
		t.Fatalf("record after calls with a cancelled context = %+v, %v; want it unchanged", rec, err)
	}
	other := s.key("chat_9", "t")
	if _, err := s.get(other, start); !errors.Is(err, switchboard.ErrNotFound) {
		t.Fatalf("Get of the key Resolve was given: err = %v, want ErrNotFound", err)
	}
	total := 0
	for p := range s.cfg.PartitionCount {
		total += s.entries(p)
	}
	if total != 1 {
		t.Fatalf("entries after calls with a cancelled context = %d, want 1", total)
	}
}

func testStoreSetResults(t *testing.T, newStore Factory) {
	s := newStoreEnv(t, newStore, 1, 2)
	a, b, c := s.key("a", ""), s.key("b", ""), s.key("c", "")
	ra := s.set(a, record("a", start, time.Hour))
	if ra.Revision == 0 || ra.Size != 1 || ra.Evicted != 0 {
		t.Fatalf("first Set = %+v, want a positive revision, size 1, nothing evicted", ra)
	}
	rb := s.set(b, record("b", start, time.Hour))
	if rb.Revision <= ra.Revision || rb.Size != 2 || rb.Evicted != 0 {
		t.Fatalf("second Set = %+v, want revision > %d, size 2", rb, ra.Revision)
	}
	rc := s.set(c, record("c", start, time.Hour))
	if rc.Revision <= rb.Revision || rc.Size != 2 || rc.Evicted != 1 {
		t.Fatalf("third Set over capacity 2 = %+v, want size 2 and 1 evicted", rc)
	}
	if _, err := s.get(a, start); !errors.Is(err, switchboard.ErrNotFound) {
		t.Fatalf("Get of the evicted record: %v, want ErrNotFound", err)
	}
	// Refusals report the record that refused and change nothing.
	hi := record("b-high", start, time.Hour)
	hi.Priority = 10
	rh := s.set(b, hi)
	refusals := []struct {
		name string
		req  switchboard.SetRequest
		want switchboard.SetResult
	}{
		{"IfRevision mismatch", switchboard.SetRequest{Key: b, Record: record("x", start, time.Hour), IfRevision: rh.Revision + 100},
			switchboard.SetResult{Outcome: switchboard.SetConflict, CurrentRevision: rh.Revision, CurrentPriority: 10, Size: 2}},
		{"IfRevision of an absent key", switchboard.SetRequest{Key: a, Record: record("x", start, time.Hour), IfRevision: 1},
			switchboard.SetResult{Outcome: switchboard.SetConflict, Size: 2}},
		{"IfAbsent", switchboard.SetRequest{Key: b, Record: record("x", start, time.Hour), IfAbsent: true},
			switchboard.SetResult{Outcome: switchboard.SetConflict, CurrentRevision: rh.Revision, CurrentPriority: 10, Size: 2}},
		{"lower priority", switchboard.SetRequest{Key: b, Record: record("x", start, time.Hour)},
			switchboard.SetResult{Outcome: switchboard.SetSuperseded, CurrentRevision: rh.Revision, CurrentPriority: 10, Size: 2}},
	}
	for _, r := range refusals {
		got, err := s.st.Set(s.ctx, r.req)
		if err != nil || got != r.want {
			t.Errorf("%s: Set = %+v, %v; want %+v", r.name, got, err, r.want)
		}
	}
	rec, err := s.get(b, start)
	if err != nil || rec.Route.ExternalRoomID != "b-high" || rec.Revision != rh.Revision || rec.Priority != 10 {
		t.Fatalf("record after refused writes = %+v, %v; want b-high at revision %d", rec, err, rh.Revision)
	}
	// An expired record neither blocks nor satisfies a condition.
	later := start.Add(2 * time.Hour)
	if got, _ := s.st.Set(s.ctx, switchboard.SetRequest{Key: b, Record: record("x", later, time.Hour), IfRevision: rh.Revision}); got.Outcome != switchboard.SetConflict || got.CurrentRevision != 0 {
		t.Errorf("IfRevision on an expired record = %+v, want a conflict with no current record", got)
	}
	if got := s.set(b, record("low", later, time.Hour)); got.Revision <= rh.Revision {
		t.Errorf("Set over an expired higher-priority record = %+v, want a new revision", got)
	}
}

func testStoreResolveResults(t *testing.T, newStore Factory) {
	s := newStoreEnv(t, newStore, 1, 3)
	room, thread := s.key("chat_1", ""), s.key("chat_1", "t")
	req := func(k switchboard.StoreKey, now time.Time, fbs ...switchboard.Route) switchboard.ResolveRequest {
		return switchboard.ResolveRequest{Key: k, Room: s.cfg.Key(k.Key.RoomScope()), Fallbacks: fbs, Now: now, ExpiresAt: now.Add(time.Minute)}
	}
	resolve := func(r switchboard.ResolveRequest) switchboard.ResolveResult {
		t.Helper()
		res, err := s.st.Resolve(s.ctx, r)
		if err != nil {
			t.Fatalf("Resolve(%v): %v", r.Key.Key, err)
		}
		return res
	}
	if res := resolve(req(thread, start)); res.Source != "" || res.Size != 0 || res.ExactExpired || res.RoomExpired || res.Invalidated {
		t.Fatalf("Resolve with nothing stored = %+v", res)
	}
	set := s.set(room, record("r", start, 10*time.Minute))
	res := resolve(req(room, start))
	if res.Source != switchboard.SourceStateHit || res.Record.Revision != set.Revision || res.Record.Origin != switchboard.OriginSet ||
		(res.Size != 1 && res.Size != -1) { // -1: a store may leave a hit's size unknown
		t.Fatalf("state hit = %+v", res)
	}
	res = resolve(req(thread, start))
	if res.Source != switchboard.SourcePartitionFallback || res.Record.Origin != switchboard.OriginRoomFallback ||
		res.Record.Revision <= set.Revision || !res.Record.ExpiresAt.Equal(start.Add(time.Minute)) || res.Size != 2 {
		t.Fatalf("room fallback = %+v", res)
	}
	// The thread's copy expired (1m), the room not (10m).
	at := start.Add(2 * time.Minute)
	res = resolve(req(thread, at))
	if res.Source != switchboard.SourcePartitionFallback || !res.ExactExpired || res.RoomExpired || res.Size != 2 {
		t.Fatalf("room fallback after the thread's copy expired = %+v", res)
	}
	// Both expired.
	at = start.Add(20 * time.Minute)
	res = resolve(req(thread, at, route("fb")))
	if res.Source != switchboard.SourceProvidedFallback || res.Record.Origin != switchboard.OriginProvidedFallback ||
		!res.ExactExpired || !res.RoomExpired || res.Size != 1 || res.Record.Route.ExternalRoomID != "fb" {
		t.Fatalf("provided fallback after both expired = %+v", res)
	}
	if _, err := s.get(room, at); !errors.Is(err, switchboard.ErrNotFound) {
		t.Fatalf("the expired room record: %v, want deleted (ErrNotFound)", err)
	}
	// A tombstone is looked at, not answered; a fallback with its target is
	// skipped.
	if fr, err := s.st.Invalidate(s.ctx, switchboard.FeedbackRequest{Key: thread, Target: route("fb").Target(), Now: at, Reason: "gone"}); err != nil || fr.Outcome != switchboard.FeedbackApplied {
		t.Fatalf("Invalidate = %+v, %v", fr, err)
	}
	res = resolve(req(thread, at, route("fb"), route("fb2")))
	if res.Source != switchboard.SourceProvidedFallback || !res.Invalidated || res.Record.Route.ExternalRoomID != "fb2" || res.ExactExpired {
		t.Fatalf("Resolve past a tombstone = %+v, want fb2 and Invalidated", res)
	}
	// Evictions are counted: capacity 3.
	s.set(s.key("x", ""), record("x", at, time.Hour))
	s.set(s.key("y", ""), record("y", at, time.Hour))
	res = resolve(req(s.key("z", ""), at, route("z")))
	if res.Evicted != 1 || res.Size != 3 {
		t.Fatalf("Resolve over capacity = %+v, want 1 evicted, size 3", res)
	}
}

func testStoreLook(t *testing.T, newStore Factory) {
	s := newStoreEnv(t, newStore, 1, 10)
	room, thread := s.key("chat_1", ""), s.key("chat_1", "t")
	look := func(k switchboard.StoreKey, now time.Time) switchboard.LookResult {
		t.Helper()
		res, err := s.st.Look(s.ctx, switchboard.ResolveRequest{Key: k, Room: s.cfg.Key(k.Key.RoomScope()), Now: now})
		if err != nil {
			t.Fatalf("Look(%v): %v", k.Key, err)
		}
		return res
	}
	if res := look(thread, start); res.Exact.State != switchboard.LookAbsent || res.Room.State != switchboard.LookAbsent || res.Size != 0 {
		t.Fatalf("Look with nothing stored = %+v", res)
	}
	s.set(room, record("r", start, time.Minute))
	s.set(thread, record("t", start, time.Hour))
	res := look(thread, start.Add(time.Minute))
	if res.Exact.State != switchboard.LookFresh || res.Exact.Record.Route.ExternalRoomID != "t" ||
		res.Room.State != switchboard.LookExpired || res.Room.Record.Route.ExternalRoomID != "r" || res.Size != 2 {
		t.Fatalf("Look = %+v, want a fresh thread record and an expired room record", res)
	}
	if res := look(room, start.Add(time.Minute)); res.Exact.State != switchboard.LookExpired || res.Room.State != switchboard.LookAbsent {
		t.Fatalf("Look of the room key = %+v, want expired and no room look", res)
	}
	// Look deleted nothing: the expired record is still there to be read
	// as expired.
	if n := s.entries(room.Partition); n != 2 {
		t.Fatalf("entries after Look = %d, want 2", n)
	}
	if _, err := s.get(room, start.Add(time.Minute)); !errors.Is(err, switchboard.ErrExpired) {
		t.Fatalf("Get of the looked-at expired record: %v, want ErrExpired", err)
	}
	if _, err := s.st.Invalidate(s.ctx, switchboard.FeedbackRequest{Key: thread, Target: route("t").Target(), Now: start, Reason: "gone"}); err != nil {
		t.Fatal(err)
	}
	if res := look(thread, start); res.Exact.State != switchboard.LookFresh || res.Exact.Record.Invalidated != "gone" {
		t.Fatalf("Look of a tombstone = %+v", res)
	}
}

func testStoreFeedbackResults(t *testing.T, newStore Factory) {
	s := newStoreEnv(t, newStore, 1, 10)
	k := s.key("chat_1", "")
	fb := func(target string, now time.Time, reason string) switchboard.FeedbackRequest {
		return switchboard.FeedbackRequest{Key: k, Target: route(target).Target(), Now: now, TTL: time.Hour, Reason: reason}
	}
	type call struct {
		name    string
		confirm bool
		req     switchboard.FeedbackRequest
		want    switchboard.FeedbackOutcome
	}
	check := func(c call) switchboard.FeedbackResult {
		t.Helper()
		var res switchboard.FeedbackResult
		var err error
		if c.confirm {
			res, err = s.st.Confirm(s.ctx, c.req)
		} else {
			res, err = s.st.Invalidate(s.ctx, c.req)
		}
		if err != nil || res.Outcome != c.want || res.Size != s.entries(0) {
			t.Fatalf("%s = %+v, %v; want outcome %d and the partition's size", c.name, res, err, c.want)
		}
		return res
	}
	check(call{"Confirm of nothing", true, fb("r", start, ""), switchboard.FeedbackNotFound})
	check(call{"Invalidate of nothing", false, fb("r", start, "x"), switchboard.FeedbackNotFound})
	written := record("r", start, 10*time.Minute)
	written.Writer, written.Priority = "inbound", 7
	set := s.set(k, written)
	at := start.Add(5 * time.Minute)
	conflict := check(call{"Confirm of another target", true, fb("other", at, ""), switchboard.FeedbackConflict})
	if conflict.Record.Revision != set.Revision {
		t.Fatalf("Confirm conflict reports %+v, want the record as found", conflict.Record)
	}
	res := check(call{"Confirm", true, fb("r", at, ""), switchboard.FeedbackApplied})
	want := switchboard.Record{Route: route("r"), UpdatedAt: at, ExpiresAt: at.Add(10 * time.Minute), Origin: switchboard.OriginSet,
		Writer: "inbound", Priority: 7, Confirmed: true}
	if r := res.Record; !sameRoute(r.Route, want.Route) || !r.UpdatedAt.Equal(want.UpdatedAt) || !r.ExpiresAt.Equal(want.ExpiresAt) ||
		r.Origin != want.Origin || r.Writer != want.Writer || r.Priority != want.Priority || !r.Confirmed || r.Revision <= set.Revision {
		t.Fatalf("confirmed record = %+v, want %+v with a new revision", r, want)
	}
	check(call{"Invalidate of another target", false, fb("other", at, "x"), switchboard.FeedbackConflict})
	inv := check(call{"Invalidate", false, fb("r", at, "403 bot removed"), switchboard.FeedbackApplied})
	if r := inv.Record; r.Invalidated != "403 bot removed" || r.Confirmed || !r.ExpiresAt.Equal(res.Record.ExpiresAt) ||
		r.Revision <= res.Record.Revision || r.Writer != "inbound" || r.Priority != 7 {
		t.Fatalf("invalidated record = %+v", r)
	}
	again := check(call{"Invalidate again", false, fb("r", at, "again"), switchboard.FeedbackUnchanged})
	if again.Record.Revision != inv.Record.Revision || again.Record.Invalidated != "403 bot removed" {
		t.Fatalf("second Invalidate changed the tombstone: %+v", again.Record)
	}
	check(call{"Confirm of a tombstone", true, fb("r", at, ""), switchboard.FeedbackNotFound})
	check(call{"Invalidate after expiry", false, fb("r", at.Add(time.Hour), "x"), switchboard.FeedbackNotFound})
}

func testStoreDeletePruneStat(t *testing.T, newStore Factory) {
	s := newStoreEnv(t, newStore, 1, 10)
	for i, id := range []string{"a", "b", "c"} {
		s.set(s.key(id, ""), record(id, start, time.Duration(i+1)*time.Minute))
	}
	if n := s.entries(0); n != 3 {
		t.Fatalf("Stat entries = %d, want 3", n)
	}
	size, err := s.st.Delete(s.ctx, s.key("c", ""))
	if err != nil || size != 2 {
		t.Fatalf("Delete = %d, %v; want size 2", size, err)
	}
	if size, err := s.st.Delete(s.ctx, s.key("c", "")); !errors.Is(err, switchboard.ErrNotFound) || size != 2 {
		t.Fatalf("Delete of nothing = %d, %v; want size 2 and ErrNotFound", size, err)
	}
	st, err := s.st.Prune(s.ctx, 0, start.Add(time.Minute))
	if err != nil || st.Pruned != 1 || st.Size != 1 {
		t.Fatalf("Prune = %+v, %v; want 1 pruned, size 1", st, err)
	}
	// Delete removes an expired record too.
	if size, err := s.st.Delete(s.ctx, s.key("b", "")); err != nil || size != 0 {
		t.Fatalf("Delete of an expired record = %d, %v; want size 0", size, err)
	}
}

func testStoreScan(t *testing.T, newStore Factory) {
	s := newStoreEnv(t, newStore, 1, 100)
	want := map[switchboard.SessionKey]bool{}
	for i := range 25 {
		k := s.key(string(rune('a'+i)), "")
		ttl := time.Hour
		if i%5 == 0 {
			ttl = time.Minute // expired at the scan
		} else {
			want[k.Key] = true
		}
		s.set(k, record("r", start, ttl))
	}
	now := start.Add(time.Minute)
	seen := map[switchboard.SessionKey]int{}
	var after uint64
	for pages := 0; ; pages++ {
		if pages > 30 {
			t.Fatal("Scan never reports Done")
		}
		res, err := s.st.Scan(s.ctx, switchboard.ScanRequest{Partition: 0, After: after, Limit: 3, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Entries) > 3 {
			t.Fatalf("Scan returned %d entries, limit 3", len(res.Entries))
		}
		for _, e := range res.Entries {
			seen[e.Key]++
			if e.Partition != 0 || e.Record.Route.ExternalRoomID != "r" || e.Record.Revision == 0 {
				t.Fatalf("Scan entry %+v", e)
			}
		}
		if !res.Done && len(res.Entries) == 0 && res.Next == after {
			t.Fatal("Scan made no progress")
		}
		after = res.Next
		if res.Done {
			break
		}
	}
	for k := range want {
		if seen[k] != 1 {
			t.Errorf("Scan returned %v %d times, want once", k, seen[k])
		}
	}
	if len(seen) != len(want) {
		t.Errorf("Scan returned %d keys, want the %d fresh ones", len(seen), len(want))
	}
	f := switchboard.Filter{RoomID: "b"}
	dry, err := s.st.DeleteMatching(s.ctx, switchboard.DeleteRequest{Partition: 0, Filter: f, Now: now, DryRun: true})
	if err != nil || dry.Matched != 1 || dry.Deleted != 0 || len(dry.Keys) != 1 || dry.Keys[0] != key("b", "") || dry.Size != 25 {
		t.Fatalf("dry DeleteMatching = %+v, %v", dry, err)
	}
	real, err := s.st.DeleteMatching(s.ctx, switchboard.DeleteRequest{Partition: 0, Filter: f, Now: now})
	if err != nil || real.Matched != 1 || real.Deleted != 1 || real.Size != 24 {
		t.Fatalf("DeleteMatching = %+v, %v", real, err)
	}
	if _, err := s.get(s.key("b", ""), now); !errors.Is(err, switchboard.ErrNotFound) {
		t.Fatalf("Get of the deleted record: %v", err)
	}
}

// testStoreScanPages scans 600 records — more than a memory chunk or a
// Redis script's page of 256 — some expired, some with keys too long for
// a memory slot's inline bytes, with limits that end pages inside a chunk
// and a filter, and checks that every fresh match comes back once, whole.
func testStoreScanPages(t *testing.T, newStore Factory) {
	s := newStoreEnv(t, newStore, 1, 1000)
	type want struct {
		room   string
		thread string
	}
	all := map[switchboard.SessionKey]want{}
	for i := range 600 {
		room := fmt.Sprintf("room_%03d", i)
		if i%7 == 0 {
			room += "_" + strings.Repeat("long", 15) // 60 more bytes
		}
		thread := ""
		if i%3 == 0 {
			thread = fmt.Sprint("th_", i)
		}
		k := s.key(room, thread)
		ttl := time.Hour
		if i%5 == 0 {
			ttl = time.Minute // expired at the scan
		} else {
			all[k.Key] = want{room, thread}
		}
		s.set(k, record(room, start, ttl))
	}
	now := start.Add(time.Minute)
	for _, tc := range []struct {
		name   string
		limit  int
		filter switchboard.Filter
	}{
		{"limit 7", 7, switchboard.Filter{}},
		{"limit 1000", 1000, switchboard.Filter{}},
		{"limit 5, threads only", 5, switchboard.Filter{Scope: switchboard.ScopeThread}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seen := map[switchboard.SessionKey]int{}
			var after uint64
			for pages := 0; ; pages++ {
				if pages > 700 {
					t.Fatal("Scan never reports Done")
				}
				res, err := s.st.Scan(s.ctx, switchboard.ScanRequest{Partition: 0, After: after, Limit: tc.limit, Filter: tc.filter, Now: now})
				if err != nil {
					t.Fatal(err)
				}
				if len(res.Entries) > tc.limit {
					t.Fatalf("Scan returned %d entries, limit %d", len(res.Entries), tc.limit)
				}
				for _, e := range res.Entries {
					w, ok := all[e.Key]
					if !ok || e.Key.RoomID != w.room || e.Key.ThreadID != w.thread || e.Record.Route.ExternalRoomID != w.room {
						t.Fatalf("Scan entry %+v: not a fresh record as stored", e)
					}
					seen[e.Key]++
				}
				if !res.Done && len(res.Entries) == 0 && res.Next == after {
					t.Fatal("Scan made no progress")
				}
				after = res.Next
				if res.Done {
					break
				}
			}
			n := 0
			for k := range all {
				if !tc.filter.Match(k, &switchboard.Record{}) {
					continue
				}
				n++
				if seen[k] != 1 {
					t.Errorf("Scan returned %v %d times, want once", k, seen[k])
				}
			}
			if len(seen) != n {
				t.Errorf("Scan returned %d keys, want the %d fresh matching ones", len(seen), n)
			}
		})
	}
	threads := switchboard.Filter{Scope: switchboard.ScopeThread}
	for _, dry := range []bool{true, false} {
		st, err := s.st.DeleteMatching(s.ctx, switchboard.DeleteRequest{Partition: 0, Filter: threads, Now: now, DryRun: dry})
		if err != nil {
			t.Fatal(err)
		}
		got := map[switchboard.SessionKey]int{}
		for _, k := range st.Keys {
			got[k]++
		}
		for k := range all {
			want := 0
			if k.ThreadID != "" {
				want = 1
			}
			if got[k] != want {
				t.Errorf("DeleteMatching (dry run %v) returned %v %d times, want %d", dry, k, got[k], want)
			}
		}
		if st.Matched != len(st.Keys) || len(got) != len(st.Keys) {
			t.Errorf("DeleteMatching (dry run %v): %d matched, %d keys, %d distinct", dry, st.Matched, len(st.Keys), len(got))
		}
	}
	res, err := s.st.Scan(s.ctx, switchboard.ScanRequest{Partition: 0, Limit: 1000, Filter: threads, Now: now})
	if err != nil || len(res.Entries) != 0 {
		t.Errorf("Scan of threads after DeleteMatching: %d entries, %v", len(res.Entries), err)
	}
}
