package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/switchboard-go/switchboard"
	"github.com/switchboard-go/switchboard/internal/redistest"
	"github.com/switchboard-go/switchboard/redisstore"
)

// TestClusterNodeFailure kills one master of a three-master cluster by pid:
// exactly its partitions fail, quickly, with ErrPartitionUnavailable (and
// Resolve answers session_unavailable from the fallback), the others keep
// serving, and after the node restarts (same port, same nodes.conf) its
// partitions serve again without restarting anything else.
func TestClusterNodeFailure(t *testing.T) {
	cl := redistest.StartCluster(t)
	c := clusterClient(t, cl.Addrs())
	const parts = 12
	m := newManager(t, c, redisstore.Options{KeyPrefix: "fault"}, switchboard.Config{PartitionCount: parts})
	ctx := context.Background()

	// One room per partition.
	keys := make([]switchboard.SessionKey, parts)
	for found, i := 0, 0; found < parts; i++ {
		k := switchboard.SessionKey{ChannelType: "slack", BridgeID: "T1", RoomID: fmt.Sprintf("C%d", i)}
		if p := m.RoutePartition(k); keys[p] == (switchboard.SessionKey{}) {
			keys[p] = k
			found++
		}
	}
	owners := make([]string, parts)
	for p, k := range keys {
		if err := m.Set(ctx, k, switchboard.Route{ExternalRoomID: k.RoomID}); err != nil {
			t.Fatal(err)
		}
		ps, err := m.PartitionStatus(ctx, p)
		if err != nil || !ps.Available || ps.Entries != 1 {
			t.Fatalf("PartitionStatus(%d) = %+v, %v", p, ps, err)
		}
		owners[p] = ps.Owner
	}
	victim := cl.Nodes[0]
	down := 0
	for _, o := range owners {
		if o == victim.Addr {
			down++
		}
	}
	if down == 0 || down == parts {
		t.Fatalf("owners %v: want the victim %s to own some partitions but not all", owners, victim.Addr)
	}

	victim.Kill()
	fb := switchboard.Route{ExternalRoomID: "fallback"}
	const bound = time.Second // the default OpTimeout is 500ms
	for round := range 3 {    // right after the kill, and again once the cluster has noticed
		for p, k := range keys {
			start := time.Now()
			res, err := m.Resolve(ctx, k, fb)
			_, getErr := m.Get(ctx, k)
			elapsed := time.Since(start)
			if elapsed > 2*bound {
				t.Fatalf("round %d partition %d: Resolve+Get took %v, want under %v", round, p, elapsed, 2*bound)
			}
			if owners[p] == victim.Addr {
				if err != nil || res.Source != switchboard.SourceProvidedFallback || res.FallbackReason != switchboard.ReasonSessionUnavailable {
					t.Fatalf("round %d partition %d (down): Resolve = %+v, %v; want session_unavailable", round, p, res, err)
				}
				if !errors.Is(getErr, switchboard.ErrPartitionUnavailable) {
					t.Fatalf("round %d partition %d (down): Get err = %v, want ErrPartitionUnavailable", round, p, getErr)
				}
				if ps, err := m.PartitionStatus(ctx, p); err != nil || ps.Available {
					t.Fatalf("round %d partition %d (down): PartitionStatus = %+v, %v", round, p, ps, err)
				}
				continue
			}
			if err != nil || res.Source != switchboard.SourceStateHit || getErr != nil {
				t.Fatalf("round %d partition %d (up): Resolve = %+v, %v; Get err %v", round, p, res, err, getErr)
			}
		}
		if round == 0 {
			time.Sleep(2 * time.Second) // let the other masters mark the node as failed (cluster-node-timeout 1s)
		}
	}
	pr, err := m.Prune(ctx)
	if !errors.Is(err, switchboard.ErrPartitionUnavailable) || pr.Partitions != parts-down {
		t.Fatalf("Prune with a node down = %+v, %v; want %d partitions pruned and ErrPartitionUnavailable", pr, err, parts-down)
	}

	victim.Restart(t)
	cl.WaitOK(t)
	deadline := time.Now().Add(20 * time.Second)
	for p, k := range keys {
		for {
			err := m.Set(ctx, k, switchboard.Route{ExternalRoomID: "again"})
			if err == nil {
				break
			}
			if !errors.Is(err, switchboard.ErrPartitionUnavailable) || time.Now().After(deadline) {
				t.Fatalf("partition %d after the restart: %v", p, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if res, err := m.Resolve(ctx, k); err != nil || res.ExternalRoomID != "again" {
			t.Fatalf("partition %d after the restart: Resolve = %+v, %v", p, res, err)
		}
	}
}
