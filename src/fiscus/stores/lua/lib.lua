-- Shared by every fiscus budget script (prepended to each when loaded).
--
-- A counter is ONE string of seven little-endian doubles {sn, st, sr, rn, rt, rr, x}: spent and reserved
-- nano-dollars, tokens and requests, and x = the caller-clock time after which the counter may be dropped (its
-- latest line's expires_at plus the store's margin; 0 = never). So one MGET reads every counter of a call and
-- one MSET writes them. Doubles hold integers exactly below 2^53; an operation whose write would pass that is
-- refused with an error and changes nothing. A counter past x that holds no reservation is as good as dropped:
-- it reads as zero, and `prune` deletes it when it meets it in the expiry index (counters carry no Redis TTL:
-- MSET would clear it on every write anyway).
--
-- A reservation has one key, `<p>r:<id>` beside `<p>leases`: while held, its record; once settled, the marker
-- SETTLED with a TTL, so a retried settle is a duplicate. A record is the request as the client packed it: the
-- lease expiry (a double), then per line the doubles {key count, limit n, t, r (-1 = none), amount n, t, r, drop
-- time (0 = none)}, and the line's first counter key (its length as a 4-byte integer, then its bytes). Reserve
-- stores it as it came, so the script packs nothing.
--
-- One script call runs one operation (reserve, settle) or a batch of them (batch.lua), one after the other, each
-- as if alone. They share the call's state `S`: every key named in KEYS is read up front with one MGET, counters
-- and records are changed in memory, and `commit` writes what changed at the end (one MSET, one ZADD, one ZREM,
-- a SET per settled marker). So a batch costs about as many redis.calls as one operation.

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

-- A counter as read is one array: {sn, st, sr, rn, rt, rr, x, fresh, x0, dirty, key}: fresh = nothing stored
-- (or only a stale counter), x0 = x as read, dirty = to be written. Array slots, not named fields: a table with
-- only an array part is one allocation, and slots are read by constant index.
local function blank(key)
  return {0, 0, 0, 0, 0, 0, 0, true, 0, false, key}
end

local function stale(c, now)
  return c[7] > 0 and c[7] < now and c[4] == 0 and c[5] == 0 and c[6] == 0
end

-- A counter from its stored value (false/nil: none stored); a stale one reads as blank.
local function decode(value, now, key)
  if not value then return blank(key) end
  local sn, st, sr, rn, rt, rr, x = struct.unpack(FORMAT, value)
  if x > 0 and x < now and rn == 0 and rt == 0 and rr == 0 then return blank(key) end
  return {sn, st, sr, rn, rt, rr, x, false, x, false, key}
end

-- The state of one script call (see the top): `begin` sets it up.
--   raw: value of every key read up front (false: none); seen: counters by key; rec: records by key as they
--   stand now (false: none); recw: records to write (0: plain, else the settled marker's TTL); lease: id →
--   lease expiry to ZADD, or false to ZREM; undo: counters the current operation changed → their slots before.
local S = {}

local function begin(leases, index, expiry)
  S = {leases = leases, index = index, expiry = expiry, now = 0, raw = {}, seen = {}, rec = {}, recw = {},
       lease = {}, undo = {}, intact = nil}
end

-- The store's marker `<p>epoch` (beside `<p>leases`, same slot) holds the epoch of the counters: written by
-- restore.lua once they are whole, 'L:<time>' once a loss was noticed, gone with the data when the data is gone.
-- Read once per script call. A reserve on a store without a whole marker changes nothing and answers {-2}; a
-- settle still lands (money spent is never dropped) and its id goes into `<p>lost`, so a rebuild from the ledger
-- counts it once.
local function intact()
  if S.intact == nil then
    local marker = redis.call('GET', string.sub(S.leases, 1, -7) .. 'epoch')
    S.intact = marker ~= false and string.sub(marker, 1, 2) ~= 'L:'
  end
  return S.intact
end

-- Read KEYS[from..to] with one MGET, for the operations of this call.
local function prefetch(keys, from, to)
  if to < from then return end
  local values = redis.call('MGET', unpack(keys, from, to))
  local raw = S.raw
  for i = from, to do raw[keys[i]] = values[i - from + 1] end
end

-- Make sure every counter of keys[from..to] is in `seen`: read up front, else with one MGET.
local function load(seen, keys, from, to, now)
  local raw, missing = S.raw, nil
  for i = from, to do
    local key = keys[i]
    if not seen[key] then
      local value = raw[key]
      if value == nil then
        missing = missing or {}
        missing[#missing + 1] = key
      else
        seen[key] = decode(value, now, key)
      end
    end
  end
  if not missing then return end
  local values = redis.call('MGET', unpack(missing))
  for i, key in ipairs(missing) do
    if not seen[key] then seen[key] = decode(values[i], now, key) end
  end
end

-- A reservation record as it stands in this call (false: none).
local function record(rkey)
  local value = S.rec[rkey]
  if value == nil then
    value = S.raw[rkey]
    if value == nil then value = redis.call('GET', rkey) end
    S.rec[rkey] = value
  end
  return value
end

local function set_record(rkey, value, ttl)
  S.rec[rkey] = value
  S.recw[rkey] = ttl
end

-- Before the current operation first changes a counter, keep its slots, so a refused write can be undone.
local function touch(c)
  local undo = S.undo
  if not undo[c] then undo[c] = {c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9], c[10]} end
end

local function add(c, i, delta)
  if delta ~= 0 then
    touch(c)
    c[i] = c[i] + delta
    c[10] = true
  end
end

-- A line's deadline only ever moves a counter's drop time out.
local function extend(c, deadline)
  if deadline and deadline > c[7] then
    touch(c)
    c[7] = deadline
    c[10] = true
  end
end

local function overflow(key)
  return redis.error_reply('counter ' .. key .. ' would pass 2**53-1, the exact integer range of Redis Lua scripts')
end

-- The current operation's changes are kept if every counter it changed stays exact; else they are undone and
-- the error is returned. Either way the next operation starts afresh.
local function settle_changes()
  local undo, bad = S.undo, nil
  for c in pairs(undo) do
    for i = 1, 6 do
      if c[i] > MAX_EXACT or c[i] < -MAX_EXACT then bad = c[11] end
    end
  end
  if bad then
    for c, before in pairs(undo) do
      for i = 1, 10 do c[i] = before[i] end
    end
  end
  S.undo = {}
  if bad then return overflow(bad) end
  return nil
end

-- Write every dirty counter, and the key/value pairs in `extra`, with one MSET; a counter left stale by this
-- write (nothing reserved, past its time) is deleted instead. New counters go into the index (and, with a drop
-- time, the expiry index). Returns whether a counter was created.
local function save(seen, now, index, expiry, extra)
  local args, drop, created = extra or {}, {}, false
  for key, c in pairs(seen) do
    if c[10] then
      c[10] = false
      if stale(c, now) then
        if not c[8] then drop[#drop + 1] = key end
        seen[key] = blank(key)
      else
        args[#args + 1] = key
        args[#args + 1] = struct.pack(FORMAT, c[1], c[2], c[3], c[4], c[5], c[6], c[7])
        if c[8] then
          redis.call('ZADD', index, 0, key)
          created = true
        end
        if c[7] > 0 and (c[8] or c[9] == 0) then redis.call('ZADD', expiry, num(c[7]), key) end
        c[8], c[9] = false, c[7]
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

-- Write what this call changed: counters and records (one MSET), settled markers, leases added and removed.
local function commit()
  local extra, marks = {}, nil
  for rkey, ttl in pairs(S.recw) do
    if ttl == 0 then
      extra[#extra + 1] = rkey
      extra[#extra + 1] = S.rec[rkey]
    else
      marks = marks or {}
      marks[#marks + 1] = rkey
      marks[#marks + 1] = ttl
    end
  end
  S.recw = {}
  local now = S.now
  local created = save(S.seen, now, S.index, S.expiry, extra)
  if marks then
    for i = 1, #marks, 2 do redis.call('SET', marks[i], SETTLED, 'EX', marks[i + 1]) end
  end
  local added, removed = {}, {}
  for id, lease in pairs(S.lease) do
    if lease then
      added[#added + 1] = lease
      added[#added + 1] = id
    else
      removed[#removed + 1] = id
    end
  end
  S.lease = {}
  if #added > 0 then redis.call('ZADD', S.leases, unpack(added)) end
  if #removed > 0 then redis.call('ZREM', S.leases, unpack(removed)) end
  if created then prune(S.index, S.expiry, now, PRUNE_BATCH) end
end

local function record_key(leases, id)
  return string.sub(leases, 1, -7) .. 'r:' .. id -- '<p>leases' → '<p>r:<id>'
end

local function outbox_key(leases)
  return string.sub(leases, 1, -7) .. 'outbox' -- '<p>leases' → '<p>outbox' (same slot: the hash tag)
end

local function lease_of(rec)
  return (struct.unpack('<d', rec))
end

-- Take a reservation record's amounts off the counters it holds. A counter that is gone has nothing to return
-- the amounts to.
local function release(seen, rec, now)
  local held, keys, pos = {}, {}, 9
  while pos <= #rec do
    local _, _, _, _, an, at, ar, _, key, nxt = struct.unpack(LINE, rec, pos)
    held[#held + 1] = {key, an, at, ar}
    keys[#keys + 1] = key
    pos = nxt
  end
  load(seen, keys, 1, #keys, now)
  for _, h in ipairs(held) do
    local c = seen[h[1]]
    if not c[8] then
      add(c, 4, -h[2])
      add(c, 5, -h[3])
      add(c, 6, -h[4])
    end
  end
end

-- Release the reservations `ids` (their leases have run out) and write the counters they held. What this call
-- changed so far is written first, so Redis holds the truth the reap reads.
local function reap_ids(ids, now)
  commit()
  local seen, leases = S.seen, S.leases
  local rkeys = {}
  for i, id in ipairs(ids) do rkeys[i] = record_key(leases, id) end
  local records = redis.call('MGET', unpack(rkeys))
  local held = {}
  for i = 1, #ids do
    local packed = records[i]
    if packed and packed ~= SETTLED then
      release(seen, packed, now)
      held[#held + 1] = rkeys[i]
      S.rec[rkeys[i]] = false
    end
  end
  S.undo = {} -- a reap's releases stand whatever the operation that triggered it comes to
  save(seen, now, S.index, S.expiry)
  if #held > 0 then redis.call('DEL', unpack(held)) end
  redis.call('ZREM', leases, unpack(ids))
end

-- Release up to `limit` reservations whose lease expired at or before `now`; the count released.
local function reap(now, limit)
  commit() -- the leases this call added or removed count
  local ids = redis.call('ZRANGEBYSCORE', S.leases, '-inf', num(now), 'LIMIT', 0, limit)
  if #ids > 0 then reap_ids(ids, now) end
  return #ids
end

-- Reserve: check every line and reserve on all of them, or change nothing.
-- K[k0] is this id's record key, K[k0 + 1 .. k1] each line's counter keys in order (keys[0] first).
-- A[a0 ..]: id, now, lease expiry, the record (see the top: the lease expiry and every line's numbers).
-- Returns {1} granted, {2, expiry} already live under this id, {-1} id already settled,
--         {0, line index (1-based), used n, used t, used r} refused, {-2} the store lost its state.
local function reserve_op(K, k0, k1, A, a0)
  local rkey, id, now, lease, rec = K[k0], A[a0], tonumber(A[a0 + 1]), A[a0 + 2], A[a0 + 3]
  if now > S.now then S.now = now end
  if not intact() then return {-2} end
  local own = record(rkey)
  if own == SETTLED then return {-1} end
  local seen = S.seen
  load(seen, K, k0 + 1, k1, now)
  if own then
    local expires = lease_of(own)
    if expires > now then return {2, num(expires)} end
    reap_ids({id}, now) -- this id's own lease ran out: release it first
  end

  -- lines[i] = {first K index, key count, limit n, t, r, amount n, t, r, drop time}
  local lines, k, pos = {}, k0 + 1, 9
  while pos <= #rec do
    local nkeys, ln, lt, lr, an, at, ar, drop, _, nxt = struct.unpack(LINE, rec, pos)
    lines[#lines + 1] = {k, nkeys, ln, lt, lr, an, at, ar, drop}
    k = k + nkeys
    pos = nxt
  end

  -- A line sums every one of its keys, plus what earlier lines of this request put on them; nil when all fit.
  local function check()
    local pending = {}
    for i, l in ipairs(lines) do
      local un, ut, ur = 0, 0, 0
      for j = l[1], l[1] + l[2] - 1 do
        local c, p = seen[K[j]], pending[K[j]]
        un, ut, ur = un + c[1] + c[4], ut + c[2] + c[5], ur + c[3] + c[6]
        if p then un, ut, ur = un + p[1], ut + p[2], ur + p[3] end
      end
      if (l[3] >= 0 and un + l[6] > l[3]) or (l[4] >= 0 and ut + l[7] > l[4]) or (l[5] >= 0 and ur + l[8] > l[5]) then
        return {0, i, un, ut, ur}
      end
      local head = K[l[1]]
      local p = pending[head]
      if p then
        p[1], p[2], p[3] = p[1] + l[6], p[2] + l[7], p[3] + l[8]
      else
        pending[head] = {l[6], l[7], l[8]}
      end
    end
    return nil
  end

  -- Expired leases are reaped only when they could matter: when a line does not fit, reap and check again.
  -- (An expired lease's amount only ever makes a counter look fuller, so a request that fits still fits.)
  local refused = check()
  while refused do
    if reap(now, REAP_BATCH) == 0 then return refused end
    refused = check()
  end

  for _, l in ipairs(lines) do
    local c = seen[K[l[1]]]
    touch(c)
    add(c, 4, l[6])
    add(c, 5, l[7])
    add(c, 6, l[8])
    extend(c, l[9])
    c[10] = true -- a new counter exists even when nothing moved
  end
  local bad = settle_changes()
  if bad then return bad end
  set_record(rkey, rec, 0)
  S.lease[id] = lease
  return {1}
end

-- Settle: release a reservation (if still held) and add the actual spend to each line's keys[0]; once per id.
-- K[k0] is this id's record key, K[k0 + 1 .. k1] each line's keys[0].
-- A[a0 ..]: id, now, settled marker ttl (s), then the doubles {actual n, t, r, then each line's drop time (0 =
-- none)} followed by the call's record, if any: added to the outbox stream in the same step. Returns 'settled', 'late' (lease had expired; spend added all the same) or 'duplicate' (nothing changed).
local function settle_op(K, k0, k1, A, a0)
  local rkey, id, now, ttl, numbers = K[k0], A[a0], tonumber(A[a0 + 1]), A[a0 + 2], A[a0 + 3]
  if now > S.now then S.now = now end
  local own = record(rkey)
  if own == SETTLED then return 'duplicate' end
  local seen = S.seen
  load(seen, K, k0 + 1, k1, now)

  -- No reap here: reserve reaps, and this reservation's own lease is handled below whatever its state.
  local outcome = 'late'
  if own then
    if lease_of(own) > now then outcome = 'settled' end
    release(seen, own, now)
  end
  local an, at, ar, pos = struct.unpack('<ddd', numbers)
  for i = k0 + 1, k1 do
    local c = seen[K[i]]
    local drop
    drop, pos = struct.unpack('<d', numbers, pos)
    touch(c)
    add(c, 1, an)
    add(c, 2, at)
    add(c, 3, ar)
    extend(c, drop)
    c[10] = true
  end
  local bad = settle_changes()
  if bad then return bad end -- the reservation stays as it was

  if own then S.lease[id] = false end
  set_record(rkey, SETTLED, ttl)
  if not intact() then redis.call('SADD', string.sub(S.leases, 1, -7) .. 'lost', id) end
  if pos <= #numbers then
    redis.call('XADD', outbox_key(S.leases), '*', 'id', id, 'r', string.sub(numbers, pos))
  end
  return outcome
end
