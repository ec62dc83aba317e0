package redisstore

import "github.com/redis/go-redis/v9"

// Every operation on a partition is one of these scripts, run with EVALSHA
// (EVAL on NOSCRIPT), so it is one round trip and atomic. All keys of a
// partition share the hash tag {<prefix>:<p>} and so one cluster slot.
// Every script gets:
//
//   - KEYS[1]: the partition's write-order sorted set (member: a key's
//     string form; score: a per-partition write sequence, oldest first);
//   - KEYS[2]: the partition's expiry sorted set (same members; score:
//     expiry in unix milliseconds, what Prune scans);
//   - KEYS[3]: the partition's write-sequence counter;
//   - ARGV[1]: the prefix of record keys, "{<prefix>:<p>}:r:". A record is
//     a hash at ARGV[1]..member with fields u (updated) and e (expires),
//     unix nanoseconds as 20-digit decimal strings compared exactly, and r
//     (the route as JSON), and a Redis expiry of its remaining TTL plus a
//     grace, so Redis removes what pruning misses.
const common = `
local prefix = ARGV[1]
local function older(a, b) -- a < b for 20-digit decimal strings, exactly
  local ah, bh = tonumber(string.sub(a, 1, 10)), tonumber(string.sub(b, 1, 10))
  if ah ~= bh then return ah < bh end
  return tonumber(string.sub(a, 11)) < tonumber(string.sub(b, 11))
end
local function drop(member)
  redis.call('ZREM', KEYS[1], member)
  redis.call('ZREM', KEYS[2], member)
  redis.call('DEL', prefix .. member)
end
-- look: 'fresh', u, e, r | 'expired' (and dropped) | 'absent'
local function look(member, now)
  local v = redis.call('HMGET', prefix .. member, 'u', 'e', 'r')
  if not v[2] then
    if redis.call('ZSCORE', KEYS[1], member) then -- Redis expired the record itself
      drop(member)
      return 'expired'
    end
    return 'absent'
  end
  if older(now, v[2]) then return 'fresh', v[1], v[2], v[3] end
  drop(member)
  return 'expired'
end
local function write(member, u, e, ems, route, px, cap)
  local k = prefix .. member
  redis.call('HSET', k, 'u', u, 'e', e, 'r', route)
  redis.call('PEXPIRE', k, px)
  redis.call('ZADD', KEYS[1], redis.call('INCR', KEYS[3]), member)
  redis.call('ZADD', KEYS[2], ems, member)
  local evicted = 0
  while redis.call('ZCARD', KEYS[1]) > cap do
    drop(redis.call('ZRANGE', KEYS[1], 0, 0)[1])
    evicted = evicted + 1
  end
  return evicted
end
`

// getScript: ARGV[2] member, ARGV[3] now.
// Returns {status, u, e, r}.
var getScript = redis.NewScript(common + `
local status, u, e, r = look(ARGV[2], ARGV[3])
if status == 'fresh' then return {status, u, e, r} end
return {status}
`)

// setScript: ARGV[2] member, ARGV[3] updated, ARGV[4] expires,
// ARGV[5] expires in ms, ARGV[6] route JSON, ARGV[7] Redis expiry in ms,
// ARGV[8] capacity. Returns {evicted, size}.
var setScript = redis.NewScript(common + `
local evicted = write(ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], tonumber(ARGV[8]))
return {evicted, redis.call('ZCARD', KEYS[1])}
`)

// resolveScript: ARGV[2] member, ARGV[3] room member ("" without a
// thread), ARGV[4] now, ARGV[5] expires for a stored route, ARGV[6] the
// same in ms, ARGV[7] Redis expiry in ms, ARGV[8] fallback route JSON (""
// for none), ARGV[9] capacity.
// Returns {source, u, e, r, exactExpired, roomExpired, evicted, size}.
var resolveScript = redis.NewScript(common + `
local member, room, now = ARGV[2], ARGV[3], ARGV[4]
local cap = tonumber(ARGV[9])
local status, u, e, r = look(member, now)
if status == 'fresh' then
  return {'state_hit', u, e, r, 0, 0, 0, redis.call('ZCARD', KEYS[1])}
end
local exactExpired = 0
if status == 'expired' then exactExpired = 1 end
local roomExpired = 0
local source, route = '', ''
if room ~= '' then
  local rs, _, _, rr = look(room, now)
  if rs == 'fresh' then
    source, route = 'partition_fallback', rr
  elseif rs == 'expired' then
    roomExpired = 1
  end
end
if source == '' and ARGV[8] ~= '' then
  source, route = 'provided_fallback', ARGV[8]
end
if source == '' then
  return {'', '', '', '', exactExpired, roomExpired, 0, redis.call('ZCARD', KEYS[1])}
end
local evicted = write(member, now, ARGV[5], ARGV[6], route, ARGV[7], cap)
return {source, now, ARGV[5], route, exactExpired, roomExpired, evicted, redis.call('ZCARD', KEYS[1])}
`)

// deleteScript: ARGV[2] member. Returns {deleted (0 or 1), size}.
var deleteScript = redis.NewScript(common + `
local existed = 0
if redis.call('ZSCORE', KEYS[1], ARGV[2]) or redis.call('EXISTS', prefix .. ARGV[2]) == 1 then
  drop(ARGV[2])
  existed = 1
end
return {existed, redis.call('ZCARD', KEYS[1])}
`)

// pruneScript: ARGV[2] now, ARGV[3] now in ms. Deletes every record
// expired at now. Returns {pruned, size}.
var pruneScript = redis.NewScript(common + `
local now = ARGV[2]
local pruned = 0
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[3])) do
  local e = redis.call('HGET', prefix .. member, 'e')
  if not e or not older(now, e) then
    drop(member)
    pruned = pruned + 1
  end
end
return {pruned, redis.call('ZCARD', KEYS[1])}
`)
