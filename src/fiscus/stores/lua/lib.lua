-- Shared by every fiscus budget script (prepended to each when loaded).
-- Counters are hashes {sn, st, sr, rn, rt, rr}: spent and reserved nano-dollars, tokens, requests.
-- Lua numbers are doubles: integers are exact below 2^53, which the client enforces for amounts. Numbers going
-- back to Redis are formatted with %d (tostring would round them to 14 digits).

local MAX_EXACT = 9007199254740991
local FIELDS = {'sn', 'st', 'sr', 'rn', 'rt', 'rr'}
local TTL_SLACK = 60 -- a counter's TTL is pushed out only when that gains more than this (s)

local function int(x)
  return string.format('%d', x)
end

-- A counter read once per script: {sn, st, sr, rn, rt, rr, fresh = no hash yet, x = deadline its TTL was last
-- set to (caller's clock; field 'x'), ops = changes to write}.
local function load(seen, key)
  local s = seen[key]
  if s then return s end
  local c = redis.call('HMGET', key, 'sn', 'st', 'sr', 'rn', 'rt', 'rr', 'x')
  s = {0, 0, 0, 0, 0, 0, fresh = true, x = tonumber(c[7]), ops = {}}
  for i = 1, 6 do
    if c[i] then s[i] = tonumber(c[i]); s.fresh = false end
  end
  seen[key] = s
  return s
end

local function add(s, i, delta)
  if delta ~= 0 then
    s[i] = s[i] + delta
    s.ops[#s.ops + 1] = {i, delta}
  end
end

-- Decide a counter's TTL before `save`: a new counter gets `ttl` s; an existing one only when that moves its
-- deadline out by more than the slack (sliding session windows), so most calls send no EXPIRE at all.
-- `ttl` '' = never expires.
local function plan_ttl(s, ttl, now)
  if ttl == '' then return end
  local deadline = tonumber(now) + tonumber(ttl)
  if s.fresh or s.x == nil or deadline > s.x + TTL_SLACK then
    s.x, s.ttl = deadline, ttl
  end
end

-- Write a counter's changed fields (and its TTL deadline) in one HSET; past 2^53 a double would round, so
-- then HINCRBY each change instead.
local function save(key, s)
  local n = #s.ops
  local args, exact = {}, true
  if n > 0 then
    local changed = {}
    for j = 1, n do changed[s.ops[j][1]] = true end
    for i = 1, 6 do
      if changed[i] then
        if s[i] > MAX_EXACT or s[i] < -MAX_EXACT then exact = false end
        args[#args + 1] = FIELDS[i]
        args[#args + 1] = int(s[i])
      end
    end
  end
  if s.ttl then
    args[#args + 1] = 'x'
    args[#args + 1] = tostring(s.x)
  end
  if #args == 0 then
    if s.fresh then redis.call('HSET', key, 'rn', '0') end -- a new counter exists even when nothing moved
    return
  end
  if exact then
    redis.call('HSET', key, unpack(args))
  else
    for j = 1, n do redis.call('HINCRBY', key, FIELDS[s.ops[j][1]], int(s.ops[j][2])) end
    if s.ttl then redis.call('HSET', key, 'x', tostring(s.x)) end
  end
  s.ops = {}
end

-- Counter index, so keys can be listed by prefix without SCAN: `index` (zset, every score 0, so ZRANGEBYLEX
-- ranges work) holds every counter key; `expiry` (zset, caller-clock time after which the counter's TTL may
-- have run out) lets a few stale entries be pruned whenever a counter is created.
local function prune_index(index, expiry, now, limit)
  local due = redis.call('ZRANGEBYSCORE', expiry, '-inf', now, 'LIMIT', 0, limit)
  for _, key in ipairs(due) do
    local pttl = redis.call('PTTL', key)
    if pttl == -2 then
      redis.call('ZREM', index, key)
      redis.call('ZREM', expiry, key)
    elseif pttl == -1 then
      redis.call('ZREM', expiry, key)
    else
      redis.call('ZADD', expiry, tonumber(now) + pttl / 1000, key)
    end
  end
end

-- After `save`: index a new counter and give it its TTL; extend an existing one's as `plan_ttl` decided
-- (NX for a counter that had none, else GT: a TTL is never shortened).
local function apply_ttl(key, s, index, expiry, now)
  if s.fresh then
    s.fresh = false
    redis.call('ZADD', index, 0, key)
    if s.ttl then
      redis.call('EXPIRE', key, s.ttl)
      redis.call('ZADD', expiry, s.x, key)
    end
    prune_index(index, expiry, now, 10)
  elseif s.ttl then
    if redis.call('EXPIRE', key, s.ttl, 'NX') == 0 then redis.call('EXPIRE', key, s.ttl, 'GT') end
  end
  s.ttl = nil
end

-- Return a reservation record's amounts to the pool. A record is cmsgpack {key, n, t, r, key, n, t, r, ...}
-- holding each line's full counter key (they share the caller's hash tag, so they live in this slot).
local function release(packed)
  local rec = cmsgpack.unpack(packed)
  for i = 1, #rec, 4 do
    local key = rec[i]
    if redis.call('EXISTS', key) == 1 then -- else its TTL ran out: nothing is left to return the amounts to
      if rec[i + 1] ~= 0 then redis.call('HINCRBY', key, 'rn', int(-rec[i + 1])) end
      if rec[i + 2] ~= 0 then redis.call('HINCRBY', key, 'rt', int(-rec[i + 2])) end
      if rec[i + 3] ~= 0 then redis.call('HINCRBY', key, 'rr', int(-rec[i + 3])) end
    end
  end
end

-- Release up to `limit` reservations whose lease expired at or before `now`; the count released.
local function reap(leases, records, now, limit)
  local ids = redis.call('ZRANGEBYSCORE', leases, '-inf', now, 'LIMIT', 0, limit)
  for _, id in ipairs(ids) do
    local packed = redis.call('HGET', records, id)
    if packed then
      release(packed)
      redis.call('HDEL', records, id)
    end
    redis.call('ZREM', leases, id)
  end
  return #ids
end
