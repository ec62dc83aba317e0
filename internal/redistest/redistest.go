// Package redistest starts throwaway redis-server processes for tests: a
// standalone server or a three-master cluster, on free 127.0.0.1 ports, with
// no persistence, in a temporary directory, stopped by pid when the test
// ends. It never touches a Redis on the default port.
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
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		if os.Getenv("SWITCHBOARD_REQUIRE_REDIS") == "1" {
			tb.Fatalf("redis-cli not found on PATH: %v", err)
		}
		tb.Skip("redis-cli not found on PATH: skipping the Redis Cluster tests")
	}
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
