package switchboard

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"slices"
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
// clock, for tests and simulations. now must be safe for concurrent use
// (package manualclock has one that is).
func WithClock(now func() time.Time) Option { return func(o *options) { o.clock = now } }

// WithObserver sends the Manager's telemetry events to o.
func WithObserver(o Observer) Option { return func(opts *options) { opts.observer = o } }

// WithLogger makes the Manager log background failures (such as a failed
// background prune) to l. Default: slog.Default() at the time New is called.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// New returns a Manager with the effective configuration MergeConfig(cfg)
// (so a zero Config means all defaults), keeping its state in a new
// MemoryStore unless WithStore is given. It starts the background pruning
// (and, without WithClock, the coarse clock); Close stops them. An error
// from the Store's Init (such as a Redis prefix that holds another
// partition count) is returned wrapped, and New starts nothing.
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
	if err := o.store.Init(StoreConfig{PartitionCount: eff.PartitionCount, MaxEntriesPerPartition: eff.MaxEntriesPerPartition, HashSeed: seed}); err != nil {
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
		m.coarse = newCoarseClock(systemTicker{})
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

// live checks that the Manager is open and ctx is not done.
func (m *Manager) live(ctx context.Context) error {
	if m.closed.Load() {
		return ErrClosed
	}
	return ctx.Err()
}

// prepare validates key, checks the Manager and ctx, and computes the
// key's store form and its encoding (in buf when it fits).
func (m *Manager) prepare(ctx context.Context, key SessionKey, buf *[keyBufSize]byte) (sk StoreKey, enc []byte, err error) {
	enc, ok := encodeValid(key, buf) // the common case: validated while encoded
	if !ok {
		if err := key.Validate(); err != nil {
			return sk, nil, err
		}
		enc = encoded(key, buf)
	}
	if err := m.live(ctx); err != nil {
		return sk, nil, err
	}
	room, full := encodedHashes(key, enc, &m.seed)
	return StoreKey{Key: key, Partition: jumpHash(room, m.cfg.PartitionCount), Hash: full}, enc, nil
}

// opErr turns a Store error into the Manager's: the caller's context error
// when ctx is done, the flow-control sentinels as they are, anything else
// an *OpError.
func opErr(ctx context.Context, op string, key SessionKey, partition int, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	if err == ErrNotFound || err == ErrExpired || err == ErrClosed {
		return err
	}
	return &OpError{Op: op, Key: key, Partition: partition, Err: err}
}

func (m *Manager) emit(e Event) {
	if m.observer != nil {
		m.observer.Observe(e)
	}
}

// Set stores r as the route of key, fresh for the configured TTL (or the
// WithTTL value) from now, and makes key the most recently written record
// of its partition; least recently written records are evicted if the
// partition is then over capacity. The options make it conditional
// (IfRevision, IfAbsent: ErrConflict when the condition fails) and give it
// a priority (WithPriority: ErrSuperseded when a fresh, valid record of
// higher priority stands) and a writer label (WithWriter). Checks run in
// that order: validation, conditions, precedence. An invalid key, route,
// TTL or option is an error (ErrInvalidSessionKey, ErrInvalidRoute,
// ErrInvalidTTL, ErrInvalidOption) and stores nothing; so is a refused
// write.
func (m *Manager) Set(ctx context.Context, key SessionKey, r Route, opts ...SetOption) error {
	var buf [keyBufSize]byte
	sk, enc, err := m.prepare(ctx, key, &buf)
	if err != nil {
		return err
	}
	if err := r.Validate(); err != nil {
		return err
	}
	var o SetOptions
	if len(opts) > 0 {
		if o, err = ApplySetOptions(opts...); err != nil {
			return err
		}
	}
	ttl := m.cfg.TTL
	if o.TTL != 0 {
		ttl = o.TTL
	}
	now := m.now()
	var res SetResult
	if m.mem != nil {
		res, err = m.mem.set(&sk, enc, &r, now, now+int64(ttl), &o, originSetCode)
	} else {
		t := time.Unix(0, now)
		res, err = m.store.Set(ctx, SetRequest{
			Key:        sk,
			Record:     Record{Route: r, UpdatedAt: t, ExpiresAt: t.Add(ttl), Origin: OriginSet, Writer: o.Writer, Priority: o.Priority},
			IfRevision: o.IfRevision, IfAbsent: o.IfAbsent,
		})
	}
	if err != nil {
		return opErr(ctx, "set", key, sk.Partition, err)
	}
	switch res.Outcome {
	case SetStored:
	case SetSuperseded:
		m.emit(Event{Kind: EventSuperseded, Partition: sk.Partition, SessionKey: key, Size: res.Size, Revision: res.CurrentRevision})
		return &OpError{Op: "set", Key: key, Partition: sk.Partition, Err: fmt.Errorf(
			"%w: priority %d is below priority %d of the fresh record (revision %d)", ErrSuperseded, o.Priority, res.CurrentPriority, res.CurrentRevision)}
	default:
		m.emit(Event{Kind: EventConflict, Op: "set", Partition: sk.Partition, SessionKey: key, Size: res.Size, Revision: res.CurrentRevision})
		return &OpError{Op: "set", Key: key, Partition: sk.Partition, Err: conflictCause(&o, res.CurrentRevision)}
	}
	if m.observer != nil {
		m.observer.Observe(Event{Kind: EventSet, Partition: sk.Partition, SessionKey: key, Count: res.Evicted, Size: res.Size, Revision: res.Revision})
		m.emitEvicted(sk.Partition, res.Evicted, res.Size)
	}
	return nil
}

func conflictCause(o *SetOptions, current uint64) error {
	switch {
	case o.IfAbsent:
		return fmt.Errorf("%w: IfAbsent, but the key has a fresh record (revision %d)", ErrConflict, current)
	case current == 0:
		return fmt.Errorf("%w: IfRevision(%d), but the key has no fresh record", ErrConflict, o.IfRevision)
	default:
		return fmt.Errorf("%w: IfRevision(%d), but the fresh record has revision %d", ErrConflict, o.IfRevision, current)
	}
}

func (m *Manager) emitEvicted(p, n, size int) {
	if n > 0 {
		m.emit(Event{Kind: EventEvicted, Partition: p, EvictionReason: EvictionCapacity, Count: n, Size: size})
	}
}

// Get returns the fresh record of key. An expired record is deleted and
// reported as ErrExpired (the next Get reports ErrNotFound); an absent one
// is ErrNotFound; a tombstone (see Invalidate) is an error wrapping
// ErrInvalidated that has the reason; an unreachable partition is
// ErrPartitionUnavailable.
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
		return Record{}, opErr(ctx, "get", key, sk.Partition, err)
	}
	if rec.Invalidated != "" {
		return Record{}, &OpError{Op: "get", Key: key, Partition: sk.Partition,
			Err: fmt.Errorf("%w (revision %d): %s", ErrInvalidated, rec.Revision, rec.Invalidated)}
	}
	return rec, nil
}

// Resolve answers where the reply for key goes now, in one atomic step on
// the key's partition:
//
//  1. key has a fresh, valid record: that route (SourceStateHit);
//  2. else, key has a ThreadID and its room has a fresh, valid record: the
//     room's route, which is also stored under key (SourcePartitionFallback,
//     reason ReasonThreadScopeMiss);
//  3. else the first valid fallback, which is also stored under key
//     (SourceProvidedFallback, reason ReasonMiss);
//  4. else ErrNoRoute.
//
// A fallback's reason is ReasonStale instead when a record looked at was
// expired, else ReasonInvalidated when one was a tombstone (see
// Invalidate): Resolve never answers with a tombstone, nor with a room
// route or fallback whose target (Route.Target) equals that of a tombstone
// it looked at, and goes on to the next candidate.
//
// Fallbacks with an empty ExternalRoomID, or that fail Route.Validate, are
// skipped. Routes stored by Resolve get Config.ProvisionalTTL (by default
// the TTL), Priority 0 and no Writer, and are unconfirmed until Confirm.
// When the partition is unreachable, Resolve answers with the first valid
// fallback (SourceProvidedFallback, ReasonSessionUnavailable, nothing
// stored) or, without one, ErrPartitionUnavailable. An invalid key is
// ErrInvalidSessionKey before anything else.
func (m *Manager) Resolve(ctx context.Context, key SessionKey, fallbacks ...Route) (out Resolution, err error) {
	var buf [keyBufSize]byte
	sk, enc, err := m.prepare(ctx, key, &buf)
	if err != nil {
		return Resolution{}, err
	}
	now := m.now()
	if m.mem != nil {
		if hit, size, err := m.mem.resolveHit(&sk, enc, now, &out); err == nil && hit {
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

// resolveRequest builds the store request of a resolve step, without the
// fallbacks (see resolveStep for why).
func (m *Manager) resolveRequest(sk *StoreKey, enc []byte, now int64) ResolveRequest {
	key := sk.Key
	t := time.Unix(0, now)
	room := StoreKey{Key: key.RoomScope(), Partition: sk.Partition, Hash: sk.Hash}
	if key.ThreadID != "" {
		room.Hash = roomIndexHash(key, enc, &m.seed)
	}
	return ResolveRequest{Key: *sk, Room: room, Now: t, ExpiresAt: t.Add(m.cfg.EffectiveProvisionalTTL())}
}

// resolveStep is Resolve past the MemoryStore fast path: one resolve step
// on the store, then the policy that turns its result into a Resolution.
func (m *Manager) resolveStep(ctx context.Context, sk *StoreKey, enc []byte, now int64, fallbacks []Route) (Resolution, error) {
	key := sk.Key
	base := m.resolveRequest(sk, enc, now)
	cands := m.candidates(ctx, key, fallbacks)
	var res ResolveResult
	var err error
	if m.mem != nil {
		req := base
		req.Fallbacks = cands
		res, err = m.mem.resolveWrite(&req, enc)
	} else {
		// A Store behind the interface gets its own copy of the candidates,
		// so that the caller's fallbacks do not escape to the heap (and
		// cost an allocation) on every Resolve, hits included.
		req := base
		req.Fallbacks = slices.Clone(cands)
		res, err = m.store.Resolve(ctx, req)
	}
	if err != nil {
		if ctx.Err() == nil && len(cands) > 0 && (errors.Is(err, ErrPartitionUnavailable) || errors.Is(err, ErrStorageUnavailable)) {
			out := unavailableResolution(sk, cands[0])
			m.emitResolved(&out, OutcomeFallback, -1)
			return out, nil
		}
		return Resolution{}, opErr(ctx, "resolve", key, sk.Partition, err)
	}
	if m.observer != nil {
		if res.ExactExpired {
			m.observer.Observe(Event{Kind: EventStale, Partition: sk.Partition, SessionKey: key, Stale: true, Size: res.Size})
		}
		if res.RoomExpired {
			m.observer.Observe(Event{Kind: EventStale, Partition: sk.Partition, SessionKey: base.Room.Key, Stale: true, Size: res.Size})
		}
		m.emitEvicted(sk.Partition, res.Evicted, res.Size)
	}
	out, err := resolution(sk, &res)
	switch {
	case err == ErrNoRoute:
		m.emit(Event{Kind: EventResolved, Partition: sk.Partition, SessionKey: key, Outcome: OutcomeMiss,
			Stale: res.ExactExpired || res.RoomExpired, Size: res.Size})
		return Resolution{}, err
	case err != nil:
		return Resolution{}, err
	}
	outcome := OutcomeFallback
	if out.Source == SourceStateHit {
		outcome = OutcomeHit
	}
	m.emitResolved(&out, outcome, res.Size)
	return out, nil
}

// resolution turns a resolve step's result into the Resolution of Resolve
// (or ErrNoRoute): the reasons are policy, decided here once.
func resolution(sk *StoreKey, res *ResolveResult) (Resolution, error) {
	out := Resolution{
		ExternalRoomID: res.Record.Route.ExternalRoomID, Route: res.Record.Route, Partition: sk.Partition,
		SessionKey: sk.Key, Source: res.Source, Origin: res.Record.Origin, Writer: res.Record.Writer,
		Revision: res.Record.Revision, Confirmed: res.Record.Confirmed,
	}
	switch res.Source {
	case SourceStateHit:
		return out, nil
	case SourcePartitionFallback:
		out.FallbackReason = ReasonThreadScopeMiss
	case SourceProvidedFallback:
		out.FallbackReason = ReasonMiss
	case "":
		return Resolution{}, ErrNoRoute
	default:
		return Resolution{}, &OpError{Op: "resolve", Key: sk.Key, Partition: sk.Partition,
			Err: fmt.Errorf("%w: the store returned an unknown source %q", ErrPartitionUnavailable, res.Source)}
	}
	out.Fallback = true
	out.Stale = res.ExactExpired || res.RoomExpired
	switch {
	case out.Stale:
		out.FallbackReason = ReasonStale
	case res.Invalidated:
		out.FallbackReason = ReasonInvalidated
	}
	return out, nil
}

func unavailableResolution(sk *StoreKey, fb Route) Resolution {
	return Resolution{
		ExternalRoomID: fb.ExternalRoomID, Route: fb.Clone(), Partition: sk.Partition, SessionKey: sk.Key,
		Source: SourceProvidedFallback, Fallback: true, FallbackReason: ReasonSessionUnavailable,
	}
}

// candidates returns the fallbacks that count: those with an
// ExternalRoomID that pass Route.Validate, in order. When all do (the
// common case) it is fallbacks itself, and nothing is allocated.
func (m *Manager) candidates(ctx context.Context, key SessionKey, fallbacks []Route) []Route {
	skip := -1
	for i := range fallbacks {
		if !fallbackOK(&fallbacks[i]) {
			skip = i
			break
		}
	}
	if skip < 0 {
		return fallbacks
	}
	out := append(make([]Route, 0, len(fallbacks)-1), fallbacks[:skip]...)
	for i := skip; i < len(fallbacks); i++ {
		f := &fallbacks[i]
		if fallbackOK(f) {
			out = append(out, *f)
		} else if f.ExternalRoomID != "" {
			m.logger.LogAttrs(ctx, slog.LevelDebug, "switchboard: skipping invalid fallback",
				slog.String("key", key.String()), slog.Int("index", i), slog.String("error", f.Validate().Error()))
		}
	}
	return out
}

func fallbackOK(f *Route) bool { return f.ExternalRoomID != "" && f.Validate() == nil }

func (m *Manager) emitResolved(r *Resolution, outcome Outcome, size int) {
	if m.observer == nil {
		return
	}
	if r.Fallback {
		m.observer.Observe(Event{Kind: EventFallback, Partition: r.Partition, SessionKey: r.SessionKey,
			Source: r.Source, FallbackReason: r.FallbackReason, Stale: r.Stale, Size: size, Revision: r.Revision})
	}
	m.observer.Observe(Event{Kind: EventResolved, Partition: r.Partition, SessionKey: r.SessionKey, Outcome: outcome,
		Source: r.Source, FallbackReason: r.FallbackReason, Stale: r.Stale, Size: size, Revision: r.Revision})
}

// Confirm reports that a reply to key was delivered to delivered's target
// (its ExternalRoomID and ThreadID). If key's record is fresh, valid and
// has that target, it becomes Confirmed and is fresh again from now for
// its TTL (the TTL it was written with; for a route stored by Resolve, the
// configured TTL, however short Config.ProvisionalTTL is), the most
// recently written record of its partition, with a new revision; Confirm
// returns it. This is also the sliding expiry that keeps an active
// conversation's route alive. No fresh, valid record: ErrNotFound. A
// record with another target (a newer write changed the route) is an
// error wrapping ErrConflict and changes nothing.
func (m *Manager) Confirm(ctx context.Context, key SessionKey, delivered Route) (Record, error) {
	res, sk, err := m.feedback(ctx, "confirm", key, delivered, "")
	if err != nil {
		return Record{}, err
	}
	switch res.Outcome {
	case FeedbackNotFound:
		return Record{}, ErrNotFound
	case FeedbackConflict:
		return Record{}, m.targetConflict("confirm", sk, &res, delivered)
	}
	m.emit(Event{Kind: EventConfirmed, Partition: sk.Partition, SessionKey: key, Size: res.Size, Revision: res.Record.Revision})
	return res.Record, nil
}

// Invalidate reports that delivering a reply for key to failed's target
// did not work (the platform answered that the chat or thread is gone, the
// bot was removed, …), with reason: non-empty valid UTF-8 without control
// characters, at most MaxReasonLen bytes (else ErrInvalidOption). If key's
// record is fresh and has that target, it becomes a tombstone until its
// ExpiresAt: Get reports ErrInvalidated with the reason, Resolve goes on
// past it (and past every candidate with its target), and any Set or
// stored fallback replaces it. Invalidating a tombstone with that target
// again changes nothing and returns nil. No fresh record: ErrNotFound. A
// record with another target is an error wrapping ErrConflict.
func (m *Manager) Invalidate(ctx context.Context, key SessionKey, failed Route, reason string) error {
	res, sk, err := m.feedback(ctx, "invalidate", key, failed, reason)
	if err != nil {
		return err
	}
	switch res.Outcome {
	case FeedbackNotFound:
		return ErrNotFound
	case FeedbackConflict:
		return m.targetConflict("invalidate", sk, &res, failed)
	case FeedbackApplied:
		m.emit(Event{Kind: EventInvalidated, Partition: sk.Partition, SessionKey: key, Size: res.Size, Revision: res.Record.Revision})
	}
	return nil
}

func (m *Manager) feedback(ctx context.Context, op string, key SessionKey, r Route, reason string) (FeedbackResult, StoreKey, error) {
	var buf [keyBufSize]byte
	sk, _, err := m.prepare(ctx, key, &buf)
	if err != nil {
		return FeedbackResult{}, sk, err
	}
	if err := r.Validate(); err != nil {
		return FeedbackResult{}, sk, err
	}
	if op == "invalidate" {
		if err := CheckReason(reason); err != nil {
			return FeedbackResult{}, sk, err
		}
	}
	req := FeedbackRequest{Key: sk, Target: r.Target(), Now: time.Unix(0, m.now()), TTL: m.cfg.TTL, Reason: reason}
	var res FeedbackResult
	if op == "confirm" {
		res, err = m.store.Confirm(ctx, req)
	} else {
		res, err = m.store.Invalidate(ctx, req)
	}
	if err != nil {
		return FeedbackResult{}, sk, opErr(ctx, op, key, sk.Partition, err)
	}
	return res, sk, nil
}

func (m *Manager) targetConflict(op string, sk StoreKey, res *FeedbackResult, r Route) error {
	m.emit(Event{Kind: EventConflict, Op: op, Partition: sk.Partition, SessionKey: sk.Key, Size: res.Size, Revision: res.Record.Revision})
	return &OpError{Op: op, Key: sk.Key, Partition: sk.Partition, Err: fmt.Errorf(
		"%w: the record (revision %d) delivers to %s, not %s", ErrConflict, res.Record.Revision, targetString(res.Record.Route.Target()), targetString(r.Target()))}
}

func targetString(t Target) string {
	if t.ThreadID == "" {
		return fmt.Sprintf("%q", t.ExternalRoomID)
	}
	return fmt.Sprintf("%q thread %q", t.ExternalRoomID, t.ThreadID)
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
		return opErr(ctx, "delete", key, sk.Partition, err)
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
// an *OpError wrapping ErrPartitionUnavailable).
func (m *Manager) Prune(ctx context.Context) (PruneResult, error) {
	if err := m.live(ctx); err != nil {
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
			errs = append(errs, &OpError{Op: "prune", Partition: p, Err: err})
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

// List returns up to limit fresh records matching f (1 ≤ limit ≤
// MaxListLimit; 0 means DefaultListLimit), starting at cursor ("" for the
// start), and the cursor of the next page ("" when there is none).
// Partitions are listed in order, each in an order its Store keeps stable;
// every record that exists and matches during the whole scan is returned
// exactly once across the pages (a record written meanwhile may be missed
// or, on some backends, seen twice), and expired records never. Tombstones
// are listed only by a Filter with Invalidated. A bad filter, limit or
// cursor (one List did not return, or of another partition count) is an
// error wrapping ErrInvalidOption. The Store holds a partition's lock for
// a bounded batch only, so serving goes on while an operator lists.
func (m *Manager) List(ctx context.Context, f Filter, limit int, cursor string) (entries []Entry, next string, err error) {
	if err := m.live(ctx); err != nil {
		return nil, "", err
	}
	if err := f.Validate(); err != nil {
		return nil, "", err
	}
	switch {
	case limit == 0:
		limit = DefaultListLimit
	case limit < 0 || limit > MaxListLimit:
		return nil, "", fmt.Errorf("%w: limit %d must be between 1 and %d", ErrInvalidOption, limit, MaxListLimit)
	}
	c, err := parseCursor(cursor, m.cfg.PartitionCount)
	if err != nil {
		return nil, "", err
	}
	now := time.Unix(0, m.now())
	for p, after := c.partition, c.pos; p < m.cfg.PartitionCount; p, after = p+1, 0 {
		for {
			res, err := m.store.Scan(ctx, ScanRequest{Partition: p, After: after, Limit: limit - len(entries), Filter: f, Now: now})
			if err != nil {
				return nil, "", opErr(ctx, "list", SessionKey{}, p, err)
			}
			entries = append(entries, res.Entries...)
			after = res.Next
			if len(entries) >= limit {
				switch {
				case !res.Done:
					return entries, m.cursor(p, after), nil
				case p+1 < m.cfg.PartitionCount:
					return entries, m.cursor(p+1, 0), nil
				}
				return entries, "", nil
			}
			if res.Done {
				break
			}
		}
	}
	return entries, "", nil
}

func (m *Manager) cursor(partition int, pos uint64) string {
	return cursor{partitions: m.cfg.PartitionCount, partition: partition, pos: pos}.String()
}

// DeleteMatching deletes every fresh record that matches f now, partition
// by partition, emits a deleted event for each and returns how many
// matched and were deleted, with a sample of their keys. With dryRun it
// changes nothing and reports exactly what the real run would match at
// that moment. A zero Filter matches every valid record: allowed with
// dryRun, refused (ErrInvalidOption) without it, so nobody deletes
// everything by accident. When some partitions cannot be reached the
// others are still done, and the error joins each failed partition's.
func (m *Manager) DeleteMatching(ctx context.Context, f Filter, dryRun bool) (DeleteResult, error) {
	if err := m.live(ctx); err != nil {
		return DeleteResult{}, err
	}
	if err := f.Validate(); err != nil {
		return DeleteResult{}, err
	}
	if f.IsZero() && !dryRun {
		return DeleteResult{}, fmt.Errorf("%w: a delete with an empty filter would delete every route; give a filter (or use a dry run)", ErrInvalidOption)
	}
	now := time.Unix(0, m.now())
	var out DeleteResult
	var errs []error
	for p := range m.cfg.PartitionCount {
		st, err := m.store.DeleteMatching(ctx, DeleteRequest{Partition: p, Filter: f, Now: now, DryRun: dryRun})
		if err != nil {
			if cerr := ctx.Err(); cerr != nil {
				return out, cerr
			}
			if errors.Is(err, ErrClosed) {
				return out, ErrClosed
			}
			errs = append(errs, &OpError{Op: "delete-matching", Partition: p, Err: err})
			continue
		}
		out.Matched += st.Matched
		out.Deleted += st.Deleted
		for _, k := range st.Keys {
			if len(out.Sample) < MaxDeleteSample {
				out.Sample = append(out.Sample, k)
			}
			if !dryRun {
				m.emit(Event{Kind: EventDeleted, Partition: p, SessionKey: k, Size: st.Size})
			}
		}
	}
	return out, errors.Join(errs...)
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
	if err := m.live(ctx); err != nil {
		return PartitionStatus{}, err
	}
	st, err := m.store.Stat(ctx, partition)
	if err != nil {
		return PartitionStatus{}, opErr(ctx, "partition-status", SessionKey{}, partition, err)
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
