package switchboard

// looked is what a resolve step saw of one record, as far as choosing the
// answer needs: whether it is there and fresh, whether it is a tombstone,
// and its delivery target.
type looked struct {
	state  LookState
	tomb   bool
	target Target
}

// valid reports whether the record is fresh and not a tombstone.
func (l looked) valid() bool { return l.state == LookFresh && !l.tomb }

// banned reports whether l is a fresh tombstone with target t.
func (l looked) banned(t Target) bool { return l.state == LookFresh && l.tomb && l.target == t }

// chooseCandidate is the choice every resolve step makes after the key's
// own record was found not to be a fresh, valid answer (ResolveRequest
// steps 2–4): the room's route when the key is a thread and the room's
// record is fresh, valid and not of a target a tombstone it looked at
// holds; else the first fallback whose target no such tombstone holds.
// fallback is that fallback's index (-1 otherwise); invalidated reports
// that a tombstone was looked at. MemoryStore and Manager.Explain share
// it; other backends implement the same rule (storetest pins it).
func chooseCandidate(exact, room looked, thread bool, fallbacks []Route) (src Source, fallback int, invalidated bool) {
	invalidated = exact.state == LookFresh && exact.tomb
	if thread {
		invalidated = invalidated || (room.state == LookFresh && room.tomb)
		if room.valid() && !exact.banned(room.target) {
			return SourcePartitionFallback, -1, invalidated
		}
	}
	for i := range fallbacks {
		t := fallbacks[i].Target()
		if exact.banned(t) || (thread && room.banned(t)) {
			continue
		}
		return SourceProvidedFallback, i, invalidated
	}
	return "", -1, invalidated
}

// lookedOf summarizes a Look for chooseCandidate.
func lookedOf(l *Look) looked {
	return looked{state: l.State, tomb: l.Record.Invalidated != "", target: l.Record.Route.Target()}
}
