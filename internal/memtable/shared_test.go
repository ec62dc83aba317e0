package memtable

import (
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/switchboard-go/switchboard/internal/seqlock"
)

// TestFindSharedConcurrent: one writer inserts, overwrites and removes
// keys (growing the index and adding chunks) under a sequence lock while
// readers call FindShared; every read the lock validates agrees with what
// the writer published for that key: present with its value, or absent.
// Values are atomic, as FindShared's callers' values must be.
func TestFindSharedConcurrent(t *testing.T) {
	type val struct{ v atomic.Int64 } // key number * 1000 + version
	var lock seqlock.Lock
	var tab Table[val]
	tab.Reset(maphash.MakeSeed())
	const keys = 2000
	names := make([][]byte, keys)
	for i := range names {
		names[i] = fmt.Appendf(nil, "telegram\x00bot\x00room-%d", i)
	}
	var present [keys]atomic.Int64 // 0: absent; else the value stored
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		defer close(stop)
		for step := range 60000 {
			i := (step * 7919) % keys
			k := names[i]
			h := tab.Hash(k)
			lock.Lock()
			pos, slot := tab.Find(h, k)
			if step%5 == 4 && slot != NoSlot {
				tab.RemoveAt(pos, slot)
				present[i].Store(0)
			} else {
				if slot == NoSlot {
					slot = tab.Insert(pos, h, k)
				}
				v := int64(i*1000 + step%1000 + 1)
				tab.Value(slot).v.Store(v)
				present[i].Store(v)
			}
			lock.Unlock()
		}
	})
	var validated, found atomic.Int64
	for r := range 2 {
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				i := (n*31 + r) % keys
				k := names[i]
				seq, ok := lock.Begin()
				if !ok {
					continue
				}
				v := tab.FindShared(tab.Hash(k), k)
				var got int64
				if v != nil {
					got = v.v.Load()
				}
				want := present[i].Load()
				if !lock.Valid(seq) {
					continue
				}
				validated.Add(1)
				if got != want {
					t.Errorf("key %d: FindShared read %d, the writer published %d", i, got, want)
					return
				}
				if got != 0 {
					found.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if validated.Load() == 0 || found.Load() == 0 {
		t.Fatalf("validated %d reads, %d hits: the test checked nothing", validated.Load(), found.Load())
	}
	if fault := tab.Check(); fault != "" {
		t.Fatal(fault)
	}
}
