package redisstore

import (
	"context"
	"math"

	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/go-json-experiment/json"
	"github.com/redis/rueidis"

	"github.com/switchboard-go/switchboard"
)

// Options configures a Store. The zero value means all defaults; New does
// not change the caller's struct.
type Options struct {
	// KeyPrefix namespaces one Switchboard instance in a Redis database or
	// cluster: every key of partition p starts with the hash tag
	// "{<KeyPrefix>:<p>}". Managers that must share state use the same
	// prefix — and then must use the same partition count and capacity,
	// which Init records under the prefix and checks (see Store.Init);
	// instances that must not share, different prefixes. It may not
	// contain '{' or '}'. Default: "sb".
	KeyPrefix string
	// OpTimeout bounds every store call, whatever the client's own timeouts:
	// a partition whose node does not answer within it is reported as
	// switchboard.ErrPartitionUnavailable. A call whose context cannot be
	// cancelled (context.Background and the like) may take up to 1/16
	// longer: such calls share a deadline instead of paying a timer each.
	// Between 1ms and 1s. Default: 500ms.
	OpTimeout time.Duration
	// ExpiryGrace is how long after a record's ExpiresAt Redis itself
	// deletes it (its key gets a Redis expiry of the remaining TTL plus
	// this), so nothing outlives its time if pruning stops; it also absorbs
	// clock differences between processes. Default: 1m.
	ExpiryGrace time.Duration
}

// Defaults of Options.
const (
	DefaultKeyPrefix   = "sb"
	DefaultOpTimeout   = 500 * time.Millisecond
	DefaultExpiryGrace = time.Minute
)

// Store is a switchboard.Store that keeps route state in Redis. It is safe
// for concurrent use. Create it with New and hand it to switchboard.New
// with switchboard.WithStore; the Manager closes it. Closing it does not
// close the client.
type Store struct {
	client    rueidis.Client
	opts      Options
	graceMs   string
	parts     []partition
	limit     string // the capacity, as the scripts take it
	inited    atomic.Bool
	deadlines deadlines

	mu     sync.RWMutex // guards closed against calls.Add, so Close cannot miss a call
	closed bool
	calls  sync.WaitGroup // calls in flight
}

// partition holds the keys of one partition, built once by Init.
type partition struct {
	keys   []string // write order, expiry, revision counter
	prefix string   // of record keys
}

var _ switchboard.Store = (*Store)(nil)

// New returns a Store on client, a rueidis.Client the caller builds and
// keeps ownership of: standalone, Sentinel (ClientOption.Sentinel) or
// Redis Cluster (detected from the InitAddress nodes). The client needs no
// client-side cache (set DisableCache) and should dial with a short
// timeout (Dialer.Timeout, for example 200ms), so that a node that is down
// is reported quickly; every call is bounded by Options.OpTimeout through
// its context, which rueidis honours.
func New(client rueidis.Client, opts Options) (*Store, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: redisstore: nil client", switchboard.ErrInvalidConfig)
	}
	if opts.KeyPrefix == "" {
		opts.KeyPrefix = DefaultKeyPrefix
	}
	if strings.ContainsAny(opts.KeyPrefix, "{}") {
		return nil, fmt.Errorf("%w: redisstore: KeyPrefix %q may not contain '{' or '}'", switchboard.ErrInvalidConfig, opts.KeyPrefix)
	}
	switch {
	case opts.OpTimeout == 0:
		opts.OpTimeout = DefaultOpTimeout
	case opts.OpTimeout < time.Millisecond || opts.OpTimeout > time.Second:
		return nil, fmt.Errorf("%w: redisstore: OpTimeout %v must be between 1ms and 1s", switchboard.ErrInvalidConfig, opts.OpTimeout)
	}
	switch {
	case opts.ExpiryGrace == 0:
		opts.ExpiryGrace = DefaultExpiryGrace
	case opts.ExpiryGrace < 0:
		return nil, fmt.Errorf("%w: redisstore: ExpiryGrace %v must not be negative", switchboard.ErrInvalidConfig, opts.ExpiryGrace)
	}
	return &Store{client: client, opts: opts, graceMs: strconv.FormatInt(opts.ExpiryGrace.Milliseconds(), 10),
		deadlines: deadlines{timeout: opts.OpTimeout, now: time.Now}}, nil
}

// MetaKey returns the key under which Init records the partition count and
// capacity of a key prefix.
func MetaKey(prefix string) string { return "{" + prefix + "}:meta" }

// Init implements switchboard.Store. It records the partition count and
// capacity under the key prefix (MetaKey) the first time, and refuses, with
// an error wrapping switchboard.ErrInvalidConfig that names both values, a
// Manager whose configuration differs from what is recorded: replicas on
// one prefix that disagreed would put the same key in different
// partitions, or evict differently. To change the partition count, use a
// new prefix (routes would otherwise sit in the wrong partitions); to
// change the capacity, stop every replica and delete the meta key. Init
// needs Redis to answer (within OpTimeout); when it does not, the error
// wraps switchboard.ErrPartitionUnavailable.
func (s *Store) Init(cfg switchboard.StoreConfig) error {
	if cfg.PartitionCount <= 0 || cfg.MaxEntriesPerPartition <= 0 {
		return fmt.Errorf("%w: redisstore: partition count %d and capacity %d must be positive",
			switchboard.ErrInvalidConfig, cfg.PartitionCount, cfg.MaxEntriesPerPartition)
	}
	if !s.inited.CompareAndSwap(false, true) {
		return fmt.Errorf("%w: redisstore: already serving a Manager", switchboard.ErrInvalidConfig)
	}
	parts := make([]partition, cfg.PartitionCount)
	for p := range parts {
		tag := "{" + s.opts.KeyPrefix + ":" + strconv.Itoa(p) + "}"
		parts[p] = partition{keys: []string{tag + ":o", tag + ":e", tag + ":s"}, prefix: tag + ":r:"}
	}
	if err := s.checkMeta(cfg); err != nil {
		s.inited.Store(false)
		return err
	}
	s.parts, s.limit = parts, strconv.Itoa(cfg.MaxEntriesPerPartition)
	return nil
}

func (s *Store) checkMeta(cfg switchboard.StoreConfig) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.OpTimeout)
	defer cancel()
	err := s.begin(ctx)
	if err != nil {
		return err
	}
	msg, err := initScript.Exec(ctx, s.client, []string{MetaKey(s.opts.KeyPrefix)},
		[]string{strconv.Itoa(cfg.PartitionCount), strconv.Itoa(cfg.MaxEntriesPerPartition)}).ToMessage()
	s.calls.Done()
	if err != nil {
		return fmt.Errorf("redisstore: init: %w", s.unavailable(-1, err))
	}
	reply := value(&msg)
	vals, _ := reply.([]any)
	if len(vals) != 2 {
		return fmt.Errorf("%w: redisstore: init: unexpected reply %v", switchboard.ErrPartitionUnavailable, reply)
	}
	parts, _ := strconv.Atoi(fmt.Sprint(vals[0]))
	capacity, _ := strconv.Atoi(fmt.Sprint(vals[1]))
	if parts != cfg.PartitionCount || capacity != cfg.MaxEntriesPerPartition {
		return fmt.Errorf("%w: redisstore: key prefix %q holds routes of %d partitions with capacity %d, this Manager has %d partitions with capacity %d; "+
			"every Manager on one prefix must agree (set partition_count and max_entries_per_partition explicitly, or use another key prefix)",
			switchboard.ErrInvalidConfig, s.opts.KeyPrefix, parts, capacity, cfg.PartitionCount, cfg.MaxEntriesPerPartition)
	}
	return nil
}

// begin admits one call: ErrClosed after Close, the context's error when
// it is done; otherwise the call is counted until it calls s.calls.Done.
func (s *Store) begin(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return switchboard.ErrClosed
	}
	s.calls.Add(1)
	return nil
}

func (s *Store) part(p int) (*partition, error) {
	if p < 0 || p >= len(s.parts) {
		return nil, fmt.Errorf("redisstore: partition %d out of range (%d partitions)", p, len(s.parts))
	}
	return &s.parts[p], nil
}

// run runs script on partition p in one round trip, bounded by OpTimeout.
func (s *Store) run(ctx context.Context, p int, script *rueidis.Lua, args ...string) ([]any, error) {
	err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer s.calls.Done()
	pt, err := s.part(p)
	if err != nil {
		return nil, err
	}
	argv := make([]string, 0, len(args)+1)
	argv = append(append(argv, pt.prefix), args...)
	ctx, cancel := s.deadlines.bound(ctx) // at most OpTimeout from now
	defer cancel()
	msg, err := script.Exec(ctx, s.client, pt.keys, argv).ToMessage()
	if err != nil {
		return nil, s.unavailable(p, err)
	}
	reply := value(&msg)
	vals, ok := reply.([]any)
	if !ok {
		return nil, fmt.Errorf("%w: redisstore: partition %d: unexpected script reply %T", switchboard.ErrPartitionUnavailable, p, reply)
	}
	return vals, nil
}

// value converts a script's reply as RESP2 clients see it: strings,
// integers, nil for a null or a false, 1 for a true, arrays as []any.
func value(m *rueidis.RedisMessage) any {
	switch {
	case m.IsNil():
		return nil
	case m.IsInt64():
		n, _ := m.AsInt64()
		return n
	case m.IsBool():
		if b, _ := m.AsBool(); b {
			return int64(1)
		}
		return nil
	case m.IsArray():
		items, _ := m.ToArray()
		out := make([]any, len(items))
		for i := range items {
			out[i] = value(&items[i])
		}
		return out
	}
	str, _ := m.ToString()
	return str
}

// unavailable wraps a failed call: everything but an error reply of the
// script itself means the partition could not be reached in time. When the
// request may have reached Redis (a timeout, a connection broken after
// sending), the error wraps switchboard.ErrOutcomeUnknown too.
func (s *Store) unavailable(p int, err error) error {
	where := fmt.Sprintf("partition %d", p)
	if p < 0 {
		where = "meta key"
	}
	if isScriptError(err) {
		return fmt.Errorf("%w: redisstore: %s: script error: %w", switchboard.ErrPartitionUnavailable, where, err)
	}
	if _, ok := rueidis.IsRedisErr(err); ok { // the cluster refused it: not applied
		return fmt.Errorf("%w: %s: %w", switchboard.ErrPartitionUnavailable, where, err)
	}
	if notSent(err) {
		return fmt.Errorf("%w: %s (not applied): %w", switchboard.ErrPartitionUnavailable, where, err)
	}
	return fmt.Errorf("%w: %s: %w: %w", switchboard.ErrPartitionUnavailable, where, switchboard.ErrOutcomeUnknown, err)
}

// isScriptError reports whether err is an error reply of a script (a
// bug), not of the cluster. (A Redis Cluster client of rueidis reloads
// its slot map by itself after a redirect, CLUSTERDOWN or a failed
// connection, so a failed-over master's partitions come back without the
// Store's help.)
func isScriptError(err error) bool {
	rerr, ok := rueidis.IsRedisErr(err)
	if !ok {
		return false
	}
	for _, transient := range []string{"CLUSTERDOWN", "TRYAGAIN", "LOADING", "MASTERDOWN", "READONLY", "MOVED", "ASK", "NOREPLICAS"} {
		if strings.HasPrefix(rerr.Error(), transient) {
			return false
		}
	}
	return true
}

// notSent reports whether err shows that the request never reached Redis:
// a refused or failed dial, or no free connection in the pool.
func notSent(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, rueidis.ErrClosing)
}

// stamp formats unix nanoseconds as the scripts compare them.
func stamp(t time.Time) string { return pad20(t.UnixNano()) }

func nanos(d time.Duration) string { return pad20(int64(d)) }

// pad20 is fmt.Sprintf("%020d", n) for n >= 0, with one allocation.
func pad20(n int64) string {
	if n < 0 {
		return fmt.Sprintf("%020d", n)
	}
	var b, digits [20]byte
	for i := range b {
		b[i] = '0'
	}
	d := strconv.AppendInt(digits[:0], n, 10) // at most 19 digits
	copy(b[20-len(d):], d)
	return string(b[:])
}

func millis(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// redisTTL is the Redis expiry, in milliseconds, of a record fresh from now
// until expires.
func (s *Store) redisTTL(now, expires time.Time) string {
	return strconv.FormatInt((expires.Sub(now) + s.opts.ExpiryGrace + time.Millisecond - 1).Milliseconds(), 10)
}

func parseStamp(str string) (time.Time, error) {
	n, err := stampNanos(str)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: redisstore: bad timestamp %q", switchboard.ErrPartitionUnavailable, str)
	}
	return time.Unix(0, n), nil
}

// stampNanos is strconv.ParseInt(str, 10, 64), faster for what pad20
// writes for n >= 0: "0" and 19 digits.
func stampNanos(str string) (int64, error) {
	if len(str) != 20 || str[0] != '0' {
		return strconv.ParseInt(str, 10, 64)
	}
	var n uint64
	for i := 1; i < 20; i++ {
		d := str[i] - '0'
		if d > 9 {
			return strconv.ParseInt(str, 10, 64) // its error
		}
		n = n*10 + uint64(d) // 19 digits fit
	}
	if n > math.MaxInt64 {
		return strconv.ParseInt(str, 10, 64) // its range error
	}
	return int64(n), nil
}

// record decodes the nine values u, e, r, o, w, p, v, c, i a script
// returned for a record.
func record(v []any) (switchboard.Record, error) {
	if len(v) < recordFields {
		return switchboard.Record{}, fmt.Errorf("%w: redisstore: short record %v", switchboard.ErrPartitionUnavailable, v)
	}
	var f [recordFields]string
	for i := range f {
		f[i] = str(v[i])
	}
	var rec switchboard.Record
	err := recordOf(&f, &rec)
	return rec, err
}

// recordFields is how many values a record travels as.
const recordFields = 9

// recordOf decodes a record's fields u, e, r, o, w, p, v, c, i.
// It fills rec, which must be the zero Record.
func recordOf(f *[recordFields]string, rec *switchboard.Record) (err error) {
	if rec.UpdatedAt, err = parseStamp(f[0]); err != nil {
		return err
	}
	if rec.ExpiresAt, err = parseStamp(f[1]); err != nil {
		return err
	}
	if err := decodeRoute(f[2], &rec.Route); err != nil {
		return fmt.Errorf("%w: redisstore: bad stored route: %w", switchboard.ErrPartitionUnavailable, err)
	}
	rec.Origin = switchboard.Origin(f[3])
	rec.Writer = f[4]
	rec.Priority, _ = strconv.Atoi(f[5])
	rec.Revision, _ = strconv.ParseUint(f[6], 10, 64)
	rec.Confirmed = f[7] == "1"
	rec.Invalidated = f[8]
	return nil
}

func str(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case int64:
		return strconv.FormatInt(v, 10)
	}
	return ""
}

func integer(v any) int {
	switch v := v.(type) {
	case int64:
		return int(v)
	case string:
		n, _ := strconv.Atoi(v)
		return n
	}
	return 0
}

// unpack reads a record's string (the layout in scripts.go: u and e, 20
// characters each, then v, c, p, o, w, i, x, h, t and r joined by the byte
// 31) into the nine values u, e, r, o, w, p, v, c, i; ok is false when it
// does not have that shape.
func unpack(s string, f *[recordFields]string) (ok bool) {
	if len(s) < 40 {
		return false
	}
	f[0], f[1], s = s[:20], s[20:40], s[40:]
	// Into v, c, p, o, w and i; x, h and t are not read.
	var x, h, t string
	for _, dst := range [...]*string{&f[6], &f[7], &f[5], &f[3], &f[4], &f[8], &x, &h, &t} {
		var found bool
		if *dst, s, found = strings.Cut(s, "\x1f"); !found {
			return false
		}
	}
	f[2] = s // r, the rest (as the scripts read it)
	return true
}

// hit is the first look of Get and Resolve, without a script: the
// record's string by a plain GET, one command. (Resolve reports the size
// of a state hit as -1, unknown, which the Store contract allows: a
// pipelined ZCARD for it cost the client a pipeline on every hit.) A
// script costs Redis several times what the commands it runs cost (the
// Lua call, its redis.call conversions), and a hit changes nothing, so it
// needs no atomicity. ok is false unless the record is fresh at now — and
// valid, when valid is asked for — and in the string form: then the
// caller runs the script, which reads it (or the hash form of earlier
// releases, which answers GET with WRONGTYPE), decides, and cleans up,
// atomically (a miss costs two round trips). member is the key's string
// form, for that script.
func (s *Store) hit(ctx context.Context, key switchboard.StoreKey, now time.Time, valid bool) (rec switchboard.Record, ok bool, member string, err error) {
	if err = s.begin(ctx); err != nil {
		return rec, false, "", err
	}
	defer s.calls.Done()
	pt, err := s.part(key.Partition)
	if err != nil {
		return rec, false, "", err
	}
	// The record key in one allocation; the member is its tail.
	k := &key.Key
	buf := make([]byte, 0, len(pt.prefix)+len(k.ChannelType)+len(k.BridgeID)+len(k.RoomID)+len(k.ThreadID)+8)
	if buf, err = k.AppendText(append(buf, pt.prefix...)); err != nil {
		return rec, false, "", err
	}
	recordKey := unsafe.String(unsafe.SliceData(buf), len(buf))
	member = recordKey[len(pt.prefix):]
	ctx, cancel := s.deadlines.bound(ctx) // at most OpTimeout from now
	defer cancel()
	v, err := s.client.Do(ctx, s.client.B().Get().Key(recordKey).Build()).ToString()
	if err != nil {
		if re, isErr := rueidis.IsRedisErr(err); rueidis.IsRedisNil(err) || isErr && strings.HasPrefix(re.Error(), "WRONGTYPE") {
			return rec, false, member, nil // absent, or a hash of an earlier release: the script decides
		}
		return rec, false, member, s.unavailable(key.Partition, err)
	}
	var f [recordFields]string
	if !unpack(v, &f) {
		return rec, false, member, nil // not a record's string: the script decides
	}
	if e, err := stampNanos(f[1]); err != nil || e <= now.UnixNano() {
		return rec, false, member, nil // expired (or unreadable): the script decides
	}
	if valid && f[8] != "" {
		return rec, false, member, nil // a tombstone: the script resolves past it
	}
	if err = recordOf(&f, &rec); err != nil {
		return switchboard.Record{}, false, member, err
	}
	return rec, true, member, nil
}

// Get implements switchboard.Store.
func (s *Store) Get(ctx context.Context, key switchboard.StoreKey, now time.Time) (switchboard.Record, error) {
	rec, ok, member, err := s.hit(ctx, key, now, false)
	if ok || err != nil {
		return rec, err
	}
	vals, err := s.run(ctx, key.Partition, getScript, member, stamp(now))
	if err != nil {
		return switchboard.Record{}, err
	}
	switch status, _ := vals[0].(string); status {
	case "fresh":
		return record(vals[1:])
	case "expired":
		return switchboard.Record{}, switchboard.ErrExpired
	default:
		return switchboard.Record{}, switchboard.ErrNotFound
	}
}

// Set implements switchboard.Store.
func (s *Store) Set(ctx context.Context, req switchboard.SetRequest) (switchboard.SetResult, error) {
	rec := &req.Record
	route, err := json.Marshal(rec.Route)
	if err != nil {
		return switchboard.SetResult{}, fmt.Errorf("redisstore: encode route: %w", err)
	}
	absent := "0"
	if req.IfAbsent {
		absent = "1"
	}
	vals, err := s.run(ctx, req.Key.Partition, setScript, req.Key.Key.String(), stamp(rec.UpdatedAt), stamp(rec.ExpiresAt),
		nanos(rec.ExpiresAt.Sub(rec.UpdatedAt)), string(route), rec.Route.ExternalRoomID, rec.Route.ThreadID, rec.Writer,
		strconv.Itoa(rec.Priority), s.redisTTL(rec.UpdatedAt, rec.ExpiresAt), s.limit, strconv.FormatUint(req.IfRevision, 10), absent)
	if err != nil {
		return switchboard.SetResult{}, err
	}
	if len(vals) < 4 {
		return switchboard.SetResult{}, fmt.Errorf("%w: redisstore: short reply %v", switchboard.ErrPartitionUnavailable, vals)
	}
	switch str(vals[0]) {
	case "stored":
		return switchboard.SetResult{Outcome: switchboard.SetStored, Revision: uint64(integer(vals[1])), Evicted: integer(vals[2]), Size: integer(vals[3])}, nil
	case "conflict":
		return switchboard.SetResult{Outcome: switchboard.SetConflict, CurrentRevision: uint64(integer(vals[1])), CurrentPriority: integer(vals[2]), Size: integer(vals[3])}, nil
	default:
		return switchboard.SetResult{Outcome: switchboard.SetSuperseded, CurrentRevision: uint64(integer(vals[1])), CurrentPriority: integer(vals[2]), Size: integer(vals[3])}, nil
	}
}

// Resolve implements switchboard.Store.
func (s *Store) Resolve(ctx context.Context, req switchboard.ResolveRequest) (switchboard.ResolveResult, error) {
	rec, ok, member, err := s.hit(ctx, req.Key, req.Now, true)
	if err != nil {
		return switchboard.ResolveResult{}, err
	} else if ok {
		// A state hit changes nothing: its size is not worth a second command.
		return switchboard.ResolveResult{Source: switchboard.SourceStateHit, Record: rec, Size: -1}, nil
	}
	now := stamp(req.Now)
	room := ""
	if req.Key.Key.ThreadID != "" {
		room = req.Room.Key.String()
	}
	args := make([]string, 0, 8+3*len(req.Fallbacks))
	args = append(args, member, room, now, stamp(req.ExpiresAt), nanos(req.ExpiresAt.Sub(req.Now)),
		s.redisTTL(req.Now, req.ExpiresAt), s.limit, strconv.Itoa(len(req.Fallbacks)))
	for _, f := range req.Fallbacks {
		raw, err := json.Marshal(f)
		if err != nil {
			return switchboard.ResolveResult{}, fmt.Errorf("redisstore: encode fallback: %w", err)
		}
		args = append(args, f.ExternalRoomID, f.ThreadID, string(raw))
	}
	vals, err := s.run(ctx, req.Key.Partition, resolveScript, args...)
	if err != nil {
		return switchboard.ResolveResult{}, err
	}
	if len(vals) < 15 {
		return switchboard.ResolveResult{}, fmt.Errorf("%w: redisstore: short reply %v", switchboard.ErrPartitionUnavailable, vals)
	}
	source := str(vals[0])
	res := switchboard.ResolveResult{
		Source:       switchboard.Source(source),
		ExactExpired: integer(vals[10]) == 1,
		RoomExpired:  integer(vals[11]) == 1,
		Invalidated:  integer(vals[12]) == 1,
		Evicted:      integer(vals[13]),
		Size:         integer(vals[14]),
	}
	if source != "" {
		if res.Record, err = record(vals[1:10]); err != nil {
			return switchboard.ResolveResult{}, err
		}
	}
	return res, nil
}

// Look implements switchboard.Store.
func (s *Store) Look(ctx context.Context, req switchboard.ResolveRequest) (switchboard.LookResult, error) {
	room := ""
	if req.Key.Key.ThreadID != "" {
		room = req.Room.Key.String()
	}
	vals, err := s.run(ctx, req.Key.Partition, lookScript, req.Key.Key.String(), room, stamp(req.Now))
	if err != nil {
		return switchboard.LookResult{}, err
	}
	if len(vals) < 21 {
		return switchboard.LookResult{}, fmt.Errorf("%w: redisstore: short reply %v", switchboard.ErrPartitionUnavailable, vals)
	}
	var res switchboard.LookResult
	for i, l := range []*switchboard.Look{&res.Exact, &res.Room} {
		v := vals[10*i:]
		switch str(v[0]) {
		case "fresh":
			l.State = switchboard.LookFresh
		case "expired":
			l.State = switchboard.LookExpired
		default:
			continue
		}
		if str(v[2]) == "" { // expired by Redis itself: nothing left to show
			continue
		}
		if l.Record, err = record(v[1:10]); err != nil {
			return switchboard.LookResult{}, err
		}
	}
	res.Size = integer(vals[20])
	return res, nil
}

// Confirm implements switchboard.Store.
func (s *Store) Confirm(ctx context.Context, req switchboard.FeedbackRequest) (switchboard.FeedbackResult, error) {
	return s.feedback(ctx, &req, "confirm", nanos(req.TTL))
}

// Invalidate implements switchboard.Store.
func (s *Store) Invalidate(ctx context.Context, req switchboard.FeedbackRequest) (switchboard.FeedbackResult, error) {
	return s.feedback(ctx, &req, "invalidate", req.Reason)
}

func (s *Store) feedback(ctx context.Context, req *switchboard.FeedbackRequest, op, arg string) (switchboard.FeedbackResult, error) {
	vals, err := s.run(ctx, req.Key.Partition, feedbackScript, req.Key.Key.String(), stamp(req.Now),
		req.Target.ExternalRoomID, req.Target.ThreadID, op, arg, s.graceMs)
	if err != nil {
		return switchboard.FeedbackResult{}, err
	}
	if len(vals) < 11 {
		return switchboard.FeedbackResult{}, fmt.Errorf("%w: redisstore: short reply %v", switchboard.ErrPartitionUnavailable, vals)
	}
	res := switchboard.FeedbackResult{Size: integer(vals[10])}
	switch str(vals[0]) {
	case "not_found":
		res.Outcome = switchboard.FeedbackNotFound
		return res, nil
	case "conflict":
		res.Outcome = switchboard.FeedbackConflict
	case "unchanged":
		res.Outcome = switchboard.FeedbackUnchanged
	default:
		res.Outcome = switchboard.FeedbackApplied
	}
	if res.Record, err = record(vals[1:10]); err != nil {
		return switchboard.FeedbackResult{}, err
	}
	return res, nil
}

// Delete implements switchboard.Store.
func (s *Store) Delete(ctx context.Context, key switchboard.StoreKey) (int, error) {
	vals, err := s.run(ctx, key.Partition, deleteScript, key.Key.String())
	if err != nil {
		return 0, err
	}
	if integer(vals[0]) == 0 {
		return integer(vals[1]), switchboard.ErrNotFound
	}
	return integer(vals[1]), nil
}

// Prune implements switchboard.Store.
func (s *Store) Prune(ctx context.Context, partition int, now time.Time) (switchboard.PruneStats, error) {
	vals, err := s.run(ctx, partition, pruneScript, stamp(now), millis(now))
	if err != nil {
		return switchboard.PruneStats{}, err
	}
	return switchboard.PruneStats{Pruned: integer(vals[0]), Size: integer(vals[1])}, nil
}

// scanBatch is how many records one scan script looks at: it bounds the
// time a script holds Redis.
const scanBatch = 256

func filterArgs(f *switchboard.Filter) []string {
	before := ""
	if !f.UpdatedBefore.IsZero() {
		before = stamp(f.UpdatedBefore)
	}
	inv := "0"
	if f.Invalidated {
		inv = "1"
	}
	return []string{f.ChannelType, f.BridgeID, f.RoomID, f.ThreadID, string(f.Scope), f.ExternalRoomID, string(f.Origin), f.Writer, before, inv}
}

// scan runs one scan script. It returns the reply's next score, done,
// size, count and the rest.
func (s *Store) scan(ctx context.Context, partition int, now time.Time, after uint64, limit, batch int, mode string, f *switchboard.Filter) (next uint64, done bool, size, n int, rest []any, err error) {
	args := append([]string{stamp(now), strconv.FormatUint(after, 10), strconv.Itoa(limit), strconv.Itoa(batch), mode}, filterArgs(f)...)
	vals, err := s.run(ctx, partition, scanScript, args...)
	if err != nil {
		return 0, false, 0, 0, nil, err
	}
	if len(vals) < 4 {
		return 0, false, 0, 0, nil, fmt.Errorf("%w: redisstore: short reply %v", switchboard.ErrPartitionUnavailable, vals)
	}
	score, _ := strconv.ParseFloat(str(vals[0]), 64) // scores are revisions, exact in a float64 up to 2^53
	return uint64(score), integer(vals[1]) == 1, integer(vals[2]), integer(vals[3]), vals[4:], nil
}

// Scan implements switchboard.Store: positions are write-order scores
// (revisions), each call looks at up to 256 records in one script.
func (s *Store) Scan(ctx context.Context, req switchboard.ScanRequest) (switchboard.ScanResult, error) {
	next, done, _, n, rest, err := s.scan(ctx, req.Partition, req.Now, req.After, req.Limit, scanBatch, "scan", &req.Filter)
	if err != nil {
		return switchboard.ScanResult{}, err
	}
	res := switchboard.ScanResult{Next: next, Done: done}
	for i := 0; i < n && len(rest) >= 10; i++ {
		k, err := switchboard.ParseSessionKey(str(rest[0]))
		if err != nil {
			return switchboard.ScanResult{}, fmt.Errorf("%w: redisstore: bad stored key: %w", switchboard.ErrPartitionUnavailable, err)
		}
		rec, err := record(rest[1:10])
		if err != nil {
			return switchboard.ScanResult{}, err
		}
		res.Entries = append(res.Entries, switchboard.Entry{Key: k, Partition: req.Partition, Record: rec})
		rest = rest[10:]
	}
	return res, nil
}

// DeleteMatching implements switchboard.Store, in scripts of up to 512
// records each.
func (s *Store) DeleteMatching(ctx context.Context, req switchboard.DeleteRequest) (switchboard.DeleteStats, error) {
	mode := "delete"
	if req.DryRun {
		mode = "count"
	}
	var st switchboard.DeleteStats
	var after uint64
	for {
		next, done, size, n, rest, err := s.scan(ctx, req.Partition, req.Now, after, 0, 2*scanBatch, mode, &req.Filter)
		if err != nil {
			return st, err
		}
		for _, m := range rest[:min(n, len(rest))] {
			k, err := switchboard.ParseSessionKey(str(m))
			if err != nil {
				return st, fmt.Errorf("%w: redisstore: bad stored key: %w", switchboard.ErrPartitionUnavailable, err)
			}
			st.Keys = append(st.Keys, k)
		}
		st.Matched += n
		if !req.DryRun {
			st.Deleted += n
		}
		st.Size, after = size, next
		if done {
			return st, nil
		}
	}
}

// Stat implements switchboard.Store. Owner is the address of the node that
// serves the partition's slot as that node sees it (the laddr of CLIENT
// INFO, pipelined with the partition's ZCARD on the same connection, so it
// names the master a Sentinel or cluster client is talking to); Available
// is the result of that real call (which also gives Entries).
func (s *Store) Stat(ctx context.Context, partition int) (switchboard.StoreStatus, error) {
	err := s.begin(ctx)
	if err != nil {
		return switchboard.StoreStatus{}, err
	}
	defer s.calls.Done()
	pt, err := s.part(partition)
	if err != nil {
		return switchboard.StoreStatus{}, err
	}
	ctx, cancel := s.deadlines.bound(ctx) // at most OpTimeout from now
	defer cancel()
	var st switchboard.StoreStatus
	var n int64
	var laddr string
	// Both commands go to the node of the partition's slot: rueidis sends a
	// keyless command pipelined with keyed ones to the keyed ones' node.
	res := s.client.DoMulti(ctx, s.client.B().Zcard().Key(pt.keys[0]).Build(), s.client.B().ClientInfo().Build())
	n, err = res[0].AsInt64()
	if err == nil {
		var text string
		text, err = res[1].ToString()
		laddr = fieldOf(text, "laddr")
	}
	if err != nil {
		if cerr := ctx.Err(); cerr != nil && errors.Is(cerr, context.Canceled) {
			return switchboard.StoreStatus{}, cerr
		}
		return st, nil // unreachable: Available stays false
	}
	st.Owner, st.Available, st.Entries = laddr, true, int(n)
	return st, nil
}

// fieldOf returns the value of name in a "k=v k=v" line.
func fieldOf(line, name string) string {
	for _, f := range strings.Fields(line) {
		if k, v, ok := strings.Cut(f, "="); ok && k == name {
			return v
		}
	}
	return ""
}

// Close implements switchboard.Store: it waits for calls in flight to end.
// It does not close the client.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return switchboard.ErrClosed
	}
	s.closed = true
	s.mu.Unlock()
	s.calls.Wait()
	s.deadlines.release()
	return nil
}
