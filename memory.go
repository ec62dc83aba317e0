package switchboard

import (
	"context"
	"fmt"
	"hash/maphash"
	"sync"
	"time"
	"unsafe"
)

// MemoryStore is the in-process Store and the default of New: the reference
// backend every other one is measured against, as fstest.MapFS is for fs.FS.
//
// Each partition has its own lock (padded so that two partitions never share
// a cache line), a hash index from the key hash the Manager computed to a
// slot, and the records in fixed-size chunks of slots threaded on an
// intrusive least-recently-written list. Get, Set, eviction and Delete are
// O(1). Lookups take the partition's reader-biased lock (see biasedLock):
// while the partition is read-mostly, a hit writes nothing shared between
// cores, and it allocates nothing (unless the route has Meta, which is
// copied for the caller). Expired records are deleted when read and by
// Prune, which scans the partition under its lock. Memory is proportional to
// the live records: overwriting a key reuses its slot, and freed slots are
// reused before new ones are made.
//
// A MemoryStore serves one Manager. Use NewMemoryStore and WithStore only
// to keep a handle on it; New creates one by itself.
type MemoryStore struct {
	mu     sync.Mutex // guards parts and capacity during Init
	parts  []memPartition
	limit  int
	tokens *readerTokens // reader slots for the partitions' locks
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty MemoryStore, ready for New.
func NewMemoryStore() *MemoryStore { return &MemoryStore{} }

type memPartitionState struct {
	mu     biasedLock // its read-mostly and write-hot halves on separate lines
	closed bool       // read by every lookup, with the read-mostly table fields below
	memTable
}

// memPartition pads a partition to a multiple of 128 bytes (two cache
// lines, for the adjacent-line prefetcher) so partition locks do not
// contend through false sharing.
type memPartition struct {
	memPartitionState
	_ [128 - unsafe.Sizeof(memPartitionState{})%128]byte
}

// Init implements Store.
func (s *MemoryStore) Init(cfg StoreConfig) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.parts != nil {
		return fmt.Errorf("memory store: already serving a Manager")
	}
	if cfg.PartitionCount <= 0 || cfg.MaxEntriesPerPartition <= 0 || cfg.MaxEntriesPerPartition > MaxEntriesLimit {
		return fmt.Errorf("%w: memory store: partition count %d and capacity %d must be positive",
			ErrInvalidConfig, cfg.PartitionCount, cfg.MaxEntriesPerPartition)
	}
	seed := cfg.seed
	if seed == (maphash.Seed{}) {
		seed = maphash.MakeSeed() // Init called by hand: no Manager hashes will match, but nothing breaks
	}
	s.parts = make([]memPartition, cfg.PartitionCount)
	s.tokens = newReaderTokens()
	slots := readerSlotCount()
	for i := range s.parts {
		s.parts[i].reset(seed)
		s.parts[i].mu.init(slots)
	}
	s.limit = cfg.MaxEntriesPerPartition
	return nil
}

func (s *MemoryStore) part(i int) (*memPartitionState, error) {
	if i < 0 || i >= len(s.parts) {
		return nil, fmt.Errorf("memory store: partition %d out of range (%d partitions)", i, len(s.parts))
	}
	return &s.parts[i].memPartitionState, nil
}

// record copies e into *rec, with a Route the caller owns.
func (e *memEntry) record(rec *Record) {
	rec.Route = e.route.Clone()
	rec.UpdatedAt, rec.ExpiresAt = time.Unix(0, e.updated), time.Unix(0, e.expires)
}

// Get implements Store.
func (s *MemoryStore) Get(ctx context.Context, key StoreKey, now time.Time) (Record, error) {
	var rec Record
	err := s.get(&key, nil, now.UnixNano(), &rec)
	return rec, err
}

// get is Get without the copies, for the Manager's fast path; enc is the
// key's encoding, or nil.
func (s *MemoryStore) get(key *StoreKey, enc []byte, now int64, rec *Record) error {
	p, err := s.part(key.Partition)
	if err != nil {
		return err
	}
	tok, fast := s.rlock(p)
	state := p.lookFresh(key, enc, now, rec)
	s.runlock(p, tok, fast)
	if state != lookExpired {
		return state.err()
	}

	// Expired: delete it under the write lock, unless it changed meanwhile.
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	if pos, slot := p.find(key.Hash, key.Key, nil); slot != noSlot {
		if e := p.at(slot); now < e.expires {
			e.record(rec)
			return nil
		}
		p.removeAt(pos, slot)
	}
	return ErrExpired
}

// Set implements Store.
func (s *MemoryStore) Set(ctx context.Context, key StoreKey, rec Record) (SetResult, error) {
	evicted, size, err := s.set(&key, nil, &rec.Route, rec.UpdatedAt.UnixNano(), rec.ExpiresAt.UnixNano())
	return SetResult{Evicted: evicted, Size: size}, err
}

// set is Set without the copies, for the Manager's fast path.
func (s *MemoryStore) set(key *StoreKey, enc []byte, r *Route, updated, expires int64) (evicted, size int, err error) {
	p, err := s.part(key.Partition)
	if err != nil {
		return 0, 0, err
	}
	route := r.Clone() // copy outside the lock
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return 0, 0, ErrClosed
	}
	evicted = p.write(key.Hash, key.Key, enc, route, updated, expires, s.limit)
	return evicted, p.size, nil
}

// resolveHit is the read-locked (shared) first look of Resolve, for the Manager's
// fast path: when key has a record fresh at now it copies its route to *r
// and reports true.
func (s *MemoryStore) resolveHit(key *StoreKey, enc []byte, now int64, r *Route) (hit bool, size int, err error) {
	p, err := s.part(key.Partition)
	if err != nil {
		return false, 0, err
	}
	tok, fast := s.rlock(p)
	defer s.runlock(p, tok, fast)
	if p.closed {
		return false, 0, ErrClosed
	}
	if _, slot := p.find(key.Hash, key.Key, enc); slot != noSlot {
		if e := p.at(slot); now < e.expires {
			*r = e.route.Clone()
			return true, p.size, nil
		}
	}
	return false, p.size, nil
}

// rlock read-locks p for a lookup, through a reader token (see biasedLock);
// runlock undoes it.
func (s *MemoryStore) rlock(p *memPartitionState) (*readerToken, bool) {
	tok := s.tokens.get()
	return tok, p.mu.rlockFast(tok)
}

func (s *MemoryStore) runlock(p *memPartitionState, tok *readerToken, fast bool) {
	p.mu.runlockFast(tok, fast)
	s.tokens.put(tok)
}

// lookState is the outcome of a read-locked look at one key.
type lookState int

const (
	lookAbsent lookState = iota
	lookFresh
	lookExpired
	lookClosed
)

// err returns what Get reports for the state (lookExpired needs the write
// lock first).
func (s lookState) err() error {
	switch s {
	case lookAbsent:
		return ErrNotFound
	case lookExpired:
		return ErrExpired
	case lookClosed:
		return ErrClosed
	}
	return nil
}

// lookFresh copies the record of key into *rec if it is fresh at now. The
// caller holds a read lock.
func (p *memPartitionState) lookFresh(key *StoreKey, enc []byte, now int64, rec *Record) lookState {
	if p.closed {
		return lookClosed
	}
	_, slot := p.find(key.Hash, key.Key, enc)
	if slot == noSlot {
		return lookAbsent
	}
	e := p.at(slot)
	if now >= e.expires {
		return lookExpired
	}
	e.record(rec)
	return lookFresh
}

// Resolve implements Store.
func (s *MemoryStore) Resolve(ctx context.Context, req ResolveRequest) (ResolveResult, error) {
	p, err := s.part(req.Key.Partition)
	if err != nil {
		return ResolveResult{}, err
	}
	t := req.Now.UnixNano()

	// The hit path needs only the read lock.
	var res ResolveResult
	tok, fast := s.rlock(p)
	state := p.lookFresh(&req.Key, nil, t, &res.Record)
	res.Size = p.size
	s.runlock(p, tok, fast)
	switch state {
	case lookFresh:
		res.Source = SourceStateHit
		return res, nil
	case lookClosed:
		return ResolveResult{}, ErrClosed
	}
	return s.resolveWrite(p, &req)
}

// resolveAfterMiss is Resolve for the Manager's fast path, which has just
// looked and found no fresh record.
func (s *MemoryStore) resolveAfterMiss(req *ResolveRequest) (ResolveResult, error) {
	p, err := s.part(req.Key.Partition)
	if err != nil {
		return ResolveResult{}, err
	}
	return s.resolveWrite(p, req)
}

// resolveWrite is the write-locked rest of Resolve, after a first look
// found no fresh record (the Manager's fast path calls it directly).
func (s *MemoryStore) resolveWrite(p *memPartitionState, req *ResolveRequest) (ResolveResult, error) {
	t := req.Now.UnixNano()
	var res ResolveResult
	fallback := req.Fallback.Clone()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ResolveResult{}, ErrClosed
	}
	if pos, slot := p.find(req.Key.Hash, req.Key.Key, nil); slot != noSlot {
		e := p.at(slot)
		if t < e.expires { // written since the read-locked look
			e.record(&res.Record)
			res.Source, res.Size = SourceStateHit, p.size
			return res, nil
		}
		p.removeAt(pos, slot)
		res.ExactExpired = true
	}
	var route Route
	switch {
	case req.Key.Key.ThreadID != "" && p.freshOrDrop(req.Room, t, &res.RoomExpired, &route):
		res.Source = SourcePartitionFallback // stored maps are never changed in place, so the two records may share Meta
	case fallback.ExternalRoomID != "":
		res.Source = SourceProvidedFallback
		route = fallback
	default:
		res.Size = p.size
		return res, nil
	}
	expires := req.ExpiresAt.UnixNano()
	res.Evicted = p.write(req.Key.Hash, req.Key.Key, nil, route, t, expires, s.limit)
	res.Record = Record{Route: route.Clone(), UpdatedAt: time.Unix(0, t), ExpiresAt: time.Unix(0, expires)}
	res.Size = p.size
	return res, nil
}

// freshOrDrop reports whether key has a record fresh at t, copying its
// route to *route; an expired record is removed and *expired set.
func (t *memTable) freshOrDrop(key StoreKey, now int64, expired *bool, route *Route) bool {
	pos, slot := t.find(key.Hash, key.Key, nil)
	if slot == noSlot {
		return false
	}
	if e := t.at(slot); now < e.expires {
		*route = e.route
		return true
	}
	t.removeAt(pos, slot)
	*expired = true
	return false
}

// Delete implements Store.
func (s *MemoryStore) Delete(ctx context.Context, key StoreKey) (int, error) {
	p, err := s.part(key.Partition)
	if err != nil {
		return 0, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return 0, ErrClosed
	}
	pos, slot := p.find(key.Hash, key.Key, nil)
	if slot == noSlot {
		return p.size, ErrNotFound
	}
	p.removeAt(pos, slot)
	return p.size, nil
}

// Prune implements Store. It scans the partition under its write lock.
func (s *MemoryStore) Prune(ctx context.Context, partition int, now time.Time) (PruneStats, error) {
	p, err := s.part(partition)
	if err != nil {
		return PruneStats{}, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return PruneStats{}, ErrClosed
	}
	pruned := p.pruneExpired(now.UnixNano())
	return PruneStats{Pruned: pruned, Size: p.size}, nil
}

// Stat implements Store. A memory partition is always available; its Owner
// is "memory".
func (s *MemoryStore) Stat(ctx context.Context, partition int) (StoreStatus, error) {
	p, err := s.part(partition)
	if err != nil {
		return StoreStatus{}, err
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return StoreStatus{}, ErrClosed
	}
	return StoreStatus{Owner: "memory", Available: true, Entries: p.size}, nil
}

// Close implements Store: it drops every record. Later calls return
// ErrClosed.
func (s *MemoryStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.parts == nil {
		return nil
	}
	closed := false
	for i := range s.parts {
		p := &s.parts[i]
		p.mu.Lock()
		closed = closed || p.closed
		p.closed = true
		p.reset(p.seed)
		p.mu.Unlock()
	}
	if closed {
		return ErrClosed
	}
	return nil
}
