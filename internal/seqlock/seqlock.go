// Package seqlock is a sequence lock: writers exclude each other with a
// mutex and count their entries and exits in a sequence number, and readers
// that can retry read without writing anything — they note the sequence
// number, read, and check that it has not moved. A read-mostly partition's
// lookups then write no shared cache line and execute no locked
// instruction, where even a reader-biased lock makes every reader announce
// itself with an atomic add (a full fence on amd64) on the way in and out.
//
// What optimistic readers read concurrently with a writer must be read
// with atomic loads, and the writer must store it atomically: then readers
// never race, in the sense of the Go memory model and of the race
// detector, and Go's sequentially consistent atomics order every store of
// a writer between its two increments of the sequence number. (A plain
// load is a MOV on amd64 either way; an atomic store costs the writer an
// XCHG.) A reader must not act on what it read — follow a length it
// loaded, index with it — before Valid said it is consistent, unless the
// action is safe with any value it could have loaded.
//
// Readers that cannot retry (they have side effects, or read too much to
// read twice) take the mutex with RLock, exclusively.
package seqlock

import (
	"sync"
	"sync/atomic"
)

// Lock is a sequence lock. The zero Lock is unlocked. A Lock must not be
// copied after first use.
type Lock struct {
	seq atomic.Uint64 // odd while a writer is inside
	mu  sync.Mutex
}

// Lock write-locks l.
func (l *Lock) Lock() {
	l.mu.Lock()
	l.seq.Add(1)
}

// Unlock undoes Lock.
func (l *Lock) Unlock() {
	l.seq.Add(1)
	l.mu.Unlock()
}

// RLock locks l for a reader that does not retry: exclusively, as a
// writer does, but without moving the sequence number, so optimistic
// readers go on meanwhile.
func (l *Lock) RLock() { l.mu.Lock() }

// RUnlock undoes RLock.
func (l *Lock) RUnlock() { l.mu.Unlock() }

// Begin starts an optimistic read. It returns the sequence number to pass
// to Valid, and false when a writer is inside (the read would fail: take
// RLock, or try again).
func (l *Lock) Begin() (seq uint64, ok bool) {
	seq = l.seq.Load()
	return seq, seq&1 == 0
}

// Valid reports whether no writer has been inside since Begin returned
// seq: whether what the reader loaded since then is consistent.
func (l *Lock) Valid(seq uint64) bool { return l.seq.Load() == seq }
