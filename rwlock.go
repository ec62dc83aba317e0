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
//     that the bias is still on; otherwise it takes the underlying RWMutex.
//   - A writer takes the underlying lock; if the bias is on it turns it off
//     and waits for the announced readers to leave (revocation).
//   - A reader on the slow path turns the bias back on, while it holds the
//     read lock, once inhibitReads reads per slot have taken the slow path
//     since the last revocation, so that write-heavy phases stay on the
//     plain RWMutex and revocations stay rare. (BRAVO measures the
//     inhibition in time; counting reads needs no clock on the read path.)
//
// Go's atomics are sequentially consistent, which is what the announce/
// check handshake between readers and revoking writers needs.
type biasedLock struct {
	mu      sync.RWMutex
	bias    atomic.Bool
	inhibit atomic.Int64 // slow-path reads left before readers turn the bias back on
	slots   []readerSlot
}

// readerSlot is one announce counter, alone on its pair of cache lines.
type readerSlot struct {
	n atomic.Int32
	_ [124]byte
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
	l.mu.RLock()
	if !l.bias.Load() && l.inhibit.Add(-1) <= 0 {
		l.bias.Store(true) // under the read lock: no writer is inside
	}
	return false
}

// runlockFast undoes rlockFast.
func (l *biasedLock) runlockFast(tok *readerToken, fast bool) {
	if fast {
		l.slots[tok.slot%len(l.slots)].n.Add(-1)
		return
	}
	l.mu.RUnlock()
}

// RLock read-locks l on the slow path (for rare readers).
func (l *biasedLock) RLock() { l.mu.RLock() }

// RUnlock undoes RLock.
func (l *biasedLock) RUnlock() { l.mu.RUnlock() }

// Lock write-locks l, revoking the reader bias if it is on.
func (l *biasedLock) Lock() {
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
	l.inhibit.Store(int64(inhibitReads * len(l.slots)))
}

// Unlock undoes Lock.
func (l *biasedLock) Unlock() { l.mu.Unlock() }
