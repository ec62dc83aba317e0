package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-go/switchboard"
)

const specExample = `
listen: 127.0.0.1:7420
backend: memory            # or: redis
data_dir: ./data           # memory backend snapshots
redis: { addrs: ["127.0.0.1:6379"], cluster: false, key_prefix: sb }
session_manager: { partition_count: 8, ttl: 30m, max_entries_per_partition: 10000, prune_interval: 30s }
instances:
  support_bot:
    tokens_file: TOKENS_FILE
    session_manager: { ttl: 5m }
  sales_bot:
    tokens: ["s3cr3t-token"]            # or inline
`

func TestParseConfigSpecExample(t *testing.T) {
	dir := t.TempDir()
	tokens := filepath.Join(dir, "support_bot.tokens")
	if err := os.WriteFile(tokens, []byte("# support tokens\ntok-1\n\n  tok-2  \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig(strings.NewReader(strings.Replace(specExample, "TOKENS_FILE", tokens, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:7420" || cfg.Backend != "memory" || cfg.DataDir != "./data" || cfg.Redis.KeyPrefix != "sb" ||
		cfg.SnapshotInterval != 30*time.Second || cfg.SessionManager.TTL != 30*time.Minute {
		t.Fatalf("parsed %+v", cfg)
	}
	instances, err := cfg.Validate()
	if err != nil {
		t.Fatal(err)
	}
	if len(instances) != 2 || instances[0].name != "sales_bot" || instances[1].name != "support_bot" {
		t.Fatalf("instances %+v", instances)
	}
	sales, support := instances[0], instances[1]
	want := switchboard.Config{PartitionCount: 8, TTL: 30 * time.Minute, MaxEntriesPerPartition: 10000, PruneInterval: 30 * time.Second}
	if sales.config != want || strings.Join(sales.tokens, ",") != "s3cr3t-token" {
		t.Fatalf("sales_bot = %+v", sales)
	}
	want.TTL = 5 * time.Minute // defaults <- global <- instance
	if support.config != want || strings.Join(support.tokens, ",") != "tok-1,tok-2" {
		t.Fatalf("support_bot = %+v", support)
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name, yaml string
		env        map[string]string
		want       string
	}{
		{name: "unknown key", yaml: "listen: 127.0.0.1:1\nlisten_addr: x\n", want: "listen_addr"},
		{name: "bad duration", yaml: "snapshot_interval: soon\n", want: "snapshot_interval"},
		{name: "bad backend", yaml: "backend: postgres\n", want: "backend"},
		{name: "bad listen", yaml: "listen: nowhere\n", want: "listen"},
		{name: "negative ttl", yaml: "session_manager: { ttl: -5m }\n", want: "TTL"},
		{name: "negative instance capacity", yaml: "instances: { a: { session_manager: { max_entries_per_partition: -1 } } }\n", want: "MaxEntriesPerPartition"},
		{name: "half tls", yaml: "tls_cert_file: c.pem\n", want: "tls_key_file"},
		{name: "redis with data dir", yaml: "backend: redis\ndata_dir: ./d\n", want: "data_dir"},
		{name: "missing tokens file", yaml: "instances: { a: { tokens_file: /nonexistent/t } }\n", want: "tokens_file"},
		{name: "empty token", yaml: "instances: { a: { tokens: [\"\"] } }\n", want: "tokens"},
		{name: "bad instance name", yaml: "instances: { \"a/b\": {} }\n", want: "instance name"},
		{name: "public without tokens", yaml: "listen: 0.0.0.0:7420\n", want: "--insecure-no-auth"},
		{name: "public instance without tokens", yaml: "listen: \"[::]:7420\"\ninstances: { a: { tokens: [t] }, b: {} }\n", want: `instance "b"`},
		{name: "bad env bool", yaml: "", env: map[string]string{"SWITCHBOARD_INSECURE_NO_AUTH": "perhaps"}, want: "SWITCHBOARD_INSECURE_NO_AUTH"},
		{name: "bad env duration", yaml: "", env: map[string]string{"SWITCHBOARD_SNAPSHOT_INTERVAL": "1 minute"}, want: "SWITCHBOARD_SNAPSHOT_INTERVAL"},
		{name: "redis without a partition count", yaml: "backend: redis\n", want: "partition_count"},
		{name: "redis op timeout too long", yaml: "backend: redis\nsession_manager: { partition_count: 8 }\nredis: { op_timeout: 2s }\n", want: "redis.op_timeout"},
		{name: "bad redis duration", yaml: "redis: { read_timeout: fast }\n", want: "redis.read_timeout"},
		{name: "negative pool", yaml: "redis: { pool_size: -1 }\n", want: "redis.pool_size"},
		{name: "bad provisional ttl", yaml: "session_manager: { provisional_ttl: -1m }\n", want: "ProvisionalTTL"},
		{name: "bad env partition count", yaml: "", env: map[string]string{"SWITCHBOARD_PARTITION_COUNT": "many"}, want: "SWITCHBOARD_PARTITION_COUNT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := ParseConfig(strings.NewReader(tt.yaml))
			if err == nil {
				err = applyEnv(&cfg, func(k string) string { return tt.env[k] })
			}
			if err == nil {
				_, err = cfg.Validate()
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one naming %q", err, tt.want)
			}
		})
	}
}

func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "sb.yaml")
	if err := os.WriteFile(file, []byte("listen: 127.0.0.1:1111\ndata_dir: /from/file\nsnapshot_interval: 1m\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"SWITCHBOARD_CONFIG": file, "SWITCHBOARD_LISTEN": "127.0.0.1:2222", "SWITCHBOARD_SNAPSHOT_INTERVAL": "2m"}
	c := &serveCmd{stderr: io.Discard, getenv: func(k string) string { return env[k] }}
	cfg, instances, _, err := c.load([]string{"--listen", "127.0.0.1:3333"})
	if err != nil {
		t.Fatal(err)
	}
	// flags > environment > file > defaults
	if cfg.Listen != "127.0.0.1:3333" || cfg.SnapshotInterval != 2*time.Minute || cfg.DataDir != "/from/file" || cfg.Backend != "memory" {
		t.Fatalf("config %+v", cfg)
	}
	if len(instances) != 1 || instances[0].name != "default" || len(instances[0].tokens) != 0 || instances[0].config != switchboard.DefaultConfig() {
		t.Fatalf("instances %+v", instances)
	}
	// No file, no environment: the documented defaults.
	c = &serveCmd{stderr: io.Discard, getenv: func(string) string { return "" }}
	if cfg, _, _, err = c.load(nil); err != nil || cfg.Listen != "127.0.0.1:7420" {
		t.Fatalf("defaults: %+v, %v", cfg, err)
	}
}

func TestParseConfigNewKeys(t *testing.T) {
	cfg, err := ParseConfig(strings.NewReader(`
backend: redis
redis: { op_timeout: 250ms, expiry_grace: 2m, dial_timeout: 100ms, read_timeout: 150ms, write_timeout: 150ms, max_retries: -1, pool_size: 64 }
session_manager: { partition_count: 16, ttl: 1h, provisional_ttl: 2m }
instances: { a: { session_manager: { provisional_ttl: 30s } }, b: {} }
`))
	if err != nil {
		t.Fatal(err)
	}
	want := RedisConfig{OpTimeout: 250 * time.Millisecond, ExpiryGrace: 2 * time.Minute, DialTimeout: 100 * time.Millisecond,
		ReadTimeout: 150 * time.Millisecond, WriteTimeout: 150 * time.Millisecond, MaxRetries: -1, PoolSize: 64}
	if got := cfg.Redis; got.OpTimeout != want.OpTimeout || got.ExpiryGrace != want.ExpiryGrace || got.DialTimeout != want.DialTimeout ||
		got.ReadTimeout != want.ReadTimeout || got.WriteTimeout != want.WriteTimeout || got.MaxRetries != -1 || got.PoolSize != 64 {
		t.Fatalf("redis = %+v, want %+v", got, want)
	}
	instances, err := cfg.Validate()
	if err != nil {
		t.Fatal(err)
	}
	if instances[0].config.ProvisionalTTL != 30*time.Second || instances[1].config.ProvisionalTTL != 2*time.Minute ||
		instances[1].config.PartitionCount != 16 {
		t.Fatalf("instances = %+v", instances)
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add(specExample)
	f.Add("listen: 127.0.0.1:7420\ninstances: { a: { tokens: [x] } }\n")
	f.Add("session_manager: { ttl: 1h, partition_count: -1 }")
	f.Add("{{{")
	f.Fuzz(func(t *testing.T, data string) {
		cfg, err := ParseConfig(strings.NewReader(data))
		if err != nil {
			return
		}
		if instances, err := cfg.Validate(); err == nil {
			for _, in := range instances {
				if in.config.PartitionCount <= 0 || in.config.TTL <= 0 || in.config.MaxEntriesPerPartition <= 0 || in.config.PruneInterval <= 0 {
					t.Fatalf("validated instance with a bad config: %+v", in)
				}
			}
		}
	})
}
