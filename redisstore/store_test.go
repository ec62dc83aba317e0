package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/rueidis"
	"go.uber.org/goleak"

	"github.com/switchboard-go/switchboard"
	"github.com/switchboard-go/switchboard/internal/redistest"
	"github.com/switchboard-go/switchboard/redisstore"
	"github.com/switchboard-go/switchboard/storetest"
)

// rueidis' cluster client closes the connections of a slot map it replaced
// five seconds later, from a goroutine that outlives Close by up to that.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/redis/rueidis.(*clusterClient)._refresh.func2"))
}

// prefix makes a key prefix unique to the (sub)test.
func prefix(t *testing.T) string {
	return strings.NewReplacer("/", ":", " ", "_", "{", "(", "}", ")").Replace(t.Name())
}

// clientOption is how the tests build clients: short dial and write
// timeouts, no client-side cache, as redisstore.New asks.
func clientOption(addrs ...string) rueidis.ClientOption {
	return rueidis.ClientOption{InitAddress: addrs, DisableCache: true,
		Dialer: net.Dialer{Timeout: 200 * time.Millisecond}, ConnWriteTimeout: 200 * time.Millisecond}
}

// newClient returns a client wrapped in a testClient, closed when the test
// ends.
func newClient(tb testing.TB, opt rueidis.ClientOption) *testClient {
	tb.Helper()
	c, err := rueidis.NewClient(opt)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Close)
	return &testClient{Client: c, broken: map[string]bool{}}
}

func standaloneClient(t *testing.T, addr string) *testClient {
	opt := clientOption(addr)
	opt.ForceSingleClient = true
	return newClient(t, opt)
}

func clusterClient(t *testing.T, addrs []string) *testClient {
	return newClient(t, clientOption(addrs...))
}

func newStore(t *testing.T, c rueidis.Client) *redisstore.Store {
	st, err := redisstore.New(c, redisstore.Options{KeyPrefix: prefix(t)})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// testClient wraps a rueidis.Client: it counts round trips (a command, or
// a pipeline of them, is one), and fails every command touching a key of
// a broken partition as a refused connection does, before it is sent —
// the storetest.PartitionBreaker of the Redis stores under test.
type testClient struct {
	rueidis.Client
	trips  atomic.Int64
	mu     sync.Mutex
	broken map[string]bool // hash tags "{prefix:p}"
}

func (c *testClient) fails(cmds ...rueidis.Completed) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cmd := range cmds {
		for _, a := range cmd.Commands()[1:] {
			if strings.HasPrefix(a, "{") {
				if i := strings.IndexByte(a, '}'); i > 0 && c.broken[a[:i+1]] {
					return true
				}
			}
		}
	}
	return false
}

var errRefused = &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}

func (c *testClient) Do(ctx context.Context, cmd rueidis.Completed) rueidis.RedisResult {
	if c.fails(cmd) {
		return rueidis.NewErrorResult(errRefused)
	}
	c.trips.Add(1)
	return c.Client.Do(ctx, cmd)
}

func (c *testClient) DoMulti(ctx context.Context, cmds ...rueidis.Completed) []rueidis.RedisResult {
	if c.fails(cmds...) {
		return refusedAll(len(cmds))
	}
	c.trips.Add(1)
	return c.Client.DoMulti(ctx, cmds...)
}

func refusedAll(n int) []rueidis.RedisResult {
	out := make([]rueidis.RedisResult, n)
	for i := range out {
		out[i] = rueidis.NewErrorResult(errRefused)
	}
	return out
}

// breakable is a redisstore.Store whose partitions its testClient can
// break.
type breakable struct {
	*redisstore.Store
	client *testClient
	prefix string
}

func (b *breakable) set(p int, broken bool) {
	b.client.mu.Lock()
	defer b.client.mu.Unlock()
	b.client.broken[fmt.Sprintf("{%s:%d}", b.prefix, p)] = broken
}

func (b *breakable) BreakPartition(p int) { b.set(p, true) }
func (b *breakable) HealPartition(p int)  { b.set(p, false) }

// conformance runs the suite on stores over c whose partitions can be broken.
func conformance(t *testing.T, c *testClient) {
	var n atomic.Int64 // a subtest may make several stores: each gets its own prefix
	storetest.Run(t, func(t *testing.T) switchboard.Store {
		p := fmt.Sprintf("%s:%d", prefix(t), n.Add(1))
		st, err := redisstore.New(c, redisstore.Options{KeyPrefix: p})
		if err != nil {
			t.Fatal(err)
		}
		return &breakable{Store: st, client: c, prefix: p}
	})
}

// newManager returns a Manager over a redisstore on c; both are closed when
// the test ends.
func newManager(tb testing.TB, c rueidis.Client, opts redisstore.Options, cfg switchboard.Config) *switchboard.Manager {
	tb.Helper()
	st, err := redisstore.New(c, opts)
	if err != nil {
		tb.Fatal(err)
	}
	m, err := switchboard.New(cfg, switchboard.WithStore(st))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = m.Close() })
	return m
}

func TestConformanceStandalone(t *testing.T) {
	srv := redistest.Start(t)
	conformance(t, standaloneClient(t, srv.Addr))
}

func TestConformanceCluster(t *testing.T) {
	cl := redistest.StartCluster(t)
	conformance(t, clusterClient(t, cl.Addrs()))
}

func TestOptions(t *testing.T) {
	srv := redistest.Start(t)
	c := standaloneClient(t, srv.Addr)
	for _, o := range []redisstore.Options{
		{KeyPrefix: "a{b"}, {KeyPrefix: "a}"}, {OpTimeout: -time.Second}, {OpTimeout: 2 * time.Second}, {ExpiryGrace: -1},
	} {
		if _, err := redisstore.New(c, o); !errors.Is(err, switchboard.ErrInvalidConfig) {
			t.Errorf("New(%+v): err = %v, want ErrInvalidConfig", o, err)
		}
	}
	if _, err := redisstore.New(nil, redisstore.Options{}); !errors.Is(err, switchboard.ErrInvalidConfig) {
		t.Errorf("New(nil): err = %v, want ErrInvalidConfig", err)
	}
}

// TestOneRoundTripPerOperation: every operation is one round trip, except
// a Resolve that finds no fresh, valid record of its own key (two: the
// plain read, then the script).
func TestOneRoundTripPerOperation(t *testing.T) {
	for _, mode := range []string{"standalone", "cluster"} {
		t.Run(mode, func(t *testing.T) {
			var c *testClient
			if mode == "standalone" {
				c = standaloneClient(t, redistest.Start(t).Addr)
			} else {
				c = clusterClient(t, redistest.StartCluster(t).Addrs())
			}
			counter := &c.trips
			m, err := switchboard.New(switchboard.Config{PartitionCount: 4, MaxEntriesPerPartition: 2}, switchboard.WithStore(newStore(t, c)))
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			ctx := context.Background()
			key := func(i int) switchboard.SessionKey {
				return switchboard.SessionKey{ChannelType: "slack", BridgeID: "T1", RoomID: fmt.Sprintf("C%d", i), ThreadID: "t"}
			}
			fb := switchboard.Route{ExternalRoomID: "fb"}
			ops := map[string]func(i int) error{
				"Set":          func(i int) error { return m.Set(ctx, key(i), fb) },
				"Get":          func(i int) error { _, err := m.Get(ctx, key(i)); return err },
				"Resolve":      func(i int) error { _, err := m.Resolve(ctx, key(i), fb); return err },
				"Resolve miss": func(i int) error { _, _ = m.Resolve(ctx, key(i+1000)); return nil },
				"Confirm":      func(i int) error { _, err := m.Confirm(ctx, key(i), fb); return err },
				"Set IfRevision": func(i int) error {
					return m.Set(ctx, key(i), fb, switchboard.IfRevision(1), switchboard.WithPriority(5))
				},
				"Explain":       func(i int) error { _, err := m.Explain(ctx, key(i), fb); return err },
				"Invalidate":    func(i int) error { return m.Invalidate(ctx, key(i), fb, "gone") },
				"Get tombstone": func(i int) error { _, _ = m.Get(ctx, key(i)); return nil },
				"Resolve past it": func(i int) error {
					_, err := m.Resolve(ctx, key(i), fb, switchboard.Route{ExternalRoomID: "fb2"})
					return err
				},
				"Delete":          func(i int) error { return m.Delete(ctx, key(i)) },
				"Set evicting":    func(i int) error { return m.Set(ctx, key(i+2000), fb) },
				"PartitionStatus": func(i int) error { _, err := m.PartitionStatus(ctx, i%4); return err },
			}
			order := []string{"Set", "Get", "Resolve", "Resolve miss", "Confirm", "Set IfRevision", "Explain", "Invalidate",
				"Get tombstone", "Resolve past it", "Delete", "Set evicting", "PartitionStatus"}
			// Warm up: the first EVALSHA of each script on each node may
			// answer NOSCRIPT and be retried as EVAL.
			for i := range 40 {
				for _, name := range order {
					_ = ops[name](i)
				}
			}
			if _, err := m.Prune(ctx); err != nil {
				t.Fatal(err)
			}
			for i := 100; i < 120; i++ {
				for _, name := range order {
					before := counter.Load()
					if err := ops[name](i); err != nil && !errors.Is(err, switchboard.ErrConflict) {
						t.Fatalf("%s: %v", name, err)
					}
					want := int64(1)
					if name == "Resolve miss" || name == "Resolve past it" {
						want = 2 // the plain read that finds no fresh, valid record, then the script
					}
					if got := counter.Load() - before; got != want {
						t.Fatalf("%s took %d round trips, want %d", name, got, want)
					}
				}
			}
			before := counter.Load()
			if _, err := m.Prune(ctx); err != nil {
				t.Fatal(err)
			}
			if got := counter.Load() - before; got != 4 {
				t.Fatalf("Prune of 4 partitions took %d round trips, want 4", got)
			}
		})
	}
}

// TestTwoManagersShareState: two Managers (as two processes would) on one
// Redis see each other's writes at once.
func TestTwoManagersShareState(t *testing.T) {
	c := clusterClient(t, redistest.StartCluster(t).Addrs())
	var ms []*switchboard.Manager
	for range 2 {
		ms = append(ms, newManager(t, c, redisstore.Options{KeyPrefix: "shared"}, switchboard.Config{PartitionCount: 8}))
	}
	ctx := context.Background()
	room := switchboard.SessionKey{ChannelType: "telegram", BridgeID: "bot_1", RoomID: "chat_1"}
	if err := ms[0].Set(ctx, room, switchboard.Route{ExternalRoomID: "-1001"}); err != nil {
		t.Fatal(err)
	}
	res, err := ms[1].Resolve(ctx, room)
	if err != nil || res.Source != switchboard.SourceStateHit || res.ExternalRoomID != "-1001" {
		t.Fatalf("Resolve through the other Manager = %+v, %v; want state_hit -1001", res, err)
	}
	thread := room
	thread.ThreadID = "5"
	if res, err = ms[1].Resolve(ctx, thread); err != nil || res.Source != switchboard.SourcePartitionFallback {
		t.Fatalf("thread Resolve = %+v, %v", res, err)
	}
	if res, err = ms[0].Resolve(ctx, thread); err != nil || res.Source != switchboard.SourceStateHit {
		t.Fatalf("thread Resolve through the first Manager = %+v, %v; want the stored copy", res, err)
	}
	if err := ms[0].Delete(ctx, room); err != nil {
		t.Fatal(err)
	}
	if _, err := ms[1].Get(ctx, room); !errors.Is(err, switchboard.ErrNotFound) {
		t.Fatalf("Get after the other Manager's Delete: %v", err)
	}
}

// TestRedisExpiresRecords: a record's key carries a Redis expiry of its
// remaining TTL plus the grace.
func TestRedisExpiresRecords(t *testing.T) {
	srv := redistest.Start(t)
	c := standaloneClient(t, srv.Addr)
	m := newManager(t, c, redisstore.Options{KeyPrefix: "exp", ExpiryGrace: 30 * time.Second},
		switchboard.Config{PartitionCount: 1, TTL: 10 * time.Minute})
	ctx := context.Background()
	k := switchboard.SessionKey{ChannelType: "c", BridgeID: "b", RoomID: "r"}
	if err := m.Set(ctx, k, switchboard.Route{ExternalRoomID: "x"}, switchboard.WithTTL(time.Minute)); err != nil {
		t.Fatal(err)
	}
	ms, err := c.Do(ctx, c.B().Pttl().Key("{exp:0}:r:"+k.String()).Build()).AsInt64()
	if err != nil {
		t.Fatal(err)
	}
	ttl := time.Duration(ms) * time.Millisecond
	if ttl <= time.Minute || ttl > time.Minute+30*time.Second+time.Second {
		t.Fatalf("Redis expiry of the record = %v, want about 1m30s", ttl)
	}
}

// TestConformanceSentinel runs the suite through a Sentinel-backed client
// (ClientOption.Sentinel), as a Sentinel deployment uses it.
func TestConformanceSentinel(t *testing.T) {
	s := redistest.StartSentinel(t)
	opt := clientOption(s.Sentinel.Addr)
	opt.Sentinel = rueidis.SentinelOption{MasterSet: s.MasterName}
	c := newClient(t, opt)
	conformance(t, c)
	m := newManager(t, c, redisstore.Options{KeyPrefix: "owner"}, switchboard.Config{PartitionCount: 2})
	ps, err := m.PartitionStatus(context.Background(), 0)
	if err != nil || !ps.Available || ps.Owner != s.Master.Addr {
		t.Fatalf("PartitionStatus through Sentinel = %+v, %v; want the master %s as owner", ps, err, s.Master.Addr)
	}
}

// TestReplicasMustAgree: Managers on one key prefix must use one partition
// count and capacity; a second Manager that differs fails to start, naming
// both values, and changes nothing stored.
func TestReplicasMustAgree(t *testing.T) {
	c := standaloneClient(t, redistest.Start(t).Addr)
	ctx := context.Background()
	first := newManager(t, c, redisstore.Options{KeyPrefix: "replicas"}, switchboard.Config{PartitionCount: 4, MaxEntriesPerPartition: 100})
	k := switchboard.SessionKey{ChannelType: "telegram", BridgeID: "bot_1", RoomID: "chat_123"}
	if err := first.Set(ctx, k, switchboard.Route{ExternalRoomID: "-100123"}); err != nil {
		t.Fatal(err)
	}
	for _, cfg := range []switchboard.Config{
		{PartitionCount: 16, MaxEntriesPerPartition: 100}, // another CPU count's default
		{PartitionCount: 4, MaxEntriesPerPartition: 200},
	} {
		st, err := redisstore.New(c, redisstore.Options{KeyPrefix: "replicas"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = switchboard.New(cfg, switchboard.WithStore(st))
		if !errors.Is(err, switchboard.ErrInvalidConfig) ||
			!strings.Contains(err.Error(), fmt.Sprintf("%d partitions with capacity %d, this Manager has %d partitions with capacity %d", 4, 100, cfg.PartitionCount, cfg.MaxEntriesPerPartition)) {
			t.Fatalf("New with %+v on the same prefix: err = %v, want ErrInvalidConfig naming both", cfg, err)
		}
	}
	second := newManager(t, c, redisstore.Options{KeyPrefix: "replicas"}, switchboard.Config{PartitionCount: 4, MaxEntriesPerPartition: 100})
	if res, err := second.Resolve(ctx, k); err != nil || res.ExternalRoomID != "-100123" {
		t.Fatalf("an agreeing replica: Resolve = %+v, %v", res, err)
	}
	// Another prefix is another instance.
	newManager(t, c, redisstore.Options{KeyPrefix: "replicas-b"}, switchboard.Config{PartitionCount: 16, MaxEntriesPerPartition: 100})
}

// TestRecordsOfEarlierReleases: records that earlier releases stored as
// hashes — with the packed field d, or with only the fields of the first
// releases — are read by every operation as they were (a read hit leaves
// them to the script: two round trips), precedence holds against them, and
// a write replaces each with the string form (Confirm with the record's
// own TTL, Invalidate keeping its Redis expiry); prune and delete remove
// them.
func TestRecordsOfEarlierReleases(t *testing.T) {
	c := standaloneClient(t, redistest.Start(t).Addr)
	const ttl = time.Hour
	m := newManager(t, c, redisstore.Options{KeyPrefix: "old"}, switchboard.Config{PartitionCount: 1, TTL: ttl})
	ctx := context.Background()
	do := func(cmd rueidis.Completed) rueidis.RedisResult {
		t.Helper()
		r := c.Do(ctx, cmd)
		if err := r.Error(); err != nil && !rueidis.IsRedisNil(err) {
			t.Fatal(err)
		}
		return r
	}
	stamp := func(t time.Time) string { return fmt.Sprintf("%020d", t.UnixNano()) }
	var revision int64
	// hash stores what an earlier release's write left for room: a hash of
	// the fields (all of them and d, or only u, e and r), its Redis expiry,
	// and the partition's index entries.
	hash := func(room string, full bool, updated, expires time.Time, prio string) (switchboard.SessionKey, string) {
		t.Helper()
		k := switchboard.SessionKey{ChannelType: "telegram", BridgeID: "bot_1", RoomID: room}
		rk := "{old:0}:r:" + k.String()
		revision++
		v := fmt.Sprint(revision)
		u, e, r := stamp(updated), stamp(expires), `{"external_room_id":"`+room+`-target"}`
		fv := c.B().Hset().Key(rk).FieldValue().FieldValue("u", u).FieldValue("e", e).FieldValue("r", r)
		if full {
			fv = fv.FieldValue("t", fmt.Sprintf("%020d", int64(ttl))).FieldValue("x", room+"-target").FieldValue("h", "").
				FieldValue("o", "set").FieldValue("w", "old-writer").FieldValue("p", prio).FieldValue("v", v).
				FieldValue("c", "0").FieldValue("i", "").
				FieldValue("d", strings.Join([]string{u, e, r, "set", "old-writer", prio, v, "0", ""}, "\x1f"))
		}
		do(fv.Build())
		// A Redis expiry in the future even for an expired record (as a long
		// ExpiryGrace leaves it), so that pruning meets the hash.
		do(c.B().Pexpireat().Key(rk).MillisecondsTimestamp(max(expires.UnixMilli(), time.Now().UnixMilli()) + time.Minute.Milliseconds()).Build())
		do(c.B().Zadd().Key("{old:0}:o").ScoreMember().ScoreMember(float64(revision), k.String()).Build())
		do(c.B().Zadd().Key("{old:0}:e").ScoreMember().ScoreMember(float64(expires.UnixMilli()), k.String()).Build())
		do(c.B().Set().Key("{old:0}:s").Value(v).Build())
		return k, rk
	}
	typeOf := func(rk string) string {
		t.Helper()
		s, err := c.Do(ctx, c.B().Type().Key(rk).Build()).ToString()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	// The first call of each script may take two round trips (NOSCRIPT, then EVAL).
	if _, err := m.Get(ctx, switchboard.SessionKey{ChannelType: "c", BridgeID: "b", RoomID: "none"}); !errors.Is(err, switchboard.ErrNotFound) {
		t.Fatalf("Get of a key never stored: %v", err)
	}
	now := time.Now()

	for _, full := range []bool{true, false} {
		t.Run(fmt.Sprintf("reads/full=%v", full), func(t *testing.T) {
			k, rk := hash(fmt.Sprintf("read_%v", full), full, now, now.Add(ttl), "0")
			wantWriter, wantRev := "", uint64(revision)
			if full {
				wantWriter = "old-writer"
			}
			before := c.trips.Load()
			rec, err := m.Get(ctx, k)
			if err != nil || rec.Route.ExternalRoomID != k.RoomID+"-target" || rec.Origin != switchboard.OriginSet ||
				rec.Writer != wantWriter || rec.Revision != wantRev || !rec.ExpiresAt.Equal(time.Unix(0, now.Add(ttl).UnixNano())) {
				t.Fatalf("Get = %+v, %v; want the hash's record (writer %q, revision %d)", rec, err, wantWriter, wantRev)
			}
			if got := c.trips.Load() - before; got != 2 {
				t.Fatalf("Get took %d round trips, want 2 (GET answers WRONGTYPE, then the script)", got)
			}
			res, err := m.Resolve(ctx, k)
			if err != nil || res.Source != switchboard.SourceStateHit || res.ExternalRoomID != k.RoomID+"-target" {
				t.Fatalf("Resolve = %+v, %v; want a state hit", res, err)
			}
			entries, _, err := m.List(ctx, switchboard.Filter{RoomID: k.RoomID}, 10, "")
			if err != nil || len(entries) != 1 || entries[0].Record.Revision != wantRev {
				t.Fatalf("List = %+v, %v; want the hash's record", entries, err)
			}
			if got := typeOf(rk); got != "hash" {
				t.Fatalf("after reads the record is a %s, want the hash untouched", got)
			}
		})
	}

	t.Run("precedence", func(t *testing.T) {
		k, rk := hash("prio", true, now, now.Add(ttl), "5")
		if err := m.Set(ctx, k, switchboard.Route{ExternalRoomID: "low"}, switchboard.WithPriority(1)); !errors.Is(err, switchboard.ErrSuperseded) {
			t.Fatalf("Set below the hash's priority 5: %v, want ErrSuperseded", err)
		}
		if got := typeOf(rk); got != "hash" {
			t.Fatalf("after a refused Set the record is a %s, want the hash untouched", got)
		}
	})

	writes := []struct {
		name  string
		write func(k switchboard.SessionKey) error
		check func(t *testing.T, rec switchboard.Record)
	}{
		{"Set", func(k switchboard.SessionKey) error { return m.Set(ctx, k, switchboard.Route{ExternalRoomID: "new"}) },
			func(t *testing.T, rec switchboard.Record) {
				if rec.Route.ExternalRoomID != "new" {
					t.Fatalf("record %+v, want the new route", rec)
				}
			}},
		{"Confirm", func(k switchboard.SessionKey) error {
			_, err := m.Confirm(ctx, k, switchboard.Route{ExternalRoomID: k.RoomID + "-target"})
			return err
		}, func(t *testing.T, rec switchboard.Record) {
			if !rec.Confirmed || rec.Writer != "old-writer" {
				t.Fatalf("record %+v, want it confirmed", rec)
			}
		}},
		{"Invalidate", func(k switchboard.SessionKey) error {
			return m.Invalidate(ctx, k, switchboard.Route{ExternalRoomID: k.RoomID + "-target"}, "gone")
		}, func(t *testing.T, rec switchboard.Record) {
			if rec.Invalidated != "gone" || rec.Writer != "old-writer" {
				t.Fatalf("record %+v, want the hash's record invalidated", rec)
			}
		}},
	}
	for _, tt := range writes {
		t.Run("write/"+tt.name, func(t *testing.T) {
			// Written 10 minutes ago: Confirm renews it to a full TTL from now.
			k, rk := hash("w_"+tt.name, true, now.Add(-10*time.Minute), now.Add(ttl-10*time.Minute), "0")
			pttlBefore := do(c.B().Pttl().Key(rk).Build())
			if err := tt.write(k); err != nil {
				t.Fatal(err)
			}
			if got := typeOf(rk); got != "string" {
				t.Fatalf("after %s the record is a %s, want the string form", tt.name, got)
			}
			before := c.trips.Load()
			rec, err := m.Get(ctx, k)
			if tt.name == "Invalidate" && errors.Is(err, switchboard.ErrInvalidated) { // a tombstone: List shows it
				var entries []switchboard.Entry
				entries, _, err = m.List(ctx, switchboard.Filter{RoomID: k.RoomID, Invalidated: true}, 10, "")
				if err == nil && len(entries) != 1 {
					err = fmt.Errorf("List of tombstones = %+v, want the one", entries)
				} else if err == nil {
					rec = entries[0].Record
				}
			} else if got := c.trips.Load() - before; got != 1 {
				t.Fatalf("Get took %d round trips, want 1 (a hit on the string)", got)
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, rec)
			was, _ := pttlBefore.AsInt64()
			left, _ := do(c.B().Pttl().Key(rk).Build()).AsInt64()
			switch tt.name {
			case "Invalidate": // the Redis expiry is kept
				if left > was || left < was-5000 {
					t.Fatalf("Redis expiry %d ms after Invalidate, want the %d ms it had", left, was)
				}
			case "Confirm": // renewed from now by the record's TTL
				if lo := ttl.Milliseconds(); left < lo || !rec.ExpiresAt.After(now.Add(ttl-time.Minute)) {
					t.Fatalf("Redis expiry %d ms, expires %v after Confirm; want at least %d ms, a full TTL", left, rec.ExpiresAt, lo)
				}
			}
		})
	}

	t.Run("prune and delete", func(t *testing.T) {
		_, expired := hash("expired", true, now.Add(-2*ttl), now.Add(-ttl), "0")
		_, expiredOld := hash("expired_old", false, now.Add(-2*ttl), now.Add(-ttl), "0")
		k, deleted := hash("deleted", true, now, now.Add(ttl), "0")
		if err := m.Delete(ctx, k); err != nil {
			t.Fatal(err)
		}
		res, err := m.Prune(ctx)
		if err != nil || res.Pruned != 2 {
			t.Fatalf("Prune = %+v, %v; want the 2 expired hashes pruned", res, err)
		}
		for _, rk := range []string{expired, expiredOld, deleted} {
			if got := typeOf(rk); got != "none" {
				t.Fatalf("%s is a %s, want it gone", rk, got)
			}
		}
	})
}
