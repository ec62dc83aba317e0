// Package redisstore is a switchboard.Store that keeps route state in
// Redis — standalone, Sentinel or Redis Cluster (Valkey works the same) —
// so that many processes share one route state:
//
//	client, err := rueidis.NewClient(rueidis.ClientOption{
//		InitAddress:      []string{"10.0.0.1:6379", "10.0.0.2:6379", "10.0.0.3:6379"},
//		DisableCache:     true,
//		Dialer:           net.Dialer{Timeout: 200 * time.Millisecond},
//		ConnWriteTimeout: 200 * time.Millisecond,
//	})
//	st, err := redisstore.New(client, redisstore.Options{KeyPrefix: "support_bot"})
//	m, err := switchboard.New(cfg, switchboard.WithStore(st))
//
// The client is github.com/redis/rueidis, which the caller builds and owns:
// it finds a Redis Cluster from its InitAddress nodes, follows Sentinel with
// ClientOption.Sentinel, pipelines concurrent calls over one connection per
// node, and honours each call's context deadline, which the Store sets to
// Options.OpTimeout (calls whose context cannot be cancelled share one
// deadline, renewed every OpTimeout/16, rather than each paying a timer:
// 5 of a hit's 10 client allocations). (The store took a go-redis v9
// client before; measured on the same redis-server at 64 goroutines, a
// Resolve hit runs at 1.5–2.2× the throughput with 17 client allocations
// instead of 37 (10 once a hit read one packed field, 5 with the shared
// deadline, 2 since a record is one string), and Set at 1.1–2.1×; see
// docs/benchmarks.md.)
//
// Semantics are the memory backend's exactly (both pass package storetest):
// every change is one round trip running one Lua script, so
// set-with-conditions-precedence-and-eviction, get-with-expiry-delete, the
// whole resolve step (tombstones included), Confirm, Invalidate and
// Explain's look are atomic. Reads that hit skip the script: Get and
// Resolve first read the key's record with a plain GET, one command that
// changes nothing (Resolve reports a state hit's partition size as -1,
// unknown, as the Store contract allows, rather than pipelining a ZCARD
// for it); only when that record is not fresh and valid does the script
// run (a Resolve miss or fallback is two round trips). A script costs
// Redis several times the commands it runs: on Redis 7.0 a trivial
// EVALSHA is ~1.4 µs, a script running a Set's six commands with no logic
// ~8.5 µs, the Set script ~11 µs (each script defines only the Lua
// functions it calls: every function defined costs every call a closure);
// prune is one script per partition; List and DeleteMatching walk a
// partition in write order, 256 (512) records per script, never with
// KEYS. "now" is the Manager's clock, passed to the scripts.
//
// Replicas: Init records the partition count and capacity under the key
// prefix (hash {<KeyPrefix>}:meta) the first time and refuses a Manager
// configured otherwise, so replicas that disagree fail to start instead of
// splitting state.
//
// Layout: all keys of partition p carry the hash tag {<KeyPrefix>:<p>}, so
// a partition is one cluster slot on one node:
//
//	{sb}:meta          hash, the partition count and capacity of the prefix
//	{sb:3}:o           sorted set, the partition's records by write order (score: revision; capacity eviction, List)
//	{sb:3}:e           sorted set, the partition's records by expiry (pruning)
//	{sb:3}:s           the partition's revision counter (INCR per write)
//	{sb:3}:r:<key>     string, one record: updated and expires (unix ns), revision,
//	                   confirmed, priority, origin, writer, invalidation reason, the
//	                   route's target, the TTL it was written with, and the route (JSON)
//
// A record is one string so that a read hit is one GET and a write one
// SET … PX. Releases before this one stored it as a hash of the same
// fields (~1,580 bytes of Redis memory per record with its index entries,
// against ~630 now, at 100,000 records); this release reads those hashes
// wherever it reads a record and replaces each with a string when it
// next writes it, so no migration is needed. A client of such a release
// cannot read the strings (its scripts fail with WRONGTYPE, which it
// reports as ErrPartitionUnavailable): upgrade every client of a key
// prefix together rather than one by one.
//
// Each record key also has a Redis expiry of its remaining TTL plus
// Options.ExpiryGrace, counted by Redis from the write, so nothing outlives
// its time if pruning stops.
//
// Failures: a node that is down, unreachable or answering CLUSTERDOWN makes
// exactly its partitions return switchboard.ErrPartitionUnavailable (Resolve
// then answers from the caller's fallback with reason session_unavailable),
// within Options.OpTimeout — together with switchboard.ErrOutcomeUnknown
// when the call timed out or its connection broke after sending, because a
// hung node may still apply it when it resumes (a refused connection means
// it was not applied); the other partitions keep working, and the
// failed ones work again when the node is back (rueidis reloads a cluster's
// slot map itself when a call meets a failed connection, a redirect or
// CLUSTERDOWN, so a promoted replica takes over within seconds). With Redis Cluster's default
// cluster-require-full-coverage yes, losing one master that has no replica
// turns the whole cluster to CLUSTERDOWN once cluster-node-timeout passes:
// run masters with replicas, or set cluster-require-full-coverage no so the
// healthy masters keep serving their slots.
package redisstore
