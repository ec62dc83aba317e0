package redisstore

import (
	"strings"
	"testing"
)

// recordString is a record's string as the scripts' encode writes it.
func recordString(u, e, v, c, p, o, w, i, x, h, t, r string) string {
	return u + e + strings.Join([]string{v, c, p, o, w, i, x, h, t, r}, "\x1f")
}

func TestUnpack(t *testing.T) {
	u, e := "17650000000000000000", "17650003600000000000"
	full := recordString(u, e, "7", "1", "2", "set", "w", "", "X", "H", "00000003600000000000", `{"external_room_id":"X"}`)
	tests := []struct {
		name string
		s    string
		ok   bool
		want [recordFields]string // u, e, r, o, w, p, v, c, i
	}{
		{"full", full, true, [recordFields]string{u, e, `{"external_room_id":"X"}`, "set", "w", "2", "7", "1", ""}},
		{"empty fields", u + e + strings.Repeat("\x1f", 9), true, [recordFields]string{u, e}},
		{"a reason and no TTL", recordString(u, e, "9", "0", "0", "resolve", "", "gone", "X", "", "", "{}"), true,
			[recordFields]string{u, e, "{}", "resolve", "", "0", "9", "0", "gone"}},
		{"nine fields", u + e + strings.Repeat("\x1f", 8), false, [recordFields]string{}},
		{"short stamps", "1\x1f2" + strings.Repeat("\x1f", 9), false, [recordFields]string{}},
		{"the hash's packed d", strings.Join([]string{u, e, "{}", "set", "w", "0", "7", "0", ""}, "\x1f"), false, [recordFields]string{}},
		{"empty", "", false, [recordFields]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f [recordFields]string
			if got := unpack(tt.s, &f); got != tt.ok {
				t.Fatalf("unpack(%q) = %v, want %v", tt.s, got, tt.ok)
			}
			if tt.ok && f != tt.want {
				t.Fatalf("unpack(%q) = %q, want %q", tt.s, f, tt.want)
			}
		})
	}
}

// FuzzUnpack: unpack accepts exactly the strings of 40 bytes and then ten
// values joined by the byte 31 (the last taking the rest), and gives back
// the ones a read uses.
func FuzzUnpack(f *testing.F) {
	f.Add(recordString("17650000000000000000", "17650003600000000000", "7", "0", "0", "set", "", "", "X", "", "", "{}"))
	f.Add(strings.Repeat("0", 40) + strings.Repeat("\x1f", 12))
	f.Add("\x1f\x1f")
	f.Fuzz(func(t *testing.T, s string) {
		var v [recordFields]string
		ok := unpack(s, &v)
		if want := len(s) >= 40 && strings.Count(s[40:], "\x1f") >= 9; ok != want {
			t.Fatalf("unpack(%q) = %v, want %v", s, ok, want)
		}
		if !ok {
			return
		}
		parts := strings.SplitN(s[40:], "\x1f", 10)
		back := recordString(v[0], v[1], v[6], v[7], v[5], v[3], v[4], v[8], parts[6], parts[7], parts[8], v[2])
		if back != s {
			t.Fatalf("unpack(%q) = %q, which does not encode back", s, v)
		}
	})
}

// BenchmarkUnpack: what a read hit spends splitting the record's string.
func BenchmarkUnpack(b *testing.B) {
	s := recordString("17650000000000000000", "17650003600000000000", "189704", "0", "0", "set", "bridge-a", "", "-1001234567890", "7",
		"00000003600000000000", `{"external_room_id":"-1001234567890","channel_type":"telegram","thread_id":"7"}`)
	var f [recordFields]string
	for b.Loop() {
		if !unpack(s, &f) {
			b.Fatal("unpack failed")
		}
	}
}
