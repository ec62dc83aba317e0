package switchboard

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard-go/switchboard/internal/memtable"
	"github.com/switchboard-go/switchboard/internal/wal"
)

// Fsync is when a durable MemoryStore syncs its log to stable storage.
type Fsync string

// The fsync policies, named as Redis names its appendfsync settings.
const (
	// FsyncEverySecond writes every change to the log before the call
	// returns and syncs the log every second: a crash of the process loses
	// nothing acknowledged, a crash of the machine (power, kernel) up to
	// about the last second. The default.
	FsyncEverySecond Fsync = "everysec"
	// FsyncAlways syncs the log before a write returns; writes that arrive
	// together share one sync (group commit). Nothing acknowledged is lost.
	FsyncAlways Fsync = "always"
	// FsyncNever writes every change to the log before the call returns and
	// leaves syncing to the operating system.
	FsyncNever Fsync = "no"
)

// PersistOptions configures a durable MemoryStore (OpenMemoryStore). The
// zero value means all defaults.
type PersistOptions struct {
	// Fsync is the log's sync policy. Default: FsyncEverySecond.
	Fsync Fsync
	// SnapshotInterval is how often the log is compacted when anything
	// was written since the last compaction: a snapshot of every
	// partition is written in the background from a consistent cut, and
	// the log before it deleted. Default: 1m.
	SnapshotInterval time.Duration
	// MaxLogBytes compacts sooner, when the log grows past it. Default:
	// 64 MiB.
	MaxLogBytes int64
	// DiscardCorrupt makes a start that finds a damaged snapshot or log
	// move the damaged file (and the log after it) aside and start with
	// what came before, instead of failing. Default: fail, naming the
	// file and offset.
	DiscardCorrupt bool
	// Logger gets recovery and compaction reports. Default:
	// slog.Default().
	Logger *slog.Logger
	// Now is the clock that decides, at the start, which records are
	// already expired (and skipped). Default: time.Now.
	Now func() time.Time
	// Name prefixes the store's files, so that several stores can share a
	// directory: <Name>.snapshot and <Name>.log.<n>. Default: "" (files
	// snapshot and log.<n>).
	Name string
}

// RecoveryStats says what a durable MemoryStore found at its start.
type RecoveryStats struct {
	Snapshot  string        // the snapshot loaded ("" for none)
	Restored  int           // records live after the start
	Replayed  int           // log operations applied after the snapshot
	Segments  int           // log segments read
	TornBytes int64         // bytes of torn records dropped from the ends of segments
	Discarded []string      // damaged files moved aside (DiscardCorrupt)
	Took      time.Duration // how long the start took
}

// durability is the log and compaction of a durable MemoryStore.
type durability struct {
	dir  string
	opts PersistOptions
	sync wal.Sync

	logMu sync.RWMutex // guards w and seg against rotation
	w     *wal.Writer
	seg   uint64

	compactMu  sync.Mutex            // one compaction at a time
	broken     atomic.Pointer[error] // the log could not be written: writes are refused until a compaction succeeds
	compactErr atomic.Pointer[error] // the last compaction failed (the log still works)
	failures   atomic.Uint64
	recovered  RecoveryStats

	stop chan struct{}
	done chan struct{}
}

// ErrStorageUnavailable is in errors.go.

func (d *durability) snapshotPath() string {
	if d.opts.Name == "" {
		return filepath.Join(d.dir, "snapshot")
	}
	return filepath.Join(d.dir, d.opts.Name+".snapshot")
}

func (d *durability) segmentPrefix() string {
	if d.opts.Name == "" {
		return "log."
	}
	return d.opts.Name + ".log."
}

func (d *durability) segmentPath(n uint64) string {
	return filepath.Join(d.dir, fmt.Sprintf("%s%016d", d.segmentPrefix(), n))
}

// OpenMemoryStore returns a MemoryStore that keeps its records durable in
// dir (created if missing): every change is appended to a log before the
// call returns, synced by opts.Fsync, and the log is compacted into a
// snapshot in the background. When New initializes it, it loads the
// snapshot and replays the log after it — revisions, provenance and
// expiry exactly; records already expired are skipped; a torn last record
// (a crash mid-append) is dropped and reported in Recovery; damage before
// the end stops the start with an error naming the file and offset
// (unless opts.DiscardCorrupt). A failing disk makes writes fail with an
// error wrapping ErrStorageUnavailable instead of acknowledging what was
// not written; reads go on, and writes resume once a compaction succeeds
// again (retried every second). Close syncs the log and writes a final
// snapshot.
func OpenMemoryStore(dir string, opts PersistOptions) (*MemoryStore, error) {
	d := &durability{dir: dir, opts: opts}
	switch opts.Fsync {
	case "", FsyncEverySecond:
		d.opts.Fsync, d.sync = FsyncEverySecond, wal.SyncEverySecond
	case FsyncAlways:
		d.sync = wal.SyncAlways
	case FsyncNever:
		d.sync = wal.SyncNever
	default:
		return nil, fmt.Errorf("%w: Fsync %q: want %q, %q or %q", ErrInvalidConfig, opts.Fsync, FsyncEverySecond, FsyncAlways, FsyncNever)
	}
	if strings.ContainsAny(opts.Name, "/\\") || opts.Name == "." || opts.Name == ".." {
		return nil, fmt.Errorf("%w: Name %q may not be a path", ErrInvalidConfig, opts.Name)
	}
	if opts.SnapshotInterval < 0 || opts.MaxLogBytes < 0 {
		return nil, fmt.Errorf("%w: SnapshotInterval and MaxLogBytes must not be negative", ErrInvalidConfig)
	}
	if d.opts.SnapshotInterval == 0 {
		d.opts.SnapshotInterval = time.Minute
	}
	if d.opts.MaxLogBytes == 0 {
		d.opts.MaxLogBytes = 64 << 20
	}
	if d.opts.Logger == nil {
		d.opts.Logger = slog.Default()
	}
	if d.opts.Now == nil {
		d.opts.Now = time.Now
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("open memory store: %w", err)
	}
	return &MemoryStore{dur: d}, nil
}

// Recovery reports what the start of a durable MemoryStore found (zero
// for one that is not durable, or before New).
func (s *MemoryStore) Recovery() RecoveryStats {
	if s.dur == nil {
		return RecoveryStats{}
	}
	return s.dur.recovered
}

// PersistenceError returns why a durable MemoryStore cannot make writes
// durable now, or why its last compaction failed (nil when all is well, or
// when it is not durable): for readiness checks.
func (s *MemoryStore) PersistenceError() error {
	if s.dur == nil {
		return nil
	}
	if err := s.dur.broken.Load(); err != nil {
		return *err
	}
	if err := s.dur.compactErr.Load(); err != nil {
		return *err
	}
	return nil
}

// PersistenceFailures counts the log writes and compactions of a durable
// MemoryStore that failed.
func (s *MemoryStore) PersistenceFailures() uint64 {
	if s.dur == nil {
		return 0
	}
	return s.dur.failures.Load()
}

// Compact writes a snapshot of a durable MemoryStore now and deletes the
// log it covers (what the background does every SnapshotInterval).
func (s *MemoryStore) Compact() error {
	if s.dur == nil {
		return errors.New("compact: the store is not durable")
	}
	return s.dur.compact(s)
}

// segments lists the log segments in dir, oldest first.
func (d *durability) segments() ([]uint64, error) {
	entries, err := os.ReadDir(d.dir)
	if err != nil {
		return nil, err
	}
	var out []uint64
	for _, e := range entries {
		if v, ok := strings.CutPrefix(e.Name(), d.segmentPrefix()); ok && !strings.Contains(v, ".") {
			if n, err := strconv.ParseUint(v, 10, 64); err == nil {
				out = append(out, n)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

// open loads the snapshot, replays the log and starts a new segment and
// the background compaction. s is initialized.
func (d *durability) open(s *MemoryStore) error {
	start := time.Now()
	now := d.opts.Now().UnixNano()
	st := &d.recovered
	snap := d.snapshotPath()
	meta, err := s.loadSnapshotMeta(snap, d.opts.Now())
	switch {
	case err == nil:
		st.Snapshot = snap
	case errors.Is(err, fs.ErrNotExist):
	case errors.Is(err, ErrInvalidSnapshot) && d.opts.DiscardCorrupt:
		aside := snap + ".corrupt-" + time.Now().UTC().Format("20060102T150405")
		if rerr := os.Rename(snap, aside); rerr != nil {
			return rerr
		}
		st.Discarded = append(st.Discarded, aside)
		meta = snapshotMeta{}
	default:
		return fmt.Errorf("open memory store: %w", err)
	}
	segs, err := d.segments()
	if err != nil {
		return fmt.Errorf("open memory store: %w", err)
	}
	sameLayout := meta.Partitions == 0 || meta.Partitions == len(s.parts)
	maxRev := make([]uint64, len(s.parts))
	maxLSN := map[int]uint64{}
	logParts := meta.Partitions
	for i, n := range segs {
		if n < meta.Segment {
			continue
		}
		path := d.segmentPath(n)
		st.Segments++
		torn, err := wal.Read(path, func(payload []byte, off int64) error {
			applied, err := s.replay(payload, meta.LSNs, maxRev, maxLSN, &logParts)
			st.Replayed += applied
			if err != nil {
				return &wal.CorruptError{File: path, Offset: off, Reason: err.Error()}
			}
			return nil
		})
		st.TornBytes += torn
		if torn > 0 {
			d.opts.Logger.Warn("switchboard: dropped a torn record at the end of the log", "file", path, "bytes", torn)
		}
		var ce *wal.CorruptError
		if errors.As(err, &ce) && d.opts.DiscardCorrupt {
			for _, m := range segs[i:] {
				p := d.segmentPath(m)
				aside := p + ".corrupt-" + time.Now().UTC().Format("20060102T150405")
				if rerr := os.Rename(p, aside); rerr != nil {
					return rerr
				}
				st.Discarded = append(st.Discarded, aside)
			}
			d.opts.Logger.Warn("switchboard: moved a damaged log aside", "error", err)
			break
		}
		if err != nil {
			return fmt.Errorf("open memory store: %w: %w (to start without it, move it aside or use DiscardCorrupt)", ErrInvalidSnapshot, err)
		}
	}
	sameLayout = sameLayout && (logParts == 0 || logParts == len(s.parts))
	if !sameLayout {
		s.renumber()
	}
	for i := range s.parts {
		p := &s.parts[i]
		p.mu.Lock()
		p.sweepExpired(now)
		p.evict(s.limit, false)
		p.rev = max(p.rev, maxRev[i])
		if sameLayout {
			p.lsn = max(p.lsn, maxLSN[i])
			if i < len(meta.LSNs) {
				p.lsn = max(p.lsn, meta.LSNs[i])
			}
		}
		st.Restored += p.Len()
		p.mu.Unlock()
	}
	next := uint64(1)
	if len(segs) > 0 {
		next = segs[len(segs)-1] + 1
	}
	next = max(next, meta.Segment)
	if d.w, err = wal.Create(d.segmentPath(next), d.sync); err != nil {
		return fmt.Errorf("open memory store: %w", err)
	}
	d.seg = next
	st.Took = time.Since(start)
	d.opts.Logger.Info("switchboard: memory store recovered", "dir", d.dir, "snapshot", st.Snapshot != "", "records", st.Restored,
		"replayed", st.Replayed, "segments", st.Segments, "torn_bytes", st.TornBytes, "took", st.Took)
	if !sameLayout || len(st.Discarded) > 0 {
		// The log's partition numbers and sequence counters are of the
		// old layout, or damaged files were moved aside: a snapshot now
		// makes the directory describe this store alone. Otherwise the
		// log read stays until the next compaction (a start does not
		// rewrite everything; the next one replays the same operations).
		if err := d.compact(s); err != nil {
			return fmt.Errorf("open memory store: %w", err)
		}
	}
	d.stop, d.done = make(chan struct{}), make(chan struct{})
	go d.loop(s)
	return nil
}

// loop compacts every SnapshotInterval when something was written since
// the last compaction (an idle store costs nothing), sooner when the log
// grows past MaxLogBytes, and every second while broken (which is how writes resume
// after the disk recovers).
func (d *durability) loop(s *MemoryStore) {
	defer close(d.done)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	last := time.Now()
	for {
		select {
		case <-d.stop:
			return
		case <-tick.C:
		}
		d.logMu.RLock()
		size, werr := d.w.Size(), d.w.Err()
		d.logMu.RUnlock()
		if werr != nil {
			d.fail(werr)
		}
		retry := d.broken.Load() != nil || d.compactErr.Load() != nil
		if !retry && (size == 0 || time.Since(last) < d.opts.SnapshotInterval && size < d.opts.MaxLogBytes) {
			continue // nothing written since the last compaction, or not due
		}
		if err := d.compact(s); err != nil {
			d.opts.Logger.Error("switchboard: compaction failed; writes fail until it succeeds", "dir", d.dir, "error", err)
		}
		last = time.Now()
	}
}

// fail marks the store as unable to make writes durable.
func (d *durability) fail(err error) {
	if d.broken.Swap(&err) == nil {
		d.failures.Add(1)
		d.opts.Logger.Error("switchboard: the log cannot be written; writes fail until it can", "dir", d.dir, "error", err)
	}
}

// compact rotates the log to a new segment, writes a snapshot of every
// partition (each under its read lock, with its log sequence number) that
// says to replay from that segment, and deletes the segments before it.
// On success the store is healthy again.
func (d *durability) compact(s *MemoryStore) error {
	d.compactMu.Lock()
	defer d.compactMu.Unlock()
	err := d.compactLocked(s)
	if err != nil {
		d.failures.Add(1)
		d.compactErr.Store(&err)
		return err
	}
	d.broken.Store(nil)
	d.compactErr.Store(nil)
	return nil
}

func (d *durability) compactLocked(s *MemoryStore) error {
	next := d.seg + 1
	nw, err := wal.Create(d.segmentPath(next), d.sync)
	if err != nil {
		return fmt.Errorf("compact: %w", err)
	}
	d.logMu.Lock()
	old := d.w
	d.w, d.seg = nw, next
	d.logMu.Unlock()
	if err := old.Close(); err != nil {
		d.opts.Logger.Warn("switchboard: closing the previous log segment", "error", err)
	}
	if err := s.saveSnapshot(d.snapshotPath(), next); err != nil {
		return fmt.Errorf("compact: %w", err)
	}
	segs, err := d.segments()
	if err != nil {
		return fmt.Errorf("compact: %w", err)
	}
	for _, n := range segs {
		if n < next {
			_ = os.Remove(d.segmentPath(n))
		}
	}
	return nil
}

// close stops the background, syncs the log and writes a final snapshot.
func (d *durability) close(s *MemoryStore) error {
	if d.stop != nil {
		close(d.stop)
		<-d.done
	}
	if d.w == nil {
		return nil
	}
	err := d.compact(s)
	d.logMu.Lock()
	w := d.w
	d.w = nil
	d.logMu.Unlock()
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	return err
}

// pending is an appended log record to wait for.
type pending struct {
	w *wal.Writer
	t wal.Ticket
}

// usable returns ErrStorageUnavailable (not applied) when the store cannot
// make writes durable.
func (d *durability) usable() error {
	if err := d.broken.Load(); err != nil {
		return fmt.Errorf("%w: %w", ErrStorageUnavailable, *err)
	}
	return nil
}

// append logs the operations p.ops holds (under p's write lock, so the
// log has p's changes in the order they were applied) as one record.
func (d *durability) append(p *memPartitionState) (pending, error) {
	if len(p.ops) == 0 {
		return pending{}, nil
	}
	d.logMu.RLock()
	w := d.w
	t, err := w.Append(p.ops)
	d.logMu.RUnlock()
	p.ops = p.ops[:0]
	if err != nil {
		d.fail(err)
		return pending{}, fmt.Errorf("%w: %w: %w", ErrStorageUnavailable, ErrOutcomeUnknown, err)
	}
	return pending{w: w, t: t}, nil
}

// waitIf is wait on a store that may not be durable (d nil).
func (d *durability) waitIf(pd pending) error {
	if d == nil {
		return nil
	}
	return d.wait(pd)
}

// wait returns once a logged change is as durable as the policy says.
func (d *durability) wait(pd pending) error {
	if pd.w == nil {
		return nil
	}
	if err := pd.w.Wait(pd.t); err != nil {
		d.fail(err)
		// Applied in memory but not durably logged: a later compaction
		// will write it (and make the store healthy again).
		return fmt.Errorf("%w: %w: %w", ErrStorageUnavailable, ErrOutcomeUnknown, err)
	}
	return nil
}

// Log operations. A log record is a batch of operations of one partition:
//
//	'P' partition lsn key record   put: insert or overwrite, as the most recently written
//	'U' partition lsn key record   update in place (its place in the write order kept)
//	'D' partition lsn key          delete (Delete, DeleteMatching, capacity eviction)
//
// with numbers as uvarints (signed ones zigzag varints), strings as a
// uvarint length and bytes, and a record as updated, expires, revision,
// priority, origin, confirmed, writer, invalidation reason, the route's
// five strings and its Meta pairs. Expiry and the deletes it causes are
// not logged: a start skips what is expired.
const (
	opPut    = 'P'
	opUpdate = 'U'
	opDelete = 'D'
)

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// logOp appends one operation to p.ops (p's write lock held).
func (p *memPartitionState) logOp(op byte, key []byte, r *memRecord) {
	p.lsn++
	b := append(p.ops, op)
	b = binary.AppendUvarint(b, uint64(p.idx))
	b = binary.AppendUvarint(b, p.lsn)
	b = binary.AppendUvarint(b, uint64(len(key)))
	b = append(b, key...)
	if op != opDelete {
		b = binary.AppendVarint(b, r.updated)
		b = binary.AppendVarint(b, r.expires)
		b = binary.AppendUvarint(b, r.rev)
		b = binary.AppendVarint(b, int64(r.prio))
		b = append(b, r.origin, boolByte(r.confirmed))
		b = appendString(b, r.writer())
		b = appendString(b, r.invalidated())
		route := r.route()
		for _, f := range [...]string{route.ExternalRoomID, route.ChannelType, route.BridgeID, route.RoomID, route.ThreadID} {
			b = appendString(b, f)
		}
		b = binary.AppendUvarint(b, uint64(len(r.meta)))
		for k, v := range r.meta {
			b = appendString(appendString(b, k), v)
		}
	}
	p.ops = b
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

// opReader decodes log operations.
type opReader struct {
	b   []byte
	err error
}

func (r *opReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errors.New("a truncated number")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *opReader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errors.New("a truncated number")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *opReader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil || n > uint64(len(r.b)) {
		r.err = errors.New("a truncated string")
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *opReader) byte1() byte {
	if len(r.b) == 0 {
		r.err = errors.New("a truncated record")
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

// replay applies one log record's operations, skipping those the snapshot
// already holds (lsn at most lsns[partition]), without evicting (the start
// enforces capacity once, at the end). It returns how many it applied.
func (s *MemoryStore) replay(payload []byte, lsns []uint64, maxRev []uint64, maxLSN map[int]uint64, logParts *int) (int, error) {
	r := &opReader{b: payload}
	applied := 0
	for len(r.b) > 0 && r.err == nil {
		op := r.byte1()
		part64 := r.uvarint()
		part := int(min(part64, MaxPartitionCount))
		lsn := r.uvarint()
		key := r.bytes()
		var rec memRecord
		var route Route
		var writer, reason string
		if op == opPut || op == opUpdate {
			rec.updated, rec.expires, rec.rev = r.varint(), r.varint(), r.uvarint()
			prio := r.varint()
			rec.origin, rec.confirmed = r.byte1(), r.byte1() == 1
			writer, reason = string(r.bytes()), string(r.bytes())
			if r.err == nil {
				if err := checkLogged(prio, rec.rev, writer, reason); err != nil {
					return applied, err
				}
			}
			rec.prio = int16(prio)
			var f [5]string
			for i := range f {
				f[i] = string(r.bytes())
			}
			route = Route{ExternalRoomID: f[0], ChannelType: f[1], BridgeID: f[2], RoomID: f[3], ThreadID: f[4]}
			if n := r.uvarint(); n > 0 && r.err == nil {
				if n > MaxMetaEntries {
					return applied, fmt.Errorf("%d meta entries", n)
				}
				route.Meta = make(map[string]string, n)
				for range n {
					k := string(r.bytes())
					route.Meta[k] = string(r.bytes())
				}
			}
		} else if op != opDelete {
			return applied, fmt.Errorf("unknown operation %q", op)
		}
		if r.err != nil {
			return applied, r.err
		}
		if part64 >= MaxPartitionCount || rec.origin > originProvidedCode {
			return applied, errors.New("a malformed operation")
		}
		k := decodeKey(key)
		if err := k.Validate(); err != nil || !bytes.Equal(appendKey(nil, k), key) {
			return applied, fmt.Errorf("a malformed key %q", key)
		}
		if op != opDelete {
			if err := route.Validate(); err != nil {
				return applied, err
			}
			rec.setStrings(&route, writer, reason)
		}
		maxLSN[part] = max(maxLSN[part], lsn)
		if part < len(lsns) && lsn <= lsns[part] {
			continue // in the snapshot already
		}
		*logParts = max(*logParts, part+1)
		var buf [keyBufSize]byte
		seed := s.parts[0].Seed()
		room, full, enc := keyHashes(k, &seed, &buf)
		pi := jumpHash(room, len(s.parts))
		p := &s.parts[pi]
		p.mu.Lock()
		pos, slot := p.Find(full, enc)
		switch op {
		case opDelete:
			if slot != memtable.NoSlot {
				p.removeAt(pos, slot)
			}
		case opPut:
			if slot == memtable.NoSlot {
				slot = p.Insert(pos, full, enc)
			} else {
				p.Touch(slot)
			}
			p.put(slot, &rec)
		case opUpdate:
			if slot == memtable.NoSlot {
				slot = p.Insert(pos, full, enc)
			}
			p.put(slot, &rec)
		}
		maxRev[pi] = max(maxRev[pi], rec.rev)
		p.mu.Unlock()
		applied++
	}
	return applied, r.err
}

// checkLogged validates the provenance fields of a logged record.
func checkLogged(prio int64, rev uint64, writer, reason string) error {
	if prio < MinPriority || prio > MaxPriority {
		return fmt.Errorf("priority %d out of range", prio)
	}
	if rev == 0 {
		return errors.New("no revision")
	}
	if err := CheckWriter(writer); err != nil {
		return err
	}
	if reason != "" {
		return CheckReason(reason)
	}
	return nil
}

// sweepExpired removes every record expired at now (the lock held).
func (p *memPartitionState) sweepExpired(now int64) {
	for slot := p.Oldest(); slot != memtable.NoSlot; {
		next := p.Newer(slot)
		if now >= p.Value(slot).expires.Load() {
			p.remove(slot)
		}
		slot = next
	}
}

// renumber gives every record a new revision above every revision the
// store holds, partition by partition in write order, so revisions stay
// unique within a partition after records of another layout were placed
// into it (and still increase for every key).
func (s *MemoryStore) renumber() {
	var highest uint64
	for i := range s.parts {
		p := &s.parts[i]
		highest = max(highest, p.rev)
		for slot := p.Oldest(); slot != memtable.NoSlot; slot = p.Newer(slot) {
			highest = max(highest, p.Value(slot).rev.Load())
		}
	}
	for i := range s.parts {
		p := &s.parts[i]
		p.rev = highest
		for slot := p.Oldest(); slot != memtable.NoSlot; slot = p.Newer(slot) {
			p.rev++
			p.Value(slot).rev.Store(p.rev)
		}
	}
}
