// Package memtable is the storage engine of one memory partition, without
// locking: fixed-size chunks of slots holding a value and its key, an
// open-addressing hash index over them, and an intrusive
// least-recently-written list through them. Every operation is O(1)
// (amortized, for index growth).
//
// Keys are byte strings (the caller's encoding of its keys) hashed by the
// caller with maphash and the table's seed, so that nobody who does not
// know the seed can choose keys that collide in the index. Values are the
// caller's: the table never looks inside them. The caller locks.
package memtable

import (
	"hash/maphash"
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
	slots  int32 // slots handed out so far, free ones included
	free   int32 // head of the free-slot list (through links), or NoSlot
	oldest int32 // least recently written slot, or NoSlot
	newest int32 // most recently written slot, or NoSlot
	size   int   // records held
	_      [128]byte
	// Read by every lookup.
	seed   maphash.Seed
	index  []bucket // linear probing; len is a power of two, at most 70% full
	chunks []*[ChunkSize]entry[V]
	links  []link // per slot: its neighbours on the list (or, while free, the next free slot)
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
// kept in a string of their own (one allocation when inserted).
const InlineKey = 46

// entry is one slot. The key is kept inline when it fits, so a hit reads
// the index and then this one slot and nothing else. The list links live
// apart, in Table.links, a dense array that stays in cache, so that
// relinking a record's random neighbours on a write does not miss the
// cache for each of them.
type entry[V any] struct {
	val    V
	long   string // the key when longer than InlineKey, else ""
	keyLen uint16 // length of the key; 0 marks a free slot
	inline [InlineKey]byte
}

// EntrySize returns the size in bytes of one slot holding a V.
func EntrySize[V any]() uintptr { return unsafe.Sizeof(entry[V]{}) }

// link is a slot's place on the least-recently-written list.
type link struct {
	prev int32 // older neighbour, or NoSlot
	next int32 // newer neighbour, or NoSlot; the next free slot while free
}

// bucket is one index position: the low 32 bits of a key hash (enough to
// find its home position, so the index grows and deletes without touching
// the records) and the slot plus one (0 marks an empty bucket).
type bucket struct {
	h   uint32
	ref int32
}

// Reset empties t and sets the seed of its key hashes.
func (t *Table[V]) Reset(seed maphash.Seed) {
	*t = Table[V]{seed: seed, free: NoSlot, oldest: NoSlot, newest: NoSlot}
}

// Seed returns the seed keys are hashed with.
func (t *Table[V]) Seed() maphash.Seed { return t.seed }

// Hash returns the hash of key that Find and Insert expect.
func (t *Table[V]) Hash(key []byte) uint64 { return maphash.Bytes(t.seed, key) }

// Len returns the number of records.
func (t *Table[V]) Len() int { return t.size }

// Slots returns the number of slots handed out so far (used or free):
// slot numbers are 0..Slots()-1.
func (t *Table[V]) Slots() int32 { return t.slots }

// Used reports whether slot holds a record.
func (t *Table[V]) Used(slot int32) bool {
	return slot >= 0 && slot < t.slots && t.at(slot).keyLen != 0
}

func (t *Table[V]) at(slot int32) *entry[V] {
	return &t.chunks[slot>>chunkBits][slot&(ChunkSize-1)]
}

// Value returns the value in slot, which must hold a record.
func (t *Table[V]) Value(slot int32) *V { return &t.at(slot).val }

// Key returns the key of the record in slot. The bytes are the table's:
// read them before the table changes.
func (t *Table[V]) Key(slot int32) []byte {
	e := t.at(slot)
	if int(e.keyLen) > InlineKey {
		return unsafe.Slice(unsafe.StringData(e.long), len(e.long))
	}
	return e.inline[:e.keyLen]
}

func (e *entry[V]) hasKey(key []byte) bool {
	if int(e.keyLen) != len(key) {
		return false
	}
	if len(key) > InlineKey {
		return e.long == string(key)
	}
	return string(e.inline[:len(key)]) == string(key)
}

// Find returns the slot of key (hash is t.Hash(key)) and its index
// position, or NoSlot and the empty position where it would go.
func (t *Table[V]) Find(hash uint64, key []byte) (pos uint32, slot int32) {
	if len(t.index) == 0 {
		return 0, NoSlot
	}
	h, mask := uint32(hash), uint32(len(t.index)-1)
	for pos = h & mask; ; pos = (pos + 1) & mask {
		b := t.index[pos]
		if b.ref == 0 {
			return pos, NoSlot
		}
		if b.h == h && t.at(b.ref-1).hasKey(key) {
			return pos, b.ref - 1
		}
	}
}

// Insert adds key, which Find just reported absent at pos, as the newest
// record and returns its slot, whose value is the zero V. It does not
// enforce any capacity: the caller evicts (see Oldest and Remove).
func (t *Table[V]) Insert(pos uint32, hash uint64, key []byte) int32 {
	if (t.size+1)*10 > len(t.index)*7 {
		t.grow()
		pos, _ = t.Find(hash, key)
	}
	slot := t.alloc()
	e := t.at(slot)
	e.keyLen = uint16(len(key))
	if len(key) > InlineKey {
		e.long = string(key)
	} else {
		copy(e.inline[:], key)
	}
	t.index[pos] = bucket{h: uint32(hash), ref: slot + 1}
	t.pushNewest(slot)
	t.size++
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

// grow doubles the index (or creates it) and reinserts every bucket.
func (t *Table[V]) grow() {
	old := t.index
	t.index = make([]bucket, max(minIndex, 2*len(old)))
	mask := uint32(len(t.index) - 1)
	for _, b := range old {
		if b.ref == 0 {
			continue
		}
		pos := b.h & mask
		for t.index[pos].ref != 0 {
			pos = (pos + 1) & mask
		}
		t.index[pos] = b
	}
}

func (t *Table[V]) alloc() int32 {
	if t.free != NoSlot {
		slot := t.free
		t.free = t.links[slot].next
		return slot
	}
	if int(t.slots) == len(t.chunks)*ChunkSize {
		t.chunks = append(t.chunks, new([ChunkSize]entry[V]))
	}
	slot := t.slots
	t.slots++
	t.links = append(t.links, link{})
	return slot
}

// Remove deletes the record in slot, which must hold one.
func (t *Table[V]) Remove(slot int32) {
	h, mask := uint32(t.Hash(t.Key(slot))), uint32(len(t.index)-1)
	pos := h & mask
	for t.index[pos].ref != slot+1 {
		pos = (pos + 1) & mask
	}
	t.RemoveAt(pos, slot)
}

// RemoveAt deletes the record in slot, whose index position (from Find)
// is pos.
func (t *Table[V]) RemoveAt(pos uint32, slot int32) {
	t.deleteBucket(pos)
	t.unlink(slot)
	*t.at(slot) = entry[V]{} // drops the strings for the GC
	t.links[slot].next = t.free
	t.free = slot
	t.size--
}

// deleteBucket empties index position i by backward-shift deletion, so
// that no tombstones are left and probe sequences stay short.
func (t *Table[V]) deleteBucket(i uint32) {
	mask := uint32(len(t.index) - 1)
	for {
		t.index[i] = bucket{}
		j := i
		for {
			j = (j + 1) & mask
			b := t.index[j]
			if b.ref == 0 {
				return
			}
			// b may move back to i unless its home lies cyclically in (i, j].
			home := b.h & mask
			if (i < j && (home <= i || home > j)) || (i > j && home <= i && home > j) {
				t.index[i] = b
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
	if prev != t.newest || count != t.size {
		return "list: wrong end or length"
	}
	used := 0
	for _, b := range t.index {
		if b.ref != 0 {
			used++
		}
	}
	free := 0
	for slot := t.free; slot != NoSlot; slot = t.links[slot].next {
		free++
	}
	if used != t.size || free+t.size != int(t.slots) {
		return "index or free list: counts disagree with the size"
	}
	if len(t.index) > 0 && t.size*10 > len(t.index)*7 {
		return "index: over 70% full"
	}
	return ""
}
