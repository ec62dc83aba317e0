package switchboard

import (
	"context"
	"fmt"
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
// O(1); hits take only a read lock and allocate nothing (unless the route
// has Meta, which is copied for the caller). Expired records are deleted
// when read and by Prune, which scans the partition under its lock. Memory
// is proportional to the live records: overwriting a key reuses its slot,
// and freed slots are reused before new ones are made.
//
// A MemoryStore serves one Manager. Use NewMemoryStore and WithStore only
// to keep a handle on it; New creates one by itself.
type MemoryStore struct {
	mu    sync.Mutex // guards parts and capacity during Init
	parts []memPartition
	limit int
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty MemoryStore, ready for New.
func NewMemoryStore() *MemoryStore { return &MemoryStore{} }

const (
	chunkBits = 8
	chunkSize = 1 << chunkBits // slots per chunk
	noSlot    = -1
)

// memEntry is one slot: a record, its key, its place on the
// least-recently-written list and its next slot with the same key hash.
type memEntry struct {
	key     SessionKey
	route   Route
	updated int64 // unix nanoseconds
	expires int64 // unix nanoseconds
	hash    uint64
	prev    int32 // older neighbour on the list, or noSlot
	next    int32 // newer neighbour, or noSlot; the next free slot while free
	chain   int32 // next slot whose key has the same hash, or noSlot
}

type memPartitionState struct {
	mu     sync.RWMutex
	index  map[uint64]int32 // key hash -> first slot of its chain
	chunks []*[chunkSize]memEntry
	slots  int32 // slots handed out so far (free ones included)
	free   int32 // free-slot list head
	oldest int32 // least recently written, or noSlot
	newest int32 // most recently written, or noSlot
	size   int
	closed bool
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
	s.parts = make([]memPartition, cfg.PartitionCount)
	for i := range s.parts {
		p := &s.parts[i]
		p.index = make(map[uint64]int32)
		p.free, p.oldest, p.newest = noSlot, noSlot, noSlot
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

func (p *memPartitionState) at(slot int32) *memEntry {
	return &p.chunks[slot>>chunkBits][slot&(chunkSize-1)]
}

// lookup returns the slot of key, or noSlot.
func (p *memPartitionState) lookup(hash uint64, key SessionKey) int32 {
	slot, ok := p.index[hash]
	if !ok {
		return noSlot
	}
	for slot != noSlot {
		e := p.at(slot)
		if e.key == key {
			return slot
		}
		slot = e.chain
	}
	return noSlot
}

func (e *memEntry) record() Record {
	return Record{Route: e.route.Clone(), UpdatedAt: time.Unix(0, e.updated), ExpiresAt: time.Unix(0, e.expires)}
}

// unlink takes slot off the least-recently-written list.
func (p *memPartitionState) unlink(slot int32) {
	e := p.at(slot)
	if e.prev != noSlot {
		p.at(e.prev).next = e.next
	} else {
		p.oldest = e.next
	}
	if e.next != noSlot {
		p.at(e.next).prev = e.prev
	} else {
		p.newest = e.prev
	}
}

// pushNewest puts slot at the newest end of the list.
func (p *memPartitionState) pushNewest(slot int32) {
	e := p.at(slot)
	e.prev, e.next = p.newest, noSlot
	if p.newest != noSlot {
		p.at(p.newest).next = slot
	} else {
		p.oldest = slot
	}
	p.newest = slot
}

// write stores route under key (an existing slot is overwritten and made
// newest), then evicts the oldest records past limit. route must already be
// the store's own copy.
func (p *memPartitionState) write(key SessionKey, hash uint64, route Route, updated, expires int64, limit int) (evicted int) {
	if slot := p.lookup(hash, key); slot != noSlot {
		e := p.at(slot)
		e.route, e.updated, e.expires = route, updated, expires
		if slot != p.newest {
			p.unlink(slot)
			p.pushNewest(slot)
		}
		return 0
	}
	slot := p.alloc()
	e := p.at(slot)
	*e = memEntry{key: key, route: route, updated: updated, expires: expires, hash: hash, chain: noSlot}
	if head, ok := p.index[hash]; ok {
		e.chain = head
	}
	p.index[hash] = slot
	p.pushNewest(slot)
	p.size++
	for p.size > limit {
		p.remove(p.oldest)
		evicted++
	}
	return evicted
}

func (p *memPartitionState) alloc() int32 {
	if p.free != noSlot {
		slot := p.free
		p.free = p.at(slot).next
		return slot
	}
	if int(p.slots) == len(p.chunks)*chunkSize {
		p.chunks = append(p.chunks, new([chunkSize]memEntry))
	}
	slot := p.slots
	p.slots++
	return slot
}

// remove deletes the record in slot and frees the slot.
func (p *memPartitionState) remove(slot int32) {
	e := p.at(slot)
	p.unlink(slot)
	if head := p.index[e.hash]; head == slot {
		if e.chain == noSlot {
			delete(p.index, e.hash)
		} else {
			p.index[e.hash] = e.chain
		}
	} else {
		for prev := p.at(head); ; prev = p.at(prev.chain) {
			if prev.chain == slot {
				prev.chain = e.chain
				break
			}
		}
	}
	*e = memEntry{next: p.free} // drop the strings for the GC
	p.free = slot
	p.size--
}

// Get implements Store.
func (s *MemoryStore) Get(ctx context.Context, key StoreKey, now time.Time) (Record, error) {
	p, err := s.part(key.Partition)
	if err != nil {
		return Record{}, err
	}
	t := now.UnixNano()
	p.mu.RLock()
	if p.closed {
		p.mu.RUnlock()
		return Record{}, ErrClosed
	}
	slot := p.lookup(key.Hash, key.Key)
	if slot == noSlot {
		p.mu.RUnlock()
		return Record{}, ErrNotFound
	}
	if e := p.at(slot); t < e.expires {
		rec := e.record()
		p.mu.RUnlock()
		return rec, nil
	}
	p.mu.RUnlock()

	// Expired: delete it under the write lock, unless it changed meanwhile.
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return Record{}, ErrClosed
	}
	if slot = p.lookup(key.Hash, key.Key); slot != noSlot {
		e := p.at(slot)
		if t < e.expires {
			return e.record(), nil
		}
		p.remove(slot)
	}
	return Record{}, ErrExpired
}

// Set implements Store.
func (s *MemoryStore) Set(ctx context.Context, key StoreKey, rec Record) (SetResult, error) {
	p, err := s.part(key.Partition)
	if err != nil {
		return SetResult{}, err
	}
	route := rec.Route.Clone() // copy outside the lock
	updated, expires := rec.UpdatedAt.UnixNano(), rec.ExpiresAt.UnixNano()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return SetResult{}, ErrClosed
	}
	evicted := p.write(key.Key, key.Hash, route, updated, expires, s.limit)
	return SetResult{Evicted: evicted, Size: p.size}, nil
}

// Resolve implements Store.
func (s *MemoryStore) Resolve(ctx context.Context, req ResolveRequest) (ResolveResult, error) {
	p, err := s.part(req.Key.Partition)
	if err != nil {
		return ResolveResult{}, err
	}
	t := req.Now.UnixNano()

	// The hit path needs only the read lock.
	p.mu.RLock()
	if p.closed {
		p.mu.RUnlock()
		return ResolveResult{}, ErrClosed
	}
	if slot := p.lookup(req.Key.Hash, req.Key.Key); slot != noSlot {
		if e := p.at(slot); t < e.expires {
			res := ResolveResult{Source: SourceStateHit, Record: e.record(), Size: p.size}
			p.mu.RUnlock()
			return res, nil
		}
	}
	p.mu.RUnlock()

	fallback := req.Fallback.Clone()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ResolveResult{}, ErrClosed
	}
	var res ResolveResult
	if slot := p.lookup(req.Key.Hash, req.Key.Key); slot != noSlot {
		e := p.at(slot)
		if t < e.expires { // written since the read-locked look
			return ResolveResult{Source: SourceStateHit, Record: e.record(), Size: p.size}, nil
		}
		p.remove(slot)
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
	res.Evicted = p.write(req.Key.Key, req.Key.Hash, route, t, expires, s.limit)
	res.Record = Record{Route: route.Clone(), UpdatedAt: time.Unix(0, t), ExpiresAt: time.Unix(0, expires)}
	res.Size = p.size
	return res, nil
}

// freshOrDrop reports whether key has a record fresh at t, copying its
// route to *route; an expired record is removed and *expired set.
func (p *memPartitionState) freshOrDrop(key StoreKey, t int64, expired *bool, route *Route) bool {
	slot := p.lookup(key.Hash, key.Key)
	if slot == noSlot {
		return false
	}
	if e := p.at(slot); t < e.expires {
		*route = e.route
		return true
	}
	p.remove(slot)
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
	slot := p.lookup(key.Hash, key.Key)
	if slot == noSlot {
		return p.size, ErrNotFound
	}
	p.remove(slot)
	return p.size, nil
}

// Prune implements Store. It scans the partition under its write lock.
func (s *MemoryStore) Prune(ctx context.Context, partition int, now time.Time) (PruneStats, error) {
	p, err := s.part(partition)
	if err != nil {
		return PruneStats{}, err
	}
	t := now.UnixNano()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return PruneStats{}, ErrClosed
	}
	pruned := 0
	for slot := p.oldest; slot != noSlot; {
		e := p.at(slot)
		next := e.next
		if t >= e.expires {
			p.remove(slot)
			pruned++
		}
		slot = next
	}
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
		p.index, p.chunks = nil, nil
		p.size, p.slots = 0, 0
		p.free, p.oldest, p.newest = noSlot, noSlot, noSlot
		p.mu.Unlock()
	}
	if closed {
		return ErrClosed
	}
	return nil
}
