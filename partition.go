package switchboard

import (
	"encoding/binary"
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
	room, full = encodedHashes(k, enc, seed)
	return room, full, enc
}

// encodedHashes returns the room and index hashes of k (see keyHashes)
// from its encoding enc.
func encodedHashes(k SessionKey, enc []byte, seed *maphash.Seed) (room, full uint64) {
	roomLen := len(k.ChannelType) + len(k.BridgeID) + len(k.RoomID) + 2
	return xxhash.Sum64(enc[:roomLen]), maphash.Bytes(*seed, enc)
}

// encodeValid encodes k into buf (see appendKey) and checks, in the same
// pass, the common case of Validate: the three required fields are
// non-empty and every byte of every field is printable ASCII (0x20–0x7e),
// the whole encoding fitting in buf (so no field exceeds MaxFieldLen).
// false means "ask Validate": k may still be valid (UTF-8, or too long for
// buf), and enc is then nil.
//
// The check runs over the encoding eight bytes at a time, once, instead of
// field by field: the separators are written as spaces and the encoding
// is padded with spaces to a multiple of eight while it is checked, then
// the separators are set to 0.
func encodeValid(k SessionKey, buf *[keyBufSize]byte) ([]byte, bool) {
	n := encodedLen(k)
	if n > keyBufSize || k.ChannelType == "" || k.BridgeID == "" || k.RoomID == "" {
		return nil, false
	}
	b := buf[:]
	i := copy(b, k.ChannelType)
	s1 := i
	b[i] = ' '
	i += 1 + copy(b[i+1:], k.BridgeID)
	s2 := i
	b[i] = ' '
	i += 1 + copy(b[i+1:], k.RoomID)
	s3 := -1
	if k.ThreadID != "" {
		s3 = i
		b[i] = ' '
		i += 1 + copy(b[i+1:], k.ThreadID)
	}
	for ; i%8 != 0; i++ {
		b[i] = ' '
	}
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	var bad uint64
	for j := 0; j < i; j += 8 {
		w := binary.LittleEndian.Uint64(b[j:])
		bad |= (w - 0x20*lo) &^ w
		bad |= w + lo // 0x7f becomes 0x80
		bad |= w
	}
	if bad&hi != 0 {
		return nil, false
	}
	b[s1], b[s2] = 0, 0
	if s3 >= 0 {
		b[s3] = 0
	}
	return b[:n], true
}

// roomIndexHash returns the index hash of the room scope of the thread key
// k, given k's encoding from keyHashes (its room's encoding is a prefix of
// it).
func roomIndexHash(k SessionKey, enc []byte, seed *maphash.Seed) uint64 {
	return maphash.Bytes(*seed, enc[:len(enc)-len(k.ThreadID)-1])
}
