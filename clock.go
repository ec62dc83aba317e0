package switchboard

import (
	"sync/atomic"
	"time"
)

// Default clock. Reading the system clock costs tens of nanoseconds on
// many machines (about 50 ns on this project's), which would be most of a
// hit's cost. Unless WithClock is given, a Manager reads a coarse clock
// instead: a goroutine stores the wall time every coarseResolution, and
// readers load it. The clock is therefore up to about a millisecond behind
// (a record may be served up to ~1 ms after its ExpiresAt; UpdatedAt may be
// up to ~1 ms early), which is exact enough for TTLs counted in seconds or
// minutes. When nobody has read the clock for coarseIdleAfter, the goroutine
// parks; the next reader reads the system clock itself, publishes it and
// wakes the goroutine, so an idle Manager costs no wake-ups.
const (
	coarseResolution = time.Millisecond
	coarseIdleAfter  = time.Second
)

// ticker is the coarse clock's source of time and ticks; systemTicker is
// the real one, and tests drive the park/wake logic with their own.
type ticker interface {
	Now() time.Time
	Start(d time.Duration) (ticks <-chan time.Time, stop func())
}

type systemTicker struct{}

func (systemTicker) Now() time.Time { return time.Now() }

func (systemTicker) Start(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTicker(d)
	return t.C, t.Stop
}

type coarseClock struct {
	nanos  atomic.Int64 // last published wall time, unix nanoseconds
	used   atomic.Bool  // read since the last tick
	idle   atomic.Bool  // the ticking goroutine is parked
	wake   chan struct{}
	source ticker
}

func newCoarseClock(source ticker) *coarseClock {
	c := &coarseClock{wake: make(chan struct{}, 1), source: source}
	c.nanos.Store(source.Now().UnixNano())
	return c
}

// now returns the current coarse time in unix nanoseconds.
func (c *coarseClock) now() int64 {
	if c.idle.Load() {
		n := c.source.Now().UnixNano()
		c.nanos.Store(n) // publish before anyone can see idle == false
		if c.idle.CompareAndSwap(true, false) {
			select {
			case c.wake <- struct{}{}:
			default:
			}
		}
		return n
	}
	if !c.used.Load() { // a store only about once per tick, not per read
		c.used.Store(true)
	}
	return c.nanos.Load()
}

// run publishes the time every coarseResolution until done is closed,
// parking after coarseIdleAfter of ticks without a reader.
func (c *coarseClock) run(done <-chan struct{}) {
	idleTicks := int(coarseIdleAfter / coarseResolution)
	for {
		ticks, stop := c.source.Start(coarseResolution)
		unused := 0
		parked := false
		for !parked {
			select {
			case <-done:
				stop()
				return
			case <-ticks:
			}
			c.nanos.Store(c.source.Now().UnixNano())
			if c.used.Load() {
				c.used.Store(false)
				unused = 0
				continue
			}
			if unused++; unused >= idleTicks {
				parked = true
			}
		}
		stop()
		c.idle.Store(true)
		select {
		case <-done:
			return
		case <-c.wake:
		}
	}
}
