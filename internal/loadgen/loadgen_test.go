package loadgen

import (
	"context"
	"math"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/switchboard-go/switchboard"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParseMix(t *testing.T) {
	tests := []struct {
		in   string
		want Mix
		ok   bool
	}{
		{"10:10:80", Mix{10, 10, 80}, true},
		{"0:0:1", Mix{0, 0, 1}, true},
		{"1:2", Mix{}, false},
		{"a:b:c", Mix{}, false},
		{"-1:1:1", Mix{}, false},
		{"0:0:0", Mix{}, false},
	}
	for _, tt := range tests {
		got, err := ParseMix(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseMix(%q) = %+v, %v", tt.in, got, err)
		}
	}
}

func TestKeysAreDeterministic(t *testing.T) {
	a := Workload{Keys: 1000, ThreadRatio: 0.3, Mix: Mix{1, 1, 1}, Seed: 7}
	b := a
	c := a
	c.Seed = 8
	threads, differ := 0, 0
	seen := map[switchboard.SessionKey]bool{}
	for i := range a.Keys {
		ka := a.Key(i)
		if ka != b.Key(i) {
			t.Fatalf("key %d differs for the same seed", i)
		}
		if ka != c.Key(i) {
			differ++
		}
		if err := ka.Validate(); err != nil {
			t.Fatal(err)
		}
		if seen[ka] {
			t.Fatalf("key %v repeats", ka)
		}
		seen[ka] = true
		if ka.ThreadID != "" {
			threads++
		}
	}
	if differ < 900 {
		t.Fatalf("only %d of 1000 keys differ between seeds", differ)
	}
	if math.Abs(float64(threads)/1000-0.3) > 0.05 {
		t.Fatalf("%d of 1000 keys have threads, want about 300", threads)
	}
}

func TestStreamMixAndDeterminism(t *testing.T) {
	w := Workload{Keys: 500, Mix: Mix{10, 10, 80}, Seed: 42}
	s1, s2, other := w.Stream(3), w.Stream(3), w.Stream(4)
	counts := [3]int{}
	same := 0
	const n = 100_000
	for range n {
		op, k := s1.Next()
		op2, k2 := s2.Next()
		if op != op2 || k != k2 {
			t.Fatal("the same worker's stream differs for the same seed")
		}
		if op3, k3 := other.Next(); op3 == op && k3 == k {
			same++
		}
		if k < 0 || k >= w.Keys {
			t.Fatalf("key index %d out of range", k)
		}
		counts[op]++
	}
	for op, want := range []float64{0.1, 0.1, 0.8} {
		if got := float64(counts[op]) / n; math.Abs(got-want) > 0.01 {
			t.Errorf("%s share %.3f, want %.2f ± 0.01", Op(op), got, want)
		}
	}
	if same > n/10 {
		t.Errorf("workers 3 and 4 agree on %d of %d operations", same, n)
	}
}

func TestRunAgainstManager(t *testing.T) {
	m, err := switchboard.New(switchboard.Config{PartitionCount: 4, MaxEntriesPerPartition: 10_000})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	w := Workload{Keys: 2000, ThreadRatio: 0.5, Mix: Mix{10, 10, 80}, Seed: 1}
	var progressed int64
	s, err := Run(context.Background(), m, w, Options{Concurrency: 4, Ops: 20_000, Warmup: 10 * time.Millisecond,
		Progress: func(n int64) { progressed = n }})
	if err != nil {
		t.Fatal(err)
	}
	if s.Total.Count != 20_000 || s.Total.Errors != 0 {
		t.Fatalf("total %+v, errors %v", s.Total, s.Errors)
	}
	var sum int64
	for _, op := range []string{"set", "get", "resolve"} {
		st, ok := s.Ops[op]
		if !ok || st.Count == 0 || st.P50 <= 0 || st.P50 > st.P99 || st.P99 > st.Max {
			t.Fatalf("%s stats %+v", op, st)
		}
		sum += st.Count
	}
	if sum != s.Total.Count {
		t.Fatalf("op counts add up to %d, total %d", sum, s.Total.Count)
	}
	var sources int64
	for _, n := range s.Sources {
		sources += n
	}
	if sources != s.Ops["resolve"].Count || s.Sources["state_hit"] == 0 {
		t.Fatalf("sources %v for %d resolves", s.Sources, s.Ops["resolve"].Count)
	}
	if progressed < 0 || progressed > 20_000 {
		t.Fatalf("progress %d", progressed)
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	m, err := switchboard.New(switchboard.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	s, err := Run(ctx, m, Workload{Keys: 100, Mix: Mix{1, 1, 1}, Seed: 1}, Options{Concurrency: 2, Duration: time.Hour})
	if err != nil || !s.Stopped || s.Total.Count == 0 {
		t.Fatalf("Run = %+v, %v; want a stopped run with a summary", s, err)
	}
}
