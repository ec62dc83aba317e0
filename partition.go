package switchboard

import "github.com/cespare/xxhash/v2"

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

// hashBufSize bounds the stack buffer keyHashes hashes from; longer keys
// stream through an xxhash.Digest instead.
const hashBufSize = 256

// keyHashes returns xxhash64 of the room scope of k, ChannelType + "\x00" +
// BridgeID + "\x00" + RoomID, which places the key in a partition, and a
// hash of the whole key, which indexes it within the partition (equal to
// the room hash when k has no thread). Both come from one pass over the
// bytes and no allocation.
func keyHashes(k SessionKey) (room, full uint64) {
	n := len(k.ChannelType) + len(k.BridgeID) + len(k.RoomID) + 3 + len(k.ThreadID)
	if n <= hashBufSize {
		var buf [hashBufSize]byte
		i := copy(buf[:], k.ChannelType)
		buf[i] = 0
		i++
		i += copy(buf[i:], k.BridgeID)
		buf[i] = 0
		i++
		i += copy(buf[i:], k.RoomID)
		room = xxhash.Sum64(buf[:i])
		if k.ThreadID == "" {
			return room, room
		}
		buf[i] = 0
		i++
		i += copy(buf[i:], k.ThreadID)
		return room, xxhash.Sum64(buf[:i])
	}
	var d xxhash.Digest
	d.Reset()
	_, _ = d.WriteString(k.ChannelType)
	_, _ = d.WriteString("\x00")
	_, _ = d.WriteString(k.BridgeID)
	_, _ = d.WriteString("\x00")
	_, _ = d.WriteString(k.RoomID)
	room = d.Sum64()
	if k.ThreadID == "" {
		return room, room
	}
	_, _ = d.WriteString("\x00")
	_, _ = d.WriteString(k.ThreadID)
	return room, d.Sum64()
}
