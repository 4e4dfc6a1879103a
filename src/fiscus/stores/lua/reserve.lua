-- Check every line and reserve on all of them, or change nothing.
-- KEYS: leases (zset id→expiry), records (hash id→packed lines), settled marker of this id, counter index,
--       counter expiry index, then each line's counter keys in order (keys[0] first).
-- ARGV: id, now, lease expiry, reap batch, line count, then per line:
--       key count, limit n, limit t, limit r ('' = unlimited), amount n, amount t, amount r, ttl ('' = none).
-- Returns {1} granted, {2, expiry} already live under this id, {-1} id already settled,
--         {0, line index (1-based), used n, used t, used r} refused.
local leases, records, settled, index, expiry = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local id, now = ARGV[1], ARGV[2]

local live = redis.call('ZSCORE', leases, id)
if live and tonumber(live) > tonumber(now) then return {2, live} end
if live then reap(leases, records, now, tonumber(ARGV[4])) end -- this id's own lease ran out: release it first
if redis.call('EXISTS', settled) == 1 then return {-1} end

-- Expired leases are reaped only when they could matter: when a line does not fit, reap and check again.
-- (An expired lease's amount only ever makes a counter look fuller, so a request that fits still fits.)
local function check()
  local nlines = tonumber(ARGV[5])
  local seen, plan = {}, {} -- counters read so far; earlier lines' amounts are added to them as they go
  local k, a = 6, 6
  for line = 1, nlines do
    local nkeys = tonumber(ARGV[a])
    local un, ut, ur = 0, 0, 0
    for j = 0, nkeys - 1 do
      local s = load(seen, KEYS[k + j])
      un, ut, ur = un + s[1] + s[4], ut + s[2] + s[5], ur + s[3] + s[6]
    end
    local an, at, ar = tonumber(ARGV[a + 4]), tonumber(ARGV[a + 5]), tonumber(ARGV[a + 6])
    local ln, lt, lr = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
    if (ln and un + an > ln) or (lt and ut + at > lt) or (lr and ur + ar > lr) then
      return nil, {0, line, un, ut, ur}
    end
    local head = seen[KEYS[k]]
    add(head, 4, an)
    add(head, 5, at)
    add(head, 6, ar)
    plan[#plan + 1] = {KEYS[k], a, an, at, ar}
    k = k + nkeys
    a = a + 8
  end
  return seen, plan
end

local seen, plan = check()
while not seen do
  if reap(leases, records, now, tonumber(ARGV[4])) == 0 then return plan end
  seen, plan = check()
end

for _, step in ipairs(plan) do plan_ttl(seen[step[1]], ARGV[step[2] + 7], now) end
local record = {}
for _, step in ipairs(plan) do
  local head = step[1]
  save(head, seen[head])
  record[#record + 1] = head
  record[#record + 1] = step[3]
  record[#record + 1] = step[4]
  record[#record + 1] = step[5]
end
for _, step in ipairs(plan) do apply_ttl(step[1], seen[step[1]], index, expiry, now) end
redis.call('HSET', records, id, cmsgpack.pack(record))
redis.call('ZADD', leases, ARGV[3], id)
return {1}
