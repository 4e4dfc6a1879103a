-- Release up to a batch of expired leases, and drop up to a batch of counters past their time.
-- KEYS: leases, counter index, counter expiry index. ARGV: now, batch. Returns the count of leases released.
-- The client repeats it until a call releases fewer than a batch, so Redis is never blocked for long.
local now, batch = tonumber(ARGV[1]), tonumber(ARGV[2])
begin(KEYS[1], KEYS[2], KEYS[3])
S.now = now
local count = reap(now, batch)
prune(KEYS[2], KEYS[3], now, batch)
return count
