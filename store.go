package switchboard

import (
	"context"
	"hash/maphash"
	"time"
)

// Store is the backend interface (the SPI) under a Manager, as
// database/sql/driver is under database/sql. Applications use Manager;
// Store is for those who implement backends, such as MemoryStore and
// redisstore.Store.
//
// The Manager owns every policy — validation, TTLs, option checks, which
// fallbacks are candidates, reasons, error messages, events — and hands a
// Store validated keys, routes and filters with their partition and hash
// already computed. A Store does storage: each method acts on one partition
// atomically, as one step that no other call on that partition can
// interleave with (Scan and DeleteMatching may split a partition into
// several such steps). Every backend must pass the conformance suite in
// package storetest.
//
// Concurrency: a Manager calls a Store's methods from many goroutines at
// once; a Store must be safe for that.
//
// Contexts: ctx bounds a call. Called with a ctx that is already done, a
// Store returns an error wrapping ctx.Err() and changes nothing; when ctx
// ends during a call, it returns promptly (the Manager then reports the
// context's error to its caller).
//
// Errors: a Store returns ErrNotFound, ErrExpired and ErrClosed as
// documented per method, and an error wrapping ErrPartitionUnavailable (and
// the cause) whenever it cannot reach the partition; a network backend must
// bound each call so that this happens quickly, and also wraps
// ErrOutcomeUnknown when the request may have been applied. It never
// returns a backend-native error unwrapped. After Close, every method
// returns ErrClosed.
//
// Records: a Store keeps every field of Record. Revisions are the Store's:
// each write of a key (Set, a route stored by Resolve, Confirm, Invalidate)
// gives it the next value of a per-partition counter that never goes back
// (across Delete, eviction and restarts), so revisions are unique within a
// partition and strictly increasing for each key. Freshness is by the
// request's time: a record is fresh while that time is before ExpiresAt. A
// record whose Invalidated is not empty is a tombstone: stored, counted and
// expired like any record, but never an answer.
//
// Ownership: a Store keeps its own copy of what it is given (Route.Meta
// included), does not retain or change the slices of a request, and
// returns Routes that the caller may change.
type Store interface {
	// Init is called once, by New, before any other method. It tells the
	// Store the partition count and capacity it serves. A Store serves one
	// Manager: a second Init is an error wrapping ErrInvalidConfig, as is a
	// configuration the Store cannot serve (such as a shared backend that
	// already holds another partition count).
	Init(cfg StoreConfig) error

	// Get returns the record of key if it is fresh at now (tombstones
	// included). An expired record is deleted and reported as ErrExpired;
	// an absent one as ErrNotFound.
	Get(ctx context.Context, key StoreKey, now time.Time) (Record, error)

	// Set performs the write of SetRequest atomically (see there).
	Set(ctx context.Context, req SetRequest) (SetResult, error)

	// Resolve performs the resolve step of ResolveRequest atomically (see
	// there).
	Resolve(ctx context.Context, req ResolveRequest) (ResolveResult, error)

	// Look reports what a resolve step would look at — the records of
	// req.Key and (for a thread) req.Room and their states at req.Now —
	// and changes nothing: expired records are reported, not deleted. It
	// backs Manager.Explain.
	Look(ctx context.Context, req ResolveRequest) (LookResult, error)

	// Confirm applies delivery feedback atomically (see FeedbackRequest):
	// if key's record is fresh, valid and has req.Target, it becomes
	// Confirmed, UpdatedAt req.Now, fresh again for its TTL (for Origin
	// OriginSet, the TTL it was written with, ExpiresAt − UpdatedAt; for
	// the origins of Resolve, req.TTL), the most recently written, with a
	// new revision (FeedbackApplied). No fresh, valid record:
	// FeedbackNotFound. Another target: FeedbackConflict, nothing changed.
	Confirm(ctx context.Context, req FeedbackRequest) (FeedbackResult, error)

	// Invalidate applies delivery feedback atomically: if key's record is
	// fresh, valid and has req.Target, it becomes a tombstone (Invalidated
	// req.Reason, UpdatedAt req.Now, Confirmed false, a new revision;
	// Route, Origin, Writer, Priority, ExpiresAt and its place in the write
	// order unchanged): FeedbackApplied. A tombstone with that target:
	// FeedbackUnchanged. No fresh record: FeedbackNotFound. Another target:
	// FeedbackConflict.
	Invalidate(ctx context.Context, req FeedbackRequest) (FeedbackResult, error)

	// Delete removes the record of key, fresh or not, and returns the
	// partition's size afterwards; ErrNotFound when there was none.
	Delete(ctx context.Context, key StoreKey) (size int, err error)

	// Prune deletes the records of partition that are expired at now.
	Prune(ctx context.Context, partition int, now time.Time) (PruneStats, error)

	// Scan returns up to req.Limit records of req.Partition that are fresh
	// at req.Now and match req.Filter, starting after position req.After
	// (0: the start), in an order of positions that is stable for a record
	// while it is not rewritten, and the position to continue from. A
	// record present and unchanged during a whole scan of the partition is
	// returned exactly once; expired records never. It may hold the
	// partition's lock only for a bounded batch at a time.
	Scan(ctx context.Context, req ScanRequest) (ScanResult, error)

	// DeleteMatching deletes (or, with req.DryRun, only counts) the records
	// of req.Partition that are fresh at req.Now and match req.Filter.
	DeleteMatching(ctx context.Context, req DeleteRequest) (DeleteStats, error)

	// Stat describes partition. An unreachable partition is reported with
	// Available false and a nil error; errors are for a closed Store or a
	// done ctx.
	Stat(ctx context.Context, partition int) (StoreStatus, error)

	// Close releases the Store's resources. Later calls return ErrClosed.
	// It does not close clients the caller passed in (such as a Redis
	// client).
	Close() error
}

// StoreConfig is what a Manager tells its Store in Init.
type StoreConfig struct {
	PartitionCount         int // partitions are numbered 0..PartitionCount-1
	MaxEntriesPerPartition int // the capacity Set and Resolve enforce
	// HashSeed is the seed of StoreKey.Hash (maphash over the key's
	// encoding). An in-process index may use it to hash the keys it holds
	// the way the Manager does; it changes with every Manager, so never
	// persist a hash. The zero Seed means the Manager hashes with none the
	// Store can reproduce (Init called by hand).
	HashSeed maphash.Seed
}

// StoreKey is a validated session key as a Manager hands it to a Store,
// with the values every backend needs computed once.
type StoreKey struct {
	Key       SessionKey
	Partition int    // RoutePartition(Key)
	Hash      uint64 // a hash of the whole key for in-process indexes (see StoreConfig.HashSeed): never persist it
}

// SetRequest is one Set, performed atomically on the partition of Key. The
// key's current record counts only if it is fresh at Record.UpdatedAt (the
// Manager's now). In order:
//
//  1. IfRevision != 0 and the key has no fresh record (valid or tombstone)
//     with exactly that revision: SetConflict.
//  2. IfAbsent and the key has a fresh, valid record: SetConflict.
//  3. The key has a fresh, valid record with a Priority above
//     Record.Priority: SetSuperseded.
//  4. Otherwise Record is stored under Key (with a new revision, Confirmed
//     false and Invalidated ""), as the most recently written record of
//     the partition, and the least recently written records are evicted
//     until the partition holds at most StoreConfig.MaxEntriesPerPartition.
//
// On 1–3 nothing changes and SetResult.Current describes the record that
// refused the write.
type SetRequest struct {
	Key        StoreKey
	Record     Record // Route, UpdatedAt, ExpiresAt, Origin, Writer, Priority; the other fields are the Store's
	IfRevision uint64
	IfAbsent   bool
}

// SetOutcome is what a Set did.
type SetOutcome uint8

// The outcomes of a Set.
const (
	SetStored     SetOutcome = iota // the record was stored
	SetConflict                     // a condition (IfRevision, IfAbsent) failed
	SetSuperseded                   // a fresh record of higher priority stands
)

// SetResult is the outcome of Store.Set.
type SetResult struct {
	Outcome  SetOutcome
	Revision uint64 // of the stored record (SetStored)
	// CurrentRevision and CurrentPriority describe the key's fresh record
	// when the write was refused (CurrentRevision 0: there was none).
	CurrentRevision uint64
	CurrentPriority int
	Evicted         int // records evicted for capacity
	Size            int // partition size afterwards
}

// ResolveRequest is one resolve step, performed atomically on the partition
// of Key. Records count only if fresh at Now; expired records that are
// looked at are deleted. Targets are compared with Route.Target.
//
//  1. If Key has a fresh, valid record, return it with SourceStateHit and
//     write nothing.
//  2. Otherwise, if Key has a ThreadID and Room has a fresh, valid record
//     whose target is not that of a tombstone looked at (Key's), store a
//     copy of its route under Key and return it with
//     SourcePartitionFallback (Origin OriginRoomFallback).
//  3. Otherwise store the first of Fallbacks whose target is not that of a
//     tombstone looked at (Key's or Room's) under Key and return it with
//     SourceProvidedFallback (Origin OriginProvidedFallback).
//  4. Otherwise return Source "" and store nothing.
//
// A route stored by steps 2 and 3 is written at Now, expiring ExpiresAt,
// with Priority 0, no Writer, a new revision, replacing any tombstone of
// Key, and capacity is enforced as Set does.
type ResolveRequest struct {
	Key       StoreKey
	Room      StoreKey  // the room scope of Key, in the same partition; used only when Key has a ThreadID
	Fallbacks []Route   // the valid fallbacks, in order (the Store must not keep or change the slice)
	Now       time.Time // the Manager's clock
	ExpiresAt time.Time // expiry of a route stored by steps 2 and 3
}

// ResolveResult is the outcome of a resolve step.
type ResolveResult struct {
	Source       Source // "" when step 4 was reached
	Record       Record // the record returned or stored
	ExactExpired bool   // Key's record existed and was expired (and is now deleted)
	RoomExpired  bool   // Room's record was looked at, existed and was expired (and is now deleted)
	Invalidated  bool   // a tombstone was looked at (Key's or Room's)
	Evicted      int    // records evicted to make room for a stored route
	// Size is the partition size afterwards. On a state hit, which changes
	// nothing, a store may report -1 (unknown) instead of spending another
	// command on it; events then carry -1 and metrics keep the last size.
	Size int
}

// LookState is the state of one record a resolve step looks at.
type LookState uint8

// The states of a looked-at record.
const (
	LookAbsent  LookState = iota // no record
	LookFresh                    // fresh (a tombstone if Record.Invalidated is set)
	LookExpired                  // expired, not yet deleted
)

// Look is one record a resolve step looks at.
type Look struct {
	State  LookState
	Record Record // when State is not LookAbsent
}

// LookResult is what Store.Look saw.
type LookResult struct {
	Exact Look // the key's record
	Room  Look // the room's record (LookAbsent for a room key)
	Size  int  // partition size
}

// FeedbackRequest is a Confirm or Invalidate of Key's record.
type FeedbackRequest struct {
	Key    StoreKey
	Target Target        // the delivery target the caller used
	Now    time.Time     // the Manager's clock
	TTL    time.Duration // Confirm: the freshness of a route stored by Resolve (Config.TTL)
	Reason string        // Invalidate: the reason, validated
}

// FeedbackOutcome is what a Confirm or Invalidate did.
type FeedbackOutcome uint8

// The outcomes of Confirm and Invalidate.
const (
	FeedbackApplied   FeedbackOutcome = iota // the record was changed
	FeedbackNotFound                         // no fresh record that could be changed
	FeedbackConflict                         // the record has another target
	FeedbackUnchanged                        // Invalidate: already a tombstone with that target
)

// FeedbackResult is the outcome of Store.Confirm or Store.Invalidate.
type FeedbackResult struct {
	Outcome FeedbackOutcome
	Record  Record // the record afterwards (FeedbackApplied, FeedbackUnchanged) or as found (FeedbackConflict)
	Size    int    // partition size afterwards
}

// ScanRequest asks a Store for a page of one partition (see Store.Scan).
type ScanRequest struct {
	Partition int
	After     uint64 // position to continue after; 0 is the start
	Limit     int    // 1..MaxListLimit
	Filter    Filter // validated
	Now       time.Time
}

// ScanResult is one page of a partition.
type ScanResult struct {
	Entries []Entry // Partition filled in
	Next    uint64  // the position to continue after
	Done    bool    // the partition has no more positions after Next
}

// DeleteRequest asks a Store to delete the matching records of one
// partition (see Store.DeleteMatching).
type DeleteRequest struct {
	Partition int
	Filter    Filter // validated
	Now       time.Time
	DryRun    bool
}

// DeleteStats is the outcome of Store.DeleteMatching on one partition.
type DeleteStats struct {
	Matched int
	Deleted int
	Keys    []SessionKey // the keys matched, in the order they were found
	Size    int          // partition size afterwards
}

// PruneStats is the outcome of Store.Prune on one partition.
type PruneStats struct {
	Pruned int // expired records deleted
	Size   int // partition size afterwards
}

// StoreStatus describes one partition as its Store sees it.
type StoreStatus struct {
	Owner     string // who serves it: "memory", or a node address
	Available bool   // the partition answered
	Entries   int    // records held, expired ones not yet pruned included
}

// Key returns the StoreKey a Manager configured with c hands its Store for
// k: its partition and its hash under c.HashSeed. It is for tests of Store
// implementations (package storetest calls Stores with it) and does not
// validate k.
func (c StoreConfig) Key(k SessionKey) StoreKey {
	var buf [keyBufSize]byte
	room, full, _ := keyHashes(k, &c.HashSeed, &buf)
	return StoreKey{Key: k, Partition: jumpHash(room, c.PartitionCount), Hash: full}
}
