// Command charts draws the benchmark charts of docs/benchmarks.md from the
// results files, with gonum.org/v1/plot:
//
//	cd bench && go run ./cmd/charts -compare results/compare.json \
//	    -latency results/latency-embedded.json,results/latency-server.json,results/latency-redis.json \
//	    -out ../docs/img
//
// It writes throughput.png (ops/s per library per workload, from
// cmd/compare) and latency.png (resolve latency percentiles of switchboard
// bench per target, from its -o json summaries).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/switchboard-go/switchboard/bench"
	"github.com/switchboard-go/switchboard/internal/loadgen"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "charts:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("charts", flag.ContinueOnError)
	compare := fs.String("compare", "results/compare.json", "results file of cmd/compare")
	latency := fs.String("latency", "", "comma-separated switchboard bench -o json summaries")
	out := fs.String("out", "../docs/img", "directory for the PNG files")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	var res bench.Results
	if err := readJSON(*compare, &res); err != nil {
		return err
	}
	if err := throughput(res, filepath.Join(*out, "throughput.png")); err != nil {
		return err
	}
	if *latency == "" {
		return nil
	}
	var sums []loadgen.Summary
	for _, f := range strings.Split(*latency, ",") {
		var s loadgen.Summary
		if err := readJSON(f, &s); err != nil {
			return err
		}
		sums = append(sums, s)
	}
	return latencies(sums, filepath.Join(*out, "latency.png"))
}

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// throughput draws one group of bars per parallel workload, one bar per
// target, in millions of ops/s.
func throughput(res bench.Results, path string) error {
	var workloads, targets []string
	value := map[[2]string]float64{}
	for _, r := range res.Rows {
		if !strings.HasSuffix(r.Workload, "/parallel") {
			continue
		}
		w := strings.TrimSuffix(r.Workload, "/parallel")
		if !slices.Contains(workloads, w) {
			workloads = append(workloads, w)
		}
		if !slices.Contains(targets, r.Target) {
			targets = append(targets, r.Target)
		}
		value[[2]string{w, r.Target}] = r.OpsPerSec / 1e6
	}
	if len(workloads) == 0 {
		return fmt.Errorf("no parallel workloads in the results")
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Throughput under RunParallel (%d live keys, GOMAXPROCS=%d)", res.LiveKeys, res.GOMAXPROCS)
	p.Y.Label.Text = "million ops/s (higher is better)"
	width := vg.Points(60 / float64(len(targets)))
	for i, t := range targets {
		vals := make(plotter.Values, len(workloads))
		for j, w := range workloads {
			vals[j] = value[[2]string{w, t}]
		}
		bars, err := plotter.NewBarChart(vals, width)
		if err != nil {
			return err
		}
		bars.LineStyle.Width = vg.Length(0)
		bars.Color = plotutil.Color(i)
		bars.Offset = width * vg.Length(float64(i)-float64(len(targets)-1)/2)
		p.Add(bars)
		p.Legend.Add(t, bars)
	}
	p.Legend.Top = true
	p.NominalX(workloads...)
	return p.Save(9*vg.Inch, 5*vg.Inch, path)
}

// latencies draws resolve latency percentiles per target, one line each,
// on a log scale.
func latencies(sums []loadgen.Summary, path string) error {
	p := plot.New()
	p.Title.Text = "switchboard bench: resolve latency percentiles"
	p.Y.Label.Text = "microseconds (log scale, lower is better)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	for i, s := range sums {
		st, ok := s.Ops["resolve"]
		if !ok {
			return fmt.Errorf("summary of %q has no resolve operations", s.Target)
		}
		pts := make(plotter.XYs, 4)
		for j, ns := range []int64{st.P50, st.P90, st.P99, st.P999} {
			pts[j] = plotter.XY{X: float64(j), Y: max(float64(ns)/1e3, 0.01)}
		}
		line, points, err := plotter.NewLinePoints(pts)
		if err != nil {
			return err
		}
		line.Color, points.Color = plotutil.Color(i), plotutil.Color(i)
		points.Shape = plotutil.Shape(i)
		p.Add(line, points)
		p.Legend.Add(s.Target, line, points)
	}
	p.Legend.Top = true
	p.NominalX("p50", "p90", "p99", "p99.9")
	return p.Save(9*vg.Inch, 5*vg.Inch, path)
}
