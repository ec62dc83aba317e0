package storetest

import (
	"errors"
	"fmt"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard-go/switchboard"
)

// faultRules need a store that can break a partition (PartitionBreaker).
var faultRules = []rule{
	{"UnavailablePartition", testUnavailablePartition},
	{"PartialPrune", testPartialPrune},
	{"PartialDeleteMatching", testPartialDeleteMatching},
}

func breakerEnv(t *testing.T, newStore Factory, cfg switchboard.Config) *env {
	t.Helper()
	e := newEnv(t, newStore, cfg)
	if e.breaker == nil {
		t.Skip("the store does not implement storetest.PartitionBreaker: it has no unavailable partitions to prove")
	}
	return e
}

// failedPartitions returns the partitions of the *OpErrors err joins.
func failedPartitions(err error) []int {
	var out []int
	var walk func(error)
	walk = func(err error) {
		var op *switchboard.OpError
		if errors.As(err, &op) && errors.Is(op, switchboard.ErrPartitionUnavailable) {
			if _, joined := err.(interface{ Unwrap() []error }); !joined {
				out = append(out, op.Partition)
				return
			}
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
		}
	}
	walk(err)
	slices.Sort(out)
	return out
}

func testUnavailablePartition(t *testing.T, newStore Factory) {
	e := breakerEnv(t, newStore, switchboard.Config{PartitionCount: 4})
	const p = 1
	k := e.keyIn(p, "down", "th")
	room := k.RoomScope()
	e.set(room, route("room"))
	e.breaker.BreakPartition(p)
	e.obs.take()

	fb := switchboard.Route{ExternalRoomID: "fb", Meta: map[string]string{"a": "1"}}
	res, err := e.m.Resolve(e.ctx, k, switchboard.Route{}, fb)
	if err != nil {
		t.Fatalf("Resolve with a fallback on a down partition: %v", err)
	}
	want := switchboard.Resolution{ExternalRoomID: "fb", Route: fb, Partition: p, SessionKey: k,
		Source: switchboard.SourceProvidedFallback, Fallback: true, FallbackReason: switchboard.ReasonSessionUnavailable}
	if fmt.Sprint(res) != fmt.Sprint(want) {
		t.Fatalf("Resolve = %+v, want %+v (no provenance: nothing is stored)", res, want)
	}
	res.Route.Meta["a"] = "changed"
	if fb.Meta["a"] != "1" {
		t.Fatal("the returned route shares Meta with the caller's fallback")
	}
	var kinds []string
	for _, ev := range e.obs.take() {
		kinds = append(kinds, string(ev.Kind)+"/"+string(ev.FallbackReason))
		if ev.Partition != p || ev.Size != -1 {
			t.Errorf("event %+v: want partition %d, size -1", ev, p)
		}
	}
	if fmt.Sprint(kinds) != "[fallback/session_unavailable resolved/session_unavailable]" {
		t.Fatalf("events = %v", kinds)
	}
	ex, err := e.m.Explain(e.ctx, k, fb)
	if err != nil || ex.Resolution.FallbackReason != switchboard.ReasonSessionUnavailable || ex.Err != nil {
		t.Fatalf("Explain on a down partition = %+v, %v; want the session_unavailable answer", ex, err)
	}
	checks := map[string]error{}
	_, checks["Resolve without fallback"] = e.m.Resolve(e.ctx, k)
	_, checks["Get"] = e.m.Get(e.ctx, k)
	checks["Set"] = e.m.Set(e.ctx, k, fb)
	checks["Delete"] = e.m.Delete(e.ctx, k)
	_, checks["Confirm"] = e.m.Confirm(e.ctx, room, route("room"))
	checks["Invalidate"] = e.m.Invalidate(e.ctx, room, route("room"), "gone")
	_, _, checks["List"] = e.m.List(e.ctx, switchboard.Filter{}, 10, "")
	ex, _ = e.m.Explain(e.ctx, k)
	checks["Explain without fallback"] = ex.Err
	for op, err := range checks {
		var oe *switchboard.OpError
		if !errors.Is(err, switchboard.ErrPartitionUnavailable) || !errors.As(err, &oe) || oe.Partition != p {
			t.Errorf("%s on a down partition: err = %v, want an *OpError for partition %d wrapping ErrPartitionUnavailable", op, err, p)
		}
		if e.breaker != nil {
			if _, ok := e.breaker.(*FaultStore); ok && !errors.Is(err, syscall.ECONNREFUSED) {
				t.Errorf("%s on a down partition: err = %v, want the cause wrapped", op, err)
			}
		}
	}
	st, err := e.m.PartitionStatus(e.ctx, p)
	if err != nil || st.Available {
		t.Fatalf("PartitionStatus of a down partition = %+v, %v", st, err)
	}

	// Other partitions keep working.
	other := e.keyIn(2, "up", "")
	e.set(other, fb)
	if res := e.resolve(other); res.Source != switchboard.SourceStateHit {
		t.Fatalf("Resolve on a healthy partition = %+v", res)
	}

	// Nothing was stored by the session_unavailable answer; the partition
	// works again once it is back.
	e.breaker.HealPartition(p)
	e.wantGetErr(k, switchboard.ErrNotFound)
	if res := e.resolve(k); res.Source != switchboard.SourcePartitionFallback || res.ExternalRoomID != "room" {
		t.Fatalf("Resolve after recovery = %+v", res)
	}
	if st, err := e.m.PartitionStatus(e.ctx, p); err != nil || !st.Available {
		t.Fatalf("PartitionStatus after recovery = %+v, %v", st, err)
	}
}

func testPartialPrune(t *testing.T, newStore Factory) {
	e := breakerEnv(t, newStore, switchboard.Config{PartitionCount: 4, TTL: time.Minute})
	perPartition := map[int]int{}
	for i := range 40 {
		k := key(fmt.Sprintf("C%d", i), "")
		perPartition[e.m.RoutePartition(k)]++
		e.set(k, route("r"))
	}
	e.clock.Advance(time.Minute)
	e.breaker.BreakPartition(1)
	e.breaker.BreakPartition(3)
	res, err := e.m.Prune(e.ctx)
	if want := perPartition[0] + perPartition[2]; res.Pruned != want || res.Partitions != 2 {
		t.Fatalf("Prune = %+v, want %d pruned over 2 partitions", res, want)
	}
	if got := failedPartitions(err); fmt.Sprint(got) != "[1 3]" {
		t.Fatalf("Prune error %v names partitions %v, want [1 3]", err, got)
	}
	e.breaker.HealPartition(1)
	e.breaker.HealPartition(3)
	if res, err := e.m.Prune(e.ctx); err != nil || res.Pruned != perPartition[1]+perPartition[3] || res.Partitions != 4 {
		t.Fatalf("Prune after recovery = %+v, %v", res, err)
	}
}

func testPartialDeleteMatching(t *testing.T, newStore Factory) {
	e := breakerEnv(t, newStore, switchboard.Config{PartitionCount: 4})
	perPartition := map[int]int{}
	for i := range 40 {
		k := key(fmt.Sprintf("C%d", i), "")
		perPartition[e.m.RoutePartition(k)]++
		e.set(k, route("r"))
	}
	e.breaker.BreakPartition(2)
	res, err := e.m.DeleteMatching(e.ctx, switchboard.Filter{BridgeID: "bot_1"}, false)
	if want := 40 - perPartition[2]; res.Deleted != want {
		t.Fatalf("DeleteMatching with partition 2 down = %+v, want %d deleted", res, want)
	}
	if got := failedPartitions(err); fmt.Sprint(got) != "[2]" {
		t.Fatalf("DeleteMatching error %v names partitions %v, want [2]", err, got)
	}
	e.breaker.HealPartition(2)
	if n := e.entries(); n != perPartition[2] {
		t.Fatalf("entries = %d, want the %d of the down partition", n, perPartition[2])
	}
}
