package storetest

import (
	"time"

	"github.com/switchboard-go/switchboard/manualclock"
)

// Clock is the manual clock the suite drives; it is manualclock.Clock,
// which programs can import without package testing.
type Clock = manualclock.Clock

// NewClock returns a Clock reading start (manualclock.New).
func NewClock(start time.Time) *Clock { return manualclock.New(start) }
