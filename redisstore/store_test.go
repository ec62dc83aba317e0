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

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/switchboard-go/switchboard"
	"github.com/switchboard-go/switchboard/internal/redistest"
	"github.com/switchboard-go/switchboard/redisstore"
	"github.com/switchboard-go/switchboard/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// prefix makes a key prefix unique to the (sub)test.
func prefix(t *testing.T) string {
	return strings.NewReplacer("/", ":", " ", "_", "{", "(", "}", ")").Replace(t.Name())
}

func standaloneClient(t *testing.T, addr string, deadlines bool) *redis.Client {
	c := redis.NewClient(&redis.Options{
		Addr: addr, DialTimeout: 200 * time.Millisecond, ReadTimeout: 200 * time.Millisecond,
		WriteTimeout: 200 * time.Millisecond, MaxRetries: 1, ContextTimeoutEnabled: deadlines,
	})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func clusterClient(t *testing.T, addrs []string) *redis.ClusterClient {
	c := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs: addrs, DialTimeout: 200 * time.Millisecond, ReadTimeout: 200 * time.Millisecond,
		WriteTimeout: 200 * time.Millisecond, MaxRetries: 1, MaxRedirects: 1, ContextTimeoutEnabled: true,
	})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func newStore(t *testing.T, c redis.UniversalClient) *redisstore.Store {
	st, err := redisstore.New(c, redisstore.Options{KeyPrefix: prefix(t)})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// faultHook is a go-redis hook that fails every command touching a key of
// a broken partition as a refused connection does, before it is sent: the
// storetest.PartitionBreaker of the Redis stores under test.
type faultHook struct {
	mu     sync.Mutex
	broken map[string]bool // hash tags "{prefix:p}"
}

func addFaultHook(c redis.UniversalClient) *faultHook {
	h := &faultHook{broken: map[string]bool{}}
	c.AddHook(h)
	return h
}

func (h *faultHook) fails(cmd redis.Cmder) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, a := range cmd.Args()[1:] {
		if s, ok := a.(string); ok && strings.HasPrefix(s, "{") {
			if i := strings.IndexByte(s, '}'); i > 0 && h.broken[s[:i+1]] {
				return true
			}
		}
	}
	return false
}

var errRefused = &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}

func (h *faultHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *faultHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if h.fails(cmd) {
			cmd.SetErr(errRefused)
			return errRefused
		}
		return next(ctx, cmd)
	}
}
func (h *faultHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			if h.fails(cmd) {
				cmd.SetErr(errRefused)
				return errRefused
			}
		}
		return next(ctx, cmds)
	}
}

// breakable is a redisstore.Store whose partitions the faultHook can break.
type breakable struct {
	*redisstore.Store
	hook   *faultHook
	prefix string
}

func (b *breakable) set(p int, broken bool) {
	b.hook.mu.Lock()
	defer b.hook.mu.Unlock()
	b.hook.broken[fmt.Sprintf("{%s:%d}", b.prefix, p)] = broken
}

func (b *breakable) BreakPartition(p int) { b.set(p, true) }
func (b *breakable) HealPartition(p int)  { b.set(p, false) }

// conformance runs the suite on stores over c whose partitions can be broken.
func conformance(t *testing.T, c redis.UniversalClient) {
	hook := addFaultHook(c)
	var n atomic.Int64 // a subtest may make several stores: each gets its own prefix
	storetest.Run(t, func(t *testing.T) switchboard.Store {
		p := fmt.Sprintf("%s:%d", prefix(t), n.Add(1))
		st, err := redisstore.New(c, redisstore.Options{KeyPrefix: p})
		if err != nil {
			t.Fatal(err)
		}
		return &breakable{Store: st, hook: hook, prefix: p}
	})
}

// newManager returns a Manager over a redisstore on c; both are closed when
// the test ends.
func newManager(tb testing.TB, c redis.UniversalClient, opts redisstore.Options, cfg switchboard.Config) *switchboard.Manager {
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
	conformance(t, standaloneClient(t, srv.Addr, true))
}

// TestConformanceStandaloneNoDeadlines runs the suite through a client with
// go-redis' default of ignoring context deadlines: the Store bounds the
// calls itself.
func TestConformanceStandaloneNoDeadlines(t *testing.T) {
	srv := redistest.Start(t)
	conformance(t, standaloneClient(t, srv.Addr, false))
}

func TestConformanceCluster(t *testing.T) {
	cl := redistest.StartCluster(t)
	conformance(t, clusterClient(t, cl.Addrs()))
}

func TestOptions(t *testing.T) {
	srv := redistest.Start(t)
	c := standaloneClient(t, srv.Addr, true)
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

// commandCounter is a go-redis hook counting the round trips the client
// makes: each command, and each pipeline as one.
type commandCounter struct{ n atomic.Int64 }

func (c *commandCounter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *commandCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { c.n.Add(1); return next(ctx, cmd) }
}
func (c *commandCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { c.n.Add(1); return next(ctx, cmds) }
}

// TestOneRoundTripPerOperation: every operation is one round trip, except
// a Resolve that finds no fresh, valid record of its own key (two: the
// plain read, then the script).
func TestOneRoundTripPerOperation(t *testing.T) {
	for _, mode := range []string{"standalone", "cluster"} {
		t.Run(mode, func(t *testing.T) {
			var c redis.UniversalClient
			if mode == "standalone" {
				c = standaloneClient(t, redistest.Start(t).Addr, true)
			} else {
				c = clusterClient(t, redistest.StartCluster(t).Addrs())
			}
			counter := &commandCounter{}
			c.AddHook(counter)
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
					before := counter.n.Load()
					if err := ops[name](i); err != nil && !errors.Is(err, switchboard.ErrConflict) {
						t.Fatalf("%s: %v", name, err)
					}
					want := int64(1)
					if name == "Resolve miss" || name == "Resolve past it" {
						want = 2 // the plain read that finds no fresh, valid record, then the script
					}
					if got := counter.n.Load() - before; got != want {
						t.Fatalf("%s took %d round trips, want %d", name, got, want)
					}
				}
			}
			before := counter.n.Load()
			if _, err := m.Prune(ctx); err != nil {
				t.Fatal(err)
			}
			if got := counter.n.Load() - before; got != 4 {
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
	c := standaloneClient(t, srv.Addr, true)
	m := newManager(t, c, redisstore.Options{KeyPrefix: "exp", ExpiryGrace: 30 * time.Second},
		switchboard.Config{PartitionCount: 1, TTL: 10 * time.Minute})
	ctx := context.Background()
	k := switchboard.SessionKey{ChannelType: "c", BridgeID: "b", RoomID: "r"}
	if err := m.Set(ctx, k, switchboard.Route{ExternalRoomID: "x"}, switchboard.WithTTL(time.Minute)); err != nil {
		t.Fatal(err)
	}
	ttl, err := c.PTTL(ctx, "{exp:0}:r:"+k.String()).Result()
	if err != nil {
		t.Fatal(err)
	}
	if ttl <= time.Minute || ttl > time.Minute+30*time.Second+time.Second {
		t.Fatalf("Redis expiry of the record = %v, want about 1m30s", ttl)
	}
}

// TestConformanceSentinel runs the suite through a Sentinel-backed client
// (redis.NewFailoverClient), as a Sentinel deployment uses it.
func TestConformanceSentinel(t *testing.T) {
	s := redistest.StartSentinel(t)
	c := redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName: s.MasterName, SentinelAddrs: []string{s.Sentinel.Addr},
		DialTimeout: 200 * time.Millisecond, ReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond,
		MaxRetries: 1, ContextTimeoutEnabled: true,
	})
	t.Cleanup(func() { _ = c.Close() })
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
	c := standaloneClient(t, redistest.Start(t).Addr, true)
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
