-- Release up to a batch of expired leases. KEYS: leases, records. ARGV: now, batch. Returns the count.
-- The client repeats it until a call releases fewer than a batch, so Redis is never blocked for long.
return reap(KEYS[1], KEYS[2], ARGV[1], tonumber(ARGV[2]))
