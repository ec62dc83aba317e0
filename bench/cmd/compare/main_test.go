package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/switchboard-go/switchboard/bench"
)

// TestRun runs two targets on one workload for three short rounds and
// checks the table, the results file, and that the rounds after the first
// ran one fixed operation count per case (the count the first round's
// calibration found) instead of calibrating again.
func TestRun(t *testing.T) {
	testing.Init()
	if old := flag.Lookup("test.benchtime"); old != nil {
		prev := old.Value.String()
		t.Cleanup(func() { _ = flag.Set("test.benchtime", prev) })
	}
	out := filepath.Join(t.TempDir(), "compare.json")
	var stdout, stderr bytes.Buffer
	err := run([]string{"-rounds", "3", "-benchtime", "20ms", "-o", out,
		"-workload", "get_hit/serial,set_overwrite/parallel", "-target", "switchboard,otter"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\nstderr:\n%s", err, stderr.String())
	}

	// round -> "workload target" -> ops
	ops := map[string]map[string]int{}
	for line := range strings.Lines(stderr.String()) {
		f := strings.Fields(line)
		if len(f) < 7 || f[0] != "round" || f[len(f)-1] != "ops" {
			continue
		}
		n, err := strconv.Atoi(f[len(f)-2])
		if err != nil || n <= 0 {
			t.Fatalf("progress line %q: want a positive op count", line)
		}
		if ops[f[1]] == nil {
			ops[f[1]] = map[string]int{}
		}
		ops[f[1]][f[2]+" "+strings.Join(f[3:len(f)-4], " ")] = n
	}
	if len(ops) != 3 {
		t.Fatalf("progress of %d rounds, want 3:\n%s", len(ops), stderr.String())
	}
	for c, n := range ops["2/3"] {
		if ops["3/3"][c] != n {
			t.Errorf("%s: rounds 2 and 3 ran %d and %d operations, want the same fixed count", c, n, ops["3/3"][c])
		}
	}
	if len(ops["2/3"]) != 4 {
		t.Errorf("round 2 ran %d cases, want 4: %v", len(ops["2/3"]), ops["2/3"])
	}

	if !strings.Contains(stdout.String(), "median ns/op") || !strings.Contains(stdout.String(), "3 rounds of 20ms") {
		t.Errorf("table:\n%s", stdout.String())
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var res bench.Results
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatal(err)
	}
	if res.Rounds != 3 || len(res.Rows) != 4 {
		t.Fatalf("results: %d rounds, %d rows; want 3 and 4", res.Rounds, len(res.Rows))
	}
	for _, r := range res.Rows {
		if len(r.Rounds) != 3 || r.MedianNs <= 0 || r.OpsPerSec <= 0 {
			t.Errorf("row %s/%s: %d rounds, median %v ns, %v ops/s", r.Workload, r.Target, len(r.Rounds), r.MedianNs, r.OpsPerSec)
		}
	}
}
