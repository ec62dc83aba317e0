package memtable

import (
	"fmt"
	"hash/maphash"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestModel drives a Table with random writes, deletes, evictions and
// expiry sweeps and checks it against a plain map plus write order after
// every step: same keys, same values, same eviction order, consistent
// index, list and free slots.
func TestModel(t *testing.T) {
	type val struct {
		v       string
		expires int
	}
	for _, limit := range []int{1, 7, 64, 1000} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			var tab Table[val]
			tab.Reset(maphash.MakeSeed())
			model := map[string]val{}
			var order []string // least recently written first
			rng := rand.New(rand.NewPCG(uint64(limit), 99))
			keys := make([]string, 300)
			for i := range keys {
				keys[i] = fmt.Sprintf("c\x00b\x00r%d", i%97)
				if i%3 != 0 {
					keys[i] += fmt.Sprintf("\x00t%d", i)
				}
				if i%50 == 0 { // some keys too long to stay inline
					keys[i] += fmt.Sprintf("-%0*d", InlineKey+i/10, i)
				}
			}
			remove := func(k string) {
				delete(model, k)
				order = slices.DeleteFunc(order, func(o string) bool { return o == k })
			}
			now := 1000
			for step := range 20000 {
				k := keys[rng.IntN(len(keys))]
				kb := []byte(k)
				h := tab.Hash(kb)
				switch op := rng.IntN(10); {
				case op < 6: // write, then evict down to limit
					v := val{fmt.Sprintf("%s@%d", k, step), now + rng.IntN(50)}
					pos, slot := tab.Find(h, kb)
					if slot == NoSlot {
						slot = tab.Insert(pos, h, kb)
					} else {
						tab.Touch(slot)
					}
					*tab.Value(slot) = v
					remove(k)
					model[k] = v
					order = append(order, k)
					for tab.Len() > limit {
						old := tab.Oldest()
						if string(tab.Key(old)) != order[0] {
							t.Fatalf("step %d: oldest is %q, want %q", step, tab.Key(old), order[0])
						}
						tab.Remove(old)
						remove(order[0])
					}
				case op < 8: // delete
					pos, slot := tab.Find(h, kb)
					_, ok := model[k]
					if (slot != NoSlot) != ok {
						t.Fatalf("step %d: Find(%q) = %d, model has it: %v", step, k, slot, ok)
					}
					if ok {
						tab.RemoveAt(pos, slot)
						remove(k)
					}
				case op < 9: // sweep expired, oldest first
					now += rng.IntN(20)
					for slot := tab.Oldest(); slot != NoSlot; {
						next := tab.Newer(slot)
						if now >= tab.Value(slot).expires {
							remove(string(tab.Key(slot)))
							tab.Remove(slot)
						}
						slot = next
					}
				default: // read
					_, slot := tab.Find(h, kb)
					m, ok := model[k]
					if (slot != NoSlot) != ok || ok && *tab.Value(slot) != m {
						t.Fatalf("step %d: Find(%q) = %d, model %+v %v", step, k, slot, m, ok)
					}
				}
				if fault := tab.Check(); fault != "" {
					t.Fatalf("step %d: %s", step, fault)
				}
				if tab.Len() != len(order) {
					t.Fatalf("step %d: Len %d, want %d", step, tab.Len(), len(order))
				}
				i := 0
				for slot := tab.Oldest(); slot != NoSlot; slot = tab.Newer(slot) {
					if string(tab.Key(slot)) != order[i] {
						t.Fatalf("step %d: list position %d holds %q, want %q", step, i, tab.Key(slot), order[i])
					}
					i++
				}
			}
		})
	}
}

// TestSlotsStayPut: a record keeps its slot while it is overwritten, and
// scanning slot numbers visits every record once.
func TestSlotsStayPut(t *testing.T) {
	var tab Table[int]
	tab.Reset(maphash.MakeSeed())
	slots := map[string]int32{}
	for i := range 3 * ChunkSize {
		k := []byte(fmt.Sprintf("key-%d", i))
		pos, _ := tab.Find(tab.Hash(k), k)
		slots[string(k)] = tab.Insert(pos, tab.Hash(k), k)
	}
	for k, want := range slots {
		kb := []byte(k)
		_, got := tab.Find(tab.Hash(kb), kb)
		tab.Touch(got)
		if got != want {
			t.Fatalf("%s moved from slot %d to %d", k, want, got)
		}
	}
	seen := 0
	for s := range tab.Slots() {
		if tab.Used(s) {
			if slots[string(tab.Key(s))] != s {
				t.Fatalf("slot %d holds %q", s, tab.Key(s))
			}
			seen++
		}
	}
	if seen != len(slots) {
		t.Fatalf("slot scan saw %d records, want %d", seen, len(slots))
	}
}
