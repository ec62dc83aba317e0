package redisstore

import (
	"context"
	"sync"
	"testing"
	"time"
)

type ctxKey struct{}

func TestDeadlinesBound(t *testing.T) {
	const timeout = 160 * time.Millisecond
	cancelled, cancel := context.WithCancel(context.WithValue(context.Background(), ctxKey{}, "v"))
	defer cancel()
	soon, cancelSoon := context.WithTimeout(context.Background(), timeout/2)
	defer cancelSoon()
	late, cancelLate := context.WithTimeout(context.Background(), 10*timeout)
	defer cancelLate()
	for _, tt := range []struct {
		name   string
		ctx    context.Context
		shared bool   // bounded by the shared deadline
		same   bool   // returned as it is
		value  string // what Value(ctxKey{}) must give
	}{
		{name: "background", ctx: context.Background(), shared: true},
		{name: "todo", ctx: context.TODO(), shared: true},
		{name: "values", ctx: context.WithValue(context.Background(), ctxKey{}, "v"), shared: true, value: "v"},
		{name: "without cancel", ctx: context.WithoutCancel(cancelled), shared: true, value: "v"},
		{name: "cancellable", ctx: cancelled, value: "v"},
		{name: "sooner deadline", ctx: soon, same: true},
		{name: "later deadline", ctx: late},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := &deadlines{timeout: timeout, now: time.Now}
			defer d.release()
			start := time.Now()
			ctx, release := d.bound(tt.ctx)
			defer release()
			at, ok := ctx.Deadline()
			switch {
			case !ok:
				t.Fatal("no deadline")
			case tt.same:
				if ctx != tt.ctx {
					t.Fatal("a context whose deadline comes sooner was replaced")
				}
			case at.Before(start.Add(timeout)) || at.After(time.Now().Add(timeout+timeout/16)):
				t.Fatalf("deadline %v after the call, want %v to %v", at.Sub(start), timeout, timeout+timeout/16)
			}
			if got := d.cur.Load() != nil && d.cur.Load().ctx.Done() == ctx.Done(); got != tt.shared {
				t.Fatalf("shared deadline used: %v, want %v", got, tt.shared)
			}
			if got, _ := ctx.Value(ctxKey{}).(string); got != tt.value {
				t.Fatalf("Value = %q, want %q", got, tt.value)
			}
			if ctx.Err() != nil {
				t.Fatalf("Err = %v before the deadline", ctx.Err())
			}
		})
	}
}

// TestDeadlinesRenew moves the clock through a shared deadline's life: it
// serves the calls that start while at least the timeout is left on it,
// and the next call gets a new one; every call is bounded by the timeout
// to 17/16 of it.
func TestDeadlinesRenew(t *testing.T) {
	const timeout = 160 * time.Millisecond
	base := time.Now()
	var offset time.Duration
	d := &deadlines{timeout: timeout, now: func() time.Time { return base.Add(offset) }}
	defer d.release()
	var first <-chan struct{}
	for _, tt := range []struct {
		offset time.Duration
		same   bool // the first call's shared context
	}{
		{0, true},
		{timeout / 32, true},
		{timeout / 16, true}, // exactly the timeout left
		{timeout/16 + time.Nanosecond, false},
	} {
		offset = tt.offset
		ctx, release := d.bound(context.Background())
		release()
		if first == nil {
			first = ctx.Done()
		}
		if got := ctx.Done() == first; got != tt.same {
			t.Fatalf("at +%v: the first shared context: %v, want %v", tt.offset, got, tt.same)
		}
		at, _ := ctx.Deadline()
		if left := at.Sub(base.Add(offset)); left < timeout || left > timeout+timeout/16 {
			t.Fatalf("at +%v: %v left, want %v to %v", tt.offset, left, timeout, timeout+timeout/16)
		}
	}
	// release cancels the current shared context (the replaced one is
	// released by its own timer).
	cur := d.cur.Load().ctx
	d.release()
	if cur.Err() == nil {
		t.Fatal("release left the shared context running")
	}
	if d.cur.Load() != nil {
		t.Fatal("release left a shared context")
	}
}

func TestDeadlinesConcurrent(t *testing.T) {
	const timeout = 100 * time.Millisecond
	d := &deadlines{timeout: timeout, now: time.Now}
	defer d.release()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				start := time.Now()
				ctx, release := d.bound(context.Background())
				at, _ := ctx.Deadline()
				release()
				if at.Before(start.Add(timeout)) {
					t.Errorf("deadline %v after the call, want at least %v", at.Sub(start), timeout)
					return
				}
			}
		})
	}
	wg.Wait()
}
