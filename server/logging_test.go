package server_test

import (
	"bytes"
	stdjson "encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/switchboard-go/switchboard"
	"github.com/switchboard-go/switchboard/server"
	"github.com/switchboard-go/switchboard/storetest"
)

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}
func (b *syncBuffer) String() string { b.mu.Lock(); defer b.mu.Unlock(); return b.buf.String() }

func TestRequestLogging(t *testing.T) {
	for _, tt := range []struct {
		mode server.LogRequests
		want map[string]bool // request → logged
	}{
		{"", map[string]bool{"ok": false, "miss": false, "unauthorized": true, "unavailable": true}},
		{server.LogRequestsErrors, map[string]bool{"ok": false, "miss": false, "unauthorized": true, "unavailable": true}},
		{server.LogRequestsAll, map[string]bool{"ok": true, "miss": true, "unauthorized": true, "unavailable": true}},
		{server.LogRequestsOff, map[string]bool{"ok": false, "miss": false, "unauthorized": false, "unavailable": false}},
	} {
		t.Run(string(tt.mode), func(t *testing.T) {
			fs := storetest.NewFaultStore(switchboard.NewMemoryStore())
			m, err := switchboard.New(switchboard.Config{PartitionCount: 1}, switchboard.WithStore(fs))
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			other, err := switchboard.New(switchboard.Config{PartitionCount: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			var logs syncBuffer
			h, err := server.New(server.Options{
				Instances:   []server.Instance{{Name: "a", Manager: m}, {Name: "b", Manager: other, Tokens: []string{"t"}}},
				Logger:      slog.New(slog.NewTextHandler(&logs, nil)),
				LogRequests: tt.mode,
			})
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(h)
			defer srv.Close()
			f := &fixture{srv: srv}
			requests := map[string]func(){
				"ok":           func() { f.raw(t, "PUT", "/v1/instances/a/routes/c:b:ok", "", `{"route":{"external_room_id":"x"}}`) },
				"miss":         func() { f.raw(t, "GET", "/v1/instances/a/routes/c:b:miss", "", "") },
				"unauthorized": func() { f.raw(t, "GET", "/v1/instances/b/routes/c:b:unauthorized", "", "") },
				"unavailable": func() {
					fs.BreakPartition(0)
					f.raw(t, "GET", "/v1/instances/a/routes/c:b:unavailable", "", "")
					fs.HealPartition(0)
				},
			}
			for name, do := range requests {
				before := strings.Count(logs.String(), "msg=request")
				do()
				logged := strings.Count(logs.String(), "msg=request") > before
				if logged != tt.want[name] {
					t.Errorf("%s request logged: %v, want %v\n%s", name, logged, tt.want[name], logs.String())
				}
			}
			if tt.mode != server.LogRequestsOff && !strings.Contains(logs.String(), "level=WARN msg=request") {
				t.Errorf("a 503 is not logged at warn:\n%s", logs.String())
			}
		})
	}
	if _, err := server.New(server.Options{Instances: []server.Instance{{Name: "a", Manager: &switchboard.Manager{}}}, LogRequests: "some"}); err == nil {
		t.Fatal("LogRequests \"some\": want an error")
	}
}

// BenchmarkServeLogging measures PUT route over loopback HTTP with 64
// concurrent clients, the server logging requests to a file, for each
// LogRequests mode. (The request log of "all" is about 160 bytes a line.)
func BenchmarkServeLogging(b *testing.B) {
	for _, mode := range []server.LogRequests{server.LogRequestsOff, server.LogRequestsErrors, server.LogRequestsAll} {
		b.Run(string(mode), func(b *testing.B) {
			m, err := switchboard.New(switchboard.Config{})
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close()
			logFile, err := os.CreateTemp(b.TempDir(), "requests.log")
			if err != nil {
				b.Fatal(err)
			}
			defer logFile.Close()
			h, err := server.New(server.Options{Instances: []server.Instance{{Name: "a", Manager: m}},
				Logger: slog.New(slog.NewTextHandler(logFile, nil)), LogRequests: mode})
			if err != nil {
				b.Fatal(err)
			}
			srv := httptest.NewServer(h)
			defer srv.Close()
			tr := &http.Transport{MaxIdleConnsPerHost: 128}
			defer tr.CloseIdleConnections()
			hc := &http.Client{Transport: tr}
			b.SetParallelism(32) // × GOMAXPROCS(2) = 64 clients
			b.ResetTimer()
			var n sync.Mutex
			i := 0
			b.RunParallel(func(pb *testing.PB) {
				n.Lock()
				i++
				me := i
				n.Unlock()
				url := fmt.Sprintf("%s/v1/instances/a/routes/c:b:r%d", srv.URL, me)
				for pb.Next() {
					req, _ := http.NewRequest("PUT", url, strings.NewReader(`{"route":{"external_room_id":"x"}}`))
					resp, err := hc.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			})
			b.StopTimer()
			if st, err := logFile.Stat(); err == nil {
				b.ReportMetric(float64(st.Size())/float64(b.N), "log-B/op")
			}
		})
	}
}

// BenchmarkHandler measures the handler alone, without the network, for
// PUT route and POST resolve (request logging at its default), beside a
// minimal handler that decodes the same body with encoding/json and
// answers as bench/cmd/minimalhttp does: the allocations and CPU that
// Switchboard adds to a request.
func BenchmarkHandler(b *testing.B) {
	m, err := switchboard.New(switchboard.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	h, err := server.New(server.Options{Instances: []server.Instance{{Name: "a", Manager: m}}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	minimal := http.NewServeMux()
	minimal.HandleFunc("PUT /v1/instances/{instance}/routes/{key}", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Route struct {
				ExternalRoomID string `json:"external_room_id"`
			} `json:"route"`
		}
		if err := stdjson.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	const body = `{"route":{"external_room_id":"-100123"}}`
	for _, tt := range []struct {
		name string
		h    http.Handler
	}{{"switchboard", h}, {"minimal", minimal}} {
		b.Run("PUT/"+tt.name, func(b *testing.B) {
			req := httptest.NewRequest("PUT", "/v1/instances/a/routes/telegram:bot_1:chat_1", nil)
			req.Header.Set("Content-Type", "application/json")
			rd := strings.NewReader(body)
			b.ReportAllocs()
			for b.Loop() {
				rd.Reset(body)
				req.Body, req.ContentLength = io.NopCloser(rd), int64(len(body))
				w := httptest.NewRecorder()
				tt.h.ServeHTTP(w, req)
				if w.Code != http.StatusNoContent {
					b.Fatalf("PUT = %d %s", w.Code, w.Body)
				}
			}
		})
	}
}
