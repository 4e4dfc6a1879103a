-- Check every line and reserve on all of them, or change nothing.
-- KEYS: leases (zset id→expiry), counter index, counter expiry index, this id's record key, then each line's
--       counter keys in order (keys[0] first).
-- ARGV: id, now, lease expiry, the record (see the top of lib.lua: the lease expiry and every line's numbers).
-- Returns {1} granted, {2, expiry} already live under this id, {-1} id already settled,
--         {0, line index (1-based), used n, used t, used r} refused.
-- Steady state: one MGET, one MSET (counters and the record), one ZADD.
local leases, index, expiry, rkey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id, now, lease, record = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]

local values = redis.call('MGET', unpack(KEYS, 4))
local own = values[1]
if own == SETTLED then return {-1} end
local seen = {}
for i = 5, #KEYS do
  if not seen[KEYS[i]] then seen[KEYS[i]] = decode(values[i - 3], now) end
end
if own then
  local expires = lease_of(own)
  if expires > now then return {2, num(expires)} end
  reap_ids(seen, leases, index, expiry, {id}, now) -- this id's own lease ran out: release it first
end

-- lines[i] = {first KEYS index, key count, limit n, t, r, amount n, t, r, drop time}
local lines, k, pos = {}, 5, 9
while pos <= #record do
  local nkeys, ln, lt, lr, an, at, ar, drop, _, nxt = struct.unpack(LINE, record, pos)
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
      local c, p = seen[KEYS[j]], pending[KEYS[j]]
      un, ut, ur = un + c[1] + c[4], ut + c[2] + c[5], ur + c[3] + c[6]
      if p then un, ut, ur = un + p[1], ut + p[2], ur + p[3] end
    end
    if (l[3] >= 0 and un + l[6] > l[3]) or (l[4] >= 0 and ut + l[7] > l[4]) or (l[5] >= 0 and ur + l[8] > l[5]) then
      return {0, i, un, ut, ur}
    end
    local head = KEYS[l[1]]
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
  if reap(seen, leases, index, expiry, now, REAP_BATCH) == 0 then return refused end
  refused = check()
end

for _, l in ipairs(lines) do
  local c = seen[KEYS[l[1]]]
  add(c, 4, l[6])
  add(c, 5, l[7])
  add(c, 6, l[8])
  extend(c, l[9])
  c.dirty = true -- a new counter exists even when nothing moved
end
local bad = inexact(seen)
if bad then return overflow(bad) end
local created = save(seen, now, index, expiry, {rkey, record})
redis.call('ZADD', leases, lease, id)
if created then prune(index, expiry, now, PRUNE_BATCH) end
return {1}
