// Package wal is an append-only log of length-prefixed, CRC-checked
// records in segment files, with a background writer that writes what is
// appended promptly and syncs it by a policy: after every batch (group
// commit: concurrent appenders share one fsync), every second, or never.
//
// A record is a 4-byte little-endian payload length, a 4-byte CRC-32C
// (Castagnoli) of the payload, and the payload. A crash can leave the last
// record of a segment torn (short, or with a bad checksum and nothing
// after it): Read drops it and says how many bytes it dropped. A bad record
// with more after it is damage in the middle: Read stops with a
// *CorruptError naming the file and offset.
package wal

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"sync"
	"time"
)

// Sync is when appended records are synced to stable storage.
type Sync int

// The sync policies.
const (
	// SyncEverySecond writes appended records at once and syncs the file
	// every second: a crash of the process loses nothing written, a crash
	// of the machine at most about a second.
	SyncEverySecond Sync = iota
	// SyncAlways syncs before an append's Wait returns; appends that
	// arrive together share one sync.
	SyncAlways
	// SyncNever writes appended records at once and leaves syncing to the
	// operating system.
	SyncNever
)

const headerSize = 8

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// MaxRecord is the largest payload a record may have.
const MaxRecord = 16 << 20

// Writer appends records to one segment file. It is safe for concurrent
// use. A write or sync error is sticky: every later Append and Wait
// returns it, and the caller opens a new segment to go on.
//
// Appends go to a buffer; a background goroutine writes the buffer in one
// write (and, with SyncAlways, one fsync) and then wakes exactly the
// appenders of that batch, each once: concurrent appenders share the
// system calls without waking one another.
type Writer struct {
	f      *os.File
	policy Sync

	mu      sync.Mutex
	buf     []byte // appended, not yet written
	spare   []byte
	cur     *batch // the batch buf belongs to
	size    int64  // bytes appended
	err     error
	closing bool

	wake chan struct{} // buffered 1: there is work for run
	done chan struct{}
}

// batch is the records one write hands to the file.
type batch struct {
	done chan struct{} // closed once written (and synced, with SyncAlways)
	err  error         // set before done is closed
}

// Ticket is what Append returns and Wait waits for.
type Ticket struct {
	b *batch
}

// Create creates the segment file path (which must not exist) and starts
// its writer.
func Create(path string, policy Sync) (*Writer, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return nil, err
	}
	w := &Writer{f: f, policy: policy, cur: newBatch(), wake: make(chan struct{}, 1), done: make(chan struct{})}
	go w.run()
	return w, nil
}

func newBatch() *batch { return &batch{done: make(chan struct{})} }

// Append adds a record with payload (copied) and returns a ticket for
// Wait. It does not block on I/O.
func (w *Writer) Append(payload []byte) (Ticket, error) {
	if len(payload) > MaxRecord {
		return Ticket{}, fmt.Errorf("wal: a record of %d bytes is larger than %d", len(payload), MaxRecord)
	}
	var h [headerSize]byte
	binary.LittleEndian.PutUint32(h[:4], uint32(len(payload)))
	binary.LittleEndian.PutUint32(h[4:], crc32.Checksum(payload, castagnoli))
	w.mu.Lock()
	if w.err != nil || w.closing {
		err := w.err
		w.mu.Unlock()
		if err == nil {
			err = errors.New("wal: closed")
		}
		return Ticket{}, err
	}
	w.buf = append(append(w.buf, h[:]...), payload...)
	w.size += int64(headerSize + len(payload))
	t := Ticket{w.cur}
	w.mu.Unlock()
	w.signal()
	return t, nil
}

func (w *Writer) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Wait returns once the record of t is as safe as the policy makes it:
// synced with SyncAlways, handed to the operating system otherwise. It
// returns the writer's error if that fails. The zero Ticket is done.
func (w *Writer) Wait(t Ticket) error {
	if t.b == nil {
		return nil
	}
	<-t.b.done
	return t.b.err
}

// Fail makes the writer fail with err, as a failed write would: for tests
// of what callers do when the disk goes bad.
func (w *Writer) Fail(err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.mu.Unlock()
	w.signal()
}

// Err returns the writer's sticky error, or nil.
func (w *Writer) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Size returns the bytes appended so far.
func (w *Writer) Size() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.size
}

// run writes what is appended, in batches, and syncs by the policy.
func (w *Writer) run() {
	defer close(w.done)
	var tick <-chan time.Time
	if w.policy == SyncEverySecond {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		tick = t.C
	}
	unsynced := false // written since the last sync
	for {
		syncDue := false
		select {
		case <-w.wake:
		case <-tick:
			syncDue = unsynced
		}
		w.mu.Lock()
		b, data, closing, err := w.cur, w.buf, w.closing, w.err
		if len(data) > 0 || err != nil || closing {
			w.cur, w.buf, w.spare = newBatch(), w.spare[:0], nil
		} else {
			b, data = nil, nil
		}
		w.mu.Unlock()

		if err == nil && len(data) > 0 {
			if _, werr := w.f.Write(data); werr != nil {
				err = fmt.Errorf("wal: %s: %w", w.f.Name(), werr)
			}
			unsynced = true
		}
		if err == nil && unsynced && (w.policy == SyncAlways || syncDue || closing) {
			if serr := w.f.Sync(); serr != nil {
				err = fmt.Errorf("wal: %s: %w", w.f.Name(), serr)
			}
			unsynced = false
		}
		w.mu.Lock()
		if err != nil && w.err == nil {
			w.err = err
		}
		err = w.err
		if data != nil {
			w.spare = data[:0]
		}
		w.mu.Unlock()
		if b != nil {
			b.err = err
			close(b.done)
		}
		if closing || err != nil {
			if err != nil {
				w.failRest(err)
			}
			return
		}
	}
}

// failRest fails every batch appended after run stops (there are none
// once err is set, except the one cut before it was): their waiters get
// err.
func (w *Writer) failRest(err error) {
	w.mu.Lock()
	b := w.cur
	w.cur = newBatch()
	w.mu.Unlock()
	b.err = err
	close(b.done)
}

// Close writes and syncs what was appended (whatever the policy) and
// closes the file.
func (w *Writer) Close() error {
	w.mu.Lock()
	w.closing = true
	w.mu.Unlock()
	w.signal()
	<-w.done
	w.mu.Lock()
	err := w.err
	w.mu.Unlock()
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// CorruptError is a damaged record with more records after it.
type CorruptError struct {
	File   string
	Offset int64 // of the damaged record's header
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("wal: %s is damaged at byte %d: %s", e.File, e.Offset, e.Reason)
}

// Read calls fn with each record's payload (valid only during the call)
// and offset, in order. A torn last record is dropped and its length
// returned as torn; damage before the end is a *CorruptError; an error of
// fn stops the read and is returned.
func Read(path string, fn func(payload []byte, offset int64) error) (torn int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	size := st.Size()
	r := bufio.NewReaderSize(f, 1<<20)
	var off int64
	var h [headerSize]byte
	payload := make([]byte, 0, 4096)
	for off < size {
		if size-off < headerSize {
			return size - off, nil
		}
		if _, err := io.ReadFull(r, h[:]); err != nil {
			return 0, err
		}
		n := int64(binary.LittleEndian.Uint32(h[:4]))
		sum := binary.LittleEndian.Uint32(h[4:])
		if n > MaxRecord {
			if off+headerSize+n >= size { // a torn header
				return size - off, nil
			}
			return 0, &CorruptError{File: path, Offset: off, Reason: fmt.Sprintf("a record length of %d", n)}
		}
		if off+headerSize+n > size {
			return size - off, nil
		}
		if int64(cap(payload)) < n {
			payload = make([]byte, n)
		}
		payload = payload[:n]
		if _, err := io.ReadFull(r, payload); err != nil {
			return 0, err
		}
		if crc32.Checksum(payload, castagnoli) != sum {
			if off+headerSize+n == size { // the last record, torn mid-write
				return size - off, nil
			}
			return 0, &CorruptError{File: path, Offset: off, Reason: "checksum mismatch"}
		}
		if err := fn(payload, off); err != nil {
			return 0, err
		}
		off += headerSize + n
	}
	return 0, nil
}
