package server

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/switchboard-go/switchboard"
	"github.com/switchboard-go/switchboard/api"
	"github.com/switchboard-go/switchboard/internal/wire"
)

// Instance is one named Manager served under /v1/instances/{Name}/.
type Instance struct {
	Name    string
	Manager *switchboard.Manager
	// Tokens are the bearer tokens that may use this instance. Empty means
	// the instance needs no token.
	Tokens []string
}

// Options configures a Server.
type Options struct {
	// Instances served; at least one, names unique and non-empty.
	Instances []Instance
	// Logger gets one line per request (method, route pattern, status,
	// duration, instance; never a token). Default: slog.Default().
	Logger *slog.Logger
	// Gatherer is served at /metrics. Default: a registry with nothing in
	// it; the serve command passes one with the instances' metrics and the
	// Go and process collectors.
	Gatherer prometheus.Gatherer
	// ReadyTimeout bounds the store probes of /readyz. Default: 2s.
	ReadyTimeout time.Duration
}

// Server is the HTTP handler. It is safe for concurrent use.
type Server struct {
	mux       *http.ServeMux
	instances map[string]*Instance
	logger    *slog.Logger
	ready     time.Duration
	routes    []string
}

// New returns a Server for opts.
func New(opts Options) (*Server, error) {
	if len(opts.Instances) == 0 {
		return nil, errors.New("server: no instances")
	}
	s := &Server{mux: http.NewServeMux(), instances: map[string]*Instance{}, logger: opts.Logger, ready: opts.ReadyTimeout}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	if s.ready <= 0 {
		s.ready = 2 * time.Second
	}
	for i := range opts.Instances {
		in := &opts.Instances[i]
		switch {
		case in.Name == "" || strings.ContainsAny(in.Name, "/ "):
			return nil, fmt.Errorf("server: instance name %q must be non-empty, without '/' or spaces", in.Name)
		case in.Manager == nil:
			return nil, fmt.Errorf("server: instance %q has no Manager", in.Name)
		case s.instances[in.Name] != nil:
			return nil, fmt.Errorf("server: instance %q listed twice", in.Name)
		}
		s.instances[in.Name] = in
	}
	gatherer := opts.Gatherer
	if gatherer == nil {
		gatherer = prometheus.NewRegistry()
	}
	const (
		routes     = "/v1/instances/{instance}/routes/{key}"
		resolve    = "/v1/instances/{instance}/resolve"
		prune      = "/v1/instances/{instance}/prune"
		partitions = "/v1/instances/{instance}/partitions"
		partition  = "/v1/instances/{instance}/partitions/{index}"
		config     = "/v1/instances/{instance}/config"
	)
	s.handle("PUT "+routes, s.instance(s.set))
	s.handle("GET "+routes, s.instance(s.get))
	s.handle("DELETE "+routes, s.instance(s.del))
	s.handle("POST "+resolve, s.instance(s.resolve))
	s.handle("POST "+prune, s.instance(s.prune))
	s.handle("GET "+partitions, s.instance(s.partitions))
	s.handle("GET "+partition, s.instance(s.partition))
	s.handle("GET "+config, s.instance(s.config))
	s.handle("GET /v1/openapi.yaml", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/yaml")
		_, _ = w.Write(api.OpenAPI())
	})
	s.handle("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.handle("GET /readyz", s.readyz)
	s.handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}).ServeHTTP)
	// Known paths with another method, and unknown paths, answer in the
	// error envelope too.
	for _, p := range []string{routes, resolve, prune, partitions, partition, config, "/v1/openapi.yaml", "/healthz", "/readyz", "/metrics"} {
		s.mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
			writeError(w, wire.CodeMethodNotAllowed, fmt.Sprintf("%s is not allowed on %s", r.Method, r.URL.Path))
		})
	}
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, wire.CodeNotFound, fmt.Sprintf("no endpoint %s %s", r.Method, r.URL.Path))
	})
	return s, nil
}

func (s *Server) handle(pattern string, h http.HandlerFunc) {
	s.routes = append(s.routes, pattern)
	s.mux.HandleFunc(pattern, h)
}

// Routes returns the method-and-path patterns the server answers, as in
// the OpenAPI document.
func (s *Server) Routes() []string { return append([]string(nil), s.routes...) }

// ServeHTTP implements http.Handler, logging each request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	s.mux.ServeHTTP(rw, r)
	pattern := r.Pattern
	if pattern == "" {
		pattern = "(unmatched)"
	}
	s.logger.LogAttrs(r.Context(), slog.LevelInfo, "request",
		slog.String("method", r.Method), slog.String("route", pattern), slog.Int("status", rw.status),
		slog.Duration("duration", time.Since(start)), slog.String("instance", r.PathValue("instance")))
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// instance resolves the {instance} of the path and checks the caller's
// token before calling h.
func (s *Server) instance(h func(http.ResponseWriter, *http.Request, *Instance)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		in := s.instances[r.PathValue("instance")]
		if in == nil {
			writeError(w, wire.CodeUnknownInstance, fmt.Sprintf("no instance %q", r.PathValue("instance")))
			return
		}
		if len(in.Tokens) > 0 {
			token, ok := bearer(r)
			switch {
			case ok && matches(token, in.Tokens):
			case ok && s.otherInstanceHas(in, token):
				writeError(w, wire.CodeForbidden, fmt.Sprintf("the token is not valid for instance %q", in.Name))
				return
			default:
				w.Header().Set("WWW-Authenticate", `Bearer realm="switchboard"`)
				writeError(w, wire.CodeUnauthorized, "a valid bearer token is required")
				return
			}
		}
		h(w, r, in)
	}
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	const prefix = "Bearer "
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", false
	}
	return h[len(prefix):], true
}

// matches compares token with every candidate in constant time.
func matches(token string, candidates []string) bool {
	found := 0
	for _, c := range candidates {
		found |= subtle.ConstantTimeCompare([]byte(token), []byte(c))
	}
	return found == 1
}

func (s *Server) otherInstanceHas(self *Instance, token string) bool {
	other := false
	for _, in := range s.instances {
		if in != self && matches(token, in.Tokens) {
			other = true
		}
	}
	return other
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code, message string) {
	writeJSON(w, wire.Status(code), wire.ErrorBody{Error: wire.ErrorDetail{Code: code, Message: message}})
}

// fail answers with the error code of a library error.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	code := wire.CodeOf(err)
	if r.Context().Err() != nil { // the client went away or timed out
		code = wire.CodeUnavailable
	}
	if code == wire.CodeInternal {
		s.logger.LogAttrs(r.Context(), slog.LevelError, "internal error", slog.String("error", err.Error()))
	}
	writeError(w, code, err.Error())
}

// decode reads a JSON body of at most wire.MaxBodyBytes into v, refusing
// unknown fields and trailing data.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	body := http.MaxBytesReader(w, r.Body, wire.MaxBodyBytes)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("trailing data after the JSON value")
	}
	if err == nil {
		if _, rerr := io.Copy(io.Discard, body); rerr != nil {
			err = rerr
		}
	}
	var tooLarge *http.MaxBytesError
	switch {
	case err == nil:
		return true
	case errors.As(err, &tooLarge):
		writeError(w, wire.CodeBodyTooLarge, fmt.Sprintf("the body exceeds %d bytes", wire.MaxBodyBytes))
	case errors.Is(err, io.EOF):
		writeError(w, wire.CodeInvalidJSON, "the body is empty; a JSON object is required")
	default:
		writeError(w, wire.CodeInvalidJSON, "invalid JSON body: "+err.Error())
	}
	return false
}

func pathKey(w http.ResponseWriter, r *http.Request) (switchboard.SessionKey, bool) {
	key, err := switchboard.ParseSessionKey(r.PathValue("key"))
	if err != nil {
		writeError(w, wire.CodeInvalidSessionKey, err.Error())
		return key, false
	}
	return key, true
}

func (s *Server) set(w http.ResponseWriter, r *http.Request, in *Instance) {
	key, ok := pathKey(w, r)
	if !ok {
		return
	}
	var req wire.SetRequest
	if !decode(w, r, &req) {
		return
	}
	var opts []switchboard.SetOption
	if req.TTLMs != nil {
		if *req.TTLMs <= 0 || *req.TTLMs > switchboard.MaxTTL.Milliseconds() {
			writeError(w, wire.CodeInvalidTTL, fmt.Sprintf("ttl_ms %d must be between 1 and %d", *req.TTLMs, switchboard.MaxTTL.Milliseconds()))
			return
		}
		opts = append(opts, switchboard.WithTTL(time.Duration(*req.TTLMs)*time.Millisecond))
	}
	if err := in.Manager.Set(r.Context(), key, req.Route, opts...); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) get(w http.ResponseWriter, r *http.Request, in *Instance) {
	key, ok := pathKey(w, r)
	if !ok {
		return
	}
	rec, err := in.Manager.Get(r.Context(), key)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, wire.FromRecord(rec, in.Manager.RoutePartition(key)))
}

func (s *Server) del(w http.ResponseWriter, r *http.Request, in *Instance) {
	key, ok := pathKey(w, r)
	if !ok {
		return
	}
	if err := in.Manager.Delete(r.Context(), key); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) resolve(w http.ResponseWriter, r *http.Request, in *Instance) {
	var req wire.ResolveRequest
	if !decode(w, r, &req) {
		return
	}
	key, err := switchboard.ParseSessionKey(req.SessionKey)
	if err != nil {
		writeError(w, wire.CodeInvalidSessionKey, err.Error())
		return
	}
	if len(req.Fallbacks) > wire.MaxFallbacks {
		writeError(w, wire.CodeInvalidRoute, fmt.Sprintf("%d fallbacks, at most %d allowed", len(req.Fallbacks), wire.MaxFallbacks))
		return
	}
	res, err := in.Manager.Resolve(r.Context(), key, req.Fallbacks...)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, wire.FromResolution(res))
}

func (s *Server) prune(w http.ResponseWriter, r *http.Request, in *Instance) {
	res, err := in.Manager.Prune(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, wire.PruneResult{Pruned: res.Pruned, Partitions: res.Partitions})
}

func (s *Server) partitions(w http.ResponseWriter, r *http.Request, in *Instance) {
	out := make([]wire.PartitionStatus, 0, in.Manager.PartitionCount())
	for p := range in.Manager.PartitionCount() {
		st, err := in.Manager.PartitionStatus(r.Context(), p)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		out = append(out, wire.FromPartitionStatus(st))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) partition(w http.ResponseWriter, r *http.Request, in *Instance) {
	p, err := strconv.Atoi(r.PathValue("index"))
	if err != nil {
		writeError(w, wire.CodeNotFound, fmt.Sprintf("no partition %q", r.PathValue("index")))
		return
	}
	st, err := in.Manager.PartitionStatus(r.Context(), p)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, wire.FromPartitionStatus(st))
}

func (s *Server) config(w http.ResponseWriter, r *http.Request, in *Instance) {
	writeJSON(w, http.StatusOK, wire.FromConfig(in.Manager.Config()))
}

// readyz answers 200 when every partition of every instance answers.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), s.ready)
	defer cancel()
	for name, in := range s.instances {
		for p := range in.Manager.PartitionCount() {
			st, err := in.Manager.PartitionStatus(ctx, p)
			if err != nil || !st.Available {
				msg := fmt.Sprintf("instance %q partition %d is unavailable", name, p)
				if err != nil {
					msg += ": " + err.Error()
				}
				writeError(w, wire.CodeUnavailable, msg)
				return
			}
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}
