package manualclock_test

import (
	"fmt"
	"sync"
	"time"

	"github.com/switchboard-go/switchboard/manualclock"
)

func ExampleClock() {
	clock := manualclock.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	var wg sync.WaitGroup
	for range 4 { // safe for concurrent use
		wg.Go(func() { clock.Advance(time.Minute) })
	}
	wg.Wait()
	fmt.Println(clock.Now().Format(time.TimeOnly))
	clock.Set(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC))
	fmt.Println(clock.Now().Year())
	// Output:
	// 03:08:05
	// 2027
}
