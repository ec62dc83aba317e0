package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/switchboard-go/switchboard"
)

// Config is the serve command's configuration: the YAML file, then
// SWITCHBOARD_* environment variables, then flags, over these defaults.
type Config struct {
	Listen           string        `yaml:"listen"`   // default 127.0.0.1:7420
	Backend          string        `yaml:"backend"`  // memory (default) or redis
	DataDir          string        `yaml:"data_dir"` // memory backend: snapshot and log per instance; "" keeps none
	Persistence      Persistence   `yaml:"persistence"`
	SnapshotInterval time.Duration `yaml:"snapshot_interval"` // default 30s
	ShutdownTimeout  time.Duration `yaml:"shutdown_timeout"`  // default 10s
	TLSCertFile      string        `yaml:"tls_cert_file"`
	TLSKeyFile       string        `yaml:"tls_key_file"`
	H2C              bool          `yaml:"h2c"` // also serve HTTP/2 without TLS
	InsecureNoAuth   bool          `yaml:"insecure_no_auth"`
	LogRequests      string        `yaml:"log_requests"` // errors (default: 5xx and refused tokens), all, off
	LogLevel         string        `yaml:"log_level"`    // debug, info (default), warn, error
	Redis            RedisConfig   `yaml:"redis"`
	SessionManager   ManagerConfig `yaml:"session_manager"`
	// Instances by name; none means one instance "default" without tokens.
	Instances map[string]InstanceConfig `yaml:"instances"`
}

// Persistence configures the memory backend's log in data_dir.
type Persistence struct {
	// Fsync is when the log is synced: everysec (default: a process crash
	// loses nothing acknowledged, a machine crash up to about a second),
	// always (nothing acknowledged is lost; concurrent writes share a
	// sync), or no (the operating system decides).
	Fsync string `yaml:"fsync"`
}

// RedisConfig configures the redis backend.
type RedisConfig struct {
	Addrs          []string `yaml:"addrs"`           // default ["127.0.0.1:6379"]
	Cluster        bool     `yaml:"cluster"`         // Redis Cluster
	SentinelMaster string   `yaml:"sentinel_master"` // Sentinel: Addrs are the sentinels
	Username       string   `yaml:"username"`
	Password       string   `yaml:"password"` // or SWITCHBOARD_REDIS_PASSWORD
	TLS            bool     `yaml:"tls"`
	KeyPrefix      string   `yaml:"key_prefix"` // default "sb"; each instance adds ":<name>"
	// OpTimeout bounds every store call (redisstore.Options.OpTimeout),
	// 1ms..1s. Default 500ms.
	OpTimeout time.Duration `yaml:"op_timeout"`
	// ExpiryGrace is how long past a route's expiry Redis deletes it by
	// itself (redisstore.Options.ExpiryGrace). Default 1m.
	ExpiryGrace time.Duration `yaml:"expiry_grace"`
	// DialTimeout bounds connecting to a node; ReadTimeout and WriteTimeout
	// bound, per connection, writing a request and waiting for answers
	// (rueidis has one such timeout, ConnWriteTimeout: the larger of the
	// two). Defaults 200ms, 300ms, 300ms: short, so a dead node is
	// reported quickly.
	DialTimeout  time.Duration `yaml:"dial_timeout"`
	ReadTimeout  time.Duration `yaml:"read_timeout"`
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// MaxRetries -1 turns off the client's retries; any other value keeps
	// rueidis' own policy (read-only commands are retried on connection
	// errors within the call's deadline; the store's scripts, which write,
	// are not). 0 is the default.
	MaxRetries int `yaml:"max_retries"`
	// PoolSize is the client's pool of dedicated connections per node
	// (rueidis' BlockingPoolSize); the store's calls do not use it: they
	// are pipelined over one shared connection per node. 0 means rueidis'
	// default.
	PoolSize int `yaml:"pool_size"`
	// ClusterReloadInterval is how often a cluster client reloads the slot
	// map without being asked. The client also reloads it whenever a call
	// meets a redirect, CLUSTERDOWN or a failed connection, which is what
	// follows a failover within seconds; this only bounds how stale the
	// map gets otherwise. Default 10s.
	ClusterReloadInterval time.Duration `yaml:"cluster_reload_interval"`
}

// Defaults of RedisConfig.
const (
	defaultRedisDialTimeout  = 200 * time.Millisecond
	defaultRedisReadTimeout  = 300 * time.Millisecond
	defaultRedisWriteTimeout = 300 * time.Millisecond
	defaultRedisReload       = 10 * time.Second
)

// ManagerConfig is a switchboard.Config in the file's units.
type ManagerConfig struct {
	PartitionCount         int           `yaml:"partition_count"`
	TTL                    time.Duration `yaml:"ttl"`
	MaxEntriesPerPartition int           `yaml:"max_entries_per_partition"`
	PruneInterval          time.Duration `yaml:"prune_interval"`
	ProvisionalTTL         time.Duration `yaml:"provisional_ttl"` // default: ttl
}

func (m ManagerConfig) config() switchboard.Config {
	return switchboard.Config{PartitionCount: m.PartitionCount, TTL: m.TTL,
		MaxEntriesPerPartition: m.MaxEntriesPerPartition, PruneInterval: m.PruneInterval, ProvisionalTTL: m.ProvisionalTTL}
}

// InstanceConfig is one named instance.
type InstanceConfig struct {
	Tokens         []string      `yaml:"tokens"`
	TokensFile     string        `yaml:"tokens_file"` // one token per line; blank lines and # comments ignored
	SessionManager ManagerConfig `yaml:"session_manager"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{Listen: "127.0.0.1:7420", Backend: "memory", SnapshotInterval: 30 * time.Second, ShutdownTimeout: 10 * time.Second,
		LogRequests: "errors", LogLevel: "info", Persistence: Persistence{Fsync: "everysec"}}
}

// ParseConfig reads a YAML configuration over the defaults. Unknown keys
// are errors.
func ParseConfig(r io.Reader) (Config, error) {
	cfg := DefaultConfig()
	data, err := io.ReadAll(r)
	if err != nil {
		return cfg, err
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return cfg, nil
	}
	if err := checkDurations(data); err != nil {
		return cfg, err
	}
	if err := yaml.UnmarshalWithOptions(data, &cfg, yaml.DisallowUnknownField()); err != nil {
		return cfg, fmt.Errorf("config: %s", strings.TrimSpace(yaml.FormatError(err, false, true)))
	}
	return cfg, nil
}

// checkDurations names the key of a duration that does not parse (the YAML
// decoder's own error does not say which one).
func checkDurations(data []byte) error {
	var doc map[string]any
	if yaml.Unmarshal(data, &doc) != nil {
		return nil // the typed decode reports it
	}
	check := func(path string, m map[string]any, keys ...string) error {
		for _, k := range keys {
			if v, ok := m[k].(string); ok {
				if _, err := time.ParseDuration(v); err != nil {
					return fmt.Errorf("config: %s%s: %q is not a duration (such as 30s, 5m or 1h)", path, k, v)
				}
			}
		}
		return nil
	}
	if err := check("", doc, "snapshot_interval", "shutdown_timeout"); err != nil {
		return err
	}
	if rc, ok := doc["redis"].(map[string]any); ok {
		if err := check("redis.", rc, "op_timeout", "expiry_grace", "dial_timeout", "read_timeout", "write_timeout", "cluster_reload_interval"); err != nil {
			return err
		}
	}
	if sm, ok := doc["session_manager"].(map[string]any); ok {
		if err := check("session_manager.", sm, "ttl", "prune_interval", "provisional_ttl"); err != nil {
			return err
		}
	}
	if ins, ok := doc["instances"].(map[string]any); ok {
		for name, v := range ins {
			in, _ := v.(map[string]any)
			if sm, ok := in["session_manager"].(map[string]any); ok {
				if err := check("instances."+name+".session_manager.", sm, "ttl", "prune_interval", "provisional_ttl"); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// applyEnv lays SWITCHBOARD_* variables over cfg.
func applyEnv(cfg *Config, getenv func(string) string) error {
	str := func(name string, dst *string) {
		if v := getenv(name); v != "" {
			*dst = v
		}
	}
	var errs []string
	boolean := func(name string, dst *bool) {
		if v := getenv(name); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				errs = append(errs, fmt.Sprintf("%s=%q is not a boolean", name, v))
				return
			}
			*dst = b
		}
	}
	duration := func(name string, dst *time.Duration) {
		if v := getenv(name); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				errs = append(errs, fmt.Sprintf("%s=%q is not a duration", name, v))
				return
			}
			*dst = d
		}
	}
	str("SWITCHBOARD_LISTEN", &cfg.Listen)
	str("SWITCHBOARD_BACKEND", &cfg.Backend)
	str("SWITCHBOARD_DATA_DIR", &cfg.DataDir)
	duration("SWITCHBOARD_SNAPSHOT_INTERVAL", &cfg.SnapshotInterval)
	duration("SWITCHBOARD_SHUTDOWN_TIMEOUT", &cfg.ShutdownTimeout)
	str("SWITCHBOARD_TLS_CERT_FILE", &cfg.TLSCertFile)
	str("SWITCHBOARD_TLS_KEY_FILE", &cfg.TLSKeyFile)
	boolean("SWITCHBOARD_INSECURE_NO_AUTH", &cfg.InsecureNoAuth)
	boolean("SWITCHBOARD_H2C", &cfg.H2C)
	str("SWITCHBOARD_LOG_REQUESTS", &cfg.LogRequests)
	str("SWITCHBOARD_LOG_LEVEL", &cfg.LogLevel)
	str("SWITCHBOARD_FSYNC", &cfg.Persistence.Fsync)
	if v := getenv("SWITCHBOARD_REDIS_ADDRS"); v != "" {
		cfg.Redis.Addrs = strings.Split(v, ",")
	}
	boolean("SWITCHBOARD_REDIS_CLUSTER", &cfg.Redis.Cluster)
	str("SWITCHBOARD_REDIS_SENTINEL_MASTER", &cfg.Redis.SentinelMaster)
	str("SWITCHBOARD_REDIS_USERNAME", &cfg.Redis.Username)
	str("SWITCHBOARD_REDIS_PASSWORD", &cfg.Redis.Password)
	boolean("SWITCHBOARD_REDIS_TLS", &cfg.Redis.TLS)
	str("SWITCHBOARD_REDIS_KEY_PREFIX", &cfg.Redis.KeyPrefix)
	duration("SWITCHBOARD_REDIS_OP_TIMEOUT", &cfg.Redis.OpTimeout)
	duration("SWITCHBOARD_REDIS_EXPIRY_GRACE", &cfg.Redis.ExpiryGrace)
	duration("SWITCHBOARD_REDIS_DIAL_TIMEOUT", &cfg.Redis.DialTimeout)
	duration("SWITCHBOARD_REDIS_READ_TIMEOUT", &cfg.Redis.ReadTimeout)
	duration("SWITCHBOARD_REDIS_WRITE_TIMEOUT", &cfg.Redis.WriteTimeout)
	duration("SWITCHBOARD_REDIS_CLUSTER_RELOAD_INTERVAL", &cfg.Redis.ClusterReloadInterval)
	integer := func(name string, dst *int) {
		if v := getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				errs = append(errs, fmt.Sprintf("%s=%q is not an integer", name, v))
				return
			}
			*dst = n
		}
	}
	integer("SWITCHBOARD_PARTITION_COUNT", &cfg.SessionManager.PartitionCount)
	integer("SWITCHBOARD_REDIS_MAX_RETRIES", &cfg.Redis.MaxRetries)
	integer("SWITCHBOARD_REDIS_POOL_SIZE", &cfg.Redis.PoolSize)
	if len(errs) > 0 {
		return fmt.Errorf("environment: %s", strings.Join(errs, "; "))
	}
	return nil
}

// instance is one instance ready to serve: its merged settings and tokens.
type instance struct {
	name   string
	config switchboard.Config
	tokens []string
}

// Validate checks cfg and returns its instances, sorted by name, with
// their merged session-manager settings (defaults <- global <- instance)
// and their tokens read.
func (cfg Config) Validate() ([]instance, error) {
	if _, _, err := net.SplitHostPort(cfg.Listen); err != nil {
		return nil, fmt.Errorf("listen %q: %w", cfg.Listen, err)
	}
	switch cfg.Backend {
	case "memory", "redis":
	default:
		return nil, fmt.Errorf("backend %q: want memory or redis", cfg.Backend)
	}
	if cfg.SnapshotInterval <= 0 || cfg.ShutdownTimeout <= 0 {
		return nil, fmt.Errorf("snapshot_interval (%v) and shutdown_timeout (%v) must be positive", cfg.SnapshotInterval, cfg.ShutdownTimeout)
	}
	if (cfg.TLSCertFile == "") != (cfg.TLSKeyFile == "") {
		return nil, fmt.Errorf("tls_cert_file and tls_key_file go together")
	}
	if cfg.Backend == "redis" && cfg.DataDir != "" {
		return nil, fmt.Errorf("data_dir is for the memory backend; the redis backend keeps its state in Redis")
	}
	if err := cfg.Redis.validate(); err != nil {
		return nil, err
	}
	switch cfg.Persistence.Fsync {
	case "everysec", "always", "no":
	default:
		return nil, fmt.Errorf("persistence.fsync %q: want everysec, always or no", cfg.Persistence.Fsync)
	}
	switch cfg.LogRequests {
	case "errors", "all", "off":
	default:
		return nil, fmt.Errorf("log_requests %q: want errors, all or off", cfg.LogRequests)
	}
	if _, err := cfg.level(); err != nil {
		return nil, err
	}
	defs := cfg.Instances
	if len(defs) == 0 {
		defs = map[string]InstanceConfig{"default": {}}
	}
	names := make([]string, 0, len(defs))
	for name := range defs {
		names = append(names, name)
	}
	sort.Strings(names)
	var out []instance
	for _, name := range names {
		if name == "" || strings.ContainsAny(name, "/ \t:{}") {
			return nil, fmt.Errorf("instance name %q: use letters, digits, '-', '_' or '.'", name)
		}
		def := defs[name]
		merged, err := switchboard.MergeConfig(cfg.SessionManager.config(), def.SessionManager.config())
		if err != nil {
			return nil, fmt.Errorf("instance %q: %w", name, err)
		}
		if cfg.Backend == "redis" && cfg.SessionManager.PartitionCount == 0 && def.SessionManager.PartitionCount == 0 {
			// The default is max(2, 2*GOMAXPROCS): replicas with other CPU
			// limits would disagree (redisstore then refuses the later ones).
			return nil, fmt.Errorf("instance %q: backend redis needs session_manager.partition_count (or SWITCHBOARD_PARTITION_COUNT): "+
				"every replica on one key prefix must use the same count, and the default depends on the CPU count (here %d)", name, merged.PartitionCount)
		}
		tokens := append([]string(nil), def.Tokens...)
		if def.TokensFile != "" {
			more, err := readTokens(def.TokensFile)
			if err != nil {
				return nil, fmt.Errorf("instance %q: %w", name, err)
			}
			tokens = append(tokens, more...)
		}
		for _, t := range tokens {
			if t == "" || strings.ContainsAny(t, " \t\r\n") {
				return nil, fmt.Errorf("instance %q: tokens may not be empty or contain white space", name)
			}
		}
		out = append(out, instance{name: name, config: merged, tokens: tokens})
	}
	if !cfg.InsecureNoAuth && !loopback(cfg.Listen) {
		for _, in := range out {
			if len(in.tokens) == 0 {
				return nil, fmt.Errorf("refusing to listen on non-loopback %s while instance %q has no tokens (give it tokens, or pass --insecure-no-auth)", cfg.Listen, in.name)
			}
		}
	}
	return out, nil
}

func readTokens(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tokens_file: %w", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("tokens_file %s: %w", path, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("tokens_file %s holds no token", filepath.Clean(path))
	}
	return out, nil
}

// loopback reports whether a listen address only accepts local clients.
func loopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// validate checks the redis settings' ranges (zero means the default).
func (rc RedisConfig) validate() error {
	switch {
	case rc.OpTimeout < 0 || rc.OpTimeout > time.Second:
		return fmt.Errorf("redis.op_timeout %v: want 1ms..1s (0 for the default, 500ms)", rc.OpTimeout)
	case rc.ExpiryGrace < 0:
		return fmt.Errorf("redis.expiry_grace %v must not be negative", rc.ExpiryGrace)
	case rc.DialTimeout < 0 || rc.ReadTimeout < 0 || rc.WriteTimeout < 0 || rc.ClusterReloadInterval < 0:
		return fmt.Errorf("redis dial_timeout, read_timeout, write_timeout and cluster_reload_interval must not be negative")
	case rc.MaxRetries < -1:
		return fmt.Errorf("redis.max_retries %d: want -1 (no retries) or 0 and up (the client's own retry policy)", rc.MaxRetries)
	case rc.PoolSize < 0:
		return fmt.Errorf("redis.pool_size %d must not be negative", rc.PoolSize)
	}
	return nil
}

// or returns v, or def when v is zero.
func or[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// level returns the slog level of log_level.
func (cfg Config) level() (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		return 0, fmt.Errorf("log_level %q: want debug, info, warn or error", cfg.LogLevel)
	}
	return l, nil
}
