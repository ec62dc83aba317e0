package storetest_test

import (
	"sync"
	"testing"
	"time"

	"github.com/switchboard-go/switchboard/storetest"
)

func TestClock(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := storetest.NewClock(start)
	if !c.Now().Equal(start) {
		t.Fatalf("Now() = %v, want %v", c.Now(), start)
	}
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() { c.Advance(time.Second); _ = c.Now() })
	}
	wg.Wait()
	if got, want := c.Now(), start.Add(10*time.Second); !got.Equal(want) {
		t.Fatalf("after 10 concurrent Advance(1s): %v, want %v", got, want)
	}
	c.Set(start)
	c.Advance(-time.Minute)
	if got := c.Now(); !got.Equal(start.Add(-time.Minute)) {
		t.Fatalf("Set then Advance(-1m) = %v", got)
	}
}
