package switchboard

import (
	"fmt"
	"maps"
	"time"
)

// Route is where replies for a conversation are delivered. ExternalRoomID is
// required; the other fields describe the destination for the caller's
// convenience and Meta carries free-form extras.
//
// A Store keeps its own copy of a Route: changing a Route (or its Meta map)
// after Set changes nothing stored, and a Route returned by the Manager is
// the caller's to change.
type Route struct {
	ExternalRoomID string            `json:"external_room_id"`
	ChannelType    string            `json:"channel_type,omitempty"`
	BridgeID       string            `json:"bridge_id,omitempty"`
	RoomID         string            `json:"room_id,omitempty"`
	ThreadID       string            `json:"thread_id,omitempty"`
	Meta           map[string]string `json:"meta,omitempty"`
}

// Validate reports whether r is a valid route: ExternalRoomID is non-empty,
// every string field and every Meta key and value is valid UTF-8 without
// control characters and at most MaxFieldLen bytes, Meta keys are non-empty
// and there are at most MaxMetaEntries of them. The error wraps
// ErrInvalidRoute and names the field.
func (r Route) Validate() error {
	if r.ExternalRoomID != "" && len(r.Meta) == 0 && fieldOK(r.ExternalRoomID) && fieldOK(r.ChannelType) &&
		fieldOK(r.BridgeID) && fieldOK(r.RoomID) && fieldOK(r.ThreadID) {
		return nil
	}
	return r.validateSlow()
}

func (r Route) validateSlow() error {
	if r.ExternalRoomID == "" {
		return fmt.Errorf("%w: ExternalRoomID is empty", ErrInvalidRoute)
	}
	for _, f := range [...]struct{ name, v string }{
		{"ExternalRoomID", r.ExternalRoomID}, {"ChannelType", r.ChannelType}, {"BridgeID", r.BridgeID},
		{"RoomID", r.RoomID}, {"ThreadID", r.ThreadID},
	} {
		if why := checkField(f.v); why != "" {
			return fmt.Errorf("%w: %s %s", ErrInvalidRoute, f.name, why)
		}
	}
	if len(r.Meta) > MaxMetaEntries {
		return fmt.Errorf("%w: Meta has %d entries, at most %d allowed", ErrInvalidRoute, len(r.Meta), MaxMetaEntries)
	}
	for k, v := range r.Meta {
		if k == "" {
			return fmt.Errorf("%w: Meta has an empty key", ErrInvalidRoute)
		}
		if why := checkField(k); why != "" {
			return fmt.Errorf("%w: Meta key %q %s", ErrInvalidRoute, k, why)
		}
		if why := checkField(v); why != "" {
			return fmt.Errorf("%w: Meta[%q] %s", ErrInvalidRoute, k, why)
		}
	}
	return nil
}

// Clone returns a copy of r that shares no mutable state with it: the Meta
// map is copied (a nil or empty Meta stays nil, and costs no allocation).
func (r Route) Clone() Route {
	if len(r.Meta) == 0 {
		r.Meta = nil
	} else {
		r.Meta = maps.Clone(r.Meta)
	}
	return r
}

// Record is a stored route with its timestamps and provenance. It is fresh
// while the current time is before ExpiresAt.
type Record struct {
	Route     Route
	UpdatedAt time.Time
	ExpiresAt time.Time
	// Origin says how the record got there: written by Set, copied from
	// the thread's room by Resolve, or a caller's fallback stored by
	// Resolve.
	Origin Origin
	// Writer is the WithWriter label of the write that stored the route
	// ("" none), such as "inbound" or "cron".
	Writer string
	// Priority is the WithPriority of the write (0 by default; Resolve
	// stores with 0). A Set with a lower priority cannot replace the record
	// while it is fresh and valid.
	Priority int
	// Revision is positive, unique within the record's partition and
	// strictly increasing for a key over its whole life: every write of the
	// key (Set, a route stored by Resolve, Confirm, Invalidate) gives it a
	// new one. IfRevision makes a Set conditional on it.
	Revision uint64
	// Confirmed is true after Confirm matched the record; any other write
	// resets it.
	Confirmed bool
	// Invalidated, when not empty, is the reason given to Invalidate: the
	// record is a tombstone until ExpiresAt and is never an answer (Get
	// reports ErrInvalidated, Resolve goes on to the next candidate).
	Invalidated string
}

// Origin says how a record got there.
type Origin string

// The origins of a record.
const (
	// OriginSet: written by Set.
	OriginSet Origin = "set"
	// OriginRoomFallback: the thread's room's route, copied by Resolve.
	OriginRoomFallback Origin = "partition_fallback"
	// OriginProvidedFallback: a caller's fallback, stored by Resolve.
	OriginProvidedFallback Origin = "provided_fallback"
)

// Target returns the delivery target of r: the pair (ExternalRoomID,
// ThreadID) that Confirm and Invalidate compare.
func (r Route) Target() Target { return Target{ExternalRoomID: r.ExternalRoomID, ThreadID: r.ThreadID} }

// Target is where a route delivers: Confirm and Invalidate compare it, and
// Resolve never answers with a candidate whose target equals an
// invalidated record's.
type Target struct {
	ExternalRoomID string
	ThreadID       string
}

// Source says where a Resolution's route came from.
type Source string

// The sources of a Resolution.
const (
	// SourceStateHit: the key's own fresh record.
	SourceStateHit Source = "state_hit"
	// SourcePartitionFallback: the fresh record of the thread's room.
	SourcePartitionFallback Source = "partition_fallback"
	// SourceProvidedFallback: the first valid fallback the caller gave.
	SourceProvidedFallback Source = "provided_fallback"
)

// FallbackReason says why a Resolution fell back.
type FallbackReason string

// The reasons for a fallback.
const (
	// ReasonStale: a record that was looked at had expired.
	ReasonStale FallbackReason = "stale"
	// ReasonMiss: no record for the key (and, for a thread, none for its room).
	ReasonMiss FallbackReason = "miss"
	// ReasonThreadScopeMiss: no record for the thread key; its room had one.
	ReasonThreadScopeMiss FallbackReason = "thread_scope_miss"
	// ReasonSessionUnavailable: the key's partition could not be reached.
	ReasonSessionUnavailable FallbackReason = "session_unavailable"
	// ReasonInvalidated: a record looked at was invalidated (and none was
	// expired), so Resolve went on past it and past any candidate with its
	// target.
	ReasonInvalidated FallbackReason = "invalidated"
)

// Resolution is the answer of Manager.Resolve: the route to use and how it
// was chosen.
type Resolution struct {
	ExternalRoomID string         // always Route.ExternalRoomID
	Route          Route          // the caller's to change
	Partition      int            // RoutePartition(SessionKey)
	SessionKey     SessionKey     // the key that was resolved
	Source         Source         // where Route came from
	Fallback       bool           // Source is not SourceStateHit
	Stale          bool           // an expired record was looked at
	FallbackReason FallbackReason // "" when Fallback is false
	// Origin, Writer, Revision and Confirmed are those of the record
	// answered with (on a state hit) or just stored (on a fallback), so a
	// stored guess shows as a state hit with Origin provided_fallback and
	// Confirmed false. They are zero for ReasonSessionUnavailable.
	Origin    Origin
	Writer    string
	Revision  uint64
	Confirmed bool
}
