// Package manualclock is a clock that moves only when told to, for tests,
// examples and simulations of a switchboard.Manager:
//
//	clock := manualclock.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
//	m, err := switchboard.New(cfg, switchboard.WithClock(clock.Now))
//	…
//	clock.Advance(30 * time.Minute) // every route set before is now expired
//
// It imports nothing but the standard library's sync and time, so programs
// can use it (unlike package storetest, which imports testing).
package manualclock

import (
	"sync"
	"time"
)

// Clock is a manual clock: it stands still until Advance or Set moves it.
// Pass its Now method to switchboard.WithClock. It is safe for concurrent
// use; the zero Clock reads the zero time.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// New returns a Clock reading start.
func New(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d (backward when d is negative) and
// returns the new time.
func (c *Clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}
