package switchboard_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/switchboard-go/switchboard"
	"github.com/switchboard-go/switchboard/storetest"
)

func snapshotManager(t *testing.T, cfg switchboard.Config, clock *storetest.Clock) (*switchboard.Manager, *switchboard.MemoryStore) {
	t.Helper()
	ms := switchboard.NewMemoryStore()
	m, err := switchboard.New(cfg, switchboard.WithStore(ms), switchboard.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m, ms
}

func TestSnapshotRoundTrip(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock(time.Date(2026, 6, 1, 10, 0, 0, 123, time.UTC))
	m, ms := snapshotManager(t, switchboard.Config{PartitionCount: 3, TTL: time.Hour}, clock)
	keys := []switchboard.SessionKey{
		{ChannelType: "telegram", BridgeID: "bot_1", RoomID: "chat_1"},
		{ChannelType: "telegram", BridgeID: "bot_1", RoomID: "chat_1", ThreadID: "7"},
		{ChannelType: "matrix", BridgeID: "b", RoomID: "!abc:matrix.org", ThreadID: "$e:v"},
		{ChannelType: "slack", BridgeID: "T1", RoomID: fmt.Sprintf("%0100d", 5)}, // too long to stay inline
	}
	for i, k := range keys {
		r := switchboard.Route{ExternalRoomID: fmt.Sprint("room-", i), Meta: map[string]string{"i": fmt.Sprint(i)}}
		if err := m.Set(ctx, k, r); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Second)
	}
	short := switchboard.SessionKey{ChannelType: "c", BridgeID: "b", RoomID: "short-lived"}
	if err := m.Set(ctx, short, switchboard.Route{ExternalRoomID: "x"}, switchboard.WithTTL(time.Minute)); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := ms.WriteSnapshot(&buf); err != nil {
		t.Fatal(err)
	}

	// Restore into a Manager with another partition count, two minutes on:
	// the short-lived record has expired and is skipped.
	clock.Advance(2 * time.Minute)
	m2, ms2 := snapshotManager(t, switchboard.Config{PartitionCount: 5, TTL: time.Hour, MaxEntriesPerPartition: 100}, clock)
	n, err := ms2.ReadSnapshot(bytes.NewReader(buf.Bytes()), clock.Now())
	if err != nil || n != len(keys) {
		t.Fatalf("ReadSnapshot = %d, %v; want %d", n, err, len(keys))
	}
	for i, k := range keys {
		want, _ := m.Get(ctx, k)
		got, err := m2.Get(ctx, k)
		if err != nil {
			t.Fatalf("Get(%v) after restore: %v", k, err)
		}
		if got.Route.ExternalRoomID != fmt.Sprint("room-", i) || got.Route.Meta["i"] != fmt.Sprint(i) ||
			!got.UpdatedAt.Equal(want.UpdatedAt) || !got.ExpiresAt.Equal(want.ExpiresAt) {
			t.Fatalf("Get(%v) after restore = %+v, want %+v", k, got, want)
		}
	}
	if _, err := m2.Get(ctx, short); !errors.Is(err, switchboard.ErrNotFound) {
		t.Fatalf("expired record restored: %v", err)
	}
}

func TestSnapshotKeepsWriteOrder(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock(time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC))
	m, ms := snapshotManager(t, switchboard.Config{PartitionCount: 1, MaxEntriesPerPartition: 3}, clock)
	k := func(s string) switchboard.SessionKey {
		return switchboard.SessionKey{ChannelType: "c", BridgeID: "b", RoomID: s}
	}
	for _, s := range []string{"a", "b", "c", "a"} { // order: b, c, a
		if err := m.Set(ctx, k(s), switchboard.Route{ExternalRoomID: s}); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := ms.WriteSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	m2, ms2 := snapshotManager(t, switchboard.Config{PartitionCount: 1, MaxEntriesPerPartition: 3}, clock)
	if _, err := ms2.ReadSnapshot(&buf, clock.Now()); err != nil {
		t.Fatal(err)
	}
	if err := m2.Set(ctx, k("d"), switchboard.Route{ExternalRoomID: "d"}); err != nil {
		t.Fatal(err)
	}
	if _, err := m2.Get(ctx, k("b")); !errors.Is(err, switchboard.ErrNotFound) {
		t.Fatalf("after restore, the least recently written record should be evicted first: Get(b) err = %v", err)
	}
	for _, s := range []string{"a", "c", "d"} {
		if _, err := m2.Get(ctx, k(s)); err != nil {
			t.Fatalf("Get(%s): %v", s, err)
		}
	}
}

func TestSnapshotDamaged(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock(time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC))
	m, ms := snapshotManager(t, switchboard.Config{PartitionCount: 2}, clock)
	for i := range 20 {
		if err := m.Set(ctx, switchboard.SessionKey{ChannelType: "c", BridgeID: "b", RoomID: fmt.Sprint(i)}, switchboard.Route{ExternalRoomID: "r"}); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := ms.WriteSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	flipped := bytes.Clone(good)
	flipped[len(flipped)/2] ^= 0x01
	tests := map[string][]byte{
		"empty":          {},
		"other format":   []byte("hello\n"),
		"truncated":      good[:len(good)*2/3],
		"no trailer":     good[:bytes.LastIndex(good, []byte("end "))],
		"flipped bit":    flipped,
		"extra record":   append(bytes.Clone(good[:bytes.LastIndex(good, []byte("end "))]), append([]byte(`{"k":"c:b:x","r":{"external_room_id":"x"},"u":1,"e":1}`+"\n"), good[bytes.LastIndex(good, []byte("end ")):]...)...),
		"trailer junk":   append(bytes.Clone(good[:bytes.LastIndex(good, []byte("end "))]), []byte("end x y\n")...),
		"missing record": append(bytes.Clone(good[:bytes.Index(good, []byte("\n"))+1]), good[bytes.LastIndex(good, []byte("end ")):]...),
	}
	for name, data := range tests {
		t.Run(name, func(t *testing.T) {
			m2, ms2 := snapshotManager(t, switchboard.Config{PartitionCount: 2}, clock)
			n, err := ms2.ReadSnapshot(bytes.NewReader(data), clock.Now())
			if !errors.Is(err, switchboard.ErrInvalidSnapshot) || n != 0 {
				t.Fatalf("ReadSnapshot = %d, %v; want ErrInvalidSnapshot", n, err)
			}
			for p := range 2 {
				if st, _ := m2.PartitionStatus(ctx, p); st.Entries != 0 {
					t.Fatalf("partition %d has %d records after a failed restore", p, st.Entries)
				}
			}
		})
	}
}

func TestSaveLoadSnapshotFile(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock(time.Now())
	m, ms := snapshotManager(t, switchboard.Config{}, clock)
	k := switchboard.SessionKey{ChannelType: "c", BridgeID: "b", RoomID: "r"}
	if err := m.Set(ctx, k, switchboard.Route{ExternalRoomID: "first"}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "default.snapshot")
	if _, err := ms.LoadSnapshot(path, clock.Now()); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("LoadSnapshot of a missing file: %v, want fs.ErrNotExist", err)
	}
	if err := ms.SaveSnapshot(path); err != nil {
		t.Fatal(err)
	}
	if err := m.Set(ctx, k, switchboard.Route{ExternalRoomID: "second"}); err != nil {
		t.Fatal(err)
	}
	if err := ms.SaveSnapshot(path); err != nil { // replaces the first
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("files in the data dir: %v, want only the snapshot", entries)
	}
	m2, ms2 := snapshotManager(t, switchboard.Config{}, clock)
	if n, err := ms2.LoadSnapshot(path, clock.Now()); err != nil || n != 1 {
		t.Fatalf("LoadSnapshot = %d, %v", n, err)
	}
	if rec, err := m2.Get(ctx, k); err != nil || rec.Route.ExternalRoomID != "second" {
		t.Fatalf("Get after LoadSnapshot = %+v, %v", rec, err)
	}
}

// FuzzReadSnapshot: reading any bytes never panics, and either restores
// or fails with ErrInvalidSnapshot.
func FuzzReadSnapshot(f *testing.F) {
	ms := switchboard.NewMemoryStore()
	m, err := switchboard.New(switchboard.Config{PartitionCount: 2}, switchboard.WithStore(ms))
	if err != nil {
		f.Fatal(err)
	}
	defer m.Close()
	_ = m.Set(context.Background(), switchboard.SessionKey{ChannelType: "c", BridgeID: "b", RoomID: "r", ThreadID: "t"},
		switchboard.Route{ExternalRoomID: "x", Meta: map[string]string{"a": "b"}})
	var buf bytes.Buffer
	if err := ms.WriteSnapshot(&buf); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte("switchboard snapshot v1\nend 0 00000000\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		target := switchboard.NewMemoryStore()
		tm, err := switchboard.New(switchboard.Config{PartitionCount: 2}, switchboard.WithStore(target))
		if err != nil {
			t.Fatal(err)
		}
		defer tm.Close()
		if _, err := target.ReadSnapshot(bytes.NewReader(data), time.Unix(0, 0)); err != nil && !errors.Is(err, switchboard.ErrInvalidSnapshot) {
			t.Fatalf("ReadSnapshot: %v does not wrap ErrInvalidSnapshot", err)
		}
	})
}
