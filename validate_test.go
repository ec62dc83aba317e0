package switchboard

import (
	"strings"
	"testing"
)

// TestFieldOK checks the word-at-a-time fast path against checkField for
// every byte value at every position of an eight-byte word and its tail.
func TestFieldOK(t *testing.T) {
	for n := 1; n <= 17; n++ {
		for pos := range n {
			for c := range 256 {
				b := []byte(strings.Repeat("a", n))
				b[pos] = byte(c)
				s := string(b)
				want := c >= 0x20 && c < 0x7f
				if got := fieldOK(s); got != want {
					t.Fatalf("fieldOK(%q) = %v, want %v", s, got, want)
				}
				if got := checkField(s) == ""; got != want && c < 0x80 {
					t.Fatalf("checkField(%q) accepted = %v, want %v", s, got, want)
				}
			}
		}
	}
	if fieldOK(strings.Repeat("a", MaxFieldLen+1)) || !fieldOK(strings.Repeat("a", MaxFieldLen)) || !fieldOK("") {
		t.Fatal("fieldOK length limits")
	}
}

func FuzzCheckField(f *testing.F) {
	for _, s := range []string{"", "abc", "a\x00b", "ü", "\xff", "\x7f", strings.Repeat("x", 600)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		slow := checkField(s) == ""
		if fieldOK(s) && !slow {
			t.Fatalf("fieldOK(%q) accepts what checkField rejects: %s", s, checkField(s))
		}
	})
}

// TestEncodeValid checks the one-pass check and encoding against Validate
// and appendKey: every byte value in every field, at every position of a
// word and its tail.
func TestEncodeValid(t *testing.T) {
	base := SessionKey{ChannelType: "telegram", BridgeID: "bot_1", RoomID: "chat_12", ThreadID: "th"}
	for field := range 4 {
		for pos := range 9 {
			for c := range 256 {
				k := base
				f := [...]*string{&k.ChannelType, &k.BridgeID, &k.RoomID, &k.ThreadID}[field]
				s := []byte(strings.Repeat("a", 9))
				s[pos] = byte(c)
				*f = string(s)
				checkEncodeValid(t, k)
			}
		}
	}
	for _, k := range []SessionKey{
		{}, {ChannelType: "a", BridgeID: "b"}, {ChannelType: "a", BridgeID: "b", RoomID: "c"},
		{ChannelType: "a", BridgeID: "b", RoomID: strings.Repeat("r", keyBufSize)},
		{ChannelType: "a", BridgeID: "b", RoomID: strings.Repeat("r", keyBufSize-4)}, // exactly fills the buffer
		{ChannelType: "ü", BridgeID: "b", RoomID: "c"},
	} {
		checkEncodeValid(t, k)
	}
}

func checkEncodeValid(t *testing.T, k SessionKey) {
	t.Helper()
	var buf [keyBufSize]byte
	enc, ok := encodeValid(k, &buf)
	valid := k.Validate() == nil
	ascii := true
	for _, f := range []string{k.ChannelType, k.BridgeID, k.RoomID, k.ThreadID} {
		for i := 0; i < len(f); i++ {
			ascii = ascii && f[i] >= 0x20 && f[i] < 0x7f
		}
	}
	switch {
	case ok && !valid:
		t.Fatalf("encodeValid accepts %q, which Validate rejects: %v", k, k.Validate())
	case ok && string(enc) != string(appendKey(nil, k)):
		t.Fatalf("encodeValid(%q) = %q, want %q", k, enc, appendKey(nil, k))
	case !ok && valid && ascii && encodedLen(k) <= keyBufSize:
		t.Fatalf("encodeValid refuses %q, a valid printable key that fits", k)
	}
}

func FuzzEncodeValid(f *testing.F) {
	f.Add("telegram", "bot_1", "chat_1", "")
	f.Add("slack", "T1", "C\x001", "1.2")
	f.Add("a", "b", "c\x7f", "ü")
	f.Fuzz(func(t *testing.T, ch, br, room, thread string) {
		checkEncodeValid(t, SessionKey{ChannelType: ch, BridgeID: br, RoomID: room, ThreadID: thread})
	})
}
