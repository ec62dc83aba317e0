package storetest_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-go/switchboard"
	"github.com/switchboard-go/switchboard/storetest"
)

// Deliberately broken stores: each wraps a MemoryStore (behind the Store
// interface) and breaks one promise of the SPI. The suite must fail each
// of them, in the rule that states the promise.

// ignoresContext serves calls whatever their context.
type ignoresContext struct{ switchboard.Store }

func (s ignoresContext) Get(_ context.Context, k switchboard.StoreKey, now time.Time) (switchboard.Record, error) {
	return s.Store.Get(context.Background(), k, now)
}
func (s ignoresContext) Set(_ context.Context, req switchboard.SetRequest) (switchboard.SetResult, error) {
	return s.Store.Set(context.Background(), req)
}
func (s ignoresContext) Delete(_ context.Context, k switchboard.StoreKey) (int, error) {
	return s.Store.Delete(context.Background(), k)
}

// answersAfterClose keeps serving after Close.
type answersAfterClose struct{ switchboard.Store }

func (answersAfterClose) Close() error { return nil }

// wrongSizes reports one record too many after a Set.
type wrongSizes struct{ switchboard.Store }

func (s wrongSizes) Set(ctx context.Context, req switchboard.SetRequest) (switchboard.SetResult, error) {
	res, err := s.Store.Set(ctx, req)
	res.Size++
	return res, err
}

// lastWriteWins ignores write precedence: a refused Set deletes the
// record and writes anyway.
type lastWriteWins struct{ switchboard.Store }

func (s lastWriteWins) Set(ctx context.Context, req switchboard.SetRequest) (switchboard.SetResult, error) {
	res, err := s.Store.Set(ctx, req)
	if err == nil && res.Outcome == switchboard.SetSuperseded {
		_, _ = s.Store.Delete(ctx, req.Key)
		return s.Store.Set(ctx, req)
	}
	return res, err
}

// breaksEverything makes every partition unavailable when one is broken.
type breaksEverything struct{ *storetest.FaultStore }

func (s breaksEverything) BreakPartition(int) {
	for p := range 64 {
		s.FaultStore.BreakPartition(p)
	}
}

var brokenStores = map[string]struct {
	store func() switchboard.Store
	rule  string // the subtest that must fail
}{
	"none (control)":      {func() switchboard.Store { return opaque{switchboard.NewMemoryStore()} }, ""},
	"ignores its context": {func() switchboard.Store { return ignoresContext{switchboard.NewMemoryStore()} }, "Store/DoneContext"},
	"answers after Close": {func() switchboard.Store { return answersAfterClose{switchboard.NewMemoryStore()} }, "Store/AfterClose"},
	"reports wrong sizes": {func() switchboard.Store { return wrongSizes{switchboard.NewMemoryStore()} }, "Store/SetResults"},
	"last write wins":     {func() switchboard.Store { return lastWriteWins{switchboard.NewMemoryStore()} }, "Trust/Precedence"},
	"breaks every partition": {func() switchboard.Store {
		return breaksEverything{storetest.NewFaultStore(switchboard.NewMemoryStore())}
	}, "Faults/UnavailablePartition"},
}

// opaque hides the MemoryStore behind the interface, as the broken ones do.
type opaque struct{ switchboard.Store }

// TestBrokenStoresFail runs the suite, in a child process, against each
// broken store and checks that the rule it breaks fails (and that the
// unbroken control passes every rule those cover).
func TestBrokenStoresFail(t *testing.T) {
	var rules []string
	for _, b := range brokenStores {
		if b.rule != "" {
			rules = append(rules, b.rule)
		}
	}
	for name, b := range brokenStores {
		t.Run(name, func(t *testing.T) {
			want := []string{b.rule}
			if b.rule == "" {
				want = rules
			}
			for _, rule := range want {
				group, sub, _ := strings.Cut(rule, "/")
				cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenStoreChild$/^"+group+"$/^"+sub+"$", "-test.v", "-test.count=1")
				cmd.Env = append(os.Environ(), "STORETEST_BROKEN="+name)
				out, err := cmd.CombinedOutput()
				failed := strings.Contains(string(out), "--- FAIL: TestBrokenStoreChild/"+rule)
				ran := strings.Contains(string(out), "TestBrokenStoreChild/"+rule)
				switch {
				case !ran:
					t.Fatalf("the child did not run %s:\n%s", rule, out)
				case b.rule == "" && (err != nil || failed):
					t.Fatalf("the unbroken control fails %s:\n%s", rule, out)
				case b.rule != "" && (err == nil || !failed):
					t.Fatalf("the suite passes a store that %s (rule %s):\n%s", name, rule, out)
				}
			}
		})
	}
}

// TestBrokenStoreChild is the child of TestBrokenStoresFail: it runs only
// when STORETEST_BROKEN names a broken store.
func TestBrokenStoreChild(t *testing.T) {
	name := os.Getenv("STORETEST_BROKEN")
	b, ok := brokenStores[name]
	if !ok {
		t.Skip("runs only as the child process of TestBrokenStoresFail")
	}
	storetest.Run(t, func(*testing.T) switchboard.Store { return b.store() })
}
