package switchboard

import (
	"fmt"
	"hash/maphash"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestMemTableModel drives a memTable with random writes, deletes, prunes
// and evictions and checks it against a plain map plus write order after
// every step: same keys, same records, same eviction order, consistent
// index, list and free slots.
func TestMemTableModel(t *testing.T) {
	for _, limit := range []int{1, 7, 64, 1000} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			seed := maphash.MakeSeed()
			var tab memTable
			tab.reset(seed)
			type rec struct {
				route   string
				expires int64
			}
			model := map[SessionKey]rec{}
			var order []SessionKey // least recently written first
			rng := rand.New(rand.NewPCG(uint64(limit), 99))
			keys := make([]SessionKey, 300)
			for i := range keys {
				keys[i] = SessionKey{ChannelType: "c", BridgeID: "b", RoomID: fmt.Sprintf("r%d", i%97)}
				if i%3 != 0 {
					keys[i].ThreadID = fmt.Sprintf("t%d", i)
				}
				if i%50 == 0 { // some keys too long to stay inline, one too long for keyHashes' buffer
					keys[i].RoomID = fmt.Sprintf("r%d-%0*d", i%97, inlineKey+i/10, i)
				}
			}
			hashOf := func(k SessionKey) (uint64, []byte) {
				var buf [keyBufSize]byte
				_, h, enc := keyHashes(k, &seed, &buf)
				return h, slices.Clone(enc)
			}
			remove := func(k SessionKey) {
				delete(model, k)
				order = slices.DeleteFunc(order, func(o SessionKey) bool { return o == k })
			}
			now := int64(1000)
			for step := range 20000 {
				k := keys[rng.IntN(len(keys))]
				h, enc := hashOf(k)
				if rng.IntN(2) == 0 {
					enc = nil // the Store interface path has no encoding
				}
				switch op := rng.IntN(10); {
				case op < 6: // write
					r := fmt.Sprintf("%v@%d", k, step)
					exp := now + int64(rng.IntN(50))
					evicted := tab.write(h, k, enc, Route{ExternalRoomID: r}, now, exp, limit)
					remove(k)
					model[k] = rec{r, exp}
					order = append(order, k)
					want := 0
					for len(order) > limit {
						remove(order[0])
						want++
					}
					if evicted != want {
						t.Fatalf("step %d: write evicted %d, want %d", step, evicted, want)
					}
				case op < 8: // delete
					pos, slot := tab.find(h, k, enc)
					_, ok := model[k]
					if (slot != noSlot) != ok {
						t.Fatalf("step %d: find(%v) = %d, model has it: %v", step, k, slot, ok)
					}
					if ok {
						tab.removeAt(pos, slot)
						remove(k)
					}
				case op < 9: // prune
					now += int64(rng.IntN(20))
					pruned := tab.pruneExpired(now)
					want := 0
					for _, o := range slices.Clone(order) {
						if now >= model[o].expires {
							remove(o)
							want++
						}
					}
					if pruned != want {
						t.Fatalf("step %d: pruned %d, want %d", step, pruned, want)
					}
				default: // read
					_, slot := tab.find(h, k, enc)
					m, ok := model[k]
					if (slot != noSlot) != ok || ok && tab.at(slot).route.ExternalRoomID != m.route {
						t.Fatalf("step %d: find(%v) = %d, model %+v %v", step, k, slot, m, ok)
					}
				}
				checkTable(t, &tab, order)
			}
		})
	}
}

// checkTable checks the table's structure against the expected write order.
func checkTable(t *testing.T, tab *memTable, order []SessionKey) {
	t.Helper()
	if tab.size != len(order) {
		t.Fatalf("size %d, want %d", tab.size, len(order))
	}
	i := 0
	prev := int32(noSlot)
	for slot := tab.oldest; slot != noSlot; slot = tab.links[slot].next {
		if tab.links[slot].prev != prev {
			t.Fatalf("slot %d: prev %d, want %d", slot, tab.links[slot].prev, prev)
		}
		if !tab.at(slot).hasKey(order[i], nil) {
			t.Fatalf("list position %d holds another key than %v", i, order[i])
		}
		if _, found := tab.find(tab.at(slot).keyHash(tab.seed), order[i], nil); found != slot {
			t.Fatalf("index finds %v at %d, list has it at %d", order[i], found, slot)
		}
		prev = slot
		i++
	}
	if prev != tab.newest || i != len(order) {
		t.Fatalf("list ends at %d after %d records, want %d after %d", prev, i, tab.newest, len(order))
	}
	used := 0
	for _, b := range tab.index {
		if b.ref != 0 {
			used++
		}
	}
	free := 0
	for slot := tab.free; slot != noSlot; slot = tab.links[slot].next {
		free++
	}
	if used != len(order) || free+len(order) != int(tab.slots) {
		t.Fatalf("index holds %d, free slots %d, records %d, slots %d", used, free, len(order), tab.slots)
	}
	if len(tab.index) > 0 && len(order)*10 > len(tab.index)*7 {
		t.Fatalf("index %d buckets for %d records: over 70%% full", len(tab.index), len(order))
	}
}
