package main

import (
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/switchboard-go/switchboard/bench"
	"github.com/switchboard-go/switchboard/internal/loadgen"
)

// TestRenders draws both charts from small results files and checks they
// are valid PNG images.
func TestRenders(t *testing.T) {
	dir := t.TempDir()
	res := bench.Results{GOMAXPROCS: 2, LiveKeys: 100, Rows: []bench.Result{
		{Workload: "get_hit/parallel", Target: "switchboard", OpsPerSec: 8e6},
		{Workload: "get_hit/parallel", Target: "otter", OpsPerSec: 7e6},
		{Workload: "set_overwrite/parallel", Target: "switchboard", OpsPerSec: 5e6},
		{Workload: "set_overwrite/parallel", Target: "otter", OpsPerSec: 4e6},
		{Workload: "get_hit/serial", Target: "otter", OpsPerSec: 3e6},
	}}
	write := func(name string, v any) string {
		data, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	compare := write("compare.json", res)
	lat := func(target string, base int64) string {
		return write(target+".json", loadgen.Summary{Target: target, Ops: map[string]loadgen.OpStats{
			"resolve": {Count: 10, P50: base, P90: 2 * base, P99: 5 * base, P999: 9 * base}}})
	}
	out := filepath.Join(dir, "img")
	if err := run([]string{"-compare", compare, "-latency", lat("embedded", 500) + "," + lat("server", 90_000), "-out", out}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"throughput.png", "latency.png"} {
		f, err := os.Open(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if b := img.Bounds(); b.Dx() < 300 || b.Dy() < 200 {
			t.Fatalf("%s is %v", name, b)
		}
	}
	if err := run([]string{"-compare", filepath.Join(dir, "missing.json"), "-out", out}); err == nil {
		t.Fatal("a missing results file: want an error")
	}
}
