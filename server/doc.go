// Package server is Switchboard's HTTP/JSON API as an http.Handler: several
// named instances, each its own switchboard.Manager, behind per-instance
// bearer tokens, with health, readiness, metrics and the OpenAPI document.
// The API is described in api/openapi.yaml; package client speaks it.
//
// The handler does not listen, snapshot or handle signals: the
// switchboard serve command does that around it.
//
//	h, err := server.New(server.Options{Instances: []server.Instance{{Name: "default", Manager: m}}})
//	srv := &http.Server{Addr: "127.0.0.1:7420", Handler: h, ReadHeaderTimeout: 5 * time.Second}
package server
