package switchboard

import "hash/maphash"

// memTable is the storage of one memory partition, without locking: the
// records in fixed-size chunks of slots, an open-addressing hash index over
// them, and an intrusive least-recently-written list through them. Every
// operation is O(1) (amortized, for index growth).
type memTable struct {
	seed   maphash.Seed // the Manager's index-hash seed (see keyHashes)
	index  []bucket     // linear probing; len is a power of two, at most 70% full
	chunks []*[chunkSize]memEntry
	links  []link // per slot: its neighbours on the list (or, while free, the next free slot)
	slots  int32  // slots handed out so far, free ones included
	free   int32  // head of the free-slot list (through links), or noSlot
	oldest int32  // least recently written slot, or noSlot
	newest int32  // most recently written slot, or noSlot
	size   int    // records held
}

const (
	chunkBits = 8
	chunkSize = 1 << chunkBits // slots per chunk
	noSlot    = -1
	minIndex  = 16
)

// memEntry is one slot, 192 bytes (three cache lines; chunks are
// page-aligned, so a slot never straddles more). The key is kept inline
// when its encoding fits, so a hit reads the index and then this one slot
// and nothing else: the route's strings are the caller's, retained, and are
// only copied by header. The list links live apart, in memTable.links, a
// dense array that stays in cache, so that relinking a record's random
// neighbours on a write does not miss the cache for each of them.
type memEntry struct {
	route   Route  // the store's own copy
	updated int64  // unix nanoseconds
	expires int64  // unix nanoseconds
	long    string // the encoded key when longer than inlineKey, else ""
	keyLen  uint16 // length of the encoded key
	inline  [inlineKey]byte
}

// inlineKey is how many bytes of encoded key a slot holds inline.
const inlineKey = 70

// link is a slot's place on the least-recently-written list.
type link struct {
	prev int32 // older neighbour, or noSlot
	next int32 // newer neighbour, or noSlot; the next free slot while free
}

// setKey stores the encoding of k (see encodeKey) in e.
func (e *memEntry) setKey(k SessionKey) {
	n := encodedLen(k)
	e.keyLen = uint16(n)
	if n > inlineKey {
		e.long = encodeKey(k)
		return
	}
	appendKey(e.inline[:0], k)
}

// keyHash returns the StoreKey.Hash of e's key.
func (e *memEntry) keyHash(seed maphash.Seed) uint64 {
	if e.keyLen > inlineKey {
		return maphash.String(seed, e.long)
	}
	return maphash.Bytes(seed, e.inline[:e.keyLen])
}

// hasKey reports whether e holds key k, whose encoding is enc (or nil,
// when the caller does not have it).
func (e *memEntry) hasKey(k SessionKey, enc []byte) bool {
	if enc != nil {
		if e.keyLen > inlineKey {
			return e.long == string(enc)
		}
		return string(e.inline[:e.keyLen]) == string(enc)
	}
	if e.keyLen > inlineKey {
		return keyEquals(e.long, k)
	}
	return keyEquals(string(e.inline[:e.keyLen]), k) // no allocation: the conversion does not escape
}

// bucket is one index position: the low 32 bits of a key hash (enough to
// find its home position, so the index grows and deletes without touching
// the records) and the slot plus one (0 marks an empty bucket).
type bucket struct {
	h   uint32
	ref int32
}

// encodeKey returns k's encoding, ChannelType "\x00" BridgeID "\x00"
// RoomID, then "\x00" ThreadID when there is a thread: unambiguous because
// valid fields hold no control characters. The Manager's StoreKey.Hash is a
// seeded maphash of it (see keyHashes).
func encodeKey(k SessionKey) string {
	return string(appendKey(make([]byte, 0, encodedLen(k)), k))
}

// appendKey appends the encoding of k to b.
func appendKey(b []byte, k SessionKey) []byte {
	b = append(b, k.ChannelType...)
	b = append(b, 0)
	b = append(b, k.BridgeID...)
	b = append(b, 0)
	b = append(b, k.RoomID...)
	if k.ThreadID != "" {
		b = append(b, 0)
		b = append(b, k.ThreadID...)
	}
	return b
}

func encodedLen(k SessionKey) int {
	n := len(k.ChannelType) + len(k.BridgeID) + len(k.RoomID) + 2
	if k.ThreadID != "" {
		n += 1 + len(k.ThreadID)
	}
	return n
}

// keyEquals reports whether s == encodeKey(k), without building it.
func keyEquals(s string, k SessionKey) bool {
	if len(s) != encodedLen(k) {
		return false
	}
	i := len(k.ChannelType)
	if s[:i] != k.ChannelType || s[i] != 0 {
		return false
	}
	s = s[i+1:]
	i = len(k.BridgeID)
	if s[:i] != k.BridgeID || s[i] != 0 {
		return false
	}
	s = s[i+1:]
	i = len(k.RoomID)
	if k.ThreadID == "" {
		return s == k.RoomID
	}
	return s[:i] == k.RoomID && s[i] == 0 && s[i+1:] == k.ThreadID
}

func (t *memTable) reset(seed maphash.Seed) {
	*t = memTable{seed: seed, free: noSlot, oldest: noSlot, newest: noSlot}
}

func (t *memTable) at(slot int32) *memEntry {
	return &t.chunks[slot>>chunkBits][slot&(chunkSize-1)]
}

// find returns the slot of key (hash is its StoreKey.Hash, enc its
// encoding or nil) and its index position, or noSlot and the empty position
// where it would go.
func (t *memTable) find(hash uint64, key SessionKey, enc []byte) (pos uint32, slot int32) {
	if len(t.index) == 0 {
		return 0, noSlot
	}
	h, mask := uint32(hash), uint32(len(t.index)-1)
	for pos = h & mask; ; pos = (pos + 1) & mask {
		b := t.index[pos]
		if b.ref == 0 {
			return pos, noSlot
		}
		if b.h == h && t.at(b.ref-1).hasKey(key, enc) {
			return pos, b.ref - 1
		}
	}
}

// write stores route under key (hash is its StoreKey.Hash): an existing
// record is overwritten and becomes the newest; a new one is added as the
// newest, then the oldest records are evicted while the table holds more
// than limit. route must already be the store's own copy.
func (t *memTable) write(hash uint64, key SessionKey, enc []byte, route Route, updated, expires int64, limit int) (evicted int) {
	pos, slot := t.find(hash, key, enc)
	if slot != noSlot {
		t.overwrite(slot, route, updated, expires)
		return 0
	}
	if (t.size+1)*10 > len(t.index)*7 {
		t.grow()
		pos, _ = t.find(hash, key, enc)
	}
	slot = t.alloc()
	e := t.at(slot)
	e.route, e.updated, e.expires = route, updated, expires
	e.setKey(key)
	t.index[pos] = bucket{h: uint32(hash), ref: slot + 1}
	t.pushNewest(slot)
	t.size++
	for t.size > limit {
		t.remove(t.oldest)
		evicted++
	}
	return evicted
}

// overwrite replaces the record in slot and makes it the newest.
func (t *memTable) overwrite(slot int32, route Route, updated, expires int64) {
	e := t.at(slot)
	e.route, e.updated, e.expires = route, updated, expires
	if slot != t.newest {
		t.unlink(slot)
		t.pushNewest(slot)
	}
}

// grow doubles the index (or creates it) and reinserts every bucket.
func (t *memTable) grow() {
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

func (t *memTable) alloc() int32 {
	if t.free != noSlot {
		slot := t.free
		t.free = t.links[slot].next
		return slot
	}
	if int(t.slots) == len(t.chunks)*chunkSize {
		t.chunks = append(t.chunks, new([chunkSize]memEntry))
	}
	slot := t.slots
	t.slots++
	t.links = append(t.links, link{})
	return slot
}

// remove deletes the record in slot, which must hold one.
func (t *memTable) remove(slot int32) {
	h, mask := uint32(t.at(slot).keyHash(t.seed)), uint32(len(t.index)-1)
	pos := h & mask
	for t.index[pos].ref != slot+1 {
		pos = (pos + 1) & mask
	}
	t.removeAt(pos, slot)
}

// removeAt deletes the record in slot, whose index position is pos.
func (t *memTable) removeAt(pos uint32, slot int32) {
	t.deleteBucket(pos)
	t.unlink(slot)
	*t.at(slot) = memEntry{} // drops the strings for the GC
	t.links[slot].next = t.free
	t.free = slot
	t.size--
}

// deleteBucket empties index position i by backward-shift deletion, so
// that no tombstones are left and probe sequences stay short.
func (t *memTable) deleteBucket(i uint32) {
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
func (t *memTable) unlink(slot int32) {
	l := t.links[slot]
	if l.prev != noSlot {
		t.links[l.prev].next = l.next
	} else {
		t.oldest = l.next
	}
	if l.next != noSlot {
		t.links[l.next].prev = l.prev
	} else {
		t.newest = l.prev
	}
}

// pushNewest puts slot at the newest end of the list.
func (t *memTable) pushNewest(slot int32) {
	t.links[slot] = link{prev: t.newest, next: noSlot}
	if t.newest != noSlot {
		t.links[t.newest].next = slot
	} else {
		t.oldest = slot
	}
	t.newest = slot
}

// pruneExpired removes every record expired at now.
func (t *memTable) pruneExpired(now int64) (pruned int) {
	for slot := t.oldest; slot != noSlot; {
		next := t.links[slot].next
		if now >= t.at(slot).expires {
			t.remove(slot)
			pruned++
		}
		slot = next
	}
	return pruned
}
