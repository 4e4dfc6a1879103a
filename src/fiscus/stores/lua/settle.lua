-- Release a reservation (if still held) and add the actual spend to each line's keys[0]; once per id.
-- KEYS: leases, records, settled marker of this id, then each line's keys[0].
-- ARGV: id, now, reap batch, actual n, actual t, actual r, settled marker ttl (s), then each line's ttl ('' = none).
-- Returns 'settled', 'late' (lease had expired; spend added all the same) or 'duplicate' (nothing changed).
local leases, records, settled = KEYS[1], KEYS[2], KEYS[3]
local id, now = ARGV[1], ARGV[2]
reap(leases, records, now, tonumber(ARGV[3]))

if redis.call('EXISTS', settled) == 1 then return 'duplicate' end

local outcome = 'late'
local packed = redis.call('HGET', records, id)
if packed then
  local expiry = redis.call('ZSCORE', leases, id)
  if expiry and tonumber(expiry) > tonumber(now) then outcome = 'settled' end
  release(packed)
  redis.call('HDEL', records, id)
  redis.call('ZREM', leases, id)
end

local an, at, ar = ARGV[4], ARGV[5], ARGV[6]
for i = 4, #KEYS do
  local key = KEYS[i]
  if an ~= '0' then redis.call('HINCRBY', key, 'sn', an) end
  if at ~= '0' then redis.call('HINCRBY', key, 'st', at) end
  if ar ~= '0' then redis.call('HINCRBY', key, 'sr', ar) end
  touch_ttl(key, ARGV[4 + i])
end
redis.call('SET', settled, '1', 'EX', ARGV[7])
return outcome
