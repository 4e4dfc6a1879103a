-- Shared by every fiscus budget script (prepended to each when loaded).
--
-- A counter is ONE string of seven little-endian doubles {sn, st, sr, rn, rt, rr, x}: spent and reserved
-- nano-dollars, tokens and requests, and x = the caller-clock time after which the counter may be dropped (its
-- latest line's expires_at plus the store's margin; 0 = never). So one MGET reads every counter of a request and
-- one MSET writes them. Doubles hold integers exactly below 2^53; a write that would pass that is refused with an
-- error before anything is written. A counter past x that holds no reservation is as good as dropped: it reads as
-- zero, and `prune` deletes it when it meets it in the expiry index (counters carry no Redis TTL: MSET would
-- clear it on every write anyway).
--
-- A reservation has one key, `<p>r:<id>` beside `<p>leases`: while held, its record; once settled, the marker
-- SETTLED with a TTL, so a retried settle is a duplicate. A record is the request as the client packed it: the
-- lease expiry (a double), then per line the doubles {key count, limit n, t, r (-1 = none), amount n, t, r, drop
-- time (0 = none)}, and the line's first counter key (its length as a 4-byte integer, then its bytes). Reserve
-- stores it as it came, so the script packs nothing.

local MAX_EXACT = 9007199254740991
local FORMAT = '<ddddddd'
local SETTLED = 's' -- a record is at least 8 bytes, never this string
local LINE = '<ddddddddi4c0'
local REAP_BATCH = 100 -- expired leases reaped when a reserve does not fit
local PRUNE_BATCH = 10 -- due counters looked at whenever a counter is created
local HELD_RECHECK = 3600 -- a due counter still holding a reservation is looked at again this much later (s)

-- A number as Redis should read it back: every digit of the double (redis.call would round to 14).
local function num(x)
  return string.format('%.17g', x)
end

-- Every field a counter table will get is in its constructor, so Lua sizes it once (no rehash on first set).
local function blank()
  return {0, 0, 0, 0, 0, 0, 0, fresh = true, x0 = 0, dirty = false}
end

local function stale(c, now)
  return c[7] > 0 and c[7] < now and c[4] == 0 and c[5] == 0 and c[6] == 0
end

-- A counter as read: {sn, st, sr, rn, rt, rr, x, fresh = nothing stored (or only a stale counter), x0 = x as
-- read, dirty = to be written}.
local function decode(value, now)
  if not value then return blank() end
  local sn, st, sr, rn, rt, rr, x = struct.unpack(FORMAT, value)
  local c = {sn, st, sr, rn, rt, rr, x, fresh = false, x0 = x, dirty = false}
  if stale(c, now) then return blank() end
  return c
end

-- Read the counters of `keys` not yet in `seen` with one MGET.
local function load(seen, keys, now)
  local missing = {}
  for _, key in ipairs(keys) do
    if not seen[key] then missing[#missing + 1] = key end
  end
  if #missing == 0 then return end
  local values = redis.call('MGET', unpack(missing))
  for i, key in ipairs(missing) do
    if not seen[key] then seen[key] = decode(values[i], now) end
  end
end

local function add(c, i, delta)
  if delta ~= 0 then
    c[i] = c[i] + delta
    c.dirty = true
  end
end

-- A line's deadline only ever moves a counter's drop time out.
local function extend(c, deadline)
  if deadline and deadline > c[7] then
    c[7] = deadline
    c.dirty = true
  end
end

-- The first counter that a write would take past the exact range, or nil.
local function inexact(seen)
  for key, c in pairs(seen) do
    if c.dirty then
      for i = 1, 6 do
        if c[i] > MAX_EXACT or c[i] < -MAX_EXACT then return key end
      end
    end
  end
  return nil
end

local function overflow(key)
  return redis.error_reply('counter ' .. key .. ' would pass 2**53-1, the exact integer range of Redis Lua scripts')
end

-- Write every dirty counter, and the key/value pairs in `extra`, with one MSET; a counter left stale by this
-- write (nothing reserved, past its time) is deleted instead. New counters go into the index (and, with a drop
-- time, the expiry index). Returns whether a counter was created.
local function save(seen, now, index, expiry, extra)
  local args, drop, created = extra or {}, {}, false
  for key, c in pairs(seen) do
    if c.dirty then
      c.dirty = false
      if stale(c, now) then
        if not c.fresh then drop[#drop + 1] = key end
        seen[key] = blank()
      else
        args[#args + 1] = key
        args[#args + 1] = struct.pack(FORMAT, c[1], c[2], c[3], c[4], c[5], c[6], c[7])
        if c.fresh then
          redis.call('ZADD', index, 0, key)
          created = true
        end
        if c[7] > 0 and (c.fresh or c.x0 == 0) then redis.call('ZADD', expiry, num(c[7]), key) end
        c.fresh, c.x0 = false, c[7]
      end
    end
  end
  if #args > 0 then redis.call('MSET', unpack(args)) end
  if #drop > 0 then redis.call('DEL', unpack(drop)) end
  return created
end

-- Look at up to `limit` counters whose drop time has passed by the expiry index (scores may be out of date:
-- a drop time only moves out, and the counter's own x is the truth). Drops the stale ones.
local function prune(index, expiry, now, limit)
  local due = redis.call('ZRANGEBYSCORE', expiry, '-inf', '(' .. num(now), 'LIMIT', 0, limit)
  if #due == 0 then return end
  local values = redis.call('MGET', unpack(due))
  local gone, dead = {}, {}
  for i, key in ipairs(due) do
    if not values[i] then
      gone[#gone + 1] = key
    else
      local sn, st, sr, rn, rt, rr, x = struct.unpack(FORMAT, values[i])
      if x == 0 then
        redis.call('ZREM', expiry, key)
      elseif x >= now then
        redis.call('ZADD', expiry, num(x), key)
      elseif rn ~= 0 or rt ~= 0 or rr ~= 0 then
        redis.call('ZADD', expiry, num(now + HELD_RECHECK), key)
      else
        gone[#gone + 1] = key
        dead[#dead + 1] = key
      end
    end
  end
  if #dead > 0 then redis.call('DEL', unpack(dead)) end
  if #gone > 0 then
    redis.call('ZREM', index, unpack(gone))
    redis.call('ZREM', expiry, unpack(gone))
  end
end

local function record_key(leases, id)
  return string.sub(leases, 1, -7) .. 'r:' .. id -- '<p>leases' → '<p>r:<id>'
end

local function lease_of(rec)
  return (struct.unpack('<d', rec))
end

-- Take a reservation record's amounts off the counters it holds (read into `seen`). A counter that is gone
-- has nothing to return the amounts to.
local function release(seen, rec, now)
  local held, keys, pos = {}, {}, 9
  while pos <= #rec do
    local _, _, _, _, an, at, ar, _, key, nxt = struct.unpack(LINE, rec, pos)
    held[#held + 1] = {key, an, at, ar}
    keys[#keys + 1] = key
    pos = nxt
  end
  load(seen, keys, now)
  for _, h in ipairs(held) do
    local c = seen[h[1]]
    if not c.fresh then
      add(c, 4, -h[2])
      add(c, 5, -h[3])
      add(c, 6, -h[4])
    end
  end
end

-- Release the reservations `ids` (their leases have run out) and write the counters they held.
local function reap_ids(seen, leases, index, expiry, ids, now)
  local rkeys = {}
  for i, id in ipairs(ids) do rkeys[i] = record_key(leases, id) end
  local records = redis.call('MGET', unpack(rkeys))
  local held = {}
  for i = 1, #ids do
    local packed = records[i]
    if packed and packed ~= SETTLED then
      release(seen, packed, now)
      held[#held + 1] = rkeys[i]
    end
  end
  save(seen, now, index, expiry)
  if #held > 0 then redis.call('DEL', unpack(held)) end
  redis.call('ZREM', leases, unpack(ids))
end

-- Release up to `limit` reservations whose lease expired at or before `now`; the count released.
local function reap(seen, leases, index, expiry, now, limit)
  local ids = redis.call('ZRANGEBYSCORE', leases, '-inf', num(now), 'LIMIT', 0, limit)
  if #ids > 0 then reap_ids(seen, leases, index, expiry, ids, now) end
  return #ids
end
