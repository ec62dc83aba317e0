package switchboard_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-go/switchboard"
	"github.com/switchboard-go/switchboard/manualclock"
)

// TestSnapshotKeepsProvenance: every field of a record survives a
// snapshot: origin, writer, priority, revision, confirmation, tombstones;
// and the revision counters continue, across deleted keys too.
func TestSnapshotKeepsProvenance(t *testing.T) {
	ctx := context.Background()
	clock := manualclock.New(time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC))
	m, ms := snapshotManager(t, switchboard.Config{PartitionCount: 2, TTL: time.Hour}, clock)
	room, thread, guess, gone, deleted := key("chat_1", ""), key("chat_1", "t"), key("chat_2", ""), key("chat_3", ""), key("chat_4", "")
	mustSet := func(k switchboard.SessionKey, r switchboard.Route, opts ...switchboard.SetOption) {
		t.Helper()
		if err := m.Set(ctx, k, r, opts...); err != nil {
			t.Fatal(err)
		}
	}
	mustSet(room, route("r"), switchboard.WithWriter("inbound"), switchboard.WithPriority(10))
	if _, err := m.Resolve(ctx, thread); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Resolve(ctx, guess, route("g")); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Confirm(ctx, room, route("r")); err != nil {
		t.Fatal(err)
	}
	mustSet(gone, route("x"))
	if err := m.Invalidate(ctx, gone, route("x"), "403 bot removed"); err != nil {
		t.Fatal(err)
	}
	mustSet(deleted, route("d"))
	deletedRev := getRecord(t, m, deleted).Revision
	if err := m.Delete(ctx, deleted); err != nil {
		t.Fatal(err)
	}
	before := map[switchboard.SessionKey]switchboard.Record{}
	entries := listAll(t, m, switchboard.Filter{})
	entries = append(entries, listAll(t, m, switchboard.Filter{Invalidated: true})...)
	for _, e := range entries {
		before[e.Key] = e.Record
	}
	var buf bytes.Buffer
	if err := ms.WriteSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(buf.String(), "switchboard snapshot v2\n") {
		t.Fatalf("snapshot header %q", strings.SplitN(buf.String(), "\n", 2)[0])
	}
	m2, ms2 := snapshotManager(t, switchboard.Config{PartitionCount: 2, TTL: time.Hour}, clock)
	if n, err := ms2.ReadSnapshot(bytes.NewReader(buf.Bytes()), clock.Now()); err != nil || n != len(before) {
		t.Fatalf("ReadSnapshot = %d, %v; want %d", n, err, len(before))
	}
	after := listAll(t, m2, switchboard.Filter{})
	after = append(after, listAll(t, m2, switchboard.Filter{Invalidated: true})...)
	if len(after) != len(before) {
		t.Fatalf("restored %d records, want %d", len(after), len(before))
	}
	for _, e := range after {
		b := before[e.Key]
		if fmt.Sprint(e.Record) != fmt.Sprint(b) {
			t.Errorf("restored %v:\n %+v\nwant\n %+v", e.Key, e.Record, b)
		}
	}
	if _, err := m2.Get(ctx, gone); !errors.Is(err, switchboard.ErrInvalidated) {
		t.Fatalf("restored tombstone: Get = %v, want ErrInvalidated", err)
	}
	// The counter continues: the deleted key's next revision is higher than
	// any it had.
	if err := m2.Set(ctx, deleted, route("again")); err != nil {
		t.Fatal(err)
	}
	if rev := getRecord(t, m2, deleted).Revision; rev <= deletedRev {
		t.Fatalf("revision after restore %d, the deleted record had %d", rev, deletedRev)
	}
}

// TestSnapshotRevisionsAcrossPartitionCount: restoring into another
// partition count keeps revisions unique within each partition and above
// everything the snapshot had handed out.
func TestSnapshotRevisionsAcrossPartitionCount(t *testing.T) {
	ctx := context.Background()
	clock := manualclock.New(time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC))
	m, ms := snapshotManager(t, switchboard.Config{PartitionCount: 4, TTL: time.Hour}, clock)
	old := map[switchboard.SessionKey]uint64{}
	var highest uint64
	for i := range 300 {
		k := key(fmt.Sprintf("room_%d", i), "")
		if err := m.Set(ctx, k, route("r")); err != nil {
			t.Fatal(err)
		}
		old[k] = getRecord(t, m, k).Revision
		highest = max(highest, old[k])
	}
	var buf bytes.Buffer
	if err := ms.WriteSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	m2, ms2 := snapshotManager(t, switchboard.Config{PartitionCount: 7, TTL: time.Hour}, clock)
	if _, err := ms2.ReadSnapshot(bytes.NewReader(buf.Bytes()), clock.Now()); err != nil {
		t.Fatal(err)
	}
	seen := map[[2]uint64]bool{}
	for _, e := range listAll(t, m2, switchboard.Filter{}) {
		id := [2]uint64{uint64(e.Partition), e.Record.Revision}
		if seen[id] {
			t.Fatalf("revision %d twice in partition %d after restoring into 7 partitions", e.Record.Revision, e.Partition)
		}
		seen[id] = true
		if e.Record.Revision <= highest || e.Record.Revision <= old[e.Key] {
			t.Fatalf("%v restored with revision %d, not above the snapshot's %d", e.Key, e.Record.Revision, highest)
		}
	}
	if len(seen) != len(old) {
		t.Fatalf("restored %d records, want %d", len(seen), len(old))
	}
}

// TestSnapshotV1StillLoads: a version 1 file (no provenance) loads with
// origin set and revisions in file order.
func TestSnapshotV1StillLoads(t *testing.T) {
	clock := manualclock.New(time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC))
	exp := clock.Now().Add(time.Hour).UnixNano()
	body := "switchboard snapshot v1\n" +
		fmt.Sprintf(`{"k":"telegram:bot_1:chat_1","r":{"external_room_id":"a"},"u":%d,"e":%d}`+"\n", clock.Now().UnixNano(), exp) +
		fmt.Sprintf(`{"k":"telegram:bot_1:chat_1:t","r":{"external_room_id":"b"},"u":%d,"e":%d}`+"\n", clock.Now().UnixNano(), exp)
	file := body + fmt.Sprintf("end 2 %08x\n", crc32.ChecksumIEEE([]byte(body)))
	m, ms := snapshotManager(t, switchboard.Config{PartitionCount: 1, TTL: time.Hour}, clock)
	if n, err := ms.ReadSnapshot(strings.NewReader(file), clock.Now()); err != nil || n != 2 {
		t.Fatalf("ReadSnapshot(v1) = %d, %v", n, err)
	}
	a, b := getRecord(t, m, key("chat_1", "")), getRecord(t, m, key("chat_1", "t"))
	if a.Origin != switchboard.OriginSet || b.Origin != switchboard.OriginSet || a.Revision == 0 || b.Revision <= a.Revision {
		t.Fatalf("v1 records restored as %+v and %+v; want origin set, revisions in file order", a, b)
	}
	// A v1 file may not carry v2 fields.
	bad := "switchboard snapshot v1\n" + fmt.Sprintf(`{"k":"c:b:r","r":{"external_room_id":"a"},"u":1,"e":%d,"v":3}`+"\n", exp)
	bad += fmt.Sprintf("end 1 %08x\n", crc32.ChecksumIEEE([]byte(bad)))
	_, ms2 := snapshotManager(t, switchboard.Config{PartitionCount: 1}, clock)
	if _, err := ms2.ReadSnapshot(strings.NewReader(bad), clock.Now()); !errors.Is(err, switchboard.ErrInvalidSnapshot) {
		t.Fatalf("v1 with a revision: err = %v, want ErrInvalidSnapshot", err)
	}
}

func getRecord(t *testing.T, m *switchboard.Manager, k switchboard.SessionKey) switchboard.Record {
	t.Helper()
	rec, err := m.Get(context.Background(), k)
	if err != nil {
		t.Fatalf("Get(%v): %v", k, err)
	}
	return rec
}

func listAll(t *testing.T, m *switchboard.Manager, f switchboard.Filter) []switchboard.Entry {
	t.Helper()
	var out []switchboard.Entry
	for cursor := ""; ; {
		page, next, err := m.List(context.Background(), f, switchboard.MaxListLimit, cursor)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, page...)
		if next == "" {
			return out
		}
		cursor = next
	}
}
