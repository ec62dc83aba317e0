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
