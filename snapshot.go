package switchboard

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Snapshot format, version 1: a header line, one JSON object per record
// (oldest write first within each partition), and a trailer line with the
// record count and the CRC-32 (IEEE) of every byte before it, so that a
// truncated or damaged file is detected rather than half restored.
const (
	snapshotHeader  = "switchboard snapshot v1\n"
	snapshotTrailer = "end "
)

type snapshotRecord struct {
	Key       string `json:"k"`
	Route     Route  `json:"r"`
	UpdatedAt int64  `json:"u"` // unix nanoseconds
	ExpiresAt int64  `json:"e"` // unix nanoseconds
}

// WriteSnapshot writes every record of s to w, partition by partition,
// each partition copied under its read lock and written after it.
func (s *MemoryStore) WriteSnapshot(w io.Writer) error {
	crc := crc32.NewIEEE()
	bw := bufio.NewWriter(io.MultiWriter(w, crc))
	if _, err := bw.WriteString(snapshotHeader); err != nil {
		return err
	}
	enc := json.NewEncoder(bw)
	count := 0
	for i := range s.parts {
		recs, err := s.parts[i].snapshot()
		if err != nil {
			return err
		}
		for _, r := range recs {
			if err := enc.Encode(r); err != nil {
				return fmt.Errorf("snapshot: %w", err)
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

func (p *memPartition) snapshot() ([]snapshotRecord, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return nil, ErrClosed
	}
	out := make([]snapshotRecord, 0, p.size)
	for slot := p.oldest; slot != noSlot; slot = p.links[slot].next {
		e := p.at(slot)
		out = append(out, snapshotRecord{Key: e.sessionKey().String(), Route: e.route.Clone(), UpdatedAt: e.updated, ExpiresAt: e.expires})
	}
	return out, nil
}

// sessionKey decodes the key e holds.
func (e *memEntry) sessionKey() SessionKey {
	enc := e.long
	if e.keyLen <= inlineKey {
		enc = string(e.inline[:e.keyLen])
	}
	parts := strings.SplitN(enc, "\x00", 4)
	k := SessionKey{ChannelType: parts[0], BridgeID: parts[1], RoomID: parts[2]}
	if len(parts) == 4 {
		k.ThreadID = parts[3]
	}
	return k
}

// ReadSnapshot restores the records of a snapshot written by WriteSnapshot
// into s, skipping those already expired at now; records are placed by the
// current partition count and capacity (the least recently written are
// evicted if a partition overflows). s must serve a Manager (New has run)
// and should be empty. The whole snapshot is checked before anything is
// restored: a truncated, damaged or unknown snapshot is an error wrapping
// ErrInvalidSnapshot and restores nothing.
func (s *MemoryStore) ReadSnapshot(r io.Reader, now time.Time) (restored int, err error) {
	if s.parts == nil {
		return 0, errors.New("read snapshot: the store serves no Manager yet")
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return 0, fmt.Errorf("read snapshot: %w", err)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidSnapshot, fmt.Sprintf(format, args...))
	}
	if !bytes.HasPrefix(data, []byte(snapshotHeader)) {
		return 0, bad("no %q header", strings.TrimSpace(snapshotHeader))
	}
	end := bytes.LastIndex(data, []byte("\n"+snapshotTrailer))
	if end < 0 || !bytes.HasSuffix(data, []byte("\n")) {
		return 0, bad("no trailer: the file is truncated")
	}
	body, trailer := data[:end+1], strings.TrimSpace(string(data[end+1:]))
	var count int
	var sum uint32
	if _, err := fmt.Sscanf(trailer, snapshotTrailer+"%d %08x", &count, &sum); err != nil {
		return 0, bad("bad trailer %q", trailer)
	}
	if got := crc32.ChecksumIEEE(body); got != sum {
		return 0, bad("checksum %08x, trailer says %08x: the file is damaged", got, sum)
	}
	var recs []snapshotRecord
	lines := bytes.Split(bytes.TrimSuffix(body[len(snapshotHeader):], []byte("\n")), []byte("\n"))
	for i, line := range lines {
		if len(line) == 0 && len(lines) == 1 {
			break
		}
		var rec snapshotRecord
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&rec); err != nil {
			return 0, bad("record %d: %v", i+1, err)
		}
		recs = append(recs, rec)
	}
	if len(recs) != count {
		return 0, bad("%d records, trailer says %d", len(recs), count)
	}
	type placed struct {
		key  StoreKey
		rec  snapshotRecord
		enc  []byte
		part *memPartition
	}
	todo := make([]placed, 0, len(recs))
	seed := s.parts[0].seed
	for i, rec := range recs {
		k, err := ParseSessionKey(rec.Key)
		if err != nil {
			return 0, bad("record %d: %v", i+1, err)
		}
		if err := rec.Route.Validate(); err != nil {
			return 0, bad("record %d: %v", i+1, err)
		}
		if rec.ExpiresAt <= now.UnixNano() {
			continue
		}
		var buf [keyBufSize]byte
		room, full, enc := keyHashes(k, &seed, &buf)
		p := jumpHash(room, len(s.parts))
		todo = append(todo, placed{StoreKey{Key: k, Partition: p, Hash: full}, rec, bytes.Clone(enc), &s.parts[p]})
	}
	for _, t := range todo {
		t.part.mu.Lock()
		if !t.part.closed {
			t.part.write(t.key.Hash, t.key.Key, t.enc, t.rec.Route.Clone(), t.rec.UpdatedAt, t.rec.ExpiresAt, s.limit)
			restored++
		}
		t.part.mu.Unlock()
	}
	return restored, nil
}

// SaveSnapshot writes a snapshot of s to path atomically: to a temporary
// file in the same directory, synced, renamed over path, and the directory
// synced, so that a crash at any moment leaves either the old snapshot or
// the new one.
func (s *MemoryStore) SaveSnapshot(path string) (err error) {
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
	if err := s.WriteSnapshot(tmp); err != nil {
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
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
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
