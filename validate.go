package switchboard

import (
	"fmt"
	"unicode/utf8"
)

// MaxFieldLen is the largest accepted length, in bytes, of every string field
// of a SessionKey or Route, and of every Route.Meta key and value.
const MaxFieldLen = 512

// MaxMetaEntries is the largest accepted number of entries in Route.Meta.
const MaxMetaEntries = 32

// fieldOK reports, quickly, whether s is an acceptable field value made of
// printable ASCII only (the common case); false means "ask checkField".
func fieldOK(s string) bool {
	if len(s) > MaxFieldLen {
		return false
	}
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; i+8 <= len(s); i += 8 {
		// Eight bytes at a time: is any byte below 0x20 or above 0x7e?
		w := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		if ((w-0x20*lo)&^w|(w+lo)|w)&hi != 0 {
			return false
		}
	}
	for ; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			return false
		}
	}
	return true
}

// checkField reports why s is not an acceptable field value, or "" when it
// is. Acceptable: at most MaxFieldLen bytes of valid UTF-8 without control
// characters (U+0000–U+001F, U+007F). The all-printable-ASCII case, by far the
// most common, is one pass over the bytes.
func checkField(s string) string {
	if len(s) > MaxFieldLen {
		return fmt.Sprintf("longer than %d bytes (%d)", MaxFieldLen, len(s))
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			return checkFieldSlow(s, i)
		}
	}
	return ""
}

func checkFieldSlow(s string, off int) string {
	for i := off; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			return fmt.Sprintf("not valid UTF-8 at byte %d", i)
		case r < 0x20 || r == 0x7f:
			return fmt.Sprintf("control character %U at byte %d", r, i)
		}
		i += size
	}
	return ""
}
