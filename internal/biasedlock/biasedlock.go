// Package biasedlock is a reader-writer lock for read-mostly data whose
// readers, while the lock is reader-biased, write only to a counter that is
// (usually) private to their CPU, so that read-mostly partitions do not
// bounce a shared cache line between cores on every lookup. It follows
// BRAVO (Dice and Kogan, "BRAVO: Biased Locking for Reader-Writer Locks",
// USENIX ATC 2019):
//
//   - A reader on the fast path announces itself in its slot, then checks
//     that the bias is still on; otherwise it takes the underlying mutex.
//   - A writer takes the underlying mutex; if the bias is on it turns it
//     off and waits for the announced readers to leave (revocation).
//   - A reader on the slow path turns the bias back on at once, while it
//     holds the mutex. (BRAVO keeps it off for a while after a revocation;
//     measured on a 90/10 read/write mix on 2 cores, keeping it off for 32
//     slow reads of a slot left nearly every read on the exclusive mutex —
//     a partition sees a write every few dozen operations — and was 1.3×
//     slower than re-biasing at once, and counting even one read per slot
//     cost the writer a store to every reader's slot; a write-only phase
//     has no reads, so it stays on the mutex without revocations either
//     way.)
//
// Go's atomics are sequentially consistent, which is what the announce/
// check handshake between readers and revoking writers needs.
//
// The underlying lock is a sync.Mutex, taken exclusively by slow-path
// readers too: the critical sections it is made for are a few hundred
// nanoseconds, and sync.Mutex spins before it parks a goroutine, where
// sync.RWMutex parks readers at once behind a waiting writer; measured on a
// 90/10 read/write mix, the RWMutex was twice as slow.
package biasedlock

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// Lock is a reader-biased reader-writer lock. Call Init before use; a Lock
// must not be copied after that.
type Lock struct {
	// Read by every fast-path reader; written only on revocation and
	// re-biasing.
	bias  atomic.Bool
	slots []readerSlot
	_     [cacheLinePair]byte
	// Written by every writer and slow-path reader.
	mu sync.Mutex
	_  [cacheLinePair]byte
}

// cacheLinePair separates fields that different cores write from those
// they only read: two cache lines, for the adjacent-line prefetcher.
const cacheLinePair = 128

// readerSlot is one slot's announce counter, alone on its pair of cache
// lines.
type readerSlot struct {
	n atomic.Int32 // readers inside on the fast path
	_ [124]byte
}

// Token picks a reader slot. Tokens come from Tokens, whose per-P caches
// keep handing each P the same token, so concurrent readers on different
// CPUs use different slots.
type Token struct{ slot int }

// Tokens hands out Tokens. It is safe for concurrent use; one Tokens can
// serve many Locks.
type Tokens struct {
	next atomic.Int64
	pool sync.Pool
}

// NewTokens returns a token source.
func NewTokens() *Tokens {
	t := &Tokens{}
	t.pool.New = func() any { return &Token{slot: int(t.next.Add(1) - 1)} }
	return t
}

// Get returns a token; give it back with Put when the read is done.
func (t *Tokens) Get() *Token { return t.pool.Get().(*Token) }

// Put returns a token taken with Get.
func (t *Tokens) Put(k *Token) { t.pool.Put(k) }

// SlotCount is how many reader slots a Lock should get: one per P, at most
// 16 (beyond that, Ps share slots, which is correct and merely slower).
func SlotCount() int { return min(max(runtime.GOMAXPROCS(0), 1), 16) }

// Init prepares l with slots reader slots and turns the bias on.
func (l *Lock) Init(slots int) {
	l.slots = make([]readerSlot, max(slots, 1))
	l.bias.Store(true)
}

// Biased reports whether the reader bias is on (for tests).
func (l *Lock) Biased() bool { return l.bias.Load() }

// RLockFast read-locks l for the holder of tok and reports whether it took
// the fast path; pass the result to RUnlockFast.
func (l *Lock) RLockFast(tok *Token) bool {
	if l.bias.Load() {
		s := &l.slots[tok.slot%len(l.slots)]
		s.n.Add(1)
		if l.bias.Load() {
			return true
		}
		s.n.Add(-1)
	}
	l.mu.Lock()
	if !l.bias.Load() {
		l.bias.Store(true) // under the mutex: no writer is inside
	}
	return false
}

// RUnlockFast undoes RLockFast.
func (l *Lock) RUnlockFast(tok *Token, fast bool) {
	if fast {
		l.slots[tok.slot%len(l.slots)].n.Add(-1)
		return
	}
	l.mu.Unlock()
}

// RLock read-locks l on the slow path (for rare readers): exclusively.
func (l *Lock) RLock() { l.mu.Lock() }

// RUnlock undoes RLock.
func (l *Lock) RUnlock() { l.mu.Unlock() }

// Lock write-locks l, revoking the reader bias if it is on.
func (l *Lock) Lock() {
	l.mu.Lock()
	if !l.bias.Load() {
		return
	}
	l.bias.Store(false)
	for i := range l.slots {
		for l.slots[i].n.Load() != 0 {
			runtime.Gosched()
		}
	}
}

// Unlock undoes Lock.
func (l *Lock) Unlock() { l.mu.Unlock() }
