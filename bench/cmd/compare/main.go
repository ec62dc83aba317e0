// Command compare runs Switchboard's memory backend and the caches it is
// compared with on the same workloads, interleaved over several rounds to
// even out machine noise, prints the median ns/op (and ops/s, misses) of
// each and writes them to a results file for cmd/charts.
//
//	cd bench && go run ./cmd/compare [-rounds 3] [-benchtime 500ms] [-o results/compare.json] [-workload get_hit/parallel,…] [-target otter,…]
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/switchboard-go/switchboard/bench"
	"github.com/switchboard-go/switchboard/internal/benchdata"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

// run is the command: the table to stdout, each run's progress to stderr.
func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	rounds := fs.Int("rounds", 3, "interleaved rounds; the median is reported")
	benchtime := fs.Duration("benchtime", 500*time.Millisecond, "time per benchmark run")
	out := fs.String("o", "results/compare.json", "write the results as JSON to this file (\"\" for none)")
	onlyWorkloads := fs.String("workload", "", "run only these workloads (comma-separated)")
	onlyTargets := fs.String("target", "", "run only these targets (comma-separated)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	testing.Init()
	iters := map[[2]string]int{}                 // workload, target -> operations per run after the first round
	results := map[string]map[string][]float64{} // workload -> target -> ns/op per round
	misses := map[string]map[string]float64{}    // workload -> target -> miss% of the last round
	began := time.Now()
	for round := range *rounds {
		// A new suite per round: every target is built and loaded once per
		// round and shared by its workloads (see bench.Suite).
		suite := bench.NewSuite()
		for _, c := range rotate(suite.Cases(), round) {
			if !selected(*onlyWorkloads, c.Workload) || !selected(*onlyTargets, c.Target) {
				if c.Done != nil {
					c.Done()
				}
				continue
			}
			// The first round calibrates, as go test -bench does; later
			// rounds run the operation count that took benchtime in it,
			// which spares testing.Benchmark its calibration runs (they
			// had been more than half of a round's time).
			key := [2]string{c.Workload, c.Target}
			bt := benchtime.String()
			if n := iters[key]; n > 0 {
				bt = fmt.Sprintf("%dx", n)
			}
			if err := flag.Set("test.benchtime", bt); err != nil {
				return err
			}
			r := testing.Benchmark(c.Run)
			if round == 0 && r.N > 0 {
				iters[key] = max(1, int(float64(r.N)*float64(*benchtime)/float64(r.T)))
			}
			if c.Done != nil {
				c.Done()
			}
			if r.N == 0 {
				return fmt.Errorf("%s/%s failed", c.Workload, c.Target)
			}
			if results[c.Workload] == nil {
				results[c.Workload] = map[string][]float64{}
				misses[c.Workload] = map[string]float64{}
			}
			misses[c.Workload][c.Target] = r.Extra["miss%"]
			results[c.Workload][c.Target] = append(results[c.Workload][c.Target], float64(r.T.Nanoseconds())/float64(r.N))
			fmt.Fprintf(stderr, "round %d/%d %-24s %-22s %8.1f ns/op %10d ops\n", round+1, *rounds, c.Workload, c.Target,
				float64(r.T.Nanoseconds())/float64(r.N), r.N)
		}
		suite.Close()
	}
	var order [][2]string // the table's order: workload by workload
	for _, c := range bench.NewSuite().Cases() {
		if results[c.Workload][c.Target] != nil && !slices.Contains(order, [2]string{c.Workload, c.Target}) {
			order = append(order, [2]string{c.Workload, c.Target})
		}
	}
	slices.SortStableFunc(order, func(a, b [2]string) int { return cmpWorkload(a[0], b[0]) })
	var rows []bench.Result
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "workload\ttarget\tmedian ns/op\tops/s\tmin\tmax\tmiss%%\t\n")
	for _, o := range order {
		v := slices.Clone(results[o[0]][o[1]])
		slices.Sort(v)
		med := v[len(v)/2]
		rows = append(rows, bench.Result{Workload: o[0], Target: o[1], MedianNs: med, OpsPerSec: 1e9 / med,
			Rounds: results[o[0]][o[1]], MissPct: misses[o[0]][o[1]]})
		fmt.Fprintf(tw, "%s\t%s\t%.1f\t%.0f\t%.1f\t%.1f\t%.1f\t\n", o[0], o[1], med, 1e9/med, v[0], v[len(v)-1], misses[o[0]][o[1]])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\n%s, GOMAXPROCS=%d, %s, %d rounds of %v, %d live keys, %v in all\n",
		runtime.Version(), runtime.GOMAXPROCS(0), runtime.GOARCH, *rounds, *benchtime, benchdata.LiveKeys,
		time.Since(began).Round(time.Second))
	if *out != "" {
		res := bench.Results{Go: runtime.Version(), GOMAXPROCS: runtime.GOMAXPROCS(0), Arch: runtime.GOARCH,
			Rounds: *rounds, Benchtime: benchtime.String(), LiveKeys: benchdata.LiveKeys, Rows: rows}
		data, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
			return err
		}
		return os.WriteFile(*out, append(data, '\n'), 0o644)
	}
	return nil
}

// selected reports whether name is in the comma-separated list (an empty
// list selects everything).
func selected(list, name string) bool {
	return list == "" || slices.Contains(strings.Split(list, ","), name)
}

// rotate returns the cases target by target, starting each round with the
// next target, so that no target always runs first or last in a round.
func rotate(cases []bench.Case, round int) []bench.Case {
	var groups [][]bench.Case
	for i, c := range cases {
		if i == 0 || c.Target != cases[i-1].Target {
			groups = append(groups, nil)
		}
		groups[len(groups)-1] = append(groups[len(groups)-1], c)
	}
	k := round % len(groups)
	return slices.Concat(append(slices.Clone(groups[k:]), groups[:k]...)...)
}

// workloadOrder is the order of the table's rows.
var workloadOrder = []string{"get_hit", "get_hit_warm", "set_overwrite", "set_overwrite_warm", "mix_90get_10set", "set_new_evicting"}

func cmpWorkload(a, b string) int {
	rank := func(w string) int {
		name, mode, _ := strings.Cut(w, "/")
		i := slices.Index(workloadOrder, name)
		if mode == "parallel" {
			return 2*i + 1
		}
		return 2 * i
	}
	return rank(a) - rank(b)
}
