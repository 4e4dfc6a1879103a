-- Release a reservation (if still held) and add the actual spend to each line's keys[0]; once per id.
-- KEYS: leases, records, settled marker of this id, counter index, counter expiry index, then each line's keys[0].
-- ARGV: id, now, actual n, actual t, actual r, settled marker ttl (s), then each line's ttl ('' = none).
-- Returns 'settled', 'late' (lease had expired; spend added all the same) or 'duplicate' (nothing changed).
local leases, records, settled, index, expiry = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local id, now = ARGV[1], ARGV[2]
-- No reap here: reserve reaps, and this reservation's own lease is handled below whatever its state.
-- Marking the id settled first is the duplicate check too (NX); a script error does not roll back anyway.
if not redis.call('SET', settled, '1', 'NX', 'EX', ARGV[6]) then return 'duplicate' end

local seen = {}
local outcome = 'late'
local packed = redis.call('HGET', records, id)
if packed then
  local lease = redis.call('ZSCORE', leases, id)
  if lease and tonumber(lease) > tonumber(now) then outcome = 'settled' end
  local rec = cmsgpack.unpack(packed)
  for i = 1, #rec, 4 do
    local s = load(seen, rec[i])
    if not s.fresh then -- a counter whose TTL ran out has nothing to return the amounts to
      add(s, 4, -rec[i + 1])
      add(s, 5, -rec[i + 2])
      add(s, 6, -rec[i + 3])
    end
  end
  redis.call('HDEL', records, id)
  redis.call('ZREM', leases, id)
end

local an, at, ar = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
for i = 6, #KEYS do
  local s = load(seen, KEYS[i])
  add(s, 1, an)
  add(s, 2, at)
  add(s, 3, ar)
end
-- Reserve gave these counters their TTL; only a counter that is new here (its reservation long gone) needs one.
for i = 6, #KEYS do
  local s = seen[KEYS[i]]
  if s.fresh then plan_ttl(s, ARGV[1 + i], now) end
end
for key, s in pairs(seen) do save(key, s) end
for i = 6, #KEYS do apply_ttl(KEYS[i], seen[KEYS[i]], index, expiry, now) end
return outcome
