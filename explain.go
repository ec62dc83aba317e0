package switchboard

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Explanation is what Resolve would do for a key at one instant, step by
// step: Manager.Explain's answer.
type Explanation struct {
	// Resolution and Err are what Resolve would have returned (Err nil, or
	// ErrNoRoute, or an error wrapping ErrPartitionUnavailable).
	Resolution Resolution
	Err        error
	// Steps are the records and fallbacks looked at, in order.
	Steps []Step
}

// The roles of a Step.
const (
	RoleExact    = "exact"    // the key's own record
	RoleRoom     = "room"     // the thread's room's record
	RoleFallback = "fallback" // a fallback the caller passed
)

// The findings of a Step.
const (
	FoundFresh       = "fresh"       // a fresh, valid record
	FoundExpired     = "expired"     // an expired record (Resolve would delete it)
	FoundInvalidated = "invalidated" // a tombstone
	FoundAbsent      = "absent"      // no record
	FoundSkipped     = "skipped"     // a candidate Resolve would pass over (Note says why)
	FoundUsed        = "used"        // the candidate Resolve would answer with (and store)
)

// Step is one thing Resolve looks at.
type Step struct {
	Key    SessionKey // the record's key; for a fallback, the key it would be stored under
	Role   string     // RoleExact, RoleRoom or RoleFallback
	Found  string     // one of the Found… constants
	Record *Record    // the record looked at; a fallback's route as it would be stored
	Note   string     // why, in a sentence
}

// Explain reports what Resolve(ctx, key, fallbacks...) would return now,
// and every record and fallback it would look at and why. It stores and
// deletes nothing: an expired record is reported as expired and stays
// until it is read, pruned or overwritten. Its error is for an Explain that
// could not run (an invalid key, a closed Manager, a done ctx); what
// Resolve would answer, errors included, is in the Explanation.
func (m *Manager) Explain(ctx context.Context, key SessionKey, fallbacks ...Route) (Explanation, error) {
	var buf [keyBufSize]byte
	sk, enc, err := m.prepare(ctx, key, &buf)
	if err != nil {
		return Explanation{}, err
	}
	req := m.resolveRequest(&sk, enc, m.now())
	var ex Explanation
	seen, err := m.store.Look(ctx, req)
	cands := m.candidates(ctx, key, fallbacks)
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return Explanation{}, cerr
		}
		if errors.Is(err, ErrClosed) {
			return Explanation{}, ErrClosed
		}
		err = opErr(ctx, "resolve", key, sk.Partition, err)
		ex.Steps = append(ex.Steps, Step{Key: key, Role: RoleExact, Found: FoundSkipped, Note: "the partition is unavailable: " + err.Error()})
		if len(cands) == 0 || !errors.Is(err, ErrPartitionUnavailable) {
			ex.Err = err
			return ex, nil
		}
		ex.Resolution = unavailableResolution(&sk, cands[0])
		ex.Steps = append(ex.Steps, fallbackStep(key, &cands[0], FoundUsed, "the first valid fallback, answered without storing (session_unavailable)"))
		return ex, nil
	}
	res := ResolveResult{Size: seen.Size}
	ex.Steps = append(ex.Steps, recordStep(key, RoleExact, &seen.Exact))
	exact, room := lookedOf(&seen.Exact), lookedOf(&seen.Room)
	thread := key.ThreadID != ""
	res.ExactExpired = seen.Exact.State == LookExpired
	if exact.valid() {
		ex.Steps[0].Note = "the key's own fresh record: the answer (state_hit)"
		res.Source, res.Record = SourceStateHit, seen.Exact.Record
		ex.Resolution, ex.Err = resolution(&sk, &res)
		return ex, nil
	}
	if thread {
		rs := recordStep(req.Room.Key, RoleRoom, &seen.Room)
		res.RoomExpired = seen.Room.State == LookExpired
		if room.valid() && exact.banned(room.target) {
			rs.Found, rs.Note = FoundSkipped, "its target is the invalidated target of the key's record"
		}
		ex.Steps = append(ex.Steps, rs)
	}
	src, fb, inv := chooseCandidate(exact, room, thread, cands)
	res.Source, res.Invalidated = src, inv
	now := req.Now
	stored := Record{UpdatedAt: now, ExpiresAt: req.ExpiresAt}
	switch src {
	case SourcePartitionFallback:
		last := &ex.Steps[len(ex.Steps)-1]
		last.Found, last.Note = FoundUsed, "the room's fresh record: copied to the thread (partition_fallback)"
		stored.Route, stored.Origin = seen.Room.Record.Route, OriginRoomFallback
	case SourceProvidedFallback:
		stored.Route, stored.Origin = cands[fb].Clone(), OriginProvidedFallback
	}
	// The fallbacks looked at: every one before the used one (all, if none
	// was used), skipped for an invalidated target, and the used one.
	if src != SourcePartitionFallback {
		for i := range fallbacks {
			f := &fallbacks[i]
			if !fallbackOK(f) {
				why := "no external_room_id"
				if f.ExternalRoomID != "" {
					why = "not a valid route: " + f.Validate().Error()
				}
				ex.Steps = append(ex.Steps, fallbackStep(key, f, FoundSkipped, why))
				continue
			}
			if src == SourceProvidedFallback && f == indexOf(fallbacks, cands, fb) {
				ex.Steps = append(ex.Steps, fallbackStep(key, f, FoundUsed, "the first usable fallback: stored under the key (provided_fallback)"))
				break
			}
			ex.Steps = append(ex.Steps, fallbackStep(key, f, FoundSkipped, "its target is that of an invalidated record looked at"))
		}
	}
	if src != "" {
		// The revision a store would give is unknown until it writes.
		res.Record = stored
	}
	ex.Resolution, ex.Err = resolution(&sk, &res)
	return ex, nil
}

// indexOf returns the element of all that is candidates[i] (candidates is
// all itself, or a filtered copy of it).
func indexOf(all, candidates []Route, i int) *Route {
	if len(candidates) == len(all) {
		return &all[i]
	}
	n := -1
	for j := range all {
		if fallbackOK(&all[j]) {
			if n++; n == i {
				return &all[j]
			}
		}
	}
	return nil
}

func recordStep(k SessionKey, role string, l *Look) Step {
	s := Step{Key: k, Role: role}
	switch {
	case l.State == LookAbsent:
		s.Found, s.Note = FoundAbsent, "no record"
		return s
	case l.State == LookExpired:
		s.Found = FoundExpired
		s.Note = fmt.Sprintf("expired at %s (Resolve deletes it and reports stale)", l.Record.ExpiresAt.UTC().Format(time.RFC3339Nano))
	case l.Record.Invalidated != "":
		s.Found, s.Note = FoundInvalidated, "invalidated: "+l.Record.Invalidated
	default:
		s.Found, s.Note = FoundFresh, "a fresh record"
	}
	rec := l.Record
	s.Record = &rec
	return s
}

func fallbackStep(k SessionKey, f *Route, found, note string) Step {
	return Step{Key: k, Role: RoleFallback, Found: found, Record: &Record{Route: f.Clone()}, Note: note}
}
