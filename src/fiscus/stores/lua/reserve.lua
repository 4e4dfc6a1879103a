-- Check every line and reserve on all of them, or change nothing (lib.lua: reserve_op).
-- KEYS: leases (zset id→expiry), counter index, counter expiry index, this id's record key, then each line's
--       counter keys in order (keys[0] first).
-- ARGV: id, now, lease expiry, the record (see the top of lib.lua: the lease expiry and every line's numbers).
-- Steady state: one MGET, one MSET (counters and the record), one ZADD.
begin(KEYS[1], KEYS[2], KEYS[3])
prefetch(KEYS, 4, #KEYS)
local reply = reserve_op(KEYS, 4, #KEYS, ARGV, 1)
commit()
return reply
