package switchboard

import (
	"sync/atomic"
	"testing"
	"time"
)

// fakeTicker drives the coarse clock by hand: its time moves only when set
// and its ticks come only when sent.
type fakeTicker struct {
	now    atomic.Int64
	ticks  chan time.Time
	starts atomic.Int32
	stops  atomic.Int32
}

func (f *fakeTicker) Now() time.Time { return time.Unix(0, f.now.Load()) }

func (f *fakeTicker) Start(time.Duration) (<-chan time.Time, func()) {
	f.starts.Add(1)
	return f.ticks, func() { f.stops.Add(1) }
}

// eventually waits (bounded) for cond: the clock goroutine runs on its
// own; nothing here waits for time to pass for the clock's sake.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// tickUntilParked sends ticks until the clock parks (then nobody receives
// them) and returns how many were received.
func tickUntilParked(t *testing.T, f *fakeTicker, c *coarseClock) int {
	t.Helper()
	sent := 0
	for deadline := time.Now().Add(10 * time.Second); !c.idle.Load(); {
		if time.Now().After(deadline) {
			t.Fatalf("the clock did not park after %d ticks", sent)
		}
		select {
		case f.ticks <- time.Time{}:
			sent++
		case <-time.After(10 * time.Millisecond):
		}
	}
	return sent
}

func TestCoarseClockParksAndWakes(t *testing.T) {
	f := &fakeTicker{ticks: make(chan time.Time)}
	f.now.Store(1000)
	c := newCoarseClock(f)
	if got := c.now(); got != 1000 {
		t.Fatalf("now() before any tick = %d, want 1000", got)
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() { c.run(done); close(finished) }()
	// A tick publishes the source's time; until the next tick, readers see
	// the published value even though the source moved on.
	f.now.Store(2000)
	f.ticks <- time.Time{}
	eventually(t, "the tick to publish 2000", func() bool { return c.nanos.Load() == 2000 })
	f.now.Store(2500)
	if got := c.now(); got != 2000 {
		t.Fatalf("now() between ticks = %d, want the published 2000", got)
	}
	// Ticks with a reader in between keep it ticking.
	idleTicks := int(coarseIdleAfter / coarseResolution)
	for i := range 2 * idleTicks {
		f.ticks <- time.Time{}
		if i%10 == 0 {
			c.now()
		}
	}
	if c.idle.Load() || f.stops.Load() != 0 {
		t.Fatal("the clock parked although it was read")
	}
	// idleTicks ticks without a reader park it: the ticker stops.
	c.now()
	sent := tickUntilParked(t, f, c)
	if sent < idleTicks || sent > idleTicks+2 {
		t.Fatalf("parked after %d unread ticks, want about %d", sent, idleTicks)
	}
	eventually(t, "the ticker to stop", func() bool { return f.stops.Load() == 1 })
	// The next reader reads the source itself, publishes it and wakes the
	// goroutine, which starts ticking again.
	f.now.Store(9000)
	if got := c.now(); got != 9000 {
		t.Fatalf("now() of a parked clock = %d, want the source's 9000", got)
	}
	if c.idle.Load() {
		t.Fatal("still idle after a read")
	}
	eventually(t, "the ticker to start again", func() bool { return f.starts.Load() == 2 })
	f.now.Store(9500)
	f.ticks <- time.Time{}
	eventually(t, "ticks to publish again", func() bool { return c.nanos.Load() == 9500 })
	// done ends the goroutine.
	close(done)
	select {
	case <-finished:
	case <-time.After(5 * time.Second):
		t.Fatal("run did not return after done closed")
	}
}

func TestCoarseClockStopsWhileParked(t *testing.T) {
	f := &fakeTicker{ticks: make(chan time.Time)}
	c := newCoarseClock(f)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() { c.run(done); close(finished) }()
	tickUntilParked(t, f, c)
	close(done)
	select {
	case <-finished:
	case <-time.After(5 * time.Second):
		t.Fatal("a parked clock's goroutine did not return after done closed")
	}
}
