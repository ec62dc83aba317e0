package switchboard

// Observer receives telemetry events from a Manager. Observe is called
// synchronously, after the operation and outside every partition lock, from
// whichever goroutine ran the operation: it must be safe for concurrent use
// and should be quick. It must not call back into the Manager for the same
// partition it is reporting in a way that could block.
type Observer interface {
	Observe(Event)
}

// ObserverFunc adapts a function to the Observer interface.
type ObserverFunc func(Event)

// Observe calls f(e).
func (f ObserverFunc) Observe(e Event) { f(e) }

// EventKind names what an Event reports.
type EventKind string

// The kinds of Event.
const (
	// EventSet: a route was stored by Set. Count is the number of records
	// evicted to make room, Size the partition size afterwards.
	EventSet EventKind = "set"
	// EventResolved: Resolve finished. Outcome, Source, FallbackReason and
	// Stale describe the answer; Size is the partition size afterwards when
	// the step reached the store (-1 when the partition was unavailable).
	EventResolved EventKind = "resolved"
	// EventFallback: Resolve answered from a fallback (Source and
	// FallbackReason say which and why).
	EventFallback EventKind = "fallback"
	// EventStale: an expired record was read and deleted. SessionKey is the
	// expired record's key (for a thread's room, the room key).
	EventStale EventKind = "stale"
	// EventEvicted: Count records were evicted for EvictionReason.
	EventEvicted EventKind = "evicted"
	// EventPruned: pruning deleted Count expired records from the partition;
	// Size is its size afterwards. Sent for every pruned partition, Count 0
	// included, so gauges stay current.
	EventPruned EventKind = "pruned"
	// EventDeleted: Delete or DeleteMatching removed the record of
	// SessionKey; Size is the partition size afterwards.
	EventDeleted EventKind = "deleted"
	// EventConfirmed: Confirm matched the record of SessionKey; Revision is
	// its new revision.
	EventConfirmed EventKind = "confirmed"
	// EventInvalidated: Invalidate turned the record of SessionKey into a
	// tombstone; Revision is its new revision.
	EventInvalidated EventKind = "invalidated"
	// EventSuperseded: a Set was refused because a fresh record of higher
	// priority stands; Revision is that record's.
	EventSuperseded EventKind = "superseded"
	// EventConflict: a conditional Set, a Confirm or an Invalidate found
	// another record than it required (Op says which); Revision is the
	// record's (0 when there was none).
	EventConflict EventKind = "conflict"
)

// Outcome is the result class of a Resolve.
type Outcome string

// The outcomes of Resolve.
const (
	OutcomeHit      Outcome = "hit"      // the key's own fresh state
	OutcomeFallback Outcome = "fallback" // a room or provided fallback
	OutcomeMiss     Outcome = "miss"     // ErrNoRoute
)

// EvictionReason says why records were evicted.
type EvictionReason string

// EvictionCapacity means the partition was over MaxEntriesPerPartition.
const EvictionCapacity EvictionReason = "capacity"

// Event is one telemetry event. Fields that do not apply to a Kind are zero.
type Event struct {
	Kind           EventKind
	Partition      int
	SessionKey     SessionKey // zero when the event concerns no single key
	Outcome        Outcome
	Source         Source
	FallbackReason FallbackReason
	Stale          bool
	EvictionReason EvictionReason
	Count          int    // evicted or pruned records
	Size           int    // partition size afterwards; -1 when unknown
	Revision       uint64 // the record's revision, where the Kind says so
	Op             string // EventConflict: "set", "confirm" or "invalidate"
}
