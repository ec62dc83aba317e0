package switchboard

import (
	"sync"
	"sync/atomic"
	"testing"
)

// TestBiasedLockExclusion mixes fast- and slow-path readers with writers:
// no reader is ever inside while a writer is, and the race detector sees
// every write to the protected value ordered with every read of it.
func TestBiasedLockExclusion(t *testing.T) {
	var l biasedLock
	l.init(4)
	tokens := newReaderTokens()
	var readers atomic.Int32
	var writing atomic.Bool
	shared := 0 // protected by l
	var wg sync.WaitGroup
	errs := make(chan string, 16)
	for range 4 {
		wg.Go(func() {
			for range 20000 {
				tok := tokens.get()
				fast := l.rlockFast(tok)
				readers.Add(1)
				if writing.Load() {
					errs <- "a reader is inside while a writer is"
				}
				_ = shared
				readers.Add(-1)
				l.runlockFast(tok, fast)
				tokens.put(tok)
			}
		})
	}
	for range 2 {
		wg.Go(func() {
			for range 2000 {
				l.Lock()
				writing.Store(true)
				if n := readers.Load(); n != 0 {
					errs <- "a writer is inside while readers are"
				}
				shared++
				writing.Store(false)
				l.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	if shared != 4000 {
		t.Fatalf("shared = %d, want 4000", shared)
	}
	// After the writers are done, readers turn the bias back on.
	for range 200 {
		tok := tokens.get()
		l.runlockFast(tok, l.rlockFast(tok))
		tokens.put(tok)
	}
	if !l.bias.Load() {
		t.Fatal("the bias stayed off after many slow-path reads without writers")
	}
}
