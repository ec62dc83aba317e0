package redisstore

import (
	"fmt"
	"math"
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
