package redisstore

import "github.com/redis/rueidis"

// Every operation on a partition is one of these scripts, run with EVALSHA
// (EVAL on NOSCRIPT), so it is one round trip and atomic. All keys of a
// partition share the hash tag {<prefix>:<p>} and so one cluster slot.
// Every script gets:
//
//   - KEYS[1]: the partition's write-order sorted set (member: a key's
//     string form; score: the revision of its last write that moved it,
//     oldest first);
//   - KEYS[2]: the partition's expiry sorted set (same members; score:
//     expiry in unix milliseconds, what Prune scans);
//   - KEYS[3]: the partition's revision counter (INCR gives each write its
//     revision, so revisions never repeat in the partition, across
//     deletes, evictions and restarts of any client);
//   - ARGV[1]: the prefix of record keys, "{<prefix>:<p>}:r:". A record is
//     a hash at ARGV[1]..member with fields u (updated), e (expires) and t
//     (the TTL it was written with), unix nanoseconds (t: nanoseconds) as
//     20-digit decimal strings compared exactly; r (the route as JSON), x
//     and h (its ExternalRoomID and ThreadID: its delivery target); o
//     (origin), w (writer), p (priority), v (revision), c (confirmed, "1"
//     or "0") and i (the invalidation reason, "" for a valid record); and
//     a Redis expiry of its remaining TTL plus a grace, so Redis removes
//     what pruning misses. Records written before these fields existed
//     read as origin set, revision = their write-order score. Field d
//     repeats u, e, r, o, w, p, v, c and i joined by the byte 31, for the
//     read hit's one-field look (see Store.hit); every script that writes
//     a record rewrites it.
//
// A record travels back to Go as the nine values u, e, r, o, w, p, v, c, i.
//
// The scripts are built from the pieces below, each taking only the
// functions it calls: Redis runs a script's whole chunk on every call, so
// each function defined costs every call a closure (the one prelude all
// scripts shared cost a Set about 1.5 µs of Redis time).

// luaBase: prefix, older, ms, size and drop, for every script.
const luaBase = `
local prefix = ARGV[1]
local function older(a, b) -- a < b for 20-digit decimal strings, exactly
  -- Two stamps of 20 digits compare as strings (digits collate in numeric
  -- order); only other forms take the arithmetic, which costs Redis about
  -- 2 µs per comparison in Lua's string functions.
  if #a == 20 and #b == 20 and string.byte(a) ~= 45 and string.byte(b) ~= 45 then return a < b end
  local ah, bh = tonumber(string.sub(a, 1, 10)), tonumber(string.sub(b, 1, 10))
  if ah ~= bh then return ah < bh end
  return tonumber(string.sub(a, 11)) < tonumber(string.sub(b, 11))
end
local function ms(stamp) return string.sub(stamp, 1, 14) end -- unix ms of a 20-digit ns stamp
local function size() return redis.call('ZCARD', KEYS[1]) end
local function drop(member)
  redis.call('ZREM', KEYS[1], member)
  redis.call('ZREM', KEYS[2], member)
  redis.call('DEL', prefix .. member)
end
`

// luaAdd: add and px, the stamp arithmetic of Confirm.
const luaAdd = `
local function add(a, b) -- a + b for 20-digit decimal strings, exactly
  local lo = tonumber(string.sub(a, 11)) + tonumber(string.sub(b, 11))
  local hi = tonumber(string.sub(a, 1, 10)) + tonumber(string.sub(b, 1, 10))
  if lo >= 1e10 then lo, hi = lo - 1e10, hi + 1 end
  return string.format('%010d%010d', hi, lo)
end
local function px(ttl, grace) return math.floor(tonumber(ttl) / 1e6) + tonumber(grace) + 1 end
`

// luaLoad: load, flat and none, to read whole records.
const luaLoad = `
-- load returns the record of member as a table, or nil and whether a
-- record was there that Redis itself expired (its index entries remain).
local function load(member)
  local v = redis.call('HMGET', prefix .. member, 'u', 'e', 't', 'r', 'x', 'h', 'o', 'w', 'p', 'v', 'c', 'i')
  if not v[2] then
    return nil, redis.call('ZSCORE', KEYS[1], member) ~= false
  end
  return {u = v[1], e = v[2], t = v[3], r = v[4], x = v[5] or '', h = v[6] or '', o = v[7] or 'set', w = v[8] or '',
    p = v[9] or '0', v = v[10] or redis.call('ZSCORE', KEYS[1], member) or '0', c = v[11] or '0', i = v[12] or ''}
end
local function flat(rec) return {rec.u, rec.e, rec.r, rec.o, rec.w, rec.p, tostring(rec.v), rec.c, rec.i} end
local none = {'', '', '', '', '', '', '', '', ''}
`

// luaLook (after luaLoad): look.
const luaLook = `
-- look: 'fresh', rec | 'expired' (and dropped) | 'absent'
local function look(member, now)
  local rec, gone = load(member)
  if not rec then
    if gone then drop(member); return 'expired' end
    return 'absent'
  end
  if older(now, rec.e) then return 'fresh', rec end
  drop(member)
  return 'expired'
end
`

// luaHead: head, what Set's checks read.
const luaHead = `
-- head returns the fields of member's record that Set's checks read, or
-- nil: HMGET of 4 fields instead of load's 12.
local function head(member)
  local v = redis.call('HMGET', prefix .. member, 'e', 'p', 'v', 'i')
  if not v[1] then return nil end
  return {e = v[1], p = v[2] or '0', v = v[3] or redis.call('ZSCORE', KEYS[1], member) or '0', i = v[4] or ''}
end
`

// luaWrite: packed (field d) and write.
const luaWrite = `
-- packed is field d of a record: the nine values a read hit needs, joined
-- by the byte 31 (no valid field holds a control character).
local function packed(u, e, r, o, w, p, v, c, i) return table.concat({u, e, r, o, w, p, tostring(v), c, i}, '\31') end
-- write stores a record under member with a new revision as the newest,
-- then evicts down to cap; returns the revision, the count evicted and
-- the partition's size.
local function write(member, u, e, t, r, x, h, o, w, p, pexpire, cap)
  local k = prefix .. member
  local v = redis.call('INCR', KEYS[3])
  redis.call('HSET', k, 'u', u, 'e', e, 't', t, 'r', r, 'x', x, 'h', h, 'o', o, 'w', w, 'p', p, 'v', v, 'c', '0', 'i', '',
    'd', packed(u, e, r, o, w, p, v, '0', ''))
  redis.call('PEXPIRE', k, pexpire)
  redis.call('ZADD', KEYS[1], v, member)
  redis.call('ZADD', KEYS[2], ms(e), member)
  local evicted, n = 0, redis.call('ZCARD', KEYS[1])
  while n > cap do
    drop(redis.call('ZRANGE', KEYS[1], 0, 0)[1])
    evicted, n = evicted + 1, n - 1
  end
  return v, evicted, n
end
`

// luaFilters: keyMatches and recMatches, the filters of scans.
const luaFilters = `
local function unescape(s)
  return (string.gsub(s, '%%(%x%x)', function(hex)
    if hex == '25' then return '%' end
    return ':'
  end))
end
-- parts splits a key's string form into its four unescaped components.
local function parts(member)
  local out, n = {'', '', '', ''}, 0
  for p in string.gmatch(member .. ':', '([^:]*):') do
    n = n + 1
    out[n] = unescape(p)
  end
  return out
end
-- keyMatches applies the key part of a filter f = {channel, bridge, room,
-- thread, scope, external, origin, writer, updatedBefore, invalidated};
-- recMatches the rest.
local function keyMatches(member, f)
  if f[1] == '' and f[2] == '' and f[3] == '' and f[4] == '' and f[5] == '' then return true end
  local k = parts(member)
  return (f[1] == '' or f[1] == k[1]) and (f[2] == '' or f[2] == k[2]) and (f[3] == '' or f[3] == k[3]) and
    (f[4] == '' or f[4] == k[4]) and (f[5] == '' or (f[5] == 'room') == (k[4] == ''))
end
local function recMatches(rec, f)
  return (f[6] == '' or f[6] == rec.x) and (f[7] == '' or f[7] == rec.o) and (f[8] == '' or f[8] == rec.w) and
    (f[9] == '' or older(rec.u, f[9])) and ((f[10] == '1') == (rec.i ~= ''))
end
`

// getScript: ARGV[2] member, ARGV[3] now. Returns {status, record…}.
var getScript = rueidis.NewLuaScript(luaBase + luaLoad + luaLook + `
local status, rec = look(ARGV[2], ARGV[3])
if status == 'fresh' then
  local out = flat(rec)
  table.insert(out, 1, status)
  return out
end
return {status}
`)

// setScript: ARGV[2] member, [3] updated, [4] expires, [5] ttl, [6] route
// JSON, [7] its ExternalRoomID, [8] its ThreadID, [9] writer, [10]
// priority, [11] Redis expiry in ms, [12] capacity, [13] IfRevision ("0"
// none), [14] IfAbsent ("1" or "0").
// Returns {'stored', revision, evicted, size} or {'conflict'|'superseded',
// current revision, current priority, size}.
var setScript = rueidis.NewLuaScript(luaBase + luaHead + luaWrite + `
local member, now = ARGV[2], ARGV[3]
local cur = head(member)
local fresh = cur ~= nil and older(now, cur.e)
local valid = fresh and cur.i == ''
local curRev, curPrio = 0, 0
if fresh then curRev, curPrio = tonumber(cur.v), tonumber(cur.p) end
local refusal = nil
if ARGV[13] ~= '0' and (not fresh or cur.v ~= ARGV[13]) then
  refusal = 'conflict'
elseif ARGV[14] == '1' and valid then
  refusal = 'conflict'
elseif valid and tonumber(cur.p) > tonumber(ARGV[10]) then
  refusal = 'superseded'
end
if refusal then return {refusal, curRev, curPrio, size()} end
local v, evicted, n = write(member, now, ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], 'set', ARGV[9], ARGV[10], ARGV[11], tonumber(ARGV[12]))
return {'stored', v, evicted, n}
`)

// resolveScript: ARGV[2] member, [3] room member ("" without a thread),
// [4] now, [5] expires for a stored route, [6] its TTL, [7] Redis expiry in
// ms, [8] capacity, [9] the number of fallbacks n, then n triples of
// ExternalRoomID, ThreadID and route JSON.
// Returns {source, record…, exactExpired, roomExpired, invalidated,
// evicted, size}.
var resolveScript = rueidis.NewLuaScript(luaBase + luaLoad + luaLook + luaWrite + `
local member, room, now = ARGV[2], ARGV[3], ARGV[4]
local status, rec = look(member, now)
if status == 'fresh' and rec.i == '' then
  local out = flat(rec)
  table.insert(out, 1, 'state_hit')
  for _, n in ipairs({0, 0, 0, 0, size()}) do table.insert(out, n) end
  return out
end
local exactExpired, roomExpired, invalidated = 0, 0, 0
local bans = {}
if status == 'expired' then exactExpired = 1 end
if status == 'fresh' then -- a tombstone
  invalidated = 1
  bans[#bans + 1] = {rec.x, rec.h}
end
local function banned(x, h)
  for _, b in ipairs(bans) do
    if b[1] == x and b[2] == h then return true end
  end
  return false
end
local source, r, x, h = '', '', '', ''
if room ~= '' then
  local rs, rr = look(room, now)
  if rs == 'expired' then
    roomExpired = 1
  elseif rs == 'fresh' and rr.i ~= '' then
    invalidated = 1
    bans[#bans + 1] = {rr.x, rr.h}
  elseif rs == 'fresh' and not banned(rr.x, rr.h) then
    source, r, x, h = 'partition_fallback', rr.r, rr.x, rr.h
  end
end
if source == '' then
  for i = 0, tonumber(ARGV[9]) - 1 do
    local fx, fh, fr = ARGV[10 + 3 * i], ARGV[11 + 3 * i], ARGV[12 + 3 * i]
    if not banned(fx, fh) then
      source, r, x, h = 'provided_fallback', fr, fx, fh
      break
    end
  end
end
if source == '' then
  return {'', '', '', '', '', '', '', '', '', '', exactExpired, roomExpired, invalidated, 0, size()}
end
local v, evicted, n = write(member, now, ARGV[5], ARGV[6], r, x, h, source, '', '0', ARGV[7], tonumber(ARGV[8]))
return {source, now, ARGV[5], r, source, '', '0', tostring(v), '0', '', exactExpired, roomExpired, invalidated, evicted, n}
`)

// lookScript: ARGV[2] member, [3] room member ("" for none), [4] now.
// Changes nothing. Returns {exact state, record…, room state, record…,
// size}; states are 'fresh', 'expired' or 'absent'.
var lookScript = rueidis.NewLuaScript(luaBase + luaLoad + `
local out = {}
local function peek(member)
  if member == '' then
    table.insert(out, 'absent')
    for _, v in ipairs(none) do table.insert(out, v) end
    return
  end
  local rec, gone = load(member)
  local state = 'absent'
  if rec then
    state = 'expired'
    if older(ARGV[4], rec.e) then state = 'fresh' end
  elseif gone then
    state = 'expired' -- Redis already removed its fields
  end
  table.insert(out, state)
  for _, v in ipairs(rec and flat(rec) or none) do table.insert(out, v) end
end
peek(ARGV[2])
peek(ARGV[3])
table.insert(out, size())
return out
`)

// feedbackScript (Confirm and Invalidate): ARGV[2] member, [3] now, [4]
// the delivery target's ExternalRoomID, [5] its ThreadID, [6] 'confirm' or
// 'invalidate', [7] Confirm: the TTL of routes stored by Resolve;
// Invalidate: the reason, [8] the expiry grace in ms.
// Returns {outcome, record…, size}; outcome is 'applied', 'not_found',
// 'conflict' or 'unchanged'.
var feedbackScript = rueidis.NewLuaScript(luaBase + luaAdd + luaLoad + luaWrite + `
local member, now, confirm = ARGV[2], ARGV[3], ARGV[6] == 'confirm'
local rec = load(member)
local function answer(outcome, r)
  local out = flat(r or {u = '', e = '', r = '', o = '', w = '', p = '', v = '', c = '', i = ''})
  table.insert(out, 1, outcome)
  table.insert(out, size())
  return out
end
if not rec or not older(now, rec.e) or (confirm and rec.i ~= '') then return answer('not_found') end
if rec.x ~= ARGV[4] or rec.h ~= ARGV[5] then return answer('conflict', rec) end
if not confirm and rec.i ~= '' then return answer('unchanged', rec) end
local k = prefix .. member
local v = redis.call('INCR', KEYS[3])
rec.v = v
if confirm then
  local ttl = rec.t
  if rec.o ~= 'set' or not ttl then ttl = ARGV[7] end
  rec.u, rec.e, rec.c = now, add(now, ttl), '1'
  redis.call('HSET', k, 'u', rec.u, 'e', rec.e, 'c', '1', 'v', v, 'd', packed(rec.u, rec.e, rec.r, rec.o, rec.w, rec.p, v, '1', rec.i))
  redis.call('PEXPIRE', k, px(ttl, ARGV[8]))
  redis.call('ZADD', KEYS[1], v, member)
  redis.call('ZADD', KEYS[2], ms(rec.e), member)
else
  rec.u, rec.c, rec.i = now, '0', ARGV[7]
  redis.call('HSET', k, 'u', now, 'c', '0', 'i', ARGV[7], 'v', v, 'd', packed(now, rec.e, rec.r, rec.o, rec.w, rec.p, v, '0', ARGV[7]))
end
return answer('applied', rec)
`)

// deleteScript: ARGV[2] member. Returns {deleted (0 or 1), size}.
var deleteScript = rueidis.NewLuaScript(luaBase + `
local existed = 0
if redis.call('ZSCORE', KEYS[1], ARGV[2]) or redis.call('EXISTS', prefix .. ARGV[2]) == 1 then
  drop(ARGV[2])
  existed = 1
end
return {existed, size()}
`)

// pruneScript: ARGV[2] now, ARGV[3] now in ms. Deletes every record
// expired at now. Returns {pruned, size}.
var pruneScript = rueidis.NewLuaScript(luaBase + `
local now = ARGV[2]
local pruned = 0
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[3])) do
  local e = redis.call('HGET', prefix .. member, 'e')
  if not e or not older(now, e) then
    drop(member)
    pruned = pruned + 1
  end
end
return {pruned, size()}
`)

// scanScript: ARGV[2] now, [3] the write-order score to continue after,
// [4] the most entries to return, [5] the most records to look at, [6] 'scan' or
// 'delete' or 'count', [7..16] the filter (channel, bridge, room, thread,
// scope, external, origin, writer, updated before as a 20-digit stamp or
// "", invalidated "1"/"0"). Walks the partition in write order; expired
// records are skipped (and left to pruning). 'delete' deletes the matches.
// Returns {next score, done (0/1), size, n, then n × (member, record…)}.
var scanScript = rueidis.NewLuaScript(luaBase + luaLoad + luaFilters + `
local now, after, limit, batch, mode = ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
local f = {ARGV[7], ARGV[8], ARGV[9], ARGV[10], ARGV[11], ARGV[12], ARGV[13], ARGV[14], ARGV[15], ARGV[16]}
local page = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. after, '+inf', 'WITHSCORES', 'LIMIT', 0, batch)
local found, next, n = {}, after, 0
local done = 1
if #page / 2 >= batch then done = 0 end
for i = 1, #page, 2 do
  local member, score = page[i], page[i + 1]
  local rec = keyMatches(member, f) and load(member)
  if rec and older(now, rec.e) and recMatches(rec, f) then
    if mode == 'scan' and n >= limit then done = 0; break end
    n = n + 1
    table.insert(found, member)
    if mode == 'scan' then
      for _, v in ipairs(flat(rec)) do table.insert(found, v) end
    elseif mode == 'delete' then
      drop(member)
    end
  end
  next = score
end
local out = {next, done, size(), n}
for _, v in ipairs(found) do table.insert(out, v) end
return out
`)

// initScript: KEYS[1] the prefix's meta key; ARGV[1] partition count,
// ARGV[2] capacity. Records them when the key is new. Returns {partition
// count, capacity} as recorded.
var initScript = rueidis.NewLuaScript(`
local v = redis.call('HMGET', KEYS[1], 'partitions', 'capacity')
if not v[1] then
  redis.call('HSET', KEYS[1], 'partitions', ARGV[1], 'capacity', ARGV[2])
  return {ARGV[1], ARGV[2]}
end
return {v[1], v[2]}
`)
