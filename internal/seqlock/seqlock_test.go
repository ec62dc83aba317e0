package seqlock

import (
	"sync"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestConsistentReads: writers keep two atomically stored words equal,
// storing them one after the other; an optimistic reader that Valid
// accepts never sees them differ, and readers do see writes (the test
// would pass vacuously if every read were rejected).
func TestConsistentReads(t *testing.T) {
	var l Lock
	var a, b atomic.Uint64
	var wg sync.WaitGroup
	const writes = 20000
	for w := range 2 {
		wg.Go(func() {
			for i := range writes {
				l.Lock()
				v := uint64(i*2 + w)
				a.Store(v)
				b.Store(v)
				l.Unlock()
			}
		})
	}
	var accepted, rejected, changes atomic.Int64
	for range 2 {
		wg.Go(func() {
			last := uint64(0)
			for range 4 * writes {
				seq, ok := l.Begin()
				if !ok {
					rejected.Add(1)
					continue
				}
				x, y := a.Load(), b.Load()
				if !l.Valid(seq) {
					rejected.Add(1)
					continue
				}
				accepted.Add(1)
				if x != y {
					t.Errorf("accepted a torn read: %d, %d", x, y)
					return
				}
				if x != last {
					changes.Add(1)
					last = x
				}
			}
		})
	}
	wg.Wait()
	if accepted.Load() == 0 || changes.Load() == 0 {
		t.Fatalf("accepted %d reads, saw %d changes: the test checked nothing", accepted.Load(), changes.Load())
	}
	t.Logf("accepted %d, rejected %d, saw %d changes", accepted.Load(), rejected.Load(), changes.Load())
}

// TestWriterExclusion: writers and RLock readers exclude each other; a
// reader inside RLock never sees a writer's two words differ.
func TestWriterExclusion(t *testing.T) {
	var l Lock
	x, y := 0, 0 // protected by l
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for i := range 10000 {
				if i%2 == 0 {
					l.Lock()
					x++
					y++
					l.Unlock()
					continue
				}
				l.RLock()
				if x != y {
					t.Errorf("RLock saw %d, %d", x, y)
				}
				l.RUnlock()
			}
		})
	}
	wg.Wait()
	if x != 20000 {
		t.Fatalf("x = %d, want 20000", x)
	}
}

// TestBeginDuringWrite: Begin refuses while a writer is inside, and Valid
// rejects a read a writer overlapped.
func TestBeginDuringWrite(t *testing.T) {
	var l Lock
	seq, ok := l.Begin()
	if !ok || !l.Valid(seq) {
		t.Fatal("an idle lock refused a read")
	}
	l.Lock()
	if _, ok := l.Begin(); ok {
		t.Fatal("Begin accepted a read while a writer is inside")
	}
	if l.Valid(seq) {
		t.Fatal("Valid accepted a read a writer entered during")
	}
	l.Unlock()
	if l.Valid(seq) {
		t.Fatal("Valid accepted a read a writer overlapped")
	}
}
