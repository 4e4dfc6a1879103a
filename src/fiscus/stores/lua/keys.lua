-- List counter keys from the index, dropping entries whose counter has expired. KEYS: counter index, expiry
-- index. ARGV: lex min, lex max, batch. Returns {entries read, last entry read, {live keys}}; the client asks
-- again from just past the last entry until a call reads fewer than a batch.
local index, expiry = KEYS[1], KEYS[2]
local entries = redis.call('ZRANGEBYLEX', index, ARGV[1], ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
local live = {}
for _, key in ipairs(entries) do
  if redis.call('EXISTS', key) == 1 then
    live[#live + 1] = key
  else
    redis.call('ZREM', index, key)
    redis.call('ZREM', expiry, key)
  end
end
return {#entries, entries[#entries] or '', live}
