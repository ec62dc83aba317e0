package switchboard

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// biasedLock is a reader-writer lock whose readers, while the lock is
// reader-biased, write only to a counter that is (usually) private to their
// CPU, so that read-mostly partitions do not bounce a shared cache line
// between cores on every lookup. It follows BRAVO (Dice and Kogan, "BRAVO:
// Biased Locking for Reader-Writer Locks", USENIX ATC 2019):
//
//   - A reader on the fast path announces itself in its slot, then checks
//     that the bias is still on; otherwise it takes the underlying mutex.
//   - A writer takes the underlying mutex; if the bias is on it turns it
//     off and waits for the announced readers to leave (revocation).
//   - A reader on the slow path turns the bias back on, while it holds the
//     mutex, once inhibitReads reads of its slot have taken the slow path
//     since the last revocation, so that write-heavy phases stay on the
//     plain mutex and revocations stay rare. (BRAVO measures the
//     inhibition in time; counting reads in the reader's own slot needs no
//     clock and no shared write on the read path.)
//
// Go's atomics are sequentially consistent, which is what the announce/
// check handshake between readers and revoking writers needs.
//
// The underlying lock is a sync.Mutex, taken exclusively by slow-path
// readers too: critical sections here are a few hundred nanoseconds, and
// sync.Mutex spins before it parks a goroutine, where sync.RWMutex parks
// readers at once behind a waiting writer; measured on a 90/10 read/write
// mix, the RWMutex was twice as slow.
type biasedLock struct {
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

// readerSlot is one slot's announce counter and inhibition count, alone on
// their pair of cache lines.
type readerSlot struct {
	n       atomic.Int32 // readers inside on the fast path
	inhibit atomic.Int32 // slow-path reads left before this slot's readers turn the bias back on
	_       [120]byte
}

const inhibitReads = 32

// readerToken picks a readerSlot. Tokens come from a sync.Pool, whose
// per-P caches keep handing each P the same token, so concurrent readers on
// different CPUs use different slots.
type readerToken struct{ slot int }

// readerTokens hands out readerTokens for locks with a given slot count.
type readerTokens struct {
	next atomic.Int64
	pool sync.Pool
}

func newReaderTokens() *readerTokens {
	t := &readerTokens{}
	t.pool.New = func() any { return &readerToken{slot: int(t.next.Add(1) - 1)} }
	return t
}

func (t *readerTokens) get() *readerToken  { return t.pool.Get().(*readerToken) }
func (t *readerTokens) put(k *readerToken) { t.pool.Put(k) }

// readerSlotCount is how many slots each lock gets: one per P, at most 16
// (beyond that, Ps share slots, which is correct and merely slower).
func readerSlotCount() int { return min(max(runtime.GOMAXPROCS(0), 1), 16) }

func (l *biasedLock) init(slots int) {
	l.slots = make([]readerSlot, slots)
	l.bias.Store(true)
}

// rlockFast read-locks l for the holder of tok and reports whether it took
// the fast path; pass the result to runlockFast.
func (l *biasedLock) rlockFast(tok *readerToken) bool {
	if l.bias.Load() {
		s := &l.slots[tok.slot%len(l.slots)]
		s.n.Add(1)
		if l.bias.Load() {
			return true
		}
		s.n.Add(-1)
	}
	l.mu.Lock()
	if !l.bias.Load() && l.slots[tok.slot%len(l.slots)].inhibit.Add(-1) <= 0 {
		l.bias.Store(true) // under the mutex: no writer is inside
	}
	return false
}

// runlockFast undoes rlockFast.
func (l *biasedLock) runlockFast(tok *readerToken, fast bool) {
	if fast {
		l.slots[tok.slot%len(l.slots)].n.Add(-1)
		return
	}
	l.mu.Unlock()
}

// RLock read-locks l on the slow path (for rare readers).
func (l *biasedLock) RLock() { l.mu.Lock() }

// RUnlock undoes RLock.
func (l *biasedLock) RUnlock() { l.mu.Unlock() }

// Lock write-locks l, revoking the reader bias if it is on.
func (l *biasedLock) Lock() {
	l.mu.Lock()
	if !l.bias.Load() {
		return
	}
	l.bias.Store(false)
	for i := range l.slots {
		s := &l.slots[i]
		for s.n.Load() != 0 {
			runtime.Gosched()
		}
		s.inhibit.Store(inhibitReads)
	}
}

// Unlock undoes Lock.
func (l *biasedLock) Unlock() { l.mu.Unlock() }
