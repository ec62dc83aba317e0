package switchboard

import "time"

// FailLogForTest makes a durable store's log fail with err, as a failing
// disk would.
func FailLogForTest(s *MemoryStore, err error) {
	s.dur.logMu.RLock()
	defer s.dur.logMu.RUnlock()
	s.dur.w.Fail(err)
}

// ReplayLogForTest applies one log record's payload to s (initialized by
// New) as a start would, without a file.
func ReplayLogForTest(s *MemoryStore, payload []byte) error {
	logParts := 0
	_, err := s.replay(payload, nil, make([]uint64, len(s.parts)), map[int]uint64{}, &logParts)
	return err
}

// ObserveHoldsForTest makes s tell f how long each lock hold of its
// background work lasted — Prune, Scan, DeleteMatching and each
// partition's copy for a snapshot (see MemoryStore.holds); call it before
// New.
func ObserveHoldsForTest(s *MemoryStore, f func(time.Duration)) { s.holds = f }
