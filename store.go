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
// The Manager owns every policy — validation, TTL and capacity settings,
// fallback selection and reasons, events — and hands a Store validated keys
// and routes with their partition and hash already computed. A Store does
// storage: each method acts on one partition atomically, as one step that no
// other call on that partition can interleave with. Every backend must pass
// the conformance suite in package storetest.
//
// Concurrency: a Manager calls a Store's methods from many goroutines at
// once; a Store must be safe for that.
//
// Contexts: ctx bounds a call. A Store returns promptly when ctx is done;
// the Manager then reports the context's error to its caller.
//
// Errors: a Store returns ErrNotFound, ErrExpired and ErrClosed as
// documented per method, and an error wrapping ErrPartitionUnavailable (and
// the cause) whenever it cannot reach the partition; a network backend must
// bound each call so that this happens quickly. It never returns a
// backend-native error unwrapped.
//
// Ownership: a Store keeps its own copy of what it is given (Route.Meta
// included) and returns Routes that the caller may change.
type Store interface {
	// Init is called once, by New, before any other method. It tells the
	// Store the partition count and capacity it serves. A Store serves one
	// Manager: a second Init is an error.
	Init(cfg StoreConfig) error

	// Get returns the record of key if it is fresh at now (now is before its
	// ExpiresAt). An expired record is deleted and reported as ErrExpired;
	// an absent one as ErrNotFound.
	Get(ctx context.Context, key StoreKey, now time.Time) (Record, error)

	// Set stores rec under key, making key the most recently written record
	// of its partition, then evicts least recently written records until the
	// partition holds at most StoreConfig.MaxEntriesPerPartition.
	Set(ctx context.Context, key StoreKey, rec Record) (SetResult, error)

	// Resolve performs the resolve step of ResolveRequest atomically.
	Resolve(ctx context.Context, req ResolveRequest) (ResolveResult, error)

	// Delete removes the record of key, fresh or not, and returns the
	// partition's size afterwards; ErrNotFound when there was none.
	Delete(ctx context.Context, key StoreKey) (size int, err error)

	// Prune deletes the records of partition that are expired at now.
	Prune(ctx context.Context, partition int, now time.Time) (PruneStats, error)

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

	seed maphash.Seed // the Manager's index-hash seed, for MemoryStore
}

// StoreKey is a validated session key as a Manager hands it to a Store,
// with the values every backend needs computed once.
type StoreKey struct {
	Key       SessionKey
	Partition int    // RoutePartition(Key)
	Hash      uint64 // a hash of the whole key for in-process indexes: seeded per Manager, so never persist it
}

// ResolveRequest is one resolve step, performed atomically on the partition
// of Key:
//
//  1. If Key has a record fresh at Now, return it with SourceStateHit and
//     write nothing.
//  2. Otherwise (deleting Key's record if it is expired), if Key has a
//     ThreadID and Room has a record fresh at Now, store a copy of its route
//     under Key (updated Now, expiring ExpiresAt) and return it with
//     SourcePartitionFallback.
//  3. Otherwise (deleting Room's record if it was looked at and is
//     expired), if Fallback.ExternalRoomID is not empty, store Fallback
//     under Key likewise and return it with SourceProvidedFallback.
//  4. Otherwise return Source "" and store nothing.
//
// Storing enforces the capacity as Set does.
type ResolveRequest struct {
	Key       StoreKey
	Room      StoreKey  // the room scope of Key, in the same partition; used only when Key has a ThreadID
	Fallback  Route     // the first valid fallback, already validated; zero when there is none
	Now       time.Time // the Manager's clock
	ExpiresAt time.Time // expiry of a route stored by steps 2 and 3
}

// ResolveResult is the outcome of a resolve step.
type ResolveResult struct {
	Source       Source // "" when step 4 was reached
	Record       Record // the record returned or stored
	ExactExpired bool   // Key's record existed and was expired (and is now deleted)
	RoomExpired  bool   // Room's record was looked at, existed and was expired (and is now deleted)
	Evicted      int    // records evicted to make room for a stored route
	Size         int    // partition size afterwards
}

// SetResult is the outcome of Store.Set.
type SetResult struct {
	Evicted int // records evicted for capacity
	Size    int // partition size afterwards
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
