package switchboard

import (
	"hash/maphash"

	"github.com/cespare/xxhash/v2"
)

// jumpHash is the jump consistent hash of Lamping and Veach (2014, "A Fast,
// Minimal Memory, Consistent Hash Algorithm"): it maps key to a bucket in
// [0, buckets) so that growing buckets from n to n+1 moves only about
// 1/(n+1) of the keys.
func jumpHash(key uint64, buckets int) int {
	var b, j int64 = -1, 0
	for j < int64(buckets) {
		b = j
		key = key*2862933555777941757 + 1
		j = int64(float64(b+1) * (float64(int64(1)<<31) / float64((key>>33)+1)))
	}
	return int(b)
}

// roomHash returns xxhash64(ChannelType + "\x00" + BridgeID + "\x00" +
// RoomID), the stable hash that places a key in its partition.
func roomHash(k SessionKey) uint64 {
	var buf [keyBufSize]byte
	h, _, _ := keyHashes(k, nil, &buf)
	return h
}

// keyBufSize bounds the stack buffer keyHashes encodes a key into; longer
// keys stream through the hashers instead.
const keyBufSize = 96

// keyHashes returns the room hash of k (see roomHash) and, when seed is not
// nil, the index hash of the whole key: maphash with *seed over its
// encoding (see encodeKey). Index hashes are seeded per Manager so that
// nobody can choose keys that collide in a partition's index. Both come
// from one encoding of the key into buf, which is returned as enc (nil when
// the key does not fit), and no allocation.
func keyHashes(k SessionKey, seed *maphash.Seed, buf *[keyBufSize]byte) (room, full uint64, enc []byte) {
	roomLen := len(k.ChannelType) + len(k.BridgeID) + len(k.RoomID) + 2
	if encodedLen(k) > keyBufSize {
		room, full = keyHashesLong(k, seed)
		return room, full, nil
	}
	enc = appendKey(buf[:0], k)
	room = xxhash.Sum64(enc[:roomLen])
	if seed == nil {
		return room, 0, enc[:roomLen]
	}
	return room, maphash.Bytes(*seed, enc), enc
}

// roomIndexHash returns the index hash of the room scope of k, given k's
// encoding from keyHashes (its room's encoding is a prefix of it).
func roomIndexHash(k SessionKey, enc []byte, seed *maphash.Seed) uint64 {
	if k.ThreadID == "" || enc == nil {
		_, h := keyHashesLong(k.RoomScope(), seed)
		return h
	}
	return maphash.Bytes(*seed, enc[:len(enc)-len(k.ThreadID)-1])
}

func keyHashesLong(k SessionKey, seed *maphash.Seed) (room, full uint64) {
	var d xxhash.Digest
	d.Reset()
	_, _ = d.WriteString(k.ChannelType)
	_, _ = d.WriteString("\x00")
	_, _ = d.WriteString(k.BridgeID)
	_, _ = d.WriteString("\x00")
	_, _ = d.WriteString(k.RoomID)
	room = d.Sum64()
	if seed == nil {
		return room, 0
	}
	var m maphash.Hash
	m.SetSeed(*seed)
	_, _ = m.WriteString(k.ChannelType)
	_, _ = m.WriteString("\x00")
	_, _ = m.WriteString(k.BridgeID)
	_, _ = m.WriteString("\x00")
	_, _ = m.WriteString(k.RoomID)
	if k.ThreadID != "" {
		_, _ = m.WriteString("\x00")
		_, _ = m.WriteString(k.ThreadID)
	}
	return room, m.Sum64()
}
