package switchboard

import (
	"context"
	"fmt"
	"hash/maphash"
	"math"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/switchboard-go/switchboard/internal/memtable"
	"github.com/switchboard-go/switchboard/internal/seqlock"
)

// MemoryStore is the in-process Store and the default of New: the reference
// backend every other one is measured against, as fstest.MapFS is for fs.FS.
//
// Each partition has its own lock (padded so that two partitions never share
// a cache line) and a table (package internal/memtable): a hash index from
// the key hash the Manager computed to a slot, and the records in
// fixed-size chunks of slots threaded on an intrusive
// least-recently-written list. Get, Set, eviction and Delete are O(1).
// Writers take the partition's sequence lock (internal/seqlock); lookups
// (the hits of Get and Resolve) take no lock at all: they note the
// partition's sequence number, find the key and load its record with
// atomic loads, and keep what they read if no writer entered meanwhile —
// otherwise they try again, and after a few tries, or while a writer is
// inside, they wait for the lock. A hit thus writes nothing shared
// between cores and executes no locked instruction (the reader-biased
// lock this replaces cost a lookup two atomic adds, 15% of a warm hit's
// CPU profile on 2 cores; most of that time now goes to the hit's two
// cache misses, but a write no longer revokes anything, which took the
// 90/10 get/set mix from behind otter to level — docs/benchmarks.md), and
// it allocates nothing (unless the route has Meta, which
// is copied for the caller). Writers pay instead: they store each word of
// a record they change atomically (an XCHG on amd64). Keys longer than
// the table's inline key bytes are looked up under the lock. A slot is 128
// bytes, one aligned pair of cache lines: the key (inline up to 46 bytes)
// and a 64-byte record (memSlot) whose route strings, writer and
// invalidation reason are kept end to end in one string. A write that stores other strings than the record it replaces
// allocates that string (one allocation, unless at most one of them is
// non-empty); overwriting a key with the same route — the common write —
// keeps it and allocates nothing, at the price of comparing the two (one
// more cache miss). Prune, Scan and DeleteMatching walk a partition
// by slot number, one chunk of 256 slots per lock hold, so serving latency
// stays flat while they run. None of them allocates with the lock held:
// Scan only copies the chunk's records under it (a read lock, which
// lookups do not wait for) and filters, decodes and allocates after it,
// DeleteMatching matches on the table's bytes and decodes the matched
// keys after each hold, so that holds stay short even when the runtime
// deschedules the goroutine for the garbage collector
// (BenchmarkPartitionLockHold). Memory is proportional to the live records:
// overwriting a key reuses its slot, and freed slots are reused before new
// ones are made.
//
// The MemoryStore type stays in the root package, over the engine in
// internal/, because New defaults to it and the Manager's zero-allocation
// hit path calls it directly instead of through the Store interface.
//
// A MemoryStore serves one Manager. Use NewMemoryStore and WithStore only
// to keep a handle on it (for snapshots); New creates one by itself.
type MemoryStore struct {
	mu    sync.Mutex // guards parts and limit during Init and Close
	parts []memPartition
	limit int
	dur   *durability // the log, for a store made by OpenMemoryStore; nil otherwise
	// holds, when set (by tests, before New), is told how long each lock
	// hold of sweep (Prune, Scan, DeleteMatching) and of a snapshot's
	// partition copy lasted; it runs under the lock.
	holds func(time.Duration)
	scans sync.Pool // of *[]scanned, Scan's buffers
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty MemoryStore, ready for New.
func NewMemoryStore() *MemoryStore { return &MemoryStore{} }

// memRecord is a record of a memory partition, as code holding the
// partition's lock (or a lookup, once it validated its read) works on it;
// the table keeps it as a memSlot. The route's strings, the writer and the
// invalidation reason are kept end to end in one string (see setStrings):
// handing them out takes substrings of it and copies nothing.
type memRecord struct {
	strs      string            // ExternalRoomID, ChannelType, BridgeID, RoomID, ThreadID, writer, reason
	meta      map[string]string // the route's Meta; stored maps are never changed in place
	updated   int64             // unix nanoseconds
	expires   int64             // unix nanoseconds
	rev       uint64            // revision
	lens      [5]uint16         // lengths in strs of the route's five strings (each at most MaxFieldLen)
	prio      int16
	wlen      uint8 // len(writer)
	origin    uint8 // an originCode
	confirmed bool
}

const (
	originSetCode uint8 = iota
	originRoomCode
	originProvidedCode
)

var originNames = [...]Origin{originSetCode: OriginSet, originRoomCode: OriginRoomFallback, originProvidedCode: OriginProvidedFallback}

func originCode(o Origin) uint8 {
	switch o {
	case OriginRoomFallback:
		return originRoomCode
	case OriginProvidedFallback:
		return originProvidedCode
	}
	return originSetCode
}

// memSlot is a memRecord as a partition's table holds it: 64 bytes, so
// that with the table's key bytes a slot is 128 bytes — one aligned pair
// of cache lines, which is all a hit reads besides its index bucket. Its
// words are loaded and stored atomically, as lookups read them without
// the lock (see internal/seqlock). A loaded record is consistent only if
// the lookup's sequence number is still valid; until then nothing must be
// done with it that depends on its strings (load never slices them).
type memSlot struct {
	strs    atomic.Pointer[byte] // the data of memRecord.strs (nil when empty)
	slen    atomic.Uint64        // its length
	meta    atomic.Pointer[map[string]string]
	updated atomic.Int64
	expires atomic.Int64
	rev     atomic.Uint64
	lens    atomic.Uint64 // lens[0..3], 16 bits each
	small   atomic.Uint64 // lens[4], then prio, wlen, origin and confirmed
}

// load copies m into *r.
func (m *memSlot) load(r *memRecord) {
	r.strs = ""
	if p := m.strs.Load(); p != nil {
		r.strs = unsafe.String(p, int(m.slen.Load()))
	}
	r.meta = nil
	if mp := m.meta.Load(); mp != nil {
		r.meta = *mp
	}
	r.updated, r.expires, r.rev = m.updated.Load(), m.expires.Load(), m.rev.Load()
	lens, small := m.lens.Load(), m.small.Load()
	r.lens = [5]uint16{uint16(lens), uint16(lens >> 16), uint16(lens >> 32), uint16(lens >> 48), uint16(small)}
	r.prio, r.wlen, r.origin, r.confirmed = int16(small>>16), uint8(small>>32), uint8(small>>40), small>>48&1 != 0
}

// store makes m hold r, storing only the words that change (each store is
// an XCHG on amd64). Called with the partition's write lock held.
func (m *memSlot) store(r *memRecord) {
	var p *byte
	if r.strs != "" {
		p = unsafe.StringData(r.strs)
	}
	storeIf(&m.strs, p)
	storeIf(&m.slen, uint64(len(r.strs)))
	switch cur := m.meta.Load(); {
	case r.meta == nil:
		if cur != nil {
			m.meta.Store(nil)
		}
	case cur == nil || reflect.ValueOf(*cur).UnsafePointer() != reflect.ValueOf(r.meta).UnsafePointer():
		box := r.meta
		m.meta.Store(&box) // stored maps are never changed in place: the box is as immutable
	}
	storeIf(&m.updated, r.updated)
	storeIf(&m.expires, r.expires)
	storeIf(&m.rev, r.rev)
	storeIf(&m.lens, uint64(r.lens[0])|uint64(r.lens[1])<<16|uint64(r.lens[2])<<32|uint64(r.lens[3])<<48)
	small := uint64(r.lens[4]) | uint64(uint16(r.prio))<<16 | uint64(r.wlen)<<32 | uint64(r.origin)<<40
	if r.confirmed {
		small |= 1 << 48
	}
	storeIf(&m.small, small)
}

// storeIf stores v in the atomic word w unless w holds it already.
func storeIf[T comparable, W interface {
	Load() T
	Store(T)
}](w W, v T) {
	if w.Load() != v {
		w.Store(v)
	}
}

// clear empties m (for the garbage collector) when its record is removed.
func (m *memSlot) clear() { m.store(&memRecord{}) }

// routeLen is the length of the route's strings at the start of r.strs.
func (r *memRecord) routeLen() int {
	return int(r.lens[0]) + int(r.lens[1]) + int(r.lens[2]) + int(r.lens[3]) + int(r.lens[4])
}

// route returns r's route, sharing its strings and Meta.
func (r *memRecord) route() Route {
	s := r.strs
	a := int(r.lens[0])
	b := a + int(r.lens[1])
	c := b + int(r.lens[2])
	d := c + int(r.lens[3])
	e := d + int(r.lens[4])
	return Route{ExternalRoomID: s[:a], ChannelType: s[a:b], BridgeID: s[b:c], RoomID: s[c:d], ThreadID: s[d:e], Meta: r.meta}
}

func (r *memRecord) writer() string      { e := r.routeLen(); return r.strs[e : e+int(r.wlen)] }
func (r *memRecord) invalidated() string { return r.strs[r.routeLen()+int(r.wlen):] }
func (r *memRecord) tomb() bool          { return len(r.strs) > r.routeLen()+int(r.wlen) }
func (r *memRecord) target() Target      { return r.route().Target() }

// setStrings sets r's route (its Meta as it is), writer and invalidation
// reason, which must be valid (each string at most MaxFieldLen, the writer
// at most MaxWriterLen bytes). When r already holds exactly these strings —
// an overwrite with the same route, the common write — it keeps its string
// and allocates nothing; so it does when at most one of them is non-empty
// (that string is kept as it is). Otherwise it allocates one string for
// all of them.
func (r *memRecord) setStrings(route *Route, writer, reason string) {
	parts := [7]string{route.ExternalRoomID, route.ChannelType, route.BridgeID, route.RoomID, route.ThreadID, writer, reason}
	lens := [5]uint16{uint16(len(parts[0])), uint16(len(parts[1])), uint16(len(parts[2])), uint16(len(parts[3])), uint16(len(parts[4]))}
	r.meta = route.Meta
	if lens == r.lens && int(r.wlen) == len(writer) && r.holds(&parts) {
		return
	}
	r.lens, r.wlen = lens, uint8(len(writer))
	n, only := 0, ""
	for _, p := range parts {
		if p != "" {
			if n == 0 {
				only = p
			} else {
				only = ""
			}
			n += len(p)
		}
	}
	if only != "" || n == 0 {
		r.strs = only
		return
	}
	var b strings.Builder
	b.Grow(n)
	for _, p := range parts {
		b.WriteString(p)
	}
	r.strs = b.String()
}

// holds reports whether r.strs is parts end to end.
func (r *memRecord) holds(parts *[7]string) bool {
	s := r.strs
	for _, p := range parts {
		if len(s) < len(p) || s[:len(p)] != p {
			return false
		}
		s = s[len(p):]
	}
	return s == ""
}

// record copies r into *rec, with a Route the caller owns.
func (r *memRecord) record(rec *Record) {
	r.view(rec)
	if rec.Route.Meta != nil {
		rec.Route = rec.Route.Clone()
	}
}

// view is record with a Route whose Meta is r's own, which nobody may
// change.
func (r *memRecord) view(rec *Record) {
	*rec = Record{
		Route: r.route(), UpdatedAt: time.Unix(0, r.updated), ExpiresAt: time.Unix(0, r.expires),
		Origin: originNames[r.origin], Writer: r.writer(), Priority: int(r.prio), Revision: r.rev,
		Confirmed: r.confirmed, Invalidated: r.invalidated(),
	}
}

// matches reports whether r, under the key encoded as enc, matches f,
// allocating nothing: for a caller holding the partition's lock (enc is
// the table's).
func (r *memRecord) matches(f *Filter, enc []byte) bool {
	var rec Record
	r.view(&rec)
	return f.Match(peekKey(enc), &rec)
}

// memPartitionState is one partition: its lock, then what writes change
// (with the table's own write-hot fields), then what lookups read (the
// table's read-mostly fields, then closed), so that no write changes a
// cache line a lookup reads (see memtable.Table).
type memPartitionState struct {
	mu  seqlock.Lock // its sequence number is read by every lookup, and written by every write
	rev uint64       // the last revision handed out
	lsn uint64       // the last log sequence number (durable stores)
	ops []byte       // log operations being built under the write lock (durable stores)
	idx int          // the partition's index
	memtable.Table[memSlot]
	closed atomic.Bool // read by every lookup, with the table's read-mostly fields before it
}

// rec returns the record in slot, which must hold one; the caller holds
// the lock.
func (p *memPartitionState) rec(slot int32) memRecord {
	var r memRecord
	p.Value(slot).load(&r)
	return r
}

// put makes slot hold r; the caller holds the write lock.
func (p *memPartitionState) put(slot int32, r *memRecord) { p.Value(slot).store(r) }

// removeAt and remove are the table's RemoveAt and Remove that also clear
// the record, for the garbage collector.
func (p *memPartitionState) removeAt(pos uint32, slot int32) {
	p.Value(slot).clear()
	p.RemoveAt(pos, slot)
}

func (p *memPartitionState) remove(slot int32) {
	p.Value(slot).clear()
	p.Remove(slot)
}

// sharedTries is how many times a lookup reads without the lock before it
// waits for the lock: a read fails only when a write overlapped it.
const sharedTries = 3

// lookShared reads key's record into *r without the lock (see memSlot)
// and reports what it found, with the partition's size; ok is false when
// it did not get a consistent read — a writer was inside, or the key is
// too long to be compared without the lock — and the caller must look
// under the lock instead.
func (p *memPartitionState) lookShared(key *StoreKey, enc []byte, r *memRecord) (state lookStateInternal, size int, ok bool) {
	if len(enc) > memtable.InlineKey {
		return 0, 0, false
	}
	for range sharedTries {
		seq, idle := p.mu.Begin()
		if !idle {
			return 0, 0, false
		}
		closed := p.closed.Load()
		v := p.FindShared(key.Hash, enc)
		if v != nil {
			v.load(r)
		}
		size = p.Len()
		if !p.mu.Valid(seq) {
			continue
		}
		switch {
		case closed:
			return lookClosedState, 0, true
		case v == nil:
			return lookAbsentState, size, true
		}
		return lookFreshState, size, true // fresh or expired: the caller compares
	}
	return 0, 0, false
}

// look is lookShared, falling back to a look under the lock.
func (p *memPartitionState) look(key *StoreKey, enc []byte, r *memRecord) (lookStateInternal, int) {
	if state, size, ok := p.lookShared(key, enc, r); ok {
		return state, size
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.lookLocked(key, enc, r), p.Len()
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
		return fmt.Errorf("%w: memory store: already serving a Manager", ErrInvalidConfig)
	}
	if cfg.PartitionCount <= 0 || cfg.MaxEntriesPerPartition <= 0 || cfg.MaxEntriesPerPartition > MaxEntriesLimit {
		return fmt.Errorf("%w: memory store: partition count %d and capacity %d must be positive",
			ErrInvalidConfig, cfg.PartitionCount, cfg.MaxEntriesPerPartition)
	}
	seed := cfg.HashSeed
	if seed == (maphash.Seed{}) {
		seed = maphash.MakeSeed() // Init called by hand: no Manager hashes will match, but nothing breaks
	}
	s.parts = make([]memPartition, cfg.PartitionCount)
	for i := range s.parts {
		s.parts[i].Reset(seed)
		s.parts[i].idx = i
	}
	s.limit = cfg.MaxEntriesPerPartition
	if s.dur != nil {
		if err := s.dur.open(s); err != nil {
			s.parts = nil
			return err
		}
	}
	return nil
}

func (s *MemoryStore) part(i int) (*memPartitionState, error) {
	if i < 0 || i >= len(s.parts) {
		if s.parts == nil {
			return nil, fmt.Errorf("memory store: not initialized: %w", ErrClosed)
		}
		return nil, fmt.Errorf("memory store: partition %d out of range (%d partitions)", i, len(s.parts))
	}
	return &s.parts[i].memPartitionState, nil
}

// encoded returns the encoding of k (see appendKey) in buf, or in a new
// slice when it does not fit.
func encoded(k SessionKey, buf *[keyBufSize]byte) []byte {
	if encodedLen(k) > keyBufSize {
		return appendKey(make([]byte, 0, encodedLen(k)), k)
	}
	return appendKey(buf[:0], k)
}

// find returns the index position and slot of key in p (NoSlot if absent).
func (p *memPartitionState) find(key *StoreKey, enc []byte) (uint32, int32) {
	return p.Find(key.Hash, enc)
}

// Get implements Store.
func (s *MemoryStore) Get(ctx context.Context, key StoreKey, now time.Time) (Record, error) {
	if err := ctx.Err(); err != nil {
		return Record{}, err
	}
	var buf [keyBufSize]byte
	var rec Record
	err := s.get(&key, encoded(key.Key, &buf), now.UnixNano(), &rec)
	return rec, err
}

// get is Get without the copies, for the Manager's fast path.
func (s *MemoryStore) get(key *StoreKey, enc []byte, now int64, rec *Record) error {
	p, err := s.part(key.Partition)
	if err != nil {
		return err
	}
	switch s.peek(p, key, enc, now, rec) {
	case lookFreshState:
		return nil
	case lookAbsentState:
		return ErrNotFound
	case lookClosedState:
		return ErrClosed
	}
	// Expired: delete it under the write lock, unless it changed meanwhile.
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed.Load() {
		return ErrClosed
	}
	if pos, slot := p.find(key, enc); slot != memtable.NoSlot {
		if r := p.rec(slot); now < r.expires {
			r.record(rec)
			return nil
		}
		p.removeAt(pos, slot)
	}
	return ErrExpired
}

// peek looks at key, without the lock if it can (see lookShared), and
// copies its record to *rec when it is fresh.
func (s *MemoryStore) peek(p *memPartitionState, key *StoreKey, enc []byte, now int64, rec *Record) lookStateInternal {
	var r memRecord
	if state, _ := p.look(key, enc, &r); state != lookFreshState {
		return state
	}
	if now >= r.expires {
		return lookExpiredState
	}
	r.record(rec)
	return lookFreshState
}

// lookLocked is lookShared for a caller holding the lock.
func (p *memPartitionState) lookLocked(key *StoreKey, enc []byte, r *memRecord) lookStateInternal {
	if p.closed.Load() {
		return lookClosedState
	}
	_, slot := p.find(key, enc)
	if slot == memtable.NoSlot {
		return lookAbsentState
	}
	*r = p.rec(slot)
	return lookFreshState
}

type lookStateInternal uint8

const (
	lookAbsentState lookStateInternal = iota
	lookFreshState
	lookExpiredState
	lookClosedState
)

// Set implements Store.
func (s *MemoryStore) Set(ctx context.Context, req SetRequest) (SetResult, error) {
	if err := ctx.Err(); err != nil {
		return SetResult{}, err
	}
	var buf [keyBufSize]byte
	o := SetOptions{Priority: req.Record.Priority, Writer: req.Record.Writer, IfRevision: req.IfRevision, IfAbsent: req.IfAbsent}
	return s.set(&req.Key, encoded(req.Key.Key, &buf), &req.Record.Route, req.Record.UpdatedAt.UnixNano(), req.Record.ExpiresAt.UnixNano(),
		&o, originCode(req.Record.Origin))
}

// set is Set for the Manager's fast path, without the request's copies
// and time conversions: route r written at updated, expiring expires, with
// the priority, writer and conditions of o.
func (s *MemoryStore) set(key *StoreKey, enc []byte, r *Route, updated, expires int64, o *SetOptions, origin uint8) (SetResult, error) {
	p, err := s.part(key.Partition)
	if err != nil {
		return SetResult{}, err
	}
	route := r.Clone() // copy outside the lock
	if s.dur != nil {
		return s.setDurable(p, key, enc, &route, updated, expires, o, origin)
	}
	p.mu.Lock()
	res := p.set(key, enc, &route, updated, expires, o, origin, s.limit, false)
	p.mu.Unlock()
	if res.Outcome == setClosed {
		return SetResult{}, ErrClosed
	}
	return res, nil
}

// setDurable is set for a durable store: refused while the log cannot be
// written, logged under the lock, and returned once durable.
func (s *MemoryStore) setDurable(p *memPartitionState, key *StoreKey, enc []byte, route *Route, updated, expires int64, o *SetOptions, origin uint8) (SetResult, error) {
	if err := s.dur.usable(); err != nil {
		return SetResult{}, err
	}
	p.mu.Lock()
	res := p.set(key, enc, route, updated, expires, o, origin, s.limit, true)
	pd, err := s.dur.append(p)
	p.mu.Unlock()
	switch {
	case res.Outcome == setClosed:
		return SetResult{}, ErrClosed
	case err != nil:
		return SetResult{}, err
	}
	if err := s.dur.wait(pd); err != nil {
		return SetResult{}, err
	}
	return res, nil
}

// setClosed is an internal SetOutcome: the partition is closed.
const setClosed SetOutcome = 255

// set is MemoryStore.set under the partition's lock.
func (p *memPartitionState) set(key *StoreKey, enc []byte, route *Route, updated, expires int64, o *SetOptions, origin uint8, limit int, logged bool) SetResult {
	if p.closed.Load() {
		return SetResult{Outcome: setClosed}
	}
	pos, slot := p.find(key, enc)
	var v memRecord
	if slot == memtable.NoSlot {
		if o.IfRevision != 0 {
			return SetResult{Outcome: SetConflict, Size: p.Len()}
		}
		slot = p.Insert(pos, key.Hash, enc)
	} else {
		v = p.rec(slot) // setStrings keeps its string when the route is the same
		// Most writes have no condition and at least the stored priority.
		if o.IfRevision != 0 || o.IfAbsent || int(v.prio) > o.Priority {
			if out, refused := refuse(o, &v, updated); refused {
				out.Size = p.Len()
				return out
			}
		}
		p.Touch(slot)
	}
	p.rev++
	v.setStrings(route, o.Writer, "")
	v.updated, v.expires, v.rev = updated, expires, p.rev
	v.prio, v.origin, v.confirmed = int16(o.Priority), origin, false
	p.put(slot, &v)
	if logged {
		p.logOp(opPut, enc, &v)
	}
	return SetResult{Outcome: SetStored, Revision: p.rev, Evicted: p.evict(limit, logged), Size: p.Len()}
}

// evict removes the least recently written records until p holds at most
// limit (logging each removal when logged), and returns how many it
// removed.
func (p *memPartitionState) evict(limit int, logged bool) (evicted int) {
	for p.Len() > limit { // never the newest, as limit is positive
		oldest := p.Oldest()
		if logged {
			p.logOp(opDelete, p.Key(oldest), nil)
		}
		p.remove(oldest)
		evicted++
	}
	return evicted
}

// refuse applies the conditions and precedence of a SetRequest to the
// key's current record cur, at now.
func refuse(o *SetOptions, cur *memRecord, now int64) (SetResult, bool) {
	fresh := now < cur.expires
	valid := fresh && !cur.tomb()
	var out SetResult
	if fresh {
		out.CurrentRevision, out.CurrentPriority = cur.rev, int(cur.prio)
	}
	switch {
	case o.IfRevision != 0 && (!fresh || cur.rev != o.IfRevision):
		out.Outcome = SetConflict
	case o.IfAbsent && valid:
		out.Outcome = SetConflict
	case valid && int(cur.prio) > o.Priority:
		out.Outcome = SetSuperseded
	default:
		return SetResult{}, false
	}
	return out, true
}

// store writes rec under key (at pos and slot from find) as the newest
// record with a new revision, then evicts down to limit.
func (p *memPartitionState) store(pos uint32, slot int32, key *StoreKey, enc []byte, rec *memRecord, limit int, logged bool) (evicted int) {
	if slot == memtable.NoSlot {
		slot = p.Insert(pos, key.Hash, enc)
	} else {
		p.Touch(slot)
	}
	p.rev++
	rec.rev = p.rev
	p.put(slot, rec)
	if logged {
		p.logOp(opPut, enc, rec)
	}
	return p.evict(limit, logged)
}

// resolveHit is the first look of Resolve (without the lock, if it can),
// for the Manager's fast path: when key has a fresh, valid record it
// fills the record's part of *out and reports true.
func (s *MemoryStore) resolveHit(key *StoreKey, enc []byte, now int64, out *Resolution) (hit bool, size int, err error) {
	p, err := s.part(key.Partition)
	if err != nil {
		return false, 0, err
	}
	var r memRecord
	state, size := p.look(key, enc, &r)
	switch {
	case state == lookClosedState:
		return false, 0, ErrClosed
	case state == lookFreshState && now < r.expires && !r.tomb():
		out.Route = r.route().Clone()
		out.Origin, out.Writer, out.Revision, out.Confirmed = originNames[r.origin], r.writer(), r.rev, r.confirmed
		return true, size, nil
	}
	return false, size, nil
}

// Resolve implements Store.
func (s *MemoryStore) Resolve(ctx context.Context, req ResolveRequest) (ResolveResult, error) {
	if err := ctx.Err(); err != nil {
		return ResolveResult{}, err
	}
	p, err := s.part(req.Key.Partition)
	if err != nil {
		return ResolveResult{}, err
	}
	var buf [keyBufSize]byte
	enc := encoded(req.Key.Key, &buf)
	var rec Record
	switch s.peek(p, &req.Key, enc, req.Now.UnixNano(), &rec) {
	case lookClosedState:
		return ResolveResult{}, ErrClosed
	case lookFreshState:
		if rec.Invalidated == "" {
			size, err := s.size(req.Key.Partition)
			return ResolveResult{Source: SourceStateHit, Record: rec, Size: size}, err
		}
	}
	return s.resolveWrite(&req, enc)
}

// resolveWrite is the write-locked rest of Resolve, after a first look
// found no fresh, valid record (the Manager's fast path calls it directly).
func (s *MemoryStore) resolveWrite(req *ResolveRequest, enc []byte) (res ResolveResult, err error) {
	p, err := s.part(req.Key.Partition)
	if err != nil {
		return ResolveResult{}, err
	}
	t := req.Now.UnixNano()
	var roomEnc []byte
	thread := req.Key.Key.ThreadID != ""
	if thread {
		roomEnc = enc[:len(enc)-len(req.Key.Key.ThreadID)-1] // the room's encoding is a prefix
	}
	if s.dur != nil {
		if err := s.dur.usable(); err != nil {
			return ResolveResult{}, err
		}
	}
	var pd pending
	var logErr error
	p.mu.Lock()
	defer func() {
		if s.dur != nil {
			pd, logErr = s.dur.append(p)
		}
		p.mu.Unlock()
		if err == nil && logErr == nil {
			logErr = s.dur.waitIf(pd)
		}
		if err == nil && logErr != nil {
			res, err = ResolveResult{}, logErr
		}
	}()
	if p.closed.Load() {
		return ResolveResult{}, ErrClosed
	}
	var exact, room looked
	pos, slot := p.find(&req.Key, enc)
	if slot != memtable.NoSlot {
		r := p.rec(slot)
		switch {
		case t < r.expires && !r.tomb(): // written since the read-locked look
			r.record(&res.Record)
			res.Source, res.Size = SourceStateHit, p.Len()
			return res, nil
		case t < r.expires:
			exact = looked{state: LookFresh, tomb: true, target: r.target()}
		default:
			p.removeAt(pos, slot)
			slot = memtable.NoSlot
			pos, _ = p.find(&req.Key, enc)
			res.ExactExpired = true
		}
	}
	var roomRec memRecord
	if thread {
		if rpos, rslot := p.Find(req.Room.Hash, roomEnc); rslot != memtable.NoSlot {
			r := p.rec(rslot)
			if t < r.expires {
				room = looked{state: LookFresh, tomb: r.tomb(), target: r.target()}
				roomRec = r
			} else {
				p.removeAt(rpos, rslot)
				res.RoomExpired = true
				// The removal may have shifted the key's empty position.
				pos, slot = p.find(&req.Key, enc)
			}
		}
	}
	src, fb, inv := chooseCandidate(exact, room, thread, req.Fallbacks)
	res.Invalidated = inv
	var rec memRecord
	switch src {
	case SourcePartitionFallback:
		// Stored maps are never changed in place, so the two records may share Meta.
		// The room's route strings are a prefix of its string: shared, not copied.
		rec = memRecord{strs: roomRec.strs[:roomRec.routeLen()], lens: roomRec.lens, meta: roomRec.meta, origin: originRoomCode}
	case SourceProvidedFallback:
		route := req.Fallbacks[fb].Clone()
		rec = memRecord{origin: originProvidedCode}
		rec.setStrings(&route, "", "")
	default:
		res.Size = p.Len()
		return res, nil
	}
	rec.updated, rec.expires = t, req.ExpiresAt.UnixNano()
	res.Source = src
	evicted := p.store(pos, slot, &req.Key, enc, &rec, s.limit, s.dur != nil)
	rec.record(&res.Record)
	res.Evicted, res.Size = evicted, p.Len()
	return res, nil
}

// Look implements Store.
func (s *MemoryStore) Look(ctx context.Context, req ResolveRequest) (LookResult, error) {
	if err := ctx.Err(); err != nil {
		return LookResult{}, err
	}
	p, err := s.part(req.Key.Partition)
	if err != nil {
		return LookResult{}, err
	}
	var buf [keyBufSize]byte
	enc := encoded(req.Key.Key, &buf)
	t := req.Now.UnixNano()
	look := func(k *StoreKey, enc []byte, out *Look) {
		if _, slot := p.find(k, enc); slot != memtable.NoSlot {
			r := p.rec(slot)
			out.State = LookExpired
			if t < r.expires {
				out.State = LookFresh
			}
			r.record(&out.Record)
		}
	}
	var res LookResult
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed.Load() {
		return LookResult{}, ErrClosed
	}
	look(&req.Key, enc, &res.Exact)
	if req.Key.Key.ThreadID != "" {
		look(&req.Room, enc[:len(enc)-len(req.Key.Key.ThreadID)-1], &res.Room)
	}
	res.Size = p.Len()
	return res, nil
}

// Confirm implements Store.
func (s *MemoryStore) Confirm(ctx context.Context, req FeedbackRequest) (FeedbackResult, error) {
	return s.feedback(ctx, &req, true)
}

// Invalidate implements Store.
func (s *MemoryStore) Invalidate(ctx context.Context, req FeedbackRequest) (FeedbackResult, error) {
	return s.feedback(ctx, &req, false)
}

func (s *MemoryStore) feedback(ctx context.Context, req *FeedbackRequest, confirm bool) (FeedbackResult, error) {
	if err := ctx.Err(); err != nil {
		return FeedbackResult{}, err
	}
	p, err := s.part(req.Key.Partition)
	if err != nil {
		return FeedbackResult{}, err
	}
	var buf [keyBufSize]byte
	enc := encoded(req.Key.Key, &buf)
	t := req.Now.UnixNano()
	var res FeedbackResult
	err = s.durably(p, func() error {
		if p.closed.Load() {
			return ErrClosed
		}
		_, slot := p.find(&req.Key, enc)
		var r memRecord
		if slot != memtable.NoSlot {
			r = p.rec(slot)
		}
		if slot == memtable.NoSlot || t >= r.expires || (confirm && r.tomb()) {
			res = FeedbackResult{Outcome: FeedbackNotFound, Size: p.Len()}
			return nil
		}
		switch {
		case r.target() != req.Target:
			res.Outcome = FeedbackConflict
		case !confirm && r.tomb():
			res.Outcome = FeedbackUnchanged
		case confirm:
			ttl := r.expires - r.updated
			if r.origin != originSetCode {
				ttl = int64(req.TTL)
			}
			r.updated, r.expires, r.confirmed = t, t+ttl, true
			p.rev++
			r.rev = p.rev
			p.put(slot, &r)
			p.Touch(slot)
			if s.dur != nil {
				p.logOp(opPut, enc, &r)
			}
		default:
			route := r.route()
			r.setStrings(&route, r.writer(), req.Reason)
			r.updated, r.confirmed = t, false
			p.rev++
			r.rev = p.rev
			p.put(slot, &r)
			if s.dur != nil {
				p.logOp(opUpdate, enc, &r)
			}
		}
		r.record(&res.Record)
		res.Size = p.Len()
		return nil
	})
	if err != nil {
		return FeedbackResult{}, err
	}
	return res, nil
}

// durably runs apply under p's write lock. For a durable store it first
// refuses the write while the log cannot be written, then appends the
// operations apply logged before releasing the lock and waits for them
// after.
func (s *MemoryStore) durably(p *memPartitionState, apply func() error) error {
	if s.dur == nil {
		p.mu.Lock()
		defer p.mu.Unlock()
		return apply()
	}
	if err := s.dur.usable(); err != nil {
		return err
	}
	p.mu.Lock()
	err := apply()
	pd, lerr := s.dur.append(p)
	p.mu.Unlock()
	switch {
	case err != nil:
		return err
	case lerr != nil:
		return lerr
	}
	return s.dur.wait(pd)
}

// Delete implements Store.
func (s *MemoryStore) Delete(ctx context.Context, key StoreKey) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	p, err := s.part(key.Partition)
	if err != nil {
		return 0, err
	}
	var buf [keyBufSize]byte
	enc := encoded(key.Key, &buf)
	size := 0
	err = s.durably(p, func() error {
		if p.closed.Load() {
			return ErrClosed
		}
		pos, slot := p.find(&key, enc)
		if slot == memtable.NoSlot {
			size = p.Len()
			return ErrNotFound
		}
		if s.dur != nil {
			p.logOp(opDelete, enc, nil)
		}
		p.removeAt(pos, slot)
		size = p.Len()
		return nil
	})
	if err == ErrClosed {
		return 0, err
	}
	return size, err
}

// sweep visits the slots of partition from slot from on, one chunk per
// lock hold, calling visit for each record; visit returns whether to
// remove the record (only when write) and whether to stop. After each
// hold, once the lock is released, it calls flush (when not nil), which
// may stop the sweep too, at a slot of its choosing: a visit that only
// copies what it needs leaves the work to flush, outside the lock. A sweep that
// does not write holds the lock as a reader (RLock), which does not move
// the sequence number, so lookups go on without the lock meanwhile; a
// writing sweep holds the write lock. It returns the slot after the last one
// visited and whether the end was reached.
//
// With logged (a durable store's DeleteMatching), each removal is logged
// and each chunk's removals waited for before the next chunk.
func (s *MemoryStore) sweep(ctx context.Context, partition int, from int32, write, logged bool,
	visit func(p *memPartitionState, slot int32) (remove, stop bool), flush func() (at int32, stop bool)) (next int32, done bool, err error) {
	p, err := s.part(partition)
	if err != nil {
		return 0, false, err
	}
	logged = logged && write && s.dur != nil
	if logged {
		if err := s.dur.usable(); err != nil {
			return from, false, err
		}
	}
	for slot := from; ; {
		if err := ctx.Err(); err != nil {
			return slot, false, err
		}
		lock, unlock := p.mu.RLock, p.mu.RUnlock
		if write {
			lock, unlock = p.mu.Lock, p.mu.Unlock
		}
		lock()
		var locked time.Time
		if s.holds != nil {
			locked = time.Now()
		}
		if p.closed.Load() {
			unlock()
			return slot, false, ErrClosed
		}
		end := min(p.Slots(), (slot/memtable.ChunkSize+1)*memtable.ChunkSize)
		stop := false
		for ; slot < end && !stop; slot++ {
			if !p.Used(slot) {
				continue
			}
			var remove bool
			remove, stop = visit(p, slot)
			if remove && write {
				if logged {
					p.logOp(opDelete, p.Key(slot), nil)
				}
				p.remove(slot)
			}
		}
		total := p.Slots()
		var pd pending
		var lerr error
		if logged {
			pd, lerr = s.dur.append(p)
		}
		if s.holds != nil {
			s.holds(time.Since(locked))
		}
		unlock()
		if logged && lerr == nil {
			lerr = s.dur.wait(pd)
		}
		if lerr != nil {
			return slot, false, lerr
		}
		if flush != nil {
			if at, ok := flush(); ok {
				slot, stop = at, true
			}
		}
		if slot >= total {
			return slot, true, nil
		}
		if stop {
			return slot, false, nil
		}
	}
}

// scanned is a record copied under a partition's lock, with its key and
// slot, for Scan and snapshots to work on after the lock.
type scanned struct {
	slot   int32
	n      uint8 // the inline key's length
	inline [memtable.InlineKey]byte
	long   string // the key, when longer than InlineKey
	r      memRecord
}

// copySlot copies the record in slot and its key; the caller holds the
// lock.
func (p *memPartitionState) copySlot(slot int32) scanned {
	c := scanned{slot: slot, r: p.rec(slot)}
	if enc := p.Key(slot); len(enc) > memtable.InlineKey {
		c.long = unsafe.String(&enc[0], len(enc)) // the table's own string: it never changes
	} else {
		c.n = uint8(copy(c.inline[:], enc))
	}
	return c
}

// key decodes c's key: new strings for an inline key, substrings of the
// table's own string for a long one.
func (c *scanned) key() SessionKey {
	if c.long != "" {
		return splitKey(c.long)
	}
	return decodeKey(c.inline[:c.n])
}

// Prune implements Store. It deletes expired records one chunk of slots
// per lock hold.
func (s *MemoryStore) Prune(ctx context.Context, partition int, now time.Time) (PruneStats, error) {
	t := now.UnixNano()
	var st PruneStats
	_, _, err := s.sweep(ctx, partition, 0, true, false, func(p *memPartitionState, slot int32) (bool, bool) {
		if t >= p.Value(slot).expires.Load() {
			st.Pruned++
			return true, false
		}
		return false, false
	}, nil)
	if err != nil {
		return PruneStats{}, err
	}
	st.Size, err = s.size(partition)
	return st, err
}

func (s *MemoryStore) size(partition int) (int, error) {
	p, err := s.part(partition)
	if err != nil {
		return 0, err
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed.Load() {
		return 0, ErrClosed
	}
	return p.Len(), nil
}

// Scan implements Store. Positions are slot numbers: a record keeps its
// slot until it is deleted.
func (s *MemoryStore) Scan(ctx context.Context, req ScanRequest) (ScanResult, error) {
	if req.After > math.MaxInt32 {
		return ScanResult{Next: req.After, Done: true}, nil
	}
	t := req.Now.UnixNano()
	// Under the lock, each slot's record and key are only copied; the
	// flush after each hold checks them, decodes the keys and allocates,
	// so that the lock is held for a copy of the chunk: a goroutine that
	// the runtime deschedules (for the collector's stack scan and its
	// workers, on a small machine) then rarely holds the lock meanwhile.
	res := ScanResult{Entries: make([]Entry, 0, min(req.Limit, memtable.ChunkSize))}
	bufp, _ := s.scans.Get().(*[]scanned)
	if bufp == nil {
		bufp = new(make([]scanned, 0, memtable.ChunkSize))
	}
	buf := (*bufp)[:0]
	defer func() {
		clear(buf) // for the collector
		*bufp = buf[:0]
		s.scans.Put(bufp)
	}()
	next, done, err := s.sweep(ctx, req.Partition, int32(req.After), false, false, func(p *memPartitionState, slot int32) (bool, bool) {
		buf = append(buf, p.copySlot(slot))
		return false, false
	}, func() (int32, bool) {
		defer func() { clear(buf); buf = buf[:0] }()
		for i := range buf {
			c := &buf[i]
			if t >= c.r.expires {
				continue
			}
			e := Entry{Key: c.key(), Partition: req.Partition}
			c.r.record(&e.Record)
			if !req.Filter.Match(e.Key, &e.Record) {
				continue
			}
			res.Entries = append(res.Entries, e)
			if len(res.Entries) >= req.Limit {
				return c.slot + 1, true
			}
		}
		return 0, false
	})
	if err != nil {
		return ScanResult{}, err
	}
	res.Next, res.Done = uint64(next), done
	return res, nil
}

// DeleteMatching implements Store.
func (s *MemoryStore) DeleteMatching(ctx context.Context, req DeleteRequest) (DeleteStats, error) {
	t := req.Now.UnixNano()
	var st DeleteStats
	// Under the lock the matched keys' bytes are only copied; the flush
	// after each hold decodes them (one allocation for the hold's keys)
	// and grows st.Keys.
	var keys []byte // the hold's matched keys, encoded
	var ends []int  // where each ends in keys
	_, _, err := s.sweep(ctx, req.Partition, 0, !req.DryRun, true, func(p *memPartitionState, slot int32) (bool, bool) {
		r := p.rec(slot)
		enc := p.Key(slot)
		if t >= r.expires || !r.matches(&req.Filter, enc) {
			return false, false
		}
		if ends == nil { // once, a chunk of inline keys' worth
			keys, ends = make([]byte, 0, memtable.ChunkSize*memtable.InlineKey), make([]int, 0, memtable.ChunkSize)
		}
		keys = append(keys, enc...)
		ends = append(ends, len(keys))
		st.Matched++
		if req.DryRun {
			return false, false
		}
		st.Deleted++
		return true, false
	}, func() (int32, bool) {
		all, start := string(keys), 0
		for _, end := range ends {
			st.Keys = append(st.Keys, splitKey(all[start:end]))
			start = end
		}
		keys, ends = keys[:0], ends[:0]
		return 0, false
	})
	if err != nil {
		return DeleteStats{}, err
	}
	st.Size, err = s.size(req.Partition)
	return st, err
}

// Stat implements Store. A memory partition is always available; its Owner
// is "memory".
func (s *MemoryStore) Stat(ctx context.Context, partition int) (StoreStatus, error) {
	if err := ctx.Err(); err != nil {
		return StoreStatus{}, err
	}
	n, err := s.size(partition)
	if err != nil {
		return StoreStatus{}, err
	}
	return StoreStatus{Owner: "memory", Available: true, Entries: n}, nil
}

// Close implements Store: it drops every record. Later calls return
// ErrClosed.
func (s *MemoryStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.parts == nil {
		return nil
	}
	var derr error
	if s.dur != nil && !s.parts[0].closed.Load() {
		derr = s.dur.close(s)
	}
	closed := false
	for i := range s.parts {
		p := &s.parts[i]
		p.mu.Lock()
		closed = closed || p.closed.Load()
		p.closed.Store(true)
		p.Reset(p.Seed())
		p.mu.Unlock()
	}
	if closed {
		return ErrClosed
	}
	return derr
}
