// Package redistest starts throwaway redis-server processes for tests: a
// standalone server, a three-master cluster (with or without a replica per
// master), a master watched by a Sentinel, or a master and replica watched
// by three Sentinels, on free 127.0.0.1 ports, with no persistence, in
// temporary directories, stopped by pid when the test ends (and paused
// with SIGSTOP when a test needs a hung node). It never touches a Redis on
// the default port.
//
// Without redis-server on PATH the tests that need it are skipped with a
// message, unless SWITCHBOARD_REQUIRE_REDIS=1, which makes them fail.
package redistest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Server is one redis-server process.
type Server struct {
	Addr string // 127.0.0.1:port
	Port int
	dir  string
	args []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan error // receives the process's exit
}

// binary finds redis-server, or skips (or fails) the test.
func binary(tb testing.TB) string {
	tb.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("SWITCHBOARD_REQUIRE_REDIS") == "1" {
			tb.Fatalf("redis-server not found on PATH and SWITCHBOARD_REQUIRE_REDIS=1: %v", err)
		}
		tb.Skip("redis-server not found on PATH: skipping the Redis tests (install the redis-server package, or set SWITCHBOARD_REQUIRE_REDIS=1 to make this a failure)")
	}
	return path
}

// freePort returns a loopback port that was free a moment ago, never 6379.
func freePort(tb testing.TB) int {
	tb.Helper()
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatalf("find a free port: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		// A cluster node also listens on port+10000 for the cluster bus.
		if port != 6379 && port+10000 <= 65535 {
			if bus, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+10000)); err == nil {
				_ = bus.Close()
				return port
			}
		}
	}
}

// Start starts a standalone redis-server and stops it when the test ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	return start(tb, binary(tb))
}

func start(tb testing.TB, bin string, extra ...string) *Server {
	tb.Helper()
	dir := tb.TempDir()
	port := freePort(tb)
	s := &Server{Addr: "127.0.0.1:" + strconv.Itoa(port), Port: port, dir: dir}
	s.args = append([]string{
		"--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--dir", dir,
		"--save", "", "--appendonly", "no", "--protected-mode", "yes",
		"--logfile", filepath.Join(dir, "redis.log"), "--daemonize", "no",
	}, extra...)
	if err := s.launch(bin); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Kill)
	return s
}

func (s *Server) launch(bin string) error {
	cmd := exec.Command(bin, s.args...)
	cmd.Dir = s.dir
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server on %s: %w", s.Addr, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			s.mu.Lock()
			s.cmd, s.done = nil, nil
			s.mu.Unlock()
			log, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
			return fmt.Errorf("redis-server on %s exited: %v\n%s", s.Addr, err, log)
		default:
		}
		if reply, err := s.Do("PING"); err == nil && reply == "PONG" {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.Kill()
	return fmt.Errorf("redis-server on %s did not answer PING within 10s", s.Addr)
}

// Kill stops the server at once (SIGKILL), as a crash would, and waits
// for the process to be gone.
func (s *Server) Kill() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd, s.done = nil, nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
	}
}

// Restart starts the server again on the same port and directory (a
// cluster node keeps its nodes.conf, so it rejoins).
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	if err := s.launch(binary(tb)); err != nil {
		tb.Fatal(err)
	}
}

// Do sends one command over a fresh connection and returns the reply as
// text (simple strings, integers and bulk strings; arrays are not needed).
func (s *Server) Do(args ...string) (string, error) {
	conn, err := net.DialTimeout("tcp", s.Addr, time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := conn.Write([]byte(b.String())); err != nil {
		return "", err
	}
	r := bufio.NewReader(conn)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	switch {
	case strings.HasPrefix(line, "+"), strings.HasPrefix(line, ":"):
		return line[1:], nil
	case strings.HasPrefix(line, "-"):
		return "", fmt.Errorf("redis %s: %s", s.Addr, line[1:])
	case strings.HasPrefix(line, "$"):
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return "", err
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	}
	return "", fmt.Errorf("redis %s: unexpected reply %q", s.Addr, line)
}

// Cluster is a three-master Redis Cluster without replicas.
type Cluster struct {
	Nodes []*Server
}

// Addrs returns the nodes' addresses.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = n.Addr
	}
	return out
}

// StartCluster starts three cluster-enabled servers, assigns the slots with
// redis-cli --cluster create and waits for cluster_state:ok on every node.
// The nodes run with cluster-require-full-coverage no (so the masters that
// are up keep serving their slots when one is down) and a short
// cluster-node-timeout.
func StartCluster(tb testing.TB) *Cluster {
	tb.Helper()
	bin := binary(tb)
	cli := redisCLI(tb)
	c := &Cluster{}
	for range 3 {
		c.Nodes = append(c.Nodes, start(tb, bin, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "1000", "--cluster-require-full-coverage", "no"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, cli, append([]string{"--cluster", "create"}, append(c.Addrs(), "--cluster-replicas", "0", "--cluster-yes")...)...).CombinedOutput()
	if err != nil {
		tb.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	c.WaitOK(tb)
	return c
}

// WaitOK waits until every running node reports cluster_state:ok.
func (c *Cluster) WaitOK(tb testing.TB) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, n := range c.Nodes {
		for {
			info, err := n.Do("CLUSTER", "INFO")
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				tb.Fatalf("cluster node %s not ok within 30s: %v %s", n.Addr, err, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// Sentinel is a master watched by one Redis Sentinel.
type Sentinel struct {
	Master     *Server
	Sentinel   *Server
	MasterName string
}

// StartSentinel starts a master and a Sentinel monitoring it under the name
// "mymaster" (quorum 1), and waits until the Sentinel reports the master.
func StartSentinel(tb testing.TB) *Sentinel {
	tb.Helper()
	bin := binary(tb)
	master := start(tb, bin)
	dir := tb.TempDir()
	port := freePort(tb)
	conf := filepath.Join(dir, "sentinel.conf")
	content := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nsentinel monitor mymaster 127.0.0.1 %d 1\nsentinel down-after-milliseconds mymaster 1000\n", port, dir, master.Port)
	if err := os.WriteFile(conf, []byte(content), 0o600); err != nil {
		tb.Fatal(err)
	}
	s := &Server{Addr: "127.0.0.1:" + strconv.Itoa(port), Port: port, dir: dir,
		args: []string{conf, "--sentinel", "--logfile", filepath.Join(dir, "sentinel.log"), "--daemonize", "no"}}
	if err := s.launch(bin); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Kill)
	deadline := time.Now().Add(15 * time.Second)
	for {
		reply, err := s.Do("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster")
		if err == nil || strings.Contains(fmt.Sprint(err), "unexpected reply \"*2\"") {
			break
		}
		if time.Now().After(deadline) {
			tb.Fatalf("sentinel on %s does not know the master: %v %q", s.Addr, err, reply)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return &Sentinel{Master: master, Sentinel: s, MasterName: "mymaster"}
}

// Pause stops the server's process (SIGSTOP), as a hung node: it keeps its
// connections and answers nothing until Resume.
func (s *Server) Pause() { s.signal(syscall.SIGSTOP) }

// Resume continues a paused server (SIGCONT).
func (s *Server) Resume() { s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		_ = s.cmd.Process.Signal(sig)
	}
}

// Role returns "master" or "slave" (INFO replication).
func (s *Server) Role() string {
	info, err := s.Do("INFO", "replication")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "role:"); ok {
			return v
		}
	}
	return ""
}

// StartClusterWithReplicas starts a three-master Redis Cluster with one
// replica per master (six servers), cluster-node-timeout 1s and
// cluster-require-full-coverage no, and waits for cluster_state:ok and
// every replica in sync. Nodes[0..2] are the masters, Nodes[3..5] the
// replicas, as redis-cli --cluster create assigns them.
func StartClusterWithReplicas(tb testing.TB) *Cluster {
	tb.Helper()
	bin := binary(tb)
	cli := redisCLI(tb)
	c := &Cluster{}
	for range 6 {
		c.Nodes = append(c.Nodes, start(tb, bin, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "1000", "--cluster-require-full-coverage", "no", "--cluster-replica-validity-factor", "0"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, cli, append([]string{"--cluster", "create"}, append(c.Addrs(), "--cluster-replicas", "1", "--cluster-yes")...)...).CombinedOutput()
	if err != nil {
		tb.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	c.WaitOK(tb)
	deadline := time.Now().Add(30 * time.Second)
	for _, n := range c.Nodes {
		for n.Role() == "slave" && !strings.Contains(must(n.Do("INFO", "replication")), "master_link_status:up") {
			if time.Now().After(deadline) {
				tb.Fatalf("replica %s not in sync within 30s", n.Addr)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return c
}

func must(s string, _ error) string { return s }

func redisCLI(tb testing.TB) string {
	tb.Helper()
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		if os.Getenv("SWITCHBOARD_REQUIRE_REDIS") == "1" {
			tb.Fatalf("redis-cli not found on PATH: %v", err)
		}
		tb.Skip("redis-cli not found on PATH: skipping the Redis Cluster tests")
	}
	return cli
}

// Failover is a master with one replica watched by three Sentinels (quorum
// 2, down-after 1s), for failover tests.
type Failover struct {
	Master, Replica *Server
	Sentinels       []*Server
	MasterName      string
}

// SentinelAddrs returns the Sentinels' addresses.
func (f *Failover) SentinelAddrs() []string {
	out := make([]string, len(f.Sentinels))
	for i, s := range f.Sentinels {
		out[i] = s.Addr
	}
	return out
}

// MasterAddr asks the Sentinels which server is the master now.
func (f *Failover) MasterAddr() string {
	for _, s := range f.Sentinels {
		if addr, err := sentinelMaster(s, f.MasterName); err == nil {
			return addr
		}
	}
	return ""
}

// sentinelMaster reads SENTINEL GET-MASTER-ADDR-BY-NAME's two-element
// array reply.
func sentinelMaster(s *Server, name string) (string, error) {
	conn, err := net.DialTimeout("tcp", s.Addr, time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	fmt.Fprintf(conn, "*3\r\n$8\r\nSENTINEL\r\n$23\r\nGET-MASTER-ADDR-BY-NAME\r\n$%d\r\n%s\r\n", len(name), name)
	r := bufio.NewReader(conn)
	var parts []string
	line, err := r.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "*2") {
		return "", fmt.Errorf("sentinel %s: %q %v", s.Addr, line, err)
	}
	for range 2 {
		if _, err := r.ReadString('\n'); err != nil { // $len
			return "", err
		}
		v, err := r.ReadString('\n')
		if err != nil {
			return "", err
		}
		parts = append(parts, strings.TrimRight(v, "\r\n"))
	}
	return parts[0] + ":" + parts[1], nil
}

// StartFailover starts a master, a replica of it and three Sentinels, and
// waits until the replica is in sync and every Sentinel knows the master
// and its replica.
func StartFailover(tb testing.TB) *Failover {
	tb.Helper()
	bin := binary(tb)
	master := start(tb, bin)
	replica := start(tb, bin, "--replicaof", "127.0.0.1", strconv.Itoa(master.Port))
	f := &Failover{Master: master, Replica: replica, MasterName: "mymaster"}
	for range 3 {
		dir := tb.TempDir()
		port := freePort(tb)
		conf := filepath.Join(dir, "sentinel.conf")
		content := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nsentinel monitor mymaster 127.0.0.1 %d 2\n"+
			"sentinel down-after-milliseconds mymaster 1000\nsentinel failover-timeout mymaster 5000\nsentinel parallel-syncs mymaster 1\n",
			port, dir, master.Port)
		if err := os.WriteFile(conf, []byte(content), 0o600); err != nil {
			tb.Fatal(err)
		}
		s := &Server{Addr: "127.0.0.1:" + strconv.Itoa(port), Port: port, dir: dir,
			args: []string{conf, "--sentinel", "--logfile", filepath.Join(dir, "sentinel.log"), "--daemonize", "no"}}
		if err := s.launch(bin); err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(s.Kill)
		f.Sentinels = append(f.Sentinels, s)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		synced := strings.Contains(must(replica.Do("INFO", "replication")), "master_link_status:up")
		known := 0
		for _, s := range f.Sentinels {
			if info, err := s.Do("INFO", "sentinel"); err == nil && strings.Contains(info, "slaves=1") && strings.Contains(info, "sentinels=3") {
				known++
			}
		}
		if synced && known == len(f.Sentinels) {
			return f
		}
		if time.Now().After(deadline) {
			tb.Fatalf("failover set not ready within 30s (replica synced %v, sentinels ready %d)", synced, known)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
