package server

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
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
	// Logger gets the request lines (method, route pattern, status,
	// duration, instance; never a token) and the details of failures.
	// Default: slog.Default().
	Logger *slog.Logger
	// LogRequests says which requests get a line: LogRequestsErrors (the
	// default: answers of 500 and above, at level warn, and refused
	// tokens, 401 and 403, at level info), LogRequestsAll (every request,
	// at level info: about 160 bytes each, which costs throughput at high
	// rates) or LogRequestsOff.
	LogRequests LogRequests
	// ReadyChecks are more conditions of /readyz besides every partition
	// answering, such as "the last snapshot was written"; each returns nil
	// when ready. Default: none.
	ReadyChecks []func(ctx context.Context) error
	// Gatherer is served at /metrics. Default: a registry with nothing in
	// it; the serve command passes one with the instances' metrics and the
	// Go and process collectors.
	Gatherer prometheus.Gatherer
	// ReadyTimeout bounds the store probes of /readyz. Default: 2s.
	ReadyTimeout time.Duration
}

// LogRequests is the request logging of a Server.
type LogRequests string

// The request logging levels.
const (
	LogRequestsErrors LogRequests = "errors" // 5xx (warn) and 401/403 (info); the default
	LogRequestsAll    LogRequests = "all"    // every request (info)
	LogRequestsOff    LogRequests = "off"    // none
)

// Server is the HTTP handler. It is safe for concurrent use.
type Server struct {
	mux       *http.ServeMux
	instances map[string]*Instance
	logger    *slog.Logger
	logs      LogRequests
	ready     time.Duration
	checks    []func(context.Context) error
	routes    []string
	anyTokens bool // some instance needs a token
	ids       *requestIDs
}

// New returns a Server for opts.
func New(opts Options) (*Server, error) {
	if len(opts.Instances) == 0 {
		return nil, errors.New("server: no instances")
	}
	s := &Server{mux: http.NewServeMux(), instances: map[string]*Instance{}, logger: opts.Logger, ready: opts.ReadyTimeout,
		logs: opts.LogRequests, checks: opts.ReadyChecks, ids: newRequestIDs()}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	switch s.logs {
	case "":
		s.logs = LogRequestsErrors
	case LogRequestsErrors, LogRequestsAll, LogRequestsOff:
	default:
		return nil, fmt.Errorf("server: LogRequests %q: want errors, all or off", opts.LogRequests)
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
		s.anyTokens = s.anyTokens || len(in.Tokens) > 0
	}
	gatherer := opts.Gatherer
	if gatherer == nil {
		gatherer = prometheus.NewRegistry()
	}
	const (
		routes     = "/v1/instances/{instance}/routes/{key}"
		list       = "/v1/instances/{instance}/routes"
		deleteMany = "/v1/instances/{instance}/routes:delete"
		resolve    = "/v1/instances/{instance}/resolve"
		explain    = "/v1/instances/{instance}/explain"
		confirm    = "/v1/instances/{instance}/confirm"
		invalidate = "/v1/instances/{instance}/invalidate"
		prune      = "/v1/instances/{instance}/prune"
		partitions = "/v1/instances/{instance}/partitions"
		partition  = "/v1/instances/{instance}/partitions/{index}"
		config     = "/v1/instances/{instance}/config"
	)
	s.handle("PUT "+routes, s.instance(s.set))
	s.handle("GET "+routes, s.instance(s.get))
	s.handle("DELETE "+routes, s.instance(s.del))
	s.handle("GET "+list, s.instance(s.list))
	s.handle("POST "+deleteMany, s.instance(s.deleteMatching))
	s.handle("POST "+resolve, s.instance(s.resolve))
	s.handle("POST "+explain, s.instance(s.explain))
	s.handle("POST "+confirm, s.instance(s.confirm))
	s.handle("POST "+invalidate, s.instance(s.invalidate))
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
	// Known paths with another method answer 405 with an Allow header,
	// and unknown paths 404, in the error envelope too.
	allowed := map[string][]string{}
	for _, route := range s.routes {
		method, path, _ := strings.Cut(route, " ")
		allowed[path] = append(allowed[path], method)
		if method == http.MethodGet {
			allowed[path] = append(allowed[path], http.MethodHead)
		}
	}
	for path, methods := range allowed {
		allow := strings.Join(methods, ", ")
		s.mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			writeError(w, wire.CodeMethodNotAllowed, fmt.Sprintf("%s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, allow))
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

// ServeHTTP implements http.Handler: it gives the request its id, refuses
// what no endpoint takes (see front), routes it, and logs it as
// LogRequests says.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := s.ids.of(r)
	w.Header().Set(RequestIDHeader, id)
	r = r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id))
	if s.logs == LogRequestsOff {
		if front(w, r) {
			s.mux.ServeHTTP(w, r)
		}
		return
	}
	start := time.Now()
	rw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	if front(rw, r) {
		s.mux.ServeHTTP(rw, r)
	}
	level := slog.LevelInfo
	switch {
	case rw.status >= 500:
		level = slog.LevelWarn
	case s.logs == LogRequestsErrors && rw.status != http.StatusUnauthorized && rw.status != http.StatusForbidden:
		return
	}
	pattern := r.Pattern
	if pattern == "" {
		pattern = "(unmatched)"
	}
	s.logger.LogAttrs(r.Context(), level, "request",
		slog.String("method", r.Method), slog.String("route", pattern), slog.Int("status", rw.status),
		slog.Duration("duration", time.Since(start)), slog.String("instance", r.PathValue("instance")),
		slog.String("request_id", id))
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
			// Callers without a valid token of some instance cannot tell an
			// unknown instance from one that needs a token.
			if token, ok := bearer(r); s.anyTokens && (!ok || !s.anyInstanceHas(token)) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="switchboard"`)
				writeError(w, wire.CodeUnauthorized, "a valid bearer token is required")
				return
			}
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

// anyInstanceHas reports whether token is valid for some instance.
func (s *Server) anyInstanceHas(token string) bool {
	found := false
	for _, in := range s.instances {
		found = matches(token, in.Tokens) || found
	}
	return found
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

// fail answers with the error code of a library error. Answers of 500 and
// 503 do not carry the library's error text (it may name nodes and
// internal details): the server logs it instead.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	s.failStatus(w, r, err, 0)
}

// failStatus is fail with the HTTP status overridden (0: the code's).
func (s *Server) failStatus(w http.ResponseWriter, r *http.Request, err error, status int) {
	code := wire.CodeOf(err)
	if r.Context().Err() != nil { // the client went away or timed out
		code = wire.CodeUnavailable
	}
	detail := wire.ErrorDetail{Code: code, Message: wireNames.Replace(err.Error()), OutcomeUnknown: errors.Is(err, switchboard.ErrOutcomeUnknown)}
	switch code {
	case wire.CodeInternal:
		s.logger.LogAttrs(r.Context(), slog.LevelError, "internal error", slog.String("error", err.Error()), slog.String("request_id", RequestID(r.Context())))
		detail.Message = "internal error (the server log has the details)"
	case wire.CodePartitionUnavailable:
		s.logger.LogAttrs(r.Context(), slog.LevelWarn, "partition unavailable", slog.String("error", err.Error()), slog.String("request_id", RequestID(r.Context())))
		detail.Message = "the partition of this key is unavailable"
		var op *switchboard.OpError
		if errors.As(err, &op) {
			detail.Message = fmt.Sprintf("partition %d is unavailable", op.Partition)
		}
		if detail.OutcomeUnknown {
			detail.Message += "; the store timed out, so a write may have been applied"
		}
	case wire.CodeStorageUnavailable:
		s.logger.LogAttrs(r.Context(), slog.LevelError, "storage unavailable", slog.String("error", err.Error()), slog.String("request_id", RequestID(r.Context())))
		detail.Message = "the instance cannot make writes durable (the server log has the details); reads go on"
		if detail.OutcomeUnknown {
			detail.Message += "; this write may have been applied"
		}
	case wire.CodeUnavailable:
		detail.Message = "the instance is shutting down or the request was cancelled"
	}
	if status == 0 {
		status = wire.Status(code)
	}
	writeJSON(w, status, wire.ErrorBody{Error: detail})
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
		d := time.Duration(*req.TTLMs) * time.Millisecond
		if *req.TTLMs <= 0 || *req.TTLMs > switchboard.MaxTTL.Milliseconds() {
			writeError(w, wire.CodeInvalidTTL, fmt.Sprintf("ttl_ms %d must be between 1 and %d", *req.TTLMs, switchboard.MaxTTL.Milliseconds()))
			return
		}
		opts = append(opts, switchboard.WithTTL(d))
	}
	if req.Priority != nil {
		opts = append(opts, switchboard.WithPriority(*req.Priority))
	}
	if req.Writer != "" {
		opts = append(opts, switchboard.WithWriter(req.Writer))
	}
	conds, ok := conditions(w, r)
	if !ok {
		return
	}
	if err := in.Manager.Set(r.Context(), key, req.Route, append(opts, conds...)...); err != nil {
		status := 0
		if errors.Is(err, switchboard.ErrConflict) {
			status = http.StatusPreconditionFailed
		}
		s.failStatus(w, r, err, status)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// conditions reads If-Match ("<revision>", the ETag of a GET) and
// If-None-Match (only "*") as IfRevision and IfAbsent.
func conditions(w http.ResponseWriter, r *http.Request) ([]switchboard.SetOption, bool) {
	var opts []switchboard.SetOption
	if v := r.Header.Values("If-Match"); len(v) > 0 {
		rev, ok := wire.ParseETag(strings.TrimSpace(strings.Join(v, ",")))
		if !ok {
			writeError(w, wire.CodeInvalidOption, fmt.Sprintf("If-Match %q: want one revision as a quoted entity tag, such as \"42\" (the ETag of a GET)", strings.Join(v, ",")))
			return nil, false
		}
		opts = append(opts, switchboard.IfRevision(rev))
	}
	if v := r.Header.Values("If-None-Match"); len(v) > 0 {
		if strings.TrimSpace(strings.Join(v, ",")) != "*" {
			writeError(w, wire.CodeInvalidOption, fmt.Sprintf("If-None-Match %q: only * (store only if the key has no fresh route) is supported", strings.Join(v, ",")))
			return nil, false
		}
		opts = append(opts, switchboard.IfAbsent())
	}
	return opts, true
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
	w.Header().Set("ETag", wire.ETag(rec.Revision))
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

// resolveArgs decodes a resolve or explain body.
func resolveArgs(w http.ResponseWriter, r *http.Request) (switchboard.SessionKey, []switchboard.Route, bool) {
	var req wire.ResolveRequest
	if !decode(w, r, &req) {
		return switchboard.SessionKey{}, nil, false
	}
	key, err := switchboard.ParseSessionKey(req.SessionKey)
	if err != nil {
		writeError(w, wire.CodeInvalidSessionKey, err.Error())
		return key, nil, false
	}
	if len(req.Fallbacks) > wire.MaxFallbacks {
		writeError(w, wire.CodeInvalidRoute, fmt.Sprintf("%d fallbacks, at most %d allowed", len(req.Fallbacks), wire.MaxFallbacks))
		return key, nil, false
	}
	return key, req.Fallbacks, true
}

func (s *Server) resolve(w http.ResponseWriter, r *http.Request, in *Instance) {
	key, fallbacks, ok := resolveArgs(w, r)
	if !ok {
		return
	}
	res, err := in.Manager.Resolve(r.Context(), key, fallbacks...)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, wire.FromResolution(res))
}

func (s *Server) explain(w http.ResponseWriter, r *http.Request, in *Instance) {
	key, fallbacks, ok := resolveArgs(w, r)
	if !ok {
		return
	}
	ex, err := in.Manager.Explain(r.Context(), key, fallbacks...)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	body := wire.FromExplanation(ex, in.Manager.RoutePartition(key))
	if body.Error != nil && body.Error.Code == wire.CodePartitionUnavailable {
		body.Error.Message = "the partition of this key is unavailable"
	}
	writeJSON(w, http.StatusOK, body)
}

// feedbackArgs decodes a confirm or invalidate body.
func feedbackArgs(w http.ResponseWriter, r *http.Request) (switchboard.SessionKey, wire.FeedbackRequest, bool) {
	var req wire.FeedbackRequest
	if !decode(w, r, &req) {
		return switchboard.SessionKey{}, req, false
	}
	key, err := switchboard.ParseSessionKey(req.SessionKey)
	if err != nil {
		writeError(w, wire.CodeInvalidSessionKey, err.Error())
		return key, req, false
	}
	return key, req, true
}

func (s *Server) confirm(w http.ResponseWriter, r *http.Request, in *Instance) {
	key, req, ok := feedbackArgs(w, r)
	if !ok {
		return
	}
	if req.Reason != "" {
		writeError(w, wire.CodeInvalidJSON, "invalid JSON body: confirm takes no reason")
		return
	}
	rec, err := in.Manager.Confirm(r.Context(), key, req.Route)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("ETag", wire.ETag(rec.Revision))
	writeJSON(w, http.StatusOK, wire.FromRecord(rec, in.Manager.RoutePartition(key)))
}

func (s *Server) invalidate(w http.ResponseWriter, r *http.Request, in *Instance) {
	key, req, ok := feedbackArgs(w, r)
	if !ok {
		return
	}
	if err := in.Manager.Invalidate(r.Context(), key, req.Route, req.Reason); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// listParams are the query parameters of GET …/routes.
var listParams = []string{"channel_type", "bridge_id", "room_id", "thread_id", "scope", "external_room_id", "origin",
	"writer", "updated_before_ms", "invalidated", "limit", "cursor"}

// queryFilter reads a filter, limit and cursor from query parameters;
// unknown or repeated parameters are refused.
func queryFilter(w http.ResponseWriter, r *http.Request) (f switchboard.Filter, limit int, cursor string, ok bool) {
	q := r.URL.Query()
	for name, vs := range q {
		if !slices.Contains(listParams, name) {
			writeError(w, wire.CodeInvalidOption, fmt.Sprintf("unknown query parameter %q (known: %s)", name, strings.Join(listParams, ", ")))
			return f, 0, "", false
		}
		if len(vs) > 1 {
			writeError(w, wire.CodeInvalidOption, fmt.Sprintf("query parameter %q given %d times", name, len(vs)))
			return f, 0, "", false
		}
	}
	wf := wire.Filter{ChannelType: q.Get("channel_type"), BridgeID: q.Get("bridge_id"), RoomID: q.Get("room_id"),
		ThreadID: q.Get("thread_id"), Scope: q.Get("scope"), ExternalRoomID: q.Get("external_room_id"),
		Origin: q.Get("origin"), Writer: q.Get("writer")}
	number := func(name string) (int64, bool) {
		v := q.Get(name)
		if v == "" {
			return 0, true
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			writeError(w, wire.CodeInvalidOption, fmt.Sprintf("%s %q: want a non-negative integer", name, v))
			return 0, false
		}
		return n, true
	}
	var n int64
	if wf.UpdatedBeforeMs, ok = number("updated_before_ms"); !ok {
		return f, 0, "", false
	}
	if n, ok = number("limit"); !ok {
		return f, 0, "", false
	}
	switch v := q.Get("invalidated"); v {
	case "", "false":
	case "true":
		wf.Invalidated = true
	default:
		writeError(w, wire.CodeInvalidOption, fmt.Sprintf("invalidated %q: want true or false", v))
		return f, 0, "", false
	}
	return wf.ToFilter(), int(min(n, 1<<31)), q.Get("cursor"), true
}

func (s *Server) list(w http.ResponseWriter, r *http.Request, in *Instance) {
	f, limit, cursor, ok := queryFilter(w, r)
	if !ok {
		return
	}
	entries, next, err := in.Manager.List(r.Context(), f, limit, cursor)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	body := wire.ListResponse{Routes: make([]wire.Record, len(entries)), Next: next}
	for i, e := range entries {
		body.Routes[i] = wire.FromEntry(e)
	}
	writeJSON(w, http.StatusOK, body)
}

func (s *Server) deleteMatching(w http.ResponseWriter, r *http.Request, in *Instance) {
	var req wire.DeleteRequest
	if !decode(w, r, &req) {
		return
	}
	if req.Filter.UpdatedBeforeMs < 0 {
		writeError(w, wire.CodeInvalidOption, "filter updated_before_ms must not be negative")
		return
	}
	res, err := in.Manager.DeleteMatching(r.Context(), req.Filter.ToFilter(), req.DryRun)
	if err != nil { // some partitions may have been done: the client can run it again
		s.fail(w, r, err)
		return
	}
	body := wire.DeleteResult{Matched: res.Matched, Deleted: res.Deleted, Sample: make([]string, len(res.Sample))}
	for i, k := range res.Sample {
		body.Sample[i] = k.String()
	}
	writeJSON(w, http.StatusOK, body)
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

// readyz answers 200 when every partition of every instance answers and
// every ReadyCheck passes.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), s.ready)
	defer cancel()
	for _, check := range s.checks {
		if err := check(ctx); err != nil {
			writeError(w, wire.CodeUnavailable, "not ready: "+err.Error())
			return
		}
	}
	for name, in := range s.instances {
		for p := range in.Manager.PartitionCount() {
			st, err := in.Manager.PartitionStatus(ctx, p)
			if err != nil || !st.Available {
				if err != nil {
					s.logger.LogAttrs(r.Context(), slog.LevelWarn, "readyz", slog.String("instance", name), slog.String("error", err.Error()))
				}
				writeError(w, wire.CodeUnavailable, fmt.Sprintf("instance %q partition %d is unavailable", name, p))
				return
			}
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}
