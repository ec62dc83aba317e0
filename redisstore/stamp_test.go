package redisstore

import (
	"fmt"
	"math"
	"strconv"
	"testing"
)

// TestPad20 holds pad20 to the format the scripts compare.
func TestPad20(t *testing.T) {
	for _, n := range []int64{0, 1, 9, 10, 1_000_000_007, 1_780_000_000_123_456_789, math.MaxInt64, -1, math.MinInt64} {
		if got, want := pad20(n), fmt.Sprintf("%020d", n); got != want {
			t.Errorf("pad20(%d) = %q, want %q", n, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = pad20(1_780_000_000_123_456_789) }); n > 1 {
		t.Errorf("pad20 allocates %v times, want 1", n)
	}
}

// TestStampNanos: stampNanos reads back what pad20 writes, and answers
// every other string as strconv.ParseInt does.
func TestStampNanos(t *testing.T) {
	for _, n := range []int64{0, 1, 1_780_000_000_123_456_789, math.MaxInt64, -1, math.MinInt64} {
		if got, err := stampNanos(pad20(n)); err != nil || got != n {
			t.Errorf("stampNanos(pad20(%d)) = %d, %v", n, got, err)
		}
	}
	for _, s := range []string{"", "0", "09223372036854775808", "0922337203685477580x", "0000000000000000000/", "00000000000000000:00", "+0000000000000000001", "99999999999999999999"} {
		n, err := stampNanos(s)
		wantN, wantErr := strconv.ParseInt(s, 10, 64)
		if n != wantN || (err == nil) != (wantErr == nil) {
			t.Errorf("stampNanos(%q) = %d, %v; ParseInt: %d, %v", s, n, err, wantN, wantErr)
		}
	}
}

// FuzzStampNanos: stampNanos is strconv.ParseInt(s, 10, 64).
func FuzzStampNanos(f *testing.F) {
	f.Add("01780000000123456789")
	f.Add("09223372036854775807")
	f.Add("09223372036854775808")
	f.Add("-0000000000000000001")
	f.Fuzz(func(t *testing.T, s string) {
		n, err := stampNanos(s)
		wantN, wantErr := strconv.ParseInt(s, 10, 64)
		if n != wantN || (err == nil) != (wantErr == nil) {
			t.Fatalf("stampNanos(%q) = %d, %v; ParseInt: %d, %v", s, n, err, wantN, wantErr)
		}
	})
}
