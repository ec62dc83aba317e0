package switchboard_test

import (
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-go/switchboard"
)

func TestDefaultConfig(t *testing.T) {
	got := switchboard.DefaultConfig()
	want := switchboard.Config{
		PartitionCount:         max(2, 2*runtime.GOMAXPROCS(0)),
		TTL:                    30 * time.Minute,
		MaxEntriesPerPartition: 10_000,
		PruneInterval:          30 * time.Second,
	}
	if got != want {
		t.Fatalf("DefaultConfig() = %+v, want %+v", got, want)
	}
}

func TestMergeConfig(t *testing.T) {
	def := switchboard.DefaultConfig()
	with := func(f func(*switchboard.Config)) switchboard.Config {
		c := def
		f(&c)
		return c
	}
	tests := []struct {
		name      string
		layers    []switchboard.Config
		want      switchboard.Config
		wantField string // the field an ErrInvalidConfig names
	}{
		{name: "no layers", want: def},
		{name: "zero layer inherits", layers: []switchboard.Config{{}}, want: def},
		{name: "global then instance",
			layers: []switchboard.Config{{PartitionCount: 8, TTL: time.Hour}, {TTL: 5 * time.Minute}},
			want:   with(func(c *switchboard.Config) { c.PartitionCount = 8; c.TTL = 5 * time.Minute })},
		{name: "every field",
			layers: []switchboard.Config{{PartitionCount: 3, TTL: time.Second, MaxEntriesPerPartition: 7, PruneInterval: time.Minute}},
			want:   switchboard.Config{PartitionCount: 3, TTL: time.Second, MaxEntriesPerPartition: 7, PruneInterval: time.Minute}},
		{name: "later zero does not reset",
			layers: []switchboard.Config{{MaxEntriesPerPartition: 5}, {}, {PruneInterval: time.Second}},
			want:   with(func(c *switchboard.Config) { c.MaxEntriesPerPartition = 5; c.PruneInterval = time.Second })},
		{name: "negative partitions", layers: []switchboard.Config{{PartitionCount: -1}}, wantField: "PartitionCount"},
		{name: "too many partitions", layers: []switchboard.Config{{PartitionCount: switchboard.MaxPartitionCount + 1}}, wantField: "PartitionCount"},
		{name: "negative ttl in a later layer", layers: []switchboard.Config{{TTL: time.Hour}, {TTL: -time.Second}}, wantField: "TTL"},
		{name: "ttl too long", layers: []switchboard.Config{{TTL: switchboard.MaxTTL + 1}}, wantField: "TTL"},
		{name: "negative capacity", layers: []switchboard.Config{{MaxEntriesPerPartition: -5}}, wantField: "MaxEntriesPerPartition"},
		{name: "capacity too large", layers: []switchboard.Config{{MaxEntriesPerPartition: switchboard.MaxEntriesLimit + 1}}, wantField: "MaxEntriesPerPartition"},
		{name: "negative prune interval", layers: []switchboard.Config{{PruneInterval: -1}}, wantField: "PruneInterval"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := switchboard.MergeConfig(tt.layers...)
			if tt.wantField != "" {
				if !errors.Is(err, switchboard.ErrInvalidConfig) || !strings.Contains(err.Error(), tt.wantField) {
					t.Fatalf("MergeConfig = %+v, %v; want ErrInvalidConfig naming %s", got, err, tt.wantField)
				}
				if _, err := switchboard.New(tt.layers[len(tt.layers)-1]); !errors.Is(err, switchboard.ErrInvalidConfig) {
					t.Fatalf("New with the bad layer: err = %v, want ErrInvalidConfig", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("MergeConfig = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}
