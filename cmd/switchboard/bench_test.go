package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/switchboard-go/switchboard/internal/loadgen"
)

// TestE2EBench runs switchboard bench for 2s against the embedded Manager
// and against a running server, and checks that the summary parses and
// its counts add up.
func TestE2EBench(t *testing.T) {
	addr := freeAddr(t)
	startServe(t, addr, nil)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"embedded", []string{"--keys", "5000"}},
		{"server", []string{"--server", "http://" + addr, "--keys", "500", "--concurrency", "4"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"bench", "--duration", "2s", "--warmup", "200ms", "--seed", "3", "-o", "json"}, tc.args...)
			out, errOut, code := cli(t, nil, args...)
			if code != 0 {
				t.Fatalf("bench: exit %d\n%s", code, errOut)
			}
			var s loadgen.Summary
			if err := json.Unmarshal([]byte(out), &s); err != nil {
				t.Fatalf("summary does not parse: %v\n%s", err, out)
			}
			var sum, errs int64
			for _, op := range []string{"set", "get", "resolve"} {
				st := s.Ops[op]
				if st.Count == 0 || st.P50 <= 0 || st.P50 > st.P99 || st.P99 > st.Max || st.OpsPerSec <= 0 {
					t.Fatalf("%s: %+v", op, st)
				}
				sum += st.Count
				errs += st.Errors
			}
			if sum != s.Total.Count || errs != s.Total.Errors || s.Total.Errors != 0 {
				t.Fatalf("counts %d (errors %d) vs total %+v; errors by code %v", sum, errs, s.Total, s.Errors)
			}
			var sources int64
			for _, n := range s.Sources {
				sources += n
			}
			if sources != s.Ops["resolve"].Count {
				t.Fatalf("sources %v for %d resolves", s.Sources, s.Ops["resolve"].Count)
			}
			if s.Elapsed.Seconds() < 1.9 || s.Elapsed.Seconds() > 4 {
				t.Fatalf("elapsed %v for --duration 2s", s.Elapsed)
			}
		})
	}
	// The text summary too.
	out, errOut, code := cli(t, nil, "bench", "--ops", "20000", "--keys", "1000", "--warmup", "0s")
	if code != 0 || !strings.Contains(out, "resolve") || !strings.Contains(out, "p99.9") || !strings.Contains(errOut, "preloading") {
		t.Fatalf("text bench: exit %d\n%s\n%s", code, out, errOut)
	}
	if _, errOut, code := cli(t, nil, "bench", "--mix", "1:2"); code != 2 || !strings.Contains(errOut, "mix") {
		t.Fatalf("bad mix: exit %d %q", code, errOut)
	}
}
