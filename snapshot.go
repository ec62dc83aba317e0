package switchboard

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/switchboard-go/switchboard/internal/memtable"
)

// Snapshot format, version 2: a header line; a line with the partition
// count and each partition's revision counter; one JSON object per record
// (partition by partition, oldest write first); and a trailer line with
// the record count and the CRC-32 (IEEE) of every byte before it, so that
// a truncated or damaged file is detected rather than half restored.
//
// Version 1 (no counters line, records without provenance) still loads:
// its records get Origin set and revisions in file order.
const (
	snapshotHeaderV1 = "switchboard snapshot v1\n"
	snapshotHeader   = "switchboard snapshot v2\n"
	snapshotTrailer  = "end "
)

type snapshotMeta struct {
	Partitions int      `json:"partitions"`
	Revisions  []uint64 `json:"revisions"` // per partition: the last revision handed out
	// A durable store's snapshot also says where its log goes on: each
	// partition's last log sequence number in the snapshot, and the first
	// log segment to replay.
	LSNs    []uint64 `json:"lsns,omitempty"`
	Segment uint64   `json:"segment,omitempty"`
}

type snapshotRecord struct {
	Key         string `json:"k"`
	Route       Route  `json:"r"`
	UpdatedAt   int64  `json:"u"` // unix nanoseconds
	ExpiresAt   int64  `json:"e"` // unix nanoseconds
	Origin      Origin `json:"o,omitempty"`
	Writer      string `json:"w,omitempty"`
	Priority    int    `json:"p,omitzero"`
	Revision    uint64 `json:"v,omitzero"`
	Confirmed   bool   `json:"c,omitzero"`
	Invalidated string `json:"i,omitempty"`
}

// WriteSnapshot writes every record of s to w, partition by partition,
// each partition copied under its read lock and written after it.
func (s *MemoryStore) WriteSnapshot(w io.Writer) error { return s.writeSnapshot(w, 0) }

// writeSnapshot is WriteSnapshot recording, for a durable store, the log
// segment to replay from.
func (s *MemoryStore) writeSnapshot(w io.Writer, segment uint64) error {
	if s.parts == nil {
		return errors.New("snapshot: the store serves no Manager")
	}
	crc := crc32.NewIEEE()
	bw := bufio.NewWriter(io.MultiWriter(w, crc))
	if _, err := bw.WriteString(snapshotHeader); err != nil {
		return err
	}
	parts := make([][]scanned, len(s.parts))
	meta := snapshotMeta{Partitions: len(s.parts), Revisions: make([]uint64, len(s.parts))}
	if s.dur != nil {
		meta.LSNs, meta.Segment = make([]uint64, len(s.parts)), segment
	}
	for i := range s.parts {
		var err error
		var lsn uint64
		if parts[i], meta.Revisions[i], lsn, err = s.parts[i].snapshot(s.holds); err != nil {
			return err
		}
		if meta.LSNs != nil {
			meta.LSNs[i] = lsn
		}
	}
	enc := jsontext.NewEncoder(bw) // one value per line
	line := func(v any) error {
		if err := json.MarshalEncode(enc, v); err != nil {
			return fmt.Errorf("snapshot: %w", err)
		}
		return nil
	}
	if err := line(meta); err != nil {
		return err
	}
	count := 0
	var rec snapshotRecord // one for every line: line's argument escapes
	for _, recs := range parts {
		for i := range recs {
			rec = recs[i].snapshotRecord()
			if err := line(&rec); err != nil {
				return err
			}
		}
		count += len(recs)
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%s%d %08x\n", snapshotTrailer, count, crc.Sum32())
	return err
}

// snapshot copies p's records, oldest write first, with its revision
// counter and log sequence number. Under the read lock it only copies the
// records and their keys; WriteSnapshot formats them after it, so writers
// of the partition wait for a copy, not for the formatting's allocations.
func (p *memPartition) snapshot(holds func(time.Duration)) ([]scanned, uint64, uint64, error) {
	// Allocated and written once before the lock (the partition rarely
	// grows by more than an eighth meanwhile), so that the copy does not
	// take the page faults of new memory with the lock held.
	out := make([]scanned, p.Len()+p.Len()/8+16)
	for i := range out {
		out[i].slot = -1
	}
	out = out[:0]
	p.mu.RLock()
	defer p.mu.RUnlock()
	if holds != nil {
		defer func(locked time.Time) { holds(time.Since(locked)) }(time.Now())
	}
	if p.closed.Load() {
		return nil, 0, 0, ErrClosed
	}
	for slot := p.Oldest(); slot != memtable.NoSlot; slot = p.Newer(slot) {
		out = append(out, p.copySlot(slot))
	}
	return out, p.rev, p.lsn, nil
}

// snapshotRecord is c as a snapshot line.
func (c *scanned) snapshotRecord() snapshotRecord {
	r := &c.r
	return snapshotRecord{
		Key: c.key().String(), Route: r.route().Clone(), UpdatedAt: r.updated, ExpiresAt: r.expires,
		Origin: originNames[r.origin], Writer: r.writer(), Priority: int(r.prio), Revision: r.rev,
		Confirmed: r.confirmed, Invalidated: r.invalidated(),
	}
}

// ReadSnapshot restores the records of a snapshot written by WriteSnapshot
// (version 2, or version 1) into s, skipping those already expired at now.
// Records keep every field, revisions included, and each partition's
// revision counter continues where it was, so revisions keep increasing
// across a restart. When the snapshot was taken with another partition
// count, records are placed by the current one and renumbered above every
// revision the snapshot had handed out, so revisions stay unique within a
// partition and still increase for every key; a partition that overflows
// its capacity evicts its least recently written records. s must serve a
// Manager (New has run) and should be empty. The whole snapshot is checked
// before anything is restored: a truncated, damaged or unknown snapshot is
// an error wrapping ErrInvalidSnapshot and restores nothing.
func (s *MemoryStore) ReadSnapshot(r io.Reader, now time.Time) (restored int, err error) {
	restored, _, err = s.readSnapshot(r, now)
	return restored, err
}

// readSnapshot is ReadSnapshot that also returns the snapshot's meta line.
func (s *MemoryStore) readSnapshot(r io.Reader, now time.Time) (restored int, meta snapshotMeta, err error) {
	if s.parts == nil {
		return 0, meta, errors.New("read snapshot: the store serves no Manager yet")
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return 0, meta, fmt.Errorf("read snapshot: %w", err)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidSnapshot, fmt.Sprintf(format, args...))
	}
	v1 := bytes.HasPrefix(data, []byte(snapshotHeaderV1))
	if !v1 && !bytes.HasPrefix(data, []byte(snapshotHeader)) {
		return 0, meta, bad("no %q header", strings.TrimSpace(snapshotHeader))
	}
	end := bytes.LastIndex(data, []byte("\n"+snapshotTrailer))
	if end < 0 || !bytes.HasSuffix(data, []byte("\n")) {
		return 0, meta, bad("no trailer: the file is truncated")
	}
	body, trailer := data[:end+1], strings.TrimSpace(string(data[end+1:]))
	var count int
	var sum uint32
	if _, err := fmt.Sscanf(trailer, snapshotTrailer+"%d %08x", &count, &sum); err != nil {
		return 0, meta, bad("bad trailer %q", trailer)
	}
	if got := crc32.ChecksumIEEE(body); got != sum {
		return 0, meta, bad("checksum %08x, trailer says %08x: the file is damaged", got, sum)
	}
	lines := bytes.Split(bytes.TrimSuffix(body[len(snapshotHeader):], []byte("\n")), []byte("\n"))
	if len(lines) == 1 && len(lines[0]) == 0 {
		lines = nil
	}
	decode := func(line []byte, v any) error {
		return json.Unmarshal(line, v, json.RejectUnknownMembers(true))
	}
	if !v1 {
		if len(lines) == 0 || decode(lines[0], &meta) != nil || meta.Partitions <= 0 || len(meta.Revisions) != meta.Partitions {
			return 0, meta, bad("no valid partitions line")
		}
		lines = lines[1:]
	}
	if len(lines) != count {
		return 0, meta, bad("%d records, trailer says %d", len(lines), count)
	}
	type placed struct {
		key StoreKey
		enc []byte
		rec memRecord
	}
	todo := make([]placed, 0, len(lines))
	var highest uint64 // the highest revision the snapshot handed out
	for _, r := range meta.Revisions {
		highest = max(highest, r)
	}
	seed := s.parts[0].Seed()
	for i, line := range lines {
		var rec snapshotRecord
		if err := decode(line, &rec); err != nil {
			return 0, meta, bad("record %d: %v", i+1, err)
		}
		k, err := ParseSessionKey(rec.Key)
		if err != nil {
			return 0, meta, bad("record %d: %v", i+1, err)
		}
		if err := rec.check(v1); err != nil {
			return 0, meta, bad("record %d: %v", i+1, err)
		}
		highest = max(highest, rec.Revision)
		if rec.ExpiresAt <= now.UnixNano() {
			continue
		}
		var buf [keyBufSize]byte
		room, full, enc := keyHashes(k, &seed, &buf)
		todo = append(todo, placed{
			key: StoreKey{Key: k, Partition: jumpHash(room, len(s.parts)), Hash: full}, enc: bytes.Clone(enc),
			rec: memRecord{updated: rec.UpdatedAt, expires: rec.ExpiresAt, rev: rec.Revision,
				prio: int16(rec.Priority), origin: originCode(rec.Origin), confirmed: rec.Confirmed},
		})
		route := rec.Route.Clone()
		todo[len(todo)-1].rec.setStrings(&route, rec.Writer, rec.Invalidated)
	}
	// Same partitions: revisions and counters carry over. Otherwise (or
	// for version 1) every record is renumbered in its new partition, above
	// everything the snapshot handed out.
	keep := !v1 && meta.Partitions == len(s.parts)
	for i := range s.parts {
		p := &s.parts[i]
		p.mu.Lock()
		if keep {
			p.rev = max(p.rev, meta.Revisions[i])
		} else {
			p.rev = max(p.rev, highest)
		}
		p.mu.Unlock()
	}
	for _, t := range todo {
		p := &s.parts[t.key.Partition]
		p.mu.Lock()
		if !p.closed.Load() {
			if !keep {
				p.rev++
				t.rec.rev = p.rev
			}
			p.rev = max(p.rev, t.rec.rev)
			p.restore(&t.key, t.enc, t.rec, s.limit)
			restored++
		}
		p.mu.Unlock()
	}
	return restored, meta, nil
}

// check validates the fields of a snapshot record.
func (r *snapshotRecord) check(v1 bool) error {
	if err := r.Route.Validate(); err != nil {
		return err
	}
	if v1 {
		if r.Origin != "" || r.Writer != "" || r.Priority != 0 || r.Revision != 0 || r.Confirmed || r.Invalidated != "" {
			return errors.New("a version 1 record has version 2 fields")
		}
		r.Origin = OriginSet
		return nil
	}
	switch r.Origin {
	case OriginSet, OriginRoomFallback, OriginProvidedFallback:
	default:
		return fmt.Errorf("origin %q", r.Origin)
	}
	if r.Revision == 0 {
		return errors.New("no revision")
	}
	if r.Priority < MinPriority || r.Priority > MaxPriority {
		return fmt.Errorf("priority %d out of range", r.Priority)
	}
	if err := CheckWriter(r.Writer); err != nil {
		return err
	}
	if r.Invalidated != "" {
		return CheckReason(r.Invalidated)
	}
	return nil
}

// restore puts rec under key as the newest record, keeping its revision,
// and evicts down to limit.
func (p *memPartitionState) restore(key *StoreKey, enc []byte, rec memRecord, limit int) {
	pos, slot := p.find(key, enc)
	if slot == memtable.NoSlot {
		slot = p.Insert(pos, key.Hash, enc)
	} else {
		p.Touch(slot)
	}
	p.put(slot, &rec)
	for p.Len() > limit {
		p.remove(p.Oldest())
	}
}

// SaveSnapshot writes a snapshot of s to path atomically: to a temporary
// file in the same directory, synced, renamed over path, and the directory
// synced, so that a crash at any moment leaves either the old snapshot or
// the new one.
func (s *MemoryStore) SaveSnapshot(path string) error { return s.saveSnapshot(path, 0) }

func (s *MemoryStore) saveSnapshot(path string, segment uint64) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("save snapshot: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if err := s.writeSnapshot(tmp, segment); err != nil {
		return fmt.Errorf("save snapshot %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("save snapshot %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save snapshot %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("save snapshot %s: %w", path, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("save snapshot %s: %w", path, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("save snapshot %s: sync the directory: %w", path, err)
	}
	return nil
}

// loadSnapshotMeta restores the snapshot at path and returns its meta
// line (see ReadSnapshot).
func (s *MemoryStore) loadSnapshotMeta(path string, now time.Time) (snapshotMeta, error) {
	f, err := os.Open(path)
	if err != nil {
		return snapshotMeta{}, fmt.Errorf("load snapshot: %w", err)
	}
	defer f.Close()
	_, meta, err := s.readSnapshot(f, now)
	if err != nil {
		return snapshotMeta{}, fmt.Errorf("load snapshot %s: %w", path, err)
	}
	return meta, nil
}

// LoadSnapshot restores the snapshot at path (see ReadSnapshot). A missing
// file is an error wrapping fs.ErrNotExist.
func (s *MemoryStore) LoadSnapshot(path string, now time.Time) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("load snapshot: %w", err)
	}
	defer f.Close()
	n, err := s.ReadSnapshot(f, now)
	if err != nil {
		return 0, fmt.Errorf("load snapshot %s: %w", path, err)
	}
	return n, nil
}
