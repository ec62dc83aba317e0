package redisstore

import (
	"context"
	"sync/atomic"
	"time"
)

// deadlines bounds each call to the Store by a timeout without a timer per
// call where it can. A call whose context can never be cancelled
// (ctx.Done() is nil: context.Background and TODO, and what WithValue and
// WithoutCancel derive from them) shares one deadline context with the
// calls that start near it: it is replaced once less than the timeout is
// left on it, so such a call is bounded by the timeout to 17/16 of it from
// its start. A call whose context can be cancelled gets its own
// context.WithTimeout (its cancellation must reach the call); one whose
// own deadline comes sooner keeps it. A context.WithTimeout per call cost
// a Resolve hit 5 of its 10 allocations and about a sixth of its
// throughput at 64 callers.
type deadlines struct {
	timeout time.Duration
	now     func() time.Time
	cur     atomic.Pointer[sharedDeadline]
}

// sharedDeadline is a context with deadline at (its timer releases it then).
type sharedDeadline struct {
	ctx    context.Context
	cancel context.CancelFunc
	at     time.Time
}

func noCancel() {}

// bound returns ctx bounded by d.timeout and what releases it.
func (d *deadlines) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	now := d.now()
	if at, ok := ctx.Deadline(); ok && at.Sub(now) <= d.timeout {
		return ctx, noCancel
	}
	if ctx.Done() != nil {
		return context.WithTimeout(ctx, d.timeout)
	}
	sh := d.cur.Load()
	if sh == nil || sh.at.Sub(now) < d.timeout {
		at := now.Add(d.timeout + d.timeout/16)
		c, cancel := context.WithDeadline(context.Background(), at)
		next := &sharedDeadline{ctx: c, cancel: cancel, at: at}
		// On a lost race the winner serves the calls after this one; this
		// call uses its own, which its timer releases.
		d.cur.CompareAndSwap(sh, next)
		sh = next
	}
	if ctx == context.Background() || ctx == context.TODO() {
		return sh.ctx, noCancel
	}
	return &withValues{Context: sh.ctx, values: ctx}, noCancel
}

// release stops the current shared deadline's timer: for Close, when no
// call is left to use it.
func (d *deadlines) release() {
	if sh := d.cur.Swap(nil); sh != nil {
		sh.cancel()
	}
}

// withValues is a shared deadline context carrying one call's values (a
// tracing span, for example) for the client's hooks.
type withValues struct {
	context.Context // the shared deadline: Deadline, Done, Err
	values          context.Context
}

func (c *withValues) Value(key any) any { return c.values.Value(key) }
