// Package switchboard is a partitioned route-state manager for
// deterministic session routing in multi-channel messaging.
//
// A runtime that bridges chat channels (Telegram, Slack, Discord, Matrix,
// …) to agents must answer, for every outbound message, where the reply for
// this conversation goes now. A Manager remembers, per conversation (a
// SessionKey: channel type, bridge, room and optionally thread), the last
// known delivery Route; keeps that memory fresh (a TTL per record) and
// bounded (a capacity per partition, least recently written evicted first);
// and resolves a route deterministically, saying where the answer came from
// and why.
//
// # Resolving
//
// Resolve looks, in one atomic step on the key's partition, at
//
//  1. the key's own fresh record (SourceStateHit);
//  2. for a thread, its room's fresh record, which it copies to the thread
//     (SourcePartitionFallback, reason ReasonThreadScopeMiss, or
//     ReasonStale when the thread's record had expired);
//  3. the first valid fallback route the caller passed, which it stores
//     (SourceProvidedFallback, reason ReasonMiss, or ReasonStale when a
//     record it looked at had expired);
//
// and otherwise returns ErrNoRoute. When the partition cannot be reached (a
// Redis node down), Resolve still answers from the caller's fallback
// (ReasonSessionUnavailable) and stores nothing.
//
// # Routing you can trust
//
// Every Record says how it got there (Origin: written by Set, copied from
// the thread's room, or a caller's fallback stored by Resolve), who wrote
// it (Writer) at which Priority, and carries a Revision that every write
// of the key increases. On top of that:
//
//   - Write precedence: WithPriority. A Set of lower priority than the
//     key's fresh, valid record is refused (ErrSuperseded), so a heartbeat
//     or cron turn at priority 0 cannot clobber the route an inbound
//     message wrote at 10; it takes over once that route expires.
//   - Conditional writes: IfRevision (compare-and-set on the revision) and
//     IfAbsent; a failed condition is ErrConflict.
//   - Delivery feedback: after sending, Confirm marks the route as working
//     (and keeps it fresh: a sliding expiry), Invalidate turns it into a
//     tombstone with the platform's reason. Resolve never answers with a
//     tombstone nor with any candidate of its target, and goes on to the
//     room's route or the caller's fallbacks (FallbackReason
//     ReasonInvalidated).
//   - Provisional routes: Config.ProvisionalTTL makes routes that Resolve
//     stored from a guess expire soon unless a delivery confirms them.
//
// With none of these options used, behaviour is the seed's exactly.
//
// # Operating the routes
//
// List pages through the records matching a Filter (by key fields, scope,
// target, origin, writer, age, tombstones) with an opaque cursor;
// DeleteMatching deletes what a Filter matches, with a dry run that
// reports exactly what the real run would match; Explain reports what
// Resolve would answer now and every record and fallback it would look at
// and why, changing nothing. Scans hold a partition's lock only for a
// bounded batch at a time, so serving goes on while an operator lists a
// million routes.
//
// # Errors
//
// Every error is the caller's context error, a sentinel (ErrNotFound,
// ErrExpired, ErrNoRoute: returned bare, so a miss allocates nothing) or
// an error wrapping sentinels; failures of an operation on a key are an
// *OpError naming the operation, the key and its partition. A store that
// times out reports ErrPartitionUnavailable together with
// ErrOutcomeUnknown: a timeout is not a failure, a write may have been
// applied anyway (a refused connection, by contrast, means it was not).
// Writes that must happen exactly once use IfRevision or IfAbsent, or
// read back.
//
// # Partitions
//
// State is split into Config.PartitionCount partitions, each with its own
// lock and capacity. A key's partition is
//
//	JumpHash(xxhash64(ChannelType + "\x00" + BridgeID + "\x00" + RoomID), PartitionCount)
//
// (github.com/cespare/xxhash/v2 and the jump consistent hash of Lamping and
// Veach). It is the same in every process and release; a thread always
// lives in its room's partition, which makes the thread-to-room fallback a
// single-partition step; and growing from N to N+1 partitions moves only
// about 1/(N+1) of the rooms.
//
// # Time
//
// A record is fresh while now < ExpiresAt. Reading an expired record
// deletes it (Get reports ErrExpired once, then ErrNotFound), and every
// partition deletes its expired records every Config.PruneInterval in the
// background (or when Prune is called). The default clock is coarse, about
// a millisecond behind the system clock, because reading the system clock
// would cost more than a whole lookup; WithClock replaces it (tests and
// simulations use it to move time without sleeping).
//
// # Backends
//
// A Manager keeps its state in a Store. The default, MemoryStore, is
// in-process; package redisstore keeps it in Redis (standalone, Sentinel or
// Cluster) so that many processes share it, given to New with WithStore.
// Policy — validation, TTLs, option checks, candidates and reasons, error
// messages, events — lives once, in the Manager; a Store does atomic
// per-partition storage (including the checks that must be atomic:
// conditions, precedence, target comparison) and must pass the
// conformance suite in package storetest, which calls the Store's methods
// itself as well as through a Manager. MemoryStore stays in this package,
// over the engine in internal/memtable and internal/seqlock, because
// New defaults to it and the Manager's zero-allocation hit path calls it
// directly rather than through the interface.
//
// # Differences from Jido.Messaging.SessionManager
//
// Switchboard implements the model of the Elixir module
// Jido.Messaging.SessionManager with three deliberate differences: keys are
// placed by a stable hash of their room scope (not phash2 of the whole key,
// which separates threads from their rooms and remaps almost every key when
// the partition count changes); memory is bounded by the live records
// (re-setting a key does not grow an eviction queue); and bad input is a
// clear error (ErrInvalidSessionKey, ErrInvalidRoute, ErrInvalidTTL,
// ErrInvalidConfig naming the field) rather than silently replaced.
//
// # Telemetry
//
// WithObserver receives an Event for each set, resolution, fallback, stale
// read, eviction, prune, delete, confirmation, invalidation, superseded
// write and conflict, outside every lock. Package switchboardprom turns
// them into Prometheus metrics.
package switchboard
