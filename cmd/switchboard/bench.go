package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/switchboard-go/switchboard"
	"github.com/switchboard-go/switchboard/client"
	"github.com/switchboard-go/switchboard/internal/loadgen"
	"github.com/switchboard-go/switchboard/redisstore"
)

const benchUsage = `usage: switchboard bench [flags]

Runs a load against an embedded Manager (default, in memory), the Redis
backend (--backend redis) or a running server (--server URL), then prints
throughput and latency percentiles per operation. Keys come from --seed, so
runs are repeatable; the only traffic goes to the given server or Redis.
Ctrl-C stops early and still prints the summary.

Example:
  switchboard bench --duration 10s --concurrency 8
  switchboard bench --server http://127.0.0.1:7420 --instance default --mix 0:0:100 -o json

Flags:
`

type benchCmd struct {
	stdout, stderr io.Writer
	getenv         func(string) string
}

func (c *benchCmd) run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.Usage = func() { fmt.Fprint(c.stderr, benchUsage); fs.PrintDefaults() }
	serverURL := fs.String("server", "", "benchmark this server instead of an embedded Manager")
	instance := fs.String("instance", "default", "server instance")
	token := fs.String("token", "", "bearer token (env SWITCHBOARD_TOKEN)")
	backend := fs.String("backend", "memory", "embedded backend: memory or redis")
	redisAddr := fs.String("redis-addr", "127.0.0.1:6379", "Redis address for --backend redis (comma-separated for a cluster)")
	redisCluster := fs.Bool("redis-cluster", false, "the Redis addresses are a cluster")
	keys := fs.Int("keys", 100_000, "live session keys")
	threadRatio := fs.Float64("thread-ratio", 0.3, "share of keys with a thread (0..1)")
	mixFlag := fs.String("mix", "10:10:80", "weights of set:get:resolve")
	concurrency := fs.Int("concurrency", 8, "concurrent workers")
	duration := fs.Duration("duration", 10*time.Second, "measured time (ignored with --ops)")
	ops := fs.Int64("ops", 0, "measured operations instead of a duration")
	warmup := fs.Duration("warmup", time.Second, "unmeasured load before measuring")
	seed := fs.Uint64("seed", 1, "seed of the keys and operations")
	partitions := fs.Int("partitions", 0, "embedded: partition count (default: the library's)")
	output := fs.String("o", "text", "output: text or json")
	if _, err := parseInterspersed(fs, args); err != nil {
		return err
	}
	if *output != "text" && *output != "json" {
		return usagef("-o %q: want text or json", *output)
	}
	mix, err := loadgen.ParseMix(*mixFlag)
	if err != nil {
		return usagef("%v", err)
	}
	w := loadgen.Workload{Keys: *keys, ThreadRatio: *threadRatio, Mix: mix, Seed: *seed}
	if err := w.Validate(); err != nil {
		return usagef("%v", err)
	}
	if *concurrency <= 0 {
		return usagef("--concurrency %d must be positive", *concurrency)
	}
	if *ops > 0 {
		*duration = 0
	}

	var target switchboard.Router
	var name string
	switch {
	case *serverURL != "":
		if *token == "" {
			*token = c.getenv("SWITCHBOARD_TOKEN")
		}
		cl, err := client.New(*serverURL, client.Options{Instance: *instance, Token: *token})
		if err != nil {
			return usagef("%v", err)
		}
		target, name = cl, "server "+*serverURL+" instance "+*instance
	default:
		cfg := switchboard.Config{PartitionCount: *partitions, MaxEntriesPerPartition: max(10_000, 2**keys)}
		var opts []switchboard.Option
		switch *backend {
		case "memory":
			name = "embedded memory"
		case "redis":
			rdb, err := newRedisClient(RedisConfig{Addrs: strings.Split(*redisAddr, ","), Cluster: *redisCluster})
			if err != nil {
				return err
			}
			defer rdb.Close()
			st, err := redisstore.New(rdb, redisstore.Options{KeyPrefix: fmt.Sprintf("bench:%d", *seed)})
			if err != nil {
				return err
			}
			opts = append(opts, switchboard.WithStore(st))
			name = "embedded redis " + *redisAddr
		default:
			return usagef("--backend %q: want memory or redis", *backend)
		}
		m, err := switchboard.New(cfg, opts...)
		if err != nil {
			return err
		}
		defer m.Close()
		target = m
	}

	var bar *progressbar.ProgressBar
	if *ops > 0 {
		bar = progressbar.NewOptions64(*ops, progressbar.OptionSetWriter(c.stderr), progressbar.OptionSetDescription("bench"),
			progressbar.OptionShowCount(), progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish())
	} else {
		bar = progressbar.NewOptions64(int64(duration.Seconds()*10), progressbar.OptionSetWriter(c.stderr),
			progressbar.OptionSetDescription("bench"), progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish())
	}
	fmt.Fprintf(c.stderr, "preloading %d keys into %s, warming up %v\n", *keys, name, *warmup)
	var measuring time.Time // set at the first progress report, when the measured phase has begun
	summary, err := loadgen.Run(ctx, target, w, loadgen.Options{
		Concurrency: *concurrency, Duration: *duration, Ops: *ops, Warmup: *warmup,
		Progress: func(done int64) {
			if measuring.IsZero() {
				measuring = time.Now()
			}
			if *ops > 0 {
				_ = bar.Set64(done)
			} else {
				_ = bar.Set64(int64(time.Since(measuring).Seconds() * 10))
			}
		},
	})
	_ = bar.Finish()
	if err != nil {
		return err
	}
	summary.Target = name
	if *output == "json" {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(summary)
	}
	return printSummary(c.stdout, summary)
}

func printSummary(w io.Writer, s loadgen.Summary) error {
	fmt.Fprintf(w, "target: %s, %d workers, %d keys, %v", s.Target, s.Concurrency, s.Keys, s.Elapsed.Round(time.Millisecond))
	if s.Stopped {
		fmt.Fprint(w, " (stopped early)")
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "op\tcount\tops/s\tp50\tp90\tp99\tp99.9\tmax\terrors\t")
	row := func(name string, st loadgen.OpStats) {
		d := func(ns int64) string { return time.Duration(ns).String() }
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%s\t%s\t%s\t%s\t%s\t%d\t\n", name, st.Count, st.OpsPerSec, d(st.P50), d(st.P90), d(st.P99), d(st.P999), d(st.Max), st.Errors)
	}
	for _, op := range []string{"set", "get", "resolve"} {
		if st, ok := s.Ops[op]; ok {
			row(op, st)
		}
	}
	row("total", s.Total)
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, m := range []struct {
		title string
		m     map[string]int64
	}{{"errors by code", s.Errors}, {"resolution sources", s.Sources}, {"fallback reasons", s.Reasons}} {
		if len(m.m) == 0 {
			continue
		}
		var parts []string
		for _, k := range loadgen.Names(m.m) {
			parts = append(parts, fmt.Sprintf("%s=%d", k, m.m[k]))
		}
		fmt.Fprintf(w, "%s: %s\n", m.title, strings.Join(parts, " "))
	}
	return nil
}
