-- Shared by every fiscus budget script (prepended to each when loaded).
-- Counters are hashes {sn, st, sr, rn, rt, rr}: spent and reserved nano-dollars, tokens, requests.
-- Lua numbers are doubles: integers are exact below 2^53, which the client enforces. Numbers going back
-- to Redis are formatted with %d (tostring would round them to 14 digits).

local function int(x)
  return string.format('%d', x)
end

-- Give a counter a TTL, only ever lengthening it (NX sets a first one, GT extends an existing one).
local function touch_ttl(key, ttl)
  if ttl ~= '' then
    redis.call('EXPIRE', key, ttl, 'NX')
    redis.call('EXPIRE', key, ttl, 'GT')
  end
end

-- Return a reservation record's amounts to the pool. A record is cmsgpack {key, n, t, r, key, n, t, r, ...}
-- holding each line's full counter key (they share the caller's hash tag, so they live in this slot).
local function release(packed)
  local rec = cmsgpack.unpack(packed)
  for i = 1, #rec, 4 do
    local key = rec[i]
    if rec[i + 1] ~= 0 then redis.call('HINCRBY', key, 'rn', int(-rec[i + 1])) end
    if rec[i + 2] ~= 0 then redis.call('HINCRBY', key, 'rt', int(-rec[i + 2])) end
    if rec[i + 3] ~= 0 then redis.call('HINCRBY', key, 'rr', int(-rec[i + 3])) end
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
