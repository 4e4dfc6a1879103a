-- Check every line and reserve on all of them, or change nothing.
-- KEYS: leases (zset id→expiry), records (hash id→packed lines), settled marker of this id, then each
--       line's counter keys in order (keys[0] first).
-- ARGV: id, now, lease expiry, reap batch, line count, then per line:
--       key count, limit n, limit t, limit r ('' = unlimited), amount n, amount t, amount r, ttl ('' = none).
-- Returns {1} granted, {2, expiry} already live under this id, {-1} id already settled,
--         {0, line index (1-based), used n, used t, used r} refused.
local leases, records, settled = KEYS[1], KEYS[2], KEYS[3]
local id, now, expiry = ARGV[1], ARGV[2], ARGV[3]
reap(leases, records, now, tonumber(ARGV[4]))

local live = redis.call('ZSCORE', leases, id)
if live then return {2, live} end
if redis.call('EXISTS', settled) == 1 then return {-1} end

local nlines = tonumber(ARGV[5])
local pending = {} -- key → {n, t, r} reserved by earlier lines of this request
local plan = {}
local k, a = 4, 6
for line = 1, nlines do
  local nkeys = tonumber(ARGV[a])
  local un, ut, ur = 0, 0, 0
  for j = 0, nkeys - 1 do
    local key = KEYS[k + j]
    local c = redis.call('HMGET', key, 'sn', 'st', 'sr', 'rn', 'rt', 'rr')
    un = un + (tonumber(c[1]) or 0) + (tonumber(c[4]) or 0)
    ut = ut + (tonumber(c[2]) or 0) + (tonumber(c[5]) or 0)
    ur = ur + (tonumber(c[3]) or 0) + (tonumber(c[6]) or 0)
    local p = pending[key]
    if p then un, ut, ur = un + p[1], ut + p[2], ur + p[3] end
  end
  local an, at, ar = tonumber(ARGV[a + 4]), tonumber(ARGV[a + 5]), tonumber(ARGV[a + 6])
  local ln, lt, lr = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  if (ln and un + an > ln) or (lt and ut + at > lt) or (lr and ur + ar > lr) then
    return {0, line, un, ut, ur}
  end
  local head = KEYS[k]
  local p = pending[head]
  if p then
    p[1], p[2], p[3] = p[1] + an, p[2] + at, p[3] + ar
  else
    pending[head] = {an, at, ar}
  end
  plan[#plan + 1] = {head, a}
  k = k + nkeys
  a = a + 8
end

local record = {}
for _, step in ipairs(plan) do
  local head, a0 = step[1], step[2]
  redis.call('HINCRBY', head, 'rn', ARGV[a0 + 4])
  redis.call('HINCRBY', head, 'rt', ARGV[a0 + 5])
  redis.call('HINCRBY', head, 'rr', ARGV[a0 + 6])
  touch_ttl(head, ARGV[a0 + 7])
  record[#record + 1] = head
  record[#record + 1] = tonumber(ARGV[a0 + 4])
  record[#record + 1] = tonumber(ARGV[a0 + 5])
  record[#record + 1] = tonumber(ARGV[a0 + 6])
end
redis.call('HSET', records, id, cmsgpack.pack(record))
redis.call('ZADD', leases, expiry, id)
return {1}
