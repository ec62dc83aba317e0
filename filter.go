package switchboard

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Scope narrows a Filter to room keys or thread keys.
type Scope string

// The scopes of a Filter.
const (
	ScopeAny    Scope = ""       // room and thread keys
	ScopeRoom   Scope = "room"   // keys without a ThreadID
	ScopeThread Scope = "thread" // keys with a ThreadID
)

// Filter selects records for List and DeleteMatching. Every non-zero
// field must match; the zero Filter matches every fresh, valid record.
// Key fields match exactly, byte for byte (a RoomID "a:b" matches only
// "a:b", never "a" or "a:b:c").
type Filter struct {
	ChannelType, BridgeID, RoomID, ThreadID string    // exact match when non-empty
	Scope                                   Scope     // ScopeAny, ScopeRoom or ScopeThread
	ExternalRoomID                          string    // exact match of Route.ExternalRoomID when non-empty
	Origin                                  Origin    // "" any
	Writer                                  string    // exact match when non-empty
	UpdatedBefore                           time.Time // zero: any; else records last written before it
	// Invalidated selects tombstones (records invalidated by Invalidate)
	// instead of valid records.
	Invalidated bool
}

// IsZero reports whether f is the zero Filter, which matches every valid
// record.
func (f Filter) IsZero() bool { return f == Filter{} }

// Validate reports whether f is a well-formed filter: key fields and
// ExternalRoomID valid like the fields of a key, Scope and Origin one of
// their constants, Writer a valid writer label, ThreadID not combined with
// ScopeRoom. The error wraps ErrInvalidOption and names the field.
func (f Filter) Validate() error {
	for _, c := range [...]struct{ name, v string }{
		{"channel_type", f.ChannelType}, {"bridge_id", f.BridgeID}, {"room_id", f.RoomID},
		{"thread_id", f.ThreadID}, {"external_room_id", f.ExternalRoomID},
	} {
		if why := checkField(c.v); why != "" {
			return fmt.Errorf("%w: filter %s %s", ErrInvalidOption, c.name, why)
		}
	}
	switch f.Scope {
	case ScopeAny, ScopeRoom, ScopeThread:
	default:
		return fmt.Errorf("%w: filter scope %q: want %q, %q or empty", ErrInvalidOption, f.Scope, ScopeRoom, ScopeThread)
	}
	if f.Scope == ScopeRoom && f.ThreadID != "" {
		return fmt.Errorf("%w: filter thread_id with scope room matches nothing", ErrInvalidOption)
	}
	switch f.Origin {
	case "", OriginSet, OriginRoomFallback, OriginProvidedFallback:
	default:
		return fmt.Errorf("%w: filter origin %q: want %q, %q or %q", ErrInvalidOption, f.Origin, OriginSet, OriginRoomFallback, OriginProvidedFallback)
	}
	if err := CheckWriter(f.Writer); err != nil {
		return fmt.Errorf("filter: %w", err)
	}
	return nil
}

// Match reports whether the record rec of key k matches f. It does not
// look at freshness: callers pass fresh records only.
func (f *Filter) Match(k SessionKey, rec *Record) bool {
	return (f.ChannelType == "" || f.ChannelType == k.ChannelType) &&
		(f.BridgeID == "" || f.BridgeID == k.BridgeID) &&
		(f.RoomID == "" || f.RoomID == k.RoomID) &&
		(f.ThreadID == "" || f.ThreadID == k.ThreadID) &&
		(f.Scope == ScopeAny || (f.Scope == ScopeRoom) == (k.ThreadID == "")) &&
		(f.ExternalRoomID == "" || f.ExternalRoomID == rec.Route.ExternalRoomID) &&
		(f.Origin == "" || f.Origin == rec.Origin) &&
		(f.Writer == "" || f.Writer == rec.Writer) &&
		(f.UpdatedBefore.IsZero() || rec.UpdatedAt.Before(f.UpdatedBefore)) &&
		f.Invalidated == (rec.Invalidated != "")
}

// Entry is one record with its key and partition, as List returns it.
type Entry struct {
	Key       SessionKey
	Partition int
	Record    Record
}

// DeleteResult is the outcome of DeleteMatching.
type DeleteResult struct {
	Matched int          // records that matched
	Deleted int          // records deleted (0 on a dry run)
	Sample  []SessionKey // up to MaxDeleteSample of the matched keys
}

// Limits of List and DeleteMatching.
const (
	DefaultListLimit = 100  // List's limit when 0 is given
	MaxListLimit     = 1000 // the largest List limit
	MaxDeleteSample  = 10   // keys in DeleteResult.Sample
)

// cursor is a position in a List scan: a partition and a position within
// it (a Store's ScanResult.Next), for a given partition count.
type cursor struct {
	partitions, partition int
	pos                   uint64
}

const cursorVersion = "c1"

func (c cursor) String() string {
	raw := cursorVersion + ":" + strconv.Itoa(c.partitions) + ":" + strconv.Itoa(c.partition) + ":" + strconv.FormatUint(c.pos, 10)
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// parseCursor decodes a List cursor of a Manager with the given partition
// count; "" is the start.
func parseCursor(s string, partitions int) (cursor, error) {
	if s == "" {
		return cursor{partitions: partitions}, nil
	}
	bad := fmt.Errorf("%w: cursor %q is not one List returned", ErrInvalidOption, s)
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return cursor{}, bad
	}
	f := strings.Split(string(raw), ":")
	if len(f) != 4 || f[0] != cursorVersion {
		return cursor{}, bad
	}
	n, err1 := strconv.Atoi(f[1])
	p, err2 := strconv.Atoi(f[2])
	pos, err3 := strconv.ParseUint(f[3], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || p < 0 {
		return cursor{}, bad
	}
	if n != partitions || p >= partitions {
		return cursor{}, fmt.Errorf("%w: cursor %q is for %d partitions, this Manager has %d", ErrInvalidOption, s, n, partitions)
	}
	return cursor{partitions: n, partition: p, pos: pos}, nil
}
