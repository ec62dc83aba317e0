package switchboard_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/switchboard-go/switchboard"
	"github.com/switchboard-go/switchboard/manualclock"
	"github.com/switchboard-go/switchboard/storetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// The rules below are the Manager's own (validation, contexts, Close,
// configuration): a Store never sees these calls, so they are tested here
// once rather than in the conformance suite.

var start = time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)

// env is a Manager over a memory store on a manual clock.
type env struct {
	t     *testing.T
	m     *switchboard.Manager
	clock *manualclock.Clock
	ctx   context.Context
}

func newEnv(t *testing.T, cfg switchboard.Config, opts ...switchboard.Option) *env {
	t.Helper()
	clock := manualclock.New(start)
	m, err := switchboard.New(cfg, append([]switchboard.Option{switchboard.WithClock(clock.Now)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return &env{t: t, m: m, clock: clock, ctx: context.Background()}
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

func (e *env) entries() (total int) {
	e.t.Helper()
	for p := range e.m.PartitionCount() {
		st, err := e.m.PartitionStatus(e.ctx, p)
		if err != nil {
			e.t.Fatal(err)
		}
		total += st.Entries
	}
	return total
}

func bigMeta(n int) map[string]string {
	m := make(map[string]string, n)
	for i := range n {
		m[fmt.Sprintf("k%d", i)] = "v"
	}
	return m
}

func TestBadInputKeepsState(t *testing.T) {
	e := newEnv(t, switchboard.Config{})
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
		if _, err := e.m.Confirm(e.ctx, k, r); !errors.Is(err, switchboard.ErrInvalidRoute) {
			t.Errorf("Confirm with %s route: err = %v, want ErrInvalidRoute", name, err)
		}
		if err := e.m.Invalidate(e.ctx, k, r, "gone"); !errors.Is(err, switchboard.ErrInvalidRoute) {
			t.Errorf("Invalidate with %s route: err = %v, want ErrInvalidRoute", name, err)
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
		errs := map[string]error{}
		errs["Set"] = e.m.Set(e.ctx, bk, route("x"))
		_, errs["Get"] = e.m.Get(e.ctx, bk)
		_, errs["Resolve"] = e.m.Resolve(e.ctx, bk, route("fb"))
		_, errs["Explain"] = e.m.Explain(e.ctx, bk, route("fb"))
		_, errs["Confirm"] = e.m.Confirm(e.ctx, bk, route("x"))
		errs["Invalidate"] = e.m.Invalidate(e.ctx, bk, route("x"), "gone")
		errs["Delete"] = e.m.Delete(e.ctx, bk)
		for op, err := range errs {
			if !errors.Is(err, switchboard.ErrInvalidSessionKey) {
				t.Errorf("%s with %s key: err = %v, want ErrInvalidSessionKey", op, name, err)
			}
		}
	}
	for _, d := range []time.Duration{-1, 0, time.Millisecond - 1, switchboard.MaxTTL + 1} {
		if err := e.m.Set(e.ctx, k, route("x"), switchboard.WithTTL(d)); !errors.Is(err, switchboard.ErrInvalidTTL) {
			t.Errorf("Set with TTL %v: err = %v, want ErrInvalidTTL", d, err)
		}
	}
	after := e.get(k)
	if after.Route.ExternalRoomID != "good" || !after.UpdatedAt.Equal(before.UpdatedAt) || !after.ExpiresAt.Equal(before.ExpiresAt) || after.Revision != before.Revision {
		t.Fatalf("record after bad input = %+v, want unchanged %+v", after, before)
	}
	if n := e.entries(); n != 1 {
		t.Fatalf("entries after bad input = %d, want 1", n)
	}
}

func TestContextDone(t *testing.T) {
	e := newEnv(t, switchboard.Config{})
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
		errs := map[string]error{}
		errs["Set"] = e.m.Set(c.ctx, k, route("x"))
		_, errs["Get"] = e.m.Get(c.ctx, k)
		_, errs["Resolve"] = e.m.Resolve(c.ctx, k, route("fb"))
		_, errs["Explain"] = e.m.Explain(c.ctx, k, route("fb"))
		_, errs["Confirm"] = e.m.Confirm(c.ctx, k, route("r"))
		errs["Invalidate"] = e.m.Invalidate(c.ctx, k, route("r"), "gone")
		errs["Delete"] = e.m.Delete(c.ctx, k)
		_, errs["Prune"] = e.m.Prune(c.ctx)
		_, _, errs["List"] = e.m.List(c.ctx, switchboard.Filter{}, 10, "")
		_, errs["DeleteMatching"] = e.m.DeleteMatching(c.ctx, switchboard.Filter{RoomID: "chat_1"}, false)
		_, errs["PartitionStatus"] = e.m.PartitionStatus(c.ctx, 0)
		for op, err := range errs {
			if !errors.Is(err, c.want) {
				t.Errorf("%s: err = %v, want %v", op, err, c.want)
			}
		}
	}
	if rec := e.get(k); rec.Route.ExternalRoomID != "r" || rec.Confirmed {
		t.Fatalf("record after done contexts = %+v, want it unchanged", rec) // nothing changed
	}
}

// TestContextWinsOverStoreError: when the caller's context ends during a
// store call, the Manager reports the context's error, not the store's.
func TestContextWinsOverStoreError(t *testing.T) {
	fs := storetest.NewFaultStore(switchboard.NewMemoryStore())
	e := newEnv(t, switchboard.Config{PartitionCount: 1}, switchboard.WithStore(fs))
	fs.BreakPartition(0)
	ctx, cancel := context.WithCancel(context.Background())
	fs.During(cancel)
	if _, err := e.m.Resolve(ctx, key("C1", ""), route("fb")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Resolve: err = %v, want context.Canceled", err)
	}
}

func TestClose(t *testing.T) {
	m, err := switchboard.New(switchboard.Config{})
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
	errs := map[string]error{}
	errs["Set"] = m.Set(ctx, k, route("x"))
	_, errs["Get"] = m.Get(ctx, k)
	_, errs["Resolve"] = m.Resolve(ctx, k, route("fb"))
	_, errs["Explain"] = m.Explain(ctx, k)
	_, errs["Confirm"] = m.Confirm(ctx, k, route("r"))
	errs["Invalidate"] = m.Invalidate(ctx, k, route("r"), "gone")
	errs["Delete"] = m.Delete(ctx, k)
	_, errs["Prune"] = m.Prune(ctx)
	_, _, errs["List"] = m.List(ctx, switchboard.Filter{}, 0, "")
	_, errs["DeleteMatching"] = m.DeleteMatching(ctx, switchboard.Filter{RoomID: "x"}, true)
	_, errs["PartitionStatus"] = m.PartitionStatus(ctx, 0)
	for op, err := range errs {
		if !errors.Is(err, switchboard.ErrClosed) {
			t.Errorf("%s after Close: err = %v, want ErrClosed", op, err)
		}
	}
	// Configuration stays readable.
	if m.PartitionCount() <= 0 || m.Config().TTL <= 0 {
		t.Errorf("Config after Close = %+v", m.Config())
	}
}

func TestConfigOfManager(t *testing.T) {
	def := switchboard.DefaultConfig()
	e := newEnv(t, switchboard.Config{TTL: 5 * time.Minute, PruneInterval: time.Hour})
	want := def
	want.TTL = 5 * time.Minute
	want.PruneInterval = time.Hour
	if got := e.m.Config(); got != want {
		t.Fatalf("Config() = %+v, want %+v", got, want)
	}
	for _, bad := range []switchboard.Config{{MaxEntriesPerPartition: -1}, {TTL: time.Microsecond}, {ProvisionalTTL: -time.Second}} {
		if _, err := switchboard.New(bad); !errors.Is(err, switchboard.ErrInvalidConfig) {
			t.Errorf("New(%+v): err = %v, want ErrInvalidConfig", bad, err)
		}
	}
}

func TestOpErrorFields(t *testing.T) {
	fs := storetest.NewFaultStore(switchboard.NewMemoryStore())
	e := newEnv(t, switchboard.Config{PartitionCount: 4}, switchboard.WithStore(fs))
	k := key("chat_1", "")
	p := e.m.RoutePartition(k)
	fs.BreakPartition(p)
	err := e.m.Set(e.ctx, k, route("r"))
	var op *switchboard.OpError
	if !errors.As(err, &op) || op.Op != "set" || op.Key != k || op.Partition != p || !errors.Is(err, switchboard.ErrPartitionUnavailable) {
		t.Fatalf("Set on a broken partition: %#v, want an *OpError{set, %v, %d}", err, k, p)
	}
	if want := fmt.Sprintf("set %s (partition %d): ", k, p); err.Error()[:len(want)] != want {
		t.Fatalf("error text %q, want it to start with %q", err, want)
	}
	// Misses stay bare sentinels.
	fs.HealPartition(p)
	if _, err := e.m.Get(e.ctx, k); err != switchboard.ErrNotFound {
		t.Fatalf("Get miss = %#v, want the bare ErrNotFound", err)
	}
	if _, err := e.m.Resolve(e.ctx, k); err != switchboard.ErrNoRoute {
		t.Fatalf("Resolve miss = %#v, want the bare ErrNoRoute", err)
	}
}

func TestDefaultClock(t *testing.T) {
	m, err := switchboard.New(switchboard.Config{TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()
	k := key("C1", "")
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
