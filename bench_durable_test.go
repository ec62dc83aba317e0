package switchboard_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-go/switchboard"
	"github.com/switchboard-go/switchboard/internal/benchdata"
)

// BenchmarkDurableSet is write throughput of a durable MemoryStore under
// each fsync policy, with 64 concurrent writers (RunParallel with
// parallelism 64/GOMAXPROCS) setting new keys, against the same Manager
// without a log ("memory") in the same run. With always, concurrent
// writers share one fsync (group commit): ns/op is the inverse of
// throughput, not a latency. The directory is b.TempDir(), so on the
// machine's disk (set TMPDIR to measure another).
func BenchmarkDurableSet(b *testing.B) {
	ctx := context.Background()
	for _, c := range []struct {
		name    string
		durable bool
		fsync   switchboard.Fsync
	}{
		{"memory", false, ""},
		{"fsync=no", true, switchboard.FsyncNever},
		{"fsync=everysec", true, switchboard.FsyncEverySecond},
		{"fsync=always", true, switchboard.FsyncAlways},
	} {
		b.Run(c.name, func(b *testing.B) {
			ms := switchboard.NewMemoryStore()
			if c.durable {
				var err error
				ms, err = switchboard.OpenMemoryStore(b.TempDir(), switchboard.PersistOptions{Fsync: c.fsync, Logger: quiet, SnapshotInterval: time.Hour, MaxLogBytes: 1 << 40})
				if err != nil {
					b.Fatal(err)
				}
			}
			m, err := switchboard.New(switchboard.Config{PartitionCount: 8, MaxEntriesPerPartition: switchboard.MaxEntriesLimit}, switchboard.WithStore(ms))
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close()
			r := benchdata.Route(1)
			var next atomic.Int64
			b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0)))
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				g := next.Add(1)
				for i := 0; pb.Next(); i++ {
					k := switchboard.SessionKey{ChannelType: "telegram", BridgeID: fmt.Sprint("w", g), RoomID: fmt.Sprint(i)}
					if err := m.Set(ctx, k, r); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
		})
	}
}

// BenchmarkDurableRestart is the start of a durable MemoryStore holding
// 1,000,000 records: a snapshot of 900,000 and a log of the 100,000
// written after it (what a kill -9 between two compactions leaves), until
// New returns with every record in memory — including the compaction a
// start does after replaying a log. Each iteration starts from a fresh
// copy of the directory (not timed).
func BenchmarkDurableRestart(b *testing.B) {
	const total, logged = 1_000_000, 100_000
	clock := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	now := func() time.Time { return clock }
	cfg := switchboard.Config{PartitionCount: 8, MaxEntriesPerPartition: total / 4, TTL: time.Hour}
	src := b.TempDir()
	ms, err := switchboard.OpenMemoryStore(src, switchboard.PersistOptions{Fsync: switchboard.FsyncNever, Logger: quiet, Now: now, SnapshotInterval: time.Hour, MaxLogBytes: 1 << 40})
	if err != nil {
		b.Fatal(err)
	}
	m, err := switchboard.New(cfg, switchboard.WithStore(ms), switchboard.WithClock(now))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for i := range total {
		if i == total-logged {
			if err := ms.Compact(); err != nil {
				b.Fatal(err)
			}
		}
		if err := m.Set(ctx, benchKey(i), benchdata.Route(i)); err != nil {
			b.Fatal(err)
		}
	}
	image := crashImage(b, src) // before Close, which would compact the log away
	_ = m.Close()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		dir := crashImage(b, image)
		b.StartTimer()
		ms, err := switchboard.OpenMemoryStore(dir, switchboard.PersistOptions{Logger: quiet, Now: now})
		if err != nil {
			b.Fatal(err)
		}
		m, err := switchboard.New(cfg, switchboard.WithStore(ms), switchboard.WithClock(now))
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		st := ms.Recovery()
		if st.Restored != total || st.Replayed != logged {
			b.Fatalf("restored %d records, replayed %d log operations; want %d and %d", st.Restored, st.Replayed, total, logged)
		}
		_ = m.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/start")
}

func benchKey(i int) switchboard.SessionKey {
	return switchboard.SessionKey{ChannelType: "telegram", BridgeID: "bot_1", RoomID: fmt.Sprint("chat_", i)}
}

// BenchmarkDurableCompact is one compaction of a durable MemoryStore
// holding 1,000,000 records: the snapshot written (to a temporary file,
// synced, renamed) and the log before it deleted.
func BenchmarkDurableCompact(b *testing.B) {
	const total = 1_000_000
	dir := b.TempDir()
	ms, err := switchboard.OpenMemoryStore(dir, switchboard.PersistOptions{Fsync: switchboard.FsyncNever, Logger: quiet, SnapshotInterval: time.Hour, MaxLogBytes: 1 << 40})
	if err != nil {
		b.Fatal(err)
	}
	m, err := switchboard.New(switchboard.Config{PartitionCount: 8, MaxEntriesPerPartition: total / 4, TTL: time.Hour}, switchboard.WithStore(ms))
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()
	for i := range total {
		if err := m.Set(ctx, benchKey(i), benchdata.Route(i)); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for range b.N {
		if err := ms.Compact(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/compaction")
	if fi, err := os.Stat(filepath.Join(dir, "snapshot")); err == nil {
		b.ReportMetric(float64(fi.Size())/(1<<20), "MiB")
	}
}
