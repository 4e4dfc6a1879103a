-- Release a reservation (if still held) and add the actual spend to each line's keys[0]; once per id.
-- KEYS: leases, counter index, counter expiry index, this id's record key, then each line's keys[0].
-- ARGV: id, now, settled marker ttl (s), then the doubles {actual n, t, r, then each line's drop time (0 = none)}.
-- Returns 'settled', 'late' (lease had expired; spend added all the same) or 'duplicate' (nothing changed).
-- Steady state: one MGET, one ZREM, one SET (the settled marker), one MSET.
local leases, index, expiry, rkey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id, now, numbers = ARGV[1], tonumber(ARGV[2]), ARGV[4]

local values = redis.call('MGET', unpack(KEYS, 4))
local own = values[1]
if own == SETTLED then return 'duplicate' end
local seen = {}
for i = 5, #KEYS do
  if not seen[KEYS[i]] then seen[KEYS[i]] = decode(values[i - 3], now) end
end

-- No reap here: reserve reaps, and this reservation's own lease is handled below whatever its state.
local outcome = 'late'
if own then
  if lease_of(own) > now then outcome = 'settled' end
  release(seen, own, now)
end
local an, at, ar, pos = struct.unpack('<ddd', numbers)
for i = 5, #KEYS do
  local c = seen[KEYS[i]]
  local drop
  drop, pos = struct.unpack('<d', numbers, pos)
  add(c, 1, an)
  add(c, 2, at)
  add(c, 3, ar)
  extend(c, drop)
  c.dirty = true
end
local bad = inexact(seen)
if bad then return overflow(bad) end -- before any write: the reservation stays as it was

if own then redis.call('ZREM', leases, id) end
redis.call('SET', rkey, SETTLED, 'EX', ARGV[3])
if save(seen, now, index, expiry) then prune(index, expiry, now, PRUNE_BATCH) end
return outcome
