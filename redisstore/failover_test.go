package redisstore_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/switchboard-go/switchboard"
	"github.com/switchboard-go/switchboard/internal/redistest"
	"github.com/switchboard-go/switchboard/redisstore"
)

// load writes to one key per partition from its own goroutine, in a loop,
// recording for every partition when writes fail and succeed, the latency
// of each write, and the last write acknowledged before a mark.
type load struct {
	m    *switchboard.Manager
	keys []switchboard.SessionKey

	mu        sync.Mutex
	markAt    time.Time
	lastFail  []time.Time // per partition, the last failed write
	firstOK   []time.Time // per partition, the first successful write after the mark
	ackBefore []int       // per partition, the last sequence number acknowledged before the mark
	lat       [][]time.Duration
	errs      []int // per partition, failed writes after the mark
	stop      atomic.Bool
	wg        sync.WaitGroup
}

func startLoad(m *switchboard.Manager, keys []switchboard.SessionKey) *load {
	l := &load{m: m, keys: keys, lastFail: make([]time.Time, len(keys)), firstOK: make([]time.Time, len(keys)),
		ackBefore: make([]int, len(keys)), lat: make([][]time.Duration, len(keys)), errs: make([]int, len(keys))}
	for p, k := range keys {
		l.wg.Go(func() {
			for seq := 1; !l.stop.Load(); seq++ {
				start := time.Now()
				err := m.Set(context.Background(), k, switchboard.Route{ExternalRoomID: strconv.Itoa(seq)})
				took := time.Since(start)
				l.mu.Lock()
				marked := !l.markAt.IsZero() && start.After(l.markAt)
				switch {
				case err != nil:
					l.lastFail[p] = time.Now()
					if marked {
						l.errs[p]++
					}
				case !marked:
					l.ackBefore[p] = seq
				case l.firstOK[p].IsZero():
					l.firstOK[p] = time.Now()
				}
				if marked {
					l.lat[p] = append(l.lat[p], took)
				}
				l.mu.Unlock()
				time.Sleep(2 * time.Millisecond)
			}
		})
	}
	return l
}

func (l *load) mark() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.markAt = time.Now()
	return l.markAt
}

// recovered reports whether every partition in ps has written successfully
// after its last failure, and when the last of them recovered.
func (l *load) recovered(ps []int) (bool, time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var last time.Time
	for _, p := range ps {
		if l.lastFail[p].IsZero() && !l.firstOK[p].IsZero() {
			continue // never failed
		}
		if l.firstOK[p].IsZero() || !l.firstOK[p].After(l.lastFail[p]) {
			return false, time.Time{}
		}
		if l.lastFail[p].After(last) {
			last = l.lastFail[p]
		}
	}
	return true, last
}

// waitRecovered waits for recovered, for at most limit after the mark, and
// returns the window from the mark to the last failure of ps.
func (l *load) waitRecovered(t *testing.T, ps []int, limit time.Duration) time.Duration {
	t.Helper()
	// A partition has recovered once it wrote after its last failure and
	// then kept writing for a while.
	deadline := l.markAt.Add(limit)
	for {
		ok, last := l.recoveredStably(ps, 300*time.Millisecond)
		if ok {
			if last.IsZero() {
				return 0
			}
			return last.Sub(l.markAt)
		}
		if time.Now().After(deadline) {
			t.Fatalf("partitions %v did not serve again within %v", ps, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (l *load) recoveredStably(ps []int, stable time.Duration) (bool, time.Time) {
	ok, last := l.recovered(ps)
	if !ok {
		return false, time.Time{}
	}
	return time.Since(last) > stable, last
}

func (l *load) finish() {
	l.stop.Store(true)
	l.wg.Wait()
}

// p99 returns the 99th percentile of the latencies of ps.
func (l *load) p99(ps []int) (time.Duration, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var all []time.Duration
	errs := 0
	for _, p := range ps {
		all = append(all, l.lat[p]...)
		errs += l.errs[p]
	}
	if len(all) == 0 {
		return 0, errs
	}
	slices.Sort(all)
	return all[len(all)*99/100], errs
}

// lost counts the partitions whose record, read now, is older than the
// last write acknowledged before the mark.
func (l *load) lost(t *testing.T) int {
	t.Helper()
	n := 0
	for p, k := range l.keys {
		rec, err := l.m.Get(context.Background(), k)
		if err != nil {
			t.Fatalf("Get(%v) after the failover: %v", k, err)
		}
		if seq, _ := strconv.Atoi(rec.Route.ExternalRoomID); seq < l.ackBefore[p] {
			n++
		}
	}
	return n
}

// keysPerPartition returns one key in each partition of m.
func keysPerPartition(m *switchboard.Manager) []switchboard.SessionKey {
	keys := make([]switchboard.SessionKey, m.PartitionCount())
	for found, i := 0, 0; found < len(keys); i++ {
		k := switchboard.SessionKey{ChannelType: "slack", BridgeID: "T1", RoomID: fmt.Sprintf("C%d", i)}
		if p := m.RoutePartition(k); keys[p] == (switchboard.SessionKey{}) {
			keys[p] = k
			found++
		}
	}
	return keys
}

func owners(t *testing.T, m *switchboard.Manager) []string {
	t.Helper()
	out := make([]string, m.PartitionCount())
	for p := range out {
		st, err := m.PartitionStatus(context.Background(), p)
		if err != nil || !st.Available {
			t.Fatalf("PartitionStatus(%d) = %+v, %v", p, st, err)
		}
		out[p] = st.Owner
	}
	return out
}

// TestClusterFailoverFollowed kills a master that has a replica, under
// load: its partitions serve again within cluster-node-timeout (1s) + 3s,
// because the client reloads its slot map when calls fail; the other partitions keep p99
// under 20ms without an error; writes acknowledged before the kill are
// counted after it (asynchronous replication may lose the last ones).
func TestClusterFailoverFollowed(t *testing.T) {
	cl := redistest.StartClusterWithReplicas(t)
	c := clusterClient(t, cl.Addrs()[:3])
	m := newManager(t, c, redisstore.Options{KeyPrefix: "failover"}, switchboard.Config{PartitionCount: 24})
	keys := keysPerPartition(m)
	own := owners(t, m)
	victim := cl.Nodes[0]
	var down, up []int
	for p, o := range own {
		if o == victim.Addr {
			down = append(down, p)
		} else {
			up = append(up, p)
		}
	}
	if len(down) == 0 || len(up) == 0 {
		t.Fatalf("owners %v: want the victim %s to own some partitions", own, victim.Addr)
	}
	l := startLoad(m, keys)
	time.Sleep(500 * time.Millisecond) // acknowledged writes before the kill
	l.mark()
	victim.Kill()
	window := l.waitRecovered(t, down, 1*time.Second+3*time.Second+2*time.Second)
	time.Sleep(300 * time.Millisecond)
	l.finish()
	p99, errs := l.p99(up)
	lost := l.lost(t)
	t.Logf("kill -9 of master %s (%d of %d partitions): served again after %v; other partitions p99 %v, %d errors; %d of %d partitions lost their last acknowledged write",
		victim.Addr, len(down), len(keys), window.Round(time.Millisecond), p99.Round(time.Microsecond), errs, lost, len(keys))
	if window > 4*time.Second {
		t.Errorf("the failed-over partitions were unavailable for %v, want at most cluster-node-timeout + 3s = 4s", window)
	}
	if errs != 0 || p99 > 20*time.Millisecond {
		t.Errorf("live partitions during the failover: p99 %v, %d errors; want under 20ms and none", p99, errs)
	}
	for _, p := range down {
		if st, err := m.PartitionStatus(context.Background(), p); err != nil || !st.Available || st.Owner == victim.Addr {
			t.Errorf("partition %d after the failover: %+v, %v; want served by the promoted replica", p, st, err)
		}
	}
}

// TestClusterHungMasterFollowed pauses a master (SIGSTOP) for 8 seconds:
// once its replica wins the election, the partitions follow the new master
// while the old one is still hung.
func TestClusterHungMasterFollowed(t *testing.T) {
	cl := redistest.StartClusterWithReplicas(t)
	c := clusterClient(t, cl.Addrs()[:3])
	m := newManager(t, c, redisstore.Options{KeyPrefix: "hung"}, switchboard.Config{PartitionCount: 24})
	keys := keysPerPartition(m)
	own := owners(t, m)
	victim := cl.Nodes[1]
	var down []int
	for p, o := range own {
		if o == victim.Addr {
			down = append(down, p)
		}
	}
	l := startLoad(m, keys)
	time.Sleep(300 * time.Millisecond)
	l.mark()
	victim.Pause()
	defer victim.Resume()
	const paused = 8 * time.Second
	window := l.waitRecovered(t, down, paused-time.Second)
	t.Logf("SIGSTOP of master %s (%d partitions): served by the promoted replica after %v, while the old master was still hung",
		victim.Addr, len(down), window.Round(time.Millisecond))
	victim.Resume()
	l.finish()
	if window > 4*time.Second {
		t.Errorf("partitions of the hung master were unavailable for %v, want at most 4s", window)
	}
}

// TestSentinelFailoverFollowed kills the master of a Sentinel-managed pair
// under load: writes go to the promoted replica within seconds.
func TestSentinelFailoverFollowed(t *testing.T) {
	f := redistest.StartFailover(t)
	opt := clientOption(f.SentinelAddrs()...)
	opt.Sentinel = rueidis.SentinelOption{MasterSet: f.MasterName}
	c := newClient(t, opt)
	m := newManager(t, c, redisstore.Options{KeyPrefix: "sentinel"}, switchboard.Config{PartitionCount: 4})
	keys := keysPerPartition(m)
	l := startLoad(m, keys)
	time.Sleep(500 * time.Millisecond)
	l.mark()
	old := f.Master.Addr
	f.Master.Kill()
	all := []int{0, 1, 2, 3}
	window := l.waitRecovered(t, all, 15*time.Second)
	l.finish()
	lost := l.lost(t)
	t.Logf("kill -9 of the Sentinel master %s: writes served again after %v (new master %s); %d of %d keys lost their last acknowledged write",
		old, window.Round(time.Millisecond), f.MasterAddr(), lost, len(keys))
	if f.MasterAddr() == old {
		t.Fatalf("the Sentinels did not fail over from %s", old)
	}
	if window > 8*time.Second {
		t.Errorf("writes were unavailable for %v after the master died, want at most down-after (1s) + 7s", window)
	}
	st, err := m.PartitionStatus(context.Background(), 0)
	if err != nil || !st.Available || st.Owner != f.Replica.Addr {
		t.Errorf("PartitionStatus after the failover = %+v, %v; want the promoted replica %s", st, err, f.Replica.Addr)
	}
}
