-- Release a reservation (if still held) and add the actual spend to each line's keys[0]; once per id
-- (lib.lua: settle_op).
-- KEYS: leases, counter index, counter expiry index, this id's record key, then each line's keys[0].
-- ARGV: id, now, settled marker ttl (s), then the doubles {actual n, t, r, then each line's drop time (0 = none)}.
-- Steady state: one MGET, one MSET, one SET (the settled marker), one ZREM.
begin(KEYS[1], KEYS[2], KEYS[3])
prefetch(KEYS, 4, #KEYS)
local reply = settle_op(KEYS, 4, #KEYS, ARGV, 1)
commit()
return reply
