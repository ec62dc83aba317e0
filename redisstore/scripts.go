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
//     a string at ARGV[1]..member: u (updated) and e (expires), unix
//     nanoseconds as 20-character decimal strings (pad20), then the fields
//     v (revision), c (confirmed, "1" or "0"), p (priority), o (origin), w
//     (writer), i (the invalidation reason, "" for a valid record), x and h
//     (the route's ExternalRoomID and ThreadID: its delivery target), t
//     (the TTL it was written with, nanoseconds as 20 digits; "" when
//     unknown) and r (the route as JSON), joined by the byte 31, which no
//     valid field holds (JSON escapes it). The record key has a Redis
//     expiry of its remaining TTL plus a grace, so Redis removes what
//     pruning misses. One string is what a read hit fetches with a plain
//     GET, and what a write stores with one SET … PX: on Redis 7.0 a hash
//     of these fields cost a Set script ~3 µs more (HSET of 13 fields and
//     PEXPIRE instead of SET, and a hash that outgrows the listpack
//     encoding once a value passes 64 bytes), and Redis memory: MEMORY
//     USAGE of a record key 1,062 bytes against 280 (100,000 records).
//
//     Earlier releases stored a record as a hash with these fields (and d,
//     a packed copy for reads), and some older records lack x, h, o, w, p,
//     v, c or i (they read as origin set, revision = their write-order
//     score). Every script still reads that form (load: GET answers
//     WRONGTYPE, then HMGET), and a write replaces it with the string; a
//     read hit that meets it leaves it to the script. A client of such a
//     release cannot read the string form (its scripts fail with
//     WRONGTYPE): upgrade every client of a key prefix together.
//
// A record travels back to Go as the nine values u, e, r, o, w, p, v, c, i.
//
// The scripts are built from the pieces below, each taking only the
// functions it calls: Redis runs a script's whole chunk on every call, so
// each function defined costs every call a closure (the one prelude all
// scripts shared cost a Set about 1.5 µs of Redis time).

// luaBase: prefix, older and drop, for every script.
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

// luaLoad: loadHash and load, to read whole records.
const luaLoad = `
-- load returns the record of member as a table, or nil and whether a
-- record was there that Redis itself expired (its index entries remain).
-- loadHash is load for a record at k in the hash form of earlier releases.
local function loadHash(k, member)
  local v = redis.call('HMGET', k, 'u', 'e', 't', 'r', 'x', 'h', 'o', 'w', 'p', 'v', 'c', 'i')
  if not v[2] then return nil, redis.call('ZSCORE', KEYS[1], member) ~= false end
  return {u = v[1], e = v[2], t = v[3] or '', r = v[4], x = v[5] or '', h = v[6] or '', o = v[7] or 'set', w = v[8] or '',
    p = v[9] or '0', v = v[10] or redis.call('ZSCORE', KEYS[1], member) or '0', c = v[11] or '0', i = v[12] or ''}
end
local function load(member)
  local k = prefix .. member
  local s = redis.pcall('GET', k)
  if type(s) == 'table' then return loadHash(k, member) end -- WRONGTYPE: a hash
  if not s then return nil, redis.call('ZSCORE', KEYS[1], member) ~= false end
  local v, c, p, o, w, i, x, h, t, r = string.match(s,
    '^([^\31]*)\31([^\31]*)\31([^\31]*)\31([^\31]*)\31([^\31]*)\31([^\31]*)\31([^\31]*)\31([^\31]*)\31([^\31]*)\31(.*)$', 41)
  if not v then return nil, true end -- not a record: dropped like an expired one
  return {u = string.sub(s, 1, 20), e = string.sub(s, 21, 40), t = t, r = r, x = x, h = h, o = o, w = w, p = p, v = v, c = c, i = i}
end
`

// luaHead (after luaLoad): head.
const luaHead = `
-- head returns what Set's checks read of member's record — e, v, p and
-- i, as values rather than a table (a table costs the call ~0.4 µs) — or
-- nil: of the string, only the fields they need.
local function head(member)
  local k = prefix .. member
  local s = redis.pcall('GET', k)
  if type(s) == 'table' then -- a hash, the form of earlier releases
    local rec = loadHash(k, member)
    if not rec then return nil end
    return rec.e, rec.v, rec.p, rec.i
  end
  if not s then return nil end
  local v, p, i = string.match(s, '^([^\31]*)\31[^\31]*\31([^\31]*)\31[^\31]*\31[^\31]*\31([^\31]*)\31', 41)
  if not v then return nil end
  return string.sub(s, 21, 40), v, p, i
end
`

// luaFlat (after luaLoad): flat and none, a record as the nine values.
const luaFlat = `
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

// luaWrite: encode and write.
const luaWrite = `
-- encode is a record's string (see the layout above); v may be a number.
local function encode(u, e, v, c, p, o, w, i, x, h, t, r)
  return u .. e .. v .. '\31' .. c .. '\31' .. p .. '\31' .. o .. '\31' .. w .. '\31' .. i .. '\31' .. x .. '\31' .. h .. '\31' .. t .. '\31' .. r
end
-- write stores a record under member with a new revision as the newest,
-- then evicts down to cap; returns the revision, the count evicted and
-- the partition's size.
local function write(member, u, e, t, r, x, h, o, w, p, pexpire, cap)
  local v = redis.call('INCR', KEYS[3])
  redis.call('SET', prefix .. member, encode(u, e, v, '0', p, o, w, '', x, h, t, r), 'PX', pexpire)
  redis.call('ZADD', KEYS[1], v, member)
  redis.call('ZADD', KEYS[2], string.sub(e, 1, 14), member)
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
var getScript = rueidis.NewLuaScript(luaBase + luaLoad + luaFlat + luaLook + `
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
var setScript = rueidis.NewLuaScript(luaBase + luaLoad + luaHead + luaWrite + `
local member, now = ARGV[2], ARGV[3]
local ce, cv, cp, ci = head(member)
local fresh = ce ~= nil and older(now, ce)
local valid = fresh and ci == ''
local refusal = nil
if ARGV[13] ~= '0' and (not fresh or cv ~= ARGV[13]) then
  refusal = 'conflict'
elseif ARGV[14] == '1' and valid then
  refusal = 'conflict'
elseif valid and tonumber(cp) > tonumber(ARGV[10]) then
  refusal = 'superseded'
end
if refusal then
  local curRev, curPrio = 0, 0
  if fresh then curRev, curPrio = tonumber(cv), tonumber(cp) end
  return {refusal, curRev, curPrio, redis.call('ZCARD', KEYS[1])}
end
local v, evicted, n = write(member, now, ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], 'set', ARGV[9], ARGV[10], ARGV[11], tonumber(ARGV[12]))
return {'stored', v, evicted, n}
`)

// resolveScript: ARGV[2] member, [3] room member ("" without a thread),
// [4] now, [5] expires for a stored route, [6] its TTL, [7] Redis expiry in
// ms, [8] capacity, [9] the number of fallbacks n, then n triples of
// ExternalRoomID, ThreadID and route JSON.
// Returns {source, record…, exactExpired, roomExpired, invalidated,
// evicted, size}.
var resolveScript = rueidis.NewLuaScript(luaBase + luaLoad + luaFlat + luaLook + luaWrite + `
local member, room, now = ARGV[2], ARGV[3], ARGV[4]
local status, rec = look(member, now)
if status == 'fresh' and rec.i == '' then
  local out = flat(rec)
  table.insert(out, 1, 'state_hit')
  for _, n in ipairs({0, 0, 0, 0, redis.call('ZCARD', KEYS[1])}) do table.insert(out, n) end
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
  return {'', '', '', '', '', '', '', '', '', '', exactExpired, roomExpired, invalidated, 0, redis.call('ZCARD', KEYS[1])}
end
local v, evicted, n = write(member, now, ARGV[5], ARGV[6], r, x, h, source, '', '0', ARGV[7], tonumber(ARGV[8]))
return {source, now, ARGV[5], r, source, '', '0', tostring(v), '0', '', exactExpired, roomExpired, invalidated, evicted, n}
`)

// lookScript: ARGV[2] member, [3] room member ("" for none), [4] now.
// Changes nothing. Returns {exact state, record…, room state, record…,
// size}; states are 'fresh', 'expired' or 'absent'.
var lookScript = rueidis.NewLuaScript(luaBase + luaLoad + luaFlat + `
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
table.insert(out, redis.call('ZCARD', KEYS[1]))
return out
`)

// feedbackScript (Confirm and Invalidate): ARGV[2] member, [3] now, [4]
// the delivery target's ExternalRoomID, [5] its ThreadID, [6] 'confirm' or
// 'invalidate', [7] Confirm: the TTL of routes stored by Resolve;
// Invalidate: the reason, [8] the expiry grace in ms.
// Returns {outcome, record…, size}; outcome is 'applied', 'not_found',
// 'conflict' or 'unchanged'.
var feedbackScript = rueidis.NewLuaScript(luaBase + luaAdd + luaLoad + luaFlat + luaWrite + `
local member, now, confirm = ARGV[2], ARGV[3], ARGV[6] == 'confirm'
local rec = load(member)
local function answer(outcome, r)
  local out = flat(r or {u = '', e = '', r = '', o = '', w = '', p = '', v = '', c = '', i = ''})
  table.insert(out, 1, outcome)
  table.insert(out, redis.call('ZCARD', KEYS[1]))
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
  if rec.o ~= 'set' or ttl == '' then ttl = ARGV[7] end
  rec.u, rec.e, rec.c = now, add(now, ttl), '1'
  redis.call('SET', k, encode(rec.u, rec.e, v, '1', rec.p, rec.o, rec.w, rec.i, rec.x, rec.h, rec.t, rec.r), 'PX', px(ttl, ARGV[8]))
  redis.call('ZADD', KEYS[1], v, member)
  redis.call('ZADD', KEYS[2], string.sub(rec.e, 1, 14), member)
else
  rec.u, rec.c, rec.i = now, '0', ARGV[7]
  redis.call('SET', k, encode(now, rec.e, v, '0', rec.p, rec.o, rec.w, ARGV[7], rec.x, rec.h, rec.t, rec.r), 'KEEPTTL')
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
return {existed, redis.call('ZCARD', KEYS[1])}
`)

// pruneScript: ARGV[2] now, ARGV[3] now in ms. Deletes every record
// expired at now. Returns {pruned, size}.
var pruneScript = rueidis.NewLuaScript(luaBase + `
local now = ARGV[2]
local pruned = 0
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[3])) do
  local k = prefix .. member
  local e = redis.pcall('GETRANGE', k, 20, 39) -- '' when absent
  if type(e) == 'table' then e = redis.call('HGET', k, 'e') or '' end -- a hash, the form of earlier releases
  if e == '' or not older(now, e) then
    drop(member)
    pruned = pruned + 1
  end
end
return {pruned, redis.call('ZCARD', KEYS[1])}
`)

// scanScript: ARGV[2] now, [3] the write-order score to continue after,
// [4] the most entries to return, [5] the most records to look at, [6] 'scan' or
// 'delete' or 'count', [7..16] the filter (channel, bridge, room, thread,
// scope, external, origin, writer, updated before as a 20-digit stamp or
// "", invalidated "1"/"0"). Walks the partition in write order; expired
// records are skipped (and left to pruning). 'delete' deletes the matches.
// Returns {next score, done (0/1), size, n, then n × (member, record…)}.
var scanScript = rueidis.NewLuaScript(luaBase + luaLoad + luaFlat + luaFilters + `
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
local out = {next, done, redis.call('ZCARD', KEYS[1]), n}
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
