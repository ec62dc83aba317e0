// Package wire holds the JSON bodies and error codes of Switchboard's HTTP
// API, shared by the server and the Go client so the two cannot disagree.
package wire

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/switchboard-go/switchboard"
)

// Limits of the HTTP API.
const (
	MaxBodyBytes   = 64 << 10 // request bodies
	MaxHeaderBytes = 64 << 10 // request line and headers
	MaxFallbacks   = 16       // fallbacks in one resolve request
)

// SetRequest is the body of PUT /v1/instances/{instance}/routes/{key}.
// Its conditions travel as the If-Match and If-None-Match headers.
type SetRequest struct {
	Route    switchboard.Route `json:"route"`
	TTLMs    *int64            `json:"ttl_ms,omitempty"`
	Priority *int              `json:"priority,omitempty"`
	Writer   string            `json:"writer,omitempty"`
}

// Record is the body of a successful GET of a route or Confirm, and, with
// SessionKey, one entry of a List.
type Record struct {
	SessionKey  string            `json:"session_key,omitempty"`
	Route       switchboard.Route `json:"route"`
	UpdatedAtMs int64             `json:"updated_at_ms"`
	ExpiresAtMs int64             `json:"expires_at_ms"`
	Partition   int               `json:"partition"`
	Origin      string            `json:"origin"`
	Writer      string            `json:"writer,omitempty"`
	Priority    int               `json:"priority"`
	Revision    uint64            `json:"revision"`
	Confirmed   bool              `json:"confirmed"`
	Invalidated string            `json:"invalidated,omitempty"`
}

// FeedbackRequest is the body of POST …/confirm and POST …/invalidate
// (Reason is for invalidate only).
type FeedbackRequest struct {
	SessionKey string            `json:"session_key"`
	Route      switchboard.Route `json:"route"`
	Reason     string            `json:"reason,omitempty"`
}

// ListResponse is the body of GET /v1/instances/{instance}/routes.
type ListResponse struct {
	Routes []Record `json:"routes"`
	Next   string   `json:"next"`
}

// Filter is the filter of POST …/routes:delete (and, as query parameters
// of the same names, of GET …/routes).
type Filter struct {
	ChannelType     string `json:"channel_type,omitempty"`
	BridgeID        string `json:"bridge_id,omitempty"`
	RoomID          string `json:"room_id,omitempty"`
	ThreadID        string `json:"thread_id,omitempty"`
	Scope           string `json:"scope,omitempty"`
	ExternalRoomID  string `json:"external_room_id,omitempty"`
	Origin          string `json:"origin,omitempty"`
	Writer          string `json:"writer,omitempty"`
	UpdatedBeforeMs int64  `json:"updated_before_ms,omitempty"`
	Invalidated     bool   `json:"invalidated,omitempty"`
}

// DeleteRequest is the body of POST …/routes:delete.
type DeleteRequest struct {
	Filter Filter `json:"filter"`
	DryRun bool   `json:"dry_run"`
}

// DeleteResult is the answer of POST …/routes:delete.
type DeleteResult struct {
	Matched int      `json:"matched"`
	Deleted int      `json:"deleted"`
	Sample  []string `json:"sample"`
}

// ExplainResponse is the answer of POST …/explain: the resolution, or the
// error, Resolve would answer, and the steps.
type ExplainResponse struct {
	Resolution *Resolution   `json:"resolution,omitempty"`
	Error      *ErrorDetail  `json:"error,omitempty"`
	Steps      []ExplainStep `json:"steps"`
}

// ExplainStep is one step of an explanation.
type ExplainStep struct {
	SessionKey string  `json:"session_key"`
	Role       string  `json:"role"`
	Found      string  `json:"found"`
	Record     *Record `json:"record,omitempty"`
	Note       string  `json:"note"`
}

// ResolveRequest is the body of POST /v1/instances/{instance}/resolve.
type ResolveRequest struct {
	SessionKey string              `json:"session_key"`
	Fallbacks  []switchboard.Route `json:"fallbacks,omitempty"`
}

// Resolution is the body of a successful resolve.
type Resolution struct {
	ExternalRoomID string            `json:"external_room_id"`
	Route          switchboard.Route `json:"route"`
	Partition      int               `json:"partition"`
	SessionKey     string            `json:"session_key"`
	Source         string            `json:"source"`
	Fallback       bool              `json:"fallback"`
	Stale          bool              `json:"stale"`
	FallbackReason string            `json:"fallback_reason,omitempty"`
	Origin         string            `json:"origin,omitempty"`
	Writer         string            `json:"writer,omitempty"`
	Revision       uint64            `json:"revision,omitempty"`
	Confirmed      bool              `json:"confirmed"`
}

// PruneResult is the body of a successful prune.
type PruneResult struct {
	Pruned     int `json:"pruned"`
	Partitions int `json:"partitions"`
}

// PartitionStatus describes one partition.
type PartitionStatus struct {
	Index     int    `json:"index"`
	Owner     string `json:"owner"`
	Available bool   `json:"available"`
	Entries   int    `json:"entries"`
	Capacity  int    `json:"capacity"`
}

// Config is the effective session-manager configuration of an instance.
type Config struct {
	PartitionCount         int   `json:"partition_count"`
	TTLMs                  int64 `json:"ttl_ms"`
	MaxEntriesPerPartition int   `json:"max_entries_per_partition"`
	PruneIntervalMs        int64 `json:"prune_interval_ms"`
	ProvisionalTTLMs       int64 `json:"provisional_ttl_ms"` // in force: the TTL when not set
	Capacity               int   `json:"capacity"`           // partition_count × max_entries_per_partition
}

// ErrorBody is the body of every error response.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the code and message of an error response.
// OutcomeUnknown says that a write may have been applied although it
// failed (a store timeout; see switchboard.ErrOutcomeUnknown).
type ErrorDetail struct {
	Code           string `json:"code"`
	Message        string `json:"message"`
	OutcomeUnknown bool   `json:"outcome_unknown,omitempty"`
}

// Error codes of the HTTP API.
const (
	CodeNotFound             = "not_found"
	CodeExpired              = "expired"
	CodeNoRoute              = "no_route"
	CodeInvalidSessionKey    = "invalid_session_key"
	CodeInvalidRoute         = "invalid_route"
	CodeInvalidTTL           = "invalid_ttl"
	CodeInvalidOption        = "invalid_option"
	CodeConflict             = "conflict"
	CodeSuperseded           = "superseded"
	CodeInvalidated          = "invalidated"
	CodeInvalidJSON          = "invalid_json"
	CodeUnauthorized         = "unauthorized"
	CodeForbidden            = "forbidden"
	CodeUnknownInstance      = "unknown_instance"
	CodeBodyTooLarge         = "body_too_large"
	CodeHeaderTooLarge       = "header_too_large"
	CodeUnsupportedMediaType = "unsupported_media_type"
	CodePartitionUnavailable = "partition_unavailable"
	CodeStorageUnavailable   = "storage_unavailable"
	CodeMethodNotAllowed     = "method_not_allowed"
	CodeUnavailable          = "unavailable"
	CodeInternal             = "internal"
)

// lookup returns the HTTP status of code and the library's sentinel for it
// (nil where the library has none); ok is false for an unknown code.
func lookup(code string) (status int, sentinel error, ok bool) {
	switch code {
	case CodeNotFound:
		return http.StatusNotFound, switchboard.ErrNotFound, true
	case CodeExpired:
		return http.StatusGone, switchboard.ErrExpired, true
	case CodeNoRoute:
		return http.StatusNotFound, switchboard.ErrNoRoute, true
	case CodeInvalidSessionKey:
		return http.StatusBadRequest, switchboard.ErrInvalidSessionKey, true
	case CodeInvalidRoute:
		return http.StatusBadRequest, switchboard.ErrInvalidRoute, true
	case CodeInvalidTTL:
		return http.StatusBadRequest, switchboard.ErrInvalidTTL, true
	case CodeInvalidOption:
		return http.StatusBadRequest, switchboard.ErrInvalidOption, true
	case CodeConflict: // 412 instead for a conditional PUT
		return http.StatusConflict, switchboard.ErrConflict, true
	case CodeSuperseded:
		return http.StatusConflict, switchboard.ErrSuperseded, true
	case CodeInvalidated:
		return http.StatusGone, switchboard.ErrInvalidated, true
	case CodeInvalidJSON:
		return http.StatusBadRequest, nil, true
	case CodeUnauthorized:
		return http.StatusUnauthorized, nil, true
	case CodeForbidden:
		return http.StatusForbidden, nil, true
	case CodeUnknownInstance:
		return http.StatusNotFound, nil, true
	case CodeBodyTooLarge:
		return http.StatusRequestEntityTooLarge, nil, true
	case CodeHeaderTooLarge:
		return http.StatusRequestHeaderFieldsTooLarge, nil, true
	case CodeUnsupportedMediaType:
		return http.StatusUnsupportedMediaType, nil, true
	case CodePartitionUnavailable:
		return http.StatusServiceUnavailable, switchboard.ErrPartitionUnavailable, true
	case CodeStorageUnavailable:
		return http.StatusServiceUnavailable, switchboard.ErrStorageUnavailable, true
	case CodeMethodNotAllowed:
		return http.StatusMethodNotAllowed, nil, true
	case CodeUnavailable:
		return http.StatusServiceUnavailable, switchboard.ErrClosed, true
	case CodeInternal:
		return http.StatusInternalServerError, nil, true
	}
	return http.StatusInternalServerError, nil, false
}

// Status returns the HTTP status of code (500 for an unknown one).
func Status(code string) int {
	status, _, _ := lookup(code)
	return status
}

// Sentinel returns the library error for code, or nil.
func Sentinel(code string) error {
	_, sentinel, _ := lookup(code)
	return sentinel
}

// CodeOf returns the error code for an error from the library.
func CodeOf(err error) string {
	for _, c := range []struct {
		sentinel error
		code     string
	}{
		{switchboard.ErrNotFound, CodeNotFound},
		{switchboard.ErrExpired, CodeExpired},
		{switchboard.ErrNoRoute, CodeNoRoute},
		{switchboard.ErrInvalidSessionKey, CodeInvalidSessionKey},
		{switchboard.ErrInvalidRoute, CodeInvalidRoute},
		{switchboard.ErrInvalidTTL, CodeInvalidTTL},
		{switchboard.ErrInvalidOption, CodeInvalidOption},
		{switchboard.ErrConflict, CodeConflict},
		{switchboard.ErrSuperseded, CodeSuperseded},
		{switchboard.ErrInvalidated, CodeInvalidated},
		{switchboard.ErrPartitionUnavailable, CodePartitionUnavailable},
		{switchboard.ErrStorageUnavailable, CodeStorageUnavailable},
		{switchboard.ErrClosed, CodeUnavailable},
	} {
		if errors.Is(err, c.sentinel) {
			return c.code
		}
	}
	return CodeInternal
}

// Millis converts a time to unix milliseconds (0 for the zero time).
func Millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// FromRecord converts a record.
func FromRecord(r switchboard.Record, partition int) Record {
	return Record{Route: r.Route, UpdatedAtMs: Millis(r.UpdatedAt), ExpiresAtMs: Millis(r.ExpiresAt), Partition: partition,
		Origin: string(r.Origin), Writer: r.Writer, Priority: r.Priority, Revision: r.Revision, Confirmed: r.Confirmed,
		Invalidated: r.Invalidated}
}

// ToRecord converts back.
func (r Record) ToRecord() switchboard.Record {
	return switchboard.Record{Route: r.Route, UpdatedAt: time.UnixMilli(r.UpdatedAtMs), ExpiresAt: time.UnixMilli(r.ExpiresAtMs),
		Origin: switchboard.Origin(r.Origin), Writer: r.Writer, Priority: r.Priority, Revision: r.Revision,
		Confirmed: r.Confirmed, Invalidated: r.Invalidated}
}

// FromEntry converts a List entry.
func FromEntry(e switchboard.Entry) Record {
	r := FromRecord(e.Record, e.Partition)
	r.SessionKey = e.Key.String()
	return r
}

// ToEntry converts back.
func (r Record) ToEntry() (switchboard.Entry, error) {
	key, err := switchboard.ParseSessionKey(r.SessionKey)
	if err != nil {
		return switchboard.Entry{}, err
	}
	return switchboard.Entry{Key: key, Partition: r.Partition, Record: r.ToRecord()}, nil
}

// FromFilter converts a filter.
func FromFilter(f switchboard.Filter) Filter {
	return Filter{ChannelType: f.ChannelType, BridgeID: f.BridgeID, RoomID: f.RoomID, ThreadID: f.ThreadID,
		Scope: string(f.Scope), ExternalRoomID: f.ExternalRoomID, Origin: string(f.Origin), Writer: f.Writer,
		UpdatedBeforeMs: Millis(f.UpdatedBefore), Invalidated: f.Invalidated}
}

// ToFilter converts back.
func (f Filter) ToFilter() switchboard.Filter {
	out := switchboard.Filter{ChannelType: f.ChannelType, BridgeID: f.BridgeID, RoomID: f.RoomID, ThreadID: f.ThreadID,
		Scope: switchboard.Scope(f.Scope), ExternalRoomID: f.ExternalRoomID, Origin: switchboard.Origin(f.Origin),
		Writer: f.Writer, Invalidated: f.Invalidated}
	if f.UpdatedBeforeMs != 0 {
		out.UpdatedBefore = time.UnixMilli(f.UpdatedBeforeMs)
	}
	return out
}

// FromExplanation converts an explanation.
func FromExplanation(ex switchboard.Explanation, partition int) ExplainResponse {
	out := ExplainResponse{Steps: make([]ExplainStep, 0, len(ex.Steps))}
	if ex.Err != nil {
		out.Error = &ErrorDetail{Code: CodeOf(ex.Err), Message: ex.Err.Error()}
	} else {
		res := FromResolution(ex.Resolution)
		out.Resolution = &res
	}
	for _, s := range ex.Steps {
		st := ExplainStep{SessionKey: s.Key.String(), Role: s.Role, Found: s.Found, Note: s.Note}
		if s.Record != nil {
			rec := FromRecord(*s.Record, partition)
			st.Record = &rec
		}
		out.Steps = append(out.Steps, st)
	}
	return out
}

// ToExplanation converts back; Err is the client's sentinel-mapping error
// made by errOf from the error detail.
func (r ExplainResponse) ToExplanation(errOf func(ErrorDetail) error) (switchboard.Explanation, error) {
	var ex switchboard.Explanation
	if r.Error != nil {
		ex.Err = errOf(*r.Error)
	} else if r.Resolution != nil {
		res, err := r.Resolution.ToResolution()
		if err != nil {
			return ex, err
		}
		ex.Resolution = res
	}
	for _, s := range r.Steps {
		k, err := switchboard.ParseSessionKey(s.SessionKey)
		if err != nil {
			return ex, err
		}
		st := switchboard.Step{Key: k, Role: s.Role, Found: s.Found, Note: s.Note}
		if s.Record != nil {
			rec := s.Record.ToRecord()
			st.Record = &rec
		}
		ex.Steps = append(ex.Steps, st)
	}
	return ex, nil
}

// FromResolution converts a resolution.
func FromResolution(r switchboard.Resolution) Resolution {
	return Resolution{
		ExternalRoomID: r.ExternalRoomID, Route: r.Route, Partition: r.Partition, SessionKey: r.SessionKey.String(),
		Source: string(r.Source), Fallback: r.Fallback, Stale: r.Stale, FallbackReason: string(r.FallbackReason),
		Origin: string(r.Origin), Writer: r.Writer, Revision: r.Revision, Confirmed: r.Confirmed,
	}
}

// ToResolution converts back.
func (r Resolution) ToResolution() (switchboard.Resolution, error) {
	key, err := switchboard.ParseSessionKey(r.SessionKey)
	if err != nil {
		return switchboard.Resolution{}, err
	}
	return switchboard.Resolution{
		ExternalRoomID: r.ExternalRoomID, Route: r.Route, Partition: r.Partition, SessionKey: key,
		Source: switchboard.Source(r.Source), Fallback: r.Fallback, Stale: r.Stale,
		FallbackReason: switchboard.FallbackReason(r.FallbackReason),
		Origin:         switchboard.Origin(r.Origin), Writer: r.Writer, Revision: r.Revision, Confirmed: r.Confirmed,
	}, nil
}

// FromPartitionStatus converts a partition status.
func FromPartitionStatus(s switchboard.PartitionStatus) PartitionStatus {
	return PartitionStatus{Index: s.Index, Owner: s.Owner, Available: s.Available, Entries: s.Entries, Capacity: s.Capacity}
}

// ToPartitionStatus converts back.
func (s PartitionStatus) ToPartitionStatus() switchboard.PartitionStatus {
	return switchboard.PartitionStatus{Index: s.Index, Owner: s.Owner, Available: s.Available, Entries: s.Entries, Capacity: s.Capacity}
}

// FromConfig converts a configuration.
func FromConfig(c switchboard.Config) Config {
	return Config{PartitionCount: c.PartitionCount, TTLMs: c.TTL.Milliseconds(),
		MaxEntriesPerPartition: c.MaxEntriesPerPartition, PruneIntervalMs: c.PruneInterval.Milliseconds(),
		ProvisionalTTLMs: c.EffectiveProvisionalTTL().Milliseconds(), Capacity: c.PartitionCount * c.MaxEntriesPerPartition}
}

// ToConfig converts back. ProvisionalTTL is the value in force.
func (c Config) ToConfig() switchboard.Config {
	return switchboard.Config{PartitionCount: c.PartitionCount, TTL: time.Duration(c.TTLMs) * time.Millisecond,
		MaxEntriesPerPartition: c.MaxEntriesPerPartition, PruneInterval: time.Duration(c.PruneIntervalMs) * time.Millisecond,
		ProvisionalTTL: time.Duration(c.ProvisionalTTLMs) * time.Millisecond}
}

// ETag returns the entity tag of a revision, as GET answers it and If-Match
// takes it: the revision in double quotes.
func ETag(rev uint64) string { return `"` + strconv.FormatUint(rev, 10) + `"` }

// ParseETag returns the revision of an entity tag made by ETag.
func ParseETag(tag string) (uint64, bool) {
	if len(tag) < 3 || tag[0] != '"' || tag[len(tag)-1] != '"' {
		return 0, false
	}
	rev, err := strconv.ParseUint(tag[1:len(tag)-1], 10, 64)
	return rev, err == nil && rev > 0
}
