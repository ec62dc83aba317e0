package switchboard_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard-go/switchboard"
	"github.com/switchboard-go/switchboard/internal/wal"
	"github.com/switchboard-go/switchboard/manualclock"
	"github.com/switchboard-go/switchboard/storetest"
)

// TestDurableMemoryStoreConformance: a durable MemoryStore passes the
// whole suite, logging every change.
func TestDurableMemoryStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) switchboard.Store {
		st, err := switchboard.OpenMemoryStore(t.TempDir(), switchboard.PersistOptions{Fsync: switchboard.FsyncNever, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		return st
	})
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type durableEnv struct {
	t     *testing.T
	dir   string
	clock *manualclock.Clock
	m     *switchboard.Manager
	ms    *switchboard.MemoryStore
	ctx   context.Context
}

func openDurable(t *testing.T, dir string, clock *manualclock.Clock, cfg switchboard.Config, opts switchboard.PersistOptions) *durableEnv {
	t.Helper()
	opts.Now = clock.Now
	opts.Logger = quiet
	ms, err := switchboard.OpenMemoryStore(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	m, err := switchboard.New(cfg, switchboard.WithStore(ms), switchboard.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return &durableEnv{t: t, dir: dir, clock: clock, m: m, ms: ms, ctx: context.Background()}
}

// state returns every record, tombstones included, by key.
func (e *durableEnv) state() map[string]string {
	e.t.Helper()
	out := map[string]string{}
	for _, f := range []switchboard.Filter{{}, {Invalidated: true}} {
		for _, en := range listAll(e.t, e.m, f) {
			out[en.Key.String()] = fmt.Sprintf("%+v", en.Record)
		}
	}
	return out
}

// crashImage copies the store's directory as it is now, as a crash of the
// process would leave it (every write is in the operating system's hands
// once it returns, whatever the sync policy).
func crashImage(t testing.TB, dir string) string {
	t.Helper()
	image := t.TempDir()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, en := range entries {
		data, err := os.ReadFile(filepath.Join(dir, en.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(image, en.Name()), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return image
}

// workload does every kind of change.
func (e *durableEnv) workload(prefix string) {
	e.t.Helper()
	must := func(err error) {
		e.t.Helper()
		if err != nil {
			e.t.Fatal(err)
		}
	}
	for i := range 60 {
		k := key(fmt.Sprintf("%s%d", prefix, i), "")
		must(e.m.Set(e.ctx, k, route(fmt.Sprint("r", i)), switchboard.WithWriter("inbound"), switchboard.WithPriority(i%3)))
		if i%4 == 0 {
			_, err := e.m.Resolve(e.ctx, key(k.RoomID, "t"))
			must(err)
		}
		if i%5 == 0 {
			_, err := e.m.Confirm(e.ctx, k, route(fmt.Sprint("r", i)))
			must(err)
		}
		if i%7 == 0 {
			must(e.m.Invalidate(e.ctx, k, route(fmt.Sprint("r", i)), "403 bot removed"))
		}
		if i%11 == 0 {
			must(e.m.Delete(e.ctx, k))
		}
		if i%13 == 0 {
			_, err := e.m.Resolve(e.ctx, key(fmt.Sprintf("%sguess%d", prefix, i), ""), route("guess"))
			must(err)
		}
		e.clock.Advance(time.Second)
	}
	_, err := e.m.DeleteMatching(e.ctx, switchboard.Filter{RoomID: prefix + "3"}, false)
	must(err)
	// Short-lived ones that will have expired by the restart.
	must(e.m.Set(e.ctx, key(prefix+"short", ""), route("x"), switchboard.WithTTL(time.Second)))
}

// TestDurableRecoversExactly: after a crash — before or after a
// compaction — the store comes back with exactly the records it had:
// revisions, provenance, expiry, tombstones; evictions and deletes
// replayed; expired records skipped; revisions going on from there.
func TestDurableRecoversExactly(t *testing.T) {
	for _, compactMidway := range []bool{false, true} {
		t.Run(fmt.Sprintf("compacted midway %v", compactMidway), func(t *testing.T) {
			clock := manualclock.New(time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC))
			cfg := switchboard.Config{PartitionCount: 4, MaxEntriesPerPartition: 30, TTL: time.Hour}
			e := openDurable(t, t.TempDir(), clock, cfg, switchboard.PersistOptions{Fsync: switchboard.FsyncAlways, SnapshotInterval: time.Hour})
			e.workload("a")
			if compactMidway {
				if err := e.ms.Compact(); err != nil {
					t.Fatal(err)
				}
			}
			e.workload("b") // over capacity: evictions
			clock.Advance(2 * time.Second)
			want := e.state()
			image := crashImage(t, e.dir)

			r := openDurable(t, image, clock, cfg, switchboard.PersistOptions{})
			if got := r.state(); !reflect.DeepEqual(got, want) {
				t.Fatalf("recovered %d records, want %d:\n%s", len(got), len(want), diff(got, want))
			}
			st := r.ms.Recovery()
			if st.Restored != len(want) || st.TornBytes != 0 || (compactMidway && st.Snapshot == "") {
				t.Fatalf("Recovery = %+v", st)
			}
			// Revisions go on above everything recovered.
			entries := listAll(t, r.m, switchboard.Filter{})
			if len(entries) == 0 {
				t.Fatal("nothing recovered")
			}
			k := entries[0].Key
			before := entries[0].Record.Revision
			if err := r.m.Set(r.ctx, k, route("again"), switchboard.WithPriority(1000)); err != nil {
				t.Fatal(err)
			}
			if rev := getRecord(t, r.m, k).Revision; rev <= before {
				t.Fatalf("revision after recovery %d, was %d", rev, before)
			}
			// And a clean restart of the recovered store (Close writes a
			// snapshot) keeps it all.
			want = r.state()
			if err := r.m.Close(); err != nil {
				t.Fatal(err)
			}
			again := openDurable(t, image, clock, cfg, switchboard.PersistOptions{})
			if got := again.state(); !reflect.DeepEqual(got, want) {
				t.Fatalf("after a clean restart:\n%s", diff(got, want))
			}
		})
	}
}

func diff(got, want map[string]string) string {
	var lines []string
	for k, v := range want {
		if got[k] != v {
			lines = append(lines, fmt.Sprintf("  %s: got %s\n       want %s", k, got[k], v))
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			lines = append(lines, fmt.Sprintf("  %s: got %s, want nothing", k, v))
		}
	}
	sort.Strings(lines)
	if len(lines) > 10 {
		lines = append(lines[:10], "  …")
	}
	return strings.Join(lines, "\n")
}

// TestDurableTornTail: a log cut anywhere in its last record recovers
// everything before it and reports the cut bytes.
func TestDurableTornTail(t *testing.T) {
	clock := manualclock.New(time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC))
	cfg := switchboard.Config{PartitionCount: 2, TTL: time.Hour}
	e := openDurable(t, t.TempDir(), clock, cfg, switchboard.PersistOptions{Fsync: switchboard.FsyncAlways, SnapshotInterval: time.Hour})
	for i := range 10 {
		if err := e.m.Set(e.ctx, key(fmt.Sprint("k", i), ""), route("r")); err != nil {
			t.Fatal(err)
		}
	}
	want := e.state()
	if err := e.m.Set(e.ctx, key("last", ""), route("the last write")); err != nil {
		t.Fatal(err)
	}
	image := crashImage(t, e.dir)
	seg := lastSegment(t, image)
	data, _ := os.ReadFile(seg)
	full := e.state()
	lastStart := lastRecordStart(t, data)
	for cut := len(data) - 1; cut > lastStart; cut-- {
		dir := crashImage(t, image)
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(seg)), data[:cut], 0o600); err != nil {
			t.Fatal(err)
		}
		r := openDurable(t, dir, clock, cfg, switchboard.PersistOptions{})
		got := r.state()
		_ = r.m.Close()
		if reflect.DeepEqual(got, full) || !reflect.DeepEqual(got, want) {
			t.Fatalf("cut at %d of %d (the last record starts at %d):\n%s", cut, len(data), lastStart, diff(got, want))
		}
		if st := r.ms.Recovery(); st.TornBytes != int64(cut-lastStart) {
			t.Fatalf("cut at %d: %d torn bytes reported, want %d", cut, st.TornBytes, cut-lastStart)
		}
	}
}

// lastRecordStart walks a segment's framing (4-byte length, 4-byte CRC,
// payload) to the start of its last record.
func lastRecordStart(t *testing.T, data []byte) int {
	t.Helper()
	off, last := 0, -1
	for off+8 <= len(data) {
		n := int(data[off]) | int(data[off+1])<<8 | int(data[off+2])<<16 | int(data[off+3])<<24
		last = off
		off += 8 + n
	}
	if last < 0 || off != len(data) {
		t.Fatalf("segment framing: ends at %d of %d", off, len(data))
	}
	return last
}

func lastSegment(t *testing.T, dir string) string {
	t.Helper()
	matches, _ := filepath.Glob(filepath.Join(dir, "log.*"))
	sort.Strings(matches)
	var last string
	for _, m := range matches {
		if st, err := os.Stat(m); err == nil && st.Size() > 0 {
			last = m
		}
	}
	if last == "" {
		t.Fatal("no log segment with data")
	}
	return last
}

// TestDurableDamagedLog: damage before the end stops the start with an
// error naming the file and offset; DiscardCorrupt moves it aside.
func TestDurableDamagedLog(t *testing.T) {
	clock := manualclock.New(time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC))
	cfg := switchboard.Config{PartitionCount: 2, TTL: time.Hour}
	e := openDurable(t, t.TempDir(), clock, cfg, switchboard.PersistOptions{Fsync: switchboard.FsyncAlways, SnapshotInterval: time.Hour})
	for i := range 10 {
		if err := e.m.Set(e.ctx, key(fmt.Sprint("k", i), ""), route("r")); err != nil {
			t.Fatal(err)
		}
	}
	image := crashImage(t, e.dir)
	seg := lastSegment(t, image)
	data, _ := os.ReadFile(seg)
	data[12] ^= 0xff // inside the first record's payload
	if err := os.WriteFile(seg, data, 0o600); err != nil {
		t.Fatal(err)
	}
	ms, err := switchboard.OpenMemoryStore(image, switchboard.PersistOptions{Now: clock.Now, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	_, err = switchboard.New(cfg, switchboard.WithStore(ms))
	if err == nil || !strings.Contains(err.Error(), seg) || !strings.Contains(err.Error(), "at byte 0") {
		t.Fatalf("start with a damaged log: %v; want an error naming %s at byte 0", err, seg)
	}
	r := openDurable(t, image, clock, cfg, switchboard.PersistOptions{DiscardCorrupt: true})
	if st := r.ms.Recovery(); len(st.Discarded) != 1 || !strings.HasPrefix(st.Discarded[0], seg+".corrupt-") {
		t.Fatalf("Recovery = %+v; want the damaged segment moved aside", st)
	}
}

// TestDurableFailingLog: when the log cannot be written, writes fail with
// ErrStorageUnavailable instead of being acknowledged, reads go on, and
// writes resume once a compaction succeeds.
func TestDurableFailingLog(t *testing.T) {
	clock := manualclock.New(time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC))
	cfg := switchboard.Config{PartitionCount: 2, TTL: time.Hour}
	e := openDurable(t, t.TempDir(), clock, cfg, switchboard.PersistOptions{Fsync: switchboard.FsyncAlways, SnapshotInterval: time.Hour})
	k := key("chat_1", "")
	if err := e.m.Set(e.ctx, k, route("kept")); err != nil {
		t.Fatal(err)
	}
	switchboard.FailLogForTest(e.ms, syscall.EIO)
	err := e.m.Set(e.ctx, k, route("first write after the failure"))
	if !errors.Is(err, switchboard.ErrStorageUnavailable) {
		t.Fatalf("Set on a failed log: %v, want ErrStorageUnavailable", err)
	}
	for name, call := range map[string]func() error{
		"Set":        func() error { return e.m.Set(e.ctx, key("other", ""), route("x")) },
		"Delete":     func() error { return e.m.Delete(e.ctx, k) },
		"Confirm":    func() error { _, err := e.m.Confirm(e.ctx, k, route("kept")); return err },
		"Invalidate": func() error { return e.m.Invalidate(e.ctx, k, route("kept"), "x") },
		"DeleteMatching": func() error {
			_, err := e.m.DeleteMatching(e.ctx, switchboard.Filter{RoomID: "chat_1"}, false)
			return err
		},
	} {
		if err := call(); !errors.Is(err, switchboard.ErrStorageUnavailable) || errors.Is(err, switchboard.ErrOutcomeUnknown) {
			t.Errorf("%s while the log is failed: %v, want ErrStorageUnavailable (not applied)", name, err)
		}
	}
	if _, err := e.m.Get(e.ctx, k); err != nil {
		t.Fatalf("Get while the log is failed: %v", err)
	}
	res, err := e.m.Resolve(e.ctx, key("new", ""), route("fb"))
	if err != nil || res.FallbackReason != switchboard.ReasonSessionUnavailable {
		t.Fatalf("Resolve needing a write while the log is failed = %+v, %v; want session_unavailable", res, err)
	}
	if e.ms.PersistenceError() == nil || e.ms.PersistenceFailures() == 0 {
		t.Fatal("the failure is not reported")
	}
	if err := e.ms.Compact(); err != nil {
		t.Fatalf("Compact after the disk recovered: %v", err)
	}
	if e.ms.PersistenceError() != nil {
		t.Fatal("still failed after a successful compaction")
	}
	if err := e.m.Set(e.ctx, key("other", ""), route("written again")); err != nil {
		t.Fatalf("Set after recovery: %v", err)
	}
	want := e.state()
	image := crashImage(t, e.dir)
	r := openDurable(t, image, clock, cfg, switchboard.PersistOptions{})
	if got := r.state(); !reflect.DeepEqual(got, want) {
		t.Fatalf("after recovery and a crash:\n%s", diff(got, want))
	}
}

// TestDurableFullDisk: on a real full file system (a small tmpfs), writes
// fail with ErrStorageUnavailable, and resume when space is freed.
func TestDurableFullDisk(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", dir).CombinedOutput(); err != nil {
		if os.Getenv("SWITCHBOARD_REQUIRE_MOUNT") == "1" {
			t.Fatalf("mount a tmpfs: %v %s", err, out)
		}
		t.Skipf("cannot mount a tmpfs to fill (needs root; set SWITCHBOARD_REQUIRE_MOUNT=1 to make this a failure): %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", dir).Run() })
	clock := manualclock.New(time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC))
	cfg := switchboard.Config{PartitionCount: 2, TTL: time.Hour}
	e := openDurable(t, dir, clock, cfg, switchboard.PersistOptions{Fsync: switchboard.FsyncAlways, SnapshotInterval: time.Hour})
	filler := filepath.Join(dir, "filler")
	_ = os.WriteFile(filler, make([]byte, 400<<10), 0o600)
	acked := map[string]bool{}
	var failed error
	for i := 0; i < 100000 && failed == nil; i++ {
		k := key(fmt.Sprint("k", i), "")
		if err := e.m.Set(e.ctx, k, route(strings.Repeat("x", 400))); err != nil {
			failed = err
			break
		}
		acked[k.String()] = true
	}
	if !errors.Is(failed, switchboard.ErrStorageUnavailable) || len(acked) == 0 {
		t.Fatalf("writes on a full disk: %d acknowledged, then %v; want ErrStorageUnavailable", len(acked), failed)
	}
	if err := e.m.Set(e.ctx, key("next", ""), route("x")); !errors.Is(err, switchboard.ErrStorageUnavailable) {
		t.Fatalf("the next write: %v", err)
	}
	if _, err := e.m.Get(e.ctx, key("k0", "")); err != nil {
		t.Fatalf("reads on a full disk: %v", err)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if err := e.ms.Compact(); err != nil {
		t.Fatalf("Compact with space again: %v", err)
	}
	if err := e.m.Set(e.ctx, key("next", ""), route("x")); err != nil {
		t.Fatalf("a write with space again: %v", err)
	}
	image := crashImage(t, dir)
	r := openDurable(t, image, clock, cfg, switchboard.PersistOptions{})
	for k := range acked {
		if _, err := r.m.Get(r.ctx, mustParse(t, k)); err != nil {
			t.Fatalf("acknowledged %s lost: %v", k, err)
		}
	}
}

func mustParse(t *testing.T, s string) switchboard.SessionKey {
	t.Helper()
	k, err := switchboard.ParseSessionKey(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// FuzzReplayLog: decoding any log record never panics, and what it
// accepts is a valid state (every record survives a snapshot round trip,
// whose reader checks every field).
func FuzzReplayLog(f *testing.F) {
	seedDir := f.TempDir()
	ms, err := switchboard.OpenMemoryStore(seedDir, switchboard.PersistOptions{Fsync: switchboard.FsyncAlways, Logger: quiet, SnapshotInterval: time.Hour})
	if err != nil {
		f.Fatal(err)
	}
	m, err := switchboard.New(switchboard.Config{PartitionCount: 2}, switchboard.WithStore(ms))
	if err != nil {
		f.Fatal(err)
	}
	ctx := context.Background()
	k := switchboard.SessionKey{ChannelType: "c", BridgeID: "b", RoomID: "r", ThreadID: "t"}
	_ = m.Set(ctx, k, switchboard.Route{ExternalRoomID: "x", Meta: map[string]string{"a": "b"}}, switchboard.WithWriter("w"), switchboard.WithPriority(3))
	_ = m.Invalidate(ctx, k, switchboard.Route{ExternalRoomID: "x"}, "gone")
	_ = m.Delete(ctx, k)
	segs, _ := filepath.Glob(filepath.Join(seedDir, "log.*"))
	seeds := 0
	for _, seg := range segs {
		_, _ = wal.Read(seg, func(payload []byte, _ int64) error {
			f.Add(append([]byte(nil), payload...))
			seeds++
			return nil
		})
	}
	if seeds < 3 {
		f.Fatal("no log segment to take seeds from")
	}
	_ = m.Close()
	f.Add([]byte{'P', 0, 1})
	f.Add([]byte{'D', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 1, 5, 'c', 0, 'b', 0, 'r'})
	target := switchboard.NewMemoryStore()
	tm, err := switchboard.New(switchboard.Config{PartitionCount: 2}, switchboard.WithStore(target))
	if err != nil {
		f.Fatal(err)
	}
	defer tm.Close()
	f.Fuzz(func(t *testing.T, payload []byte) {
		// The decoder alone (no file, no sync): what a start runs on
		// every record of the log.
		if err := switchboard.ReplayLogForTest(target, payload); err != nil {
			return
		}
		// What it accepted is a valid state: every record reads back
		// and survives a snapshot round trip.
		var buf bytes.Buffer
		if err := target.WriteSnapshot(&buf); err != nil {
			t.Fatalf("WriteSnapshot after replaying %q: %v", payload, err)
		}
		check := switchboard.NewMemoryStore()
		cm, err := switchboard.New(switchboard.Config{PartitionCount: 2}, switchboard.WithStore(check))
		if err != nil {
			t.Fatal(err)
		}
		defer cm.Close()
		if _, err := check.ReadSnapshot(&buf, time.Unix(0, 0)); err != nil {
			t.Fatalf("the snapshot of a replayed log does not load: %v (payload %q)", err, payload)
		}
	})
}

// TestReplayLogDamaged: a log record that decodes wrong (framed with a
// valid checksum, as a bug rather than a torn write would leave it)
// stops the start with ErrInvalidSnapshot naming the file.
func TestReplayLogDamaged(t *testing.T) {
	for _, payload := range [][]byte{
		{'P', 0, 1},
		{'X', 0, 1, 5, 'c', 0, 'b', 0, 'r'},
		{'D', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 1, 5, 'c', 0, 'b', 0, 'r'},
		{'D', 0, 1, 3, 'c', 0, 'b'},
	} {
		dir := t.TempDir()
		w, err := wal.Create(filepath.Join(dir, "log.0000000000000001"), wal.SyncNever)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Append(payload); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		st, err := switchboard.OpenMemoryStore(dir, switchboard.PersistOptions{Fsync: switchboard.FsyncNever, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		m, err := switchboard.New(switchboard.Config{PartitionCount: 2}, switchboard.WithStore(st))
		if err == nil {
			_ = m.Close()
			t.Fatalf("a start on the log record %q succeeded", payload)
		}
		if !errors.Is(err, switchboard.ErrInvalidSnapshot) || !strings.Contains(err.Error(), "log.0000000000000001") {
			t.Fatalf("a start on a damaged log: %v, want ErrInvalidSnapshot naming the file", err)
		}
	}
}
