package switchboard

import "context"

// Router is the part of the Manager's method set that works the same in
// process and over the network: *Manager implements it, and so does the
// HTTP client in package client, so application code written against a
// Router can switch between an embedded Manager and a switchboard server.
type Router interface {
	Set(ctx context.Context, key SessionKey, r Route, opts ...SetOption) error
	Get(ctx context.Context, key SessionKey) (Record, error)
	Resolve(ctx context.Context, key SessionKey, fallbacks ...Route) (Resolution, error)
	Confirm(ctx context.Context, key SessionKey, delivered Route) (Record, error)
	Invalidate(ctx context.Context, key SessionKey, failed Route, reason string) error
	Explain(ctx context.Context, key SessionKey, fallbacks ...Route) (Explanation, error)
	Delete(ctx context.Context, key SessionKey) error
	List(ctx context.Context, f Filter, limit int, cursor string) ([]Entry, string, error)
	DeleteMatching(ctx context.Context, f Filter, dryRun bool) (DeleteResult, error)
	Prune(ctx context.Context) (PruneResult, error)
	PartitionStatus(ctx context.Context, partition int) (PartitionStatus, error)
}

var _ Router = (*Manager)(nil)
