package switchboard

import (
	"fmt"
	"runtime"
	"time"
)

// Limits on Config values and TTLs. Values above them are ErrInvalidConfig
// (or ErrInvalidTTL for WithTTL).
const (
	// MaxPartitionCount is the largest accepted Config.PartitionCount.
	MaxPartitionCount = 1 << 16
	// MaxEntriesLimit is the largest accepted Config.MaxEntriesPerPartition.
	MaxEntriesLimit = 1 << 30
	// MaxTTL is the largest accepted TTL, in Config and in WithTTL.
	MaxTTL = 10 * 365 * 24 * time.Hour
)

// Config holds the session-manager settings. It is plain data: it maps one
// to one onto the server's configuration file and is merged by MergeConfig,
// where a zero field means "not set here, inherit".
type Config struct {
	// PartitionCount is the number of partitions route state is split into.
	// Default: max(2, 2*GOMAXPROCS) at the time DefaultConfig is called.
	PartitionCount int
	// TTL is how long a stored route stays fresh unless Set is given
	// WithTTL. Default: 30m.
	TTL time.Duration
	// MaxEntriesPerPartition bounds each partition; past it the least
	// recently written records are evicted. Default: 10000.
	MaxEntriesPerPartition int
	// PruneInterval is how often each partition deletes its expired records
	// in the background. Default: 30s.
	PruneInterval time.Duration
	// ProvisionalTTL is how long a route stored by Resolve (a thread's copy
	// of its room's route, or a caller's fallback) stays fresh: set it
	// short (such as 2m) and a guessed route that no delivery confirms soon
	// disappears, while Confirm gives it the full TTL. Default: 0, which
	// means TTL (the seed's behaviour); EffectiveProvisionalTTL says which
	// is in force.
	ProvisionalTTL time.Duration
}

// DefaultConfig returns the defaults documented on each Config field.
func DefaultConfig() Config {
	return Config{
		PartitionCount:         max(2, 2*runtime.GOMAXPROCS(0)),
		TTL:                    30 * time.Minute,
		MaxEntriesPerPartition: 10_000,
		PruneInterval:          30 * time.Second,
	}
}

// MergeConfig starts from DefaultConfig and lays each layer over it in
// order: a non-zero field replaces the value below it, a zero field inherits
// it. A negative field in any layer, or a value out of its range, is an
// error wrapping ErrInvalidConfig that names the field and the layer.
func MergeConfig(layers ...Config) (Config, error) {
	out := DefaultConfig()
	for i, l := range layers {
		if err := l.check(); err != nil {
			return Config{}, fmt.Errorf("%w (layer %d)", err, i)
		}
		if l.PartitionCount != 0 {
			out.PartitionCount = l.PartitionCount
		}
		if l.TTL != 0 {
			out.TTL = l.TTL
		}
		if l.MaxEntriesPerPartition != 0 {
			out.MaxEntriesPerPartition = l.MaxEntriesPerPartition
		}
		if l.PruneInterval != 0 {
			out.PruneInterval = l.PruneInterval
		}
		if l.ProvisionalTTL != 0 {
			out.ProvisionalTTL = l.ProvisionalTTL
		}
	}
	return out, nil
}

// EffectiveProvisionalTTL returns the TTL of routes stored by Resolve:
// ProvisionalTTL, or TTL when it is 0.
func (c Config) EffectiveProvisionalTTL() time.Duration {
	if c.ProvisionalTTL != 0 {
		return c.ProvisionalTTL
	}
	return c.TTL
}

// check validates the set (non-zero) fields of one layer.
func (c Config) check() error {
	switch {
	case c.PartitionCount < 0 || c.PartitionCount > MaxPartitionCount:
		return fmt.Errorf("%w: PartitionCount %d must be between 1 and %d", ErrInvalidConfig, c.PartitionCount, MaxPartitionCount)
	case c.TTL < 0 || c.TTL > MaxTTL || (c.TTL != 0 && c.TTL < MinTTL):
		return fmt.Errorf("%w: TTL %v must be between %v and %v", ErrInvalidConfig, c.TTL, MinTTL, MaxTTL)
	case c.ProvisionalTTL < 0 || c.ProvisionalTTL > MaxTTL || (c.ProvisionalTTL != 0 && c.ProvisionalTTL < MinTTL):
		return fmt.Errorf("%w: ProvisionalTTL %v must be between %v and %v", ErrInvalidConfig, c.ProvisionalTTL, MinTTL, MaxTTL)
	case c.MaxEntriesPerPartition < 0 || c.MaxEntriesPerPartition > MaxEntriesLimit:
		return fmt.Errorf("%w: MaxEntriesPerPartition %d must be between 1 and %d", ErrInvalidConfig, c.MaxEntriesPerPartition, MaxEntriesLimit)
	case c.PruneInterval < 0:
		return fmt.Errorf("%w: PruneInterval %v must be positive", ErrInvalidConfig, c.PruneInterval)
	}
	return nil
}
