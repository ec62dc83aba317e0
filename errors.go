package switchboard

import "errors"

// Sentinel errors. Every error a Manager returns either is one of these or
// wraps one, so callers test for them with errors.Is.
var (
	// ErrNotFound means no record is stored for the session key.
	ErrNotFound = errors.New("switchboard: not found")
	// ErrExpired means the record for the session key had expired; reading it
	// removed it, so the next read reports ErrNotFound.
	ErrExpired = errors.New("switchboard: expired")
	// ErrPartitionUnavailable means the store could not reach the partition
	// that owns the key (a node down, a refused connection, the store's own
	// timeout). The returned error wraps the cause.
	ErrPartitionUnavailable = errors.New("switchboard: partition unavailable")
	// ErrInvalidSessionKey means a SessionKey (or its string form) is not
	// valid; the returned error names the field.
	ErrInvalidSessionKey = errors.New("switchboard: invalid session key")
	// ErrInvalidRoute means a Route is not valid; the returned error names
	// the field.
	ErrInvalidRoute = errors.New("switchboard: invalid route")
	// ErrNoRoute means Resolve found no fresh state and no valid fallback.
	ErrNoRoute = errors.New("switchboard: no route")
	// ErrInvalidConfig means a Config field is out of range; the returned
	// error names the field.
	ErrInvalidConfig = errors.New("switchboard: invalid config")
	// ErrInvalidTTL means a TTL given with WithTTL is not positive or is
	// larger than MaxTTL.
	ErrInvalidTTL = errors.New("switchboard: invalid ttl")
	// ErrClosed means the Manager (or the Store) has been closed.
	ErrClosed = errors.New("switchboard: closed")
	// ErrInvalidSnapshot means a MemoryStore snapshot is truncated, corrupt
	// or of an unknown format; nothing of it was restored.
	ErrInvalidSnapshot = errors.New("switchboard: invalid snapshot")
)
