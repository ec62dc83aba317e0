package biasedlock

import (
	"sync"
	"sync/atomic"
	"testing"
)

// TestExclusion mixes fast- and slow-path readers with writers: no reader
// is ever inside while a writer is, and the race detector sees every write
// to the protected value ordered with every read of it.
func TestExclusion(t *testing.T) {
	var l Lock
	l.Init(4)
	tokens := NewTokens()
	var readers atomic.Int32
	var writing atomic.Bool
	shared := 0 // protected by l
	var wg sync.WaitGroup
	errs := make(chan string, 16)
	for range 4 {
		wg.Go(func() {
			for range 20000 {
				tok := tokens.Get()
				fast := l.RLockFast(tok)
				readers.Add(1)
				if writing.Load() {
					errs <- "a reader is inside while a writer is"
				}
				_ = shared
				readers.Add(-1)
				l.RUnlockFast(tok, fast)
				tokens.Put(tok)
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
		tok := tokens.Get()
		l.RUnlockFast(tok, l.RLockFast(tok))
		tokens.Put(tok)
	}
	if !l.Biased() {
		t.Fatal("the bias stayed off after many slow-path reads without writers")
	}
}

// TestRevocationAndRebias walks the state machine step by step: a writer
// turns the bias off, the next read takes the slow path and turns it on
// again, and the read after that takes the fast path.
func TestRevocationAndRebias(t *testing.T) {
	var l Lock
	l.Init(1)
	tok := &Token{}
	if !l.RLockFast(tok) {
		t.Fatal("a fresh lock's reader did not take the fast path")
	}
	l.RUnlockFast(tok, true)
	l.Lock()
	if l.Biased() {
		t.Fatal("the bias is on while a writer holds the lock")
	}
	l.Unlock()
	if l.Biased() {
		t.Fatal("the bias came back before a read")
	}
	if l.RLockFast(tok) {
		t.Fatal("the first read after a revocation took the fast path")
	}
	l.RUnlockFast(tok, false)
	if !l.Biased() {
		t.Fatal("the bias is still off after a slow read")
	}
	if !l.RLockFast(tok) {
		t.Fatal("the read after the re-bias took the slow path")
	}
	l.RUnlockFast(tok, true)
}
