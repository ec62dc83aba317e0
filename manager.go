package switchboard

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Manager is the route-state manager: it stores the last known route per
// session key, keeps it fresh (TTL) and bounded (per-partition capacity),
// and resolves routes deterministically. It is safe for concurrent use by
// many goroutines. Create one with New and stop it with Close.
type Manager struct {
	cfg      Config
	seed     maphash.Seed // index-hash seed, see keyHashes
	store    Store
	mem      *MemoryStore     // store, when it is a MemoryStore: hits then skip the interface and its copies
	clock    func() time.Time // WithClock; nil means coarse
	coarse   *coarseClock
	observer Observer
	logger   *slog.Logger

	closed    atomic.Bool
	stopBG    context.CancelFunc // ends the background goroutines
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// Option configures a Manager with a collaborator that is not plain data.
type Option func(*options)

type options struct {
	store    Store
	clock    func() time.Time
	observer Observer
	logger   *slog.Logger
}

// WithStore makes the Manager keep its state in s instead of a new
// MemoryStore. The Manager takes ownership of s: it calls s.Init in New and
// s.Close in Close.
func WithStore(s Store) Option { return func(o *options) { o.store = s } }

// WithClock makes the Manager read the time from now instead of the system
// clock, for tests and simulations. now must be safe for concurrent use.
func WithClock(now func() time.Time) Option { return func(o *options) { o.clock = now } }

// WithObserver sends the Manager's telemetry events to o.
func WithObserver(o Observer) Option { return func(opts *options) { opts.observer = o } }

// WithLogger makes the Manager log background failures (such as a failed
// background prune) to l. Default: slog.Default() at the time New is called.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// New returns a Manager with the effective configuration MergeConfig(cfg)
// (so a zero Config means all defaults), keeping its state in a new
// MemoryStore unless WithStore is given. It starts the background pruning
// (and, without WithClock, the coarse clock); Close stops them.
func New(cfg Config, opts ...Option) (*Manager, error) {
	eff, err := MergeConfig(cfg)
	if err != nil {
		return nil, err
	}
	var o options
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if o.store == nil {
		o.store = NewMemoryStore()
	}
	if o.logger == nil {
		o.logger = slog.Default()
	}
	seed := maphash.MakeSeed()
	if err := o.store.Init(StoreConfig{PartitionCount: eff.PartitionCount, MaxEntriesPerPartition: eff.MaxEntriesPerPartition, seed: seed}); err != nil {
		return nil, fmt.Errorf("switchboard: init store: %w", err)
	}
	m := &Manager{
		cfg:      eff,
		seed:     seed,
		store:    o.store,
		clock:    o.clock,
		observer: o.observer,
		logger:   o.logger,
	}
	m.mem, _ = o.store.(*MemoryStore)
	// The background goroutines belong to the Manager, not to any caller:
	// their context is ended by Close.
	bg, stop := context.WithCancel(context.Background())
	m.stopBG = stop
	if m.clock == nil {
		m.coarse = newCoarseClock()
		m.wg.Go(func() { m.coarse.run(bg.Done()) })
	}
	m.wg.Go(func() { m.pruneLoop(bg) })
	return m, nil
}

// Config returns the effective configuration (defaults merged with the
// Config given to New).
func (m *Manager) Config() Config { return m.cfg }

// PartitionCount returns the number of partitions.
func (m *Manager) PartitionCount() int { return m.cfg.PartitionCount }

// RoutePartition returns the partition of key:
// JumpHash(xxhash64(ChannelType + "\x00" + BridgeID + "\x00" + RoomID),
// PartitionCount). It depends only on the room scope, so a thread lives in
// the partition of its room, and it is the same in every process and
// release. It does not validate key.
func (m *Manager) RoutePartition(key SessionKey) int {
	return jumpHash(roomHash(key), m.cfg.PartitionCount)
}

// now returns the Manager's time in unix nanoseconds.
func (m *Manager) now() int64 {
	if m.clock != nil {
		return m.clock().UnixNano()
	}
	return m.coarse.now()
}

// prepare validates key, checks the Manager and ctx, and computes the
// key's store form and its encoding in buf (enc, nil if it does not fit).
func (m *Manager) prepare(ctx context.Context, key SessionKey, buf *[keyBufSize]byte) (sk StoreKey, enc []byte, err error) {
	if err := key.Validate(); err != nil {
		return sk, nil, err
	}
	if m.closed.Load() {
		return sk, nil, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return sk, nil, err
	}
	room, full, enc := keyHashes(key, &m.seed, buf)
	return StoreKey{Key: key, Partition: jumpHash(room, m.cfg.PartitionCount), Hash: full}, enc, nil
}

// storeErr turns a Store error into the Manager's: the caller's context
// error when ctx is done, the flow-control sentinels as they are, anything
// else wrapped with the operation and key.
func storeErr(ctx context.Context, op string, key SessionKey, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrExpired) || errors.Is(err, ErrClosed) {
		return err
	}
	return fmt.Errorf("%s %s: %w", op, key, err)
}

func (m *Manager) emit(e Event) {
	if m.observer != nil {
		m.observer.Observe(e)
	}
}

// SetOption adjusts one Set call. The zero SetOption changes nothing.
type SetOption struct {
	ttl time.Duration
	set bool
}

// TTL returns the TTL the option sets and whether it sets one (for code
// that forwards options, such as an HTTP client).
func (o SetOption) TTL() (time.Duration, bool) { return o.ttl, o.set }

// WithTTL makes the stored route fresh for d instead of the configured TTL.
// d must be positive and at most MaxTTL, or Set returns ErrInvalidTTL.
func WithTTL(d time.Duration) SetOption { return SetOption{ttl: d, set: true} }

// Set stores r as the route of key, fresh for the configured TTL (or the
// WithTTL value) from now, and makes key the most recently written record
// of its partition; least recently written records are evicted if the
// partition is then over capacity. An invalid key, route or TTL is an error
// (ErrInvalidSessionKey, ErrInvalidRoute, ErrInvalidTTL) and stores nothing.
func (m *Manager) Set(ctx context.Context, key SessionKey, r Route, opts ...SetOption) error {
	var buf [keyBufSize]byte
	sk, enc, err := m.prepare(ctx, key, &buf)
	if err != nil {
		return err
	}
	if err := r.Validate(); err != nil {
		return err
	}
	ttl := m.cfg.TTL
	for _, o := range opts {
		if !o.set {
			continue
		}
		if o.ttl <= 0 || o.ttl > MaxTTL {
			return fmt.Errorf("%w: %v must be positive and at most %v", ErrInvalidTTL, o.ttl, MaxTTL)
		}
		ttl = o.ttl
	}
	now := m.now()
	var res SetResult
	if m.mem != nil {
		res.Evicted, res.Size, err = m.mem.set(&sk, enc, &r, now, now+int64(ttl))
	} else {
		t := time.Unix(0, now)
		res, err = m.store.Set(ctx, sk, Record{Route: r, UpdatedAt: t, ExpiresAt: t.Add(ttl)})
	}
	if err != nil {
		return storeErr(ctx, "set", key, err)
	}
	if m.observer != nil {
		m.observer.Observe(Event{Kind: EventSet, Partition: sk.Partition, SessionKey: key, Count: res.Evicted, Size: res.Size})
		m.emitEvicted(sk.Partition, res.Evicted, res.Size)
	}
	return nil
}

func (m *Manager) emitEvicted(p, n, size int) {
	if n > 0 {
		m.emit(Event{Kind: EventEvicted, Partition: p, EvictionReason: EvictionCapacity, Count: n, Size: size})
	}
}

// Get returns the fresh record of key. An expired record is deleted and
// reported as ErrExpired (the next Get reports ErrNotFound); an absent one
// is ErrNotFound; an unreachable partition is ErrPartitionUnavailable.
func (m *Manager) Get(ctx context.Context, key SessionKey) (Record, error) {
	var buf [keyBufSize]byte
	sk, enc, err := m.prepare(ctx, key, &buf)
	if err != nil {
		return Record{}, err
	}
	var rec Record
	if m.mem != nil {
		err = m.mem.get(&sk, enc, m.now(), &rec)
	} else {
		rec, err = m.store.Get(ctx, sk, time.Unix(0, m.now()))
	}
	if err != nil {
		if errors.Is(err, ErrExpired) {
			m.emit(Event{Kind: EventStale, Partition: sk.Partition, SessionKey: key, Stale: true, Size: -1})
		}
		return Record{}, storeErr(ctx, "get", key, err)
	}
	return rec, nil
}

// Resolve answers where the reply for key goes now, in one atomic step on
// the key's partition:
//
//  1. key has a fresh record: that route (SourceStateHit);
//  2. else, key has a ThreadID and its room has a fresh record: the room's
//     route, which is also stored under key (SourcePartitionFallback,
//     reason ReasonStale if key's own record was expired, else
//     ReasonThreadScopeMiss);
//  3. else the first valid fallback, which is also stored under key
//     (SourceProvidedFallback, reason ReasonStale if a record looked at was
//     expired, else ReasonMiss);
//  4. else ErrNoRoute.
//
// Fallbacks with an empty ExternalRoomID, or that fail Route.Validate, are
// skipped. Routes stored by Resolve get the configured TTL. When the
// partition is unreachable, Resolve answers with the first valid fallback
// (SourceProvidedFallback, ReasonSessionUnavailable, nothing stored) or,
// without one, ErrPartitionUnavailable. An invalid key is
// ErrInvalidSessionKey before anything else.
func (m *Manager) Resolve(ctx context.Context, key SessionKey, fallbacks ...Route) (out Resolution, err error) {
	var buf [keyBufSize]byte
	sk, enc, err := m.prepare(ctx, key, &buf)
	if err != nil {
		return Resolution{}, err
	}
	now := m.now()
	if m.mem != nil {
		if hit, size, err := m.mem.resolveHit(&sk, enc, now, &out.Route); err == nil && hit {
			out.ExternalRoomID, out.Partition, out.SessionKey, out.Source = out.Route.ExternalRoomID, sk.Partition, key, SourceStateHit
			if m.observer != nil {
				m.emitResolved(&out, OutcomeHit, size)
			}
			return out, nil
		}
		// Anything else takes the general path, which reports errors too.
	}
	return m.resolveStep(ctx, &sk, enc, now, fallbacks)
}

// resolveStep is Resolve past the MemoryStore fast path: one resolve step
// on the store, then the policy that turns its result into a Resolution.
func (m *Manager) resolveStep(ctx context.Context, sk *StoreKey, enc []byte, now int64, fallbacks []Route) (Resolution, error) {
	key := sk.Key
	fb := m.firstValid(ctx, key, fallbacks)
	t := time.Unix(0, now)
	room := StoreKey{Key: key.RoomScope(), Partition: sk.Partition, Hash: sk.Hash}
	if key.ThreadID != "" {
		room.Hash = roomIndexHash(key, enc, &m.seed)
	}
	req := ResolveRequest{Key: *sk, Room: room, Fallback: fb, Now: t, ExpiresAt: t.Add(m.cfg.TTL)}
	var res ResolveResult
	var err error
	if m.mem != nil {
		res, err = m.mem.resolveAfterMiss(&req)
	} else {
		res, err = m.store.Resolve(ctx, req)
	}
	if err != nil {
		if ctx.Err() == nil && fb.ExternalRoomID != "" && errors.Is(err, ErrPartitionUnavailable) {
			out := Resolution{
				ExternalRoomID: fb.ExternalRoomID, Route: fb.Clone(), Partition: sk.Partition, SessionKey: key,
				Source: SourceProvidedFallback, Fallback: true, FallbackReason: ReasonSessionUnavailable,
			}
			m.emitResolved(&out, OutcomeFallback, -1)
			return out, nil
		}
		return Resolution{}, storeErr(ctx, "resolve", key, err)
	}
	if m.observer != nil {
		if res.ExactExpired {
			m.observer.Observe(Event{Kind: EventStale, Partition: sk.Partition, SessionKey: key, Stale: true, Size: res.Size})
		}
		if res.RoomExpired {
			m.observer.Observe(Event{Kind: EventStale, Partition: sk.Partition, SessionKey: room.Key, Stale: true, Size: res.Size})
		}
		m.emitEvicted(sk.Partition, res.Evicted, res.Size)
	}
	out := Resolution{
		ExternalRoomID: res.Record.Route.ExternalRoomID, Route: res.Record.Route, Partition: sk.Partition,
		SessionKey: key, Source: res.Source,
	}
	switch res.Source {
	case SourceStateHit:
		m.emitResolved(&out, OutcomeHit, res.Size)
		return out, nil
	case SourcePartitionFallback:
		out.Stale = res.ExactExpired
		out.FallbackReason = ReasonThreadScopeMiss
	case SourceProvidedFallback:
		out.Stale = res.ExactExpired || res.RoomExpired
		out.FallbackReason = ReasonMiss
	case "":
		m.emit(Event{Kind: EventResolved, Partition: sk.Partition, SessionKey: key, Outcome: OutcomeMiss,
			Stale: res.ExactExpired || res.RoomExpired, Size: res.Size})
		return Resolution{}, ErrNoRoute
	default:
		return Resolution{}, fmt.Errorf("resolve %s: store returned unknown source %q", key, res.Source)
	}
	out.Fallback = true
	if out.Stale {
		out.FallbackReason = ReasonStale
	}
	m.emitResolved(&out, OutcomeFallback, res.Size)
	return out, nil
}

// firstValid returns the first fallback with an ExternalRoomID that passes
// Route.Validate, or the zero Route.
func (m *Manager) firstValid(ctx context.Context, key SessionKey, fallbacks []Route) Route {
	for i := range fallbacks {
		f := &fallbacks[i]
		if f.ExternalRoomID == "" {
			continue
		}
		if err := f.Validate(); err != nil {
			m.logger.LogAttrs(ctx, slog.LevelDebug, "switchboard: skipping invalid fallback",
				slog.String("key", key.String()), slog.Int("index", i), slog.String("error", err.Error()))
			continue
		}
		return *f
	}
	return Route{}
}

func (m *Manager) emitResolved(r *Resolution, outcome Outcome, size int) {
	if m.observer == nil {
		return
	}
	if r.Fallback {
		m.observer.Observe(Event{Kind: EventFallback, Partition: r.Partition, SessionKey: r.SessionKey,
			Source: r.Source, FallbackReason: r.FallbackReason, Stale: r.Stale, Size: size})
	}
	m.observer.Observe(Event{Kind: EventResolved, Partition: r.Partition, SessionKey: r.SessionKey, Outcome: outcome,
		Source: r.Source, FallbackReason: r.FallbackReason, Stale: r.Stale, Size: size})
}

// Delete removes the record of key, fresh or expired; ErrNotFound when
// there is none. It is an administrative operation (not in the seed API).
func (m *Manager) Delete(ctx context.Context, key SessionKey) error {
	var buf [keyBufSize]byte
	sk, _, err := m.prepare(ctx, key, &buf)
	if err != nil {
		return err
	}
	size, err := m.store.Delete(ctx, sk)
	if err != nil {
		return storeErr(ctx, "delete", key, err)
	}
	m.emit(Event{Kind: EventDeleted, Partition: sk.Partition, SessionKey: key, Size: size})
	return nil
}

// PruneResult is the outcome of Manager.Prune.
type PruneResult struct {
	Pruned     int // expired records deleted, over all partitions
	Partitions int // partitions pruned (all of them unless an error is returned)
}

// Prune deletes the expired records of every partition now, as the
// background pruning does every PruneInterval, and reports the total. When
// some partitions cannot be reached it still prunes the others and returns
// their result with an error joining each failed partition's error (each
// wrapping ErrPartitionUnavailable).
func (m *Manager) Prune(ctx context.Context) (PruneResult, error) {
	if m.closed.Load() {
		return PruneResult{}, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return PruneResult{}, err
	}
	now := time.Unix(0, m.now())
	var out PruneResult
	var errs []error
	for p := range m.cfg.PartitionCount {
		st, err := m.store.Prune(ctx, p, now)
		if err != nil {
			if cerr := ctx.Err(); cerr != nil {
				return out, cerr
			}
			if errors.Is(err, ErrClosed) {
				return out, ErrClosed
			}
			errs = append(errs, fmt.Errorf("prune partition %d: %w", p, err))
			continue
		}
		out.Pruned += st.Pruned
		out.Partitions++
		m.emit(Event{Kind: EventPruned, Partition: p, Count: st.Pruned, Size: st.Size})
	}
	return out, errors.Join(errs...)
}

func (m *Manager) pruneLoop(ctx context.Context) {
	t := time.NewTicker(m.cfg.PruneInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := m.Prune(ctx); err != nil && ctx.Err() == nil && !errors.Is(err, ErrClosed) {
			m.logger.LogAttrs(ctx, slog.LevelWarn, "switchboard: background prune", slog.String("error", err.Error()))
		}
	}
}

// PartitionStatus describes one partition: who serves it, whether it
// answers, and how full it is.
type PartitionStatus struct {
	Index     int
	Owner     string // "memory" in-process; the Redis node address ("host:port") otherwise
	Available bool
	Entries   int
	Capacity  int
}

// PartitionStatus reports on partition (0 ≤ partition < PartitionCount;
// otherwise an error wrapping ErrNotFound). An unreachable partition is
// reported with Available false, not as an error.
func (m *Manager) PartitionStatus(ctx context.Context, partition int) (PartitionStatus, error) {
	if partition < 0 || partition >= m.cfg.PartitionCount {
		return PartitionStatus{}, fmt.Errorf("partition %d: %w (have 0..%d)", partition, ErrNotFound, m.cfg.PartitionCount-1)
	}
	if m.closed.Load() {
		return PartitionStatus{}, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return PartitionStatus{}, err
	}
	st, err := m.store.Stat(ctx, partition)
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return PartitionStatus{}, cerr
		}
		return PartitionStatus{}, fmt.Errorf("partition %d: %w", partition, err)
	}
	return PartitionStatus{Index: partition, Owner: st.Owner, Available: st.Available, Entries: st.Entries,
		Capacity: m.cfg.MaxEntriesPerPartition}, nil
}

// Close stops the background work, waits for it to end and closes the
// Store. Every later call, Close included, returns ErrClosed.
func (m *Manager) Close() error {
	err := ErrClosed
	m.closeOnce.Do(func() {
		m.closed.Store(true)
		m.stopBG()
		m.wg.Wait()
		err = m.store.Close()
	})
	return err
}
