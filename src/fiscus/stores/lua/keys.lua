-- List counter keys from the index, dropping counters past their time and entries whose counter is gone.
-- KEYS: counter index, counter expiry index. ARGV: lex min, lex max, batch, now.
-- Returns {entries read, last entry read, {live keys}}; the client asks again from just past the last entry
-- until a call reads fewer than a batch.
local index, expiry, now = KEYS[1], KEYS[2], tonumber(ARGV[4])
local entries = redis.call('ZRANGEBYLEX', index, ARGV[1], ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
if #entries == 0 then return {0, '', {}} end
local values = redis.call('MGET', unpack(entries))
local live, gone, dead = {}, {}, {}
for i, key in ipairs(entries) do
  if not values[i] then
    gone[#gone + 1] = key
  elseif decode(values[i], now)[8] then -- stale: as good as dropped, so drop it
    gone[#gone + 1] = key
    dead[#dead + 1] = key
  else
    live[#live + 1] = key
  end
end
if #dead > 0 then redis.call('DEL', unpack(dead)) end
if #gone > 0 then
  redis.call('ZREM', index, unpack(gone))
  redis.call('ZREM', expiry, unpack(gone))
end
return {#entries, entries[#entries], live}
