// Package storetest is the conformance suite for switchboard.Store
// implementations, in the spirit of testing/fstest.TestFS: one exported
// function, Run, that exercises every rule of the contract with an
// injected Clock and no sleeps, in five groups:
//
//   - Store: the SPI called directly, as a Manager calls it: Init twice, a
//     configuration the store cannot serve, every method after Close and
//     with a done context (an error wrapping the context's, and nothing
//     changed), and the sizes, flags, revisions and outcomes each method
//     reports;
//   - Manager: sections 1–5 of the contract through a Manager on the store
//     (freshness, capacity, eviction order, resolve, prune, background
//     pruning, events with several partitions, observers that call back,
//     concurrency);
//   - Trust: provenance, write precedence, revisions, conditional writes
//     (64 goroutines racing one IfRevision: exactly one wins), Confirm,
//     Invalidate, tombstones in Resolve, provisional routes;
//   - Operate: List with every filter across pages of 7, 100 and 1000 over
//     10,000 routes, concurrent writers during a List, DeleteMatching with
//     and without a dry run, Explain equal to Resolve;
//   - Faults: unavailable partitions, partial prune and delete, recovery —
//     run when the store implements PartitionBreaker (a memory store wraps
//     itself in a FaultStore for that; redisstore's tests break partitions
//     with a wrapper of the rueidis client).
//
// Every backend runs it; new behaviour goes into the suite first so that
// backends cannot drift apart:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) switchboard.Store {
//			return mybackend.New(…) // a fresh, uninitialized store for each subtest
//		})
//	}
//
// The suite's own tests run it against deliberately broken stores (one
// that ignores its context, one that answers after Close, one that
// reports wrong sizes, one where the last write wins, one whose faults are
// not isolated) and check that each fails the rule it breaks.
//
// Stress runs the suite's concurrency rule at a larger scale, for backends
// whose locking is their own (the memory backend runs it under -race).
// FaultStore wraps any Store to make partitions unavailable on demand, for
// the suite and for tests of code above a Store (a server's 503 answers).
//
// The suite moves the injected clock, never real time (only the background
// pruning rule waits, boundedly, for the Manager's own ticker), and a
// whole run takes seconds, so a backend whose own expiry runs on real time
// (Redis key expiry, set a grace period past ExpiresAt) is not raced by it.
package storetest
