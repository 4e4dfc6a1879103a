-- Extend a live lease (never shorten it). KEYS: leases, this id's record key. ARGV: id, now, new expiry.
-- Returns 1 when the lease was live, 0 when it had expired or was settled.
local own = redis.call('GET', KEYS[2])
if not own or own == SETTLED then return 0 end
local lease = lease_of(own)
if lease <= tonumber(ARGV[2]) then return 0 end
if tonumber(ARGV[3]) > lease then
  redis.call('SETRANGE', KEYS[2], 0, struct.pack('<d', tonumber(ARGV[3]))) -- the lease expiry leads the record
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
end
return 1
