package storetest

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/switchboard-go/switchboard"
)

// PartitionBreaker is implemented by Stores (or test harnesses around
// them) that can make single partitions unreachable on demand, so that Run
// proves on that backend what the Manager does with an unavailable
// partition: ErrPartitionUnavailable, Resolve's session_unavailable answer
// (storing nothing), a partial Prune and DeleteMatching, and recovery.
type PartitionBreaker interface {
	// BreakPartition makes every later call on partition p fail as an
	// unreachable partition does on the backend: an error wrapping
	// switchboard.ErrPartitionUnavailable, and Stat reporting Available
	// false. Other partitions are unaffected.
	BreakPartition(p int)
	// HealPartition undoes BreakPartition.
	HealPartition(p int)
}

// FaultStore wraps a Store so that its partitions can be broken: calls on a
// broken partition fail, without reaching the wrapped Store, with an error
// wrapping switchboard.ErrPartitionUnavailable and a refused connection
// (syscall.ECONNREFUSED), as a network backend's would. It is a
// PartitionBreaker for the suite, and a way for tests of code above a
// Store (a server's 503 answers, its readiness probe) to see unavailable
// partitions without a network backend. It is safe for concurrent use.
type FaultStore struct {
	switchboard.Store
	mu     sync.Mutex
	broken map[int]bool
	during func()
}

var (
	_ switchboard.Store = (*FaultStore)(nil)
	_ PartitionBreaker  = (*FaultStore)(nil)
)

// NewFaultStore wraps s, with every partition working.
func NewFaultStore(s switchboard.Store) *FaultStore {
	return &FaultStore{Store: s, broken: map[int]bool{}}
}

// BreakPartition implements PartitionBreaker.
func (f *FaultStore) BreakPartition(p int) { f.setBroken(p, true) }

// HealPartition implements PartitionBreaker.
func (f *FaultStore) HealPartition(p int) { f.setBroken(p, false) }

func (f *FaultStore) setBroken(p int, broken bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.broken[p] = broken
}

// During makes fn run at the start of every later call (nil: none), to act
// in the middle of a call, such as cancelling the caller's context.
func (f *FaultStore) During(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.during = fn
}

// FaultOwner is the Owner a FaultStore reports for a broken partition.
const FaultOwner = "127.0.0.1:1"

func (f *FaultStore) check(p int) error {
	f.mu.Lock()
	broken, during := f.broken[p], f.during
	f.mu.Unlock()
	if during != nil {
		during()
	}
	if broken {
		return fmt.Errorf("%w: partition %d: dial tcp %s: %w", switchboard.ErrPartitionUnavailable, p, FaultOwner, syscall.ECONNREFUSED)
	}
	return nil
}

// Get implements switchboard.Store.
func (f *FaultStore) Get(ctx context.Context, k switchboard.StoreKey, now time.Time) (switchboard.Record, error) {
	if err := f.check(k.Partition); err != nil {
		return switchboard.Record{}, err
	}
	return f.Store.Get(ctx, k, now)
}

// Set implements switchboard.Store.
func (f *FaultStore) Set(ctx context.Context, req switchboard.SetRequest) (switchboard.SetResult, error) {
	if err := f.check(req.Key.Partition); err != nil {
		return switchboard.SetResult{}, err
	}
	return f.Store.Set(ctx, req)
}

// Resolve implements switchboard.Store.
func (f *FaultStore) Resolve(ctx context.Context, req switchboard.ResolveRequest) (switchboard.ResolveResult, error) {
	if err := f.check(req.Key.Partition); err != nil {
		return switchboard.ResolveResult{}, err
	}
	return f.Store.Resolve(ctx, req)
}

// Look implements switchboard.Store.
func (f *FaultStore) Look(ctx context.Context, req switchboard.ResolveRequest) (switchboard.LookResult, error) {
	if err := f.check(req.Key.Partition); err != nil {
		return switchboard.LookResult{}, err
	}
	return f.Store.Look(ctx, req)
}

// Confirm implements switchboard.Store.
func (f *FaultStore) Confirm(ctx context.Context, req switchboard.FeedbackRequest) (switchboard.FeedbackResult, error) {
	if err := f.check(req.Key.Partition); err != nil {
		return switchboard.FeedbackResult{}, err
	}
	return f.Store.Confirm(ctx, req)
}

// Invalidate implements switchboard.Store.
func (f *FaultStore) Invalidate(ctx context.Context, req switchboard.FeedbackRequest) (switchboard.FeedbackResult, error) {
	if err := f.check(req.Key.Partition); err != nil {
		return switchboard.FeedbackResult{}, err
	}
	return f.Store.Invalidate(ctx, req)
}

// Delete implements switchboard.Store.
func (f *FaultStore) Delete(ctx context.Context, k switchboard.StoreKey) (int, error) {
	if err := f.check(k.Partition); err != nil {
		return 0, err
	}
	return f.Store.Delete(ctx, k)
}

// Prune implements switchboard.Store.
func (f *FaultStore) Prune(ctx context.Context, p int, now time.Time) (switchboard.PruneStats, error) {
	if err := f.check(p); err != nil {
		return switchboard.PruneStats{}, err
	}
	return f.Store.Prune(ctx, p, now)
}

// Scan implements switchboard.Store.
func (f *FaultStore) Scan(ctx context.Context, req switchboard.ScanRequest) (switchboard.ScanResult, error) {
	if err := f.check(req.Partition); err != nil {
		return switchboard.ScanResult{}, err
	}
	return f.Store.Scan(ctx, req)
}

// DeleteMatching implements switchboard.Store.
func (f *FaultStore) DeleteMatching(ctx context.Context, req switchboard.DeleteRequest) (switchboard.DeleteStats, error) {
	if err := f.check(req.Partition); err != nil {
		return switchboard.DeleteStats{}, err
	}
	return f.Store.DeleteMatching(ctx, req)
}

// Stat implements switchboard.Store: a broken partition is reported with
// Owner FaultOwner and Available false.
func (f *FaultStore) Stat(ctx context.Context, p int) (switchboard.StoreStatus, error) {
	if err := f.check(p); err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return switchboard.StoreStatus{}, cerr
		}
		return switchboard.StoreStatus{Owner: FaultOwner}, nil
	}
	return f.Store.Stat(ctx, p)
}
