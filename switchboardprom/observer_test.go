package switchboardprom_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/switchboard-go/switchboard"
	"github.com/switchboard-go/switchboard/storetest"
	"github.com/switchboard-go/switchboard/switchboardprom"
)

func TestObserverScrape(t *testing.T) {
	ctx := context.Background()
	obs := switchboardprom.New(switchboardprom.Options{ConstLabels: prometheus.Labels{"instance": "support_bot"}})
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(obs)
	clock := storetest.NewClock(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	m, err := switchboard.New(switchboard.Config{PartitionCount: 1, MaxEntriesPerPartition: 2, TTL: time.Minute},
		switchboard.WithObserver(obs), switchboard.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	key := func(room, thread string) switchboard.SessionKey {
		return switchboard.SessionKey{ChannelType: "slack", BridgeID: "T1", RoomID: room, ThreadID: thread}
	}
	fb := switchboard.Route{ExternalRoomID: "fb"}
	mustNil := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	mustNil(m.Set(ctx, key("C1", ""), switchboard.Route{ExternalRoomID: "c1"})) // set, 1 entry
	_, err = m.Resolve(ctx, key("C1", ""))                                      // hit
	mustNil(err)
	_, err = m.Resolve(ctx, key("C1", "t")) // partition fallback, 2 entries
	mustNil(err)
	_, err = m.Resolve(ctx, key("C2", ""), fb) // provided fallback, evicts C1
	mustNil(err)
	_, err = m.Resolve(ctx, key("C3", "")) // miss
	if err == nil {
		t.Fatal("want ErrNoRoute")
	}
	clock.Advance(time.Minute)
	_, err = m.Get(ctx, key("C2", "")) // stale
	if err == nil {
		t.Fatal("want ErrExpired")
	}
	_, err = m.Prune(ctx) // prunes C1/t
	mustNil(err)
	mustNil(m.Set(ctx, key("C4", ""), fb))
	mustNil(m.Delete(ctx, key("C4", "")))

	// Without the trust options, their counters stay at zero.
	const want = `
# HELP switchboard_confirmed_total Records confirmed by delivery feedback (Confirm).
# TYPE switchboard_confirmed_total counter
switchboard_confirmed_total{instance="support_bot"} 0
# HELP switchboard_invalidated_total Records invalidated by delivery feedback (Invalidate): tombstones made.
# TYPE switchboard_invalidated_total counter
switchboard_invalidated_total{instance="support_bot"} 0
# HELP switchboard_superseded_total Sets refused because a fresh record of higher priority stands.
# TYPE switchboard_superseded_total counter
switchboard_superseded_total{instance="support_bot"} 0
# HELP switchboard_deletes_total Records removed by Delete.
# TYPE switchboard_deletes_total counter
switchboard_deletes_total{instance="support_bot"} 1
# HELP switchboard_evictions_total Records evicted, by reason.
# TYPE switchboard_evictions_total counter
switchboard_evictions_total{instance="support_bot",reason="capacity"} 1
# HELP switchboard_fallbacks_total Resolve answers taken from a fallback, by source and reason.
# TYPE switchboard_fallbacks_total counter
switchboard_fallbacks_total{instance="support_bot",reason="miss",source="provided_fallback"} 1
switchboard_fallbacks_total{instance="support_bot",reason="thread_scope_miss",source="partition_fallback"} 1
# HELP switchboard_partition_entries Records held per partition.
# TYPE switchboard_partition_entries gauge
switchboard_partition_entries{instance="support_bot",partition="0"} 0
# HELP switchboard_pruned_total Expired records deleted by pruning.
# TYPE switchboard_pruned_total counter
switchboard_pruned_total{instance="support_bot"} 1
# HELP switchboard_resolutions_total Resolve answers by outcome (hit, fallback, miss), source, fallback reason and staleness.
# TYPE switchboard_resolutions_total counter
switchboard_resolutions_total{instance="support_bot",outcome="fallback",reason="miss",source="provided_fallback",stale="false"} 1
switchboard_resolutions_total{instance="support_bot",outcome="fallback",reason="thread_scope_miss",source="partition_fallback",stale="false"} 1
switchboard_resolutions_total{instance="support_bot",outcome="hit",reason="",source="state_hit",stale="false"} 1
switchboard_resolutions_total{instance="support_bot",outcome="miss",reason="",source="",stale="false"} 1
# HELP switchboard_sets_total Routes stored by Set.
# TYPE switchboard_sets_total counter
switchboard_sets_total{instance="support_bot"} 2
# HELP switchboard_stale_total Expired records read (and deleted).
# TYPE switchboard_stale_total counter
switchboard_stale_total{instance="support_bot"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

func TestObserverMetricNames(t *testing.T) {
	obs := switchboardprom.New(switchboardprom.Options{})
	ch := make(chan *prometheus.Desc, 32)
	obs.Describe(ch)
	close(ch)
	n := 0
	for d := range ch {
		n++
		if !strings.Contains(d.String(), `fqName: "switchboard_`) {
			t.Errorf("metric %s does not start with switchboard_", d)
		}
	}
	if n != 12 {
		t.Fatalf("%d metrics described, want 12", n)
	}
}

func TestObserverTrustCounters(t *testing.T) {
	ctx := context.Background()
	obs := switchboardprom.New(switchboardprom.Options{})
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(obs)
	m, err := switchboard.New(switchboard.Config{PartitionCount: 1}, switchboard.WithObserver(obs))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	k := switchboard.SessionKey{ChannelType: "slack", BridgeID: "T1", RoomID: "C1"}
	r := switchboard.Route{ExternalRoomID: "C1"}
	if err := m.Set(ctx, k, r, switchboard.WithPriority(10)); err != nil {
		t.Fatal(err)
	}
	_ = m.Set(ctx, k, r)                             // superseded
	_ = m.Set(ctx, k, r, switchboard.IfRevision(99)) // conflict (set)
	_, _ = m.Confirm(ctx, k, switchboard.Route{ExternalRoomID: "other"})
	if _, err := m.Confirm(ctx, k, r); err != nil {
		t.Fatal(err)
	}
	if err := m.Invalidate(ctx, k, r, "403 bot removed"); err != nil {
		t.Fatal(err)
	}
	const want = `
# HELP switchboard_confirmed_total Records confirmed by delivery feedback (Confirm).
# TYPE switchboard_confirmed_total counter
switchboard_confirmed_total 1
# HELP switchboard_conflicts_total Conditional Sets, Confirms and Invalidates that found another record than they required, by operation.
# TYPE switchboard_conflicts_total counter
switchboard_conflicts_total{op="confirm"} 1
switchboard_conflicts_total{op="set"} 1
# HELP switchboard_invalidated_total Records invalidated by delivery feedback (Invalidate): tombstones made.
# TYPE switchboard_invalidated_total counter
switchboard_invalidated_total 1
# HELP switchboard_superseded_total Sets refused because a fresh record of higher priority stands.
# TYPE switchboard_superseded_total counter
switchboard_superseded_total 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"switchboard_confirmed_total", "switchboard_conflicts_total", "switchboard_invalidated_total", "switchboard_superseded_total"); err != nil {
		t.Fatal(err)
	}
}
