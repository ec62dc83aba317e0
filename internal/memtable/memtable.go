// Package memtable is the storage engine of one memory partition, without
// locking: fixed-size chunks of slots holding a value and its key, an
// open-addressing hash index over them, and an intrusive
// least-recently-written list through them. Every operation is O(1)
// (amortized, for index growth).
//
// Keys are byte strings (the caller's encoding of its keys) hashed by the
// caller with maphash and the table's seed, so that nobody who does not
// know the seed can choose keys that collide in the index. Values are the
// caller's: the table never looks inside them, and never writes them
// after the zero value of a new chunk.
//
// The caller locks: one writer at a time, which may read and write
// everything. Besides, FindShared may run concurrently with that writer,
// for a caller that validates what it read afterwards (a sequence lock):
// everything FindShared reads — the index, the chunk list and the inline
// key bytes — writers store atomically, so FindShared never faults, never
// loops for ever and never races, whatever it is interleaved with; what it
// returns is only meaningful if no writer was inside meanwhile.
package memtable

import (
	"hash/maphash"
	"sync/atomic"
	"unsafe"
)

// Table is one partition's records: values of type V under byte-string
// keys. The zero Table is not ready: call Reset first.
//
// Its fields come in two groups a cache-line pair apart: first those every
// write changes, then those lookups read and only an index growth or a new
// chunk changes, so that writes on one core do not evict from the other
// cores' caches what their lookups read. An embedding struct can put its
// own write-hot fields right before a Table and its read-mostly ones right
// after.
type Table[V any] struct {
	// Written by every write.
	slots  int32        // slots handed out so far, free ones included
	free   int32        // head of the free-slot list (through links), or NoSlot
	oldest int32        // least recently written slot, or NoSlot
	newest int32        // most recently written slot, or NoSlot
	size   atomic.Int64 // records held (read by shared readers)
	_      [128]byte
	// Read by every lookup.
	seed   maphash.Seed
	index  atomic.Pointer[[]uint64]               // buckets (see bucket); linear probing; len is a power of two, at most 70% full
	chunks atomic.Pointer[[]*[ChunkSize]entry[V]] // published anew when a chunk is added
	links  []link                                 // per slot: its neighbours on the list (or, while free, the next free slot)
}

const (
	chunkBits = 8
	// ChunkSize is the number of slots per chunk: slots are allocated a
	// chunk at a time, and a slot keeps its number for the life of its
	// record, so scanning slot numbers in order visits each record that
	// stays put exactly once.
	ChunkSize = 1 << chunkBits
	// NoSlot is the slot number of nothing.
	NoSlot   = -1
	minIndex = 16
)

// InlineKey is how many bytes of key a slot holds inline; longer keys are
// kept in a string of their own (one allocation when inserted), which
// FindShared does not read.
const InlineKey = 46

// keyWords is the size of a slot's key in 8-byte words: InlineKey bytes of
// key, then the key's length in two bytes (little-endian).
const keyWords = (InlineKey + 2) / 8

// entry is one slot. The key is kept inline when it fits, so a hit reads
// the index and then this one slot and nothing else. The list links live
// apart, in Table.links, a dense array that stays in cache, so that
// relinking a record's random neighbours on a write does not miss the
// cache for each of them.
type entry[V any] struct {
	val  V
	long string // the key when longer than InlineKey, else ""
	// key is the inline key bytes (zero-padded) and, in the last two
	// bytes, the key's length (0 marks a free slot), as words that
	// writers store atomically for FindShared.
	key [keyWords]uint64
}

// keyBytes returns e's key words as bytes, for the writer (or a reader
// holding the caller's lock).
func (e *entry[V]) keyBytes() *[keyWords * 8]byte {
	return (*[keyWords * 8]byte)(unsafe.Pointer(&e.key))
}

func (e *entry[V]) keyLen() int {
	b := e.keyBytes()
	return int(b[InlineKey]) | int(b[InlineKey+1])<<8
}

// setKey stores key (and its length, 0 for none) word by word.
func (e *entry[V]) setKey(key []byte) {
	var w [keyWords]uint64
	b := (*[keyWords * 8]byte)(unsafe.Pointer(&w))
	if len(key) <= InlineKey {
		copy(b[:], key)
	}
	b[InlineKey], b[InlineKey+1] = byte(len(key)), byte(len(key)>>8)
	for i := range w {
		if e.key[i] != w[i] {
			atomic.StoreUint64(&e.key[i], w[i])
		}
	}
}

// EntrySize returns the size in bytes of one slot holding a V.
func EntrySize[V any]() uintptr { return unsafe.Sizeof(entry[V]{}) }

// link is a slot's place on the least-recently-written list.
type link struct {
	prev int32 // older neighbour, or NoSlot
	next int32 // newer neighbour, or NoSlot; the next free slot while free
}

// A bucket is one index position, one word so that it is stored and
// loaded atomically: the low 32 bits of a key hash (enough to find its
// home position, so the index grows and deletes without touching the
// records) and, above them, the slot plus one (0 marks an empty bucket).
func bucket(h uint32, slot int32) uint64 { return uint64(h) | uint64(uint32(slot+1))<<32 }

// bucketHash and bucketRef take a bucket apart: its hash bits, and its
// slot plus one.
func bucketHash(b uint64) uint32 { return uint32(b) }
func bucketRef(b uint64) int32   { return int32(b >> 32) }

// Reset empties t and sets the seed of its key hashes. It must not run
// concurrently with anything else on t.
func (t *Table[V]) Reset(seed maphash.Seed) {
	t.slots, t.free, t.oldest, t.newest = 0, NoSlot, NoSlot, NoSlot
	t.size.Store(0)
	t.seed = seed
	t.index.Store(nil)
	t.chunks.Store(nil)
	t.links = nil
}

// buckets returns the index (nil while empty).
func (t *Table[V]) buckets() []uint64 {
	if p := t.index.Load(); p != nil {
		return *p
	}
	return nil
}

// chunkList returns the chunks (nil while none).
func (t *Table[V]) chunkList() []*[ChunkSize]entry[V] {
	if p := t.chunks.Load(); p != nil {
		return *p
	}
	return nil
}

// Seed returns the seed keys are hashed with.
func (t *Table[V]) Seed() maphash.Seed { return t.seed }

// Hash returns the hash of key that Find and Insert expect.
func (t *Table[V]) Hash(key []byte) uint64 { return maphash.Bytes(t.seed, key) }

// Len returns the number of records.
func (t *Table[V]) Len() int { return int(t.size.Load()) }

// Slots returns the number of slots handed out so far (used or free):
// slot numbers are 0..Slots()-1.
func (t *Table[V]) Slots() int32 { return t.slots }

// Used reports whether slot holds a record.
func (t *Table[V]) Used(slot int32) bool {
	return slot >= 0 && slot < t.slots && t.at(slot).keyLen() != 0
}

func (t *Table[V]) at(slot int32) *entry[V] {
	return &t.chunkList()[slot>>chunkBits][slot&(ChunkSize-1)]
}

// Value returns the value in slot, which must hold a record.
func (t *Table[V]) Value(slot int32) *V { return &t.at(slot).val }

// Key returns the key of the record in slot. The bytes are the table's:
// read them before the table changes.
func (t *Table[V]) Key(slot int32) []byte {
	e := t.at(slot)
	n := e.keyLen()
	if n > InlineKey {
		return unsafe.Slice(unsafe.StringData(e.long), len(e.long))
	}
	return e.keyBytes()[:n]
}

func (e *entry[V]) hasKey(key []byte) bool {
	if e.keyLen() != len(key) {
		return false
	}
	if len(key) > InlineKey {
		return e.long == string(key)
	}
	return string(e.keyBytes()[:len(key)]) == string(key)
}

// Find returns the slot of key (hash is t.Hash(key)) and its index
// position, or NoSlot and the empty position where it would go.
func (t *Table[V]) Find(hash uint64, key []byte) (pos uint32, slot int32) {
	index := t.buckets()
	if len(index) == 0 {
		return 0, NoSlot
	}
	h, mask := uint32(hash), uint32(len(index)-1)
	for pos = h & mask; ; pos = (pos + 1) & mask {
		b := index[pos]
		if bucketRef(b) == 0 {
			return pos, NoSlot
		}
		if bucketHash(b) == h && t.at(bucketRef(b)-1).hasKey(key) {
			return pos, bucketRef(b) - 1
		}
	}
}

// FindShared returns the value of key (hash is t.Hash(key)), or nil when
// the table does not hold key. Unlike the rest of Table, it may run
// concurrently with a writer; then its answer may be wrong (a torn read),
// and the caller must not trust it, nor anything it read through the
// value, unless it can tell that no writer was inside meanwhile. Keys
// longer than InlineKey are not compared: it returns nil for them.
func (t *Table[V]) FindShared(hash uint64, key []byte) *V {
	ip, cp := t.index.Load(), t.chunks.Load()
	if ip == nil || cp == nil || len(key) > InlineKey {
		return nil
	}
	index, chunks := *ip, *cp
	h, mask := uint32(hash), uint32(len(index)-1)
	pos := h & mask
	for range index { // bounded: a torn index may have no empty bucket
		b := atomic.LoadUint64(&index[pos])
		ref := bucketRef(b)
		if ref == 0 {
			return nil
		}
		if bucketHash(b) == h {
			slot := ref - 1
			if c := int(slot >> chunkBits); slot >= 0 && c < len(chunks) {
				e := &chunks[c][slot&(ChunkSize-1)]
				if e.sharedHasKey(key) {
					return &e.val
				}
			}
		}
		pos = (pos + 1) & mask
	}
	return nil
}

// sharedHasKey is hasKey for FindShared, for an inline-length key: it
// loads the key words atomically.
func (e *entry[V]) sharedHasKey(key []byte) bool {
	var w [keyWords]uint64
	w[keyWords-1] = atomic.LoadUint64(&e.key[keyWords-1])
	b := (*[keyWords * 8]byte)(unsafe.Pointer(&w))
	if int(b[InlineKey])|int(b[InlineKey+1])<<8 != len(key) {
		return false
	}
	for i := range (len(key) + 7) / 8 {
		if i < keyWords-1 {
			w[i] = atomic.LoadUint64(&e.key[i])
		}
	}
	return string(b[:len(key)]) == string(key)
}

// Insert adds key, which Find just reported absent at pos, as the newest
// record and returns its slot. The slot's value is the zero V if the slot
// is new, and otherwise whatever the caller left in it when it removed
// its record (see RemoveAt). It does not enforce any capacity: the caller
// evicts (see Oldest and Remove).
func (t *Table[V]) Insert(pos uint32, hash uint64, key []byte) int32 {
	if (t.Len()+1)*10 > len(t.buckets())*7 {
		t.grow()
		pos, _ = t.Find(hash, key)
	}
	slot := t.alloc()
	e := t.at(slot)
	if len(key) > InlineKey {
		e.long = string(key)
	}
	e.setKey(key)
	atomic.StoreUint64(&t.buckets()[pos], bucket(uint32(hash), slot))
	t.pushNewest(slot)
	t.size.Add(1)
	return slot
}

// Touch makes the record in slot the most recently written.
func (t *Table[V]) Touch(slot int32) {
	if slot != t.newest {
		t.unlink(slot)
		t.pushNewest(slot)
	}
}

// Oldest returns the least recently written slot, or NoSlot.
func (t *Table[V]) Oldest() int32 { return t.oldest }

// Newer returns the slot written after slot, or NoSlot.
func (t *Table[V]) Newer(slot int32) int32 { return t.links[slot].next }

// grow doubles the index (or creates it) and reinserts every bucket into
// the new one, which it publishes once complete.
func (t *Table[V]) grow() {
	old := t.buckets()
	index := make([]uint64, max(minIndex, 2*len(old)))
	mask := uint32(len(index) - 1)
	for _, b := range old {
		if bucketRef(b) == 0 {
			continue
		}
		pos := bucketHash(b) & mask
		for bucketRef(index[pos]) != 0 {
			pos = (pos + 1) & mask
		}
		index[pos] = b // not yet shared
	}
	t.index.Store(&index)
}

func (t *Table[V]) alloc() int32 {
	if t.free != NoSlot {
		slot := t.free
		t.free = t.links[slot].next
		return slot
	}
	if chunks := t.chunkList(); int(t.slots) == len(chunks)*ChunkSize {
		// Shared readers see the new list only once it holds the chunk;
		// those holding the old one never look past its length.
		chunks = append(chunks, new([ChunkSize]entry[V]))
		t.chunks.Store(&chunks)
	}
	slot := t.slots
	t.slots++
	t.links = append(t.links, link{})
	return slot
}

// Remove deletes the record in slot, which must hold one.
func (t *Table[V]) Remove(slot int32) {
	index := t.buckets()
	h, mask := uint32(t.Hash(t.Key(slot))), uint32(len(index)-1)
	pos := h & mask
	for bucketRef(index[pos]) != slot+1 {
		pos = (pos + 1) & mask
	}
	t.RemoveAt(pos, slot)
}

// RemoveAt deletes the record in slot, whose index position (from Find)
// is pos. It leaves the slot's value as it is — the table does not write
// values, which its caller may be reading without the lock — so a caller
// whose values hold pointers clears it, for the garbage collector.
func (t *Table[V]) RemoveAt(pos uint32, slot int32) {
	t.deleteBucket(pos)
	t.unlink(slot)
	e := t.at(slot)
	e.setKey(nil)
	e.long = "" // for the GC
	t.links[slot].next = t.free
	t.free = slot
	t.size.Add(-1)
}

// deleteBucket empties index position i by backward-shift deletion, so
// that no tombstones are left and probe sequences stay short.
func (t *Table[V]) deleteBucket(i uint32) {
	index := t.buckets()
	mask := uint32(len(index) - 1)
	for {
		atomic.StoreUint64(&index[i], 0)
		j := i
		for {
			j = (j + 1) & mask
			b := index[j]
			if bucketRef(b) == 0 {
				return
			}
			// b may move back to i unless its home lies cyclically in (i, j].
			home := bucketHash(b) & mask
			if (i < j && (home <= i || home > j)) || (i > j && home <= i && home > j) {
				atomic.StoreUint64(&index[i], b)
				i = j
				break
			}
		}
	}
}

// unlink takes slot off the least-recently-written list.
func (t *Table[V]) unlink(slot int32) {
	l := t.links[slot]
	if l.prev != NoSlot {
		t.links[l.prev].next = l.next
	} else {
		t.oldest = l.next
	}
	if l.next != NoSlot {
		t.links[l.next].prev = l.prev
	} else {
		t.newest = l.prev
	}
}

// pushNewest puts slot at the newest end of the list.
func (t *Table[V]) pushNewest(slot int32) {
	t.links[slot] = link{prev: t.newest, next: NoSlot}
	if t.newest != NoSlot {
		t.links[t.newest].next = slot
	} else {
		t.oldest = slot
	}
	t.newest = slot
}

// Check verifies the table's structure — list, index and free slots agree
// — and returns a description of the first fault, or "". For tests.
func (t *Table[V]) Check() string {
	count := 0
	prev := int32(NoSlot)
	for slot := t.oldest; slot != NoSlot; slot = t.links[slot].next {
		if t.links[slot].prev != prev {
			return "list: a slot's prev link is wrong"
		}
		if !t.Used(slot) {
			return "list: a free slot is on the list"
		}
		if _, found := t.Find(t.Hash(t.Key(slot)), t.Key(slot)); found != slot {
			return "index: a listed record is not found at its slot"
		}
		prev = slot
		count++
	}
	if prev != t.newest || count != t.Len() {
		return "list: wrong end or length"
	}
	used := 0
	index := t.buckets()
	for _, b := range index {
		if bucketRef(b) != 0 {
			used++
		}
	}
	free := 0
	for slot := t.free; slot != NoSlot; slot = t.links[slot].next {
		free++
	}
	if used != t.Len() || free+t.Len() != int(t.slots) {
		return "index or free list: counts disagree with the size"
	}
	if len(index) > 0 && t.Len()*10 > len(index)*7 {
		return "index: over 70% full"
	}
	return ""
}
