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

// Record is a stored route with its timestamps. It is fresh while the
// current time is before ExpiresAt.
type Record struct {
	Route     Route
	UpdatedAt time.Time
	ExpiresAt time.Time
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
}
