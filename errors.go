package switchboard

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error a Manager method returns is the caller's
// context error (when its ctx is done), one of these, or an error wrapping
// at least one of these, so callers test for them with errors.Is.
// ErrNotFound, ErrExpired and ErrNoRoute are returned as they are, so that
// a miss costs no allocation; other errors of an operation on a key are an
// *OpError naming the operation, the key and its partition.
var (
	// ErrNotFound means no record is stored for the session key.
	ErrNotFound = errors.New("switchboard: not found")
	// ErrExpired means the record for the session key had expired; reading it
	// removed it, so the next read reports ErrNotFound.
	ErrExpired = errors.New("switchboard: expired")
	// ErrPartitionUnavailable means the store could not reach the partition
	// that owns the key (a node down, a refused connection, the store's own
	// timeout). The returned error wraps the cause. When the cause is a
	// timeout or a broken connection after the request was sent, the error
	// also wraps ErrOutcomeUnknown: a write may have been applied anyway.
	ErrPartitionUnavailable = errors.New("switchboard: partition unavailable")
	// ErrOutcomeUnknown accompanies ErrPartitionUnavailable (or a client's
	// transport error) when the request may have reached the store before
	// the call gave up — a timeout, or a connection that broke after
	// sending: a write reported with it may or may not have been applied,
	// and a Resolve that answered ReasonSessionUnavailable may have stored
	// its fallback. Without it (a refused connection, a node known to be
	// down) nothing was applied. Retry writes that must happen with
	// IfRevision or IfAbsent, or read back.
	ErrOutcomeUnknown = errors.New("switchboard: outcome unknown")
	// ErrInvalidSessionKey means a SessionKey (or its string form) is not
	// valid; the returned error names the field.
	ErrInvalidSessionKey = errors.New("switchboard: invalid session key")
	// ErrInvalidRoute means a Route is not valid; the returned error names
	// the field.
	ErrInvalidRoute = errors.New("switchboard: invalid route")
	// ErrNoRoute means Resolve found no fresh state and no valid fallback.
	ErrNoRoute = errors.New("switchboard: no route")
	// ErrInvalidConfig means a Config field is out of range, or a Store
	// cannot serve the configuration it was given; the returned error names
	// the field.
	ErrInvalidConfig = errors.New("switchboard: invalid config")
	// ErrInvalidTTL means a TTL is not between MinTTL and MaxTTL.
	ErrInvalidTTL = errors.New("switchboard: invalid ttl")
	// ErrInvalidOption means an option or argument other than a key, route
	// or TTL is out of range: a priority, writer, revision or reason, both
	// IfRevision and IfAbsent, a filter, limit or cursor. The returned error
	// names it. Nothing is stored.
	ErrInvalidOption = errors.New("switchboard: invalid option")
	// ErrSuperseded means a Set was refused because the key's fresh, valid
	// record was written with a higher priority; the error names both.
	ErrSuperseded = errors.New("switchboard: superseded")
	// ErrConflict means a conditional write (IfRevision, IfAbsent) found
	// another record than it required, or a Confirm or Invalidate found a
	// record with another delivery target; nothing was changed.
	ErrConflict = errors.New("switchboard: conflict")
	// ErrInvalidated means the key's record was invalidated (a tombstone);
	// the error's message has the reason.
	ErrInvalidated = errors.New("switchboard: invalidated")
	// ErrStorageUnavailable means a durable store could not make a write
	// durable (its disk full, read-only or failing): the write was not
	// applied, unless the error also wraps ErrOutcomeUnknown (the log
	// failed after the change was applied in memory; it becomes durable
	// with the next successful compaction). Reads go on; writes resume
	// when the disk does.
	ErrStorageUnavailable = errors.New("switchboard: storage unavailable")
	// ErrClosed means the Manager (or the Store) has been closed.
	ErrClosed = errors.New("switchboard: closed")
	// ErrInvalidSnapshot means a MemoryStore snapshot is truncated, corrupt
	// or of an unknown format (nothing of it was restored), or that a
	// durable MemoryStore's log is damaged before its end.
	ErrInvalidSnapshot = errors.New("switchboard: invalid snapshot")
)

// OpError is the error of an operation on one session key (or one
// partition): what was done, to which key in which partition, and why. Err
// wraps the sentinels that classify it.
type OpError struct {
	Op        string     // "set", "get", "resolve", "confirm", "invalidate", "delete", "prune", "list", …
	Key       SessionKey // zero for a partition-wide operation
	Partition int        // the partition that was used
	Err       error
}

// Error returns "<op> <key> (partition <p>): <cause>".
func (e *OpError) Error() string {
	if e.Key == (SessionKey{}) {
		return fmt.Sprintf("%s partition %d: %v", e.Op, e.Partition, e.Err)
	}
	return fmt.Sprintf("%s %s (partition %d): %v", e.Op, e.Key, e.Partition, e.Err)
}

// Unwrap returns the cause.
func (e *OpError) Unwrap() error { return e.Err }
