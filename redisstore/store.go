package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard-go/switchboard"
)

// Options configures a Store. The zero value means all defaults; New does
// not change the caller's struct.
type Options struct {
	// KeyPrefix namespaces one Switchboard instance in a Redis database or
	// cluster: every key of partition p starts with the hash tag
	// "{<KeyPrefix>:<p>}". Managers that must share state use the same
	// prefix; instances that must not, different ones. It may not contain
	// '{' or '}'. Default: "sb".
	KeyPrefix string
	// OpTimeout bounds every store call, whatever the client's own timeouts:
	// a partition whose node does not answer within it is reported as
	// switchboard.ErrPartitionUnavailable. Between 1ms and 1s. Default:
	// 500ms.
	OpTimeout time.Duration
	// ExpiryGrace is how long after a record's ExpiresAt Redis itself
	// deletes it (its key gets a Redis expiry of the remaining TTL plus
	// this), so nothing outlives its time if pruning stops; it also absorbs
	// clock differences between processes. Default: 1m.
	ExpiryGrace time.Duration
}

// Defaults of Options.
const (
	DefaultKeyPrefix   = "sb"
	DefaultOpTimeout   = 500 * time.Millisecond
	DefaultExpiryGrace = time.Minute
)

// Store is a switchboard.Store that keeps route state in Redis. It is safe
// for concurrent use. Create it with New and hand it to switchboard.New
// with switchboard.WithStore; the Manager closes it. Closing it does not
// close the client.
type Store struct {
	client redis.UniversalClient
	opts   Options
	guard  bool // the client ignores context deadlines: calls are bounded here
	tags   []string
	limit  int
	inited atomic.Bool
	closed atomic.Bool
	calls  sync.WaitGroup // guarded calls still running after their caller gave up
}

var _ switchboard.Store = (*Store)(nil)

// New returns a Store on client, which may be a *redis.Client (standalone
// or Sentinel, via redis.NewFailoverClient), a *redis.ClusterClient or any
// other redis.UniversalClient. The caller keeps ownership of the client.
//
// Timeouts: give the client short timeouts and ContextTimeoutEnabled, for
// example DialTimeout and ReadTimeout 200ms, MaxRetries 1 and (for a
// cluster) MaxRedirects 1, so that a node that is down is reported quickly
// and its connections do not pile up. With ContextTimeoutEnabled false
// (go-redis' default) the client does not honour deadlines; the Store then
// runs each call in a goroutine and stops waiting for it after OpTimeout,
// and the abandoned call ends when the client's own timeouts say so.
func New(client redis.UniversalClient, opts Options) (*Store, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: redisstore: nil client", switchboard.ErrInvalidConfig)
	}
	if opts.KeyPrefix == "" {
		opts.KeyPrefix = DefaultKeyPrefix
	}
	if strings.ContainsAny(opts.KeyPrefix, "{}") {
		return nil, fmt.Errorf("%w: redisstore: KeyPrefix %q may not contain '{' or '}'", switchboard.ErrInvalidConfig, opts.KeyPrefix)
	}
	switch {
	case opts.OpTimeout == 0:
		opts.OpTimeout = DefaultOpTimeout
	case opts.OpTimeout < time.Millisecond || opts.OpTimeout > time.Second:
		return nil, fmt.Errorf("%w: redisstore: OpTimeout %v must be between 1ms and 1s", switchboard.ErrInvalidConfig, opts.OpTimeout)
	}
	switch {
	case opts.ExpiryGrace == 0:
		opts.ExpiryGrace = DefaultExpiryGrace
	case opts.ExpiryGrace < 0:
		return nil, fmt.Errorf("%w: redisstore: ExpiryGrace %v must not be negative", switchboard.ErrInvalidConfig, opts.ExpiryGrace)
	}
	return &Store{client: client, opts: opts, guard: !honoursDeadlines(client)}, nil
}

func honoursDeadlines(c redis.UniversalClient) bool {
	switch c := c.(type) {
	case *redis.Client:
		return c.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		return c.Options().ContextTimeoutEnabled
	case *redis.Ring:
		return c.Options().ContextTimeoutEnabled
	}
	return false
}

// Init implements switchboard.Store.
func (s *Store) Init(cfg switchboard.StoreConfig) error {
	if !s.inited.CompareAndSwap(false, true) {
		return errors.New("redisstore: already serving a Manager")
	}
	if cfg.PartitionCount <= 0 || cfg.MaxEntriesPerPartition <= 0 {
		return fmt.Errorf("%w: redisstore: partition count %d and capacity %d must be positive",
			switchboard.ErrInvalidConfig, cfg.PartitionCount, cfg.MaxEntriesPerPartition)
	}
	s.tags = make([]string, cfg.PartitionCount)
	for p := range s.tags {
		s.tags[p] = "{" + s.opts.KeyPrefix + ":" + strconv.Itoa(p) + "}"
	}
	s.limit = cfg.MaxEntriesPerPartition
	return nil
}

// keys returns the script keys and record-key prefix of partition p.
func (s *Store) keys(p int) ([]string, string, error) {
	if p < 0 || p >= len(s.tags) {
		return nil, "", fmt.Errorf("redisstore: partition %d out of range (%d partitions)", p, len(s.tags))
	}
	tag := s.tags[p]
	return []string{tag + ":o", tag + ":e", tag + ":s"}, tag + ":r:", nil
}

// run runs script on partition p in one round trip, bounded by OpTimeout.
func (s *Store) run(ctx context.Context, p int, script *redis.Script, args ...any) ([]any, error) {
	if s.closed.Load() {
		return nil, switchboard.ErrClosed
	}
	keys, prefix, err := s.keys(p)
	if err != nil {
		return nil, err
	}
	argv := append([]any{prefix}, args...)
	ctx, cancel := context.WithTimeout(ctx, s.opts.OpTimeout)
	defer cancel()
	var reply any
	err = s.bounded(ctx, func(ctx context.Context) error {
		var err error
		reply, err = script.Run(ctx, s.client, keys, argv...).Result()
		return err
	})
	if err != nil {
		return nil, s.unavailable(p, err)
	}
	vals, ok := reply.([]any)
	if !ok {
		return nil, fmt.Errorf("redisstore: partition %d: unexpected script reply %T", p, reply)
	}
	return vals, nil
}

// bounded calls fn, returning when it does or when ctx is done, whichever
// comes first (see New on clients that ignore deadlines).
func (s *Store) bounded(ctx context.Context, fn func(context.Context) error) error {
	if !s.guard {
		return fn(ctx)
	}
	done := make(chan error, 1)
	s.calls.Add(1)
	go func() {
		defer s.calls.Done()
		done <- fn(ctx)
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// unavailable wraps a failed call: everything but an error reply of the
// script itself means the partition could not be reached in time.
func (s *Store) unavailable(p int, err error) error {
	var rerr redis.Error
	if errors.As(err, &rerr) {
		msg := rerr.Error()
		for _, transient := range []string{"CLUSTERDOWN", "TRYAGAIN", "LOADING", "MASTERDOWN", "READONLY", "MOVED", "ASK", "NOREPLICAS"} {
			if strings.HasPrefix(msg, transient) {
				return fmt.Errorf("%w: partition %d: %w", switchboard.ErrPartitionUnavailable, p, err)
			}
		}
		return fmt.Errorf("redisstore: partition %d: %w", p, err)
	}
	return fmt.Errorf("%w: partition %d: %w", switchboard.ErrPartitionUnavailable, p, err)
}

// stamp formats unix nanoseconds as the scripts compare them.
func stamp(t time.Time) string { return fmt.Sprintf("%020d", t.UnixNano()) }

func millis(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// redisTTL is the Redis expiry, in milliseconds, of a record fresh from now
// until expires.
func (s *Store) redisTTL(now, expires time.Time) string {
	return strconv.FormatInt((expires.Sub(now) + s.opts.ExpiryGrace + time.Millisecond - 1).Milliseconds(), 10)
}

func parseStamp(v any) (time.Time, error) {
	str, _ := v.(string)
	n, err := strconv.ParseInt(str, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("redisstore: bad timestamp %q", str)
	}
	return time.Unix(0, n), nil
}

// record decodes the u, e, r fields a script returned.
func record(u, e, r any) (switchboard.Record, error) {
	var rec switchboard.Record
	var err error
	if rec.UpdatedAt, err = parseStamp(u); err != nil {
		return rec, err
	}
	if rec.ExpiresAt, err = parseStamp(e); err != nil {
		return rec, err
	}
	raw, _ := r.(string)
	if err := json.Unmarshal([]byte(raw), &rec.Route); err != nil {
		return rec, fmt.Errorf("redisstore: bad stored route: %w", err)
	}
	return rec, nil
}

func integer(v any) int {
	n, _ := v.(int64)
	return int(n)
}

// Get implements switchboard.Store.
func (s *Store) Get(ctx context.Context, key switchboard.StoreKey, now time.Time) (switchboard.Record, error) {
	vals, err := s.run(ctx, key.Partition, getScript, key.Key.String(), stamp(now))
	if err != nil {
		return switchboard.Record{}, err
	}
	switch status, _ := vals[0].(string); status {
	case "fresh":
		if len(vals) < 4 {
			return switchboard.Record{}, fmt.Errorf("redisstore: short reply %v", vals)
		}
		return record(vals[1], vals[2], vals[3])
	case "expired":
		return switchboard.Record{}, switchboard.ErrExpired
	default:
		return switchboard.Record{}, switchboard.ErrNotFound
	}
}

// Set implements switchboard.Store.
func (s *Store) Set(ctx context.Context, key switchboard.StoreKey, rec switchboard.Record) (switchboard.SetResult, error) {
	route, err := json.Marshal(rec.Route)
	if err != nil {
		return switchboard.SetResult{}, fmt.Errorf("redisstore: encode route: %w", err)
	}
	vals, err := s.run(ctx, key.Partition, setScript, key.Key.String(), stamp(rec.UpdatedAt), stamp(rec.ExpiresAt),
		millis(rec.ExpiresAt), route, s.redisTTL(rec.UpdatedAt, rec.ExpiresAt), s.limit)
	if err != nil {
		return switchboard.SetResult{}, err
	}
	return switchboard.SetResult{Evicted: integer(vals[0]), Size: integer(vals[1])}, nil
}

// Resolve implements switchboard.Store.
func (s *Store) Resolve(ctx context.Context, req switchboard.ResolveRequest) (switchboard.ResolveResult, error) {
	var fallback []byte
	if req.Fallback.ExternalRoomID != "" {
		var err error
		if fallback, err = json.Marshal(req.Fallback); err != nil {
			return switchboard.ResolveResult{}, fmt.Errorf("redisstore: encode fallback: %w", err)
		}
	}
	room := ""
	if req.Key.Key.ThreadID != "" {
		room = req.Room.Key.String()
	}
	vals, err := s.run(ctx, req.Key.Partition, resolveScript, req.Key.Key.String(), room, stamp(req.Now),
		stamp(req.ExpiresAt), millis(req.ExpiresAt), s.redisTTL(req.Now, req.ExpiresAt), fallback, s.limit)
	if err != nil {
		return switchboard.ResolveResult{}, err
	}
	if len(vals) < 8 {
		return switchboard.ResolveResult{}, fmt.Errorf("redisstore: short reply %v", vals)
	}
	source, _ := vals[0].(string)
	res := switchboard.ResolveResult{
		Source:       switchboard.Source(source),
		ExactExpired: integer(vals[4]) == 1,
		RoomExpired:  integer(vals[5]) == 1,
		Evicted:      integer(vals[6]),
		Size:         integer(vals[7]),
	}
	if source != "" {
		if res.Record, err = record(vals[1], vals[2], vals[3]); err != nil {
			return switchboard.ResolveResult{}, err
		}
	}
	return res, nil
}

// Delete implements switchboard.Store.
func (s *Store) Delete(ctx context.Context, key switchboard.StoreKey) (int, error) {
	vals, err := s.run(ctx, key.Partition, deleteScript, key.Key.String())
	if err != nil {
		return 0, err
	}
	if integer(vals[0]) == 0 {
		return integer(vals[1]), switchboard.ErrNotFound
	}
	return integer(vals[1]), nil
}

// Prune implements switchboard.Store.
func (s *Store) Prune(ctx context.Context, partition int, now time.Time) (switchboard.PruneStats, error) {
	vals, err := s.run(ctx, partition, pruneScript, stamp(now), millis(now))
	if err != nil {
		return switchboard.PruneStats{}, err
	}
	return switchboard.PruneStats{Pruned: integer(vals[0]), Size: integer(vals[1])}, nil
}

// Stat implements switchboard.Store. Owner is the address of the node that
// serves the partition's slot; Available is the result of a real call to
// it (ZCARD of the partition, which also gives Entries).
func (s *Store) Stat(ctx context.Context, partition int) (switchboard.StoreStatus, error) {
	if s.closed.Load() {
		return switchboard.StoreStatus{}, switchboard.ErrClosed
	}
	keys, _, err := s.keys(partition)
	if err != nil {
		return switchboard.StoreStatus{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.OpTimeout)
	defer cancel()
	st := switchboard.StoreStatus{Owner: s.owner(ctx, keys[0])}
	var n int64
	var laddr string
	if err := s.bounded(ctx, func(ctx context.Context) error {
		if st.Owner != failoverAddr {
			var err error
			n, err = s.client.ZCard(ctx, keys[0]).Result()
			return err
		}
		// A Sentinel-backed client does not say which master it talks to;
		// the master does (CLIENT INFO's laddr), in the same round trip.
		var card *redis.IntCmd
		var info *redis.Cmd
		if _, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			card = p.ZCard(ctx, keys[0])
			info = p.Do(ctx, "CLIENT", "INFO")
			return nil
		}); err != nil {
			return err
		}
		n = card.Val()
		text, _ := info.Text()
		laddr = fieldOf(text, "laddr")
		return nil
	}); err != nil {
		return st, nil // unreachable: Available stays false
	}
	if laddr != "" {
		st.Owner = laddr
	}
	st.Available, st.Entries = true, int(n)
	return st, nil
}

// failoverAddr is what a Sentinel-backed *redis.Client reports as its
// address.
const failoverAddr = "FailoverClient"

// fieldOf returns the value of name in a "k=v k=v" line.
func fieldOf(line, name string) string {
	for _, f := range strings.Fields(line) {
		if k, v, ok := strings.Cut(f, "="); ok && k == name {
			return v
		}
	}
	return ""
}

// owner returns the address of the node serving key.
func (s *Store) owner(ctx context.Context, key string) string {
	switch c := s.client.(type) {
	case *redis.ClusterClient:
		node, err := c.MasterForKey(ctx, key)
		if err != nil {
			return ""
		}
		return node.Options().Addr
	case *redis.Client:
		return c.Options().Addr
	}
	return ""
}

// Close implements switchboard.Store: it waits for abandoned calls to end
// (see New). It does not close the client.
func (s *Store) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return switchboard.ErrClosed
	}
	s.calls.Wait()
	return nil
}
