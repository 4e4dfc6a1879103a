-- Extend a live lease (never shorten it). KEYS: leases. ARGV: id, now, new expiry.
-- Returns 1 when the lease was live, 0 when it had expired or was settled.
local expiry = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not expiry or tonumber(expiry) <= tonumber(ARGV[2]) then return 0 end
if tonumber(ARGV[3]) > tonumber(expiry) then redis.call('ZADD', KEYS[1], 'XX', ARGV[3], ARGV[1]) end
return 1
