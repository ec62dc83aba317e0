// Command minimalhttp is the baseline for measuring switchboard serve: a
// minimal net/http JSON server answering the same two requests (PUT a route,
// POST a resolve) with no state behind them, so that the ratio of the two
// under the same load tool shows what Switchboard itself costs.
//
//	go run ./cmd/minimalhttp -listen 127.0.0.1:7421
package main

import (
	"encoding/json"
	"flag"
	"log"
	"net/http"
	"time"
)

type route struct {
	ExternalRoomID string `json:"external_room_id"`
}

func main() {
	listen := flag.String("listen", "127.0.0.1:7421", "address to listen on")
	flag.Parse()
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /v1/instances/{instance}/routes/{key}", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Route route `json:"route"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /v1/instances/{instance}/resolve", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			SessionKey string  `json:"session_key"`
			Fallbacks  []route `json:"fallbacks"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"external_room_id": "-100123", "route": route{"-100123"}, "partition": 0, "session_key": req.SessionKey,
			"source": "state_hit", "fallback": false, "stale": false,
		})
	})
	srv := &http.Server{Addr: *listen, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	log.Fatal(srv.ListenAndServe())
}
