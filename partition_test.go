package switchboard

import (
	"fmt"
	"hash/maphash"
	"strings"
	"testing"

	"github.com/cespare/xxhash/v2"
)

func TestJumpHashReferenceVectors(t *testing.T) {
	// Values of the published algorithm, as other implementations test it.
	tests := []struct {
		key     uint64
		buckets int
		want    int
	}{
		{10863919174838991, 11, 6},
		{2016238256797177309, 11, 3},
		{0, 1, 0},
		{^uint64(0), 1, 0},
	}
	for _, tt := range tests {
		if got := jumpHash(tt.key, tt.buckets); got != tt.want {
			t.Errorf("jumpHash(%d, %d) = %d, want %d", tt.key, tt.buckets, got, tt.want)
		}
	}
}

func TestKeyHashesMatchSpec(t *testing.T) {
	long := strings.Repeat("z", 300)
	seed := maphash.MakeSeed()
	tests := []SessionKey{
		{ChannelType: "telegram", BridgeID: "bot_1", RoomID: "chat_123"},
		{ChannelType: "telegram", BridgeID: "bot_1", RoomID: "chat_123", ThreadID: "t1"},
		{ChannelType: "matrix", BridgeID: "b", RoomID: "!abc:matrix.org", ThreadID: "$ev"},
		{ChannelType: "x", BridgeID: "y", RoomID: "z" + long, ThreadID: "w"}, // past the stack buffer
		{ChannelType: "x", BridgeID: "y", RoomID: "z", ThreadID: long},
		{ChannelType: "x", BridgeID: "y", RoomID: "z" + long},
	}
	encode := func(k SessionKey) string { return string(appendKey(nil, k)) }
	for _, k := range tests {
		var buf [keyBufSize]byte
		room, full, enc := keyHashes(k, &seed, &buf)
		if string(enc) != encode(k) || len(enc) != encodedLen(k) {
			t.Errorf("encoding of %.40v = %q, want %q", k, enc, encode(k))
		}
		if got := decodeKey(enc); got != k {
			t.Errorf("decodeKey(encoding of %.40v) = %.40v", k, got)
		}
		wantRoom := xxhash.Sum64String(k.ChannelType + "\x00" + k.BridgeID + "\x00" + k.RoomID)
		if room != wantRoom || roomHash(k) != wantRoom {
			t.Errorf("room hash of %.40v = %x (%x), want %x", k, room, roomHash(k), wantRoom)
		}
		if want := maphash.String(seed, encode(k)); full != want {
			t.Errorf("index hash of %.40v = %x, want %x", k, full, want)
		}
		if k.ThreadID != "" {
			if want := maphash.String(seed, encode(k.RoomScope())); roomIndexHash(k, enc, &seed) != want {
				t.Errorf("room index hash of %.40v = %x, want %x", k, roomIndexHash(k, enc, &seed), want)
			}
		}
		for _, other := range []SessionKey{{k.ChannelType, k.BridgeID, k.RoomID, k.ThreadID + "x"}, {k.ChannelType + "x", k.BridgeID, k.RoomID, k.ThreadID}, k.RoomScope()} {
			if other != k && encode(other) == encode(k) {
				t.Errorf("%.40v and %.40v encode alike", k, other)
			}
		}
	}
	// A golden value pins xxhash64 itself.
	if got := roomHash(tests[0]); got != 0x8e8f160bf507947b {
		t.Errorf("room hash of %v = %x, want 8e8f160bf507947b", tests[0], got)
	}
}

// TestJumpHashMovesFewRooms checks the consistency the partitioning relies
// on: going from n to n+1 partitions moves about 1/(n+1) of the rooms, and
// only into the new partition.
func TestJumpHashMovesFewRooms(t *testing.T) {
	const rooms = 20000
	for _, n := range []int{2, 8, 31} {
		moved := 0
		for i := range rooms {
			h := roomHash(SessionKey{ChannelType: "slack", BridgeID: "T1", RoomID: fmt.Sprintf("C%d", i)})
			before, after := jumpHash(h, n), jumpHash(h, n+1)
			if before != after {
				moved++
				if after != n {
					t.Fatalf("n=%d: room %d moved from %d to %d, not to the new partition", n, i, before, after)
				}
			}
		}
		want := rooms / (n + 1)
		if moved < want*8/10 || moved > want*12/10 {
			t.Errorf("n=%d: %d of %d rooms moved, want about %d", n, moved, rooms, want)
		}
	}
}

// BenchmarkKeyEncoding compares, on one key in cache, the encoding with its
// check in one pass (encodeValid, what the Manager does) against Validate
// followed by the encoding (what it did before).
func BenchmarkKeyEncoding(b *testing.B) {
	k := SessionKey{ChannelType: "telegram", BridgeID: "bot_3", RoomID: "room_12345", ThreadID: "th_2"}
	var buf [keyBufSize]byte
	b.Run("validate_then_encode", func(b *testing.B) {
		for b.Loop() {
			if k.Validate() != nil || len(encoded(k, &buf)) == 0 {
				b.Fatal("invalid")
			}
		}
	})
	b.Run("encodeValid", func(b *testing.B) {
		for b.Loop() {
			if enc, ok := encodeValid(k, &buf); !ok || len(enc) == 0 {
				b.Fatal("invalid")
			}
		}
	})
}
