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
	var d xxhash.Digest
	d.Reset()
	_, _ = d.WriteString(k.ChannelType)
	_, _ = d.WriteString("\x00")
	_, _ = d.WriteString(k.BridgeID)
	_, _ = d.WriteString("\x00")
	_, _ = d.WriteString(k.RoomID)
	return d.Sum64()
}

// keyBufSize bounds the stack buffer keyHashes encodes a key into; the
// encoding of a longer key is allocated.
const keyBufSize = 96

// keyHashes encodes k once (see appendKey) into buf — or, for a key longer
// than keyBufSize, into a new slice — and returns the room hash of k (see
// roomHash), the index hash of the whole key (maphash with *seed over its
// encoding) and the encoding. Index hashes are seeded per Manager so that
// nobody can choose keys that collide in a partition's index.
func keyHashes(k SessionKey, seed *maphash.Seed, buf *[keyBufSize]byte) (room, full uint64, enc []byte) {
	enc = encoded(k, buf)
	roomLen := len(k.ChannelType) + len(k.BridgeID) + len(k.RoomID) + 2
	return xxhash.Sum64(enc[:roomLen]), maphash.Bytes(*seed, enc), enc
}

// roomIndexHash returns the index hash of the room scope of the thread key
// k, given k's encoding from keyHashes (its room's encoding is a prefix of
// it).
func roomIndexHash(k SessionKey, enc []byte, seed *maphash.Seed) uint64 {
	return maphash.Bytes(*seed, enc[:len(enc)-len(k.ThreadID)-1])
}
