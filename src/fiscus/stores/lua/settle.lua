-- Release a reservation (if still held) and add the actual spend to each line's keys[0]; once per id.
-- KEYS: leases, records, settled marker of this id, counter index, counter expiry index, then each line's keys[0].
-- ARGV: id, now, reap batch, actual n, actual t, actual r, settled marker ttl (s), then each line's ttl ('' = none).
-- Returns 'settled', 'late' (lease had expired; spend added all the same) or 'duplicate' (nothing changed).
local leases, records, settled, index, expiry = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local id, now = ARGV[1], ARGV[2]
reap(leases, records, now, tonumber(ARGV[3]))

if redis.call('EXISTS', settled) == 1 then return 'duplicate' end

local seen = {}
local outcome = 'late'
local packed = redis.call('HGET', records, id)
if packed then
  local lease = redis.call('ZSCORE', leases, id)
  if lease and tonumber(lease) > tonumber(now) then outcome = 'settled' end
  local rec = cmsgpack.unpack(packed)
  for i = 1, #rec, 4 do
    local s = load(seen, rec[i])
    add(s, 4, -rec[i + 1])
    add(s, 5, -rec[i + 2])
    add(s, 6, -rec[i + 3])
  end
  redis.call('HDEL', records, id)
  redis.call('ZREM', leases, id)
end

local an, at, ar = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
for i = 6, #KEYS do
  local s = load(seen, KEYS[i])
  add(s, 1, an)
  add(s, 2, at)
  add(s, 3, ar)
end
for key, s in pairs(seen) do save(key, s) end
-- Reserve gave these counters their TTL; only a counter that is new here (its reservation long gone) needs one.
for i = 6, #KEYS do
  local s = seen[KEYS[i]]
  if s.fresh then touch(KEYS[i], s, ARGV[2 + i], index, expiry, now) end
end
redis.call('SET', settled, '1', 'EX', ARGV[7])
return outcome
