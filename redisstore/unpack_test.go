package redisstore

import (
	"strings"
	"testing"
)

func TestUnpack(t *testing.T) {
	nine := "u\x1fe\x1f{}\x1fset\x1fw\x1f0\x1f7\x1f0\x1f"
	tests := []struct {
		d  string
		ok bool
	}{
		{nine, true},
		{strings.Repeat("\x1f", 8), true}, // nine empty values
		{"u\x1fe\x1f{}\x1fset\x1fw\x1f0\x1f7\x1f0", false}, // eight
		{nine + "\x1fx", false},                            // ten
		{"", false},
	}
	for _, tt := range tests {
		var f [recordFields]string
		if got := unpack(tt.d, &f); got != tt.ok {
			t.Errorf("unpack(%q) = %v, want %v", tt.d, got, tt.ok)
		}
	}
	var f [recordFields]string
	if !unpack(nine, &f) || f != [recordFields]string{"u", "e", "{}", "set", "w", "0", "7", "0", ""} {
		t.Fatalf("unpack(%q) = %q", nine, f)
	}
}

// FuzzUnpack: unpack accepts exactly the strings of nine values joined by
// the byte 31, and gives them back.
func FuzzUnpack(f *testing.F) {
	f.Add("u\x1fe\x1f{}\x1fset\x1fw\x1f0\x1f7\x1f0\x1f")
	f.Add("\x1f\x1f")
	f.Fuzz(func(t *testing.T, d string) {
		var v [recordFields]string
		ok := unpack(d, &v)
		if want := strings.Count(d, "\x1f") == recordFields-1; ok != want {
			t.Fatalf("unpack(%q) = %v, want %v", d, ok, want)
		}
		if ok && strings.Join(v[:], "\x1f") != d {
			t.Fatalf("unpack(%q) = %q, which does not join back", d, v)
		}
	})
}
