// Package storetest is the conformance suite for switchboard.Store
// implementations, in the spirit of testing/fstest.TestFS: one exported
// function, Run, that exercises every rule of the Manager's contract through
// a Manager built on the Store under test, with an injected Clock and no
// sleeps.
//
// Every backend runs it; new behaviour goes into the suite first so that
// backends cannot drift apart:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) switchboard.Store {
//			return mybackend.New(…) // a fresh, empty store for each subtest
//		})
//	}
//
// Stress runs the suite's concurrency rule at a larger scale, for backends
// whose locking is their own (the memory backend runs it under -race).
//
// The suite moves the injected clock, never real time, and a whole run takes
// seconds, so a backend whose own expiry runs on real time (Redis key expiry,
// set a grace period past ExpiresAt) is not raced by it.
package storetest
