// Package loadgen is the load generator behind switchboard bench: a
// deterministic workload of session keys and operations, run by many
// workers against any switchboard.Router (an embedded Manager or the HTTP
// client), measured with HDR histograms.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/switchboard-go/switchboard"
	"github.com/switchboard-go/switchboard/client"
	"github.com/switchboard-go/switchboard/internal/wire"
)

// Op is one kind of operation.
type Op int

// The operations of a workload.
const (
	OpSet Op = iota
	OpGet
	OpResolve
)

var opNames = [...]string{"set", "get", "resolve"}

func (o Op) String() string { return opNames[o] }

// Mix is the relative weight of each operation.
type Mix struct{ Set, Get, Resolve int }

// ParseMix parses "set:get:resolve" weights such as "10:10:80".
func ParseMix(s string) (Mix, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return Mix{}, fmt.Errorf("mix %q: want set:get:resolve weights such as 10:10:80", s)
	}
	var w [3]int
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return Mix{}, fmt.Errorf("mix %q: weight %q is not a non-negative integer", s, p)
		}
		w[i] = n
	}
	if w[0]+w[1]+w[2] == 0 {
		return Mix{}, fmt.Errorf("mix %q: the weights add up to zero", s)
	}
	return Mix{Set: w[0], Get: w[1], Resolve: w[2]}, nil
}

// Workload describes the keys and the operations on them.
type Workload struct {
	Keys        int     // live session keys
	ThreadRatio float64 // share of keys with a thread, 0..1
	Mix         Mix
	Seed        uint64
}

// Validate checks the workload's ranges.
func (w Workload) Validate() error {
	switch {
	case w.Keys <= 0:
		return fmt.Errorf("keys %d must be positive", w.Keys)
	case w.ThreadRatio < 0 || w.ThreadRatio > 1:
		return fmt.Errorf("thread ratio %v must be between 0 and 1", w.ThreadRatio)
	case w.Mix.Set < 0 || w.Mix.Get < 0 || w.Mix.Resolve < 0 || w.Mix.Set+w.Mix.Get+w.Mix.Resolve == 0:
		return fmt.Errorf("mix %+v must have non-negative weights, not all zero", w.Mix)
	}
	return nil
}

var channels = [...]string{"telegram", "slack", "discord", "matrix"}

// Key returns the i-th key of the workload; the same seed always gives the
// same keys.
func (w Workload) Key(i int) switchboard.SessionKey {
	x := mix64(w.Seed ^ mix64(uint64(i)+0x9e3779b97f4a7c15))
	k := switchboard.SessionKey{
		ChannelType: channels[x%uint64(len(channels))],
		BridgeID:    "bot_" + strconv.FormatUint((x>>8)%16, 10),
		RoomID:      "room_" + strconv.Itoa(i),
	}
	if float64(x>>40)/float64(1<<24) < w.ThreadRatio {
		k.ThreadID = "t_" + strconv.Itoa(i%97)
	}
	return k
}

// mix64 is the splitmix64 finalizer: a well-spread 64-bit hash of x.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// Stream is one worker's deterministic sequence of operations.
type Stream struct {
	w     Workload
	rng   *rand.Rand
	total int
}

// Stream returns the operation sequence of worker n.
func (w Workload) Stream(n int) *Stream {
	return &Stream{w: w, rng: rand.New(rand.NewPCG(w.Seed, uint64(n)+1)), total: w.Mix.Set + w.Mix.Get + w.Mix.Resolve}
}

// Next returns the next operation and the index of its key.
func (s *Stream) Next() (Op, int) {
	r := s.rng.IntN(s.total)
	op := OpResolve
	switch {
	case r < s.w.Mix.Set:
		op = OpSet
	case r < s.w.Mix.Set+s.w.Mix.Get:
		op = OpGet
	}
	return op, s.rng.IntN(s.w.Keys)
}

// Options controls a run.
type Options struct {
	Concurrency int           // workers; default 1
	Duration    time.Duration // measured time; 0 with Ops > 0 means "until Ops"
	Ops         int64         // measured operations; 0 means "for Duration"
	Warmup      time.Duration // unmeasured mixed load after the preload
	// Progress, when not nil, is called about every 100ms with the
	// measured operations done so far.
	Progress func(done int64)
}

// OpStats summarizes one operation kind. Latencies are in nanoseconds.
type OpStats struct {
	Count     int64   `json:"count"`
	Errors    int64   `json:"errors"`
	OpsPerSec float64 `json:"ops_per_sec"`
	P50       int64   `json:"p50_ns"`
	P90       int64   `json:"p90_ns"`
	P99       int64   `json:"p99_ns"`
	P999      int64   `json:"p999_ns"`
	Max       int64   `json:"max_ns"`
}

// Summary is the result of a run.
type Summary struct {
	Target      string             `json:"target"`
	Concurrency int                `json:"concurrency"`
	Keys        int                `json:"keys"`
	Elapsed     time.Duration      `json:"elapsed_ns"`
	Stopped     bool               `json:"stopped_early"` // interrupted before the planned end
	Total       OpStats            `json:"total"`
	Ops         map[string]OpStats `json:"ops"`
	Errors      map[string]int64   `json:"errors"`  // by error code
	Sources     map[string]int64   `json:"sources"` // resolution sources seen
	Reasons     map[string]int64   `json:"reasons"` // fallback reasons seen
}

// worker state: one histogram per operation, counts, errors.
type worker struct {
	hist    [3]*hdrhistogram.Histogram
	errs    [3]int64
	codes   map[string]int64
	sources map[string]int64
	reasons map[string]int64
}

const maxLatency = int64(10 * time.Second)

func newWorker() *worker {
	w := &worker{codes: map[string]int64{}, sources: map[string]int64{}, reasons: map[string]int64{}}
	for i := range w.hist {
		w.hist[i] = hdrhistogram.New(1, maxLatency, 3)
	}
	return w
}

// Code returns the API error code of err ("not_found", …).
func Code(err error) string {
	var ce *client.Error
	if errors.As(err, &ce) {
		return ce.Code
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return "timeout"
	}
	return wire.CodeOf(err)
}

// Run preloads every key of w into target, warms up, then runs the
// measured load until opts.Duration or opts.Ops is reached or ctx ends
// (then Summary.Stopped is set and the summary covers what ran).
func Run(ctx context.Context, target switchboard.Router, w Workload, opts Options) (Summary, error) {
	if err := w.Validate(); err != nil {
		return Summary{}, err
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 1
	}
	if opts.Duration <= 0 && opts.Ops <= 0 {
		return Summary{}, errors.New("give a duration or a number of operations")
	}
	r := &run{target: target, w: w, opts: opts}
	if err := r.preload(ctx); err != nil && ctx.Err() == nil {
		return Summary{}, err
	}
	r.warmup(ctx)
	workers, elapsed := r.measure(ctx)
	s := summarize(workers, elapsed, opts.Concurrency, w.Keys)
	s.Stopped = ctx.Err() != nil
	return s, nil
}

// run is one load-generator run.
type run struct {
	target switchboard.Router
	w      Workload
	opts   Options
}

func route(i int) switchboard.Route {
	return switchboard.Route{ExternalRoomID: "ext_" + strconv.Itoa(i)}
}

// preload gives every key a route, split over the workers.
func (r *run) preload(ctx context.Context) error {
	var next atomic.Int64
	var preloadErr error
	var once sync.Once
	var wg sync.WaitGroup
	for range r.opts.Concurrency {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= r.w.Keys || ctx.Err() != nil {
					return
				}
				if err := r.target.Set(ctx, r.w.Key(i), route(i)); err != nil {
					once.Do(func() { preloadErr = fmt.Errorf("preload key %d: %w", i, err) })
					return
				}
			}
		})
	}
	wg.Wait()
	return preloadErr
}

// one runs the next operation of st, measured into wk (nil: unmeasured).
func (r *run) one(ctx context.Context, st *Stream, wk *worker) {
	op, i := st.Next()
	k := r.w.Key(i)
	start := time.Now()
	var err error
	var res switchboard.Resolution
	switch op {
	case OpSet:
		err = r.target.Set(ctx, k, route(i))
	case OpGet:
		_, err = r.target.Get(ctx, k)
	case OpResolve:
		res, err = r.target.Resolve(ctx, k, route(i))
	}
	if wk == nil || err != nil && ctx.Err() != nil {
		return // warmup, or cut off by the end of the run: not measured
	}
	_ = wk.hist[op].RecordValue(min(int64(time.Since(start)), maxLatency))
	if err != nil {
		wk.errs[op]++
		wk.codes[Code(err)]++
		return
	}
	if op == OpResolve {
		wk.sources[string(res.Source)]++
		if res.FallbackReason != "" {
			wk.reasons[string(res.FallbackReason)]++
		}
	}
}

// warmup runs the same mix, unmeasured, for opts.Warmup.
func (r *run) warmup(ctx context.Context) {
	if r.opts.Warmup <= 0 {
		return
	}
	wctx, cancel := context.WithTimeout(ctx, r.opts.Warmup)
	defer cancel()
	var wg sync.WaitGroup
	for n := range r.opts.Concurrency {
		wg.Go(func() {
			st := r.w.Stream(r.opts.Concurrency + n)
			for wctx.Err() == nil {
				r.one(wctx, st, nil)
			}
		})
	}
	wg.Wait()
}

// measure runs the measured phase, reporting progress, and returns the
// workers' measurements and how long it took.
func (r *run) measure(ctx context.Context) ([]*worker, time.Duration) {
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if r.opts.Duration > 0 {
		runCtx, cancel = context.WithTimeout(ctx, r.opts.Duration)
		defer cancel()
	}
	var done atomic.Int64
	var wg sync.WaitGroup
	workers := make([]*worker, r.opts.Concurrency)
	start := time.Now()
	for n := range r.opts.Concurrency {
		workers[n] = newWorker()
		wg.Go(func() {
			st := r.w.Stream(n)
			for runCtx.Err() == nil {
				// With an operation budget each worker claims its operation
				// first and stops when the budget is spent; nothing is
				// cancelled, so an operation that claimed the last slot
				// always completes and is counted.
				if r.opts.Ops > 0 && done.Add(1) > r.opts.Ops {
					return
				}
				if r.opts.Ops <= 0 {
					done.Add(1)
				}
				r.one(runCtx, st, workers[n])
			}
		})
	}
	if r.opts.Progress != nil {
		r.report(&wg, &done)
	}
	wg.Wait()
	return workers, time.Since(start)
}

// report calls opts.Progress every 100ms until the workers are done.
func (r *run) report(wg *sync.WaitGroup, done *atomic.Int64) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	for {
		select {
		case <-finished:
			return
		case <-tick.C:
			n := done.Load()
			if r.opts.Ops > 0 {
				n = min(n, r.opts.Ops)
			}
			r.opts.Progress(n)
		}
	}
}

func summarize(workers []*worker, elapsed time.Duration, concurrency, keys int) Summary {
	s := Summary{Concurrency: concurrency, Keys: keys, Elapsed: elapsed, Ops: map[string]OpStats{},
		Errors: map[string]int64{}, Sources: map[string]int64{}, Reasons: map[string]int64{}}
	all := hdrhistogram.New(1, maxLatency, 3)
	var allErrs int64
	for op := range opNames {
		h := hdrhistogram.New(1, maxLatency, 3)
		var errs int64
		for _, wk := range workers {
			h.Merge(wk.hist[op])
			errs += wk.errs[op]
		}
		all.Merge(h)
		allErrs += errs
		if h.TotalCount() > 0 {
			s.Ops[opNames[op]] = stats(h, errs, elapsed)
		}
	}
	s.Total = stats(all, allErrs, elapsed)
	for _, wk := range workers {
		for k, v := range wk.codes {
			s.Errors[k] += v
		}
		for k, v := range wk.sources {
			s.Sources[k] += v
		}
		for k, v := range wk.reasons {
			s.Reasons[k] += v
		}
	}
	return s
}

func stats(h *hdrhistogram.Histogram, errs int64, elapsed time.Duration) OpStats {
	return OpStats{
		Count: h.TotalCount(), Errors: errs, OpsPerSec: float64(h.TotalCount()) / elapsed.Seconds(),
		P50: h.ValueAtQuantile(50), P90: h.ValueAtQuantile(90), P99: h.ValueAtQuantile(99),
		P999: h.ValueAtQuantile(99.9), Max: h.Max(),
	}
}

// Names returns the keys of m sorted, for stable output.
func Names(m map[string]int64) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
