package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/rueidis"

	"github.com/switchboard-go/switchboard"
	"github.com/switchboard-go/switchboard/redisstore"
	"github.com/switchboard-go/switchboard/server"
	"github.com/switchboard-go/switchboard/switchboardprom"
)

const serveUsage = `usage: switchboard serve [flags]

Serves the HTTP/JSON API. With no flags: 127.0.0.1:7420, one instance
"default" without tokens, in-memory state. Settings come from the YAML file
(--config), then SWITCHBOARD_* environment variables, then flags.

Example:
  switchboard serve --config switchboard.yaml
  SWITCHBOARD_LISTEN=127.0.0.1:9000 switchboard serve --data-dir ./data

Flags:
`

// serveCmd is the serve command.
type serveCmd struct {
	stderr io.Writer
	getenv func(string) string
}

func (c *serveCmd) run(ctx context.Context, args []string) error {
	cfg, instances, discard, err := c.load(args)
	if err != nil {
		return err
	}
	return c.serve(ctx, cfg, instances, discard)
}

// load reads the configuration: defaults, the file, the environment, then
// the flags, and validates it.
func (c *serveCmd) load(args []string) (cfg Config, instances []instance, discard bool, err error) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.Usage = func() { fmt.Fprint(c.stderr, serveUsage); fs.PrintDefaults() }
	configPath := fs.String("config", c.getenv("SWITCHBOARD_CONFIG"), "YAML configuration file (env SWITCHBOARD_CONFIG)")
	listen := fs.String("listen", "", "address to listen on (default 127.0.0.1:7420)")
	backend := fs.String("backend", "", "memory or redis (default memory)")
	dataDir := fs.String("data-dir", "", "directory for memory-backend snapshots (default: none)")
	snapshotInterval := fs.Duration("snapshot-interval", 0, "how often to snapshot (default 30s)")
	redisAddrs := fs.String("redis-addrs", "", "comma-separated Redis addresses (default 127.0.0.1:6379)")
	redisCluster := fs.Bool("redis-cluster", false, "the Redis addresses are a Redis Cluster")
	redisOpTimeout := fs.Duration("redis-op-timeout", 0, "bound of every Redis store call, 1ms..1s (default 500ms)")
	redisDial := fs.Duration("redis-dial-timeout", 0, "Redis dial timeout (default 200ms)")
	redisRead := fs.Duration("redis-read-timeout", 0, "Redis read timeout (default 300ms; the client uses the larger of read and write)")
	redisWrite := fs.Duration("redis-write-timeout", 0, "Redis write timeout (default 300ms)")
	redisRetries := fs.Int("redis-max-retries", 0, "Redis retries: -1 none; otherwise the client's own, of read-only commands")
	redisPool := fs.Int("redis-pool-size", 0, "Redis dedicated connections per node (default: rueidis'; the store's calls are pipelined and do not use them)")
	redisReload := fs.Duration("redis-cluster-reload-interval", 0, "periodic slot-map reload of a Redis Cluster client (default 10s)")
	partitions := fs.Int("partition-count", 0, "partitions of every instance without its own (required with --backend redis)")
	insecure := fs.Bool("insecure-no-auth", false, "allow a non-loopback listen address for instances without tokens")
	tlsCert := fs.String("tls-cert-file", "", "serve HTTPS with this certificate")
	tlsKey := fs.String("tls-key-file", "", "and this key")
	h2c := fs.Bool("h2c", false, "also serve HTTP/2 without TLS (h2c), for proxies that speak it")
	logRequests := fs.String("log-requests", "", "which requests to log: errors (default), all or off")
	logLevel := fs.String("log-level", "", "debug, info (default), warn or error")
	fs.BoolVar(&discard, "discard-corrupt-snapshot", false, "when an instance's snapshot or log is damaged, move it aside and start without it, instead of refusing to start")
	fs.BoolVar(&discard, "discard-corrupt-log", false, "the same as --discard-corrupt-snapshot")
	fsync := fs.String("fsync", "", "durability of the data_dir log: everysec (default), always or no")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, nil, false, err
		}
		return cfg, nil, false, usagef("%v", err)
	}
	if fs.NArg() > 0 {
		return cfg, nil, false, usagef("serve takes no arguments, got %q", fs.Args())
	}
	cfg = DefaultConfig()
	if *configPath != "" {
		f, err := os.Open(*configPath)
		if err != nil {
			return cfg, nil, false, err
		}
		cfg, err = ParseConfig(f)
		f.Close()
		if err != nil {
			return cfg, nil, false, fmt.Errorf("%s: %w", *configPath, err)
		}
	}
	if err := applyEnv(&cfg, c.getenv); err != nil {
		return cfg, nil, false, err
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "listen":
			cfg.Listen = *listen
		case "backend":
			cfg.Backend = *backend
		case "data-dir":
			cfg.DataDir = *dataDir
		case "snapshot-interval":
			cfg.SnapshotInterval = *snapshotInterval
		case "redis-addrs":
			cfg.Redis.Addrs = strings.Split(*redisAddrs, ",")
		case "redis-cluster":
			cfg.Redis.Cluster = *redisCluster
		case "redis-op-timeout":
			cfg.Redis.OpTimeout = *redisOpTimeout
		case "redis-dial-timeout":
			cfg.Redis.DialTimeout = *redisDial
		case "redis-read-timeout":
			cfg.Redis.ReadTimeout = *redisRead
		case "redis-write-timeout":
			cfg.Redis.WriteTimeout = *redisWrite
		case "redis-max-retries":
			cfg.Redis.MaxRetries = *redisRetries
		case "redis-pool-size":
			cfg.Redis.PoolSize = *redisPool
		case "redis-cluster-reload-interval":
			cfg.Redis.ClusterReloadInterval = *redisReload
		case "partition-count":
			cfg.SessionManager.PartitionCount = *partitions
		case "insecure-no-auth":
			cfg.InsecureNoAuth = *insecure
		case "tls-cert-file":
			cfg.TLSCertFile = *tlsCert
		case "tls-key-file":
			cfg.TLSKeyFile = *tlsKey
		case "h2c":
			cfg.H2C = *h2c
		case "fsync":
			cfg.Persistence.Fsync = *fsync
		case "log-requests":
			cfg.LogRequests = *logRequests
		case "log-level":
			cfg.LogLevel = *logLevel
		}
	})
	instances, err = cfg.Validate()
	return cfg, instances, discard, err
}

// running is one instance being served.
type running struct {
	instance
	manager *switchboard.Manager
	memory  *switchboard.MemoryStore // a durable one with data_dir; nil for redis
}

// serving is what serve runs: the instances, their HTTP handler, and what
// closes with them.
type serving struct {
	runs    []*running
	handler http.Handler
	rdb     rueidis.Client // nil for the memory backend
	logger  *slog.Logger
}

func (c *serveCmd) serve(ctx context.Context, cfg Config, instances []instance, discard bool) error {
	level, _ := cfg.level() // validated
	logger := slog.New(slog.NewTextHandler(c.stderr, &slog.HandlerOptions{Level: level}))
	sv, err := open(cfg, instances, discard, logger)
	if err != nil {
		return err
	}
	defer sv.close()
	ln, tc, err := listen(cfg)
	if err != nil {
		return err
	}
	sv.logStart(cfg, ln)
	return sv.run(ctx, cfg, ln, tc)
}

// open starts every instance's Manager on its store (restoring memory
// snapshots) and builds the HTTP handler with the instances' metrics.
func open(cfg Config, instances []instance, discard bool, logger *slog.Logger) (_ *serving, err error) {
	sv := &serving{logger: logger}
	defer func() {
		if err != nil {
			sv.close()
		}
	}()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if cfg.Backend == "redis" {
		if sv.rdb, err = newRedisClient(cfg.Redis); err != nil {
			return nil, err
		}
	}
	if cfg.DataDir != "" {
		if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
			return nil, fmt.Errorf("data_dir: %w", err)
		}
	}
	var handlerInstances []server.Instance
	for _, in := range instances {
		obs := switchboardprom.New(switchboardprom.Options{ConstLabels: prometheus.Labels{"instance": in.name}})
		reg.MustRegister(obs)
		r, err := sv.start(cfg, in, obs, discard)
		if err != nil {
			return nil, err
		}
		if r.memory != nil && cfg.DataDir != "" {
			ms := r.memory
			reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "switchboard_persistence_errors_total",
				Help:        "Log writes and snapshots that failed (the data directory full, read-only or failing).",
				ConstLabels: prometheus.Labels{"instance": in.name}}, func() float64 { return float64(ms.PersistenceFailures()) }))
		}
		handlerInstances = append(handlerInstances, server.Instance{Name: in.name, Manager: r.manager, Tokens: in.tokens})
	}
	if sv.handler, err = server.New(server.Options{Instances: handlerInstances, Logger: logger, Gatherer: reg,
		LogRequests: server.LogRequests(cfg.LogRequests), ReadyChecks: []func(context.Context) error{sv.persisted}}); err != nil {
		return nil, err
	}
	return sv, nil
}

// persisted is a readiness check: every durable instance can make writes
// durable, and its last snapshot was written.
func (sv *serving) persisted(context.Context) error {
	for _, r := range sv.runs {
		if r.memory == nil {
			continue
		}
		if err := r.memory.PersistenceError(); err != nil {
			return fmt.Errorf("instance %q: its data directory cannot be written (see the log)", r.name)
		}
	}
	return nil
}

// start opens one instance's store and Manager: with data_dir, a durable
// memory store whose files are <data_dir>/<instance>.snapshot and
// <data_dir>/<instance>.log.<n>.
func (sv *serving) start(cfg Config, in instance, obs switchboard.Observer, discard bool) (*running, error) {
	r := &running{instance: in}
	opts := []switchboard.Option{switchboard.WithObserver(obs), switchboard.WithLogger(sv.logger)}
	if sv.rdb != nil {
		st, err := redisstore.New(sv.rdb, redisstore.Options{KeyPrefix: or(cfg.Redis.KeyPrefix, redisstore.DefaultKeyPrefix) + ":" + in.name,
			OpTimeout: cfg.Redis.OpTimeout, ExpiryGrace: cfg.Redis.ExpiryGrace})
		if err != nil {
			return nil, err
		}
		opts = append(opts, switchboard.WithStore(st))
	} else if cfg.DataDir != "" {
		ms, err := switchboard.OpenMemoryStore(cfg.DataDir, switchboard.PersistOptions{
			Fsync: switchboard.Fsync(cfg.Persistence.Fsync), SnapshotInterval: cfg.SnapshotInterval,
			DiscardCorrupt: discard, Logger: sv.logger.With("instance", in.name), Name: in.name,
		})
		if err != nil {
			return nil, fmt.Errorf("instance %q: %w", in.name, err)
		}
		r.memory = ms
		opts = append(opts, switchboard.WithStore(ms))
	} else {
		opts = append(opts, switchboard.WithStore(switchboard.NewMemoryStore()))
	}
	var err error
	if r.manager, err = switchboard.New(in.config, opts...); err != nil {
		if errors.Is(err, switchboard.ErrInvalidSnapshot) {
			return nil, fmt.Errorf("instance %q: its snapshot or log in %s is damaged, so nothing was started (%w); to start with the damaged file moved aside, run again with --discard-corrupt-snapshot", in.name, cfg.DataDir, err)
		}
		return nil, fmt.Errorf("instance %q: %w", in.name, err)
	}
	sv.runs = append(sv.runs, r)
	return r, nil
}

// close closes the Managers and the Redis client.
func (sv *serving) close() {
	for _, r := range sv.runs {
		_ = r.manager.Close()
	}
	sv.runs = nil
	if sv.rdb != nil {
		sv.rdb.Close()
		sv.rdb = nil
	}
}

// listen opens the listening socket and loads the TLS certificate when
// configured (run serves TLS on the socket, offering HTTP/2 by ALPN).
func listen(cfg Config) (net.Listener, *tls.Config, error) {
	var tc *tls.Config
	if cfg.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
		if err != nil {
			return nil, nil, fmt.Errorf("tls: %w", err)
		}
		tc = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, nil, err
	}
	return ln, tc, nil
}

// logStart logs where the server listens and how much each instance holds.
func (sv *serving) logStart(cfg Config, ln net.Listener) {
	names := make([]string, len(sv.runs))
	for i, r := range sv.runs {
		names[i] = r.name
		mc := r.manager.Config()
		sv.logger.Info("instance", "name", r.name, "partitions", mc.PartitionCount, "max_entries_per_partition", mc.MaxEntriesPerPartition,
			"capacity", mc.PartitionCount*mc.MaxEntriesPerPartition, "ttl", mc.TTL, "provisional_ttl", mc.EffectiveProvisionalTTL())
	}
	sv.logger.Info("listening", "addr", ln.Addr().String(), "tls", cfg.TLSCertFile != "", "backend", cfg.Backend, "instances", strings.Join(names, ","))
}

// run serves until ctx ends (SIGTERM, SIGINT), then stops accepting,
// finishes in-flight requests, and writes the final snapshots.
func (sv *serving) run(ctx context.Context, cfg Config, ln net.Listener, tc *tls.Config) (err error) {
	// HTTP/1.1 and, over TLS, HTTP/2 (ALPN h2); with h2c, HTTP/2 without
	// TLS too, for proxies that speak it to their backends.
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetHTTP2(true)
	protocols.SetUnencryptedHTTP2(cfg.H2C)
	srv := &http.Server{
		Handler:           sv.handler,
		TLSConfig:         tc,
		Protocols:         protocols,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		// Larger than the API's limit (wire.MaxHeaderBytes), so that the
		// handler answers oversized headers in the JSON envelope; past
		// this, net/http answers 431 in plain text itself.
		MaxHeaderBytes: 1 << 20,
		ErrorLog:       slog.NewLogLogger(sv.logger.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() {
		if tc != nil {
			serveErr <- srv.ServeTLS(ln, "", "")
			return
		}
		serveErr <- srv.Serve(ln)
	}()

	select {
	case err = <-serveErr:
	case <-ctx.Done():
		sv.logger.Info("shutting down", "timeout", cfg.ShutdownTimeout)
		sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		err = srv.Shutdown(sctx)
		cancel()
		<-serveErr
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	// Closing the Managers syncs each durable store's log and writes its
	// final snapshot.
	for _, r := range sv.runs {
		if cerr := r.manager.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("instance %q: %w", r.name, cerr))
		}
	}
	sv.logger.Info("stopped")
	return err
}

// newRedisClient builds the rueidis client of the redis backend from rc:
// standalone unless cluster or sentinel_master is set, no client-side
// cache, short dial and connection timeouts.
func newRedisClient(rc RedisConfig) (rueidis.Client, error) {
	addrs := rc.Addrs
	if len(addrs) == 0 {
		addrs = []string{"127.0.0.1:6379"}
	}
	opt := rueidis.ClientOption{
		InitAddress: addrs, Username: rc.Username, Password: rc.Password, DisableCache: true,
		Dialer: net.Dialer{Timeout: or(rc.DialTimeout, defaultRedisDialTimeout)},
		// rueidis has one timeout per connection, for writes and for the
		// answers it waits for: the larger of the two configured.
		ConnWriteTimeout: max(or(rc.ReadTimeout, defaultRedisReadTimeout), or(rc.WriteTimeout, defaultRedisWriteTimeout)),
		DisableRetry:     rc.MaxRetries < 0,
		BlockingPoolSize: rc.PoolSize,
		ClusterOption:    rueidis.ClusterOption{ShardsRefreshInterval: or(rc.ClusterReloadInterval, defaultRedisReload)},
	}
	if rc.TLS {
		opt.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	switch {
	case rc.SentinelMaster != "":
		opt.Sentinel = rueidis.SentinelOption{MasterSet: rc.SentinelMaster, Dialer: opt.Dialer, TLSConfig: opt.TLSConfig}
	case !rc.Cluster:
		opt.ForceSingleClient = true
	}
	c, err := rueidis.NewClient(opt)
	if err != nil {
		return nil, fmt.Errorf("redis %s: %w", strings.Join(addrs, ","), err)
	}
	return c, nil
}
