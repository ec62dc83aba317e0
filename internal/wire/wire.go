// Package wire holds the JSON bodies and error codes of Switchboard's HTTP
// API, shared by the server and the Go client so the two cannot disagree.
package wire

import (
	"errors"
	"net/http"
	"time"

	"github.com/switchboard-go/switchboard"
)

// Limits of the HTTP API.
const (
	MaxBodyBytes = 64 << 10 // request bodies
	MaxFallbacks = 16       // fallbacks in one resolve request
)

// SetRequest is the body of PUT /v1/instances/{instance}/routes/{key}.
type SetRequest struct {
	Route switchboard.Route `json:"route"`
	TTLMs *int64            `json:"ttl_ms,omitempty"`
}

// Record is the body of a successful GET of a route.
type Record struct {
	Route       switchboard.Route `json:"route"`
	UpdatedAtMs int64             `json:"updated_at_ms"`
	ExpiresAtMs int64             `json:"expires_at_ms"`
	Partition   int               `json:"partition"`
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
}

// ErrorBody is the body of every error response.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the code and message of an error response.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error codes of the HTTP API.
const (
	CodeNotFound             = "not_found"
	CodeExpired              = "expired"
	CodeNoRoute              = "no_route"
	CodeInvalidSessionKey    = "invalid_session_key"
	CodeInvalidRoute         = "invalid_route"
	CodeInvalidTTL           = "invalid_ttl"
	CodeInvalidJSON          = "invalid_json"
	CodeUnauthorized         = "unauthorized"
	CodeForbidden            = "forbidden"
	CodeUnknownInstance      = "unknown_instance"
	CodeBodyTooLarge         = "body_too_large"
	CodePartitionUnavailable = "partition_unavailable"
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
	case CodePartitionUnavailable:
		return http.StatusServiceUnavailable, switchboard.ErrPartitionUnavailable, true
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
		{switchboard.ErrPartitionUnavailable, CodePartitionUnavailable},
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
	return Record{Route: r.Route, UpdatedAtMs: Millis(r.UpdatedAt), ExpiresAtMs: Millis(r.ExpiresAt), Partition: partition}
}

// ToRecord converts back.
func (r Record) ToRecord() switchboard.Record {
	return switchboard.Record{Route: r.Route, UpdatedAt: time.UnixMilli(r.UpdatedAtMs), ExpiresAt: time.UnixMilli(r.ExpiresAtMs)}
}

// FromResolution converts a resolution.
func FromResolution(r switchboard.Resolution) Resolution {
	return Resolution{
		ExternalRoomID: r.ExternalRoomID, Route: r.Route, Partition: r.Partition, SessionKey: r.SessionKey.String(),
		Source: string(r.Source), Fallback: r.Fallback, Stale: r.Stale, FallbackReason: string(r.FallbackReason),
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
		MaxEntriesPerPartition: c.MaxEntriesPerPartition, PruneIntervalMs: c.PruneInterval.Milliseconds()}
}

// ToConfig converts back.
func (c Config) ToConfig() switchboard.Config {
	return switchboard.Config{PartitionCount: c.PartitionCount, TTL: time.Duration(c.TTLMs) * time.Millisecond,
		MaxEntriesPerPartition: c.MaxEntriesPerPartition, PruneInterval: time.Duration(c.PruneIntervalMs) * time.Millisecond}
}
