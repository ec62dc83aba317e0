package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard-go/switchboard"
	"github.com/switchboard-go/switchboard/client"
	"github.com/switchboard-go/switchboard/internal/redistest"
)

// binPath is the switchboard binary TestMain builds for the end-to-end
// tests.
var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "switchboard-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "switchboard")
	if out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build switchboard: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// lockedBuffer collects a process's output.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}
func (b *lockedBuffer) String() string { b.mu.Lock(); defer b.mu.Unlock(); return b.buf.String() }

// proc is a running switchboard serve.
type proc struct {
	cmd    *exec.Cmd
	addr   string
	stderr *lockedBuffer
	done   chan error
}

// startServe starts switchboard serve with args (and --listen addr) and
// waits until it answers /healthz.
func startServe(t *testing.T, addr string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{addr: addr, stderr: &lockedBuffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command(binPath, append([]string{"serve", "--listen", addr}, args...)...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("serve stderr:\n%s", p.stderr)
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("serve exited early: %v\n%s", err, p.stderr)
		default:
		}
		scheme := "http"
		hc := http.DefaultClient
		if strings.Contains(strings.Join(args, " "), "tls") {
			scheme = "https"
			hc = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
		}
		if resp, err := hc.Get(scheme + "://" + addr + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("serve did not answer /healthz within 15s\n%s", p.stderr)
	return nil
}

// stop sends SIGTERM and returns the exit error.
func (p *proc) stop(t *testing.T) error {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.done <- err
		return err
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop within 15s of SIGTERM")
		return nil
	}
}

// cli runs a client command and returns its stdout, stderr and exit code.
func cli(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(binPath, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return stdout.String(), stderr.String(), code
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestE2ECLI(t *testing.T) {
	dir := t.TempDir()
	tokens := writeFile(t, dir, "sales.tokens", "sales-token\n")
	config := writeFile(t, dir, "sb.yaml", fmt.Sprintf(`
session_manager: { partition_count: 4, ttl: 30m }
instances:
  default: {}
  sales:
    tokens_file: %s
    session_manager: { ttl: 5m }
`, tokens))
	addr := freeAddr(t)
	startServe(t, addr, nil, "--config", config)
	server := "--server=http://" + addr
	run := func(wantCode int, wantOut string, args ...string) string {
		t.Helper()
		out, errOut, code := cli(t, nil, append(args, server)...)
		if code != wantCode || !strings.Contains(out+errOut, wantOut) {
			t.Fatalf("switchboard %s: exit %d, stdout %q, stderr %q; want exit %d mentioning %q", strings.Join(args, " "), code, out, errOut, wantCode, wantOut)
		}
		return out
	}
	run(0, "stored telegram:bot_1:chat_123 -> -100123", "set", "telegram:bot_1:chat_123", "-100123", "--ttl", "10m", "--meta", "lang=de")
	run(0, "telegram:bot_1:chat_123 -> -100123", "get", "telegram:bot_1:chat_123")
	var rec struct {
		Route       switchboard.Route `json:"route"`
		ExpiresAtMs int64             `json:"expires_at_ms"`
	}
	if err := json.Unmarshal([]byte(run(0, "external_room_id", "get", "-o", "json", "telegram:bot_1:chat_123")), &rec); err != nil || rec.Route.Meta["lang"] != "de" {
		t.Fatalf("get -o json: %+v, %v", rec, err)
	}
	run(0, "-100123 (partition_fallback, thread_scope_miss)", "resolve", "telegram:bot_1:chat_123:42")
	run(0, "-100123 (state_hit)", "resolve", "telegram:bot_1:chat_123:42")
	run(0, "-100999 (provided_fallback, miss)", "resolve", "--fallback", "-100999", "telegram:bot_1:chat_9")
	run(0, `"source": "provided_fallback"`, "resolve", "-o", "json", "--fallback", "C1", "slack:T1:C1")
	run(0, "INDEX  OWNER", "partitions")
	run(0, "memory", "partitions", "2")
	run(0, `"index": 2`, "partitions", "-o", "json", "2") // snake_case, as in the HTTP API
	run(0, "ttl: 30m0s", "config")
	run(0, `"ttl_ms": 300000`, "config", "--instance", "sales", "--token", "sales-token", "-o", "json")
	run(0, "pruned 0 expired record(s) in 4 partition(s)", "prune")
	run(0, "deleted telegram:bot_1:chat_123", "delete", "telegram:bot_1:chat_123")
	run(1, "not_found", "get", "telegram:bot_1:chat_123")
	run(1, "not_found", "delete", "telegram:bot_1:chat_123")
	run(1, "no_route", "resolve", "slack:T1:nothing")
	run(1, "unauthorized", "config", "--instance", "sales")
	run(1, "unknown_instance", "config", "--instance", "nobody", "--token", "sales-token")
	run(1, "unauthorized", "config", "--instance", "nobody") // without a valid token, as for an instance that needs one
	run(1, "not_found", "partitions", "9")
	run(2, "invalid session key", "get", "telegram:bot_1")
	run(2, "wrong number of arguments", "set", "telegram:bot_1:chat_1")
	if out, _, code := cli(t, []string{"SWITCHBOARD_TOKEN=sales-token", "SWITCHBOARD_SERVER=http://" + addr}, "config", "--instance", "sales"); code != 0 || !strings.Contains(out, "ttl: 5m0s") {
		t.Fatalf("config with SWITCHBOARD_TOKEN: %d %q", code, out)
	}
	if out, _, code := cli(t, nil, "version"); code != 0 || !strings.HasPrefix(out, "switchboard ") {
		t.Fatalf("version: %d %q", code, out)
	}
	for _, cmd := range []string{"serve", "set", "get", "resolve", "delete", "prune", "partitions", "config", "bench"} {
		if _, errOut, code := cli(t, nil, cmd, "--help"); code != 0 || !strings.Contains(errOut, "Example") && !strings.Contains(errOut, "example") {
			t.Fatalf("%s --help: exit %d, %q", cmd, code, errOut)
		}
	}
	// Raw HTTP against the binary: the envelope and the status codes.
	for _, c := range []struct {
		method, path, body string
		status             int
		want               string
	}{
		{"PUT", "/v1/instances/default/routes/slack:T1:C1", `{"route":{"external_room_id":"x"},"extra":1}`, 400, `"invalid_json"`},
		{"PUT", "/v1/instances/default/routes/slack:T1:C1", `{"route":{"external_room_id":"` + strings.Repeat("x", 65<<10) + `"}}`, 413, `"body_too_large"`},
		{"GET", "/v1/instances/sales/config", "", 401, `"unauthorized"`},
		{"GET", "/v1/instances/nobody/config", "", 401, `"unauthorized"`},
		{"GET", "/v1/openapi.yaml", "", 200, "openapi: 3"},
		{"GET", "/metrics", "", 200, `switchboard_sets_total{instance="default"}`},
		{"GET", "/readyz", "", 200, "ready"},
	} {
		req, _ := http.NewRequest(c.method, "http://"+addr+c.path, strings.NewReader(c.body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status || !strings.Contains(string(body), c.want) {
			t.Fatalf("%s %s = %d %.200s, want %d with %s", c.method, c.path, resp.StatusCode, body, c.status, c.want)
		}
	}
	if _, _, code := cli(t, nil, "frobnicate"); code != 2 {
		t.Fatalf("unknown command: exit %d, want 2", code)
	}
}

func TestE2ERestartKeepsRoutes(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	config := writeFile(t, dir, "sb.yaml", fmt.Sprintf(`
data_dir: %s
instances:
  a: {}
  b: { tokens: ["b-token"] }
`, data))
	addr := freeAddr(t)
	p := startServe(t, addr, nil, "--config", config)
	ctx := context.Background()
	ca, _ := client.New("http://"+addr, client.Options{Instance: "a"})
	cb, _ := client.New("http://"+addr, client.Options{Instance: "b", Token: "b-token"})
	ka := switchboard.SessionKey{ChannelType: "telegram", BridgeID: "bot", RoomID: "chat_1", ThreadID: "7"}
	kb := switchboard.SessionKey{ChannelType: "matrix", BridgeID: "b", RoomID: "!x:m.org"}
	if err := ca.Set(ctx, ka, switchboard.Route{ExternalRoomID: "-1001", Meta: map[string]string{"k": "v"}}, switchboard.WithTTL(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := cb.Set(ctx, kb, switchboard.Route{ExternalRoomID: "!x:m.org"}); err != nil {
		t.Fatal(err)
	}
	before, err := ca.Get(ctx, ka)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.stop(t); err != nil {
		t.Fatalf("serve after SIGTERM: %v (want exit 0)\n%s", err, p.stderr)
	}
	for _, name := range []string{"a.snapshot", "b.snapshot"} {
		if _, err := os.Stat(filepath.Join(data, name)); err != nil {
			t.Fatalf("snapshot %s: %v", name, err)
		}
	}

	startServe(t, addr, nil, "--config", config)
	after, err := ca.Get(ctx, ka)
	if err != nil || after.Route.ExternalRoomID != "-1001" || after.Route.Meta["k"] != "v" ||
		!after.ExpiresAt.Equal(before.ExpiresAt) || !after.UpdatedAt.Equal(before.UpdatedAt) {
		t.Fatalf("after restart: %+v, %v; before %+v", after, err, before)
	}
	if rec, err := cb.Get(ctx, kb); err != nil || rec.Route.ExternalRoomID != "!x:m.org" {
		t.Fatalf("instance b after restart: %+v, %v", rec, err)
	}
}

func TestE2ECorruptSnapshot(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	addr := freeAddr(t)
	p := startServe(t, addr, nil, "--data-dir", data)
	ctx := context.Background()
	c, _ := client.New("http://"+addr, client.Options{})
	k := switchboard.SessionKey{ChannelType: "c", BridgeID: "b", RoomID: "r"}
	if err := c.Set(ctx, k, switchboard.Route{ExternalRoomID: "x"}); err != nil {
		t.Fatal(err)
	}
	if err := p.stop(t); err != nil {
		t.Fatal(err)
	}
	snap := filepath.Join(data, "default.snapshot")
	content, err := os.ReadFile(snap)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(snap, content[:len(content)-10], 0o600); err != nil { // truncated
		t.Fatal(err)
	}
	_, errOut, code := cli(t, nil, "serve", "--listen", addr, "--data-dir", data)
	if code != 1 || !strings.Contains(errOut, snap) || !strings.Contains(errOut, "--discard-corrupt-snapshot") {
		t.Fatalf("start with a truncated snapshot: exit %d, stderr %q; want exit 1 naming the file and the flag", code, errOut)
	}
	startServe(t, addr, nil, "--data-dir", data, "--discard-corrupt-snapshot")
	if _, err := c.Get(ctx, k); !errors.Is(err, switchboard.ErrNotFound) {
		t.Fatalf("Get after discarding the snapshot: %v", err)
	}
	aside, _ := filepath.Glob(snap + ".corrupt-*")
	if len(aside) != 1 {
		t.Fatalf("the corrupt snapshot was not moved aside: %v", aside)
	}
}

// TestE2EKill9 kills the server while it works: the last snapshot it wrote
// is intact and loads.
func TestE2EKill9(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	addr := freeAddr(t)
	p := startServe(t, addr, nil, "--data-dir", data, "--snapshot-interval", "50ms")
	ctx := context.Background()
	c, _ := client.New("http://"+addr, client.Options{})
	k := switchboard.SessionKey{ChannelType: "c", BridgeID: "b", RoomID: "kept"}
	if err := c.Set(ctx, k, switchboard.Route{ExternalRoomID: "x"}); err != nil {
		t.Fatal(err)
	}
	snap := filepath.Join(data, "default.snapshot")
	deadline := time.Now().Add(10 * time.Second)
	for {
		if b, err := os.ReadFile(snap); err == nil && bytes.Contains(b, []byte(`"c:b:kept"`)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no snapshot with the record within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Keep writing while it dies.
	stopWrites := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stopWrites:
				return
			default:
			}
			_ = c.Set(ctx, switchboard.SessionKey{ChannelType: "c", BridgeID: "b", RoomID: fmt.Sprint(i)}, switchboard.Route{ExternalRoomID: "y"})
		}
	})
	time.Sleep(200 * time.Millisecond)
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	p.done <- nil
	close(stopWrites)
	wg.Wait()
	startServe(t, addr, nil, "--data-dir", data)
	if rec, err := c.Get(ctx, k); err != nil || rec.Route.ExternalRoomID != "x" {
		t.Fatalf("after kill -9 and restart: %+v, %v", rec, err)
	}
}

func TestE2ERefusesPublicWithoutTokens(t *testing.T) {
	_, errOut, code := cli(t, nil, "serve", "--listen", "0.0.0.0:0")
	if code != 1 || !strings.Contains(errOut, "--insecure-no-auth") {
		t.Fatalf("exit %d, stderr %q; want a refusal naming --insecure-no-auth", code, errOut)
	}
}

func TestE2ETLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	addr := freeAddr(t)
	startServe(t, addr, nil, "--tls-cert-file", certFile, "--tls-key-file", keyFile)
	c, err := client.New("https://"+addr, client.Options{HTTPClient: &http.Client{
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 5 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	k := switchboard.SessionKey{ChannelType: "c", BridgeID: "b", RoomID: "r"}
	if err := c.Set(ctx, k, switchboard.Route{ExternalRoomID: "tls"}); err != nil {
		t.Fatal(err)
	}
	if res, err := c.Resolve(ctx, k); err != nil || res.ExternalRoomID != "tls" {
		t.Fatalf("Resolve over TLS = %+v, %v", res, err)
	}
	// ALPN offers HTTP/2.
	h2 := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}, Timeout: 5 * time.Second}
	resp, err := h2.Get("https://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Proto != "HTTP/2.0" {
		t.Fatalf("over TLS the server speaks %s, want HTTP/2.0", resp.Proto)
	}
}

// TestE2EH2C: with --h2c the server speaks HTTP/2 without TLS too.
func TestE2EH2C(t *testing.T) {
	addr := freeAddr(t)
	startServe(t, addr, nil, "--h2c")
	protocols := new(http.Protocols)
	protocols.SetUnencryptedHTTP2(true)
	hc := &http.Client{Transport: &http.Transport{Protocols: protocols}, Timeout: 5 * time.Second}
	resp, err := hc.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Proto != "HTTP/2.0" || resp.StatusCode != 200 {
		t.Fatalf("h2c: %s %d, want HTTP/2.0 200", resp.Proto, resp.StatusCode)
	}
}

func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "switchboard test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile = writeFile(t, dir, "cert.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	keyFile = writeFile(t, dir, "key.pem", string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})))
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestE2ERedisReplicas: two switchboard serve replicas on one Redis see
// each other's writes at once; /readyz follows Redis.
func TestE2ERedisReplicas(t *testing.T) {
	srv := redistest.Start(t)
	env := []string{"SWITCHBOARD_BACKEND=redis", "SWITCHBOARD_REDIS_ADDRS=" + srv.Addr, "SWITCHBOARD_REDIS_KEY_PREFIX=e2e", "SWITCHBOARD_PARTITION_COUNT=8"}
	a, b := freeAddr(t), freeAddr(t)
	startServe(t, a, env)
	startServe(t, b, env)
	ctx := context.Background()
	ca, _ := client.New("http://"+a, client.Options{})
	cb, _ := client.New("http://"+b, client.Options{})
	room := switchboard.SessionKey{ChannelType: "slack", BridgeID: "T1", RoomID: "C1"}
	if err := ca.Set(ctx, room, switchboard.Route{ExternalRoomID: "C1"}); err != nil {
		t.Fatal(err)
	}
	if res, err := cb.Resolve(ctx, room); err != nil || res.Source != switchboard.SourceStateHit || res.ExternalRoomID != "C1" {
		t.Fatalf("Resolve through the other replica = %+v, %v", res, err)
	}
	thread := room
	thread.ThreadID = "1.2"
	if res, err := cb.Resolve(ctx, thread); err != nil || res.Source != switchboard.SourcePartitionFallback {
		t.Fatalf("thread Resolve = %+v, %v", res, err)
	}
	if res, err := ca.Resolve(ctx, thread); err != nil || res.Source != switchboard.SourceStateHit {
		t.Fatalf("thread Resolve through the first replica = %+v, %v", res, err)
	}
	if sts, err := ca.Partitions(ctx); err != nil || len(sts) == 0 || sts[0].Owner != srv.Addr {
		t.Fatalf("Partitions = %+v, %v; want owner %s", sts, err, srv.Addr)
	}
	ready := func(addr string) int {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if ready(a) != 200 || ready(b) != 200 {
		t.Fatal("readyz not 200 with Redis up")
	}
	srv.Kill()
	start := time.Now()
	if ready(a) != 503 {
		t.Fatal("readyz not 503 with Redis down")
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("readyz took %v with Redis down", took)
	}
	res, err := cb.Resolve(ctx, room, switchboard.Route{ExternalRoomID: "fallback"})
	if err != nil || res.FallbackReason != switchboard.ReasonSessionUnavailable {
		t.Fatalf("Resolve with Redis down = %+v, %v; want session_unavailable", res, err)
	}
	if _, err := cb.Get(ctx, room); !errors.Is(err, switchboard.ErrPartitionUnavailable) {
		t.Fatalf("Get with Redis down: %v, want ErrPartitionUnavailable", err)
	}
}

// TestE2ETrustAndOperations drives the trust and operations commands of
// the real binary against a real server: precedence, conditional writes,
// confirm, invalidate, explain, list and delete-matching, text and JSON,
// with their exit codes.
func TestE2ETrustAndOperations(t *testing.T) {
	addr := freeAddr(t)
	startServe(t, addr, nil)
	server := "--server=http://" + addr
	run := func(wantCode int, wantOut string, args ...string) string {
		t.Helper()
		out, errOut, code := cli(t, nil, append(args, server)...)
		if code != wantCode || !strings.Contains(out+errOut, wantOut) {
			t.Fatalf("switchboard %s: exit %d, stdout %q, stderr %q; want exit %d mentioning %q", strings.Join(args, " "), code, out, errOut, wantCode, wantOut)
		}
		return out
	}
	dm := "telegram:bot_1:dm_7"
	run(0, "stored", "set", dm, "-100777", "--priority", "10", "--writer", "inbound")
	run(1, "superseded", "set", dm, "-100999", "--writer", "heartbeat")
	run(0, "-100777 (revision 1, set by inbound, priority 10", "get", dm)
	run(1, "conflict", "set", dm, "-100777", "--priority", "10", "--if-revision", "5")
	run(0, "stored", "set", dm, "-100777", "--priority", "10", "--if-revision", "1")
	run(1, "conflict", "set", dm, "-100777", "--priority", "10", "--if-absent")
	run(2, "invalid option", "set", dm, "-100777", "--priority", "5000")
	run(2, "invalid option", "set", dm, "-100777", "--if-absent", "--if-revision", "2")
	run(0, "confirmed telegram:bot_1:dm_7 -> -100777", "confirm", dm, "-100777")
	run(1, "conflict", "confirm", dm, "-100000")
	run(1, "not_found", "confirm", "telegram:bot_1:nobody", "-1")
	run(2, "needs --reason", "invalidate", dm, "-100777")
	run(0, "invalidated "+dm, "invalidate", dm, "-100777", "--reason", "403 bot removed")
	run(1, "invalidated", "get", dm)
	run(0, "invalidated: 403 bot removed", "explain", dm, "--fallback", "-100777")
	out := run(0, `"found": "skipped"`, "explain", "-o", "json", dm, "--fallback", "-100777", "--fallback", "-100888")
	var ex struct {
		Resolution struct {
			ExternalRoomID string `json:"external_room_id"`
			FallbackReason string `json:"fallback_reason"`
		} `json:"resolution"`
		Steps []struct{ Role, Found string } `json:"steps"`
	}
	if err := json.Unmarshal([]byte(out), &ex); err != nil || ex.Resolution.ExternalRoomID != "-100888" || ex.Resolution.FallbackReason != "invalidated" || len(ex.Steps) != 3 {
		t.Fatalf("explain -o json = %s (%v)", out, err)
	}
	run(0, "-100888 (provided_fallback, invalidated)", "resolve", dm, "--fallback", "-100777", "--fallback", "-100888")
	for i := range 12 {
		run(0, "stored", "set", fmt.Sprintf("slack:T7:C%d", i), "x", "--writer", "cron")
	}
	run(0, "(12 routes)", "list", "--bridge", "T7")
	run(0, "slack:T7:C3", "list", "--bridge", "T7", "--writer", "cron", "--page-size", "5")
	var listed []struct {
		SessionKey string `json:"session_key"`
		Revision   uint64 `json:"revision"`
	}
	if err := json.Unmarshal([]byte(run(0, "session_key", "list", "-o", "json", "--bridge", "T7", "--page-size", "5")), &listed); err != nil || len(listed) != 12 {
		t.Fatalf("list -o json: %d routes, %v", len(listed), err)
	}
	run(0, "(0 routes)", "list", "--invalidated") // the stored fallback replaced the tombstone
	run(0, "stored", "set", "telegram:bot_1:dm_8", "-100888")
	run(0, "invalidated", "invalidate", "telegram:bot_1:dm_8", "-100888", "--reason", "404 chat not found")
	run(0, "(1 routes)", "list", "--invalidated")
	run(2, "exactly one of --dry-run and --yes", "delete-matching", "--bridge", "T7")
	run(0, "dry run: 12 route(s) match", "delete-matching", "--bridge", "T7", "--dry-run")
	run(0, "(12 routes)", "list", "--bridge", "T7")
	run(2, "empty filter", "delete-matching", "--yes")
	run(0, `"matched": 12`, "delete-matching", "--bridge", "T7", "--yes", "-o", "json")
	run(0, "(0 routes)", "list", "--bridge", "T7")
	run(2, "invalid option", "list", "--scope", "everything")
	for _, cmd := range []string{"explain", "confirm", "invalidate", "list", "delete-matching"} {
		if _, errOut, code := cli(t, nil, cmd, "--help"); code != 0 || !strings.Contains(errOut, "Example") {
			t.Fatalf("%s --help: exit %d, %q", cmd, code, errOut)
		}
	}
}

// TestE2EPersistenceFailureIsSeen: when snapshots cannot be written,
// /readyz answers 503 and switchboard_persistence_errors_total counts the
// failures; when they can again, /readyz recovers.
func TestE2EPersistenceFailureIsSeen(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	startServe(t, addr, nil, "--data-dir", dir, "--snapshot-interval", "50ms")
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	cl, _ := client.New("http://"+addr, client.Options{})
	write := func(room string) {
		t.Helper()
		if err := cl.Set(context.Background(), switchboard.SessionKey{ChannelType: "c", BridgeID: "b", RoomID: room}, switchboard.Route{ExternalRoomID: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	write("1") // a compaction runs only when something was written
	waitFor("a first snapshot", func() bool { _, err := os.Stat(filepath.Join(dir, "default.snapshot")); return err == nil })
	if status, _ := get("/readyz"); status != 200 {
		t.Fatalf("readyz = %d with snapshots working", status)
	}
	// Make the snapshot impossible to write: its path becomes a directory
	// with something in it, so the rename over it fails (as a full or
	// read-only disk makes the write fail; this test runs as any user).
	snap := filepath.Join(dir, "default.snapshot")
	if err := os.Remove(snap); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(snap, "blocker"), 0o755); err != nil {
		t.Fatal(err)
	}
	write("2")
	waitFor("readyz 503", func() bool { status, _ := get("/readyz"); return status == 503 })
	_, metrics := get("/metrics")
	if !regexp.MustCompile(`switchboard_persistence_errors_total\{instance="default"\} [1-9]`).MatchString(metrics) {
		t.Fatalf("no persistence errors counted:\n%s", grepLines(metrics, "persistence"))
	}
	if err := os.RemoveAll(snap); err != nil {
		t.Fatal(err)
	}
	waitFor("readyz 200 again", func() bool { status, _ := get("/readyz"); return status == 200 })
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestE2ECrashLosesNothingAcknowledged runs 64 writers against the real
// binary, kills it (kill -9, or SIGTERM) in the middle, restarts it on
// the same data directory, and compares with the writers' own record of
// acknowledged writes: with fsync always nothing acknowledged is lost;
// with everysec whatever is lost was acknowledged within the last second
// before the kill (a process crash loses nothing the kernel was given, so
// this is expected to be 0 too; a machine crash could lose up to that
// second); SIGTERM loses nothing.
func TestE2ECrashLosesNothingAcknowledged(t *testing.T) {
	for _, c := range []struct {
		name, fsync string
		sig         syscall.Signal
	}{
		{"kill -9, fsync always", "always", syscall.SIGKILL},
		{"kill -9, fsync everysec", "everysec", syscall.SIGKILL},
		{"SIGTERM, fsync no", "no", syscall.SIGTERM},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			config := writeFile(t, dir, "sb.yaml", fmt.Sprintf("data_dir: %s\npersistence: { fsync: %s }\nsession_manager: { partition_count: 8, max_entries_per_partition: 1000000 }\n",
				filepath.Join(dir, "data"), c.fsync))
			addr := freeAddr(t)
			p := startServe(t, addr, nil, "--config", config)
			cl, _ := client.New("http://"+addr, client.Options{})
			type ack struct {
				key switchboard.SessionKey
				at  time.Time
			}
			var mu sync.Mutex
			var acked []ack
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for g := range 64 {
				wg.Go(func() {
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						k := switchboard.SessionKey{ChannelType: "c", BridgeID: fmt.Sprint("w", g), RoomID: fmt.Sprint(i)}
						if err := cl.Set(context.Background(), k, switchboard.Route{ExternalRoomID: "x"}); err != nil {
							return // the server is gone
						}
						mu.Lock()
						acked = append(acked, ack{k, time.Now()})
						mu.Unlock()
					}
				})
			}
			time.Sleep(1500 * time.Millisecond)
			killedAt := time.Now()
			_ = p.cmd.Process.Signal(c.sig)
			if c.sig == syscall.SIGKILL {
				<-p.done
				p.done <- nil
			} else {
				waitExit(t, p)
			}
			close(stop)
			wg.Wait()
			startServe(t, addr, nil, "--config", config)
			present := map[switchboard.SessionKey]bool{}
			for cursor := ""; ; {
				page, next, err := cl.List(context.Background(), switchboard.Filter{ChannelType: "c"}, 1000, cursor)
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range page {
					present[e.Key] = true
				}
				if next == "" {
					break
				}
				cursor = next
			}
			lost, lostRecently := 0, 0
			for _, a := range acked {
				if !present[a.key] {
					lost++
					if killedAt.Sub(a.at) <= time.Second {
						lostRecently++
					}
				}
			}
			t.Logf("%s: %d writes acknowledged before the %v, %d lost (%d of them within the last second)", c.name, len(acked), c.sig, lost, lostRecently)
			if len(acked) < 1000 {
				t.Fatalf("only %d writes acknowledged: the load did not run", len(acked))
			}
			switch c.fsync {
			case "everysec":
				if lost != lostRecently {
					t.Fatalf("%d acknowledged writes lost that were older than a second", lost-lostRecently)
				}
			default:
				if lost != 0 {
					t.Fatalf("%d acknowledged writes lost", lost)
				}
			}
		})
	}
}

// waitExit waits for a signalled serve to exit 0.
func waitExit(t *testing.T, p *proc) {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- nil
		if err != nil {
			t.Fatalf("serve exited with %v\n%s", err, p.stderr)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not exit within 20s")
	}
}

// TestE2EFullDisk: a served durable instance on a real full file system (a
// small tmpfs) answers writes with 503 storage_unavailable — which the Go
// client reports as ErrStorageUnavailable — goes unready, keeps
// answering reads, and after a restart still has every acknowledged write.
func TestE2EFullDisk(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", data).CombinedOutput(); err != nil {
		if os.Getenv("SWITCHBOARD_REQUIRE_MOUNT") == "1" {
			t.Fatalf("mount a tmpfs: %v %s", err, out)
		}
		t.Skipf("cannot mount a tmpfs to fill (needs root; set SWITCHBOARD_REQUIRE_MOUNT=1 to make this a failure): %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", data).Run() })
	config := writeFile(t, dir, "sb.yaml", fmt.Sprintf("data_dir: %s\npersistence: { fsync: always }\nsession_manager: { partition_count: 2 }\n", data))
	addr := freeAddr(t)
	p := startServe(t, addr, nil, "--config", config)
	if err := os.WriteFile(filepath.Join(data, "filler"), make([]byte, 400<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	cl, _ := client.New("http://"+addr, client.Options{})
	ctx := context.Background()
	var acked []switchboard.SessionKey
	var failed error
	for i := range 10000 {
		k := switchboard.SessionKey{ChannelType: "c", BridgeID: "b", RoomID: fmt.Sprint(i)}
		if failed = cl.Set(ctx, k, switchboard.Route{ExternalRoomID: strings.Repeat("x", 400)}); failed != nil {
			break
		}
		acked = append(acked, k)
	}
	if !errors.Is(failed, switchboard.ErrStorageUnavailable) || len(acked) == 0 {
		t.Fatalf("%d writes acknowledged, then %v; want ErrStorageUnavailable", len(acked), failed)
	}
	put, _ := http.NewRequest(http.MethodPut, "http://"+addr+"/v1/instances/default/routes/c:b:next", strings.NewReader(`{"route":{"external_room_id":"x"}}`))
	put.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(put)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || !strings.Contains(string(body), `"storage_unavailable"`) {
		t.Fatalf("PUT on a full disk: %d %s", resp.StatusCode, body)
	}
	if _, err := cl.Get(ctx, acked[0]); err != nil {
		t.Fatalf("a read on a full disk: %v", err)
	}
	resp, err = http.Get("http://" + addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Fatalf("/readyz on a full disk: %d, want 503", resp.StatusCode)
	}
	if err := p.stop(t); err == nil {
		t.Log("serve exited 0 on a full disk")
	}
	if err := os.Remove(filepath.Join(data, "filler")); err != nil {
		t.Fatal(err)
	}
	startServe(t, addr, nil, "--config", config)
	for _, k := range acked {
		if _, err := cl.Get(ctx, k); err != nil {
			t.Fatalf("acknowledged %s lost across the restart: %v", k, err)
		}
	}
}
