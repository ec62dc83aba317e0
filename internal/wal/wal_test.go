package wal

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func write(t *testing.T, path string, policy Sync, records ...string) {
	t.Helper()
	w, err := Create(path, policy)
	if err != nil {
		t.Fatal(err)
	}
	var end Ticket
	for _, r := range records {
		if end, err = w.Append([]byte(r)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Wait(end); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func readAll(t *testing.T, path string) ([]string, int64, error) {
	t.Helper()
	var out []string
	torn, err := Read(path, func(p []byte, _ int64) error { out = append(out, string(p)); return nil })
	return out, torn, err
}

func TestRoundTrip(t *testing.T) {
	for _, policy := range []Sync{SyncEverySecond, SyncAlways, SyncNever} {
		path := filepath.Join(t.TempDir(), "seg")
		want := []string{"a", "", "ccc", string(bytes.Repeat([]byte{0xff}, 70000))}
		write(t, path, policy, want...)
		got, torn, err := readAll(t, path)
		if err != nil || torn != 0 || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("policy %d: read %d records, torn %d, %v", policy, len(got), torn, err)
		}
	}
}

// TestEveryCutOfTheLastRecord cuts the log at every byte offset inside its
// last record: everything before it is recovered and the cut part is
// reported as torn.
func TestEveryCutOfTheLastRecord(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "seg")
	records := []string{"first", "second record", "the last record, which a crash tears"}
	write(t, path, SyncAlways, records...)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lastStart := len(data) - headerSize - len(records[2])
	for cut := lastStart; cut < len(data); cut++ {
		p := filepath.Join(dir, fmt.Sprint("cut", cut))
		if err := os.WriteFile(p, data[:cut], 0o600); err != nil {
			t.Fatal(err)
		}
		got, torn, err := readAll(t, p)
		if err != nil || fmt.Sprint(got) != fmt.Sprint(records[:2]) || torn != int64(cut-lastStart) {
			t.Fatalf("cut at %d: %q, torn %d, %v; want the first two and %d torn bytes", cut, got, torn, err, cut-lastStart)
		}
	}
	// A flipped byte in the last record: torn too.
	bad := append([]byte(nil), data...)
	bad[len(bad)-1] ^= 1
	p := filepath.Join(dir, "flipped-last")
	_ = os.WriteFile(p, bad, 0o600)
	if got, torn, err := readAll(t, p); err != nil || len(got) != 2 || torn == 0 {
		t.Fatalf("a damaged last record: %q, %d, %v", got, torn, err)
	}
	// A flipped byte in the middle: damage, with the file and offset.
	bad = append([]byte(nil), data...)
	bad[headerSize+1] ^= 1
	p = filepath.Join(dir, "flipped-middle")
	_ = os.WriteFile(p, bad, 0o600)
	_, _, err = readAll(t, p)
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.File != p || ce.Offset != 0 {
		t.Fatalf("damage in the middle: %v, want a CorruptError at offset 0 of %s", err, p)
	}
}

// TestGroupCommit: many appenders with SyncAlways all get their records
// durable, sharing syncs.
func TestGroupCommit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "seg")
	w, err := Create(path, SyncAlways)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 64 {
		wg.Go(func() {
			for i := range 50 {
				end, err := w.Append([]byte(fmt.Sprintf("%d-%d", g, i)))
				if err == nil {
					err = w.Wait(end)
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, torn, err := readAll(t, path)
	if err != nil || torn != 0 || len(got) != 64*50 {
		t.Fatalf("read %d records, torn %d, %v; want %d", len(got), torn, err, 64*50)
	}
}

// TestWriteErrorIsSticky: after a failed write every Append and Wait
// fails.
func TestWriteErrorIsSticky(t *testing.T) {
	path := filepath.Join(t.TempDir(), "seg")
	w, err := Create(path, SyncAlways)
	if err != nil {
		t.Fatal(err)
	}
	w.f.Close() // the next write fails, as on a disk gone bad
	end, err := w.Append([]byte("x"))
	if err == nil {
		err = w.Wait(end)
	}
	if err == nil {
		t.Fatal("a write to a closed file succeeded")
	}
	if _, err := w.Append([]byte("y")); err == nil {
		t.Fatal("Append after a failure succeeded")
	}
	_ = w.Close()
}

// FuzzRead: reading any file never panics; it yields whole records and
// then either a torn tail (never longer than the file) or a
// *CorruptError, and the records it yields before stopping are a prefix
// of the file.
func FuzzRead(f *testing.F) {
	dir := f.TempDir()
	path := filepath.Join(dir, "seed")
	w, err := Create(path, SyncNever)
	if err != nil {
		f.Fatal(err)
	}
	for _, r := range []string{"a", "", "hello"} {
		if _, err := w.Append([]byte(r)); err != nil {
			f.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		f.Fatal(err)
	}
	seed, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add(seed[:len(seed)-2])
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "seg")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		var end int64
		torn, err := Read(path, func(p []byte, off int64) error {
			if off != end {
				t.Fatalf("a record at offset %d, want %d", off, end)
			}
			end = off + headerSize + int64(len(p))
			return nil
		})
		var ce *CorruptError
		switch {
		case err == nil:
			if end+torn != int64(len(data)) {
				t.Fatalf("records end at %d, torn %d, file %d bytes", end, torn, len(data))
			}
		case errors.As(err, &ce):
			if ce.Offset != end {
				t.Fatalf("corruption reported at %d, records end at %d", ce.Offset, end)
			}
		default:
			t.Fatalf("Read: %v", err)
		}
	})
}
